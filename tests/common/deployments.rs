//! Platforms deployed once on the test hosts and shared by the tests that check independent
//! things on them (`TestHosts::deployed`): each such test reads what it needs and leaves the
//! platform as it found it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::hosts::TestHosts;
use super::*;

pub const PLATFORM: &str = "acme-crm";
pub const ADDRESS: &str = "198.18.0.11";
/// A value no generator would make, planted as the database password before the first apply.
pub const PLANTED: &str = "Planted-Secret-7f3c9a1e-do-not-leak";

// Hosts handed over from one test to the next (`TestHosts::hand_over`, `take_over`), in the
// order .config/nextest.toml runs them: each takes over the platform the previous one left, and
// its apply then configures what the packages already installed there.

/// reversibility -> backups: the two one-host platforms of the drill, on h1 and h2.
pub const AFTER_THE_DRILL: &str = "after the drill: two one-host platforms";
/// apply -> the no-op benchmark: the example on three hosts.
pub const AFTER_THE_APPLY: &str = "after the apply: the example on three hosts";

/// The name `OneHostPlatform` is deployed and handed over as.
pub const ONE_HOST_PLATFORM: &str = "one host, every role, two tenants";

/// The bare-metal example on one host (h1) with every role, two tenants (alpha and beta), the smoke
/// application, no backups, and `PLANTED` as the database password.
pub struct OneHostPlatform {
    pub hosts: TestHosts,
    /// The directory of the document, and so of its secret store.
    pub dir: PathBuf,
    pub doc: PathBuf,
    /// What the first apply printed (stdout, then stderr).
    pub first_apply: Vec<u8>,
}

impl OneHostPlatform {
    pub fn get() -> OneHostPlatform {
        let hosts = TestHosts::deployed(ONE_HOST_PLATFORM, 1, |hosts| {
            let dir = hosts.dir();
            let dir = dir.as_path();
            let doc = platform(hosts, dir);
            // the planted secret: the database password, in the store before anything runs
            let store = dir.join(".terroir").join(PLATFORM).join("secrets");
            {
                use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&store)
                    .unwrap();
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(store.join("database-password"))
                    .unwrap();
                std::io::Write::write_all(&mut f, PLANTED.as_bytes()).unwrap();
            }
            let out = terroir()
                .arg("apply")
                .arg(&doc)
                .timeout(Duration::from_secs(1500))
                .output()
                .unwrap();
            std::fs::write(
                dir.join("first-apply.out"),
                [out.stdout.clone(), out.stderr.clone()].concat(),
            )
            .unwrap();
            assert!(
                out.status.success(),
                "apply: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        });
        let dir = hosts.dir();
        let first_apply = std::fs::read(dir.join("first-apply.out")).unwrap();
        OneHostPlatform {
            hosts,
            doc: dir.join("platform.yaml"),
            dir,
            first_apply,
        }
    }
}

/// The bare-metal example on one host with every role, two tenants, the smoke application.
fn platform(hosts: &TestHosts, dir: &Path) -> PathBuf {
    let (archive, sha) = smoke_release(dir, "crm");
    let artifact = (format!("file://{}", archive.display()), sha);
    variant("baremetal.yaml", dir, "platform.yaml", |t| {
        without_backups(&all_roles_on_one_host(
            &t,
            hosts,
            PLATFORM,
            ("h1", ADDRESS),
            &artifact,
        ))
        .replace(
            "  endpoints:\n",
            "  tenants:\n    - name: alpha\n    - name: beta\n  endpoints:\n",
        )
    })
}
