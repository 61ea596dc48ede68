//! The gate every change passes first: the document judged against its own sovereignty policy
//! from what is known before anything is touched (its declarations, the provider catalog, the
//! geodata when it is installed, and for a cloud the Terraform plan and its state backend). The
//! CLI's `plan` and `apply`, the SecNumCloud driver and the operator all ask it.
//!
//! With `enforcement: enforce`, a failing check stops the change; with `warn` it is reported and
//! the change goes on. The gate never resolves a name through DNS and never downloads anything.

use std::collections::HashMap;

use serde::Serialize;

use super::locality::catalog::Catalog;
use super::locality::geodata::GeoDb;
use super::locality::verify::{self, Finding, NotAPlan, Verdict, Verifier};
use crate::document::{Enforcement, Platform};

/// What the gate judges beyond the document's own declarations.
#[derive(Default)]
pub struct Evidence<'a> {
    /// Geodata for the addresses the document names; without it they are judged by the provider
    /// catalog and the declaration.
    pub geo: Option<&'a GeoDb>,
    /// A Terraform plan about to be applied.
    pub terraform: Option<TerraformPlan<'a>>,
}

/// A saved Terraform plan (`show -json`) and the state backend `init` configured, if any.
pub struct TerraformPlan<'a> {
    pub plan: &'a serde_json::Value,
    /// The backend's type and configuration, from `.terraform/terraform.tfstate`.
    pub backend: Option<(String, serde_json::Value)>,
}

/// The gate's verdict: every check, and whether the failing ones stop the change.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GateReport {
    pub platform: String,
    /// `enforcement: enforce`: a failing check stops the change.
    pub enforced: bool,
    pub findings: Vec<Finding>,
}

impl GateReport {
    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.verdict == Verdict::Fail)
    }

    pub fn warnings(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.verdict == Verdict::Warn)
            .count()
    }

    /// Whether the change must stop here.
    pub fn blocks(&self) -> bool {
        self.enforced && self.failures().next().is_some()
    }
}

/// Judge `platform`, whose rendered images are `images`, on what `evidence` adds.
pub fn gate(
    platform: &Platform,
    images: &[String],
    evidence: &Evidence,
) -> Result<GateReport, NotAPlan> {
    let policy = &platform.spec.sovereignty.policy;
    let v = Verifier {
        policy,
        geo: evidence.geo,
        catalog: Catalog::builtin(),
        pins: HashMap::new(),
        dns: false,
    };
    let mut findings = verify::declared(platform, images, &v);
    if let Some(tf) = &evidence.terraform {
        findings.extend(verify::plan(tf.plan, &v)?);
        match &tf.backend {
            Some((kind, config)) => findings.extend(verify::backend(kind, config, &v, "backend")),
            None => findings.push(Finding {
                subject: "Terraform state backend".into(),
                observed: "none recorded by init".into(),
                expected: v.expected(),
                verdict: Verdict::Warn,
                basis: "backend",
                evidence: ".terraform/terraform.tfstate names no backend: the state is local"
                    .into(),
            }),
        }
    }
    Ok(GateReport {
        platform: platform.metadata.name.clone(),
        enforced: policy.enforcement == Enforcement::Enforce,
        findings,
    })
}
