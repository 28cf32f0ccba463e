//! SVG charts of scenario summaries: one run's, or several servers' runs of the same scenario
//! side by side. A chart has a latency panel (every curve of every server: percentile on a
//! "nines" scale against latency in ms on a log scale) and one bar panel per throughput unit
//! (a group per bar name, a bar per server). Panels without data are left out.
//!
//! Rendering is pure (summaries in, SVG text out); only `write_svg` touches the disk. Text
//! is laid out with plotters' built-in estimate, not a font file, so nothing depends on the
//! fonts a machine has; the viewer draws the text.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::{Bar, Summary};

const WIDTH: u32 = 960;
const TITLE_HEIGHT: u32 = 40;
const LATENCY_HEIGHT: u32 = 480;
const BARS_HEIGHT: u32 = 360;
/// Where the x axis ends: the 99.999th percentile, five nines. The maximum (the 100th
/// percentile, infinitely many nines) is drawn there and labelled "max".
const MAX_NINES: f64 = 5.0;
/// One colour per line or per server, in order: the ten "tab10" colours (a comparison of
/// three servers draws nine latency lines).
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const FONT: &str = "sans-serif";

/// A chart that could not be drawn or written.
#[derive(Debug)]
pub struct ChartError(String);

impl fmt::Display for ChartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ChartError {}

fn drawing<E: fmt::Display>(e: E) -> ChartError {
    ChartError(format!("drawing the chart: {e}"))
}

/// A linear axis with ticks exactly at `ticks` (the percentiles' nines, the bar groups'
/// centres). plotters' own `with_key_points` over f64 takes no label formatter.
struct TickedAxis {
    range: Range<f64>,
    ticks: Vec<f64>,
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = (value - self.range.start) / (self.range.end - self.range.start);
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// A percentile's place on the x axis: log10(1 / (1 - p)), so 90 is 1, 99 is 2, 99.9 is 3;
/// the tail, where servers differ, gets as much room as the body.
pub fn nines(percentile: f64) -> f64 {
    if percentile >= 100.0 {
        return MAX_NINES;
    }
    (1.0 / (1.0 - percentile / 100.0)).log10().clamp(0.0, MAX_NINES)
}

/// The percentile at `x` nines, as a tick label: "0", "90", "99.9", "max".
fn nines_label(x: f64) -> String {
    if x >= MAX_NINES - 1e-9 {
        return "max".into();
    }
    let percentile = 100.0 * (1.0 - 10f64.powf(-x));
    let text = format!("{percentile:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Milliseconds as a log-axis label: "0.05", "2", "300".
fn ms_label(ms: f64) -> String {
    let text = if ms < 1.0 {
        format!("{ms:.3}")
    } else {
        format!("{ms:.1}")
    };
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The units of the bars, each once, in the order they first appear.
fn units(summaries: &[&Summary]) -> Vec<String> {
    let mut units: Vec<String> = Vec::new();
    for bar in summaries.iter().flat_map(|s| &s.throughput) {
        if !units.contains(&bar.unit) {
            units.push(bar.unit.clone());
        }
    }
    units
}

fn has_latency(summaries: &[&Summary]) -> bool {
    summaries
        .iter()
        .flat_map(|s| &s.latency)
        .flat_map(|c| &c.points)
        .any(|&(_, us)| us > 0)
}

/// The chart of `summaries` (one per server, all of the same scenario) as SVG text.
pub fn render_svg(summaries: &[&Summary]) -> Result<String, ChartError> {
    let units = units(summaries);
    let latency = has_latency(summaries);
    let height = TITLE_HEIGHT + if latency { LATENCY_HEIGHT } else { 0 } + BARS_HEIGHT * units.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let scenario = summaries.first().map_or("", |s| s.scenario.as_str());
        let labels: Vec<&str> = summaries.iter().map(|s| s.label.as_str()).collect();
        let mut rest = root
            .titled(&format!("{scenario}: {}", labels.join(" vs ")), (FONT, 22))
            .map_err(drawing)?;
        if latency {
            let (top, bottom) = rest.split_vertically(LATENCY_HEIGHT);
            latency_panel(&top, summaries)?;
            rest = bottom;
        }
        for unit in &units {
            let (top, bottom) = rest.split_vertically(BARS_HEIGHT);
            bar_panel(&top, summaries, unit)?;
            rest = bottom;
        }
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

/// Renders `summaries` (see `render_svg`) to the file `path`.
pub fn write_svg(path: &Path, summaries: &[&Summary]) -> Result<(), ChartError> {
    let svg = render_svg(summaries)?;
    std::fs::write(path, svg).map_err(|e| ChartError(format!("writing {}: {e}", path.display())))
}

/// Every curve of every server; a line's legend says whose curve it is.
fn latency_panel(area: &DrawingArea<SVGBackend<'_>, Shift>, summaries: &[&Summary]) -> Result<(), ChartError> {
    let values_ms = summaries
        .iter()
        .flat_map(|s| &s.latency)
        .flat_map(|c| &c.points)
        .filter(|&&(_, us)| us > 0)
        .map(|&(_, us)| us as f64 / 1e3);
    let (lo, hi) = values_ms.fold((f64::MAX, 0f64), |(lo, hi), ms| (lo.min(ms), hi.max(ms)));
    // The median, then every nine.
    let mut ticks = vec![0.0, nines(50.0)];
    ticks.extend((1..=MAX_NINES as u32).map(f64::from));
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .caption("latency by percentile", (FONT, 16))
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(
            TickedAxis {
                range: 0.0..MAX_NINES,
                ticks,
            },
            (lo * 0.8..hi * 1.25).log_scale(),
        )
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .x_desc("percentile (nines scale)")
        .y_desc("latency, ms (log scale)")
        .x_label_formatter(&|x| nines_label(*x))
        .y_label_formatter(&|y| ms_label(*y))
        .draw()
        .map_err(drawing)?;
    let lines = summaries
        .iter()
        .flat_map(|s| s.latency.iter().map(move |c| (s.label.as_str(), c)));
    for (i, (label, curve)) in lines.enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<(f64, f64)> = curve
            .points
            .iter()
            .filter(|&&(_, us)| us > 0)
            .map(|&(p, us)| (nines(p), us as f64 / 1e3))
            .collect();
        chart
            .draw_series(points.iter().map(|&point| Circle::new(point, 3, colour.filled())))
            .map_err(drawing)?;
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(drawing)?
            .label(format!("{label}: {}", curve.name))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(drawing)
}

/// The bars in `unit`: a group per bar name, in each a bar per server, its value above it.
fn bar_panel(area: &DrawingArea<SVGBackend<'_>, Shift>, summaries: &[&Summary], unit: &str) -> Result<(), ChartError> {
    let in_unit = |s: &'_ Summary| -> Vec<Bar> { s.throughput.iter().filter(|b| b.unit == unit).cloned().collect() };
    let mut names: Vec<String> = Vec::new();
    for bar in summaries.iter().flat_map(|s| in_unit(s)) {
        if !names.contains(&bar.name) {
            names.push(bar.name);
        }
    }
    let top = summaries
        .iter()
        .flat_map(|s| in_unit(s))
        .map(|b| b.value)
        .fold(0f64, f64::max);
    // Headroom above the tallest bar for its value and the legend in the upper right.
    let top = if top > 0.0 { top * 1.35 } else { 1.0 };
    let centres: Vec<f64> = (0..names.len()).map(|i| i as f64 + 0.5).collect();
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .caption(unit, (FONT, 16))
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(
            TickedAxis {
                range: 0.0..names.len() as f64,
                ticks: centres,
            },
            0.0..top,
        )
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(unit)
        .x_label_formatter(&|x| names.get(x.floor() as usize).cloned().unwrap_or_default())
        .draw()
        .map_err(drawing)?;
    let servers = summaries.len().max(1) as f64;
    // Bars of at most a third of a group, so one or two groups do not fill the panel.
    let width = (0.8 / servers).min(0.3);
    let value_style = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    for (j, summary) in summaries.iter().enumerate() {
        let colour = COLOURS[j % COLOURS.len()];
        let bars: Vec<(f64, f64, f64)> = in_unit(summary)
            .iter()
            .filter_map(|bar| {
                let group = names.iter().position(|n| *n == bar.name)? as f64;
                let x0 = group + 0.5 - width * servers / 2.0 + width * j as f64;
                Some((x0, x0 + width, bar.value))
            })
            .collect();
        chart
            .draw_series(
                bars.iter()
                    .map(|&(x0, x1, value)| Rectangle::new([(x0, 0.0), (x1, value)], colour.filled())),
            )
            .map_err(drawing)?
            .label(summary.label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
        chart
            .draw_series(bars.iter().map(|&(x0, x1, value)| {
                Text::new(format!("{value:.1}"), ((x0 + x1) / 2.0, value), value_style.clone())
            }))
            .map_err(drawing)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(drawing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Better, Headline, LatencyCurve};

    fn summary(label: &str, scale: u64) -> Summary {
        Summary {
            scenario: "deliver".into(),
            label: label.into(),
            headlines: vec![Headline::new("delivery rate", 1000.0, "messages/s", Better::Higher)],
            latency: vec![LatencyCurve {
                name: "delivery".into(),
                points: [0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0]
                    .iter()
                    .zip([100, 400, 900, 2_000, 7_000, 20_000, 90_000])
                    .map(|(&p, us)| (p, us * scale))
                    .collect(),
            }],
            throughput: vec![
                Bar {
                    name: "delivery rate".into(),
                    value: 1000.0 / scale as f64,
                    unit: "messages/s".into(),
                },
                Bar {
                    name: "bytes".into(),
                    value: 4.0,
                    unit: "MiB/s".into(),
                },
            ],
        }
    }

    #[test]
    fn nines_scale() {
        assert_eq!(nines(0.0), 0.0);
        assert!((nines(90.0) - 1.0).abs() < 1e-9);
        assert!((nines(99.9) - 3.0).abs() < 1e-9);
        assert_eq!(nines(100.0), MAX_NINES);
        assert_eq!(
            [0.0, nines(50.0), 1.0, 2.0, 3.0, 4.0, 5.0].map(nines_label),
            ["0", "50", "90", "99", "99.9", "99.99", "max"]
        );
        assert_eq!([0.05, 2.0, 300.0].map(ms_label), ["0.05", "2", "300"]);
    }

    #[test]
    fn two_servers_render_to_an_svg_file() {
        let (ours, theirs) = (summary("ringmail", 1), summary("dovecot", 3));
        let path = std::env::temp_dir().join(format!("loadtest-chart-{}.svg", std::process::id()));
        write_svg(&path, &[&ours, &theirs]).expect("renders");
        let svg = std::fs::read_to_string(&path).expect("written");
        std::fs::remove_file(&path).expect("removable");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for text in [
            "deliver: ringmail vs dovecot",
            "ringmail: delivery",
            "dovecot: delivery",
            "messages/s",
            "MiB/s",
            "99.9",
            "max",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
    }

    #[test]
    fn a_summary_without_figures_still_renders() {
        let empty = Summary {
            scenario: "idle".into(),
            label: "x".into(),
            ..Summary::default()
        };
        let svg = render_svg(&[&empty]).expect("renders");
        assert!(svg.contains("idle: x") && !svg.contains("latency by percentile"));
    }
}
