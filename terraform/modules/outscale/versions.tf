# Terraform/OpenTofu and provider versions, and the providers' configuration.
#
# This module configures its providers itself, so that the root module needs no provider block
# and any module of terraform/modules/ can replace another. A module holding provider blocks must
# be called without count, for_each or depends_on.
#
# Credentials come from the environment only, never from these files:
#   OSC_ACCESS_KEY, OSC_SECRET_KEY                 the Outscale API (VMs, network, OKS)
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY       Outscale Object Storage (OOS) through its S3 API;
#                                                  the same Outscale access key, under S3 names
#   AWS_REQUEST_CHECKSUM_CALCULATION=when_required and AWS_RESPONSE_CHECKSUM_VALIDATION=when_required,
#                                                  which OOS needs with recent AWS SDKs
terraform {
  required_version = ">= 1.6.3"

  required_providers {
    outscale = {
      source = "outscale/outscale"
      # 1.7.0 added the outscale_oks_manifest resource, used here for the OKS node pool.
      version = "~> 1.7"
    }
    aws = {
      # Only the S3 client for Outscale Object Storage: the bucket is Outscale's, in var.region.
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}

provider "outscale" {
  api {
    region = var.region
  }
  oks {
    region = var.region
  }
}

# The S3 API of Outscale Object Storage (OOS), not Amazon: every AWS-only check is skipped and
# the only endpoint is https://oos.<region>.outscale.com.
provider "aws" {
  region = var.region

  endpoints {
    s3 = "https://oos.${var.region}.outscale.com"
  }

  s3_use_path_style           = true
  skip_credentials_validation = true
  skip_region_validation      = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}
