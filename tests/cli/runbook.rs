//! The reversibility runbook names what this deployment really has: hosts and addresses, the
//! database, paths, namespace, bucket, the commands with the document's name, estimated durations
//! that follow the declared sizes, and the Data Act's articles.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::Path;

use common::*;
use terroir::pipeline::blueprint::Catalog;
use terroir::pipeline::render::inventory;
use terroir::pipeline::render::plan::Plan;
use terroir::pipeline::render::reversibility::{
    ARCHIVE_BYTES_PER_SEC, EXPORT_DATABASE_BYTES_PER_SEC, KUBERNETES_GRAFANA_VOLUME,
    KUBERNETES_MAIL_SPOOL_VOLUME, RESTORE_DATABASE_BYTES_PER_SEC, human_duration, seconds_for,
};
use terroir::reversibility::inventory::{ReadKind, export_reads};

const RUNBOOK: &str = "runbooks/reversibility.md";

fn runbook_of(doc: &Path, parent: &Path, leaf: &str) -> String {
    let out = render(doc, parent, leaf);
    std::fs::read_to_string(out.join(RUNBOOK)).unwrap()
}

fn assert_has(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "the runbook does not contain `{n}`");
    }
}

/// The row of the durations table (section 3) for one piece of data.
fn estimate_row<'a>(runbook: &'a str, what: &str) -> &'a str {
    let section = &runbook[runbook
        .find("## 3. Estimated durations")
        .expect("a durations section")..];
    section
        .lines()
        .find(|l| l.starts_with(&format!("| {what} |")))
        .unwrap_or_else(|| panic!("no estimate row for {what}"))
}

#[test]
fn baremetal_runbook_names_every_host_address_database_and_path() {
    let tmp = tempfile::tempdir().unwrap();
    let text = runbook_of(&example("baremetal.yaml"), tmp.path(), "out");
    for (host, address, roles) in [
        ("db1", "198.18.0.11", "database"),
        ("ops1", "198.18.0.12", "mta, monitoring"),
        ("app1", "198.18.0.13", "app"),
    ] {
        assert_has(
            &text,
            &[
                &format!("| {host} | {address} | {roles} |"),
                &format!("ssh -p 22 deploy@{address} sudo "),
            ],
        );
    }
    assert_has(
        &text,
        &[
            "database `crm` (PostgreSQL 15, owned by role `crm`)",
            "db1 (198.18.0.11), `/var/lib/postgresql/15/main`",
            "ops1 (198.18.0.12), `/var/spool/postfix`",
            "`/var/mail`",
            "`/var/lib/prometheus/metrics2`",
            "app1 (198.18.0.13), `/var/lib/acme-crm`",
            "pg pg_dump --format=plain --no-owner --no-privileges crm > export/database/crm.sql",
            "`mail/ops1/queue.tar`",
            "`mail/ops1/queue.json`",
            "`mail/ops1/mailboxes.tar`",
            "`metrics/ops1/tsdb-snapshot.tar`",
            "`app/app1/data.tar`",
            "`configuration/hosts/db1/deployed.tar`",
            // Grafana does not run on hosts, and the runbook says so
            "| dashboards | not deployed: Grafana is not packaged by Debian",
            // secrets by name and place, never by value
            "`/etc/opendkim/keys/acme2026.private`",
            "`.terroir/acme-crm/secrets/database-password`",
            // erasure, host by host, and the DKIM record
            "# db1 (198.18.0.11)",
            "ssh -p 22 deploy@198.18.0.11 sudo rm -rf /var/lib/postgresql",
            "`acme2026._domainkey.crm.acme.example.fr`",
        ],
    );
}

#[test]
fn terroir_commands_name_the_document() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = tmp.path().join("acme-prod.yaml");
    std::fs::copy(example("baremetal.yaml"), &doc).unwrap();
    let text = runbook_of(&doc, tmp.path(), "out");
    assert_has(
        &text,
        &[
            "terroir export acme-prod.yaml --to export/ --recipient age1...",
            "--recipients-file FILE",
            "terroir restore new-platform.yaml --from export/ --identity key.txt --dry-run",
            "terroir drill acme-prod.yaml --into drill-platform.yaml --report drill/",
            "drill-report.json",
            "drill-report.md",
            "cp acme-prod.yaml export/configuration/platform.yaml",
            "`manifest.json`",
            "`SHA256SUMS`",
            "sha256sum -c --strict SHA256SUMS",
            "psql -v ON_ERROR_STOP=1 --single-transaction -f",
        ],
    );
    // the file name only: no directory of the machine it was rendered on
    assert!(
        !text.contains(&tmp.path().display().to_string()),
        "the runbook names a local path"
    );
}

/// Section 6 erases with `terroir destroy` and its signed record first, on every target, and
/// says what the record holds and when destroy refuses; the manual way follows.
#[test]
fn erasure_is_done_by_destroy_and_recorded_in_a_signed_record() {
    let tmp = tempfile::tempdir().unwrap();
    for ex in [
        "baremetal.yaml",
        "kubernetes.yaml",
        "secnumcloud-outscale.yaml",
    ] {
        let text = runbook_of(&example(ex), tmp.path(), ex);
        let section = &text[text.find("## 6. Erasure and decommissioning").unwrap()
            ..text.find("## 7. Timeline").unwrap()];
        let (with, without) = section.split_at(section.find("### 6.2 Without terroir").unwrap());
        assert!(with.contains("### 6.1 With terroir"), "{ex}");
        assert_has(
            with,
            &[
                &format!("terroir destroy {ex} --delete-data\n"),
                &format!("terroir destroy {ex} --delete-data --key KEY --yes"),
                "erasure-record.json",
                "terroir attest verify erasure-record.json --pubkey KEY.pub",
                "`terroir keygen --out KEY`",
                "https://terroir.eu/attestation/erasure/v1",
                "younger than 24 hours",
                "`--no-final-export`",
                "what was removed, item by item, and where",
                "when: the start and the end, in UTC",
                "what was kept, and why",
                "SHA-256 digests of the last export's\n  `manifest.json` and `SHA256SUMS`",
                "fails (exit 2)",
            ],
        );
        // the manual way is still there, whole
        assert!(
            without.contains("Revoke the platform's credentials"),
            "{ex}"
        );
    }
    let tmp2 = tempfile::tempdir().unwrap();
    let cloud = runbook_of(&example("secnumcloud-outscale.yaml"), tmp2.path(), "c");
    assert_has(
        &cloud,
        &[
            "then runs `tofu destroy` (or `terraform destroy`) on the\nTerraform state (bucket `collectivite-grc-tfstate`, key `terroir/terraform.tfstate`)",
            "or `terraform` for the\n  cloud's resources",
            "after the export of section 2.2, pass `--no-final-export`",
        ],
    );
    let bare = runbook_of(&example("baremetal.yaml"), tmp2.path(), "b");
    assert_has(
        &bare,
        &["Take one with `terroir export` (section 2.1) the day of\nthe erasure"],
    );
}

#[test]
fn backups_are_located_precisely() {
    let tmp = tempfile::tempdir().unwrap();
    let text = runbook_of(&example("baremetal.yaml"), tmp.path(), "out");
    assert_has(
        &text,
        &[
            "bucket `acme-crm-backups` at https://s3.rbx.io.cloud.ovh.net, region `rbx`, operated by OVHcloud (FR)",
            "s3 ls --recursive --summarize s3://acme-crm-backups/",
            "s3 rb s3://acme-crm-backups",
        ],
    );
}

#[test]
fn the_data_act_is_cited_article_by_article() {
    let tmp = tempfile::tempdir().unwrap();
    for ex in [
        "baremetal.yaml",
        "kubernetes.yaml",
        "secnumcloud-outscale.yaml",
    ] {
        let text = runbook_of(&example(ex), tmp.path(), ex);
        assert_has(
            &text,
            &[
                "Regulation (EU) 2023/2854",
                "2025-09-12",
                "| Art. 23 |",
                "| Art. 25(2)(a) |",
                "| Art. 25(2)(d) |",
                "| Art. 25(2)(e), Art. 2(38) |",
                "| Art. 25(2)(g) |",
                "| Art. 25(2)(h) |",
                "| Art. 25(4) |",
                "| Art. 26 |",
                "| Art. 29 |",
                "2027-01-12",
                "| Art. 30 |",
                "| GDPR Art. 20 |",
                "| D0 |",
                "| days 31 to 60 |",
            ],
        );
    }
}

#[test]
fn estimated_durations_follow_the_declared_database_size() {
    let tmp = tempfile::tempdir().unwrap();
    let small = runbook_of(&example("baremetal.yaml"), tmp.path(), "small");
    let doc = variant("baremetal.yaml", tmp.path(), "big.yaml", |t| {
        t.replace("storage: 200Gi", "storage: 2000Gi")
    });
    let big = runbook_of(&doc, tmp.path(), "big");

    let what = "PostgreSQL database `crm`";
    let (small_row, big_row) = (estimate_row(&small, what), estimate_row(&big, what));
    assert_ne!(small_row, big_row, "ten times the data, the same estimate");
    for (row, gib) in [(small_row, 200u64), (big_row, 2000)] {
        let bytes = gib << 30;
        let export = human_duration(seconds_for(bytes, EXPORT_DATABASE_BYTES_PER_SEC));
        let restore = human_duration(seconds_for(bytes, RESTORE_DATABASE_BYTES_PER_SEC));
        assert!(row.contains(&format!("| {gib}Gi (")), "{row}");
        assert!(
            row.ends_with(&format!("| {export} | {restore} |")),
            "{row} should estimate {export} and {restore}"
        );
    }
    // the metrics volume did not change, nor its estimate
    assert_eq!(
        estimate_row(&small, "Prometheus TSDB (retention 30d)"),
        estimate_row(&big, "Prometheus TSDB (retention 30d)")
    );
    let metrics = human_duration(seconds_for(50 << 30, ARCHIVE_BYTES_PER_SEC));
    assert!(
        estimate_row(&small, "Prometheus TSDB (retention 30d)")
            .ends_with(&format!("| {metrics} | {metrics} |"))
    );
    // upper bounds, measured by a drill, and checked against the 30 days
    assert_has(
        &small,
        &[
            "**upper bounds**",
            "measures the\nreal figures",
            "30 calendar days",
        ],
    );
    let line = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("**In short**"))
            .unwrap()
            .to_owned()
    };
    assert_ne!(line(&small), line(&big), "the summary follows the sizes");
}

#[test]
fn a_switch_beyond_thirty_days_calls_for_article_25_4() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = variant("baremetal.yaml", tmp.path(), "huge.yaml", |t| {
        t.replace("storage: 200Gi", "storage: 100000Gi")
    });
    let text = runbook_of(&doc, tmp.path(), "out");
    assert_has(
        &text,
        &[
            "which does not fit",
            "within 14 working days",
            "extended under Art. 25(4)",
        ],
    );
    assert!(
        !text.contains("| days 31 to 60 |"),
        "the retrieval period follows the extended transition"
    );
}

#[test]
fn kubernetes_runbook_names_the_namespace_and_its_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("kubernetes.yaml"), tmp.path(), "out");
    let text = std::fs::read_to_string(out.join(RUNBOOK)).unwrap();
    assert_has(
        &text,
        &[
            "Kubernetes namespace `mutuelle-crm`",
            "kubectl --context prod-paris -n mutuelle-crm exec -i statefulset/mutuelle-crm-postgres -c postgres",
            "`data-mutuelle-crm-postgres-0` | 100Gi",
            "`data-mutuelle-crm-prometheus-0` | 50Gi",
            "| dashboards (Grafana) |",
            "`mutuelle-crm-grafana-admin`",
            "kubectl --context prod-paris delete namespace mutuelle-crm mutuelle-crm-node-exporter",
            "kubernetes.yaml --to export/ --recipient age1...",
            "terroir restore new-platform.yaml --from export/ --dry-run",
            "kubernetes.yaml --into drill-platform.yaml --report drill/` measures",
            "bucket `mutuelle-crm-backups` at https://oos.cloudgouv-eu-west-1.outscale.com, region `cloudgouv-eu-west-1`",
            "s3://mutuelle-crm-backups/mutuelle-crm/postgres/",
        ],
    );
    // what `terroir export` writes on Kubernetes, and no host's files
    assert_has(
        &text,
        &[
            "| `metrics/mutuelle-crm-prometheus/tsdb-snapshot.tar` |",
            "| `configuration/kubernetes/objects.yaml` |",
            "| `configuration/kubernetes/silences.json` |",
        ],
    );
    assert!(
        !text.contains("configuration/hosts/"),
        "no host on Kubernetes"
    );

    // the volumes the runbook sizes are the ones the blueprint requests
    let mut claims = std::collections::BTreeMap::new();
    for (path, content) in read_tree(&out.join("kubernetes")) {
        let docs: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(std::str::from_utf8(&content).unwrap()).unwrap();
        for doc in docs
            .into_iter()
            .filter(|d| d["kind"] == "PersistentVolumeClaim")
        {
            let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
            claims.insert(
                name,
                (
                    path.clone(),
                    doc["spec"]["resources"]["requests"]["storage"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                ),
            );
        }
    }
    for (claim, size) in [
        ("mutuelle-crm-postfix-spool", KUBERNETES_MAIL_SPOOL_VOLUME),
        ("mutuelle-crm-grafana", KUBERNETES_GRAFANA_VOLUME),
    ] {
        let (file, requested) = &claims[claim];
        assert_eq!(
            requested, size,
            "{file}: {claim} requests {requested}, the runbook estimates {size}"
        );
        assert_has(&text, &[&format!("`{claim}` | {size} |")]);
    }
}

#[test]
fn secnumcloud_vms_are_reached_through_their_terraform_addresses() {
    let tmp = tempfile::tempdir().unwrap();
    let text = runbook_of(&example("secnumcloud-outscale.yaml"), tmp.path(), "out");
    assert_has(
        &text,
        &[
            "DB1_ADDRESS=$(terraform -chdir=terraform output -json hosts | jq -r '.db1.address')",
            "pg() { ssh -p 22 deploy@$DB1_ADDRESS sudo -u postgres \"$@\"; }",
            "| db1 | assigned at provisioning | database |",
            "run on bare-metal and Kubernetes targets\nfor now",
            "terraform -chdir=terraform destroy",
            "bucket `collectivite-grc-tfstate`",
            "bucket `collectivite-grc-backups` at https://oos.cloudgouv-eu-west-1.outscale.com",
        ],
    );
    assert!(!text.contains("db1 ()"), "an empty address is not shown");
}

/// Every non-secret file the plan installs on a host is in that host's `deployed.tar` command, so
/// the manual export does not drift from the blueprint.
#[test]
fn manual_configuration_export_covers_every_planned_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("baremetal.yaml"), tmp.path(), "out");
    let text = std::fs::read_to_string(out.join(RUNBOOK)).unwrap();
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("baremetal/plan.json")).unwrap()).unwrap();
    for host in plan["hosts"].as_array().unwrap() {
        let address = host["address"].as_str().unwrap();
        let line = text
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "ssh -p 22 deploy@{address} sudo tar -C / -cf - etc/nftables.conf"
                ))
            })
            .unwrap_or_else(|| panic!("no deployed.tar command for {address}"));
        let listed: Vec<&str> = line.split_whitespace().collect();
        for step in host["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["kind"] == "file")
        {
            let dest = step["dest"].as_str().unwrap().trim_start_matches('/');
            assert!(
                listed.contains(&dest),
                "{address}: {dest} is deployed but not exported"
            );
        }
    }
}

/// Tables keep their columns, lines carry no trailing white space, and paragraphs are separated by
/// one blank line.
/// One final newline, no two blank lines in a row, no trailing space, tables of even rows.
fn assert_tidy(ex: &str, text: &str) {
    assert!(
        text.ends_with('\n') && !text.ends_with("\n\n"),
        "{ex}: one final newline"
    );
    assert!(!text.contains("\n\n\n"), "{ex}: two blank lines in a row");
    let mut header_cells = None;
    for (i, line) in text.lines().enumerate() {
        assert!(
            !line.ends_with(' ') && !line.contains('\t'),
            "{ex}:{}: trailing space or tab",
            i + 1
        );
        if !line.starts_with('|') {
            header_cells = None;
            continue;
        }
        // cells: `|` outside inline code
        let mut in_code = false;
        let cells = line
            .chars()
            .filter(|c| {
                if *c == '`' {
                    in_code = !in_code;
                }
                *c == '|' && !in_code
            })
            .count();
        match header_cells {
            None => header_cells = Some(cells),
            Some(n) => assert_eq!(cells, n, "{ex}:{}: {line}", i + 1),
        }
    }
}

#[test]
fn runbooks_are_tidy_markdown() {
    let tmp = tempfile::tempdir().unwrap();
    for ex in [
        "baremetal.yaml",
        "baremetal-ha.yaml",
        "kubernetes.yaml",
        "secnumcloud-outscale.yaml",
    ] {
        let out = render(&example(ex), tmp.path(), ex);
        for runbook in [RUNBOOK, "runbooks/operations.md"] {
            let text = std::fs::read_to_string(out.join(runbook)).unwrap();
            assert_tidy(&format!("{ex} {runbook}"), &text);
        }
    }
}

/// With replicas in two sites: the topology host by host, failover and switchover by the
/// commands that do them, the etcd majority's site named, and the database exported from the
/// primary only.
#[test]
fn replicated_runbooks_describe_the_topology_failover_and_the_primary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = render(&example("baremetal-ha.yaml"), tmp.path(), "ha");
    let ops = std::fs::read_to_string(out.join("runbooks/operations.md")).unwrap();
    assert_has(
        &ops,
        &[
            "## Topology",
            "| db3 | database, consensus | FR, OVHcloud, Gravelines GRA-11 (its own) |",
            "| db1 | database, consensus | FR, OVHcloud, Roubaix RBX-8 |",
            "3 servers: one primary and 2 standbys, synchronous",
            "Patroni elects the primary through etcd on db1, db2, db3",
            "the 3 database replicas stand in 2 sites, all in the EU",
            "## Failover and switchover",
            "terroir status baremetal-ha.yaml",
            "terroir switchover baremetal-ha.yaml --to HOST",
            "survives the loss of 1 of them",
            "db1, db2 stand in one site (FR, OVHcloud, Roubaix RBX-8), a majority",
        ],
    );
    let runbook = std::fs::read_to_string(out.join(RUNBOOK)).unwrap();
    assert_has(
        &runbook,
        &[
            "export from the primary",
            "`terroir status baremetal-ha.yaml` names the primary",
            "  db3) pg() { ssh -p 22 deploy@198.18.0.13 sudo -u postgres \"$@\"; } ;;",
            "into the new platform's primary only",
            "NEW_PRIMARY=$NEW_DB1",
        ],
    );
    assert_eq!(
        runbook.matches("pg pg_dump ").count(),
        1,
        "one dump, from the primary"
    );
    // one server: no failover section, no primary to choose
    let single = render(&example("baremetal.yaml"), tmp.path(), "single");
    let ops = std::fs::read_to_string(single.join("runbooks/operations.md")).unwrap();
    assert_has(&ops, &["## Topology", "one server, no standby"]);
    assert!(!ops.contains("## Failover"), "{ops}");
    let runbook = std::fs::read_to_string(single.join(RUNBOOK)).unwrap();
    assert!(!runbook.contains("PRIMARY"), "{runbook}");
}

/// The places a bare-metal runbook may name on a host, from the code that makes or reads them:
/// what the plan writes, what the export reads (a directory with everything below it), the file
/// pgBackRest's secrets are assembled into, and what the inventory says is left in place (logs,
/// Alertmanager's state, the relay's credentials the operator provides).
struct Places {
    exact: std::collections::BTreeSet<String>,
    trees: std::collections::BTreeSet<String>,
}

impl Places {
    fn of(resolved: &terroir::pipeline::resolve::ResolvedPlatform, plan: &Plan) -> Places {
        use terroir::pipeline::render::plan::Step;
        let mut exact = std::collections::BTreeSet::new();
        for host in &plan.hosts {
            for step in &host.steps {
                match step {
                    Step::File { file, .. } => exact.insert(file.dest.clone()),
                    Step::Secret { secret, .. } => exact.insert(secret.dest.clone()),
                    Step::Directory { directory, .. } => exact.insert(directory.path.clone()),
                    Step::Artifact { artifact, .. } => exact.insert(artifact.dir.clone()),
                    Step::Command { command, .. } => match &command.creates {
                        Some(p) => exact.insert(p.clone()),
                        None => false,
                    },
                    _ => false,
                };
            }
        }
        if let Some(b) = terroir::backup::context(resolved) {
            exact.insert(b.secrets_conf);
        }
        for l in inventory::from_plan(resolved, plan).left {
            exact.insert(l.path);
        }
        let trees = export_reads(resolved).into_iter().map(|r| r.path).collect();
        Places { exact, trees }
    }

    fn holds(&self, path: &str) -> bool {
        let under = |p: &str, dir: &str| p == dir || p.starts_with(&format!("{dir}/"));
        self.exact.contains(path)
            || self.trees.iter().any(|t| under(path, t))
            // a directory holding some of them
            || self
                .exact
                .iter()
                .chain(&self.trees)
                .any(|p| under(p, path) && path.matches('/').count() > 1)
    }
}

/// Every absolute path of a host the runbook names: in prose and commands, and the relative
/// names of `tar -C DIR -cf - NAME...`.
fn host_paths(runbook: &str) -> std::collections::BTreeSet<String> {
    let mut paths = std::collections::BTreeSet::new();
    let tidy = |p: &str| {
        p.trim_end_matches(['.', ',', ':'])
            .trim_end_matches('/')
            .to_owned()
    };
    for line in runbook.lines() {
        let chars: Vec<char> = line.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            let starts = *c == '/'
                && (i == 0 || matches!(chars[i - 1], ' ' | '`' | '(' | '"' | '='))
                && chars.get(i + 1).is_some_and(|n| n.is_ascii_alphanumeric());
            if starts {
                let p: String = chars[i..]
                    .iter()
                    .take_while(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '@')
                    })
                    .collect();
                paths.insert(tidy(&p));
            }
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if *w == "-C" && words.get(i + 2) == Some(&"-cf") && words.get(i + 3) == Some(&"-") {
                let dir = words[i + 1].trim_end_matches('/');
                for name in words[i + 4..]
                    .iter()
                    .take_while(|n| !n.starts_with(['\\', '>', '|', '"', '$']))
                    .filter(|n| **n != ".")
                {
                    paths.insert(tidy(&format!("{dir}/{name}")));
                }
            }
        }
    }
    paths
}

fn unplaced(runbook: &str, places: &Places) -> Vec<String> {
    host_paths(runbook)
        .into_iter()
        .filter(|p| !places.holds(p))
        .collect()
}

fn rendered(doc: &Path) -> (terroir::pipeline::resolve::ResolvedPlatform, Plan, String) {
    let catalog = Catalog::new(vec![]);
    let loaded = terroir::pipeline::load(doc, &catalog).unwrap();
    let (resolved, tree) = terroir::pipeline::render::render(&loaded, &catalog).unwrap();
    let plan = Plan::from_tree(&tree).unwrap();
    let runbook = String::from_utf8(tree.files[RUNBOOK].clone()).unwrap();
    (resolved, plan, runbook)
}

/// The runbook names only places the plan writes or the export reads, for every shipped
/// bare-metal example (each backs up to S3), and for hosts that carry the database and the
/// application together.
#[test]
fn every_path_the_runbook_names_is_written_by_the_plan_or_read_by_the_export() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = variant("baremetal.yaml", tmp.path(), "shared.yaml", |t| {
        t.replace("roles: [database]", "roles: [database, app]")
            .replace(
                "        - name: app1\n          address: 198.18.0.13\n          roles: [app]\n",
                "",
            )
    });
    for doc in [
        example("baremetal.yaml"),
        example("baremetal-ha.yaml"),
        shared,
    ] {
        let (resolved, plan, runbook) = rendered(&doc);
        let places = Places::of(&resolved, &plan);
        let named = host_paths(&runbook);
        assert!(named.len() > 20, "{}: only {named:?}", doc.display());
        let unplaced = unplaced(&runbook, &places);
        assert!(
            unplaced.is_empty(),
            "{}: the runbook names places neither the plan writes nor the export reads: {unplaced:?}",
            doc.display()
        );
        // and every place the export reads is in the runbook
        for read in export_reads(&resolved) {
            assert!(
                runbook.contains(&read.path)
                    || read.kind == ReadKind::MailQueue && runbook.contains("/var/spool/postfix"),
                "{}: the export reads {} on {}, the runbook does not say so",
                doc.display(),
                read.path,
                read.host
            );
        }
    }
}

/// A runbook naming a place that nothing writes or reads fails the check above.
#[test]
fn a_path_no_one_writes_is_caught() {
    let (resolved, plan, runbook) = rendered(&example("baremetal.yaml"));
    let places = Places::of(&resolved, &plan);
    assert!(unplaced(&runbook, &places).is_empty());
    for wrong in [
        "the token is in `/etc/acme-crm/secrets/backup-s3-token`.",
        "ssh -p 22 deploy@198.18.0.11 sudo tar -C /var/lib/postgresql -cf - 14 > old.tar",
        "(`/srv/backups`)",
    ] {
        let text = format!("{runbook}\n{wrong}\n");
        assert_eq!(
            unplaced(&text, &places).len(),
            1,
            "`{wrong}` names a place nothing writes or reads"
        );
    }
    // without backups, the plan writes no S3 key: the runbook of a platform with backups names
    // files that one does not have
    let tmp = tempfile::tempdir().unwrap();
    let doc = variant("baremetal.yaml", tmp.path(), "nobackup.yaml", |t| {
        t.replace("    backups:\n", "    backups:\n      enabled: false\n")
    });
    let (resolved, plan, _) = rendered(&doc);
    let without = Places::of(&resolved, &plan);
    let missing = unplaced(&runbook, &without);
    assert!(
        missing.contains(&"/etc/acme-crm/secrets/backup-s3-access-key".to_owned()),
        "{missing:?}"
    );
}

/// With backups to S3, the bucket's keys are files of the database host, and the runbook says
/// which, with their mode and owner, as the plan writes them.
#[test]
fn s3_keys_are_named_where_the_plan_writes_them() {
    for ex in ["baremetal.yaml", "baremetal-ha.yaml"] {
        let (_, plan, runbook) = rendered(&example(ex));
        let mut seen = 0;
        for host in &plan.hosts {
            for step in &host.steps {
                if let terroir::pipeline::render::plan::Step::Secret { secret, .. } = step
                    && secret.secret.starts_with("backup-s3-")
                {
                    seen += 1;
                    let row = runbook
                        .lines()
                        .find(|l| l.starts_with(&format!("| `{}` |", secret.secret)))
                        .unwrap_or_else(|| panic!("{ex}: no row for {}", secret.secret));
                    let copy = format!(
                        "{}, `{}` ({}, {}:{})",
                        host.name, secret.dest, secret.mode, secret.owner, secret.group
                    );
                    assert!(row.contains(&copy), "{ex}: {row} should name {copy}");
                    assert_eq!(secret.mode, "0600", "{ex}: {}", secret.dest);
                    assert!(row.contains("terroir secrets set"), "{row}");
                }
            }
        }
        assert!(seen >= 2, "{ex}: the plan writes no S3 key");
        assert!(
            !runbook.contains("no file of the platform's hosts holds them"),
            "{ex}"
        );
    }
}

/// On Kubernetes the inventory is the rendered manifests: the runbook's Secrets table names
/// exactly the Secrets the workloads read, and every claim and ConfigMap they use.
#[test]
fn kubernetes_inventory_is_the_rendered_manifests() {
    fn walk(v: &serde_json::Value, secrets: &mut BTreeSet<String>, maps: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    match (k.as_str(), x) {
                        ("secretName", serde_json::Value::String(s)) => {
                            secrets.insert(s.clone());
                        }
                        ("secretKeyRef" | "secretRef" | "secret", _) if x["name"].is_string() => {
                            secrets.insert(x["name"].as_str().unwrap().to_owned());
                        }
                        ("configMap" | "configMapKeyRef" | "configMapRef", _)
                            if x["name"].is_string() =>
                        {
                            maps.insert(x["name"].as_str().unwrap().to_owned());
                        }
                        _ => {}
                    }
                    walk(x, secrets, maps);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, secrets, maps)),
            _ => {}
        }
    }
    use std::collections::BTreeSet;
    let tmp = tempfile::tempdir().unwrap();
    for ex in ["kubernetes.yaml", "kubernetes-ha.yaml"] {
        let out = render(&example(ex), tmp.path(), ex);
        let text = std::fs::read_to_string(out.join(RUNBOOK)).unwrap();
        let (mut secrets, mut maps, mut claims) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for (_, content) in read_tree(&out.join("kubernetes")) {
            let docs: Vec<serde_json::Value> =
                serde_saphyr::from_multiple(std::str::from_utf8(&content).unwrap()).unwrap();
            for d in &docs {
                walk(d, &mut secrets, &mut maps);
                if let Some(c) = d["spec"]["template"]["spec"]["volumes"].as_array() {
                    for v in c {
                        if let Some(n) = v["persistentVolumeClaim"]["claimName"].as_str() {
                            claims.insert(n.to_owned());
                        }
                    }
                }
            }
        }
        let section = &text[text.find("### Secrets").unwrap()..text.find("## 2. Export").unwrap()];
        let named: BTreeSet<String> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`').map(|(n, _)| n.to_owned()))
            .collect();
        assert!(secrets.len() > 3, "{ex}: {secrets:?}");
        assert_eq!(
            named, secrets,
            "{ex}: the runbook's Secrets and the manifests'"
        );
        for m in &maps {
            assert!(section.contains(&format!("`{m}`")), "{ex}: ConfigMap {m}");
        }
        for c in &claims {
            assert!(text.contains(&format!("| `{c}` |")), "{ex}: claim {c}");
        }
    }
}
