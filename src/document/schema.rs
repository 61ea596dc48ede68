//! The Platform document's JSON Schema, generated from the Rust types so that it cannot drift.

use serde_json::Value;

use super::platform::Platform;

pub const SCHEMA_ID: &str = "https://terroir.eu/schemas/v1alpha1/platform.json";

/// The JSON Schema of a Platform document (draft 2020-12).
pub fn platform_schema() -> Value {
    // Optional fields are simply not required; `null` is not a value users should write, and
    // `anyOf [T, null]` would turn precise errors into vague ones.
    let schema = schemars::schema_for!(Platform);
    let mut value = serde_json::to_value(schema).expect("a generated schema serializes");
    drop_null_alternatives(&mut value);
    if let Some(obj) = value.as_object_mut() {
        obj.insert("$id".into(), Value::String(SCHEMA_ID.into()));
    }
    value
}

/// The schema as the pretty, stable text `terroir schema` prints and the repository commits.
pub fn platform_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&platform_schema()).expect("a schema serializes");
    s.push('\n');
    s
}

/// `Option<T>` fields come out as `anyOf: [T, {type: null}]` or `type: [T, "null"]`; keep only `T`.
fn drop_null_alternatives(v: &mut Value) {
    match v {
        Value::Object(obj) => {
            if let Some(Value::Array(types)) = obj.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    obj.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(alts)) = obj.get("anyOf") {
                let non_null: Vec<Value> = alts
                    .iter()
                    .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                    .cloned()
                    .collect();
                if non_null.len() == 1 && alts.len() == 2 {
                    obj.remove("anyOf");
                    if let Value::Object(inner) = &non_null[0] {
                        for (k, val) in inner {
                            obj.entry(k.clone()).or_insert_with(|| val.clone());
                        }
                    }
                }
            }
            for child in obj.values_mut() {
                drop_null_alternatives(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null_alternatives),
        _ => {}
    }
}
