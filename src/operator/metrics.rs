//! The operator's Prometheus metrics and its small HTTP server (/metrics, /healthz, /readyz).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok`, `invalid`, `policy`, `conflict`, `error`, `deleted`
    pub result: String,
}

pub struct Metrics {
    registry: Registry,
    pub reconciliations: Family<ResultLabels, Counter>,
    pub duration: Histogram,
    pub objects_applied: Counter,
    pub objects_pruned: Counter,
    pub leader: Gauge,
    pub ready: AtomicBool,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("terroir_operator");
        let reconciliations = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reconciliations",
            "Reconciliations of Platform resources, by result",
            reconciliations.clone(),
        );
        // 5 ms .. ~82 s
        let duration = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            0.005, 2.0, 15,
        ));
        registry.register(
            "reconcile_duration_seconds",
            "Time to reconcile one Platform resource",
            duration.clone(),
        );
        let objects_applied = Counter::default();
        registry.register(
            "objects_written",
            "Objects created or changed by server-side apply",
            objects_applied.clone(),
        );
        let objects_pruned = Counter::default();
        registry.register(
            "objects_pruned",
            "Objects deleted because no longer rendered, or with their Platform",
            objects_pruned.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the Lease and reconciles",
            leader.clone(),
        );
        Metrics {
            registry,
            reconciliations,
            duration,
            objects_applied,
            objects_pruned,
            leader,
            ready: AtomicBool::new(false),
        }
    }

    pub fn count(&self, result: &str) {
        self.reconciliations
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

async fn metrics(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    if m.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

/// Bind and serve until the process ends. Returns the bound address (port 0 picks one).
pub async fn serve(addr: SocketAddr, m: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(m);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(bound)
}
