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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn step(id: &str, parent: Option<&str>, name: &str, position: i64, status: &str) -> Value {
        json!({
            "id": id, "type": "steps",
            "attributes": {"name": name, "position": position, "status_code": status,
                "child_execution_strategy": "parallel",
                "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:01.5Z"},
            "relationships": {"parent": {"data": parent.map(|p| json!({"type": "steps", "id": p}))}}
        })
    }

    #[test]
    fn children_follow_their_parent_in_position_order_and_only_parents_say_how_they_run() {
        let document = json!({"included": [
            step("b", Some("root"), "second", 1, "running"),
            step("root", None, "default", 0, "running"),
            step("a", Some("root"), "first", 0, "success"),
        ]});

        let rows = rows(&document);

        let names: Vec<(&str, usize)> = rows.iter().map(|r| (r.name.as_str(), r.depth)).collect();
        assert_eq!(names, [("default", 0), ("first", 1), ("second", 1)]);
        assert_eq!(
            rows[0].line(),
            "default [running] children run parallel 1.50s"
        );
        assert_eq!(rows[1].line(), "  first [success] 1.50s");
        assert!(rows[1].is_final() && !rows[2].is_final());
    }
}
