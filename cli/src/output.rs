//! What commands print: human tables by default, or with `--output json` the JSON:API `data`
//! (one object, or one array across all pages of a list) for scripts.

use std::io::Write;

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// How a command prints its result.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub format: Format,
}

/// A column of a list table: its heading and the attribute it shows (`id` for the resource id).
pub type Column = (&'static str, &'static str);

impl Output {
    pub fn is_json(self) -> bool {
        self.format == Format::Json
    }

    /// One resource: its attributes as a two-column table, or its JSON.
    pub fn resource(self, resource: &Value, columns: &[Column]) {
        match self.format {
            Format::Json => json(resource),
            Format::Table => {
                let mut table = table(&["", ""]);
                for (heading, key) in columns {
                    table.add_row(vec![heading.to_string(), field(resource, key)]);
                }
                out!("{table}");
            }
        }
    }

    /// A list of resources, one row each, or one JSON array.
    pub fn list(self, items: &[Value], columns: &[Column]) {
        match self.format {
            Format::Json => json(&Value::Array(items.to_vec())),
            Format::Table => {
                let headings: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
                let mut table = table(&headings);
                for item in items {
                    table.add_row(columns.iter().map(|(_, key)| field(item, key)));
                }
                out!("{table}");
            }
        }
    }

    /// A confirmation of what was done (`project web archived`); in JSON, the resource.
    pub fn done(self, resource: &Value, message: &str) {
        match self.format {
            Format::Json => json(resource),
            Format::Table => out!("{message}"),
        }
    }
}

/// Writes a line to stdout. When its reader went away (`gantry … | head -1`) the command ends
/// at once with exit code 0: what was asked for was read.
pub fn emit(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{text}")
        && error.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// Pretty JSON on stdout.
pub fn json(value: &Value) {
    out!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// A table of rows under `headings`, printed to stdout.
pub fn print_table(headings: &[&str], rows: Vec<Vec<String>>) {
    let mut table = table(headings);
    for row in rows {
        table.add_row(row);
    }
    out!("{table}");
}

fn table(headings: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if headings.iter().any(|h| !h.is_empty()) {
        table.set_header(headings.to_vec());
    }
    table
}

/// An attribute (or the id) as table text: strings bare, `null` empty, anything else as JSON.
pub fn field(resource: &Value, key: &str) -> String {
    let value = match key {
        "id" => &resource["id"],
        key => &resource["attributes"][key],
    };
    text(value)
}

pub fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// A string attribute of a resource, empty when absent.
pub fn attr<'a>(resource: &'a Value, key: &str) -> &'a str {
    resource["attributes"][key].as_str().unwrap_or_default()
}
