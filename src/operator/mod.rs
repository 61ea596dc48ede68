//! `terroir operator`: a kube-rs controller for `Platform` resources.
//!
//! One replica reconciles at a time (Lease-based leader election); the others wait, serving
//! /healthz and /readyz, and take over when the Lease expires. A replica that loses the Lease
//! exits, so that its pod restarts as a follower.

pub mod metrics;
pub mod reconcile;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube_lease_manager::LeaseManagerBuilder;

use crate::deploy::kubernetes;
use crate::document::PlatformResource;
use crate::pipeline::blueprint::Catalog;

pub use reconcile::{Context, FIELD_MANAGER, FINALIZER};

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(transparent)]
    Connect(#[from] kubernetes::ClusterError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "the cluster does not serve platforms.terroir.eu/v1alpha1: install the CRD first (`terroir crd | kubectl apply -f -`, or the Helm chart)"
    )]
    NoCrd,
    #[error("cannot list Platform resources: {0}")]
    List(String),
    #[error("leader election (Lease {lease}): {message}")]
    Election { lease: String, message: String },
    #[error("leader election stopped before this replica held the Lease")]
    ElectionStopped,
    #[error("lost the Lease; exiting so that another replica takes over")]
    LostLease,
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,kube_lease_manager=warn"));
    let json = std::env::var("TERROIR_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// How the operator runs: `terroir operator`'s flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Watch this namespace only (default: all).
    pub namespace: Option<String>,
    /// Apply the Namespace objects the blueprint renders.
    pub manage_namespaces: bool,
    pub metrics_addr: std::net::SocketAddr,
    /// Reconcile without holding the Lease (a single replica).
    pub no_leader_election: bool,
    pub lease_name: String,
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease.
    pub identity: Option<String>,
    pub requeue_seconds: u64,
    /// Platforms reconciled at the same time.
    pub concurrency: u16,
    pub kubeconfig: Option<std::path::PathBuf>,
    pub context: Option<String>,
}

/// Run the operator until it is stopped or loses the Lease.
pub async fn run(args: Settings, catalog: Catalog) -> Result<(), OperatorError> {
    init_tracing();
    let conn = kubernetes::connect(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
    let client = conn.client.clone();
    let metrics = Arc::new(metrics::Metrics::new());
    let bound = metrics::serve(args.metrics_addr, metrics.clone())
        .await
        .map_err(|source| OperatorError::Listen {
            addr: args.metrics_addr,
            source,
        })?;
    tracing::info!(server = %conn.server, metrics = %bound, "terroir operator starting");

    let api: Api<PlatformResource> = match &args.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    // Fail early, and clearly, when the CRD is missing or RBAC forbids reading Platforms.
    if let Err(e) = api.list(&ListParams::default().limit(1)).await {
        return Err(match &e {
            kube::Error::Api(s) if s.code == 404 => OperatorError::NoCrd,
            _ => OperatorError::List(kubernetes::describe(&e)),
        });
    }
    metrics
        .ready
        .store(true, std::sync::atomic::Ordering::Relaxed);

    let identity = args.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "terroir".into());
        format!("{host}-{}", std::process::id())
    });
    let mut leadership = None;
    if !args.no_leader_election {
        let lease_ns = args
            .lease_namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let manager = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
            .with_namespace(&lease_ns)
            .with_identity(&identity)
            .with_duration(15)
            .with_grace(5)
            .build()
            .await
            .map_err(|e| OperatorError::Election {
                lease: format!("{lease_ns}/{}", args.lease_name),
                message: crate::text::error_chain(&e),
            })?;
        let (mut channel, task) = manager.watch().await;
        tracing::info!(lease = %format!("{lease_ns}/{}", args.lease_name), identity = %identity, "waiting to hold the Lease");
        while !*channel.borrow_and_update() {
            if channel.changed().await.is_err() {
                return Err(OperatorError::ElectionStopped);
            }
        }
        tracing::info!("holding the Lease: reconciling");
        leadership = Some((channel, task));
    }
    metrics.leader.set(1);

    let reporter = Reporter {
        controller: "terroir-operator".into(),
        instance: Some(identity),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let ctx = Arc::new(Context::new(
        client.clone(),
        catalog,
        recorder,
        metrics.clone(),
        args.manage_namespaces,
        Duration::from_secs(args.requeue_seconds),
    ));
    let controller = Controller::new(api, watcher::Config::default())
        .with_config(controller::Config::default().concurrency(args.concurrency))
        .shutdown_on_signal()
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(platform = %obj, "reconciled"),
                Err(controller::Error::ReconcilerFailed(e, obj)) => {
                    tracing::warn!(platform = %obj, error = %e, "reconcile failed")
                }
                Err(e) => tracing::warn!(error = %e, "controller"),
            }
        });
    match leadership {
        None => {
            controller.await;
            Ok(())
        }
        Some((mut channel, task)) => {
            let lost = async {
                loop {
                    if channel.changed().await.is_err() || !*channel.borrow_and_update() {
                        return;
                    }
                }
            };
            let outcome = tokio::select! {
                () = controller => Ok(()),
                () = lost => Err(OperatorError::LostLease),
            };
            metrics.leader.set(0);
            drop(channel);
            // Closing the channel makes the lease manager release the Lease.
            let _ = task.await;
            outcome
        }
    }
}
