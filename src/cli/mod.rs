//! Command-line types (clap). Behaviour lives in `crate::commands`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "terroir",
    version,
    about = "Deploy a customer-engagement platform where its data must stay, and prove where it runs.",
    long_about = "Terroir renders and applies blueprints that deploy a complete customer-engagement platform \
(application, PostgreSQL, Postfix, monitoring, backups) to bare-metal hosts over SSH, to \
SecNumCloud-qualified clouds through Terraform/OpenTofu, or to your own Kubernetes cluster.\n\n\
You describe the platform once, in a Platform document (see `terroir schema`). Start with:\n\n  \
terroir validate examples/baremetal.yaml\n  \
terroir render examples/baremetal.yaml --out rendered/",
    after_help = "Exit status: 0 success, 1 invalid input or usage, 2 a check failed (policy, verification)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Output format: `text` for people, `json` for scripts (printed on stdout).
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Text, env = "TERROIR_OUTPUT")]
    pub output: OutputFormat,
    /// Extra directory of blueprints, searched before the ones built into terroir.
    #[arg(long, global = true, value_name = "DIR", env = "TERROIR_BLUEPRINTS")]
    pub blueprints: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check Platform documents: YAML syntax, types, unknown keys, and semantic rules.
    ///
    /// Every problem is reported at once as FILE:LINE:COLUMN: what is wrong; what was expected.
    /// Exits 1 when any document is invalid.
    Validate(ValidateArgs),
    /// Render a Platform document into a directory of files for its target.
    ///
    /// Writes the target's files (Kubernetes manifests, per-host configuration and plan, or a
    /// Terraform root module), the runbooks, a sovereignty pre-assessment and SHA256SUMS
    /// (`sha256sum -c SHA256SUMS` checks it). The same document always renders byte-identical files.
    /// Nothing is deployed.
    Render(RenderArgs),
    /// Show what `apply` would change on each host, changing nothing.
    ///
    /// Renders the document, connects to every host over SSH (strict host key checking against
    /// the document's knownHostsFile) and compares packages, users, directories, files (by
    /// SHA-256, owner and mode) and services with the plan. Bare-metal targets.
    Plan(ApplyArgs),
    /// Render the document and converge every host to it over SSH.
    ///
    /// Only what differs is changed: files are uploaded beside their destination, checked against
    /// their SHA-256 and renamed into place; a service restarts only when one of its files changed.
    /// Hosts are converged in parallel; a host that fails does not stop the others unless
    /// --fail-fast. Running it again changes nothing. Exit 2 when any host failed.
    Apply(ApplyArgs),
    /// Print the JSON Schema of the Platform document (for editors and CI checks).
    Schema,
    /// Print the CustomResourceDefinition of `platforms.terroir.eu` (YAML; JSON with --output json).
    ///
    /// Generated from the same Rust types as the Platform document, so the operator's custom
    /// resource accepts exactly what `terroir validate` accepts structurally. The Helm chart ships
    /// this output in charts/terroir/crds/.
    Crd,
    /// List the available blueprints and their parameters.
    Blueprints,
    /// Run the smoke application (for tests and demos): writes to PostgreSQL, sends mail through
    /// the platform's MTA, serves /metrics. Configured by the environment the blueprint renders.
    SmokeApp,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Platform documents (YAML).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Platform document (YAML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Directory to write into. A previous render there is replaced; any other non-empty
    /// directory is refused unless --force.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace DIR even if it is not a previous render.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Platform document (YAML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Hosts converged at the same time.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256), env = "TERROIR_CONCURRENCY")]
    pub concurrency: u16,
    /// Stop starting new hosts as soon as one fails.
    #[arg(long)]
    pub fail_fast: bool,
    /// Record the host keys of hosts missing from knownHostsFile (a changed key is always refused).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Seconds allowed for connecting and for each remote command.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub timeout: u64,
}
