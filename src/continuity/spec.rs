//! The continuity claims as a blueprint states them (`continuity:` in blueprint.yaml): which
//! dependency or member, the degraded mode in words, and the probes. Read with the blueprint;
//! `claims` makes them concrete for one platform.

use serde::{Deserialize, Serialize};

/// What a claim is about: an external dependency or one member of a redundant role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Member {
    /// The database's primary (Patroni promotes a standby).
    Database,
    /// One of the MTAs.
    Mta,
    /// One of the monitoring hosts (Prometheus and an Alertmanager).
    Monitoring,
    /// One of the application hosts.
    App,
}

/// One promise, as the blueprint states it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimSpec {
    /// The dependency that fails: a key under `spec.endpoints` (`smtpRelay`, `backupS3`,
    /// `dnsResolvers`…) or `packageMirror`.
    #[serde(default)]
    pub dependency: Option<String>,
    /// Or the member that stops.
    #[serde(default)]
    pub member: Option<Member>,
    /// The claim holds only when these endpoints are declared too.
    #[serde(default)]
    pub when: Vec<String>,
    /// …and only when these are not.
    #[serde(default)]
    pub unless: Vec<String>,
    /// Targets the claim is made on (`baremetal`, `kubernetes`); every target when empty.
    #[serde(default)]
    pub targets: Vec<String>,
    /// The degraded mode, in the words the reports and runbooks print.
    pub degraded: String,
    /// What is checked while the fault is in place.
    pub probes: Vec<Probe>,
    /// What is checked once the fault is removed: the platform back to nominal.
    #[serde(default)]
    pub nominal: Vec<Probe>,
}

/// A check the drill runs on the platform's own hosts. Each one polls until it holds or its
/// time is up, so that the time it took is what the platform took.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Probe {
    /// Every running application host answers its health path.
    AppServes,
    /// A row is committed on the database's primary (whichever member that is).
    DatabaseWrites,
    /// A message submitted from an application host as the application does leaves the MTA
    /// (`status=sent`), through whichever relay.
    MailDelivered,
    /// The same, and it left through the fallback relay.
    MailThroughFallback,
    /// A message submitted is accepted and waits in the MTA's queue, not lost.
    MailQueued,
    /// A message submitted leaves or waits in the queue: it is not lost (a cut-off).
    MailAccepted,
    /// Every message the drill sent has left the queues.
    MailQueueEmpty,
    /// A backup run now fails (the storage is unreachable), and says why.
    BackupFails,
    /// A backup run now succeeds.
    BackupSucceeds,
    /// A backup run now: whether it works or stops (a cut-off).
    BackupRuns,
    /// The alert is active in Alertmanager within `within` seconds.
    AlertFires { alert: String, within: u64 },
    /// The alert is no longer active in Alertmanager within `within` seconds.
    AlertResolved { alert: String, within: u64 },
    /// Every host resolves the names of the platform's dependencies.
    NamesResolve,
    /// Every application host serves HTTPS with a certificate valid now.
    HttpsServes,
    /// Every component `terroir status` checks is healthy (but the member stopped on purpose).
    ServicesRunning,
    /// Every component is healthy again, the member stopped included.
    MembersRunning,
}

impl Probe {
    /// Its name in reports: the blueprint's spelling.
    pub fn name(&self) -> String {
        match self {
            Probe::AlertFires { alert, .. } => format!("alert-fires {alert}"),
            Probe::AlertResolved { alert, .. } => format!("alert-resolved {alert}"),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        }
    }
}

impl Member {
    pub fn claim_name(self) -> &'static str {
        match self {
            Member::Database => "database-primary",
            Member::Mta => "one-mta",
            Member::Monitoring => "one-prometheus",
            Member::App => "one-app-host",
        }
    }

    pub fn what(self) -> &'static str {
        match self {
            Member::Database => "the database's primary",
            Member::Mta => "one of the MTAs",
            Member::Monitoring => "one of the monitoring hosts",
            Member::App => "one of the application hosts",
        }
    }

    /// The service stopped to make it fail, on platform `platform`'s hosts.
    pub fn service(self, platform: &str) -> String {
        match self {
            Member::Database => "patroni".to_owned(),
            Member::Mta => "postfix".to_owned(),
            Member::Monitoring => "prometheus".to_owned(),
            Member::App => format!("{platform}-app"),
        }
    }

    /// The component `terroir status` names that service by.
    pub fn component(self) -> &'static str {
        match self {
            Member::Database => "patroni",
            Member::Mta => "postfix",
            Member::Monitoring => "prometheus",
            Member::App => "app",
        }
    }

    /// The role whose hosts it is one of.
    pub fn role(self) -> crate::document::Role {
        use crate::document::Role;
        match self {
            Member::Database => Role::Database,
            Member::Mta => Role::Mta,
            Member::Monitoring => Role::Monitoring,
            Member::App => Role::App,
        }
    }
}

/// Check the claims of a blueprint: each names exactly one dependency or member, and a
/// dependency terroir knows. The error says which claim and why.
pub fn check(specs: &[ClaimSpec]) -> Result<(), String> {
    const KNOWN: [&str; 10] = [
        "imageRegistry",
        "imageRegistryMirror",
        "smtpRelay",
        "smtpFallbackRelay",
        "backupS3",
        "dnsResolvers",
        "acmeCa",
        "ai",
        "cdn",
        "packageMirror",
    ];
    for (i, s) in specs.iter().enumerate() {
        match (&s.dependency, &s.member) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(format!(
                    "continuity[{i}]: name either a `dependency` or a `member`, not both or neither"
                ));
            }
            _ => {}
        }
        for key in s
            .dependency
            .iter()
            .chain(s.when.iter())
            .chain(s.unless.iter())
        {
            if !KNOWN.contains(&key.as_str()) {
                return Err(format!(
                    "continuity[{i}]: unknown dependency `{key}`; expected one of {}",
                    KNOWN.join(", ")
                ));
            }
        }
        if s.probes.is_empty() {
            return Err(format!("continuity[{i}]: a claim needs at least one probe"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blueprint_claim_names_one_known_subject_and_probes_something() {
        let parse = |y: &str| serde_saphyr::from_str::<Vec<ClaimSpec>>(y).unwrap();
        assert!(
            check(&parse(
                "- {dependency: smtpRelay, degraded: x, probes: [app-serves]}"
            ))
            .is_ok()
        );
        let e = check(&parse(
            "- {dependency: ftpRelay, degraded: x, probes: [app-serves]}",
        ))
        .unwrap_err();
        assert!(e.contains("unknown dependency `ftpRelay`"), "{e}");
        let e = check(&parse(
            "- {dependency: ai, member: app, degraded: x, probes: [app-serves]}",
        ))
        .unwrap_err();
        assert!(e.contains("not both"), "{e}");
        let e = check(&parse("- {member: app, degraded: x, probes: []}")).unwrap_err();
        assert!(e.contains("at least one probe"), "{e}");
        let probes = parse(
            "- {member: app, degraded: x, probes: [app-serves, {alert-fires: {alert: A, within: 9}}]}",
        );
        assert_eq!(
            probes[0].probes[1],
            Probe::AlertFires {
                alert: "A".into(),
                within: 9
            }
        );
        assert_eq!(probes[0].probes[1].name(), "alert-fires A");
        assert_eq!(probes[0].probes[0].name(), "app-serves");
    }
}
