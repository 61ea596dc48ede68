# Platform on Cloud Temple's VMware IaaS (the Secure Temple IaaS offer): one VM per entry of
# var.vms, deployed from a marketplace image into the tenant's virtual datacenter, configured by
# cloud-init with a static address of network_cidr, and a private object storage bucket for
# backups.
#
# What the cloudtemple provider does not manage, and this module therefore does not create:
# networks (VLANs and their port groups are provisioned by Cloud Temple), firewall rules (no
# firewall or security group resource exists in the provider), public IPs on the VMware IaaS, and
# managed Kubernetes (no resource exists; Cloud Temple's OpenShift PaaS is ordered separately).

locals {
  create_vms = length(var.vms) > 0
  app_vms    = { for n, vm in var.vms : n => vm if contains(vm.roles, "app") }

  # Static addresses from network_cidr, in the order of the VM names: .10, .11, ...
  vm_address = { for i, n in sort(keys(var.vms)) : n => cidrhost(var.network_cidr, 10 + i) }
  prefix_len = split("/", var.network_cidr)[1]
  gateway    = var.placement.gateway != "" ? var.placement.gateway : cidrhost(var.network_cidr, 1)

  # instance_type gives vCPUs and GiB of memory as cNrM, the Outscale convention
  # (c4r8 = 4 vCPUs, 8 GiB; tinav6.c4r8p2 reads the same).
  sizing = {
    for n, vm in var.vms : n => {
      cpu          = try(tonumber(regex("c([0-9]+)r([0-9]+)", vm.instance_type)[0]), null)
      memory_bytes = try(tonumber(regex("c([0-9]+)r([0-9]+)", vm.instance_type)[1]) * 1024 * 1024 * 1024, null)
    }
  }

  # SecNumCloud (Terroir's provider catalog, checked November 2026:
  # catalog/providers.yaml): Cloud Temple's Secure Temple IaaS is qualified since 2022; the
  # project's catalog places it in region fr1 (example zone fr1-az01). This module only uses that
  # IaaS (VMware VMs and its object storage).
  qualified = can(regex("^fr1($|-)", var.region))

  cloud_user = merge(
    {
      name        = var.ssh_user
      groups      = "sudo"
      shell       = "/bin/bash"
      sudo        = "ALL=(ALL) NOPASSWD:ALL"
      lock_passwd = true
    },
    var.ssh_public_key == "" ? {} : { ssh_authorized_keys = [trimspace(var.ssh_public_key)] },
  )

  user_data = {
    for n, vm in var.vms : n => "#cloud-config\n${yamlencode({
      hostname          = n
      preserve_hostname = false
      users             = ["default", local.cloud_user]
    })}"
  }

  # cloud-init network configuration, version 2. The interface is matched by name ("e*": ens192
  # and the like on VMware) because its name depends on the image.
  network_config = {
    for n, vm in var.vms : n => yamlencode({
      version = 2
      ethernets = {
        primary = merge(
          {
            match     = { name = "e*" }
            addresses = ["${local.vm_address[n]}/${local.prefix_len}"]
            routes    = [{ to = "default", via = local.gateway }]
          },
          length(var.placement.dns_servers) == 0 ? {} : { nameservers = { addresses = var.placement.dns_servers } },
        )
      }
    })
  }

  datacenters = local.create_vms ? [
    for d in data.cloudtemple_compute_virtual_datacenters.all[0].virtual_datacenters : d
    if var.placement.datacenter == "" || d.name == var.placement.datacenter
  ] : []
  datacenter_id = local.create_vms ? local.datacenters[0].id : null

  host_clusters = local.create_vms ? [
    for c in data.cloudtemple_compute_host_clusters.this[0].host_clusters : c
    if var.placement.host_cluster == "" || c.name == var.placement.host_cluster
  ] : []
  datastores = local.create_vms ? [
    for d in data.cloudtemple_compute_datastores.this[0].datastores : d
    if var.placement.datastore == "" || d.name == var.placement.datastore
  ] : []
  networks = local.create_vms ? [
    for w in data.cloudtemple_compute_networks.this[0].networks : w
    if var.placement.network == "" || w.name == var.placement.network
  ] : []
}

# ----------------------------------------------------------------------------- placement lookups

data "cloudtemple_compute_virtual_datacenters" "all" {
  count = local.create_vms ? 1 : 0

  lifecycle {
    postcondition {
      condition     = length([for d in self.virtual_datacenters : d if var.placement.datacenter == "" || d.name == var.placement.datacenter]) == 1
      error_message = "Cannot choose a virtual datacenter: set placement.datacenter to the name of exactly one of those the credentials can see (${join(", ", self.virtual_datacenters[*].name)})."
    }
  }
}

data "cloudtemple_compute_host_clusters" "this" {
  count         = local.create_vms ? 1 : 0
  datacenter_id = local.datacenter_id

  lifecycle {
    postcondition {
      condition     = length([for c in self.host_clusters : c if var.placement.host_cluster == "" || c.name == var.placement.host_cluster]) == 1
      error_message = "Cannot choose a host cluster: set placement.host_cluster to the name of exactly one of ${join(", ", self.host_clusters[*].name)}."
    }
  }
}

data "cloudtemple_compute_datastores" "this" {
  count           = local.create_vms ? 1 : 0
  datacenter_id   = local.datacenter_id
  host_cluster_id = local.host_clusters[0].id

  lifecycle {
    postcondition {
      condition     = length([for d in self.datastores : d if var.placement.datastore == "" || d.name == var.placement.datastore]) == 1
      error_message = "Cannot choose a datastore: set placement.datastore to the name of exactly one of ${join(", ", self.datastores[*].name)}."
    }
  }
}

data "cloudtemple_compute_networks" "this" {
  count           = local.create_vms ? 1 : 0
  datacenter_id   = local.datacenter_id
  host_cluster_id = local.host_clusters[0].id

  lifecycle {
    postcondition {
      condition     = length([for w in self.networks : w if var.placement.network == "" || w.name == var.placement.network]) == 1
      error_message = "Cannot choose a network: set placement.network to the name of exactly one of ${join(", ", self.networks[*].name)} (the VLAN whose subnet is network_cidr)."
    }
  }
}

data "cloudtemple_marketplace_item" "image" {
  count = local.create_vms && var.placement.image != "" ? 1 : 0
  name  = var.placement.image
}

# ------------------------------------------------------------------------------------------- VMs

resource "cloudtemple_compute_virtual_machine" "this" {
  for_each = var.vms
  name     = "${var.name}-${each.key}"

  cpu                  = local.sizing[each.key].cpu
  num_cores_per_socket = 1
  memory               = local.sizing[each.key].memory_bytes

  datacenter_id   = local.datacenter_id
  host_cluster_id = local.host_clusters[0].id
  datastore_id    = local.datastores[0].id

  marketplace_item_id = data.cloudtemple_marketplace_item.image[0].id
  power_state         = "on"

  # The OS disk of the deployed image, grown to disk_gb (vSphere cannot shrink a disk).
  os_disk {
    capacity = each.value.disk_gb * 1024 * 1024 * 1024
  }

  os_network_adapter {
    network_id   = local.networks[0].id
    auto_connect = true
  }

  # cloud-init (OVF datasource): ssh_user with password-less sudo and ssh_public_key, and the
  # static address. Runs at first boot only, and needs an image with cloud-init.
  cloud_init = {
    user-data      = base64encode(local.user_data[each.key])
    network-config = base64encode(local.network_config[each.key])
  }

  tags = {
    terroir-platform = var.name
    terroir-roles    = join(",", each.value.roles)
  }

  lifecycle {
    precondition {
      condition     = var.placement.image != ""
      error_message = "Set placement.image to the name of a marketplace item of a Debian image with cloud-init (list them with the cloudtemple_marketplace_items data source or in the console)."
    }
    precondition {
      condition     = local.sizing[each.key].cpu != null
      error_message = "instance_type of VM ${each.key} must give vCPUs and GiB of memory as cNrM, for example c4r8 (4 vCPUs, 8 GiB)."
    }
  }
}

# -------------------------------------------------------------------------- managed Kubernetes

# There is no managed Kubernetes in the cloudtemple provider: refuse rather than invent one.
resource "terraform_data" "no_kubernetes" {
  count = var.kubernetes == null ? 0 : 1

  lifecycle {
    precondition {
      condition     = var.kubernetes == null
      error_message = "The Cloud Temple provider has no managed Kubernetes resource: use deploy: vms, or provision a cluster (for example Cloud Temple's OpenShift PaaS) out of band and use the kubernetes target."
    }
  }
}

# ----------------------------------------------------------------------------------- backups

resource "cloudtemple_object_storage_bucket" "backup" {
  count       = var.backup_bucket == "" ? 0 : 1
  name        = var.backup_bucket
  access_type = "private"

  # Versioning is left out: the provider documents that it can only be set on a bucket reachable
  # from the Cloud Temple console. Grant a storage account access with
  # cloudtemple_object_storage_acl_entry for the backup job.

  lifecycle {
    precondition {
      condition     = can(regex("^[A-Za-z0-9_-]+$", var.backup_bucket))
      error_message = "Cloud Temple bucket names allow letters, digits, hyphens and underscores only."
    }
  }
}

# ------------------------------------------------------------------------------ firewall notice

check "firewall_not_managed" {
  assert {
    condition     = length(var.admin_cidrs) == 0 && length(local.app_vms) == 0
    error_message = "The cloudtemple provider has no firewall resource: admin_cidrs (SSH) and public_ports (app VMs) are NOT enforced by this module. Ask Cloud Temple to open exactly these flows on the platform's VLAN: SSH from ${join(", ", var.admin_cidrs)}; TCP ${join(", ", [for p in var.public_ports : tostring(p)])} to ${join(", ", [for n in keys(local.app_vms) : local.vm_address[n]])}."
  }
}
