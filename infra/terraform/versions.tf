# Provider majors are pinned so a `terraform init` months from now resolves the same resource schemas; the
# exact versions land in .terraform.lock.hcl, which is committed after the first init.
terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.14"
    }
    # API Gateway resources exist only in the beta provider.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.14"
    }
    # time_sleep: IAM grants are eventually consistent, so the functions wait for them (iam.tf).
    time = {
      source  = "hashicorp/time"
      version = "~> 0.12"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = {
    app = var.name
  }
}

provider "google-beta" {
  project = var.project_id
  region  = var.region

  default_labels = {
    app = var.name
  }
}
