# One queue for all per-meeting background work (status checks and recording syncs), TASKS_QUEUE.
#
# Sizing against Google quotas: a task makes a handful of Calendar/Meet/Drive calls, and every meeting of an
# organizer outside the domain runs as one delegated user (DEFAULT_CALENDAR_OWNER). Calendar allows 600
# requests per minute per user and 10,000 per project. At 2 dispatches/s (120 tasks a minute) and about three
# calls a task, the busiest user stays near 360 calls a minute, with room left for the API's own traffic.
# Concurrency stays within what the internal functions can take at once (max_instances x DB_POOL_SIZE).
resource "google_cloud_tasks_queue" "background" {
  name     = "${var.name}-background"
  location = var.region

  rate_limits {
    max_dispatches_per_second = var.tasks_max_dispatches_per_second
    max_concurrent_dispatches = var.tasks_max_concurrent_dispatches
  }

  # Recordings can take hours to appear, so a sync keeps trying for a day with backoff capped at an hour;
  # a handler answers 409 while another delivery of the same task is running, which lands here too.
  retry_config {
    max_attempts       = 50
    max_retry_duration = "86400s"
    min_backoff        = "30s"
    max_backoff        = "3600s"
    max_doublings      = 6
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.enabled]
}
