//! `terroir-kube-double`: the Kubernetes API server double as a process of its own, for
//! benchmarks that run `terroir operator` against it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use terroir_kube_double::{Options, Server};

/// A stateful Kubernetes API server double (HTTP only, no auth), for tests and benchmarks.
#[derive(Parser, Debug)]
#[command(name = "terroir-kube-double", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Write a kubeconfig pointing at the double here (before announcing the address).
    #[arg(long, value_name = "PATH")]
    kubeconfig_out: Option<PathBuf>,
    /// Name of the cluster, user and context in the kubeconfig.
    #[arg(long, default_value = "kube-double")]
    context: String,
    /// Leave workload status empty instead of simulating instant rollouts.
    #[arg(long)]
    no_simulate_rollouts: bool,
    /// How many watch events to keep for watches resuming from an older resourceVersion.
    #[arg(long, default_value_t = 100_000)]
    watch_history: usize,
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let opts = Options {
        simulate_rollouts: !args.no_simulate_rollouts,
        watch_history: args.watch_history,
    };
    let server = match Server::start_at(args.listen, opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("terroir-kube-double: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.kubeconfig_out
        && let Err(e) = server.write_kubeconfig(path, &args.context)
    {
        eprintln!("terroir-kube-double: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", server.url());
    let _ = out.flush();
    drop(out);
    wait_for_signal().await;
    server.shutdown().await;
    ExitCode::SUCCESS
}
