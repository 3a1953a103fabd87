//! Text renderings of API documents.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

/// The change header and its step tree, children indented under their parent.
pub fn tree(document: &Value) -> String {
    let change = &document["data"]["attributes"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "change {} [{}] action {} at {} ({})",
        document["data"]["id"].as_str().unwrap_or(""),
        change["status_code"].as_str().unwrap_or(""),
        change["action"].as_str().unwrap_or(""),
        change["git_rev"].as_str().unwrap_or(""),
        change["commit_sha"].as_str().unwrap_or("unresolved"),
    );
    let mut children: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for step in document["included"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["type"] == "steps")
    {
        let parent = step["relationships"]["parent"]["data"]["id"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        children.entry(parent).or_default().push(step);
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| s["attributes"]["position"].as_i64().unwrap_or(0));
    }
    write_level(&mut out, &children, "", 1);
    out
}

fn write_level(
    out: &mut String,
    children: &BTreeMap<String, Vec<&Value>>,
    parent: &str,
    depth: usize,
) {
    for step in children.get(parent).into_iter().flatten() {
        let a = &step["attributes"];
        let strategy = a["child_execution_strategy"].as_str().unwrap_or("");
        let id = step["id"].as_str().unwrap_or("");
        let has_children = children.contains_key(id);
        let _ = writeln!(
            out,
            "{}{} [{}]{}{}",
            "  ".repeat(depth),
            a["name"].as_str().unwrap_or(""),
            a["status_code"].as_str().unwrap_or(""),
            if has_children {
                format!(" children run {strategy}")
            } else {
                String::new()
            },
            duration(a),
        );
        write_level(out, children, id, depth + 1);
    }
}

fn duration(attributes: &Value) -> String {
    let parse = |k: &str| {
        attributes[k]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    match (parse("started_at"), parse("finished_at")) {
        (Some(s), Some(f)) => format!(" {:.2}s", (f - s).num_milliseconds() as f64 / 1000.0),
        _ => String::new(),
    }
}

pub fn log_line(line: &Value) -> String {
    let a = &line["attributes"];
    let at = a["logged_at"].as_str().unwrap_or("");
    let stream = a["stream"].as_str().unwrap_or("");
    let marker = if stream == "stderr" { "!" } else { " " };
    a["text"]
        .as_str()
        .unwrap_or("")
        .lines()
        .map(|l| format!("{at}{marker} {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
