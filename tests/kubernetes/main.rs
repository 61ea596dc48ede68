//! Kubernetes: apply against the API server double, request scenarios, backups run on loopback,
//! the manifests against the Kubernetes schemas, the operator and the Helm chart.

#[path = "../common/mod.rs"]
mod common;

mod apply;
mod backups;
mod chart;
mod exit;
mod ha;
mod images_postfix;
mod images_postgres;
mod lifecycle;
mod operator;
mod patroni;
mod postgres_tls;
mod scenarios;
mod schema;
