//! The provider modules shipped with terroir (`terraform/modules/` of the source tree): a
//! SecNumCloud render carries its provider's module, so that the rendered root module runs as it
//! is.

use include_dir::{Dir, include_dir};

/// The provider modules shipped with terroir (`terraform/modules/` of the source tree).
pub static MODULES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/terraform/modules");

/// The shipped module of `provider`: (path inside the module, content), sorted.
pub fn module_files(provider: &str) -> Vec<(String, &'static [u8])> {
    let Some(d) = MODULES.get_dir(provider) else {
        return Vec::new();
    };
    let mut out: Vec<(String, &'static [u8])> = files_of(d)
        .into_iter()
        .map(|f| {
            (
                f.path()
                    .strip_prefix(provider)
                    .unwrap_or(f.path())
                    .to_string_lossy()
                    .into_owned(),
                f.contents(),
            )
        })
        .collect();
    out.sort();
    out
}

fn files_of<'a>(d: &'a Dir<'a>) -> Vec<&'a include_dir::File<'a>> {
    let mut out: Vec<&include_dir::File> = d.files().collect();
    for sub in d.dirs() {
        out.extend(files_of(sub));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_provider_has_a_shipped_module_with_the_common_outputs() {
        for p in ["outscale", "ovhcloud", "cloud-temple", "s3ns"] {
            let d = MODULES.get_dir(p).unwrap_or_else(|| panic!("module {p}"));
            let outputs = d
                .get_file(format!("{p}/outputs.tf"))
                .unwrap()
                .contents_utf8()
                .unwrap();
            for o in ["hosts", "kubeconfig", "backup_bucket"] {
                assert!(
                    outputs.contains(&format!("output \"{o}\"")),
                    "{p} outputs {o}"
                );
            }
        }
    }
}
