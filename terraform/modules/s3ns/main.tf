# Platform on S3NS (Cloud de Confiance, the Google-technology cloud run by S3NS): a VPC network and
# subnetwork, firewall rules, Cloud NAT, one Compute Engine VM per entry of var.vms (external IP for
# the app role), a GKE cluster when var.kubernetes is set, and a Cloud Storage bucket for backups.
#
# Cloud de Confiance differs from Google Cloud (documentation.s3ns.fr, "Compute Engine in Cloud de
# Confiance versus Google Cloud"): one region, u-france-east1, with zones -a, -b and -c; only the
# C3, M3 and A3 machine series (use instance types such as c3-standard-4); Hyperdisk Balanced as
# the only disk type; public images in projects prefixed s3ns-system:; no default network.

locals {
  create_network = length(var.vms) > 0
  app_vms        = { for n, vm in var.vms : n => vm if contains(vm.roles, "app") }
  zone           = "${var.region}-a"

  # SecNumCloud (Terroir's provider catalog, checked November 2026:
  # catalog/providers.yaml): S3NS's PREMI3NS offer, region u-france-east1, was qualified SecNumCloud
  # 3.2 on 2025-12-17 (reported by the press; to confirm on ANSSI's list). It covers IaaS, PaaS and
  # CaaS, so VMs, GKE and Cloud Storage count.
  qualified = var.region == "u-france-east1"

  # Cloud Storage's XML API, which S3 tools use with HMAC keys, in the S3NS universe
  # (documentation.s3ns.fr, Cloud Storage interoperability).
  s3_endpoint = "https://storage.s3nsapis.fr"

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

  gke = var.kubernetes == null ? null : (
    var.gke_autopilot ? {
      name     = google_container_cluster.autopilot[0].name
      endpoint = google_container_cluster.autopilot[0].endpoint
      ca       = google_container_cluster.autopilot[0].master_auth[0].cluster_ca_certificate
      } : {
      name     = google_container_cluster.standard[0].name
      endpoint = google_container_cluster.standard[0].endpoint
      ca       = google_container_cluster.standard[0].master_auth[0].cluster_ca_certificate
    }
  )

  # Authentication through gke-gcloud-auth-plugin (gcloud's credentials for the S3NS universe): the
  # kubeconfig holds no secret of its own.
  kubeconfig = local.gke == null ? null : yamlencode({
    apiVersion      = "v1"
    kind            = "Config"
    current-context = local.gke.name
    clusters = [{
      name = local.gke.name
      cluster = {
        server                     = "https://${local.gke.endpoint}"
        certificate-authority-data = local.gke.ca
      }
    }]
    users = [{
      name = local.gke.name
      user = {
        exec = {
          apiVersion         = "client.authentication.k8s.io/v1beta1"
          command            = "gke-gcloud-auth-plugin"
          provideClusterInfo = true
          installHint        = "Install gke-gcloud-auth-plugin (gcloud components install gke-gcloud-auth-plugin) and set GOOGLE_CLOUD_UNIVERSE_DOMAIN=s3nsapis.fr."
        }
      }
    }]
    contexts = [{
      name    = local.gke.name
      context = { cluster = local.gke.name, user = local.gke.name }
    }]
  })
}

# Debian 12 from the S3NS public image project (Compute Engine in Cloud de Confiance: Debian images
# are in s3ns-system:debian-cloud).
data "google_compute_image" "debian" {
  count   = local.create_network ? 1 : 0
  project = "s3ns-system:debian-cloud"
  family  = "debian-12"
}

# --------------------------------------------------------------------------------------- network

resource "google_compute_network" "this" {
  name                    = var.name
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "this" {
  name                     = var.name
  network                  = google_compute_network.this.id
  region                   = var.region
  ip_cidr_range            = var.network_cidr
  private_ip_google_access = true
}

# VMs without an external IP reach out (package mirror, SMTP relay) through Cloud NAT.
resource "google_compute_router" "this" {
  count   = local.create_network ? 1 : 0
  name    = "${var.name}-nat"
  network = google_compute_network.this.id
  region  = var.region
}

resource "google_compute_router_nat" "this" {
  count                              = local.create_network ? 1 : 0
  name                               = "${var.name}-nat"
  router                             = google_compute_router.this[0].name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"
}

# ---------------------------------------------------------------------------------- firewall rules

resource "google_compute_firewall" "internal" {
  name          = "${var.name}-internal"
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  source_ranges = [var.network_cidr]

  allow {
    protocol = "all"
  }
}

resource "google_compute_firewall" "ssh" {
  count         = length(var.admin_cidrs) > 0 ? 1 : 0
  name          = "${var.name}-ssh"
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  source_ranges = var.admin_cidrs
  target_tags   = ["${var.name}-vm"]

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}

resource "google_compute_firewall" "app" {
  count         = length(local.app_vms) > 0 && length(var.public_ports) > 0 ? 1 : 0
  name          = "${var.name}-app"
  network       = google_compute_network.this.id
  direction     = "INGRESS"
  source_ranges = ["0.0.0.0/0"]
  target_tags   = ["${var.name}-app"]

  allow {
    protocol = "tcp"
    ports    = [for p in var.public_ports : tostring(p)]
  }
}

# ------------------------------------------------------------------------------------------- VMs

resource "google_compute_instance" "this" {
  for_each     = var.vms
  name         = "${var.name}-${each.key}"
  machine_type = each.value.instance_type
  zone         = local.zone
  tags         = concat(["${var.name}-vm"], contains(each.value.roles, "app") ? ["${var.name}-app"] : [])

  labels = {
    terroir-platform = var.name
    terroir-roles    = join("_", each.value.roles)
  }

  boot_disk {
    initialize_params {
      image = data.google_compute_image.debian[0].self_link
      size  = each.value.disk_gb
      type  = "hyperdisk-balanced"
    }
  }

  network_interface {
    subnetwork = google_compute_subnetwork.this.id

    dynamic "access_config" {
      for_each = contains(each.value.roles, "app") ? [1] : []
      content {}
    }
  }

  # user-data is read by images that run cloud-init; Debian's images run the guest environment
  # instead, which creates ssh_user with password-less sudo from ssh-keys. Both say the same.
  metadata = merge(
    {
      user-data              = local.user_data[each.key]
      block-project-ssh-keys = "TRUE"
    },
    var.ssh_public_key == "" ? {} : { ssh-keys = "${var.ssh_user}:${trimspace(var.ssh_public_key)}" },
  )

  allow_stopping_for_update = true

  depends_on = [google_compute_router_nat.this]
}

# ------------------------------------------------------------------------------------------- GKE

resource "google_container_cluster" "autopilot" {
  count            = var.kubernetes != null && var.gke_autopilot ? 1 : 0
  name             = var.name
  location         = var.region
  enable_autopilot = true
  network          = google_compute_network.this.id
  subnetwork       = google_compute_subnetwork.this.id

  min_master_version = var.kubernetes.version

  ip_allocation_policy {}

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.admin_cidrs
      content {
        cidr_block   = cidr_blocks.value
        display_name = "admin"
      }
    }
  }

  # Set to false, and apply, before destroying the cluster.
  deletion_protection = true

  lifecycle {
    precondition {
      condition     = length(var.admin_cidrs) > 0
      error_message = "A Kubernetes cluster needs admin_cidrs: the API server only accepts the networks of master_authorized_networks_config, and Terroir must reach it."
    }
  }
}

resource "google_container_cluster" "standard" {
  count      = var.kubernetes != null && !var.gke_autopilot ? 1 : 0
  name       = var.name
  location   = var.region
  network    = google_compute_network.this.id
  subnetwork = google_compute_subnetwork.this.id

  min_master_version       = var.kubernetes.version
  remove_default_node_pool = true
  initial_node_count       = 1

  ip_allocation_policy {}

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.admin_cidrs
      content {
        cidr_block   = cidr_blocks.value
        display_name = "admin"
      }
    }
  }

  # The default pool is removed at once, but it is created first: give it the only disk type.
  node_config {
    disk_type = "hyperdisk-balanced"
  }

  # Set to false, and apply, before destroying the cluster.
  deletion_protection = true

  lifecycle {
    precondition {
      condition     = length(var.admin_cidrs) > 0
      error_message = "A Kubernetes cluster needs admin_cidrs: the API server only accepts the networks of master_authorized_networks_config, and Terroir must reach it."
    }
  }
}

resource "google_container_node_pool" "standard" {
  count    = var.kubernetes != null && !var.gke_autopilot ? 1 : 0
  name     = "${var.name}-pool"
  cluster  = google_container_cluster.standard[0].id
  location = var.region

  # One zone, so that node_count is the total number of nodes.
  node_locations = [local.zone]
  node_count     = var.kubernetes.node_count

  node_config {
    machine_type = var.kubernetes.node_type
    disk_type    = "hyperdisk-balanced"
    oauth_scopes = ["https://www.googleapis.com/auth/cloud-platform"]
  }
}

check "autopilot_sizing" {
  assert {
    condition     = var.kubernetes == null || !var.gke_autopilot
    error_message = "GKE Autopilot sizes its nodes itself: kubernetes.node_count and kubernetes.node_type are not used."
  }
}

# ----------------------------------------------------------------------------------- backups

resource "google_storage_bucket" "backup" {
  count                       = var.backup_bucket == "" ? 0 : 1
  name                        = var.backup_bucket
  location                    = upper(var.region)
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }
}
