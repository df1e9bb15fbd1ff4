# The one secret the code reads: WEBHOOK_SECRETS_KEY, the AES-256 key that encrypts the webhook endpoints' signing
# secrets in PostgreSQL (shared/adapters/secret_box.py). Terraform declares the secret and who may read it; its
# value is added outside Terraform, so it never enters the state. Once, before the first full apply (the
# functions that mount it cannot deploy without a version):
#   terraform apply -target=google_secret_manager_secret.webhook_key
#   python3 -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode(), end='')" \
#     | gcloud secrets versions add "$(terraform output -raw webhook_key_secret)" --data-file=-
# To rotate the key, add a version holding "NEW,OLD" (the first key encrypts, every key decrypts) and redeploy;
# docs/operations.md, "Webhooks", has the whole procedure. Only manage_webhooks and deliver_webhooks mount it.
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
