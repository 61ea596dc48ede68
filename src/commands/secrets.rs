//! `terroir secrets list|rotate|set|seal|keygen`: the operator-side secret store
//! (`crate::secrets`). Values are never printed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde_json::json;

use super::Outcome;
use crate::pipeline::blueprint::Catalog;
use crate::cli::{RotateArgs, SecretsCommand};
use crate::document;
use crate::secrets::{SecretError, SecretStore};

pub fn run(cmd: SecretsCommand, catalog: &Catalog, json: bool) -> Outcome {
    match cmd {
        SecretsCommand::List { file, kubeconfig, context } => {
            if super::targets_a_cluster(&file) {
                crate::secrets::kubernetes::list(&file, kubeconfig.as_ref(), context.as_ref(), catalog, json)
            } else {
                list(&file, catalog, json)
            }
        }
        SecretsCommand::Rotate(args) => {
            if super::targets_a_cluster(&args.apply.file) {
                crate::secrets::kubernetes::rotate(&args, catalog, json)
            } else {
                rotate(&args, catalog, json)
            }
        }
        SecretsCommand::Set { file, name } => set(&file, &name, catalog, json),
        SecretsCommand::Seal { file } => seal(&file, catalog, json),
        SecretsCommand::Keygen { out } => keygen(&out, json),
    }
}

pub(crate) fn fail(message: &str, json: bool) -> Outcome {
    if json {
        println!("{}", json!({ "error": message }));
    }
    eprintln!("error: {message}");
    Outcome::Invalid
}

/// The document, checked, and its store.
fn open(file: &Path, catalog: &Catalog) -> Result<(document::Loaded, SecretStore), Outcome> {
    match super::load_checked(file, catalog) {
        Ok(loaded) => {
            let store = SecretStore::for_platform(file, &loaded.platform);
            Ok((loaded, store))
        }
        Err((diags, text)) => {
            super::print_diagnostics(&diags, text.as_deref());
            Err(Outcome::Invalid)
        }
    }
}

/// Which hosts receive each secret, from the rendered bare-metal plan (empty for other targets:
/// their secrets are not delivered from this store).
fn receivers(loaded: &document::Loaded, catalog: &Catalog) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    if loaded.platform.spec.target.baremetal().is_none() {
        return Ok(out);
    }
    let (_, tree) = crate::pipeline::render::render(loaded, catalog).map_err(|e| e.to_string())?;
    let plan = crate::pipeline::render::plan::Plan::from_tree(&tree).map_err(|e| format!("{e}"))?;
    for host in &plan.hosts {
        for step in &host.steps {
            if let crate::pipeline::render::plan::Step::Secret { secret, .. } = step {
                out.entry(secret.secret.clone()).or_default().insert(host.name.clone());
            }
        }
    }
    Ok(out)
}

fn hosts_text(hosts: Option<&BTreeSet<String>>) -> String {
    match hosts {
        Some(h) if !h.is_empty() => h.iter().cloned().collect::<Vec<_>>().join(","),
        _ => "-".into(),
    }
}

fn list(file: &Path, catalog: &Catalog, json: bool) -> Outcome {
    let (loaded, store) = match open(file, catalog) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let receivers = match receivers(&loaded, catalog) {
        Ok(r) => r,
        Err(e) => return fail(&e, json),
    };
    let entries = match store.entries() {
        Ok(e) => e,
        Err(e) => return fail(&e.to_string(), json),
    };
    let missing: Vec<&String> = receivers.keys().filter(|n| !entries.iter().any(|e| &e.name == *n)).collect();
    let unsealed = store.encrypted() && entries.iter().any(|e| !e.encrypted);
    if json {
        let list: Vec<_> = entries
            .iter()
            .map(|e| {
                let hosts: Vec<&String> = receivers.get(&e.name).map(|h| h.iter().collect()).unwrap_or_default();
                json!({"name": e.name, "encrypted": e.encrypted, "modified": e.modified, "previous": e.previous, "path": e.path, "hosts": hosts})
            })
            .collect();
        let out = json!({"platform": loaded.platform.metadata.name, "store": store.dir(), "encrypted": store.encrypted(), "secrets": list, "notInStore": missing});
        println!("{}", serde_json::to_string_pretty(&out).expect("serializes"));
    } else {
        let how = if store.encrypted() { "encrypted with age to spec.secrets.recipients" } else { "in clear, files of mode 0600 (no spec.secrets.recipients)" };
        println!("Secret store {} ({how})", store.dir().display());
        println!("{:<28} {:<10} {:<21} {:<9} HOSTS", "NAME", "STORED", "MODIFIED", "PREVIOUS");
        for e in &entries {
            println!("{:<28} {:<10} {:<21} {:<9} {}", e.name, if e.encrypted { "encrypted" } else { "clear" }, e.modified, if e.previous { "kept" } else { "-" }, hosts_text(receivers.get(&e.name)));
        }
        if entries.is_empty() {
            println!("(no secret yet)");
        }
        if !missing.is_empty() {
            println!(
                "Not in the store yet: {} (`terroir apply {}` generates what it can; `terroir secrets set` gives the others)",
                missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                file.display()
            );
        }
    }
    if unsealed {
        eprintln!("warning: {} lists age recipients but some secrets are in clear; encrypt them with `terroir secrets seal {}`", file.display(), file.display());
    }
    Outcome::Success
}

/// A certificate made by terroir (the platform CA's, a host's, the public names'): rotating it
/// removes it, and the apply makes a new one.
fn is_certificate(name: &str) -> bool {
    name.starts_with("tls-") || name.starts_with("public-tls-")
}

/// The secrets a rotation of `name` replaces: itself, or for a certificate its key and certificate.
fn rotated_names(name: &str, held: &[String]) -> Vec<String> {
    let base = ["-key", "-cert", "-names", "-state"].iter().find_map(|s| name.strip_suffix(s)).filter(|_| is_certificate(name));
    match base {
        Some(base) => [format!("{base}-key"), format!("{base}-cert")].into_iter().filter(|n| n == name || held.contains(n)).collect(),
        None => vec![name.to_owned()],
    }
}

fn rotate(args: &RotateArgs, catalog: &Catalog, json: bool) -> Outcome {
    let file = args.apply.file.as_path();
    let name = args.name.as_str();
    let (loaded, store) = match open(file, catalog) {
        Ok(x) => x,
        Err(o) => return o,
    };
    let held = match store.names() {
        Ok(n) => n,
        Err(e) => return fail(&e.to_string(), json),
    };
    if !held.iter().any(|n| n == name) {
        let what = if held.is_empty() { format!("it holds none yet (the first `terroir apply {}` generates them)", file.display()) } else { format!("it holds {}", held.join(", ")) };
        return fail(&format!("secret `{name}` is not in the store {}: {what}; only a secret that exists can be rotated (`terroir secrets set` adds one)", store.dir().display()), json);
    }
    if name == crate::backup::CIPHER_PASS {
        return fail(&format!("secret `{name}` cannot be rotated: it encrypts the backup repository, which keeps the key it was created with; a new value would make every backup and archived WAL unreadable"), json);
    }
    let certificate = is_certificate(name);
    let names = rotated_names(name, &held);
    let receivers = match receivers(&loaded, catalog) {
        Ok(r) => r,
        Err(e) => return fail(&e, json),
    };
    let hosts: BTreeSet<&String> = names.iter().filter_map(|n| receivers.get(n)).flatten().collect();
    let hosts_line = if hosts.is_empty() { "no host receives it from this store".to_owned() } else { format!("delivered to {}", hosts.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")) };
    let previous = |n: &str| if store.encrypted() { format!("{n}.previous.age") } else { format!("{n}.previous") };
    if args.dry_run {
        let what = if certificate { format!("would remove {} (the apply issues new ones)", names.join(" and ")) } else { format!("would replace `{name}` with a new random value") };
        let kept = names.iter().map(|n| previous(n)).collect::<Vec<_>>().join(", ");
        if json {
            println!("{}", serde_json::to_string_pretty(&json!({"dryRun": true, "secrets": names, "certificate": certificate, "previous": kept, "hosts": hosts, "apply": !args.no_apply})).expect("serializes"));
        } else {
            println!("{what}, keeping the old value as {kept}; {hosts_line}");
            if !args.no_apply {
                println!("then would run `terroir apply {}`", file.display());
            }
            println!("(dry run: nothing changed)");
        }
        return Outcome::Success;
    }
    // Read it first: an apply needs the identity too, and must not find out on every host.
    if !args.no_apply
        && let Err(e) = store.get(name)
    {
        return fail(&e.to_string(), json);
    }
    let done: Result<(), SecretError> = (|| {
        if certificate {
            for n in &names {
                store.keep_previous(n)?;
                store.remove(n)?;
            }
            Ok(())
        } else {
            store.rotate(name)
        }
    })();
    if let Err(e) = done {
        return fail(&e.to_string(), json);
    }
    let kept = names.iter().map(|n| store.dir().join(previous(n)).display().to_string()).collect::<Vec<_>>().join(", ");
    let message = if certificate {
        format!("removed {} from {} (previous kept in {kept}); {hosts_line}", names.join(" and "), store.dir().display())
    } else {
        format!("rotated `{name}` in {} (previous value kept in {kept}); {hosts_line}", store.dir().display())
    };
    if args.no_apply {
        if json {
            println!("{}", serde_json::to_string_pretty(&json!({"secrets": names, "certificate": certificate, "previous": kept, "hosts": hosts, "applied": false})).expect("serializes"));
        } else {
            println!("{message}");
            println!("Deliver it with: terroir apply {}", file.display());
        }
        return Outcome::Success;
    }
    // stdout is the apply's report
    eprintln!("{message}; applying");
    // One converge: the new file reaches the hosts, then the commands guarded by it (a role's
    // password) see it fail their check and run, then the services that read it restart.
    let outcome = super::deploy::apply_legacy(&args.apply, catalog, json);
    if outcome != Outcome::Success {
        eprintln!("the new value is in the store but was not delivered everywhere: run `terroir apply {}` again (the previous value is in {kept})", file.display());
    }
    outcome
}

fn set(file: &Path, name: &str, catalog: &Catalog, json: bool) -> Outcome {
    let (_, store) = match open(file, catalog) {
        Ok(x) => x,
        Err(o) => return o,
    };
    if std::io::stdin().is_terminal() {
        eprintln!("reading the value of `{name}` from stdin (end with Ctrl-D)");
    }
    let mut value = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut value) {
        return fail(&format!("reading the value from stdin: {e}; expected UTF-8 text"), json);
    }
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        return fail(&format!("no value on stdin for `{name}`; expected the value itself, for example: printf '%s' \"$VALUE\" | terroir secrets set {} {name}", file.display()), json);
    }
    let done = store.keep_previous(name).and_then(|kept| store.put(name, &value).map(|()| kept));
    match done {
        Ok(kept) => {
            let how = if store.encrypted() { "encrypted with age" } else { "in clear, mode 0600" };
            if json {
                println!("{}", serde_json::to_string_pretty(&json!({"secret": name, "encrypted": store.encrypted(), "previous": kept, "store": store.dir()})).expect("serializes"));
            } else {
                let prev = if kept { " (the value it replaced is kept as its .previous)" } else { "" };
                println!("set `{name}` in {} ({how}){prev}; deliver it with: terroir apply {}", store.dir().display(), file.display());
            }
            Outcome::Success
        }
        Err(e) => fail(&e.to_string(), json),
    }
}

fn seal(file: &Path, catalog: &Catalog, json: bool) -> Outcome {
    let (_, store) = match open(file, catalog) {
        Ok(x) => x,
        Err(o) => return o,
    };
    match store.seal() {
        Ok(sealed) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&json!({"store": store.dir(), "sealed": sealed})).expect("serializes"));
            } else if sealed.is_empty() {
                println!("nothing to seal: every file of {} is already encrypted", store.dir().display());
            } else {
                println!("sealed {} file{} of {} with age ({}); the clear files are removed", sealed.len(), if sealed.len() == 1 { "" } else { "s" }, store.dir().display(), sealed.join(", "));
            }
            Outcome::Success
        }
        Err(e) => fail(&e.to_string(), json),
    }
}

fn keygen(out: &Path, json: bool) -> Outcome {
    let (text, recipient) = crate::secrets::new_identity();
    let written = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(out).and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()));
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return fail(&format!("{} exists; an identity is never overwritten (it may be the only key to a store): choose another path", out.display()), json);
        }
        Err(e) => return fail(&format!("{}: {e}", out.display()), json),
    }
    if json {
        println!("{}", json!({"identity": out, "recipient": recipient}));
    } else {
        eprintln!("wrote an age identity to {} (mode 0600): keep it safe, it decrypts the store; list its recipient in spec.secrets.recipients and set TERROIR_AGE_IDENTITY={} to use it", out.display(), out.display());
        println!("{recipient}");
    }
    Outcome::Success
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate rotates with its key (the apply makes both again); a password alone.
    #[test]
    fn certificates_rotate_with_their_keys() {
        let held: Vec<String> = ["tls-db1-cert", "tls-db1-key", "public-tls-cert", "public-tls-key", "public-tls-state", "database-password"].map(String::from).to_vec();
        assert_eq!(rotated_names("tls-db1-key", &held), ["tls-db1-key", "tls-db1-cert"]);
        assert_eq!(rotated_names("public-tls-cert", &held), ["public-tls-key", "public-tls-cert"]);
        assert_eq!(rotated_names("public-tls-state", &held), ["public-tls-key", "public-tls-cert"]);
        assert_eq!(rotated_names("database-password", &held), ["database-password"]);
        assert!(is_certificate("public-tls-key") && !is_certificate("acme-account"));
    }
}
