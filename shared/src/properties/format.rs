//! JSON, TOML and YAML documents chosen by file extension: repository property files
//! (`properties.{json,toml,yaml}`) and the actions manifest (`actions.{yaml,json,toml}`).

use serde::de::DeserializeOwned;
use std::path::Path;

/// A supported document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Toml,
    Yaml,
}

/// A document that cannot be read; the message names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("{file}: unsupported file type (expected .json, .toml, .yaml or .yml)")]
    Unsupported { file: String },
    #[error("{file}: invalid {format}: {message}")]
    Invalid {
        file: String,
        format: &'static str,
        message: String,
    },
}

impl Format {
    /// The format for a file name's extension (`.json`, `.toml`, `.yaml`, `.yml`).
    pub fn from_file_name(file_name: &str) -> Option<Format> {
        match Path::new(file_name).extension()?.to_str()? {
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }

    /// The format's name as users know it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Toml => "TOML",
            Format::Yaml => "YAML",
        }
    }

    fn deserialize<T: DeserializeOwned>(self, text: &str) -> Result<T, String> {
        match self {
            Format::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
            Format::Toml => toml::from_str(text).map_err(|e| e.to_string()),
            Format::Yaml => yaml_serde::from_str(text).map_err(|e| e.to_string()),
        }
    }
}

/// Deserialises `text` in the format given by `file_name`'s extension. Deserialising straight into
/// `T` (rather than through a JSON value) keeps the parsers' line and column numbers in errors.
pub fn parse_document<T: DeserializeOwned>(file_name: &str, text: &str) -> Result<T, FormatError> {
    let format = Format::from_file_name(file_name).ok_or_else(|| FormatError::Unsupported {
        file: file_name.to_owned(),
    })?;
    format
        .deserialize(text)
        .map_err(|message| FormatError::Invalid {
            file: file_name.to_owned(),
            format: format.name(),
            message: message.trim_end().to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn the_three_formats_parse_to_the_same_value() {
        let expected = json!({"a": {"b": [1, "two"]}});
        let docs = [
            ("p.json", r#"{"a": {"b": [1, "two"]}}"#),
            ("p.toml", "[a]\nb = [1, \"two\"]\n"),
            ("p.yaml", "a:\n  b: [1, two]\n"),
            ("p.yml", "a: {b: [1, two]}"),
        ];
        for (file, text) in docs {
            assert_eq!(
                parse_document::<Value>(file, text),
                Ok(expected.clone()),
                "{file}"
            );
        }
    }

    #[test]
    fn errors_name_the_file_and_the_format() {
        let error = parse_document::<Value>("dir/p.toml", "a = ").expect_err("invalid");
        let message = error.to_string();
        assert!(
            message.starts_with("dir/p.toml: invalid TOML: "),
            "{message}"
        );
    }

    #[test]
    fn unknown_extensions_are_refused() {
        assert_eq!(
            parse_document::<Value>("p.ini", ""),
            Err(FormatError::Unsupported {
                file: "p.ini".to_owned()
            })
        );
    }
}
