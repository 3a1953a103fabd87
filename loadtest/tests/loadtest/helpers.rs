//! A stack, a client of it and a fixture for one test.

use gantry_loadtest::{Api, Fixture};
use gantry_testkit::{TestStack, spawn_stack_with};

pub struct Harness {
    pub stack: TestStack,
    pub api: Api,
    pub fixture: Fixture,
}

/// A stack whose worker runs as many steps at once as the bench's (8).
pub async fn harness() -> Harness {
    let stack = spawn_stack_with(|settings| settings.worker.concurrency = 8).await;
    let api = Api::new(&stack.base, &stack.token);
    Harness {
        stack,
        api,
        fixture: Fixture::new(),
    }
}

/// The report as JSON, to check its shape as a consumer of the JSON file sees it.
pub fn json(report: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(report).expect("a report serialises")
}

/// Whether `value` at `pointer` is a number (percentiles, rates).
pub fn is_number(value: &serde_json::Value, pointer: &str) -> bool {
    value
        .pointer(pointer)
        .is_some_and(serde_json::Value::is_number)
}
