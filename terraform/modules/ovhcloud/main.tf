# Platform on OVHcloud: an OpenStack private network routed to OVHcloud's external network, security
# groups, one OpenStack instance per entry of var.vms (floating IP for the app role), a Managed
# Kubernetes Service cluster with one node pool when var.kubernetes is set, and an S3 bucket of
# OVHcloud Object Storage for backups.
#
# var.region is an OpenStack region of the project, for example GRA11, SBG5 or EU-WEST-PAR.

locals {
  create_network = length(var.vms) > 0
  app_vms        = { for n, vm in var.vms : n => vm if contains(vm.roles, "app") }

  # OVHcloud's external network and floating IP pool in Public Cloud regions.
  external_network = "Ext-Net"

  # OVHcloud's Public Cloud Debian 12 image. Check the name with `openstack image list` in a
  # SecNumCloud offer, whose image catalogue may differ.
  image_name = "Debian 12"

  # Object storage regions are named without the digits of the OpenStack region: GRA11 -> GRA,
  # EU-WEST-PAR -> EU-WEST-PAR. Its S3 endpoint is https://s3.<region>.io.cloud.ovh.net.
  storage_region = upper(regex("^[A-Za-z]+(?:-[A-Za-z]+)*", var.region))
  s3_endpoint    = "https://s3.${lower(local.storage_region)}.io.cloud.ovh.net"

  # SecNumCloud (Terroir's provider catalog, checked November 2026:
  # catalog/providers.yaml): no OVHcloud Public Cloud region is qualified; the qualified offers are
  # Hosted Private Cloud SecNumCloud (VMware) and Bare Metal Pod SecNumCloud (OpenStack Ironic).
  # Managed Kubernetes and object storage are Public Cloud services, so only VMs created in a
  # SecNumCloud offer count.
  qualified = var.secnumcloud_offer && var.kubernetes == null && var.backup_bucket == ""

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
}

data "openstack_images_image_v2" "debian" {
  count       = local.create_network ? 1 : 0
  name        = local.image_name
  most_recent = true
}

data "openstack_networking_network_v2" "external" {
  count    = local.create_network ? 1 : 0
  name     = local.external_network
  external = true
}

# --------------------------------------------------------------------------------------- network

resource "openstack_networking_network_v2" "this" {
  count          = local.create_network ? 1 : 0
  name           = var.name
  admin_state_up = true
}

resource "openstack_networking_subnet_v2" "this" {
  count      = local.create_network ? 1 : 0
  name       = var.name
  network_id = openstack_networking_network_v2.this[0].id
  cidr       = var.network_cidr
  ip_version = 4
}

# The router gives every VM outbound access (source NAT) and carries the floating IPs.
resource "openstack_networking_router_v2" "this" {
  count               = local.create_network ? 1 : 0
  name                = var.name
  external_network_id = data.openstack_networking_network_v2.external[0].id
}

resource "openstack_networking_router_interface_v2" "this" {
  count     = local.create_network ? 1 : 0
  router_id = openstack_networking_router_v2.this[0].id
  subnet_id = openstack_networking_subnet_v2.this[0].id
}

# ------------------------------------------------------------------------------- security groups

# Every VM: all traffic from inside network_cidr, SSH from admin_cidrs only. OpenStack security
# groups allow all egress by default.
resource "openstack_networking_secgroup_v2" "base" {
  count       = local.create_network ? 1 : 0
  name        = "${var.name}-base"
  description = "${var.name}: intra-network traffic and SSH from admin_cidrs"
}

resource "openstack_networking_secgroup_rule_v2" "intra_net" {
  count             = local.create_network ? 1 : 0
  direction         = "ingress"
  ethertype         = "IPv4"
  remote_ip_prefix  = var.network_cidr
  security_group_id = openstack_networking_secgroup_v2.base[0].id
}

resource "openstack_networking_secgroup_rule_v2" "ssh" {
  for_each          = local.create_network ? toset(var.admin_cidrs) : toset([])
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "tcp"
  port_range_min    = 22
  port_range_max    = 22
  remote_ip_prefix  = each.value
  security_group_id = openstack_networking_secgroup_v2.base[0].id
}

# VMs with the app role: public_ports open to the world.
resource "openstack_networking_secgroup_v2" "app" {
  count       = length(local.app_vms) > 0 ? 1 : 0
  name        = "${var.name}-app"
  description = "${var.name}: public ports of the app role"
}

resource "openstack_networking_secgroup_rule_v2" "app_public" {
  for_each          = length(local.app_vms) > 0 ? toset([for p in var.public_ports : tostring(p)]) : toset([])
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "tcp"
  port_range_min    = tonumber(each.value)
  port_range_max    = tonumber(each.value)
  remote_ip_prefix  = "0.0.0.0/0"
  security_group_id = openstack_networking_secgroup_v2.app[0].id
}

# ------------------------------------------------------------------------------------------- VMs

resource "openstack_networking_port_v2" "vm" {
  for_each   = var.vms
  name       = "${var.name}-${each.key}"
  network_id = openstack_networking_network_v2.this[0].id
  security_group_ids = concat(
    [openstack_networking_secgroup_v2.base[0].id],
    contains(each.value.roles, "app") ? [openstack_networking_secgroup_v2.app[0].id] : [],
  )

  fixed_ip {
    subnet_id = openstack_networking_subnet_v2.this[0].id
  }
}

resource "openstack_compute_instance_v2" "this" {
  for_each    = var.vms
  name        = "${var.name}-${each.key}"
  flavor_name = each.value.instance_type

  # cloud-init creates ssh_user with password-less sudo and installs ssh_public_key: no key pair.
  user_data = local.user_data[each.key]

  metadata = {
    terroir-roles = join(",", each.value.roles)
  }

  # Boot from a volume of disk_gb GiB made from the image, so that the root disk size does not
  # depend on the flavor.
  block_device {
    uuid                  = data.openstack_images_image_v2.debian[0].id
    source_type           = "image"
    destination_type      = "volume"
    volume_size           = each.value.disk_gb
    boot_index            = 0
    delete_on_termination = true
  }

  network {
    port = openstack_networking_port_v2.vm[each.key].id
  }

  depends_on = [openstack_networking_router_interface_v2.this]
}

resource "openstack_networking_floatingip_v2" "app" {
  for_each = local.app_vms
  pool     = local.external_network
  port_id  = openstack_networking_port_v2.vm[each.key].id

  depends_on = [openstack_networking_router_interface_v2.this, openstack_compute_instance_v2.this]
}

# ---------------------------------------------------- Managed Kubernetes Service (Public Cloud)

resource "ovh_cloud_project_kube" "this" {
  count   = var.kubernetes == null ? 0 : 1
  name    = var.name
  region  = var.region
  version = var.kubernetes.version

  lifecycle {
    precondition {
      condition     = !var.secnumcloud_offer
      error_message = "OVHcloud Managed Kubernetes is a Public Cloud service, not part of the SecNumCloud offers: with secnumcloud_offer = true, use deploy: vms."
    }
    precondition {
      condition     = length(var.admin_cidrs) > 0
      error_message = "A Kubernetes cluster needs admin_cidrs: the cluster's API is restricted to them (an empty restriction list would open it to everyone), and Terroir must reach it."
    }
  }
}

resource "ovh_cloud_project_kube_iprestrictions" "this" {
  count   = var.kubernetes == null ? 0 : 1
  kube_id = ovh_cloud_project_kube.this[0].id
  ips     = var.admin_cidrs
}

resource "ovh_cloud_project_kube_nodepool" "this" {
  count         = var.kubernetes == null ? 0 : 1
  kube_id       = ovh_cloud_project_kube.this[0].id
  name          = "${var.name}-pool"
  flavor_name   = var.kubernetes.node_type
  desired_nodes = var.kubernetes.node_count
  min_nodes     = var.kubernetes.node_count
  max_nodes     = var.kubernetes.node_count
}

# ----------------------------------------------------------------------------------- backups

# OVHcloud Object Storage (S3 API), a Public Cloud service of the project in OVH_CLOUD_PROJECT_SERVICE.
resource "ovh_cloud_project_storage" "backup" {
  count       = var.backup_bucket == "" ? 0 : 1
  name        = var.backup_bucket
  region_name = local.storage_region

  versioning = {
    status = "enabled"
  }
}

check "secnumcloud" {
  assert {
    condition     = !var.secnumcloud_offer || var.backup_bucket == ""
    error_message = "secnumcloud_offer is true but backup_bucket creates an OVHcloud Public Cloud Object Storage bucket, which is not SecNumCloud-qualified: `qualified` is false. Keep backups in a qualified S3 store and leave backup_bucket empty."
  }
}
