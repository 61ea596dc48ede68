//! The committed JSON Schema is the one generated from the Rust types (no drift).
#![allow(clippy::unwrap_used)]

use crate::common;

use common::*;

#[test]
fn committed_schema_matches_generated() {
    let committed = std::fs::read_to_string(root().join("schema/platform.schema.json"))
        .expect("schema/platform.schema.json is committed");
    let printed = terroir()
        .arg("schema")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let printed = String::from_utf8(printed).unwrap();
    assert!(
        committed == printed,
        "schema/platform.schema.json is stale: regenerate it with `cargo run -- schema > schema/platform.schema.json`"
    );
}

#[test]
fn schema_refuses_unknown_keys_everywhere() {
    let schema: serde_json::Value =
        serde_json::from_str(&terroir::document::schema::platform_schema_text()).unwrap();
    let defs = schema["$defs"].as_object().unwrap();
    for (name, def) in defs {
        if def.get("properties").is_some() {
            assert_eq!(
                def["additionalProperties"],
                serde_json::Value::Bool(false),
                "{name} must refuse unknown keys"
            );
        }
    }
    assert_eq!(
        schema["additionalProperties"],
        serde_json::Value::Bool(false)
    );
}
