# One public base URL for the API. The OpenAPI 2.0 config is generated from shared/web/routes.py by
# `make gateway-spec` into generated/ (docs/decisions/0003-api-gateway-from-route-table.md); Terraform only fills
# in each function's URL. A placeholder without a URL here fails the plan, so the table and the functions
# cannot drift apart silently.
locals {
  # Each function at its deterministic run.app URL (functions.tf, local.public_urls): also the audience of the
  # gateway's ID token, which the functions check.
  gateway_spec = templatefile("${path.module}/generated/gateway-openapi.json.tftpl", {
    for name in keys(local.public_functions) : name => local.public_urls[name]
  })
}

resource "google_api_gateway_api" "api" {
  provider = google-beta

  api_id       = "${var.name}-api"
  display_name = "Meet middleware API"

  depends_on = [google_project_service.enabled]
}

resource "google_api_gateway_api_config" "api" {
  provider = google-beta

  api = google_api_gateway_api.api.api_id
  # Configs are immutable: every spec change creates a new one, and the gateway moves to it before the old
  # one is deleted.
  api_config_id_prefix = "${var.name}-"

  openapi_documents {
    document {
      path     = "openapi.json"
      contents = base64encode(local.gateway_spec)
    }
  }

  gateway_config {
    backend_config {
      google_service_account = google_service_account.gateway.email
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_api_gateway_gateway" "gateway" {
  provider = google-beta

  gateway_id   = "${var.name}-gateway"
  region       = var.gateway_region
  api_config   = google_api_gateway_api_config.api.id
  display_name = "Meet middleware"

  depends_on = [google_cloud_run_v2_service_iam_member.public_invoker, google_project_service.gateway_api]
}

# The API's own managed service must be enabled for the gateway to serve it. The service gets its first
# configuration with the first API config, and enabling it before that fails, so the enablement waits for it.
resource "google_project_service" "gateway_api" {
  project            = var.project_id
  service            = google_api_gateway_api.api.managed_service
  disable_on_destroy = false

  depends_on = [google_api_gateway_api_config.api]
}
