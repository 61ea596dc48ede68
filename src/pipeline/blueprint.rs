//! Blueprints: versioned bundles of Tera templates per target, with declared parameters.
//! The shipped ones are embedded in the binary; `--blueprints DIR` adds others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};
use serde::Deserialize;
use serde_json::Value;

use crate::document::Loaded;
use crate::document::diagnostic::{Diagnostic, did_you_mean, one_of};
use crate::document::source::pointer_segment;

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/blueprints");

/// A loaded blueprint: its manifest and every template, by path relative to `templates/`.
#[derive(Debug, Clone)]
pub struct Blueprint {
    pub name: String,
    pub version: String,
    pub description: String,
    pub parameters: BTreeMap<String, Parameter>,
    /// Container images by role, as `repository:tag` relative to the platform's registry.
    pub images: BTreeMap<String, String>,
    /// What the platform promises while a dependency or a member is down, and how
    /// `terroir continuity` shows it.
    pub continuity: Vec<crate::continuity::spec::ClaimSpec>,
    pub templates: BTreeMap<String, String>,
    /// Where it came from (`embedded` or a directory), for messages.
    pub origin: String,
}

/// `blueprint.yaml`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: String,
    version: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    parameters: BTreeMap<String, Parameter>,
    #[serde(default)]
    images: BTreeMap<String, String>,
    #[serde(default)]
    continuity: Vec<crate::continuity::spec::ClaimSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    #[serde(rename = "type")]
    pub kind: ParamType,
    pub default: Value,
    #[serde(default)]
    pub description: String,
    /// Allowed values, when limited.
    #[serde(default, rename = "enum")]
    pub allowed: Vec<Value>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Integer,
    Boolean,
}

#[derive(Debug, thiserror::Error)]
pub enum BlueprintError {
    #[error("blueprint `{name}` not found; available: {available}")]
    NotFound { name: String, available: String },
    #[error("cannot read blueprint at {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid blueprint manifest: {message}")]
    Manifest { path: String, message: String },
}

/// Where blueprints are looked up: extra directories first, then the embedded ones.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub dirs: Vec<PathBuf>,
}

impl Catalog {
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        Catalog { dirs }
    }

    /// Names of every blueprint available.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = EMBEDDED
            .dirs()
            .filter_map(|d| {
                d.path()
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .collect();
        for dir in &self.dirs {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.path().join("blueprint.yaml").is_file() {
                        names.push(e.file_name().to_string_lossy().into_owned());
                    }
                }
            }
            if dir.join("blueprint.yaml").is_file()
                && let Some(n) = dir.file_name()
            {
                names.push(n.to_string_lossy().into_owned());
            }
        }
        names.sort();
        names.dedup();
        names
    }

    pub fn load(&self, name: &str) -> Result<Blueprint, BlueprintError> {
        for dir in &self.dirs {
            for candidate in [dir.join(name), dir.clone()] {
                if candidate.join("blueprint.yaml").is_file()
                    && (candidate != *dir || dir.file_name().is_some_and(|n| n == name))
                {
                    return load_dir(&candidate);
                }
            }
        }
        if let Some(dir) = EMBEDDED.get_dir(name) {
            return load_embedded(dir);
        }
        Err(BlueprintError::NotFound {
            name: name.to_owned(),
            available: self.names().join(", "),
        })
    }
}

fn parse_manifest(origin: &str, text: &str) -> Result<Manifest, BlueprintError> {
    let m = serde_saphyr::from_str::<Manifest>(text).map_err(|e| BlueprintError::Manifest {
        path: origin.to_owned(),
        message: e.without_snippet().to_string(),
    })?;
    crate::continuity::spec::check(&m.continuity).map_err(|message| BlueprintError::Manifest {
        path: origin.to_owned(),
        message,
    })?;
    Ok(m)
}

fn load_embedded(dir: &'static Dir<'static>) -> Result<Blueprint, BlueprintError> {
    let base = dir.path();
    let manifest_file =
        dir.get_file(base.join("blueprint.yaml"))
            .ok_or_else(|| BlueprintError::Manifest {
                path: format!("(embedded) {}", base.display()),
                message: "blueprint.yaml is missing".into(),
            })?;
    let origin = format!("(embedded) {}/blueprint.yaml", base.display());
    let manifest = parse_manifest(&origin, manifest_file.contents_utf8().unwrap_or_default())?;
    let mut templates = BTreeMap::new();
    collect_embedded(dir, &base.join("templates"), &mut templates);
    Ok(finish(manifest, templates, "embedded".into()))
}

fn collect_embedded(dir: &'static Dir<'static>, root: &Path, out: &mut BTreeMap<String, String>) {
    for f in dir.files() {
        if let Ok(rel) = f.path().strip_prefix(root) {
            out.insert(
                rel.to_string_lossy().replace('\\', "/"),
                f.contents_utf8().unwrap_or_default().to_owned(),
            );
        }
    }
    for d in dir.dirs() {
        collect_embedded(d, root, out);
    }
}

fn load_dir(dir: &Path) -> Result<Blueprint, BlueprintError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|source| BlueprintError::Read {
            path: p.to_owned(),
            source,
        })
    };
    let manifest_path = dir.join("blueprint.yaml");
    let manifest = parse_manifest(&manifest_path.display().to_string(), &read(&manifest_path)?)?;
    let mut templates = BTreeMap::new();
    let root = dir.join("templates");
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| BlueprintError::Read {
            path: d.clone(),
            source,
        })?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(&root) {
                templates.insert(rel.to_string_lossy().replace('\\', "/"), read(&p)?);
            }
        }
    }
    Ok(finish(manifest, templates, dir.display().to_string()))
}

fn finish(m: Manifest, templates: BTreeMap<String, String>, origin: String) -> Blueprint {
    Blueprint {
        name: m.name,
        version: m.version,
        description: m.description,
        parameters: m.parameters,
        images: m.images,
        continuity: m.continuity,
        templates,
        origin,
    }
}

impl Blueprint {
    /// The document's parameters checked against the declared ones, with defaults filled in.
    pub fn resolve_parameters(
        &self,
        loaded: &Loaded,
    ) -> Result<BTreeMap<String, Value>, Vec<Diagnostic>> {
        let given = &loaded.platform.spec.blueprint.parameters;
        let mut diags = Vec::new();
        let mut out = BTreeMap::new();
        for (key, value) in given {
            let ptr = format!("/spec/blueprint/parameters/{}", pointer_segment(key));
            let Some(decl) = self.parameters.get(key) else {
                let names: Vec<&str> = self.parameters.keys().map(String::as_str).collect();
                let mut expected = format!(
                    "a parameter of blueprint `{}`: {}",
                    self.name,
                    one_of(&names)
                );
                if let Some(s) = did_you_mean(key, names.iter().copied()) {
                    expected = format!("{expected} (did you mean `{s}`?)");
                }
                diags.push(Diagnostic::new(
                    &loaded.file,
                    loaded.source_map.key(&ptr),
                    &crate::document::diagnostic::dotted(&ptr),
                    format!("unknown blueprint parameter `{key}`"),
                    expected,
                ));
                continue;
            };
            let type_ok = match decl.kind {
                ParamType::String => value.is_string(),
                ParamType::Integer => value.is_i64() || value.is_u64(),
                ParamType::Boolean => value.is_boolean(),
            };
            if !type_ok {
                diags.push(Diagnostic::new(
                    &loaded.file,
                    loaded.source_map.value(&ptr),
                    &crate::document::diagnostic::dotted(&ptr),
                    format!("parameter `{key}` is `{value}`"),
                    format!("a {:?} value", decl.kind).to_lowercase(),
                ));
                continue;
            }
            if !decl.allowed.is_empty() && !decl.allowed.contains(value) {
                let opts: Vec<String> = decl
                    .allowed
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect();
                diags.push(Diagnostic::new(
                    &loaded.file,
                    loaded.source_map.value(&ptr),
                    &crate::document::diagnostic::dotted(&ptr),
                    format!(
                        "parameter `{key}` has unsupported value `{}`",
                        value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_owned)
                    ),
                    one_of(&opts),
                ));
                continue;
            }
            out.insert(key.clone(), value.clone());
        }
        for (key, decl) in &self.parameters {
            out.entry(key.clone())
                .or_insert_with(|| decl.default.clone());
        }
        // the document's schema knows every image key; this blueprint may use fewer
        for (key, _) in loaded.platform.spec.images.entries() {
            if !self.images.contains_key(key) {
                let ptr = format!("/spec/images/{key}");
                let names: Vec<&str> = self.images.keys().map(String::as_str).collect();
                diags.push(Diagnostic::new(
                    &loaded.file,
                    loaded.source_map.key(&ptr),
                    &crate::document::diagnostic::dotted(&ptr),
                    format!("blueprint `{}` has no image `{key}`", self.name),
                    format!("an image of the blueprint: {}", one_of(&names)),
                ));
            }
        }
        if diags.is_empty() {
            Ok(out)
        } else {
            Err(diags)
        }
    }
}
