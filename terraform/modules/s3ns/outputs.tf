# The common interface's outputs.

output "hosts" {
  description = "Created VMs by name: the address Terroir reaches by SSH (external IP when the VM has one, else internal), the internal address and the roles."
  value = {
    for n, vm in var.vms : n => {
      address         = contains(vm.roles, "app") ? google_compute_instance.this[n].network_interface[0].access_config[0].nat_ip : google_compute_instance.this[n].network_interface[0].network_ip
      private_address = google_compute_instance.this[n].network_interface[0].network_ip
      roles           = vm.roles
    }
  }
}

output "kubeconfig" {
  description = "Kubeconfig of the GKE cluster (authenticating through gke-gcloud-auth-plugin); null when there is none."
  value       = local.kubeconfig
  sensitive   = true
}

output "backup_bucket" {
  description = "Bucket receiving database backups; empty when none."
  value       = var.backup_bucket == "" ? "" : google_storage_bucket.backup[0].name
}

output "backup_endpoint" {
  description = "S3-compatible endpoint (Cloud Storage XML API, HMAC keys) of the backup bucket; empty when none."
  value       = var.backup_bucket == "" ? "" : local.s3_endpoint
}

output "qualified" {
  description = "Whether what this module creates is SecNumCloud-qualified, per Terroir's provider catalog: S3NS PREMI3NS in u-france-east1."
  value       = local.qualified
}

output "provider_name" {
  description = "The cloud provider of this module."
  value       = "s3ns"
}
