//! `terroir secrets list|rotate|set|seal|keygen`: the operator-side secret store
//! (`crate::secrets`), or the platform's Secrets on its cluster. Values are never printed.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Context;
use crate::cli::{RotateArgs, SecretsCommand};
use crate::deploy::kubernetes::secrets::{Listed, Origin, PREVIOUS};
use crate::document::{Loaded, Target};
use crate::error::{Error, ExitStatus};
use crate::printer::{Report, Text};
use crate::secrets::kubernetes::{ClusterSecretError, ClusterSecrets};
use crate::secrets::rotation::Rotation;
use crate::secrets::{SecretEntry, SecretError, SecretStore};

pub fn run(cmd: SecretsCommand, cx: &Context) -> Result<ExitStatus, Error> {
    match cmd {
        SecretsCommand::List {
            file,
            kubeconfig,
            context,
        } => {
            let loaded = crate::pipeline::load(&file, &cx.catalog)?;
            match &loaded.platform.spec.target {
                Target::Kubernetes(target) => {
                    let runtime = crate::runtime()?;
                    let secrets = ClusterSecrets::open(
                        &runtime,
                        &file,
                        &loaded,
                        target,
                        &cx.catalog,
                        (kubeconfig.as_ref(), context.as_ref()),
                    )?;
                    cx.printer.report(&ClusterList::new(&secrets, &file)?)?;
                }
                _ => list(&file, &loaded, cx)?,
            }
            Ok(ExitStatus::Success)
        }
        SecretsCommand::Rotate(args) => {
            let loaded = crate::pipeline::load(&args.apply.file, &cx.catalog)?;
            match &loaded.platform.spec.target {
                Target::Kubernetes(target) => {
                    let runtime = crate::runtime()?;
                    let access = (args.apply.kubeconfig.as_ref(), args.apply.context.as_ref());
                    let secrets = ClusterSecrets::open(
                        &runtime,
                        &args.apply.file,
                        &loaded,
                        target,
                        &cx.catalog,
                        access,
                    )?;
                    rotate_on_cluster(&args, &secrets, cx)
                }
                _ => rotate(&args, &loaded, cx),
            }
        }
        SecretsCommand::Set { file, name } => set(&file, &name, cx),
        SecretsCommand::Seal { file } => {
            let store = store(&file, cx)?;
            let sealed = store.seal()?;
            cx.printer.report(&Sealed {
                store: store.dir().to_owned(),
                sealed,
            })?;
            Ok(ExitStatus::Success)
        }
        SecretsCommand::Keygen { out } => {
            let recipient = crate::secrets::write_identity(&out)?;
            cx.printer.note(format!(
                "wrote an age identity to {} (mode 0600): keep it safe, it decrypts the store; list its recipient in spec.secrets.recipients and set TERROIR_AGE_IDENTITY={} to use it",
                out.display(),
                out.display()
            ));
            cx.printer.report(&Identity {
                identity: out,
                recipient,
            })?;
            Ok(ExitStatus::Success)
        }
    }
}

/// The store of the document at `file`, checked.
fn store(file: &Path, cx: &Context) -> Result<SecretStore, Error> {
    let loaded = crate::pipeline::load(file, &cx.catalog)?;
    Ok(SecretStore::for_platform(file, &loaded.platform))
}

fn hosts_text(hosts: &[String]) -> String {
    if hosts.is_empty() {
        "-".into()
    } else {
        hosts.join(",")
    }
}

#[derive(Serialize)]
struct StoreEntry {
    name: String,
    encrypted: bool,
    modified: String,
    previous: bool,
    path: PathBuf,
    /// The hosts that receive it.
    hosts: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StoreList {
    platform: String,
    store: PathBuf,
    encrypted: bool,
    secrets: Vec<StoreEntry>,
    /// Secrets the hosts receive that the store does not hold yet.
    not_in_store: Vec<String>,
    #[serde(skip)]
    document: PathBuf,
}

impl Report for StoreList {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        let how = if self.encrypted {
            "encrypted with age to spec.secrets.recipients"
        } else {
            "in clear, files of mode 0600 (no spec.secrets.recipients)"
        };
        writeln!(out, "Secret store {} ({how})", self.store.display())?;
        writeln!(
            out,
            "{:<28} {:<10} {:<21} {:<9} HOSTS",
            "NAME", "STORED", "MODIFIED", "PREVIOUS"
        )?;
        for e in &self.secrets {
            writeln!(
                out,
                "{:<28} {:<10} {:<21} {:<9} {}",
                e.name,
                if e.encrypted { "encrypted" } else { "clear" },
                e.modified,
                if e.previous { "kept" } else { "-" },
                hosts_text(&e.hosts)
            )?;
        }
        if self.secrets.is_empty() {
            writeln!(out, "(no secret yet)")?;
        }
        if !self.not_in_store.is_empty() {
            writeln!(
                out,
                "Not in the store yet: {} (`terroir apply {}` generates what it can; `terroir secrets set` gives the others)",
                self.not_in_store.join(", "),
                self.document.display()
            )?;
        }
        Ok(())
    }
}

fn list(file: &Path, loaded: &Loaded, cx: &Context) -> Result<(), Error> {
    let store = SecretStore::for_platform(file, &loaded.platform);
    let receivers = crate::secrets::rotation::receivers(loaded, &cx.catalog)?;
    let entries: Vec<SecretEntry> = store.entries()?;
    let not_in_store = receivers
        .keys()
        .filter(|n| !entries.iter().any(|e| &e.name == *n))
        .cloned()
        .collect();
    let unsealed = store.encrypted() && entries.iter().any(|e| !e.encrypted);
    let secrets = entries
        .into_iter()
        .map(|e| {
            let hosts = receivers
                .get(&e.name)
                .map(|h| h.iter().cloned().collect())
                .unwrap_or_default();
            StoreEntry {
                name: e.name,
                encrypted: e.encrypted,
                modified: e.modified,
                previous: e.previous,
                path: e.path,
                hosts,
            }
        })
        .collect();
    cx.printer.report(&StoreList {
        platform: loaded.platform.metadata.name.clone(),
        store: store.dir().to_owned(),
        encrypted: store.encrypted(),
        secrets,
        not_in_store,
        document: file.to_owned(),
    })?;
    if unsealed {
        cx.printer.warn(format!("{} lists age recipients but some secrets are in clear; encrypt them with `terroir secrets seal {}`", file.display(), file.display()));
    }
    Ok(())
}

#[derive(Serialize)]
struct ClusterList<'a> {
    platform: &'a str,
    context: &'a str,
    secrets: Vec<Listed>,
    /// For people: how to make each Secret that is missing or incomplete.
    #[serde(skip)]
    missing: Vec<String>,
}

impl<'a> ClusterList<'a> {
    fn new(secrets: &'a ClusterSecrets, file: &Path) -> Result<Self, ClusterSecretError> {
        let listed = secrets.list()?;
        let incomplete = |name: &str, namespace: &str| {
            listed.iter().any(|l| {
                l.name == name
                    && l.namespace == namespace
                    && (!l.exists || !l.missing_keys.is_empty())
            })
        };
        let missing = secrets
            .needed
            .iter()
            .filter(|n| incomplete(&n.name, &n.namespace))
            .map(|n| match n.origin {
                Origin::Provided => format!(
                    "{} is given by you ({}): {}",
                    n.label(),
                    n.purpose,
                    n.command(&n.keys)
                ),
                _ => format!(
                    "{} is generated by `terroir apply {}`",
                    n.label(),
                    file.display()
                ),
            })
            .collect();
        Ok(ClusterList {
            platform: &secrets.platform,
            context: secrets.context(),
            secrets: listed,
            missing,
        })
    }
}

impl Report for ClusterList<'_> {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        writeln!(
            out,
            "Secrets of {} on context {}",
            self.platform,
            if self.context.is_empty() {
                "(current)"
            } else {
                self.context
            }
        )?;
        writeln!(
            out,
            "{:<52} {:<10} {:<21} {:<21} KEYS",
            "NAMESPACE/NAME", "MADE BY", "CREATED", "ROTATED"
        )?;
        for l in &self.secrets {
            let by = match (l.origin, l.unused) {
                (_, true) => "terroir*",
                (Some(Origin::Generated), _) => "terroir",
                _ => "you",
            };
            let state = if !l.exists {
                " (missing)".to_owned()
            } else if !l.missing_keys.is_empty() {
                format!(" (missing keys: {})", l.missing_keys.join(", "))
            } else {
                String::new()
            };
            writeln!(
                out,
                "{:<52} {:<10} {:<21} {:<21} {}{state}",
                format!("{}/{}", l.namespace, l.name),
                by,
                l.created.as_deref().unwrap_or("-"),
                l.rotated.as_deref().unwrap_or("-"),
                if l.keys.is_empty() {
                    "-".to_owned()
                } else {
                    l.keys.join(",")
                }
            )?;
        }
        if self.secrets.iter().any(|l| l.unused) {
            writeln!(
                out,
                "* generated for this platform but no longer read by what it renders; kept until you delete it (kubectl delete secret)"
            )?;
        }
        for m in &self.missing {
            writeln!(out, "{m}")?;
        }
        Ok(())
    }
}

/// A rotation of the store: what would be, or was, replaced, and who receives it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rotated {
    #[serde(skip_serializing_if = "Option::is_none")]
    dry_run: Option<bool>,
    secrets: Vec<String>,
    certificate: bool,
    /// Where the previous values are kept.
    previous: String,
    hosts: BTreeSet<String>,
    /// A dry run: whether the apply would follow.
    #[serde(skip_serializing_if = "Option::is_none")]
    apply: Option<bool>,
    /// Done: whether it was delivered (only `false` is reported: the apply reports itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<bool>,
    #[serde(skip)]
    name: String,
    #[serde(skip)]
    store: PathBuf,
    #[serde(skip)]
    document: PathBuf,
}

impl Rotated {
    /// Which hosts receive what was rotated, for people.
    fn hosts_line(&self) -> String {
        if self.hosts.is_empty() {
            "no host receives it from this store".to_owned()
        } else {
            format!(
                "delivered to {}",
                self.hosts
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }

    /// What was done, for people.
    fn done(&self) -> String {
        if self.certificate {
            format!(
                "removed {} from {} (previous kept in {}); {}",
                self.secrets.join(" and "),
                self.store.display(),
                self.previous,
                self.hosts_line()
            )
        } else {
            format!(
                "rotated `{}` in {} (previous value kept in {}); {}",
                self.name,
                self.store.display(),
                self.previous,
                self.hosts_line()
            )
        }
    }
}

impl Report for Rotated {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        if self.dry_run.is_some() {
            let what = if self.certificate {
                format!(
                    "would remove {} (the apply issues new ones)",
                    self.secrets.join(" and ")
                )
            } else {
                format!("would replace `{}` with a new random value", self.name)
            };
            writeln!(
                out,
                "{what}, keeping the old value as {}; {}",
                self.previous,
                self.hosts_line()
            )?;
            if self.apply == Some(true) {
                writeln!(
                    out,
                    "then would run `terroir apply {}`",
                    self.document.display()
                )?;
            }
            return writeln!(out, "(dry run: nothing changed)");
        }
        writeln!(out, "{}", self.done())?;
        writeln!(
            out,
            "Deliver it with: terroir apply {}",
            self.document.display()
        )
    }
}

fn rotate(args: &RotateArgs, loaded: &Loaded, cx: &Context) -> Result<ExitStatus, Error> {
    let file = args.apply.file.as_path();
    let store = SecretStore::for_platform(file, &loaded.platform);
    let receivers = crate::secrets::rotation::receivers(loaded, &cx.catalog)?;
    let rotation = Rotation::plan(&store, file, &args.name, &receivers)?;
    let mut report = Rotated {
        dry_run: None,
        secrets: rotation.names.clone(),
        certificate: rotation.certificate,
        previous: String::new(),
        hosts: rotation.hosts.clone(),
        apply: None,
        applied: None,
        name: rotation.name.clone(),
        store: store.dir().to_owned(),
        document: file.to_owned(),
    };
    if args.dry_run {
        report.previous = rotation.previous_files(&store).join(", ");
        report.dry_run = Some(true);
        report.apply = Some(!args.no_apply);
        cx.printer.report(&report)?;
        return Ok(ExitStatus::Success);
    }
    // Read it first: an apply needs the identity too, and must not find out on every host.
    if !args.no_apply {
        store.get(&rotation.name)?;
    }
    // the store changes under the platform's lock; the apply takes it again to deliver
    let lock = super::lock(
        file,
        &loaded.platform.metadata.name,
        "secrets rotate",
        args.apply.force_unlock,
        cx,
    )?;
    rotation.perform(&store)?;
    drop(lock);
    report.previous = rotation
        .previous_files(&store)
        .iter()
        .map(|f| store.dir().join(f).display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if args.no_apply {
        report.applied = Some(false);
        cx.printer.report(&report)?;
        return Ok(ExitStatus::Success);
    }
    // Standard output is the apply's report. One converge: the new file reaches the hosts, then
    // the commands guarded by it (a role's password) see it fail their check and run, then the
    // services that read it restart.
    cx.printer.note(format!("{}; applying", report.done()));
    let applied = super::deploy::run(&args.apply, crate::deploy::Mode::Apply, cx);
    if !matches!(applied, Ok(ExitStatus::Success)) {
        cx.printer.warn(format!(
            "the new value is in the store but was not delivered everywhere: run `terroir apply {}` again (the previous value is in {})",
            file.display(),
            report.previous
        ));
    }
    applied
}

/// A rotation of a Secret on the cluster.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RotatedOnCluster {
    #[serde(skip_serializing_if = "Option::is_none")]
    dry_run: Option<bool>,
    secret: String,
    keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    apply: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<bool>,
    #[serde(skip)]
    document: PathBuf,
}

impl RotatedOnCluster {
    fn done(&self) -> String {
        format!(
            "rotated {} of Secret {} (previous values kept as <key>{PREVIOUS})",
            self.keys.join(", "),
            self.secret
        )
    }
}

impl Report for RotatedOnCluster {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        if self.dry_run.is_some() {
            writeln!(
                out,
                "would replace {} of Secret {} with new values, keeping each old one as <key>{PREVIOUS}",
                self.keys.join(", "),
                self.secret
            )?;
            if self.apply == Some(true) {
                writeln!(
                    out,
                    "then would run `terroir apply {}`, which rolls out the workloads reading it",
                    self.document.display()
                )?;
            }
            return writeln!(out, "(dry run: nothing changed)");
        }
        writeln!(out, "{}", self.done())?;
        writeln!(
            out,
            "Roll it out with: terroir apply {}",
            self.document.display()
        )
    }
}

fn rotate_on_cluster(
    args: &RotateArgs,
    secrets: &ClusterSecrets,
    cx: &Context,
) -> Result<ExitStatus, Error> {
    let file = args.apply.file.as_path();
    let rotation = secrets.rotation(&args.name, file)?;
    let mut report = RotatedOnCluster {
        dry_run: None,
        secret: rotation.secret.clone(),
        keys: rotation.keys.clone(),
        apply: None,
        applied: None,
        document: file.to_owned(),
    };
    if args.dry_run {
        report.dry_run = Some(true);
        report.apply = Some(!args.no_apply);
        cx.printer.report(&report)?;
        return Ok(ExitStatus::Success);
    }
    secrets.rotate(&rotation)?;
    if args.no_apply {
        report.applied = Some(false);
        cx.printer.report(&report)?;
        return Ok(ExitStatus::Success);
    }
    // Standard output is the apply's report.
    cx.printer.note(format!("{}; applying", report.done()));
    let applied = super::deploy::run(&args.apply, crate::deploy::Mode::Apply, cx);
    if !matches!(applied, Ok(ExitStatus::Success)) {
        cx.printer.warn(format!("the new values are in the Secret but not every workload rolled out: run `terroir apply {}` again", file.display()));
    }
    applied
}

#[derive(Serialize)]
struct Set {
    secret: String,
    encrypted: bool,
    /// A value was replaced and kept as the previous one.
    previous: bool,
    store: PathBuf,
    #[serde(skip)]
    document: PathBuf,
}

impl Report for Set {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        let how = if self.encrypted {
            "encrypted with age"
        } else {
            "in clear, mode 0600"
        };
        let prev = if self.previous {
            " (the value it replaced is kept as its .previous)"
        } else {
            ""
        };
        writeln!(
            out,
            "set `{}` in {} ({how}){prev}; deliver it with: terroir apply {}",
            self.secret,
            self.store.display(),
            self.document.display()
        )
    }
}

/// The value given on standard input: one trailing newline (`\n` or `\r\n`) is not part of it.
fn value_from(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

fn set(file: &Path, name: &str, cx: &Context) -> Result<ExitStatus, Error> {
    let store = store(file, cx)?;
    if std::io::stdin().is_terminal() {
        cx.printer.note(format!(
            "reading the value of `{name}` from stdin (end with Ctrl-D)"
        ));
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|source| SecretError::Stdin {
            name: name.to_owned(),
            source,
        })?;
    let value = value_from(text);
    if value.is_empty() {
        return Err(SecretError::EmptyValue {
            name: name.to_owned(),
            document: file.to_owned(),
        }
        .into());
    }
    let previous = store.keep_previous(name)?;
    store.put(name, &value)?;
    cx.printer.report(&Set {
        secret: name.to_owned(),
        encrypted: store.encrypted(),
        previous,
        store: store.dir().to_owned(),
        document: file.to_owned(),
    })?;
    Ok(ExitStatus::Success)
}

#[derive(Serialize)]
struct Sealed {
    store: PathBuf,
    sealed: Vec<String>,
}

impl Report for Sealed {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        if self.sealed.is_empty() {
            return writeln!(
                out,
                "nothing to seal: every file of {} is already encrypted",
                self.store.display()
            );
        }
        let n = self.sealed.len();
        writeln!(
            out,
            "sealed {n} file{} of {} with age ({}); the clear files are removed",
            crate::text::plural(n),
            self.store.display(),
            self.sealed.join(", ")
        )
    }
}

#[derive(Serialize)]
struct Identity {
    identity: PathBuf,
    recipient: String,
}

impl Report for Identity {
    fn text(&self, out: &mut Text<'_>) -> std::io::Result<()> {
        writeln!(out, "{}", self.recipient)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn text(report: &impl Report) -> String {
        Text::of(report)
    }

    #[test]
    fn one_trailing_newline_is_not_part_of_the_value() {
        assert_eq!(value_from("s3cret\n".into()), "s3cret");
        assert_eq!(value_from("s3cret\r\n".into()), "s3cret");
        assert_eq!(value_from("two\n\n".into()), "two\n");
        assert_eq!(value_from("\n".into()), "");
    }

    fn rotated(certificate: bool) -> Rotated {
        Rotated {
            dry_run: None,
            secrets: if certificate {
                vec!["tls-db1-key".into(), "tls-db1-cert".into()]
            } else {
                vec!["database-password".into()]
            },
            certificate,
            previous: "database-password.previous.age".into(),
            hosts: BTreeSet::from(["app1".to_owned(), "db1".to_owned()]),
            apply: None,
            applied: None,
            name: if certificate {
                "tls-db1-cert".into()
            } else {
                "database-password".into()
            },
            store: PathBuf::from(".terroir/p/secrets"),
            document: PathBuf::from("p.yaml"),
        }
    }

    #[test]
    fn a_dry_run_says_what_would_be_replaced_and_where_it_goes() {
        let mut r = rotated(false);
        r.dry_run = Some(true);
        r.apply = Some(true);
        assert_eq!(
            text(&r),
            "would replace `database-password` with a new random value, keeping the old value as database-password.previous.age; delivered to app1, db1\nthen would run `terroir apply p.yaml`\n(dry run: nothing changed)\n"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"dryRun": true, "secrets": ["database-password"], "certificate": false, "previous": "database-password.previous.age", "hosts": ["app1", "db1"], "apply": true})
        );
    }

    #[test]
    fn a_rotation_without_apply_says_how_to_deliver_it() {
        let mut r = rotated(true);
        r.applied = Some(false);
        r.hosts.clear();
        assert_eq!(
            text(&r),
            "removed tls-db1-key and tls-db1-cert from .terroir/p/secrets (previous kept in database-password.previous.age); no host receives it from this store\nDeliver it with: terroir apply p.yaml\n"
        );
        assert_eq!(serde_json::to_value(&r).unwrap()["applied"], false);
    }

    #[test]
    fn a_cluster_rotation_names_the_secret_and_its_keys() {
        let r = RotatedOnCluster {
            dry_run: Some(true),
            secret: "ns/db".into(),
            keys: vec!["password".into()],
            apply: Some(false),
            applied: None,
            document: PathBuf::from("p.yaml"),
        };
        assert_eq!(
            text(&r),
            "would replace password of Secret ns/db with new values, keeping each old one as <key>.previous\n(dry run: nothing changed)\n"
        );
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"dryRun": true, "secret": "ns/db", "keys": ["password"], "apply": false})
        );
    }
}
