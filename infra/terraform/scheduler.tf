# Sweeps that catch whatever a task missed. Each posts `{}` with an OIDC token of the invoker account to the
# internal function's run.app URL (functions.tf: the only URL at which Scheduler counts as internal traffic),
# which is also the token's audience and one the function accepts.
locals {
  sweeps = {
    check_status     = "*/5 * * * *"
    sync_recordings  = "*/30 * * * *"
    deliver_webhooks = "*/5 * * * *"
  }
}

resource "google_cloud_scheduler_job" "sweep" {
  for_each = local.sweeps

  name        = "${replace(each.key, "_", "-")}-sweep"
  description = "Sweep of ${each.key}: meetings that are due, one task each."
  region      = var.region
  schedule    = each.value
  time_zone   = "Etc/UTC"
  # Slightly longer than the function's own timeout, so Scheduler never gives up on a sweep still running.
  attempt_deadline = "${local.functions[each.key].timeout + 30}s"

  # A missed sweep is simply done by the next one; retrying would only overlap with it.
  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = local.internal_urls[each.key]
    body        = base64encode("{}")
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = local.internal_urls[each.key]
    }
  }

  # The URL is computed, not read from the function, so the order is stated: no sweep before its function.
  depends_on = [google_cloudfunctions2_function.fn, google_cloud_run_v2_service_iam_member.internal_invoker]
}
