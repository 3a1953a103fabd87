//! Tables with comfy-table: for the terminal (UTF-8 borders) and for markdown.

use comfy_table::presets::{ASCII_MARKDOWN, UTF8_FULL_CONDENSED};
use comfy_table::{Table, TableStyle};

use super::Report;
use super::sections::sections;
use super::targets::Comparison;
use crate::stats::Latency;

fn table(style: TableStyle, header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(style).set_header(header.to_vec());
    table
}

/// The comparison with the raw figures and the targets.
pub fn comparisons(rows: &[Comparison], markdown: bool) -> Table {
    let mut t = table(
        if markdown {
            ASCII_MARKDOWN
        } else {
            UTF8_FULL_CONDENSED
        },
        &[
            "Gantry figure",
            "Gantry value",
            "raw figure",
            "raw value",
            "ratio",
            "target",
            "met?",
            "runs: least – most",
        ],
    );
    for c in rows {
        t.add_row(vec![
            c.gantry_figure.clone(),
            c.gantry_value.clone(),
            c.raw_figure.clone(),
            c.raw_value.clone(),
            c.ratio.map_or("—".into(), |r| format!("{r:.3}×")),
            c.target.clone(),
            match c.met {
                Some(true) => "yes".into(),
                Some(false) => "no".into(),
                None => "—".into(),
            },
            spread(c),
        ]);
    }
    t
}

/// The spread of a row's judged number over the runs of a bench, in its unit ("—" for one run).
fn spread(c: &Comparison) -> String {
    let Some(s) = c.spread.filter(|s| s.runs > 1) else {
        return "—".into();
    };
    let decimals = match c.unit.as_str() {
        "×" => 3,
        " ms" => 1,
        _ => 0,
    };
    format!(
        "{}: {:.*}{unit} – {:.*}{unit}",
        s.runs,
        decimals,
        s.min,
        decimals,
        s.max,
        unit = c.unit
    )
}

/// Percentiles of latency sets, in milliseconds.
pub fn percentiles(latencies: &[(String, Latency)], markdown: bool) -> Table {
    let mut t = table(
        if markdown {
            ASCII_MARKDOWN
        } else {
            UTF8_FULL_CONDENSED
        },
        &[
            "measurement",
            "n",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "mean ms",
        ],
    );
    for (name, l) in latencies {
        t.add_row(vec![
            name.clone(),
            l.count.to_string(),
            format!("{:.1}", l.p50_ms),
            format!("{:.1}", l.p90_ms),
            format!("{:.1}", l.p99_ms),
            format!("{:.1}", l.max_ms),
            format!("{:.1}", l.mean_ms),
        ]);
    }
    t
}

/// The terminal summary: each scenario's headline figures, the comparison when there is one, and
/// the failures.
pub fn summary(report: &Report) -> String {
    let mut t = table(UTF8_FULL_CONDENSED, &["scenario", "measurement", "value"]);
    for section in sections(report) {
        for (measurement, value) in section.rows {
            t.add_row(vec![section.scenario.to_owned(), measurement, value]);
        }
    }
    let mut out = t.to_string();
    if !report.comparisons.is_empty() {
        out.push_str("\n\n");
        out.push_str(&comparisons(&report.comparisons, false).to_string());
    }
    for e in &report.errors {
        out.push_str(&format!("\nFAILED {}: {}", e.scenario, e.message));
    }
    out
}
