locals {
  services = toset([
    "apigateway.googleapis.com",
    "servicemanagement.googleapis.com",
    "servicecontrol.googleapis.com",
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "storage.googleapis.com",
    "sqladmin.googleapis.com",
    "firestore.googleapis.com",
    "cloudtasks.googleapis.com",
    "cloudscheduler.googleapis.com",
    "iam.googleapis.com",
    # signBlob (google-auth's iam.Signer) for keyless domain-wide delegation.
    "iamcredentials.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "logging.googleapis.com",
    # The Workspace APIs the functions call as the delegated users.
    "calendar-json.googleapis.com",
    "meet.googleapis.com",
    "drive.googleapis.com",
    "people.googleapis.com",
    "admin.googleapis.com",
    # The secrets the code reads (secrets.tf): the webhook encryption key and the page-token key.
    "secretmanager.googleapis.com",
  ])
}

resource "google_project_service" "enabled" {
  for_each = local.services

  project = var.project_id
  service = each.value
  # Other workloads in the project may use the same APIs: never switch them off on destroy.
  disable_on_destroy = false
}
