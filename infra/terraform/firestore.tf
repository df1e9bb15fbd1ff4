# Firestore (native mode) holds the ledger: idempotency replays, task-delivery dedupe, job runs and the sweep
# lease. PostgreSQL stays the system of record; these documents expire on their own.
resource "google_firestore_database" "ledger" {
  name                              = var.firestore_database
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # Removing the resource from Terraform must not delete the ledger with it.
  deletion_policy = "ABANDON"

  depends_on = [google_project_service.enabled]
}

locals {
  # Collection => timestamp field after which Firestore deletes the document (within about a day of it).
  # The collection names are shared/adapters/firestore.py's; a test holds them together.
  ledger_ttl = {
    idempotency     = "expires_at"
    task_deliveries = "expires_at"
    job_runs        = "expires_at"
    leases          = "expires_at"
  }
}

resource "google_firestore_field" "ttl" {
  for_each = local.ledger_ttl

  project    = var.project_id
  database   = google_firestore_database.ledger.name
  collection = each.key
  field      = each.value

  ttl_config {}

  # No single-field index on a TTL timestamp: nothing queries it, and monotonically rising values indexed at a
  # high write rate create hotspots.
  index_config {}
}

# recent_jobs(kind) lists a kind's runs newest first.
resource "google_firestore_index" "job_runs_by_kind" {
  project    = var.project_id
  database   = google_firestore_database.ledger.name
  collection = "job_runs"

  fields {
    field_path = "kind"
    order      = "ASCENDING"
  }
  fields {
    field_path = "started_at"
    order      = "DESCENDING"
  }
}
