# Data Access audit logs are off by default (BigQuery's aside): a service writes them only where a project's
# audit configuration turns them on (https://cloud.google.com/logging/docs/audit/configure-data-access).
#
# Each resource here is authoritative for its service's audit configuration in the project: if another workload
# needs more for the same service (another log type, exempted members), declare it here rather than elsewhere.

# Cloud Storage object writes. Admin Activity logs (bucket settings, IAM) are always on, but creating,
# overwriting or deleting an object is a DATA_WRITE entry. With this on, every change to the function sources
# (and to any other bucket of the project) is recorded with its principal. Reads (DATA_READ) stay off: every
# build would log them, and the objects hold only the repository's code.
resource "google_project_iam_audit_config" "storage_writes" {
  project = var.project_id
  service = "storage.googleapis.com"

  audit_log_config {
    log_type = "DATA_WRITE"
  }
}

# Cloud SQL sends pgAudit's entries (the DDL and role changes pgaudit.log names, sql.tf) to Cloud Logging as
# Data Access audit logs (https://cloud.google.com/sql/docs/postgres/pg-audit), so without this the extension
# would audit into nothing. The same logs record every IAM database login (cloudsql.instances.login).
resource "google_project_iam_audit_config" "cloudsql_data_access" {
  project = var.project_id
  service = "cloudsql.googleapis.com"

  audit_log_config {
    log_type = "DATA_READ"
  }
  audit_log_config {
    log_type = "DATA_WRITE"
  }
}
