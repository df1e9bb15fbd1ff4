output "api_base_url" {
  description = "The API's one public base URL (API Gateway); clients call {api_base_url}/v1/..."
  value       = "https://${google_api_gateway_gateway.gateway.default_hostname}"
}

output "internal_function_urls" {
  description = "The internal functions' run.app URLs: what Cloud Tasks and Cloud Scheduler call, and the OIDC audience."
  value       = local.internal_urls
}

output "public_function_urls" {
  description = "The public functions' run.app URLs behind API Gateway (they answer only the gateway's account), and the audience of its ID tokens."
  value       = local.public_urls
}

output "page_token_key_secret" {
  description = "The Secret Manager secret holding PAGE_TOKEN_KEY (its versions are added with gcloud, never by Terraform)."
  value       = google_secret_manager_secret.page_token_key.secret_id
}

output "sql_instance_name" {
  description = "The Cloud SQL instance's name (for gcloud sql commands)."
  value       = google_sql_database_instance.main.name
}

output "sql_instance_connection_name" {
  description = "CLOUD_SQL_INSTANCE of the functions, and for `make migrate` and `make api-key`."
  value       = google_sql_database_instance.main.connection_name
}

output "db_iam_user" {
  description = "The functions' DB_IAM_USER: the runtime account's database user (email without .gserviceaccount.com)."
  value       = google_sql_user.runtime.name
}

output "migrator_db_user" {
  description = "DB_IAM_USER for `make migrate` and `make api-key`: the migrator account's database user."
  value       = google_sql_user.migrator.name
}

output "db_name" {
  description = "DB_NAME of the middleware's database."
  value       = google_sql_database.meet.name
}

output "runtime_service_account" {
  description = "Identity of every function (nobody impersonates it)."
  value       = google_service_account.runtime.email
}

output "migrator_service_account" {
  description = "The account operators impersonate to run `make migrate` and `make api-key`."
  value       = google_service_account.migrator.email
}

output "invoker_service_account" {
  description = "OIDC identity of Cloud Tasks and Cloud Scheduler (TASKS_INVOKER_SA)."
  value       = google_service_account.invoker.email
}

output "gateway_service_account" {
  description = "API Gateway's identity towards the public functions."
  value       = google_service_account.gateway.email
}

output "delegation_service_account" {
  description = "GOOGLE_DELEGATION_SA: the account authorised for domain-wide delegation."
  value       = google_service_account.delegation.email
}

output "delegation_client_id" {
  description = "Client ID to authorise in the Workspace admin console (Security > API controls > Domain-wide delegation)."
  value       = google_service_account.delegation.unique_id
}

output "delegation_scopes" {
  description = "OAuth scopes to authorise for the client ID, comma-separated as the admin console takes them (local.workspace_scopes)."
  value       = join(",", local.workspace_scopes)
}

output "tasks_queue" {
  description = "TASKS_QUEUE: full name of the background work queue."
  value       = google_cloud_tasks_queue.background.id
}

output "webhook_tasks_queue" {
  description = "WEBHOOK_TASKS_QUEUE: full name of the webhook deliveries queue."
  value       = google_cloud_tasks_queue.webhooks.id
}

output "webhook_key_secret" {
  description = "Secret Manager secret id of WEBHOOK_SECRETS_KEY; add its versions with gcloud (secrets.tf)."
  value       = google_secret_manager_secret.webhook_key.secret_id
}

output "scheduler_jobs" {
  description = "Cloud Scheduler sweep jobs (for `python -m ops.scheduler`)."
  value       = { for name, job in google_cloud_scheduler_job.sweep : name => job.name }
}
