//! The JSON Schema of `todo.yaml`, generated from the Rust types so that it
//! cannot drift from what the loader accepts (a test compares it with
//! `docs/todo.schema.json`).

use super::file::ProjectFile;

pub fn json_schema() -> String {
    let schema = schemars::schema_for!(ProjectFile);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}
