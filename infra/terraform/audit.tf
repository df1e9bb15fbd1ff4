# Cloud Storage Data Access logs for object writes. Admin Activity logs (bucket settings, IAM) are always on, but
# creating, overwriting or deleting an object is a DATA_WRITE Data Access entry, off by default. With this on,
# every change to the function sources (and to any other bucket of the project) is recorded with its principal.
# Reads (DATA_READ) stay off: every build would log them, and the objects hold only the repository's code.
#
# This resource is authoritative for storage.googleapis.com's audit configuration in the project: if another
# workload needs more for Cloud Storage (DATA_READ, exempted members), declare it here rather than elsewhere.
resource "google_project_iam_audit_config" "storage_writes" {
  project = var.project_id
  service = "storage.googleapis.com"

  audit_log_config {
    log_type = "DATA_WRITE"
  }
}
