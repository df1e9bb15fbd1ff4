variable "project_id" {
  type        = string
  description = "Google Cloud project that hosts the middleware."
}

variable "region" {
  type        = string
  description = "Region of the functions, Cloud SQL, Cloud Tasks, Cloud Scheduler and the source bucket."
  default     = "us-central1"
}

variable "name" {
  type        = string
  description = "Short prefix of resource names (service accounts, queue, bucket, gateway)."
  default     = "meet"

  validation {
    # Service account ids are at most 30 characters and the longest suffix used is "-delegation".
    condition     = can(regex("^[a-z][a-z0-9-]{1,17}$", var.name))
    error_message = "name must be 2-18 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "gateway_region" {
  type        = string
  description = "Region of the API Gateway gateway (API Gateway runs in fewer regions than Cloud Functions)."
  default     = "us-central1"
}

variable "workspace_domain" {
  type        = string
  description = "Google Workspace domain whose users are impersonated as organizers (e.g. clinica.com)."

  validation {
    condition     = can(regex("^[a-z0-9.-]+\\.[a-z]{2,}$", var.workspace_domain))
    error_message = "workspace_domain must be a domain name such as clinica.com."
  }
}

variable "default_calendar_owner" {
  type        = string
  description = "Workspace user whose calendar holds meetings of organizers outside the domain."

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+$", var.default_calendar_owner))
    error_message = "default_calendar_owner must be an email address."
  }
}

variable "default_time_zone" {
  type        = string
  description = "IANA time zone for datetimes sent without an offset."
  default     = "America/Bogota"
}

variable "default_room_access" {
  type        = string
  description = "Who enters a meeting's Meet room without knocking when the request names no one: OPEN, TRUSTED or RESTRICTED (only invitees)."
  default     = "RESTRICTED"

  validation {
    condition     = contains(["OPEN", "TRUSTED", "RESTRICTED"], var.default_room_access)
    error_message = "default_room_access must be OPEN, TRUSTED or RESTRICTED."
  }
}

variable "grace_period_minutes" {
  type        = number
  description = "Minutes after scheduled_end before a meeting Meet never saw is marked FINISHED."
  default     = 60
}

variable "log_level" {
  type        = string
  description = "Log level of every function."
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "sql_instance_name" {
  type        = string
  description = "Cloud SQL instance name (a deleted name cannot be reused for about a week)."
  default     = "meet-pg"
}

variable "sql_tier" {
  type        = string
  description = "Cloud SQL machine tier; db-custom-1-3840 is 1 vCPU and 3.75 GB, whose default max_connections is 100."
  default     = "db-custom-1-3840"
}

variable "sql_availability_type" {
  type        = string
  description = "REGIONAL keeps a standby in a second zone with automatic failover; ZONAL is cheaper."
  default     = "REGIONAL"

  validation {
    condition     = contains(["REGIONAL", "ZONAL"], var.sql_availability_type)
    error_message = "sql_availability_type must be REGIONAL or ZONAL."
  }
}

variable "sql_backup_retained_count" {
  type        = number
  description = "Number of daily automated Cloud SQL backups kept."
  default     = 14
}

variable "deletion_protection" {
  type        = bool
  description = "Protect Cloud SQL and Firestore from deletion (turn off only to tear an environment down)."
  default     = true
}

variable "db_name" {
  type        = string
  description = "PostgreSQL database of the middleware."
  default     = "meet"
}

variable "db_max_connections" {
  type        = number
  description = "PostgreSQL max_connections, set explicitly so the connection budget below does not depend on the tier."
  default     = 100
}

variable "db_reserved_connections" {
  type        = number
  description = "Connections kept free of the functions: superuser reserve, Cloud SQL's own, migrations and operators."
  default     = 15
}

variable "db_pool_size" {
  type        = number
  description = "Connections per function instance (DB_POOL_SIZE); also each instance's request concurrency."
  default     = 4

  validation {
    condition     = var.db_pool_size >= 1 && var.db_pool_size <= 50
    error_message = "db_pool_size must be between 1 and 50 (the settings' bounds)."
  }
}

variable "max_instances" {
  type        = map(number)
  description = "Max instances per function; sum(max_instances) x db_pool_size must stay within max_connections minus the reserve."
  # update_meeting went from 3 to 2 when the two webhook functions came: a reschedule is the rarest write, and
  # 2 x 4 concurrent PATCHes are far above what the clinics send.
  default = {
    create_meeting   = 5
    get_meeting      = 5
    update_meeting   = 2
    cancel_meeting   = 3
    check_status     = 2
    sync_recordings  = 2
    manage_webhooks  = 1
    deliver_webhooks = 1
  }
}

variable "min_instances" {
  type        = map(number)
  description = "Instances kept warm per function (billed while idle), so its first request skips the cold start; each at most its max_instances. Default: none."
  # A create's cold start is about 2.3 x a hello-world function's (docs/benchmarks.md): for the clinic's first
  # booking of the morning, { create_meeting = 1, get_meeting = 1 } removes it at the price of two idle instances.
  default = {}
  validation {
    condition     = alltrue([for n in values(var.min_instances) : n >= 0 && floor(n) == n])
    error_message = "min_instances values are whole numbers, 0 or more."
  }
}

variable "firestore_location" {
  type        = string
  description = "Firestore location (multi-region nam5 or eur3, or a region); fixed once the database exists."
  default     = "nam5"
}

variable "firestore_database" {
  type        = string
  description = "Firestore database id of the ledger (FIRESTORE_DATABASE)."
  default     = "(default)"
}

variable "tasks_max_dispatches_per_second" {
  type        = number
  description = "Cloud Tasks dispatch rate; each task makes a few Calendar/Meet calls, mostly as one delegated user."
  default     = 2
}

variable "tasks_max_concurrent_dispatches" {
  type        = number
  description = "Tasks in flight at once; kept within the internal functions' max_instances x db_pool_size."
  default     = 6
}

variable "webhook_max_dispatches_per_second" {
  type        = number
  description = "Webhook delivery attempts dispatched per second (they call the clients' receivers, not Google)."
  default     = 10
}

variable "webhook_max_concurrent_dispatches" {
  type        = number
  description = "Webhook delivery attempts in flight at once; kept within deliver_webhooks' max_instances x db_pool_size."
  default     = 4
}

variable "package_dir" {
  type        = string
  description = "Directory of the function zips and manifest.json written by `make package`, relative to this module."
  default     = "../../build"
}

variable "operator_members" {
  type        = list(string)
  description = "Principals (e.g. group:ops@clinica.com) that may impersonate the migrator account to run migrations and mint API keys."
  default     = []
}

variable "iam_propagation_seconds" {
  type        = number
  description = "Seconds the functions wait after the build and runtime accounts' grants change (IAM is eventually consistent)."
  default     = 120

  validation {
    condition     = var.iam_propagation_seconds >= 0 && var.iam_propagation_seconds <= 900
    error_message = "iam_propagation_seconds must be between 0 and 900."
  }
}

variable "secret_env" {
  type        = map(string)
  description = "Further environment variable => Secret Manager secret id mounted into every function (the webhook key is declared in secrets.tf)."
  default     = {}
}
