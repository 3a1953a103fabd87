//! Latency histograms and their summaries.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Records latencies in microseconds, from 1 µs to one hour, to three significant digits.
#[derive(Clone)]
pub struct Recorder(Histogram<u64>);

impl Default for Recorder {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"))
    }
}

impl Recorder {
    pub fn record(&mut self, latency: Duration) {
        self.0.saturating_record(latency.as_micros().max(1) as u64);
    }

    /// Records a latency given in milliseconds (server-side timestamps are compared as such).
    pub fn record_ms(&mut self, ms: f64) {
        self.record(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    }

    /// Adds the latencies `other` recorded.
    pub fn merge(&mut self, other: &Recorder) {
        self.0.add(&other.0).expect("recorders share their bounds");
    }

    pub fn summary(&self) -> Latency {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Latency {
            count: self.0.len(),
            mean_ms: self.0.mean() / 1000.0,
            p50_ms: ms(self.0.value_at_quantile(0.50)),
            p90_ms: ms(self.0.value_at_quantile(0.90)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            max_ms: ms(self.0.max()),
        }
    }
}

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Events per second, or 0 when no time passed.
pub fn per_second(events: usize, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        events as f64 / seconds
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_recorded_latencies() {
        let mut recorder = Recorder::default();
        for ms in 1..=100 {
            recorder.record(Duration::from_millis(ms));
        }
        let latency = recorder.summary();
        assert_eq!(latency.count, 100);
        assert!((latency.p50_ms - 50.0).abs() < 0.1, "{latency:?}");
        assert!((latency.p99_ms - 99.0).abs() < 0.1, "{latency:?}");
        assert!((latency.max_ms - 100.0).abs() < 0.1, "{latency:?}");
    }

    #[test]
    fn merged_recorders_summarise_every_latency_of_both() {
        let (mut before, mut after) = (Recorder::default(), Recorder::default());
        for ms in 1..=50 {
            before.record(Duration::from_millis(ms));
            after.record(Duration::from_millis(ms + 50));
        }
        before.merge(&after);
        let latency = before.summary();
        assert_eq!(latency.count, 100);
        assert!((latency.p50_ms - 50.0).abs() < 0.1, "{latency:?}");
        assert!((latency.max_ms - 100.0).abs() < 0.1, "{latency:?}");
    }
}
