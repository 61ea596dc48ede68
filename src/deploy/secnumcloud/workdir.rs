//! The platform's Terraform working directory, as every run of the tool needs it (apply, plan,
//! status, destroy): written from the rendered tree and initialised with the command line's
//! backend settings; and the reading of the tool's JSON.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::CloudError;
use super::terraform::{self, Runner};
use crate::deploy::{DeployError, Work};
use crate::document::{CloudDeploy, SecNumCloudTarget};

/// The public half of the document's SSH key, installed on the VMs by the provider module.
fn public_key(doc: &Path, sc: &SecNumCloudTarget) -> Option<String> {
    let ssh = sc.ssh.as_ref()?;
    let private = crate::deploy::baremetal::resolve_path(&ssh.identity_file, doc);
    let public = PathBuf::from(format!("{}.pub", private.display()));
    std::fs::read_to_string(public)
        .ok()
        .map(|k| k.trim().to_owned())
}

pub(super) fn parse(
    tool: &terraform::Tool,
    what: &'static str,
    expected: &'static str,
    text: &str,
) -> Result<Value, CloudError> {
    serde_json::from_str(text).map_err(|source| CloudError::Unreadable {
        tool: tool.name.clone(),
        what,
        expected,
        source,
    })
}

/// The platform's working directory written from the rendered tree and initialised with the
/// command line's backend settings, as every run of the tool needs it: (the tool, the directory).
pub(super) fn initialised(
    work: &Work<'_>,
    sc: &SecNumCloudTarget,
) -> Result<(terraform::Tool, PathBuf), DeployError> {
    let settings = &work.settings.cloud;
    let doc = work.document_path();
    let tool = terraform::find_tool(settings.tf_binary.as_deref())?;
    let dir = terraform::workdir(&doc, &work.resolved.platform.name);
    let mut vars = serde_json::Map::new();
    if sc.deploy == CloudDeploy::Vms {
        match public_key(&doc, sc) {
            Some(k) => {
                vars.insert("ssh_public_key".into(), Value::String(k));
            }
            None => work.events.warn("no public key beside the document's identityFile (FILE.pub): the VMs get no key for terroir to log in with"),
        }
    }
    terraform::prepare(
        &dir,
        work.tree,
        sc.provider.as_str(),
        settings.modules.as_deref(),
        &Value::Object(vars),
    )?;
    let runner = Runner {
        tool: &tool,
        dir: &dir,
        events: work.events,
    };
    work.events.note(&format!(
        "{} {} in {}",
        tool.name,
        tool.version,
        dir.display()
    ));
    let mut init = vec![
        "init".to_owned(),
        "-input=false".into(),
        "-no-color".into(),
        "-reconfigure".into(),
    ];
    init.extend(
        settings
            .backend_config
            .iter()
            .map(|b| format!("-backend-config={b}")),
    );
    runner.run(&init, false)?;
    Ok((tool, dir))
}

/// The SecNumCloud target of the document the work is on.
pub(super) fn target<'w>(work: &Work<'w>) -> Result<&'w SecNumCloudTarget, DeployError> {
    work.loaded
        .platform
        .spec
        .target
        .secnumcloud()
        .ok_or(DeployError::WrongTarget {
            driver: "secnumcloud",
            kind: work.loaded.platform.spec.target.kind(),
        })
}
