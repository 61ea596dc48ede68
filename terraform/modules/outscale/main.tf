# Platform on 3DS Outscale: a Net with a public and a private Subnet, an internet service and a NAT
# service, security groups, one VM per entry of var.vms (public IP for the app role), an OKS
# cluster when var.kubernetes is set, and a backup bucket in Outscale Object Storage.

locals {
  create_network = length(var.vms) > 0
  app_vms        = { for n, vm in var.vms : n => vm if contains(vm.roles, "app") }

  # One Subnet in the first Subregion of the region (for example cloudgouv-eu-west-1a).
  subregion = "${var.region}a"

  # network_cidr is split in four: app VMs (public), the other VMs (private), the OKS project's
  # own Net, and a quarter left free.
  public_subnet_cidr  = cidrsubnet(var.network_cidr, 2, 0)
  private_subnet_cidr = cidrsubnet(var.network_cidr, 2, 1)
  oks_project_cidr    = cidrsubnet(var.network_cidr, 2, 2)

  # Pod and Service ranges of the OKS cluster, inside the cluster only. They must not overlap
  # network_cidr; change them here if they do.
  oks_cidr_pods    = "10.91.0.0/16"
  oks_cidr_service = "10.92.0.0/16"

  # SecNumCloud: 3DS Outscale's IaaS is qualified in region cloudgouv-eu-west-1 (the project's
  # provider catalog, catalog/providers.yaml, checked November 2026); whether eu-west-2
  # is in scope is unverified, so it counts as not qualified. The catalog records only the IaaS: OKS is
  # not counted as qualified.
  qualified_regions = ["cloudgouv-eu-west-1"]

  oos_endpoint = "https://oos.${var.region}.outscale.com"

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

# Outscale's own most recent Debian 12 image (OMI), as in the provider's documentation.
data "outscale_image" "debian" {
  count = local.create_network ? 1 : 0

  filter {
    name   = "account_aliases"
    values = ["Outscale"]
  }
  filter {
    name   = "image_names"
    values = ["Debian-12-*"]
  }
  most_recent = true
}

# --------------------------------------------------------------------------------------- network

resource "outscale_net" "this" {
  count    = local.create_network ? 1 : 0
  ip_range = var.network_cidr

  tags {
    key   = "Name"
    value = var.name
  }
}

resource "outscale_subnet" "public" {
  count          = local.create_network ? 1 : 0
  net_id         = outscale_net.this[0].net_id
  ip_range       = local.public_subnet_cidr
  subregion_name = local.subregion

  tags {
    key   = "Name"
    value = "${var.name}-public"
  }
}

resource "outscale_subnet" "private" {
  count          = local.create_network ? 1 : 0
  net_id         = outscale_net.this[0].net_id
  ip_range       = local.private_subnet_cidr
  subregion_name = local.subregion

  tags {
    key   = "Name"
    value = "${var.name}-private"
  }
}

resource "outscale_internet_service" "this" {
  count = local.create_network ? 1 : 0

  tags {
    key   = "Name"
    value = var.name
  }
}

resource "outscale_internet_service_link" "this" {
  count               = local.create_network ? 1 : 0
  internet_service_id = outscale_internet_service.this[0].internet_service_id
  net_id              = outscale_net.this[0].net_id
}

resource "outscale_route_table" "public" {
  count  = local.create_network ? 1 : 0
  net_id = outscale_net.this[0].net_id

  tags {
    key   = "Name"
    value = "${var.name}-public"
  }
}

resource "outscale_route" "public_default" {
  count                = local.create_network ? 1 : 0
  destination_ip_range = "0.0.0.0/0"
  gateway_id           = outscale_internet_service.this[0].internet_service_id
  route_table_id       = outscale_route_table.public[0].route_table_id
  depends_on           = [outscale_internet_service_link.this]
}

resource "outscale_route_table_link" "public" {
  count          = local.create_network ? 1 : 0
  route_table_id = outscale_route_table.public[0].route_table_id
  subnet_id      = outscale_subnet.public[0].subnet_id
}

# The VMs without a public IP reach out (package mirror, SMTP relay, backups) through a NAT service.
resource "outscale_public_ip" "nat" {
  count = local.create_network ? 1 : 0

  tags {
    key   = "Name"
    value = "${var.name}-nat"
  }
}

resource "outscale_nat_service" "this" {
  count        = local.create_network ? 1 : 0
  subnet_id    = outscale_subnet.public[0].subnet_id
  public_ip_id = outscale_public_ip.nat[0].public_ip_id
  depends_on   = [outscale_route.public_default]

  tags {
    key   = "Name"
    value = var.name
  }
}

resource "outscale_route_table" "private" {
  count  = local.create_network ? 1 : 0
  net_id = outscale_net.this[0].net_id

  tags {
    key   = "Name"
    value = "${var.name}-private"
  }
}

resource "outscale_route" "private_default" {
  count                = local.create_network ? 1 : 0
  destination_ip_range = "0.0.0.0/0"
  nat_service_id       = outscale_nat_service.this[0].nat_service_id
  route_table_id       = outscale_route_table.private[0].route_table_id
}

resource "outscale_route_table_link" "private" {
  count          = local.create_network ? 1 : 0
  route_table_id = outscale_route_table.private[0].route_table_id
  subnet_id      = outscale_subnet.private[0].subnet_id
}

# ------------------------------------------------------------------------------- security groups

# Every VM: all traffic from inside network_cidr, SSH from admin_cidrs only.
resource "outscale_security_group" "base" {
  count               = local.create_network ? 1 : 0
  description         = "${var.name}: intra-network traffic and SSH from admin_cidrs"
  security_group_name = "${var.name}-base"
  net_id              = outscale_net.this[0].net_id

  tags {
    key   = "Name"
    value = "${var.name}-base"
  }
}

resource "outscale_security_group_rule" "intra_net" {
  count             = local.create_network ? 1 : 0
  flow              = "Inbound"
  security_group_id = outscale_security_group.base[0].security_group_id
  ip_protocol       = "-1"
  ip_range          = var.network_cidr
}

resource "outscale_security_group_rule" "ssh" {
  for_each          = local.create_network ? toset(var.admin_cidrs) : toset([])
  flow              = "Inbound"
  security_group_id = outscale_security_group.base[0].security_group_id
  ip_protocol       = "tcp"
  from_port_range   = 22
  to_port_range     = 22
  ip_range          = each.value
}

# VMs with the app role: public_ports open to the world.
resource "outscale_security_group" "app" {
  count               = length(local.app_vms) > 0 ? 1 : 0
  description         = "${var.name}: public ports of the app role"
  security_group_name = "${var.name}-app"
  net_id              = outscale_net.this[0].net_id

  tags {
    key   = "Name"
    value = "${var.name}-app"
  }
}

resource "outscale_security_group_rule" "app_public" {
  for_each          = length(local.app_vms) > 0 ? toset([for p in var.public_ports : tostring(p)]) : toset([])
  flow              = "Inbound"
  security_group_id = outscale_security_group.app[0].security_group_id
  ip_protocol       = "tcp"
  from_port_range   = tonumber(each.value)
  to_port_range     = tonumber(each.value)
  ip_range          = "0.0.0.0/0"
}

# ------------------------------------------------------------------------------------------- VMs

resource "outscale_vm" "this" {
  for_each = var.vms

  image_id  = data.outscale_image.debian[0].image_id
  vm_type   = each.value.instance_type
  subnet_id = contains(each.value.roles, "app") ? outscale_subnet.public[0].subnet_id : outscale_subnet.private[0].subnet_id
  security_group_ids = concat(
    [outscale_security_group.base[0].security_group_id],
    contains(each.value.roles, "app") ? [outscale_security_group.app[0].security_group_id] : [],
  )

  # cloud-init creates ssh_user with password-less sudo and installs ssh_public_key: no keypair.
  user_data = base64encode(local.user_data[each.key])

  # Root disk: /dev/sda1 is the root device of Outscale's OMIs.
  block_device_mappings {
    device_name = "/dev/sda1"
    bsu {
      volume_size           = each.value.disk_gb
      volume_type           = "gp2"
      delete_on_vm_deletion = true
    }
  }

  tags {
    key   = "Name"
    value = "${var.name}-${each.key}"
  }
  tags {
    key   = "terroir-roles"
    value = join(",", each.value.roles)
  }

  depends_on = [outscale_route_table_link.public, outscale_route_table_link.private, outscale_route.private_default]
}

resource "outscale_public_ip" "app" {
  for_each = local.app_vms

  tags {
    key   = "Name"
    value = "${var.name}-${each.key}"
  }
}

resource "outscale_public_ip_link" "app" {
  for_each  = local.app_vms
  vm_id     = outscale_vm.this[each.key].vm_id
  public_ip = outscale_public_ip.app[each.key].public_ip
}

# ------------------------------------------------------------------------ OKS (managed Kubernetes)

resource "outscale_oks_project" "this" {
  count  = var.kubernetes == null ? 0 : 1
  name   = var.name
  cidr   = local.oks_project_cidr
  region = var.region

  lifecycle {
    precondition {
      condition     = length(var.admin_cidrs) > 0
      error_message = "A Kubernetes cluster needs admin_cidrs: OKS only accepts API calls from the CIDR blocks of its admin_whitelist, and Terroir must reach the API."
    }
  }
}

resource "outscale_oks_cluster" "this" {
  count           = var.kubernetes == null ? 0 : 1
  project_id      = outscale_oks_project.this[0].id
  name            = var.name
  version         = var.kubernetes.version
  admin_whitelist = var.admin_cidrs
  cidr_pods       = local.oks_cidr_pods
  cidr_service    = local.oks_cidr_service
}

# OKS node pools are Kubernetes objects (NodePool, oks.dev/v1beta2), applied by the provider.
resource "outscale_oks_manifest" "nodepool" {
  count      = var.kubernetes == null ? 0 : 1
  cluster_id = outscale_oks_cluster.this[0].id
  manifest = yamlencode({
    apiVersion = "oks.dev/v1beta2"
    kind       = "NodePool"
    metadata   = { name = "${var.name}-pool" }
    spec = {
      desiredNodes = var.kubernetes.node_count
      nodeType     = var.kubernetes.node_type
      zones        = [local.subregion]
    }
  })

  wait_for = {
    fields = { "status.progress.ready" = tostring(var.kubernetes.node_count) }
  }
}

# ----------------------------------------------------------------------------------- backups

# The bucket is Outscale's, in Outscale Object Storage in var.region; the aws provider is only the
# S3 client that creates it.
resource "aws_s3_bucket" "backup" {
  count  = var.backup_bucket == "" ? 0 : 1
  bucket = var.backup_bucket
}

resource "aws_s3_bucket_versioning" "backup" {
  count  = var.backup_bucket == "" ? 0 : 1
  bucket = aws_s3_bucket.backup[0].id

  versioning_configuration {
    status = "Enabled"
  }
}
