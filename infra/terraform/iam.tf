# Six identities, each with only what its job needs:
#   runtime    - what every function runs as: Cloud SQL (IAM database login, data only), Firestore, enqueueing
#                tasks, reading the webhook encryption key, and signing delegation assertions as the delegation
#                account.
#   delegation - holds no Google Cloud role at all; its client id is authorised for domain-wide delegation in
#                the Workspace admin console. No key ever exists: the runtime account signs for it through IAM.
#   migrator   - owns the database schema: `make migrate` and `make api-key` run as it. Cloud SQL login roles
#                only; operators impersonate it, never the runtime account (docs/operations.md, "Migrations").
#   invoker    - the OIDC identity of Cloud Tasks and Cloud Scheduler; the only caller of the internal functions.
#   gateway    - API Gateway's identity towards the public functions (they are not open to allUsers).
#   build      - Cloud Build's identity while building the function images.

locals {
  # The OAuth scopes the Workspace admin authorises for the delegation account's client id (output
  # delegation_scopes). Must equal shared.adapters.google.SCOPES (a test holds them together): a scope the code adds
  # is added here too, and then authorised again in the admin console.
  workspace_scopes = [
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/meetings.space.readonly",
    "https://www.googleapis.com/auth/drive.meet.readonly",
    "https://www.googleapis.com/auth/directory.readonly",
    "https://www.googleapis.com/auth/calendar.freebusy",
    "https://www.googleapis.com/auth/meetings.space.settings",
  ]
  runtime_member  = "serviceAccount:${google_service_account.runtime.email}"
  migrator_member = "serviceAccount:${google_service_account.migrator.email}"
  build_member    = "serviceAccount:${google_service_account.build.email}"

  # The Cloud SQL roles of an IAM database login (connector + login), for the runtime and migrator accounts.
  sql_login_roles = toset(["roles/cloudsql.client", "roles/cloudsql.instanceUser"])
  sql_instance_condition = {
    title      = "only-${var.sql_instance_name}"
    expression = "resource.type == \"sqladmin.googleapis.com/Instance\" && resource.name == \"projects/${var.project_id}/instances/${var.sql_instance_name}\""
  }
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

resource "google_service_account" "migrator" {
  account_id   = "${var.name}-migrator"
  display_name = "Meet middleware schema migrations"
  description  = "Owns the database schema; runs migrations and mints API keys. Cloud SQL login only."
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
  for_each = local.sql_login_roles

  project = var.project_id
  role    = each.value
  member  = local.runtime_member

  condition {
    title      = local.sql_instance_condition.title
    expression = local.sql_instance_condition.expression
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

# Enqueueing is granted on the product's queues, not the project.
resource "google_cloud_tasks_queue_iam_member" "runtime_enqueuer" {
  project  = var.project_id
  location = google_cloud_tasks_queue.background.location
  name     = google_cloud_tasks_queue.background.name
  role     = "roles/cloudtasks.enqueuer"
  member   = local.runtime_member
}

resource "google_cloud_tasks_queue_iam_member" "runtime_enqueues_webhooks" {
  project  = var.project_id
  location = google_cloud_tasks_queue.webhooks.location
  name     = google_cloud_tasks_queue.webhooks.name
  role     = "roles/cloudtasks.enqueuer"
  member   = local.runtime_member
}

# A task carrying an OIDC token of the invoker needs actAs on the invoker from whoever enqueues it.
resource "google_service_account_iam_member" "runtime_acts_as_invoker" {
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = local.runtime_member
}

# Keyless domain-wide delegation: google-auth's iam.Signer signs each assertion as the delegation account by
# calling the IAM Credentials signBlob method, which Token Creator (iam.serviceAccounts.signBlob) allows.
resource "google_service_account_iam_member" "runtime_signs_for_delegation" {
  service_account_id = google_service_account.delegation.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.runtime_member
}

# --- migrator ---------------------------------------------------------------------------------------------

# The same two login roles as the runtime account, on the same one instance, and nothing else: no Firestore, no
# queue, no signing. Impersonating it lets an operator change the schema and mint keys, not act as a Workspace user.
resource "google_project_iam_member" "migrator_sql" {
  for_each = local.sql_login_roles

  project = var.project_id
  role    = each.value
  member  = local.migrator_member

  condition {
    title      = local.sql_instance_condition.title
    expression = local.sql_instance_condition.expression
  }
}

# Operators (and the deploy pipeline) run `make migrate` / `make api-key` by impersonating the migrator.
resource "google_service_account_iam_member" "operators_impersonate_migrator" {
  for_each = toset(var.operator_members)

  service_account_id = google_service_account.migrator.name
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
# Exactly the roles Google documents for a user-specified Cloud Functions build account
# (https://cloud.google.com/functions/docs/securing/build-custom-sa): Logs Writer, Artifact Registry Writer and
# Storage Object Viewer, each on the narrowest resource that works.

resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter"])

  project = var.project_id
  role    = each.value
  member  = local.build_member
}

# The images go to the functions' own repository (build_config.docker_repository), so the writer role is granted
# on it alone rather than project-wide.
resource "google_artifact_registry_repository_iam_member" "build_writes_images" {
  project    = var.project_id
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = local.build_member
}

resource "google_storage_bucket_iam_member" "build_reads_sources" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = local.build_member
}

# Cloud Functions stages each source in its own buckets (gcf-v2-sources-*, gcf-v2-uploads-*, run-sources-*)
# before the build reads it from there; the condition is the one Google's page above gives.
resource "google_project_iam_member" "build_reads_staged_sources" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = local.build_member

  condition {
    title      = "only-gcf-staging-buckets"
    expression = join(" || ", [for prefix in local.gcf_staging_bucket_prefixes : "resource.name.startsWith(\"projects/_/buckets/${prefix}\")"])
  }
}

locals {
  gcf_staging_bucket_prefixes = ["gcf-v2-sources-", "gcf-v2-uploads-", "run-sources-"]
}

# --- waiting for IAM ---------------------------------------------------------------------------------------
# IAM is eventually consistent: a grant typically takes effect within 2 minutes and sometimes 7 or more
# (https://cloud.google.com/iam/docs/access-change-propagation). A brand-new build account whose grants have not
# propagated gets its first build denied, and a runtime account without its grants fails its first cold start.
# Every function therefore waits this long after the build and runtime grants it needs. A changed grant
# replaces the sleep (its triggers), so the wait runs again exactly when there is something to wait for.
resource "time_sleep" "iam_propagation" {
  create_duration = "${var.iam_propagation_seconds}s"

  triggers = {
    build = join(",", concat(
      [for grant in google_project_iam_member.build : grant.id],
      [google_artifact_registry_repository_iam_member.build_writes_images.id],
      [google_storage_bucket_iam_member.build_reads_sources.id],
      [google_project_iam_member.build_reads_staged_sources.id],
    ))
    runtime = join(",", concat(
      [for grant in google_project_iam_member.runtime_sql : grant.id],
      [google_project_iam_member.runtime_firestore.id],
      [google_cloud_tasks_queue_iam_member.runtime_enqueuer.id],
      [google_cloud_tasks_queue_iam_member.runtime_enqueues_webhooks.id],
      [google_secret_manager_secret_iam_member.runtime_reads_webhook_key.id],
      [google_service_account_iam_member.runtime_acts_as_invoker.id],
      [google_service_account_iam_member.runtime_signs_for_delegation.id],
      [google_secret_manager_secret_iam_member.runtime_reads_page_token_key.id],
      [for grant in google_secret_manager_secret_iam_member.runtime : grant.id],
    ))
  }
}
