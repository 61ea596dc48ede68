# The common interface: every module under terraform/modules/ takes exactly these inputs, so the
# root module rendered by Terroir can call any of them.

variable "name" {
  description = "Platform name; prefixes every resource this module creates."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$", var.name))
    error_message = "name must be 1 to 40 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen (some provider resources accept no more)."
  }
}

variable "region" {
  description = "Provider region."
  type        = string
}

variable "network_cidr" {
  description = "Private IPv4 network of the platform, /24 or larger."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.network_cidr)) && tonumber(split("/", var.network_cidr)[1]) <= 24
    error_message = "network_cidr must be an IPv4 CIDR block of prefix length /24 or shorter, for example 10.42.0.0/16."
  }
}

variable "vms" {
  description = "Virtual machines by name, with their instance type, roles (app, database, mta, monitoring) and root disk size in GiB."
  type = map(object({
    instance_type = string
    roles         = list(string)
    disk_gb       = number
  }))
  default = {}

  validation {
    condition     = alltrue([for n in keys(var.vms) : can(regex("^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$", n))])
    error_message = "Every VM name must be a DNS label of at most 32 characters: lowercase letters, digits and hyphens, starting with a letter."
  }

  validation {
    condition     = alltrue(flatten([for vm in values(var.vms) : [for r in vm.roles : contains(["app", "database", "mta", "monitoring"], r)]]))
    error_message = "Every VM role must be one of app, database, mta or monitoring."
  }

  validation {
    condition     = alltrue([for vm in values(var.vms) : length(vm.roles) > 0 && vm.disk_gb >= 10 && floor(vm.disk_gb) == vm.disk_gb])
    error_message = "Every VM needs at least one role and a whole root disk size of at least 10 GiB."
  }
}

variable "kubernetes" {
  description = "Managed Kubernetes cluster (version, node count, node type), or null for none."
  type = object({
    version    = string
    node_count = number
    node_type  = string
  })
  default = null

  validation {
    condition     = var.kubernetes == null || try(var.kubernetes.node_count >= 1 && floor(var.kubernetes.node_count) == var.kubernetes.node_count, false)
    error_message = "kubernetes.node_count must be a whole number of at least 1."
  }
}

variable "backup_bucket" {
  description = "Name of the object storage bucket created for database backups; empty creates no bucket."
  type        = string
  default     = ""

  validation {
    condition     = var.backup_bucket == "" || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.backup_bucket))
    error_message = "backup_bucket must be empty or a bucket name of 3 to 63 lowercase letters, digits, dots or hyphens."
  }
}

variable "ssh_user" {
  description = "User created on every VM, with password-less sudo, for Terroir's SSH driver."
  type        = string
  default     = "deploy"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.ssh_user)) && var.ssh_user != "root"
    error_message = "ssh_user must be a POSIX user name other than root."
  }
}

variable "ssh_public_key" {
  description = "OpenSSH public key installed for ssh_user on every VM through cloud-init user data; empty installs none."
  type        = string
  default     = ""

  validation {
    condition     = var.ssh_public_key == "" || can(regex("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh.com|sk-ecdsa-sha2-nistp256@openssh.com) [A-Za-z0-9+/=]+( .*)?$", trimspace(var.ssh_public_key)))
    error_message = "ssh_public_key must be empty or one OpenSSH public key line, for example \"ssh-ed25519 AAAA... deploy\"."
  }
}

variable "admin_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach SSH (and the Kubernetes API, when there is a cluster); empty means nobody from outside the platform network."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.admin_cidrs : can(cidrnetmask(c))])
    error_message = "Every admin_cidrs entry must be an IPv4 CIDR block, for example 203.0.113.0/24."
  }
}

variable "public_ports" {
  description = "TCP ports open to the world on the VMs that have the app role."
  type        = list(number)
  default     = [80, 443]

  validation {
    condition     = alltrue([for p in var.public_ports : p >= 1 && p <= 65535 && floor(p) == p])
    error_message = "Every public_ports entry must be a TCP port number between 1 and 65535."
  }
}

# Specific to this module (optional, so that the common interface is enough to call it).

variable "secnumcloud_offer" {
  description = "true when the OpenStack credentials point at an OVHcloud SecNumCloud offer driven through OpenStack (Bare Metal Pod SecNumCloud) rather than a Public Cloud project. Only then can `qualified` be true."
  type        = bool
  default     = false
}
