# Terraform/OpenTofu and provider versions, and the provider's configuration.
#
# This module configures its provider itself, so that the root module needs no provider block and
# any module of terraform/modules/ can replace another. A module holding provider blocks must be
# called without count, for_each or depends_on.
#
# Credentials come from the environment only, never from these files: CLOUDTEMPLE_CLIENT_ID and
# CLOUDTEMPLE_SECRET_ID (a personal access token of the Cloud Temple console), and optionally
# CLOUDTEMPLE_HTTP_ADDR (the API host, shiva.cloud-temple.com by default).
terraform {
  required_version = ">= 1.6.3"

  required_providers {
    cloudtemple = {
      source = "Cloud-Temple/cloudtemple"
      # 1.9.0 needs Compute API v1.144.0 or later on the Cloud Temple side (provider changelog).
      version = "~> 1.0"
    }
  }
}

# The cloudtemple provider has no region argument: the region is where the tenant's virtual
# datacenter is (var.placement); var.region only says which Cloud Temple region that is, for the
# `qualified` output.
provider "cloudtemple" {}
