# Terraform/OpenTofu and provider versions, and the providers' configuration.
#
# This module configures its providers itself, so that the root module needs no provider block
# and any module of terraform/modules/ can replace another. A module holding provider blocks must
# be called without count, for_each or depends_on.
#
# Credentials come from the environment only, never from these files:
#   OpenStack (instances, networks, security groups): the variables of the project's openrc file,
#     OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_ID (or OS_TENANT_ID), OS_USER_DOMAIN_NAME,
#     or OS_CLOUD naming an entry of clouds.yaml. The region is var.region, not OS_REGION_NAME.
#   OVHcloud API (managed Kubernetes, object storage): OVH_ENDPOINT (ovh-eu), then either
#     OVH_CLIENT_ID and OVH_CLIENT_SECRET (OAuth2 service account) or OVH_APPLICATION_KEY,
#     OVH_APPLICATION_SECRET and OVH_CONSUMER_KEY; and OVH_CLOUD_PROJECT_SERVICE, the Public
#     Cloud project ID, read by every ovh_cloud_project_* resource of this module.
terraform {
  required_version = ">= 1.6.3"

  required_providers {
    ovh = {
      source = "ovh/ovh"
      # 2.12.0: ovh_cloud_project_storage takes the project from OVH_CLOUD_PROJECT_SERVICE.
      version = "~> 2.12"
    }
    openstack = {
      source  = "terraform-provider-openstack/openstack"
      version = "~> 3.0"
    }
  }
}

# The ovh provider has no region argument: each ovh_cloud_project_* resource below names
# var.region itself.
provider "ovh" {}

provider "openstack" {
  region = var.region
}
