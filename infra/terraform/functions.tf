# Every Cloud Function (2nd gen) of the product, from one table. The entry point is the function's name, and
# the deployed function carries the same name. `public` functions sit behind API Gateway; the others are
# called only by Cloud Tasks and Cloud Scheduler.
locals {
  functions = {
    create_meeting = {
      public      = true
      description = "POST /v1/meetings"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 60
    }
    get_meeting = {
      public      = true
      description = "GET /v1/meetings..., /v1/health, /v1/openapi.json, /v1/docs, and unknown routes"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 60
      # It issues and reads the list's page tokens, signed with PAGE_TOKEN_KEY (secrets.tf).
      page_token_key = true
    }
    update_meeting = {
      public      = true
      description = "PATCH /v1/meetings/{meeting_id}"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 60
    }
    cancel_meeting = {
      public      = true
      description = "DELETE /v1/meetings/{meeting_id}"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 60
    }
    check_status = {
      public      = false
      description = "Internal: one meeting's status check (Cloud Tasks) or the sweep (Cloud Scheduler)"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 300
    }
    sync_recordings = {
      public      = false
      description = "Internal: one meeting's attendance and recordings (Cloud Tasks) or the sweep (Cloud Scheduler)"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 300
    }
    manage_webhooks = {
      public      = true
      description = "/v1/webhook-endpoints...: a client's webhook endpoints, secrets and deliveries"
      memory      = "512Mi"
      cpu         = "1"
      timeout     = 60
      webhook_key = true
    }
    deliver_webhooks = {
      public      = false
      description = "Internal: one webhook delivery attempt (Cloud Tasks) or the sweep of lost ones (Cloud Scheduler)"
      memory      = "512Mi"
      cpu         = "1"
      # A delivery waits at most 15 s for the receiver; a sweep only enqueues.
      timeout     = 120
      webhook_key = true
    }
  }

  public_functions   = { for name, fn in local.functions : name => fn if fn.public }
  internal_functions = { for name, fn in local.functions : name => fn if !fn.public }

  # A 2nd gen function runs as the Cloud Run service of the same name, lower-cased with "_" as "-" (Cloud Run
  # names allow no underscores); the `check` below compares it with the service Google reports.
  run_services = { for name in keys(local.functions) : name => replace(lower(name), "_", "-") }

  # Cloud Tasks and Cloud Scheduler call the internal functions at their deterministic run.app URL,
  # https://SERVICE-PROJECT_NUMBER.REGION.run.app: Cloud Run counts their requests as internal traffic (which
  # ALLOW_INTERNAL_ONLY requires) only when they go to a run.app URL, not to cloudfunctions.net
  # (https://cloud.google.com/run/docs/securing/ingress). The same URL is each task's and sweep's OIDC audience
  # and CHECK_STATUS_URL / SYNC_RECORDINGS_URL, which shared/services/auth.py accepts as audiences.
  #
  # The URLs are computed, not read back from the functions: check_status enqueues check_status tasks and every
  # function's environment names both URLs, so reading them from the resources would make the function resource
  # depend on itself. The deterministic URL is known before the service exists
  # (https://cloud.google.com/run/docs/triggering/https-request); the project number comes from the
  # project, not from anything this configuration creates. Requests to it reach the function at path "/", which
  # the internal routes accept.
  internal_urls = {
    for name in keys(local.internal_functions) :
    name => "https://${local.run_services[name]}-${data.google_project.this.number}.${var.region}.run.app"
  }

  # API Gateway calls each public function at its deterministic run.app URL too, and that URL is the audience of
  # the ID token it signs each call with (jwt_audience in the generated spec). The functions read the caller's
  # X-Forwarded-Authorization only beside a verified token of the gateway's account for one of these audiences
  # (GATEWAY_SA, OIDC_AUDIENCES), so a request that did not come through the gateway cannot bring someone's key
  # in that header (docs/decisions/0009).
  public_urls = {
    for name in keys(local.public_functions) :
    name => "https://${local.run_services[name]}-${data.google_project.this.number}.${var.region}.run.app"
  }

  # The page-token key reaches only the function that signs and verifies page tokens.
  page_token_secret_env = { PAGE_TOKEN_KEY = google_secret_manager_secret.page_token_key.secret_id }

  # Connection budget: every instance may hold DB_POOL_SIZE connections, and the sum over all functions at
  # their max_instances must fit in max_connections minus the reserve. With the defaults:
  # (5 + 5 + 2 + 3 + 2 + 2 + 1 + 1) x 4 = 84 <= 100 - 15.
  db_connection_budget = sum([for name in keys(local.functions) : lookup(var.max_instances, name, 0)]) * var.db_pool_size

  # Packages come from `make package`: one zip per function, named by its content hash, listed in the manifest.
  package_dir = abspath("${path.module}/${var.package_dir}")
  packages    = try(jsondecode(file("${local.package_dir}/manifest.json")).functions, {})

  # What shared/settings.py reads. No value may be empty: the settings would read "" rather than "unset", which
  # is why the optional-looking inputs (workspace_domain, default_calendar_owner) are required variables.
  function_env = {
    GOOGLE_CLOUD_PROJECT   = var.project_id
    CLOUD_SQL_INSTANCE     = google_sql_database_instance.main.connection_name
    CLOUD_SQL_IP_TYPE      = "public"
    DB_NAME                = google_sql_database.meet.name
    DB_IAM_USER            = google_sql_user.runtime.name
    DB_POOL_SIZE           = tostring(var.db_pool_size)
    GOOGLE_DELEGATION_SA   = google_service_account.delegation.email
    WORKSPACE_DOMAIN       = var.workspace_domain
    DEFAULT_CALENDAR_OWNER = var.default_calendar_owner
    DEFAULT_TIME_ZONE      = var.default_time_zone
    DEFAULT_ROOM_ACCESS    = var.default_room_access
    GRACE_PERIOD_MINUTES   = tostring(var.grace_period_minutes)
    LOG_LEVEL              = var.log_level
    TASKS_QUEUE            = google_cloud_tasks_queue.background.id
    CHECK_STATUS_URL       = local.internal_urls["check_status"]
    SYNC_RECORDINGS_URL    = local.internal_urls["sync_recordings"]
    TASKS_INVOKER_SA       = google_service_account.invoker.email
    FIRESTORE_DATABASE     = google_firestore_database.ledger.name
    WEBHOOK_TASKS_QUEUE    = google_cloud_tasks_queue.webhooks.id
    DELIVER_WEBHOOKS_URL   = local.internal_urls["deliver_webhooks"]
    GATEWAY_SA             = google_service_account.gateway.email
    OIDC_AUDIENCES         = jsonencode([for name in sort(keys(local.public_urls)) : local.public_urls[name]])
  }

  # The key that encrypts the webhook signing secrets reaches only the two functions that read or write them.
  webhook_secret_env = { WEBHOOK_SECRETS_KEY = google_secret_manager_secret.webhook_key.secret_id }

  # What each function reads from Secret Manager: var.secret_env, and the keys its table entry asks for.
  function_secrets = {
    for name, fn in local.functions : name => merge(
      var.secret_env,
      lookup(fn, "webhook_key", false) ? local.webhook_secret_env : {},
      lookup(fn, "page_token_key", false) ? local.page_token_secret_env : {},
    )
  }
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_storage_bucket" "sources" {
  name                        = "${var.project_id}-${var.name}-sources"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Objects are named by content hash, so an overwrite never happens; versioning only guards against deletes.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_storage_bucket_object" "source" {
  for_each = local.functions

  bucket = google_storage_bucket.sources.name
  # A new name per content: a code change is a new object, and the function is rebuilt from it.
  name   = try(local.packages[each.key].zip, "${each.key}-missing.zip")
  source = "${local.package_dir}/${try(local.packages[each.key].zip, "${each.key}-missing.zip")}"

  lifecycle {
    # The function keeps building from the old object until it has moved to the new one.
    create_before_destroy = true

    precondition {
      condition     = contains(keys(local.packages), each.key)
      error_message = "No package for ${each.key} in ${local.package_dir}/manifest.json: run `make package` before planning."
    }
  }
}

# The function images: one repository of this product, the only one the build account may write to.
resource "google_artifact_registry_repository" "functions" {
  location      = var.region
  repository_id = "${var.name}-functions"
  format        = "DOCKER"
  description   = "Images of the Meet middleware functions, written by their builds."

  depends_on = [google_project_service.enabled]
}

resource "google_cloudfunctions2_function" "fn" {
  for_each = local.functions

  name        = each.key
  location    = var.region
  description = each.value.description

  build_config {
    runtime           = "python312"
    entry_point       = each.key
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id

    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    available_memory   = each.value.memory
    available_cpu      = each.value.cpu
    timeout_seconds    = each.value.timeout
    min_instance_count = lookup(var.min_instances, each.key, 0)
    # A lookup, not an index: a missing entry must reach the precondition below and its message.
    max_instance_count = lookup(var.max_instances, each.key, 0)
    # One connection per in-flight request, so a request never waits for the pool.
    max_instance_request_concurrency = var.db_pool_size
    # Public functions are reached by API Gateway over their public address, and IAM admits only the gateway's
    # account; internal ones accept only Cloud Tasks and Cloud Scheduler traffic of this project, which is why
    # that traffic goes to their run.app URL (local.internal_urls).
    ingress_settings               = each.value.public ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.runtime.email
    environment_variables          = local.function_env

    dynamic "secret_environment_variables" {
      for_each = local.function_secrets[each.key]
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  lifecycle {
    precondition {
      condition     = local.db_connection_budget <= var.db_max_connections - var.db_reserved_connections
      error_message = "sum(max_instances) x db_pool_size = ${local.db_connection_budget} exceeds db_max_connections - db_reserved_connections = ${var.db_max_connections - var.db_reserved_connections}."
    }
    precondition {
      condition     = contains(keys(var.max_instances), each.key)
      error_message = "max_instances has no entry for ${each.key}."
    }
    precondition {
      condition     = lookup(var.min_instances, each.key, 0) <= lookup(var.max_instances, each.key, 0)
      error_message = "min_instances.${each.key} exceeds max_instances.${each.key}."
    }
    precondition {
      condition     = alltrue([for name in keys(var.min_instances) : contains(keys(local.functions), name)])
      error_message = "min_instances names a function that does not exist: ${join(", ", [for name in keys(var.min_instances) : name if !contains(keys(local.functions), name)])}."
    }
  }

  # A function's build needs the build account's grants, and its first cold start the runtime account's, in
  # effect: the sleep waits for both after they are made (iam.tf).
  depends_on = [time_sleep.iam_propagation]
}

# The computed names and URLs above must be the ones Google assigned; a mismatch means tasks and sweeps miss
# their target. Checks warn after every plan and apply; a scoped data source cannot take for_each, hence one
# check per internal function.
check "run_services" {
  assert {
    condition     = alltrue([for name, fn in google_cloudfunctions2_function.fn : fn.service_config[0].service == local.run_services[name]])
    error_message = "A function's Cloud Run service name differs from the computed one: update local.run_services in functions.tf."
  }
}

check "check_status_url" {
  data "google_cloud_run_v2_service" "check_status" {
    name     = google_cloudfunctions2_function.fn["check_status"].service_config[0].service
    location = var.region
  }

  assert {
    condition     = contains(data.google_cloud_run_v2_service.check_status.urls, local.internal_urls["check_status"])
    error_message = "check_status does not serve at ${local.internal_urls["check_status"]}: its tasks and sweeps cannot reach it."
  }
}

check "sync_recordings_url" {
  data "google_cloud_run_v2_service" "sync_recordings" {
    name     = google_cloudfunctions2_function.fn["sync_recordings"].service_config[0].service
    location = var.region
  }

  assert {
    condition     = contains(data.google_cloud_run_v2_service.sync_recordings.urls, local.internal_urls["sync_recordings"])
    error_message = "sync_recordings does not serve at ${local.internal_urls["sync_recordings"]}: its tasks and sweeps cannot reach it."
  }
}

check "deliver_webhooks_url" {
  data "google_cloud_run_v2_service" "deliver_webhooks" {
    name     = google_cloudfunctions2_function.fn["deliver_webhooks"].service_config[0].service
    location = var.region
  }

  assert {
    condition     = contains(data.google_cloud_run_v2_service.deliver_webhooks.urls, local.internal_urls["deliver_webhooks"])
    error_message = "deliver_webhooks does not serve at ${local.internal_urls["deliver_webhooks"]}: its tasks and sweeps cannot reach it."
  }
}
