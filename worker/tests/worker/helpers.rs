//! The in-process stack comes from `gantry-testkit` (shared with the loadtest's tests); what only
//! the worker tests need lives here.

use serde_json::Value;

pub use gantry_testkit::{spawn_stack, spawn_stack_with};

/// Statuses of the change's steps by name, sorted.
pub fn step_statuses(change: &Value) -> Vec<(String, String)> {
    let mut statuses: Vec<(String, String)> = change["included"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter(|s| s["type"] == "steps")
                .map(|s| {
                    (
                        s["attributes"]["name"].as_str().unwrap().to_owned(),
                        s["attributes"]["status_code"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    statuses.sort();
    statuses
}

/// The step called `name` in a change document fetched with `?include=steps`.
pub fn step_named<'a>(change: &'a Value, name: &str) -> &'a Value {
    change["included"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["attributes"]["name"] == name))
        .unwrap_or_else(|| panic!("no step named {name} in {change}"))
}
