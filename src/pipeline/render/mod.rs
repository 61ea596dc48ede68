//! Render: the resolved platform through the blueprint's templates into a tree of files, plus
//! `SHA256SUMS`. Pure and deterministic: same document, byte-identical tree.
//!
//! Template layout inside a blueprint (`templates/`):
//! - `kubernetes/…`  rendered when the platform runs on Kubernetes (and applied);
//! - `kubernetes-audit/…`  too, for the cluster's operators to install (never applied);
//! - `baremetal/host/…` rendered once per host into `baremetal/hosts/<host>/…` (variable `host`);
//!   `baremetal/host/plan.yaml.tera` is the host's step list, collected into `baremetal/plan.json`;
//! - `baremetal/…` (other files) rendered once for bare-metal targets;
//! - `terraform/…`  rendered for SecNumCloud targets;
//! - `runbooks/…`, `sovereignty/…`  always; the runbooks last, with the inventory of what the
//!   plan or the manifests deploy (variable `inventory`, `inventory.rs`).
//!
//! A `.tera` suffix is dropped from the output name; a template that renders to only white space
//! produces no file (that is how components are switched off).

pub mod inventory;
pub mod plan;
pub mod reversibility;
pub mod terraform;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::document::{Diagnostic, Loaded};
use crate::pipeline::blueprint::{Blueprint, BlueprintError, Catalog};
use crate::pipeline::resolve::{ResolvedPlatform, resolve};
use crate::policy::sovereignty::preassess;
use crate::text::sha256_hex;

pub const RESOLVED_FILE: &str = "platform.resolved.json";
pub const SUMS_FILE: &str = "SHA256SUMS";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the document is invalid")]
    Invalid(Vec<Diagnostic>),
    #[error(transparent)]
    Blueprint(#[from] BlueprintError),
    #[error("template {template} of blueprint {blueprint} failed: {message}")]
    Template {
        blueprint: String,
        template: String,
        message: String,
    },
    #[error("{0}")]
    Plan(String),
    #[error(transparent)]
    NoPlan(#[from] plan::NoPlan),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

/// A rendered tree: relative path -> content, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderedTree {
    pub files: BTreeMap<String, Vec<u8>>,
}

/// A blueprint with its templates compiled once, ready to render many documents.
pub struct Renderer {
    blueprint: Blueprint,
    tera: tera::Tera,
}

fn render_err(bp: &Blueprint, template: &str, e: &tera::Error) -> RenderError {
    // Tera's Display is a one-liner; the source chain holds the reason.
    let message = crate::text::error_chain(e);
    RenderError::Template {
        blueprint: bp.name.clone(),
        template: template.to_owned(),
        message,
    }
}

impl Renderer {
    pub fn new(blueprint: Blueprint) -> Result<Self, RenderError> {
        let mut tera = tera::Tera::new();
        register_filters(&mut tera);
        for (name, body) in &blueprint.templates {
            tera.add_raw_template(name, body)
                .map_err(|e| render_err(&blueprint, name, &e))?;
        }
        Ok(Renderer { blueprint, tera })
    }

    pub fn blueprint(&self) -> &Blueprint {
        &self.blueprint
    }

    /// Resolve and render one checked document.
    pub fn render(&self, loaded: &Loaded) -> Result<(ResolvedPlatform, RenderedTree), RenderError> {
        let params = self
            .blueprint
            .resolve_parameters(loaded)
            .map_err(RenderError::Invalid)?;
        let resolved = resolve(&loaded.platform, &self.blueprint, params);
        let assessment = preassess::assess(&loaded.platform, &resolved);
        let claims = crate::continuity::claims::applicable(&resolved, &self.blueprint.continuity);
        let mut ctx_value =
            serde_json::to_value(&resolved).expect("the resolved platform serializes");
        if let Value::Object(o) = &mut ctx_value {
            o.insert(
                "assessment".into(),
                serde_json::to_value(&assessment).expect("an assessment serializes"),
            );
            let figures = reversibility::context(&resolved, &loaded.file);
            o.insert(
                "reversibility".into(),
                serde_json::to_value(&figures).expect("the reversibility figures serialize"),
            );
            o.insert(
                "continuity".into(),
                serde_json::to_value(&claims).expect("the continuity claims serialize"),
            );
            o.insert(
                "backup".into(),
                serde_json::to_value(crate::backup::context(&resolved))
                    .expect("the backup settings serialize"),
            );
        }
        let base_ctx = tera::Context::from_serialize(&ctx_value)
            .map_err(|e| render_err(&self.blueprint, "(context)", &e))?;

        let on_kubernetes = !resolved.platform.namespace.is_empty();
        let mut tree = RenderedTree::default();
        let mut host_plans: Vec<(String, String)> = Vec::new();
        // the runbooks describe what the other templates produce: rendered once those are
        let mut runbooks: Vec<(&str, &str)> = Vec::new();
        for name in self.blueprint.templates.keys() {
            let out_name = name.strip_suffix(".tera").unwrap_or(name);
            let section = out_name.split('/').next().unwrap_or_default();
            let wanted = match section {
                "kubernetes" | "kubernetes-audit" => on_kubernetes,
                "baremetal" => resolved.target_kind == "baremetal",
                "terraform" => resolved.target_kind == "secnumcloud",
                "runbooks" | "sovereignty" => true,
                _ => false, // partials and macros live elsewhere (for example `_macros/`)
            };
            if !wanted {
                continue;
            }
            if section == "runbooks" {
                runbooks.push((name, out_name));
                continue;
            }
            if let Some(rest) = out_name.strip_prefix("baremetal/host/") {
                for host in &resolved.hosts {
                    let mut ctx = base_ctx.clone();
                    ctx.insert("host", host);
                    let text = self
                        .tera
                        .render(name, &ctx)
                        .map_err(|e| render_err(&self.blueprint, name, &e))?;
                    if rest == "plan.yaml" {
                        host_plans.push((host.name.clone(), text));
                    } else if !text.trim().is_empty() {
                        tree.files.insert(
                            format!("baremetal/hosts/{}/{rest}", host.name),
                            text.into_bytes(),
                        );
                    }
                }
                continue;
            }
            let text = self
                .tera
                .render(name, &base_ctx)
                .map_err(|e| render_err(&self.blueprint, name, &e))?;
            if !text.trim().is_empty() {
                tree.files.insert(out_name.to_owned(), text.into_bytes());
            }
        }
        let inventory = if resolved.target_kind == "baremetal" {
            let plan = plan::build(&resolved, &host_plans, &tree)?;
            tree.files
                .insert("baremetal/plan.json".into(), plan.to_json());
            inventory::from_plan(&resolved, &plan)
        } else {
            inventory::Inventory {
                cluster: inventory::from_manifests(&tree),
                ..Default::default()
            }
        };
        let mut ctx = base_ctx;
        ctx.insert("inventory", &inventory);
        for (name, out_name) in runbooks {
            let text = self
                .tera
                .render(name, &ctx)
                .map_err(|e| render_err(&self.blueprint, name, &e))?;
            if !text.trim().is_empty() {
                tree.files.insert(out_name.to_owned(), text.into_bytes());
            }
        }
        // The provider module the root module calls: the rendered tree runs as it is.
        if let Some(sc) = loaded.platform.spec.target.secnumcloud() {
            let provider = sc.provider.as_str();
            for (rel, content) in terraform::module_files(provider) {
                tree.files.insert(
                    format!("terraform/modules/{provider}/{rel}"),
                    content.to_vec(),
                );
            }
        }
        let mut resolved_json =
            serde_json::to_vec_pretty(&resolved).expect("the resolved platform serializes");
        resolved_json.push(b'\n');
        tree.files.insert(RESOLVED_FILE.into(), resolved_json);
        let mut assessment_json =
            serde_json::to_vec_pretty(&assessment).expect("an assessment serializes");
        assessment_json.push(b'\n');
        tree.files
            .insert("sovereignty/pre-assessment.json".into(), assessment_json);
        let deps = crate::policy::sovereignty::dependencies::report(
            &loaded.platform,
            crate::policy::locality::catalog::Catalog::builtin(),
            &claims,
        );
        let mut deps_json =
            serde_json::to_vec_pretty(&deps).expect("a dependency report serializes");
        deps_json.push(b'\n');
        tree.files
            .insert("sovereignty/dependencies.json".into(), deps_json);
        tree.files.insert(
            "sovereignty/dependencies.md".into(),
            crate::policy::sovereignty::dependencies::markdown(&deps).into_bytes(),
        );
        Ok((resolved, tree))
    }
}

/// Load the document's blueprint from the catalog and render it.
pub fn render(
    loaded: &Loaded,
    catalog: &Catalog,
) -> Result<(ResolvedPlatform, RenderedTree), RenderError> {
    let bp = catalog.load(&loaded.platform.spec.blueprint.name)?;
    Renderer::new(bp)?.render(loaded)
}

impl RenderedTree {
    /// `sha256sum -c` format, sorted by path (the tree is a sorted map).
    pub fn sha256sums(&self) -> String {
        let mut out = String::new();
        for (path, content) in &self.files {
            out.push_str(&sha256_hex(content));
            out.push_str("  ");
            out.push_str(path);
            out.push('\n');
        }
        out
    }

    /// Write the tree and its `SHA256SUMS` into `dir`, replacing a previous render there.
    /// A directory that holds anything but a previous render is refused unless `force`.
    /// The new tree is written beside it first, then swapped in, so a failed write leaves
    /// the previous render intact.
    /// Returns the `SHA256SUMS` it wrote, for a caller that reports the digests.
    pub fn write_to(&self, dir: &Path, force: bool) -> Result<String, RenderError> {
        let werr = |path: &Path| {
            let path = path.to_owned();
            move |source| RenderError::Write { path, source }
        };
        if dir.exists() {
            let is_previous = dir.join(SUMS_FILE).is_file();
            let empty = std::fs::read_dir(dir).map_err(werr(dir))?.next().is_none();
            if !is_previous && !empty && !force {
                return Err(RenderError::Refused(format!(
                    "{} exists and is not a previous render (no {SUMS_FILE}); choose an empty or new directory, or pass --force to replace it",
                    dir.display()
                )));
            }
        }
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(werr(parent))?;
        let leaf = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "render".into());
        let staging = parent.join(format!(".{leaf}.terroir-new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        let sha256sums = self.sha256sums();
        let result = (|| {
            for (rel, content) in &self.files {
                let path = staging.join(rel);
                if let Some(p) = path.parent() {
                    std::fs::create_dir_all(p).map_err(werr(p))?;
                }
                let mut f = std::fs::File::create(&path).map_err(werr(&path))?;
                f.write_all(content).map_err(werr(&path))?;
            }
            let sums = staging.join(SUMS_FILE);
            std::fs::write(&sums, &sha256sums).map_err(werr(&sums))
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        if dir.exists() {
            let old = parent.join(format!(".{leaf}.terroir-old-{}", std::process::id()));
            std::fs::rename(dir, &old).map_err(werr(dir))?;
            std::fs::rename(&staging, dir).map_err(werr(dir))?;
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&staging, dir).map_err(werr(dir))?;
        }
        Ok(sha256sums)
    }
}

fn register_filters(tera: &mut tera::Tera) {
    // JSON text of any value: also a correctly quoted YAML scalar and HCL string.
    tera.register_filter(
        "json",
        |v: tera::Value, _: tera::Kwargs, _: &tera::State| {
            serde_json::to_string(&v).unwrap_or_default()
        },
    );
    tera.register_filter("sha256", |v: &str, _: tera::Kwargs, _: &tera::State| {
        sha256_hex(v.as_bytes())
    });
    // Quote for a POSIX shell.
    tera.register_filter(
        "shell_quote",
        |v: &str, _: tera::Kwargs, _: &tera::State| format!("'{}'", v.replace('\'', r"'\''")),
    );
    // An SQL string literal.
    tera.register_filter(
        "sql_literal",
        |v: &str, _: tera::Kwargs, _: &tera::State| sql_literal(v),
    );
    // A list of strings as an SQL `text[]` literal.
    tera.register_filter(
        "sql_text_array",
        |v: tera::Value, _: tera::Kwargs, _: &tera::State| {
            let items: Vec<String> = serde_json::to_value(&v)
                .ok()
                .and_then(|j| j.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .map(|i| sql_literal(i.as_str().unwrap_or_default()))
                .collect();
            format!("array[{}]::text[]", items.join(", "))
        },
    );
}

fn sql_literal(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}
