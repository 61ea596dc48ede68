# Terraform/OpenTofu and provider versions, and the provider's configuration.
#
# This module configures its provider itself, so that the root module needs no provider block and
# any module of terraform/modules/ can replace another. A module holding provider blocks must be
# called without count, for_each or depends_on.
#
# Credentials come from the environment only, never from these files:
#   GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_CREDENTIALS): a service account key or a Workforce
#     Identity Federation credential file of the S3NS universe, and
#   GOOGLE_PROJECT: the project, with its universe prefix (s3ns:my-project).
# gcloud, and the gke-gcloud-auth-plugin used by the kubeconfig output, also need
# GOOGLE_CLOUD_UNIVERSE_DOMAIN=s3nsapis.fr (or `gcloud config set universe_domain s3nsapis.fr`).
terraform {
  required_version = ">= 1.6.3"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }
}

provider "google" {
  universe_domain = "s3nsapis.fr"
  region          = var.region
  zone            = "${var.region}-a"
}
