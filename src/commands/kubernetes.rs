//! `terroir plan` / `terroir apply` for `target: kubernetes`.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::json;

use super::Outcome;
use crate::pipeline::blueprint::Catalog;
use crate::cli::ApplyArgs;
use crate::deploy::kubernetes::secrets::{Ensured, SecretAction};
use crate::deploy::kubernetes::{self, wait, Action, Applier, ApplyOptions, ApplyReport, ApplySet, ClusterError};
use crate::document::Loaded;
use crate::pipeline::render;

pub const FIELD_MANAGER: &str = "terroir";

pub fn run(args: &ApplyArgs, loaded: Loaded, catalog: &Catalog, json: bool, apply: bool) -> Outcome {
    let Some(target) = loaded.platform.spec.target.kubernetes().cloned() else { return Outcome::Invalid };
    let (resolved, tree) = match render::render(&loaded, catalog) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Invalid;
        }
    };
    if apply {
        let images: Vec<String> = resolved.images.values().cloned().collect();
        if let Err(outcome) = super::verify::gate(&loaded, &images, json) {
            return outcome;
        }
    }
    let mut manifests = match kubernetes::manifests(&tree) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Invalid;
        }
    };
    let (kubeconfig, context) = crate::deploy::kubernetes::connection_settings(args.kubeconfig.as_ref(), args.context.as_ref(), &target, &args.file);
    let set = ApplySet::for_cli(&loaded.platform.metadata.name, &target.namespace);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Outcome::CheckFailed;
        }
    };
    let started = Instant::now();
    let result = runtime.block_on(async {
        let conn = kubernetes::connect(kubeconfig.as_deref(), context.as_deref()).await.map_err(|e| (Outcome::Invalid, e))?;
        if !json {
            eprintln!(
                "{} {} on context {} ({}), {} objects",
                if apply { "applying" } else { "planning" },
                loaded.platform.metadata.name,
                if conn.context.is_empty() { "(current)" } else { &conn.context },
                conn.server.trim_end_matches('/'),
                manifests.len()
            );
        }
        let applier = Applier::new(conn.client.clone(), FIELD_MANAGER);
        // The Secrets first: generated ones are created before anything reads them, and every
        // workload is marked with the versions of those it reads.
        let secrets = kubernetes::secrets::prepare(&applier, &resolved, &mut manifests, &set, !apply, true, args.force_conflicts)
            .await
            .map_err(|e| (Outcome::CheckFailed, e))?;
        let opts = ApplyOptions {
            force_conflicts: args.force_conflicts,
            prune: !args.no_prune,
            dry_run: !apply,
            manage_namespaces: true,
            diffs: !apply,
        };
        let mut report = applier.apply(&manifests, &set, opts).await.map_err(|e| (Outcome::CheckFailed, e))?;
        report.mark_created_namespaces(&secrets.created_namespaces);
        let missing = secrets.missing_lines();
        if !json {
            for s in secrets.secrets.iter().filter(|s| matches!(s.action, SecretAction::Create | SecretAction::AddKeys)) {
                let (verb, keys) = match (s.action, apply) {
                    (SecretAction::Create, true) => ("generated", &s.keys),
                    (SecretAction::Create, false) => ("would generate", &s.keys),
                    (_, true) => ("added generated keys to", &s.missing_keys),
                    (_, false) => ("would add generated keys to", &s.missing_keys),
                };
                eprintln!("{verb} Secret {} ({})", s.label(), keys.join(", "));
            }
        }
        // An error is said in every output mode; a plan's warning only to a person.
        for line in missing.iter().filter(|_| apply || !json) {
            eprintln!("{}: {line}", if apply { "error" } else { "warning" });
        }
        // As on hosts, a secret given by the client is never invented: the apply fails, having
        // applied all it could, until it exists.
        if apply && !missing.is_empty() {
            return Ok::<_, (Outcome, ClusterError)>((report, Vec::new(), conn.context, secrets, false));
        }
        let mut rollouts = Vec::new();
        if apply && !args.no_wait {
            let deadline = Duration::from_secs(args.timeout);
            let workloads: Vec<_> = manifests.iter().filter(|m| wait::is_workload(m)).collect();
            if !json && !workloads.is_empty() {
                eprintln!("waiting for {} rollouts (timeout {} s)", workloads.len(), args.timeout);
            }
            let waits = workloads.iter().map(|m| {
                let applier = &applier;
                async move {
                    let (ar, _) = applier.resource(&m.gvk).await?;
                    let api = kube::Api::namespaced_with(applier.client().clone(), m.namespace.as_deref().unwrap_or_default(), &ar);
                    let t = Instant::now();
                    wait::wait_rollout(api, &m.gvk.kind, &m.name, deadline).await?;
                    if !json {
                        eprintln!("  rolled out  {} ({:.1} s)", m.label(), t.elapsed().as_secs_f64());
                    }
                    Ok::<_, ClusterError>(m.label())
                }
            });
            for r in futures::future::join_all(waits).await {
                rollouts.push(r.map_err(|e| (Outcome::CheckFailed, e))?);
            }
        }
        Ok::<_, (Outcome, ClusterError)>((report, rollouts, conn.context, secrets, true))
    });
    match result {
        Ok((report, rollouts, context, secrets, complete)) => {
            print_report(&report, &rollouts, &context, &secrets, json, apply, started.elapsed());
            if complete {
                Outcome::Success
            } else {
                let n = secrets.missing().len();
                eprintln!("error: {n} Secret(s) you give are missing: the objects were applied, the pods reading them cannot start; create them, then run `terroir apply {}` again", args.file.display());
                Outcome::CheckFailed
            }
        }
        Err((outcome, e)) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&json!({"error": e.to_string()})).unwrap_or_default());
            }
            eprintln!("error: {e}");
            outcome
        }
    }
}

fn print_report(report: &ApplyReport, rollouts: &[String], context: &str, secrets: &Ensured, json: bool, apply: bool, took: Duration) {
    if json {
        let out = json!({
            "target": "kubernetes",
            "mode": if apply { "apply" } else { "plan" },
            "context": context,
            "applyset": report.applyset,
            "fieldManager": report.field_manager,
            "summary": {
                "create": report.count(Action::Create),
                "update": report.count(Action::Update),
                "unchanged": report.count(Action::Unchanged),
                "prune": report.count(Action::Prune),
                "skipped": report.count(Action::Skipped),
            },
            "objects": report.objects,
            "rolledOut": rollouts,
            "secrets": secrets.secrets,
            "missingSecrets": secrets.missing().iter().map(|s| s.label()).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return;
    }
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let paint = |code: &str, s: &str| if color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_owned() };
    let mut out = std::io::stdout().lock();
    for o in &report.objects {
        let (sign, code) = match o.action {
            Action::Create => ("+", "32"),
            Action::Update => ("~", "33"),
            Action::Prune => ("-", "31"),
            Action::Skipped => ("!", "35"),
            Action::Unchanged => continue,
        };
        let verb = if apply { o.action.past() } else { o.action.future() };
        let note = o.note.as_ref().map(|n| format!("  ({n})")).unwrap_or_default();
        let _ = writeln!(out, "{} {:<10} {}{}", paint(code, sign), verb, o.label(), note);
        if !apply && o.action == Action::Update {
            for line in o.diff.as_deref().unwrap_or_default().lines() {
                let code = match line.chars().next() {
                    Some('+') if !line.starts_with("+++") => "32",
                    Some('-') if !line.starts_with("---") => "31",
                    Some('@') => "36",
                    _ => "0",
                };
                let _ = writeln!(out, "      {}", paint(code, line));
            }
        }
    }
    let (c, u, p, same) =
        (report.count(Action::Create), report.count(Action::Update), report.count(Action::Prune), report.count(Action::Unchanged));
    let skipped = report.count(Action::Skipped);
    let skipped = if skipped > 0 { format!(", {skipped} skipped") } else { String::new() };
    if apply {
        let _ = writeln!(
            out,
            "applied {} objects in {:.1} s: {c} created, {u} configured, {same} unchanged, {p} pruned{skipped}{}",
            report.applied_objects(),
            took.as_secs_f64(),
            if rollouts.is_empty() { String::new() } else { format!("; {} rollouts complete", rollouts.len()) }
        );
    } else if c + u + p == 0 {
        let _ = writeln!(out, "no changes: {same} objects up to date{skipped}");
    } else {
        let _ = writeln!(out, "plan: {c} to create, {u} to update, {p} to prune, {same} unchanged{skipped}");
    }
}
