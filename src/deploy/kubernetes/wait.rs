//! Rollout readiness of Deployments, StatefulSets and DaemonSets, read from their status the
//! way `kubectl rollout status` does.

use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use serde_json::Value;

use super::{ClusterError, Manifest};

/// Kinds whose rollout is waited for.
pub fn is_workload(m: &Manifest) -> bool {
    m.gvk.group == "apps"
        && matches!(
            m.gvk.kind.as_str(),
            "Deployment" | "StatefulSet" | "DaemonSet"
        )
}

fn int(v: &Value, path: &[&str]) -> i64 {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return 0,
        }
    }
    cur.as_i64().unwrap_or(0)
}

/// `None` when the workload has rolled out, else what it is waiting for.
pub fn pending(kind: &str, o: &DynamicObject) -> Option<String> {
    let data = &o.data;
    let generation = o.metadata.generation.unwrap_or(0);
    if data.get("status").is_none() {
        return Some("no status reported yet".into());
    }
    if int(data, &["status", "observedGeneration"]) < generation {
        return Some("waiting for the controller to observe the new generation".into());
    }
    let want = data
        .get("spec")
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
        .unwrap_or(1);
    match kind {
        "Deployment" => {
            let updated = int(data, &["status", "updatedReplicas"]);
            let available = int(data, &["status", "availableReplicas"]);
            let total = int(data, &["status", "replicas"]);
            if updated < want {
                Some(format!("{updated} of {want} replicas updated"))
            } else if total > updated {
                Some(format!(
                    "{} old replicas pending termination",
                    total - updated
                ))
            } else if available < want {
                Some(format!("{available} of {want} updated replicas available"))
            } else {
                None
            }
        }
        "StatefulSet" => {
            let ready = int(data, &["status", "readyReplicas"]);
            let updated = int(data, &["status", "updatedReplicas"]);
            let current = data
                .pointer("/status/currentRevision")
                .and_then(Value::as_str);
            let update = data
                .pointer("/status/updateRevision")
                .and_then(Value::as_str);
            if ready < want {
                Some(format!("{ready} of {want} replicas ready"))
            } else if updated < want || current != update {
                Some(format!("{updated} of {want} replicas at the new revision"))
            } else {
                None
            }
        }
        "DaemonSet" => {
            let desired = int(data, &["status", "desiredNumberScheduled"]);
            let updated = int(data, &["status", "updatedNumberScheduled"]);
            let available = int(data, &["status", "numberAvailable"]);
            if updated < desired {
                Some(format!("{updated} of {desired} pods updated"))
            } else if available < desired {
                Some(format!("{available} of {desired} updated pods available"))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Why a watch of one object stopped before its check decided.
#[derive(Debug)]
pub enum Unsettled {
    /// The time allowed passed.
    TimedOut,
    /// The server closed the watch.
    Ended,
}

/// Watch one object by name (not polling) until `check` decides: it sees each state (`Ok(None)`
/// while the object does not exist, `Err` for an error of the watch) and returns `Some` to end
/// the watch with that value, `None` to go on watching.
pub async fn watch_until<K, T>(
    api: Api<K>,
    name: &str,
    timeout: Duration,
    mut check: impl FnMut(Result<Option<K>, kube::runtime::watcher::Error>) -> Option<T>,
) -> Result<T, Unsettled>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let stream = kube::runtime::watcher::watch_object(api, name);
    let fut = async {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Some(done) = check(event) {
                return Ok(done);
            }
        }
        Err(Unsettled::Ended)
    };
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or(Err(Unsettled::TimedOut))
}

/// Wait, watching (not polling), until one workload has rolled out.
pub async fn wait_rollout(
    api: Api<DynamicObject>,
    kind: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let label = format!("{kind} {name}");
    let mut last = String::from("not found");
    let settled = watch_until(api, name, timeout, |event| {
        match event {
            Ok(Some(o)) => match pending(kind, &o) {
                None => return Some(()),
                Some(why) => last = why,
            },
            Ok(None) => last = "not found".into(),
            Err(e) => last = crate::text::error_chain(&e),
        }
        None
    })
    .await;
    match settled {
        Ok(()) => Ok(()),
        Err(Unsettled::Ended) => Err(ClusterError::Api {
            object: label,
            message: "the watch ended".into(),
        }),
        Err(Unsettled::TimedOut) => Err(ClusterError::Timeout {
            seconds: timeout.as_secs(),
            what: format!("{label} to roll out ({last})"),
        }),
    }
}
