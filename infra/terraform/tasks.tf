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

# Webhook deliveries, WEBHOOK_TASKS_QUEUE: one task per attempt. The retry schedule the contract promises (about
# 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) is kept by deliver_webhooks itself, which answers 2xx for every attempt
# it made, whatever the receiver said, and enqueues the next attempt at its time. This queue's own retries only
# cover the function failing (the database unavailable, an instance dying): short, and bounded, because the
# sweep (every 5 minutes) re-enqueues any delivery whose attempt is overdue. Deliveries make no Google calls, so
# the rate is the receivers' concern; concurrency stays within deliver_webhooks' max_instances x DB_POOL_SIZE.
resource "google_cloud_tasks_queue" "webhooks" {
  name     = "${var.name}-webhooks"
  location = var.region

  rate_limits {
    max_dispatches_per_second = var.webhook_max_dispatches_per_second
    max_concurrent_dispatches = var.webhook_max_concurrent_dispatches
  }

  retry_config {
    max_attempts       = 10
    max_retry_duration = "3600s"
    min_backoff        = "5s"
    max_backoff        = "600s"
    max_doublings      = 5
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [google_project_service.enabled]
}
