//! From text to a checked `Platform`: YAML syntax, then the JSON Schema (all structural errors at
//! once), then typed deserialization, then semantic checks. Every error carries `file:line:column`.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use super::diagnostic::{Diagnostic, did_you_mean, dotted, one_of};
use super::platform::Platform;
use super::schema::platform_schema;
use super::source::{self, Pos, SourceMap};
use super::validate;

/// A document that passed every check, with what is needed to point back into its text.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub file: String,
    pub platform: Platform,
    pub source_map: SourceMap,
    /// The document as JSON, exactly as written (before defaults).
    pub raw: Value,
}

/// Load and check a document from a file.
pub fn load_file(path: &std::path::Path) -> Result<Loaded, Vec<Diagnostic>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic::new(
            &file,
            Pos { line: 1, column: 1 },
            "",
            format!("cannot read the file: {e}"),
            "a readable UTF-8 YAML file",
        )]
    })?;
    load_str(&file, &text)
}

/// Load and check a document held in memory; `file` names it in diagnostics.
pub fn load_str(file: &str, text: &str) -> Result<Loaded, Vec<Diagnostic>> {
    let (raw, source_map) = parse_yaml(file, text)?;
    let platform = check_structure(file, &raw, &source_map)?;
    let diags = validate::semantic(file, &platform, &source_map);
    if diags.is_empty() {
        Ok(Loaded {
            file: file.to_owned(),
            platform,
            source_map,
            raw,
        })
    } else {
        Err(diags)
    }
}

/// YAML text to JSON plus source positions. Syntax errors carry the parser's position.
pub fn parse_yaml(file: &str, text: &str) -> Result<(Value, SourceMap), Vec<Diagnostic>> {
    if text.trim().is_empty() {
        return Err(vec![Diagnostic::new(
            file,
            Pos { line: 1, column: 1 },
            "",
            "the document is empty",
            "a Platform document (apiVersion, kind, metadata, spec)",
        )]);
    }
    let tree = source::parse(text).map_err(|e| {
        let pos = e.location().map_or(Pos { line: 1, column: 1 }, |l| Pos {
            line: l.line(),
            column: l.column(),
        });
        let msg = yaml_message(&e);
        vec![Diagnostic::new(
            file,
            pos,
            "",
            format!("invalid YAML: {msg}"),
            "well-formed YAML (check indentation, quotes and brackets)",
        )]
    })?;
    let mut map = SourceMap::default();
    let mut dups = Vec::new();
    let raw = source::to_json(tree, &mut map, &mut dups);
    if raw.is_null() {
        return Err(vec![Diagnostic::new(
            file,
            Pos { line: 1, column: 1 },
            "",
            "the document is empty (only comments)",
            "a Platform document (apiVersion, kind, metadata, spec)",
        )]);
    }
    if !dups.is_empty() {
        return Err(dups
            .into_iter()
            .map(|(key, pos, first)| {
                Diagnostic::new(
                    file,
                    pos,
                    "",
                    format!("duplicate key `{key}` (first set at line {})", first.line),
                    "each key once per mapping",
                )
            })
            .collect());
    }
    Ok((raw, map))
}

/// The parser's message without its own position prefix and snippet.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default().trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // "line 2 column 4: unclosed bracket '['" -> "unclosed bracket '['"
    let msg = match first.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest,
        _ => first,
    };
    if msg.contains("multiple YAML documents") {
        return "the file holds several YAML documents (separated by `---`)".to_owned();
    }
    // the position is reported separately
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(", column ") => msg[..i].to_owned(),
        _ => msg.to_owned(),
    }
}

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        jsonschema::validator_for(schema_json())
            .expect("the generated Platform schema is a valid JSON Schema")
    })
}

fn schema_json() -> &'static Value {
    static S: OnceLock<Value> = OnceLock::new();
    S.get_or_init(platform_schema)
}

/// Check types, enums, ranges and unknown keys against the schema, then deserialize.
pub fn check_structure(
    file: &str,
    raw: &Value,
    map: &SourceMap,
) -> Result<Platform, Vec<Diagnostic>> {
    let mut diags: Vec<Diagnostic> = Vec::new();
    for err in validator().iter_errors(raw) {
        let pointer = err.instance_path().as_str().to_owned();
        diags.extend(describe(
            file,
            &pointer,
            err.kind(),
            err.instance(),
            err.schema_path().as_str(),
            map,
        ));
    }
    if !diags.is_empty() {
        diags.sort_by(|a, b| (a.line, a.column, &a.message).cmp(&(b.line, b.column, &b.message)));
        diags.dedup();
        return Err(diags);
    }
    check_one_target(file, raw, map)?;
    serde_json::from_value::<Platform>(raw.clone()).map_err(|e| {
        vec![Diagnostic::new(
            file,
            Pos { line: 1, column: 1 },
            "",
            format!("document does not match the Platform type: {e}"),
            "a document `terroir schema` accepts",
        )]
    })
}

/// `spec.target` names exactly one kind of place: the enum `Target` cannot hold none or two.
fn check_one_target(file: &str, raw: &Value, map: &SourceMap) -> Result<(), Vec<Diagnostic>> {
    let Some(target) = raw.pointer("/spec/target").and_then(Value::as_object) else {
        return Ok(());
    };
    let set: Vec<&str> = super::platform::TARGET_KINDS
        .into_iter()
        .filter(|k| target.contains_key(*k))
        .collect();
    let expected = "exactly one of `kubernetes`, `baremetal` or `secnumcloud` under `spec.target`";
    match set.len() {
        0 => Err(vec![Diagnostic::new(
            file,
            map.value("/spec/target"),
            "spec.target",
            "no target is set",
            expected,
        )]),
        1 => Ok(()),
        _ => {
            let pointer = format!("/spec/target/{}", set[1]);
            Err(vec![Diagnostic::new(
                file,
                map.key(&pointer),
                &dotted(&pointer),
                format!("more than one target is set ({})", set.join(", ")),
                expected,
            )])
        }
    }
}

fn describe(
    file: &str,
    pointer: &str,
    kind: &ValidationErrorKind,
    instance: &Value,
    schema_path: &str,
    map: &SourceMap,
) -> Vec<Diagnostic> {
    let path = dotted(pointer);
    let at = map.value(pointer);
    let one = |message: String, expected: String| {
        vec![Diagnostic::new(file, at, &path, message, expected)]
    };
    match kind {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = allowed_properties(schema_path);
            unexpected
                .iter()
                .map(|key| {
                    let child = format!("{pointer}/{}", source::pointer_segment(key));
                    let mut expected = match &allowed {
                        Some(a) => format!("{} under `{path}`", one_of(a)),
                        None => format!("no other keys under `{path}`"),
                    };
                    if let Some(s) = allowed
                        .as_ref()
                        .and_then(|a| did_you_mean(key, a.iter().map(String::as_str)))
                    {
                        expected = format!("{expected} (did you mean `{s}`?)");
                    }
                    Diagnostic::new(
                        file,
                        map.key(&child),
                        &dotted(&child),
                        format!("unknown key `{key}`"),
                        expected,
                    )
                })
                .collect()
        }
        ValidationErrorKind::Required { property } => {
            // point at the key that opens the incomplete mapping, where the missing key belongs
            let name = property.as_str().unwrap_or_default();
            vec![Diagnostic::new(
                file,
                map.key(pointer),
                &path,
                format!("missing required key `{name}` in `{path}`"),
                format!("`{name}` to be set"),
            )]
        }
        ValidationErrorKind::Type { kind } => {
            let want = match kind {
                TypeKind::Single(t) => type_name(&format!("{t:?}")),
                TypeKind::Multiple(ts) => {
                    let names: Vec<String> =
                        ts.iter().map(|t| type_name(&format!("{t:?}"))).collect();
                    names.join(" or ")
                }
            };
            one(format!("`{path}` is {}", describe_value(instance)), want)
        }
        ValidationErrorKind::Enum { options } => {
            let opts: Vec<String> = options
                .as_array()
                .map(|a| a.iter().map(plain).collect())
                .unwrap_or_default();
            let got = plain(instance);
            let mut expected = one_of(&opts);
            if let Some(s) =
                did_you_mean(&got, opts.iter().map(String::as_str)).filter(|_| opts.len() > 1)
            {
                expected = format!("{expected} (did you mean `{s}`?)");
            }
            one(format!("`{path}` has unsupported value `{got}`"), expected)
        }
        ValidationErrorKind::Minimum { limit }
        | ValidationErrorKind::ExclusiveMinimum { limit } => one(
            format!("`{path}` is {} which is too small", plain(instance)),
            format!("a number of at least {limit}"),
        ),
        ValidationErrorKind::Maximum { limit }
        | ValidationErrorKind::ExclusiveMaximum { limit } => one(
            format!("`{path}` is {} which is too large", plain(instance)),
            format!("a number of at most {limit}"),
        ),
        ValidationErrorKind::MinItems { limit } => one(
            format!("`{path}` is an empty list"),
            format!(
                "at least {limit} item{}",
                if *limit == 1 { "" } else { "s" }
            ),
        ),
        ValidationErrorKind::MinLength { limit } => one(
            format!("`{path}` is too short"),
            format!("at least {limit} characters"),
        ),
        ValidationErrorKind::Pattern { pattern } => one(
            format!("`{path}` has an invalid format: `{}`", plain(instance)),
            format!("text matching `{pattern}`"),
        ),
        other => one(
            format!("`{path}` is invalid: {other:?}"),
            "a value the schema accepts (see `terroir schema`)".to_owned(),
        ),
    }
}

/// The property names the schema allows at the object whose `additionalProperties` rejected a key.
fn allowed_properties(schema_path: &str) -> Option<Vec<String>> {
    let parent = schema_path.strip_suffix("/additionalProperties")?;
    let mut node = schema_json();
    for seg in parent.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        node = follow_ref(node);
        node = match node {
            Value::Object(o) => o.get(&seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    let node = follow_ref(node);
    let props = node.get("properties")?.as_object()?;
    Some(props.keys().cloned().collect())
}

fn follow_ref(node: &Value) -> &Value {
    if let Some(r) = node.get("$ref").and_then(Value::as_str)
        && let Some(name) = r.strip_prefix("#/$defs/")
        && let Some(target) = schema_json().get("$defs").and_then(|d| d.get(name))
    {
        return target;
    }
    node
}

fn type_name(t: &str) -> String {
    match t.to_ascii_lowercase().as_str() {
        "string" => "a string".into(),
        "integer" => "a whole number".into(),
        "number" => "a number".into(),
        "boolean" => "true or false".into(),
        "array" => "a list".into(),
        "object" => "a mapping of keys to values".into(),
        "null" => "nothing (null)".into(),
        other => other.to_owned(),
    }
}

fn describe_value(v: &Value) -> String {
    match v {
        Value::Null => "empty (null)".into(),
        Value::Bool(b) => format!("the boolean `{b}`"),
        Value::Number(n) => format!("the number `{n}`"),
        Value::String(s) => format!("the string `{s}`"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
