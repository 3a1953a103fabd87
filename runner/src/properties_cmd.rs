//! `gantry-runner properties set|delete|show`: edit the step's properties from any language.

use crate::cli::{PropertiesCommand, View};
use crate::error::RunnerError;
use crate::owner_docs::{current_merged, read_owner, write_owner};
use crate::paths::Paths;
use crate::pointer;
use gantry_shared::properties::Owner;
use serde_json::Value;
use std::io::Read;

pub fn execute(paths: &Paths, command: PropertiesCommand) -> Result<(), RunnerError> {
    match command {
        PropertiesCommand::Set {
            owner,
            pointer,
            value,
        } => set(paths, owner, &pointer, parse_value(value)?),
        PropertiesCommand::Delete { owner, pointer } => delete(paths, owner, &pointer),
        PropertiesCommand::Show { view } => show(paths, view),
    }
}

fn set(paths: &Paths, owner: Owner, at: &str, value: Value) -> Result<(), RunnerError> {
    let mut document = read_owner(paths, owner)?;
    pointer::set(&mut document, at, value).map_err(|e| RunnerError::Invalid(e.to_string()))?;
    write_owner(paths, owner, &document)
}

/// Deleting what is not there succeeds with a note, like `rm -f`: scripts need not check first.
fn delete(paths: &Paths, owner: Owner, at: &str) -> Result<(), RunnerError> {
    let mut document = read_owner(paths, owner)?;
    let deleted =
        pointer::delete(&mut document, at).map_err(|e| RunnerError::Invalid(e.to_string()))?;
    match deleted {
        true => write_owner(paths, owner, &document),
        false => {
            eprintln!("gantry-runner: nothing to delete at \"{at}\" in the {owner} properties");
            Ok(())
        }
    }
}

fn show(paths: &Paths, view: View) -> Result<(), RunnerError> {
    let document = match view {
        View::Merged => current_merged(paths)?,
        View::Project => read_owner(paths, Owner::Project)?,
        View::Environment => read_owner(paths, Owner::Environment)?,
    };
    let text = serde_json::to_string_pretty(&document)
        .map_err(|e| RunnerError::Invalid(format!("cannot print the properties: {e}")))?;
    println!("{text}");
    Ok(())
}

/// The value to set: JSON when it parses (`8080`, `true`, `{"a":1}`), otherwise the text itself as
/// a string, so `set project /name hello` needs no JSON quoting. Without a value, stdin is read
/// (for multi-line values such as certificates).
fn parse_value(value: Option<String>) -> Result<Value, RunnerError> {
    let text = match value {
        Some(text) => text,
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| RunnerError::Io {
                    what: "cannot read the value from stdin".to_owned(),
                    source,
                })?;
            text
        }
    };
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_json_or_else_text() {
        let parse = |s: &str| parse_value(Some(s.to_owned())).expect("parsed");
        assert_eq!(parse("8080"), json!(8080));
        assert_eq!(parse("{\"a\": [true]}"), json!({"a": [true]}));
        assert_eq!(parse("\"quoted\""), json!("quoted"));
        assert_eq!(parse("hello world"), json!("hello world"));
        assert_eq!(parse(""), json!(""));
    }
}
