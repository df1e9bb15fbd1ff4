# Google access is keyless (the runtime account signs through IAM for the delegation account), Cloud SQL uses IAM
# database authentication, and API keys are stored in PostgreSQL as SHA-256 hashes, minted with `make api-key`.
# The code reads two secrets; Terraform declares each and who may read it, and their values are added outside
# Terraform, so they never enter the state. Once, before the first full apply (the functions that mount them
# cannot deploy without a version):
#   terraform apply -target=google_secret_manager_secret.webhook_key -target=google_secret_manager_secret.page_token_key
#   python3 -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode(), end='')" \
#     | gcloud secrets versions add "$(terraform output -raw webhook_key_secret)" --data-file=-
#   python3 -c "import secrets; print(secrets.token_urlsafe(32), end='')" \
#     | gcloud secrets versions add "$(terraform output -raw page_token_key_secret)" --data-file=-

# WEBHOOK_SECRETS_KEY, the AES-256 key that encrypts the webhook endpoints' signing secrets in PostgreSQL
# (shared/adapters/secret_box.py). To rotate the key, add a version holding "NEW,OLD" (the first key encrypts, every
# key decrypts) and redeploy; docs/operations.md, "Webhooks", has the whole procedure. Only manage_webhooks and
# deliver_webhooks mount it.
resource "google_secret_manager_secret" "webhook_key" {
  secret_id = "${var.name}-webhook-secrets-key"

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_iam_member" "runtime_reads_webhook_key" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.webhook_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.runtime_member
}

# PAGE_TOKEN_KEY, the HMAC key that signs the list's page tokens (shared/services/meetings.py). To rotate it, add a
# version holding "NEW,OLD" (the first key signs, every key verifies), redeploy, and drop OLD a day later. Only
# get_meeting mounts it.
resource "google_secret_manager_secret" "page_token_key" {
  secret_id = "${var.name}-page-token-key"

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_iam_member" "runtime_reads_page_token_key" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.page_token_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.runtime_member
}

# Further secrets, should the code ever read one: create it and add its versions outside Terraform, as above,
# then set `secret_env = { ENV_NAME = "SECRET_ID" }`: the runtime account gets access to exactly that secret
# (below), and every function receives it as ENV_NAME (functions.tf).
resource "google_secret_manager_secret_iam_member" "runtime" {
  for_each = var.secret_env

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = local.runtime_member

  # secretmanager.googleapis.com is enabled (services.tf) before any secret is read.
  depends_on = [google_project_service.enabled]
}
