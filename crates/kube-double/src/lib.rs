//! A stateful Kubernetes API server double, served over real HTTP on 127.0.0.1, for testing and
//! benchmarking Terroir (`terroir apply`/`plan` on target kubernetes, `terroir operator`) with
//! the real kube client.
//!
//! It models discovery, CRUD with optimistic concurrency, server-side apply with field
//! ownership and conflicts, merge / strategic-merge / JSON patches, watches with a replayable
//! history, finalizers, garbage collection, namespace termination, CRDs and instant rollouts.
//! See the crate's README.md for exactly what is modelled and what is not.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use terroir_kube_double::{Options, Server};
//! let server = Server::start(Options::default()).await?;
//! let kubeconfig = server.kubeconfig_yaml("double");
//! // ... point a kube::Client at server.url() ...
//! assert_eq!(server.state().object_count(), 0);
//! server.shutdown().await;
//! # Ok(()) }
//! ```

mod cause;
mod exec;
mod fields;
mod http;
mod registry;
mod selector;
mod status;
mod store;
mod time;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub use crate::exec::{ExecHook, ExecRequest, ProxyHook, ProxyRequest};
pub use crate::http::LOG_ANNOTATION;
use crate::http::Shared;

/// How the double behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// After every stored write of a Deployment, StatefulSet or DaemonSet, set its status as if
    /// its controller had rolled it out instantly (default true). Off: status stays empty.
    pub simulate_rollouts: bool,
    /// How many watch events are kept so that a watch from an older resourceVersion can be
    /// replayed (default 100 000). Older than that: the watch gets `410 Expired`.
    pub watch_history: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            simulate_rollouts: true,
            watch_history: 100_000,
        }
    }
}

/// One HTTP request the double received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The URL path, as sent (not percent-decoded).
    pub path: String,
    /// The raw query string, without `?` (empty if none).
    pub query: String,
    pub content_type: Option<String>,
}

/// A handle onto the double's store, for tests to look at what was written.
#[derive(Clone)]
pub struct State {
    shared: Arc<Shared>,
}

impl State {
    /// The stored object, as the server would return it (with managedFields), or `None` if it
    /// does not exist or the kind is not served. `namespace` is ignored for cluster-scoped kinds.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let store = self.shared.store();
        let ty = store.find_kind(api_version, kind)?;
        let ns = if ty.namespaced {
            namespace.unwrap_or_default()
        } else {
            ""
        };
        let s = store.lookup(&ty.gr, ns, name)?;
        let mut v = s.value.clone();
        if ty
            .versions
            .iter()
            .any(|x| ty.api_version(&x.name) == api_version)
        {
            v["apiVersion"] = Value::String(api_version.to_owned());
        }
        Some(v)
    }

    /// All stored objects of a kind, in all namespaces, sorted by namespace then name.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let store = self.shared.store();
        let Some(ty) = store.find_kind(api_version, kind) else {
            return Vec::new();
        };
        let served = ty
            .versions
            .iter()
            .any(|x| ty.api_version(&x.name) == api_version);
        store
            .all_of(&ty.gr)
            .into_iter()
            .map(|s| {
                let mut v = s.value.clone();
                if served {
                    v["apiVersion"] = Value::String(api_version.to_owned());
                }
                v
            })
            .collect()
    }

    /// How many objects are stored, of every kind (the double starts empty: no namespaces).
    pub fn object_count(&self) -> usize {
        self.shared.store().object_count()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests().clone()
    }

    pub fn clear_requests(&self) {
        self.shared.requests().clear();
    }

    /// What `pods/{name}/exec` runs: the hook maps each request (namespace, pod, container,
    /// command) to a local process, or to `None` (no such program in the container). Without a
    /// hook, every exec finds no program.
    pub fn set_exec_hook(
        &self,
        hook: impl Fn(&ExecRequest) -> Option<std::process::Command> + Send + Sync + 'static,
    ) {
        *self
            .shared
            .exec_hook
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::sync::Arc::new(hook));
    }

    /// What a service answers through `services/{name}/proxy/…`: the hook maps each request to
    /// (status, content type, body), or to `None` (503, as a service without endpoints).
    pub fn set_proxy_hook(
        &self,
        hook: impl Fn(&ProxyRequest) -> Option<(u16, String, Vec<u8>)> + Send + Sync + 'static,
    ) {
        *self
            .shared
            .proxy_hook
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::sync::Arc::new(hook));
    }

    /// Turns rollout simulation on or off. Turning it on also rolls out the workloads already
    /// stored.
    pub fn set_simulate_rollouts(&self, on: bool) {
        self.shared.store().set_simulate_rollouts(on);
    }
}

/// A kubeconfig with one cluster, user and context, all named `context`, no credentials.
fn kubeconfig(url: &str, context: &str) -> String {
    let name = Value::String(context.to_owned()).to_string();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {url}\nusers:\n- name: {name}\n  user: {{}}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\ncurrent-context: {name}\npreferences: {{}}\n"
    )
}

/// The double, serving on a tokio runtime of the caller's. Dropping it stops it too (without
/// waiting); `shutdown` waits.
pub struct Server {
    url: String,
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub async fn start(opts: Options) -> std::io::Result<Server> {
        Self::start_at(SocketAddr::from(([127, 0, 0, 1], 0)), opts).await
    }

    /// Binds the given address and starts serving.
    pub async fn start_at(addr: SocketAddr, opts: Options) -> std::io::Result<Server> {
        use axum::serve::ListenerExt;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let (shutdown, mut signal) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            store: Mutex::new(store::Store::new(
                opts.simulate_rollouts,
                opts.watch_history,
            )),
            requests: Mutex::new(Vec::new()),
            shutdown,
            server_address: local.to_string(),
            exec_hook: Mutex::new(None),
            proxy_hook: Mutex::new(None),
        });
        let app = axum::Router::new()
            .fallback(http::handle)
            .with_state(shared.clone());
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            while !*signal.borrow_and_update() {
                if signal.changed().await.is_err() {
                    break;
                }
            }
        });
        let task = tokio::spawn(async move {
            let _ = serve.await;
        });
        Ok(Server {
            url: format!("http://{local}"),
            shared,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn state(&self) -> State {
        State {
            shared: self.shared.clone(),
        }
    }

    /// A kubeconfig with one cluster/user/context named `context`, current-context set,
    /// server = `url()`, no credentials.
    pub fn kubeconfig_yaml(&self, context: &str) -> String {
        kubeconfig(&self.url, context)
    }

    pub fn write_kubeconfig(&self, path: &std::path::Path, context: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml(context))
    }

    /// Stops accepting connections, ends open watches, and waits (up to 5 s) for in-flight
    /// requests to finish.
    pub async fn shutdown(mut self) {
        let _ = self.shared.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shared.shutdown.send(true);
    }
}

/// The double on a thread of its own with its own tokio runtime, for synchronous tests.
/// Dropping it shuts it down.
pub struct BackgroundServer {
    url: String,
    state: State,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundServer {
    pub fn start(opts: Options) -> std::io::Result<BackgroundServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kube-double")
            .enable_all()
            .build()?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("kube-double".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match Server::start(opts).await {
                        Ok(server) => {
                            let _ = ready_tx.send(Ok((server.url(), server.state())));
                            let _ = stop_rx.await;
                            server.shutdown().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        match ready_rx.recv() {
            Ok(Ok((url, state))) => Ok(BackgroundServer {
                url,
                state,
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(std::io::Error::other(
                    "the kube double thread ended before it was ready",
                ))
            }
        }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn state(&self) -> State {
        self.state.clone()
    }

    pub fn kubeconfig_yaml(&self, context: &str) -> String {
        kubeconfig(&self.url, context)
    }

    pub fn write_kubeconfig(&self, path: &std::path::Path, context: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml(context))
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
