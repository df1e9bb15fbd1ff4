# No secret is declared, because the code reads none: Google access is keyless (the runtime account signs
# through IAM for the delegation account), Cloud SQL uses IAM database authentication, and API keys are stored
# in PostgreSQL as SHA-256 hashes, minted with `make api-key`.
#
# The wiring for the first secret is in place. Create the secret and add its versions outside Terraform, so the
# value never enters the state:
#   gcloud secrets create SECRET_ID --replication-policy=automatic
#   printf %s "$VALUE" | gcloud secrets versions add SECRET_ID --data-file=-
# then set `secret_env = { ENV_NAME = "SECRET_ID" }`: the runtime account gets access to exactly that secret
# (below), and every function receives it as ENV_NAME (functions.tf).
resource "google_secret_manager_secret_iam_member" "runtime" {
  for_each = var.secret_env

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = local.runtime_member

  # secretmanager.googleapis.com is enabled (services.tf) exactly when a secret is mounted.
  depends_on = [google_project_service.enabled]
}
