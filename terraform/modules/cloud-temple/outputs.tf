# The common interface's outputs.

output "hosts" {
  description = "Created VMs by name: the address Terroir reaches by SSH (the static private address: this module creates no public IP), the private address and the roles."
  value = {
    for n, vm in var.vms : n => {
      address         = local.vm_address[n]
      private_address = local.vm_address[n]
      roles           = vm.roles
    }
  }
  depends_on = [cloudtemple_compute_virtual_machine.this]
}

output "kubeconfig" {
  description = "Always null: the cloudtemple provider offers no managed Kubernetes."
  value       = null
  sensitive   = true
}

output "backup_bucket" {
  description = "Bucket receiving database backups; empty when none."
  value       = var.backup_bucket == "" ? "" : cloudtemple_object_storage_bucket.backup[0].name
}

output "backup_endpoint" {
  description = "S3 API endpoint URL of the backup bucket, as Cloud Temple reports it; empty when none."
  value       = var.backup_bucket == "" ? "" : cloudtemple_object_storage_bucket.backup[0].endpoint
}

output "qualified" {
  description = "Whether what this module creates is SecNumCloud-qualified, per Terroir's provider catalog: the Secure Temple IaaS in region fr1."
  value       = local.qualified
}

output "provider_name" {
  description = "The cloud provider of this module."
  value       = "cloud-temple"
}
