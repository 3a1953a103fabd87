//! Where a chain step's time goes: the worker's own histograms (`/metrics`), read before and
//! after the chain, give the mean of every container phase and of every delivery's handling over
//! exactly the chain's steps. What remains of the step's share of the chain is orchestration
//! outside the container (messages, claim, result transaction).

use std::collections::BTreeMap;

use gantry_shared::metrics::names;
use serde::{Deserialize, Serialize};

/// The sums and counts of the histograms `gantry_<name>_duration_seconds{<label>="…"}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot(BTreeMap<String, (f64, f64)>);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Breakdown {
    /// Mean ms per chain step of each container phase (create, upload, start, run, result,
    /// remove; remove runs after the outcome is handed over, off the step's path).
    pub container_phases: BTreeMap<String, f64>,
    /// Mean ms of handling one delivery, by queue, during the chain.
    pub message_handling: BTreeMap<String, f64>,
    /// The step's share of the chain minus the container phases on its path.
    pub outside_container_ms: f64,
}

/// Series read: `(metric prefix, label)`.
const SERIES: [(&str, &str); 2] = [
    (names::CONTAINER_SECONDS, "phase"),
    (names::MESSAGE_SECONDS, "queue"),
];

/// Phases on a step's critical path.
const ON_PATH: [&str; 4] = ["take", "upload", "run", "result"];

impl Snapshot {
    /// Reads the sums and counts of [`SERIES`] from Prometheus text.
    pub fn parse(text: &str) -> Self {
        let mut series = BTreeMap::new();
        for line in text.lines() {
            for (metric, label) in SERIES {
                for (suffix, sum) in [("_sum{", true), ("_count{", false)] {
                    let Some(rest) = line.strip_prefix(&format!("{metric}{suffix}")) else {
                        continue;
                    };
                    let Some((labels, value)) = rest.split_once("} ") else {
                        continue;
                    };
                    let Some(name) = labels
                        .strip_prefix(&format!("{label}=\""))
                        .and_then(|l| l.strip_suffix('"'))
                    else {
                        continue;
                    };
                    let Ok(value) = value.trim().parse::<f64>() else {
                        continue;
                    };
                    let entry: &mut (f64, f64) =
                        series.entry(format!("{label}:{name}")).or_default();
                    if sum {
                        entry.0 = value
                    } else {
                        entry.1 = value
                    }
                }
            }
        }
        Snapshot(series)
    }

    /// The breakdown of what happened between `before` and `self`, over `steps` steps whose
    /// share of the chain was `per_step_ms`.
    pub fn since(&self, before: &Snapshot, steps: usize, per_step_ms: f64) -> Breakdown {
        let mut container_phases = BTreeMap::new();
        let mut message_handling = BTreeMap::new();
        for (key, (sum, count)) in &self.0 {
            let (old_sum, old_count) = before.0.get(key).copied().unwrap_or_default();
            let (sum, count) = (sum - old_sum, count - old_count);
            if count <= 0.0 {
                continue;
            }
            let (kind, name) = key.split_once(':').expect("keys are label:name");
            match kind {
                // Per chain step, whatever the count (a phase missing in a step counts as 0).
                "phase" => container_phases.insert(name.to_owned(), sum * 1000.0 / steps as f64),
                _ => message_handling.insert(name.to_owned(), sum * 1000.0 / count),
            };
        }
        let on_path: f64 = ON_PATH
            .iter()
            .filter_map(|p| container_phases.get(*p))
            .sum();
        Breakdown {
            container_phases,
            message_handling,
            outside_container_ms: per_step_ms - on_path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "\
gantry_container_phase_duration_seconds_sum{phase=\"take\"} 1.0
gantry_container_phase_duration_seconds_count{phase=\"take\"} 4
gantry_message_duration_seconds_sum{queue=\"gantry.steps\"} 2.0
gantry_message_duration_seconds_count{queue=\"gantry.steps\"} 4
gantry_container_phase_duration_seconds_bucket{phase=\"take\",le=\"0.5\"} 4
";
    const AFTER: &str = "\
# TYPE gantry_container_phase_duration_seconds histogram
gantry_container_phase_duration_seconds_sum{phase=\"take\"} 3.0
gantry_container_phase_duration_seconds_count{phase=\"take\"} 14
gantry_container_phase_duration_seconds_sum{phase=\"run\"} 0.5
gantry_container_phase_duration_seconds_count{phase=\"run\"} 10
gantry_message_duration_seconds_sum{queue=\"gantry.steps\"} 5.0
gantry_message_duration_seconds_count{queue=\"gantry.steps\"} 14
";

    #[test]
    fn the_breakdown_covers_only_what_happened_between_the_snapshots() {
        let before = Snapshot::parse(BEFORE);
        let after = Snapshot::parse(AFTER);

        let breakdown = after.since(&before, 10, 300.0);

        assert_eq!(breakdown.container_phases["take"], 200.0);
        assert_eq!(breakdown.container_phases["run"], 50.0);
        assert_eq!(breakdown.message_handling["gantry.steps"], 300.0);
        assert_eq!(breakdown.outside_container_ms, 50.0);
    }
}
