# The common interface's outputs.

output "hosts" {
  description = "Created VMs by name: the address Terroir reaches by SSH (public IP when the VM has one, else private), the private address and the roles."
  value = {
    for n, vm in var.vms : n => {
      address         = contains(vm.roles, "app") ? outscale_public_ip.app[n].public_ip : outscale_vm.this[n].private_ip
      private_address = outscale_vm.this[n].private_ip
      roles           = vm.roles
    }
  }
}

output "kubeconfig" {
  description = "Kubeconfig of the OKS cluster; null when there is none."
  value       = var.kubernetes == null ? null : outscale_oks_cluster.this[0].kubeconfig
  sensitive   = true
}

output "backup_bucket" {
  description = "Bucket receiving database backups; empty when none."
  value       = var.backup_bucket == "" ? "" : aws_s3_bucket.backup[0].bucket
}

output "backup_endpoint" {
  description = "S3 API endpoint of the backup bucket (Outscale Object Storage); empty when none."
  value       = var.backup_bucket == "" ? "" : local.oos_endpoint
}

output "qualified" {
  description = "Whether what this module creates in var.region is SecNumCloud-qualified, per Terroir's provider catalog."
  value       = contains(local.qualified_regions, var.region) && var.kubernetes == null
}

output "provider_name" {
  description = "The cloud provider of this module."
  value       = "outscale"
}
