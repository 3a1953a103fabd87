//! A change's step tree from `GET /api/changes/{id}?include=steps`: children under their parent,
//! in position order.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::output::attr;

/// One step of the tree, in display order.
#[derive(Debug, Clone)]
pub struct StepRow {
    pub id: String,
    pub depth: usize,
    pub name: String,
    pub status: String,
    /// Seconds from start to finish, once finished.
    pub seconds: Option<f64>,
    /// How its children run (`sequential`, `parallel`), when it has any.
    pub children_run: Option<String>,
}

impl StepRow {
    pub fn is_final(&self) -> bool {
        matches!(
            self.status.as_str(),
            "success" | "error" | "aborted" | "cancelled" | "system_error"
        )
    }

    /// `  name [status] 0.42s`, indented by depth.
    pub fn line(&self) -> String {
        let mut line = format!("{}{} [{}]", "  ".repeat(self.depth), self.name, self.status);
        if let Some(strategy) = &self.children_run {
            line.push_str(&format!(" children run {strategy}"));
        }
        if let Some(seconds) = self.seconds {
            line.push_str(&format!(" {seconds:.2}s"));
        }
        line
    }
}

/// The steps of a change document, depth first.
pub fn rows(document: &Value) -> Vec<StepRow> {
    let mut children: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for step in document["included"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["type"] == "steps")
    {
        let parent = step["relationships"]["parent"]["data"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        children.entry(parent).or_default().push(step);
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| s["attributes"]["position"].as_i64().unwrap_or(0));
    }
    let mut rows = Vec::new();
    push_level(&mut rows, &children, "", 0);
    rows
}

fn push_level(
    rows: &mut Vec<StepRow>,
    children: &BTreeMap<String, Vec<&Value>>,
    parent: &str,
    depth: usize,
) {
    for step in children.get(parent).into_iter().flatten() {
        let id = step["id"].as_str().unwrap_or_default().to_owned();
        let has_children = children.contains_key(&id);
        rows.push(StepRow {
            id: id.clone(),
            depth,
            name: attr(step, "name").to_owned(),
            status: attr(step, "status_code").to_owned(),
            seconds: seconds(&step["attributes"]),
            children_run: has_children.then(|| attr(step, "child_execution_strategy").to_owned()),
        });
        push_level(rows, children, &id, depth + 1);
    }
}

/// Seconds between `started_at` and `finished_at`, when both are set.
pub fn seconds(attributes: &Value) -> Option<f64> {
    let time = |key: &str| {
        attributes[key]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let (started, finished) = (time("started_at")?, time("finished_at")?);
    Some((finished - started).num_milliseconds() as f64 / 1000.0)
}
