# Five identities, each with only what its job needs:
#   runtime    - what every function runs as: Cloud SQL (IAM database login), Firestore, enqueueing tasks, and
#                signing delegation assertions as the delegation account.
#   delegation - holds no Google Cloud role at all; its client id is authorised for domain-wide delegation in
#                the Workspace admin console. No key ever exists: the runtime account signs for it through IAM.
#   invoker    - the OIDC identity of Cloud Tasks and Cloud Scheduler; the only caller of the internal functions.
#   gateway    - API Gateway's identity towards the public functions (they are not open to allUsers).
#   build      - Cloud Build's identity while building the function images.

locals {
  # Must equal shared.adapters.google.SCOPES (a test holds them together): the Workspace admin authorises exactly these.
  workspace_scopes = [
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/meetings.space.readonly",
    "https://www.googleapis.com/auth/drive.readonly",
    "https://www.googleapis.com/auth/directory.readonly",
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
  ]
  runtime_member = "serviceAccount:${google_service_account.runtime.email}"
}

resource "google_service_account" "runtime" {
  account_id   = "${var.name}-runtime"
  display_name = "Meet middleware functions"
  description  = "Runtime identity of every function of the Meet middleware."
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "delegation" {
  account_id   = "${var.name}-delegation"
  display_name = "Meet middleware Workspace delegation"
  description  = "Domain-wide delegation subject signer; no keys, no project roles."
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "invoker" {
  account_id   = "${var.name}-invoker"
  display_name = "Meet middleware task and scheduler invoker"
  description  = "OIDC identity of Cloud Tasks and Cloud Scheduler calls to the internal functions."
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "gateway" {
  account_id   = "${var.name}-gateway"
  display_name = "Meet middleware API Gateway"
  description  = "API Gateway's identity when it calls the public functions."
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "build" {
  account_id   = "${var.name}-build"
  display_name = "Meet middleware function builds"
  description  = "Cloud Build identity for building the function images."
  depends_on   = [google_project_service.enabled]
}

# --- runtime ---------------------------------------------------------------------------------------------

# Cloud SQL roles are conditioned on this one instance, so the account reaches no other database in the project.
resource "google_project_iam_member" "runtime_sql" {
  for_each = toset(["roles/cloudsql.client", "roles/cloudsql.instanceUser"])

  project = var.project_id
  role    = each.value
  member  = local.runtime_member

  condition {
    title      = "only-${var.sql_instance_name}"
    expression = "resource.type == \"sqladmin.googleapis.com/Instance\" && resource.name == \"projects/${var.project_id}/instances/${var.sql_instance_name}\""
  }
}

# Firestore access is likewise limited to the ledger's database.
resource "google_project_iam_member" "runtime_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = local.runtime_member

  condition {
    title      = "only-ledger-database"
    expression = "resource.name == \"projects/${var.project_id}/databases/${var.firestore_database}\""
  }
}

# Enqueueing is granted on the one queue, not the project.
resource "google_cloud_tasks_queue_iam_member" "runtime_enqueuer" {
  project  = var.project_id
  location = google_cloud_tasks_queue.background.location
  name     = google_cloud_tasks_queue.background.name
  role     = "roles/cloudtasks.enqueuer"
  member   = local.runtime_member
}

# A task carrying an OIDC token of the invoker needs actAs on the invoker from whoever enqueues it.
resource "google_service_account_iam_member" "runtime_acts_as_invoker" {
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = local.runtime_member
}

# Keyless domain-wide delegation: google-auth's IAM signer signs the assertion as the delegation account.
resource "google_service_account_iam_member" "runtime_signs_for_delegation" {
  service_account_id = google_service_account.delegation.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.runtime_member
}

# Migrations run as the runtime identity so the tables belong to the role that uses them (docs/operations.md).
resource "google_service_account_iam_member" "operators_impersonate_runtime" {
  for_each = toset(var.operator_members)

  service_account_id = google_service_account.runtime.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = each.value
}

# --- invoker and gateway: who may call which function ----------------------------------------------------

# Internal functions: only the invoker (Cloud Tasks, Cloud Scheduler) may call them.
resource "google_cloud_run_v2_service_iam_member" "internal_invoker" {
  for_each = local.internal_functions

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.invoker.email}"
}

# Public functions: only API Gateway calls them; the API key check happens in the function itself.
resource "google_cloud_run_v2_service_iam_member" "public_invoker" {
  for_each = local.public_functions

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.gateway.email}"
}

# --- build -----------------------------------------------------------------------------------------------

resource "google_project_iam_member" "build" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/artifactregistry.createOnPushWriter",
  ])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_reads_sources" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# Cloud Functions stages each source in its own gcf-v2-sources-* bucket before the build reads it from there.
resource "google_project_iam_member" "build_reads_staged_sources" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = "serviceAccount:${google_service_account.build.email}"

  condition {
    title      = "only-gcf-staging-buckets"
    expression = "resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-\")"
  }
}
