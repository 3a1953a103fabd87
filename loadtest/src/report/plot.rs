//! The latency plot: p50, p90, p99 and max of every latency set, on a log scale. Text is drawn
//! with ab_glyph from a TrueType file read at run time (the Debian package fonts-dejavu-core),
//! so no system font machinery is linked.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, anyhow};
use plotters::prelude::*;

use crate::stats::Latency;

pub const FONT_FILE: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const FONT: &str = "sans-serif";

/// Registers the font once per process. plotters keeps fonts for the whole process, so the bytes
/// are leaked on purpose (once).
fn register_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes = std::fs::read(FONT_FILE).map_err(|e| {
                format!("reading {FONT_FILE} ({e}); install the package fonts-dejavu-core")
            })?;
            plotters::style::register_font(
                FONT,
                FontStyle::Normal,
                Box::leak(bytes.into_boxed_slice()),
            )
            .map_err(|_| format!("{FONT_FILE} is not a usable font"))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// Draws `series` (name, percentiles) to a PNG file.
pub fn write_png(path: &Path, series: &[(String, Latency)]) -> anyhow::Result<()> {
    register_font()?;
    draw(path, series).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    std::fs::metadata(path)
        .with_context(|| format!("the plot {} was not written", path.display()))?;
    Ok(())
}

type Percentile = (&'static str, RGBColor, fn(&Latency) -> f64);

const PERCENTILES: [Percentile; 4] = [
    ("p50", RGBColor(31, 119, 180), |l| l.p50_ms),
    ("p90", RGBColor(44, 160, 44), |l| l.p90_ms),
    ("p99", RGBColor(255, 127, 14), |l| l.p99_ms),
    ("max", RGBColor(214, 39, 40), |l| l.max_ms),
];

fn draw(path: &Path, series: &[(String, Latency)]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (1280, 720)).into_drawing_area();
    root.fill(&WHITE)?;
    let values = series.iter().flat_map(|(_, l)| [l.p50_ms, l.max_ms]);
    let low = values.clone().fold(f64::INFINITY, f64::min).max(0.01);
    let high = values.fold(0.0, f64::max).max(low * 10.0);
    // A discrete i32 axis includes both ends: 0..=last is one segment per series.
    let last = series.len().saturating_sub(1) as i32;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Gantry loadtest: latency percentiles (ms, log scale)",
            (FONT, 26),
        )
        .margin(24)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (0..last).into_segmented(),
            (low * 0.8..high * 1.25).log_scale(),
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(series.len().max(1))
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => series
                .get(*i as usize)
                .map_or(String::new(), |(name, _)| name.clone()),
            SegmentValue::Last => String::new(),
        })
        .x_label_style((FONT, 14))
        .y_label_style((FONT, 14))
        .y_label_formatter(&|ms| format!("{ms}"))
        .y_desc("milliseconds")
        .axis_desc_style((FONT, 16))
        .draw()?;
    for (label, color, value) in PERCENTILES {
        let points: Vec<_> = series
            .iter()
            .enumerate()
            .map(|(i, (_, l))| (SegmentValue::CenterOf(i as i32), value(l).max(low)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
        chart.draw_series(PointSeries::of_element(
            points,
            5,
            color.filled(),
            &|c, s, st| Circle::new(c, s, st),
        ))?;
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
