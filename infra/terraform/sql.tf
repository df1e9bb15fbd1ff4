# Cloud SQL for PostgreSQL 16, the system of record. Nobody logs in with a password: the functions (as the runtime
# account) and `make migrate` (as the migrator account) connect through the Cloud SQL Python Connector with IAM
# database authentication.
resource "google_sql_database_instance" "main" {
  name                = var.sql_instance_name
  region              = var.region
  database_version    = "POSTGRES_16"
  deletion_protection = var.deletion_protection

  settings {
    # New PostgreSQL 16 instances otherwise default to Enterprise Plus, which does not offer this tier.
    edition                     = "ENTERPRISE"
    tier                        = var.sql_tier
    availability_type           = var.sql_availability_type
    disk_type                   = "PD_SSD"
    disk_autoresize             = true
    deletion_protection_enabled = var.deletion_protection

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = "06:00" # UTC; 01:00 in Bogota
      transaction_log_retention_days = 7

      backup_retention_settings {
        retained_backups = var.sql_backup_retained_count
        retention_unit   = "COUNT"
      }
    }

    maintenance_window {
      day          = 7 # Sunday
      hour         = 7 # UTC
      update_track = "stable"
    }

    # A public address with no authorised networks: only the connector (mutual TLS with an ephemeral client
    # certificate, IAM-checked) gets through. Private IP would add a VPC and serverless egress for no gain here.
    ip_configuration {
      ipv4_enabled = true
      ssl_mode     = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
    }

    insights_config {
      query_insights_enabled  = true
      record_application_tags = false
      record_client_address   = false
    }

    database_flags {
      name  = "cloudsql.iam_authentication"
      value = "on"
    }
    # Explicit, so the connection budget in functions.tf holds whatever the tier's default would be.
    database_flags {
      name  = "max_connections"
      value = tostring(var.db_max_connections)
    }
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    # The flag loads pgAudit; it logs only in a database where the extension exists, which migration
    # 0003_pgaudit creates (run by the migrator, docs/operations.md).
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
    database_flags {
      name  = "pgaudit.log"
      value = "ddl,role"
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_sql_database" "meet" {
  name     = var.db_name
  instance = google_sql_database_instance.main.name
  # The data outlives a `terraform destroy` of the database resource; the instance's protection guards the rest.
  deletion_policy = "ABANDON"
}

# The database logins. Cloud SQL names a service account's user by its email without ".gserviceaccount.com",
# which is also what DB_IAM_USER must be. Both are abandoned rather than deleted on destroy: PostgreSQL refuses
# to drop a role that owns objects or holds privileges, so deleting them would stop a teardown halfway (the
# instance's own deletion removes them with everything else).
#
# runtime: data only. It owns nothing; migration 0003 grants it DML on the migrator's tables and sets the
# migrator's default privileges so that later tables are granted too.
resource "google_sql_user" "runtime" {
  name            = trimsuffix(google_service_account.runtime.email, ".gserviceaccount.com")
  instance        = google_sql_database_instance.main.name
  type            = "CLOUD_IAM_SERVICE_ACCOUNT"
  deletion_policy = "ABANDON"
}

# migrator: creates and therefore owns every table, and the pgAudit extension. It needs Cloud SQL's
# cloudsqlsuperuser database role for both (CREATE in schema public, CREATE EXTENSION); this provider version
# cannot assign database roles, so docs/operations.md gives the one gcloud command that does.
resource "google_sql_user" "migrator" {
  name            = trimsuffix(google_service_account.migrator.email, ".gserviceaccount.com")
  instance        = google_sql_database_instance.main.name
  type            = "CLOUD_IAM_SERVICE_ACCOUNT"
  deletion_policy = "ABANDON"
}
