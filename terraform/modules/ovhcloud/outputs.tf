# The common interface's outputs.

output "hosts" {
  description = "Created VMs by name: the address Terroir reaches by SSH (floating IP when the VM has one, else private), the private address and the roles."
  value = {
    for n, vm in var.vms : n => {
      address         = contains(vm.roles, "app") ? openstack_networking_floatingip_v2.app[n].address : openstack_networking_port_v2.vm[n].all_fixed_ips[0]
      private_address = openstack_networking_port_v2.vm[n].all_fixed_ips[0]
      roles           = vm.roles
    }
  }
}

output "kubeconfig" {
  description = "Kubeconfig of the Managed Kubernetes cluster; null when there is none."
  value       = var.kubernetes == null ? null : ovh_cloud_project_kube.this[0].kubeconfig
  sensitive   = true
}

output "backup_bucket" {
  description = "Bucket receiving database backups; empty when none."
  value       = var.backup_bucket == "" ? "" : ovh_cloud_project_storage.backup[0].name
}

output "backup_endpoint" {
  description = "S3 API endpoint of the backup bucket (OVHcloud Object Storage); empty when none."
  value       = var.backup_bucket == "" ? "" : local.s3_endpoint
}

output "qualified" {
  description = "Whether what this module creates is SecNumCloud-qualified, per Terroir's provider catalog: never in a Public Cloud region."
  value       = local.qualified
}

output "provider_name" {
  description = "The cloud provider of this module."
  value       = "ovhcloud"
}
