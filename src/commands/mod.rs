//! What each command does; `main.rs` only parses and maps the outcome to an exit code.

use std::io::{IsTerminal, Write};

use serde_json::json;

use crate::blueprint::Catalog;
use crate::cli::{Cli, Command, OutputFormat, RenderArgs, ValidateArgs};
use crate::model::{self, Diagnostic};
use crate::render::{self, RenderError};

/// How a command ended, mapped to the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Invalid input or usage (exit 1).
    Invalid,
    /// A check failed (exit 2).
    CheckFailed,
}

impl Outcome {
    pub fn code(self) -> i32 {
        match self {
            Outcome::Success => 0,
            Outcome::Invalid => 1,
            Outcome::CheckFailed => 2,
        }
    }
}

pub fn run(cli: Cli) -> Outcome {
    let catalog = Catalog::new(cli.global.blueprints.clone());
    let json = cli.global.output == OutputFormat::Json;
    match cli.command {
        Command::Validate(args) => validate(&args, &catalog, json),
        Command::Render(args) => render_cmd(&args, &catalog, json),
        Command::Schema => {
            print!("{}", model::schema::platform_schema_text());
            Outcome::Success
        }
        Command::Blueprints => blueprints(&catalog, json),
    }
}

/// Print diagnostics for people: the line itself with a caret under the column.
fn print_diagnostics(diags: &[Diagnostic], source: Option<&str>) {
    let mut err = std::io::stderr().lock();
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for d in diags {
        let (red, reset) = if color { ("\x1b[31m", "\x1b[0m") } else { ("", "") };
        let _ = writeln!(err, "{red}error{reset}: {d}");
        if let Some(line) = source.and_then(|s| s.lines().nth(d.line.saturating_sub(1) as usize)) {
            let n = d.line.to_string();
            let _ = writeln!(err, "{:>w$} | {line}", n, w = n.len());
            let pad: String = line.chars().take(d.column.saturating_sub(1) as usize).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            let _ = writeln!(err, "{:>w$} | {pad}^", "", w = n.len());
        }
    }
}

/// Load a document and check its blueprint parameters too.
fn load_checked(path: &std::path::Path, catalog: &Catalog) -> Result<model::Loaded, (Vec<Diagnostic>, Option<String>)> {
    let text = std::fs::read_to_string(path).ok();
    let loaded = model::load_file(path).map_err(|d| (d, text.clone()))?;
    match catalog.load(&loaded.platform.spec.blueprint.name) {
        Ok(bp) => bp.resolve_parameters(&loaded).map(|_| loaded).map_err(|d| (d, text)),
        Err(crate::blueprint::BlueprintError::NotFound { .. }) => {
            let ptr = "/spec/blueprint/name";
            let names = catalog.names();
            let wanted = &loaded.platform.spec.blueprint.name;
            let mut expected = format!("the name of an available blueprint: {}", crate::model::diagnostic::one_of(&names));
            if let Some(s) = crate::model::diagnostic::did_you_mean(wanted, names.iter().map(String::as_str)).filter(|_| names.len() > 1) {
                expected = format!("{expected} (did you mean `{s}`?)");
            }
            let d = Diagnostic::new(&loaded.file, loaded.source_map.value(ptr), "spec.blueprint.name", format!("blueprint `{wanted}` not found"), expected);
            Err((vec![d], text))
        }
        // the blueprint exists but cannot be read: say so where the document names it
        Err(e) => {
            let ptr = "/spec/blueprint/name";
            let d = Diagnostic::new(&loaded.file, loaded.source_map.value(ptr), "spec.blueprint.name", e.to_string(), "a readable blueprint with a valid blueprint.yaml");
            Err((vec![d], text))
        }
    }
}

fn validate(args: &ValidateArgs, catalog: &Catalog, json: bool) -> Outcome {
    let mut results = Vec::new();
    let mut all_valid = true;
    for path in &args.files {
        match load_checked(path, catalog) {
            Ok(loaded) => {
                let kind = crate::resolve::ResolvedPlatform::target_kind_of(&loaded.platform.spec.target);
                if json {
                    results.push(json!({"file": loaded.file, "valid": true, "name": loaded.platform.metadata.name, "target": kind, "errors": []}));
                } else {
                    println!("{}: valid (platform {}, target {kind})", loaded.file, loaded.platform.metadata.name);
                }
            }
            Err((diags, text)) => {
                all_valid = false;
                if json {
                    results.push(json!({"file": path.display().to_string(), "valid": false, "errors": diags}));
                } else {
                    print_diagnostics(&diags, text.as_deref());
                    eprintln!("{}: invalid, {} error{}", path.display(), diags.len(), if diags.len() == 1 { "" } else { "s" });
                }
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results).expect("results serialize"));
    }
    if all_valid { Outcome::Success } else { Outcome::Invalid }
}

fn render_cmd(args: &RenderArgs, catalog: &Catalog, json: bool) -> Outcome {
    let loaded = match load_checked(&args.file, catalog) {
        Ok(l) => l,
        Err((diags, text)) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&json!({"file": args.file.display().to_string(), "rendered": false, "errors": diags})).expect("serializes"));
            } else {
                print_diagnostics(&diags, text.as_deref());
                eprintln!("{}: invalid, nothing rendered", args.file.display());
            }
            return Outcome::Invalid;
        }
    };
    let fail = |e: RenderError| {
        if json {
            println!("{}", json!({"file": args.file.display().to_string(), "rendered": false, "error": e.to_string()}));
        } else {
            eprintln!("error: {e}");
        }
        Outcome::Invalid
    };
    let (resolved, tree) = match render::render(&loaded, catalog) {
        Ok(x) => x,
        Err(RenderError::Invalid(diags)) => {
            print_diagnostics(&diags, std::fs::read_to_string(&args.file).ok().as_deref());
            return Outcome::Invalid;
        }
        Err(e) => return fail(e),
    };
    if let Err(e) = tree.write_to(&args.out, args.force) {
        return fail(e);
    }
    let sums = tree.sha256sums();
    if json {
        let files: Vec<_> = tree
            .files
            .iter()
            .map(|(p, c)| json!({"path": p, "sha256": render::sha256_hex(c), "size": c.len()}))
            .collect();
        let out = json!({
            "file": loaded.file,
            "rendered": true,
            "platform": resolved.platform.name,
            "target": resolved.target_kind,
            "blueprint": {"name": resolved.blueprint.name, "version": resolved.blueprint.version},
            "out": args.out.display().to_string(),
            "treeSha256": render::sha256_hex(sums.as_bytes()),
            "files": files,
        });
        println!("{}", serde_json::to_string_pretty(&out).expect("serializes"));
    } else {
        let mut sections: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for p in tree.files.keys() {
            *sections.entry(p.split('/').next().unwrap_or_default()).or_default() += 1;
        }
        println!(
            "Rendered platform {} (target {}, blueprint {} {}) into {}",
            resolved.platform.name,
            resolved.target_kind,
            resolved.blueprint.name,
            resolved.blueprint.version,
            args.out.display()
        );
        for (section, n) in sections {
            println!("  {section:<28} {n} file{}", if n == 1 { "" } else { "s" });
        }
        println!("Tree digest (sha256 of SHA256SUMS): {}", render::sha256_hex(sums.as_bytes()));
        println!("Check it with: (cd {} && sha256sum -c SHA256SUMS)", args.out.display());
    }
    Outcome::Success
}

fn blueprints(catalog: &Catalog, json: bool) -> Outcome {
    let mut list = Vec::new();
    for name in catalog.names() {
        match catalog.load(&name) {
            Ok(bp) => list.push(bp),
            Err(e) => {
                eprintln!("error: {e}");
                return Outcome::Invalid;
            }
        }
    }
    if json {
        let v: Vec<_> = list
            .iter()
            .map(|bp| {
                let params: serde_json::Map<String, serde_json::Value> = bp
                    .parameters
                    .iter()
                    .map(|(k, p)| (k.clone(), json!({"type": format!("{:?}", p.kind).to_lowercase(), "default": p.default, "enum": p.allowed, "description": p.description})))
                    .collect();
                json!({"name": bp.name, "version": bp.version, "origin": bp.origin, "description": bp.description, "parameters": params})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
    } else {
        for bp in list {
            println!("{} {} ({})\n  {}", bp.name, bp.version, bp.origin, bp.description);
            println!("  parameters:");
            for (k, p) in &bp.parameters {
                println!("    {k:<20} {:<8} default {}  {}", format!("{:?}", p.kind).to_lowercase(), p.default, p.description);
            }
        }
    }
    Outcome::Success
}
