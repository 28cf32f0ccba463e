//! Turning measurements into figures: latency percentiles from an HDR histogram, throughput
//! in MiB/s, and the fixed-width text the harness prints. Pure functions only, so the
//! formatting is tested without a server; the scenarios own the measuring.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

pub const MIB: f64 = 1024.0 * 1024.0;

/// A latency histogram in microseconds, from 1 µs to 10 minutes at 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("bounds are constant and valid")
}

/// Records `elapsed`, clamped into the histogram's range so an outlier is kept, not lost.
pub fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.max(1));
}

/// The percentiles BENCHMARKS.md quotes, in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl LatencySummary {
    pub fn from_histogram(h: &Histogram<u64>) -> LatencySummary {
        LatencySummary {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }

    /// One line: `p50 812 µs  p90 1.20 ms  p99 ...`.
    pub fn line(&self) -> String {
        [
            ("p50", self.p50_us),
            ("p90", self.p90_us),
            ("p99", self.p99_us),
            ("p99.9", self.p999_us),
            ("max", self.max_us),
        ]
        .iter()
        .map(|(name, us)| format!("{name} {}", format_micros(*us)))
        .collect::<Vec<_>>()
        .join("  ")
    }
}

/// Microseconds as a person reads them: `812 µs`, `12.3 ms`, `1.23 s`.
pub fn format_micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us} µs"),
        1_000..=9_999 => format!("{:.2} ms", us as f64 / 1e3),
        10_000..=999_999 => format!("{:.1} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// MiB/s for `bytes` moved in `elapsed`; 0 for an empty interval rather than infinity.
pub fn mib_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs == 0.0 {
        0.0
    } else {
        bytes as f64 / MIB / secs
    }
}

/// One row of the bulk-transfer table.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputRow {
    pub name: String,
    /// Payload bytes: message bytes after un-stuffing, or raw bytes for the TCP reference.
    pub bytes: u64,
    /// Bytes on the wire before TLS (status lines and stuffing included).
    pub wire_bytes: u64,
    pub seconds: f64,
    pub mib_per_sec: f64,
}

impl ThroughputRow {
    pub fn new(name: &str, bytes: u64, wire_bytes: u64, elapsed: Duration) -> ThroughputRow {
        ThroughputRow {
            name: name.to_owned(),
            bytes,
            wire_bytes,
            seconds: elapsed.as_secs_f64(),
            mib_per_sec: mib_per_sec(bytes, elapsed),
        }
    }
}

/// The table: one row per measurement and its share of `reference` (the first row's MiB/s).
pub fn throughput_table(rows: &[ThroughputRow]) -> String {
    let reference = rows.first().map_or(0.0, |r| r.mib_per_sec);
    let mut out = format!(
        "{:<24} {:>14} {:>9} {:>10} {:>8}\n",
        "measurement", "bytes", "seconds", "MiB/s", "vs raw"
    );
    for row in rows {
        let share = if reference > 0.0 {
            format!("{:.1} %", 100.0 * row.mib_per_sec / reference)
        } else {
            "-".into()
        };
        out.push_str(&format!(
            "{:<24} {:>14} {:>9.3} {:>10.1} {:>8}\n",
            row.name, row.bytes, row.seconds, row.mib_per_sec, share
        ));
    }
    out
}

/// Which way a figure is better, so a comparison knows whose ratio to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
}

/// One figure a scenario stands by: what REPORT.md puts side by side for two servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub better: Better,
}

impl Headline {
    pub fn new(name: &str, value: f64, unit: &str, better: Better) -> Headline {
        Headline {
            name: name.to_owned(),
            value,
            unit: unit.to_owned(),
            better,
        }
    }

    /// The latency headlines of one histogram: p50, p99 and p99.9 in milliseconds.
    pub fn latencies(prefix: &str, s: &LatencySummary) -> Vec<Headline> {
        [("p50", s.p50_us), ("p99", s.p99_us), ("p99.9", s.p999_us)]
            .iter()
            .map(|(q, us)| Headline::new(&format!("{prefix} {q}"), *us as f64 / 1e3, "ms", Better::Lower))
            .collect()
    }
}

/// A latency distribution as (percentile, µs) points, for charts and for comparing runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyCurve {
    pub name: String,
    pub points: Vec<(f64, u64)>,
}

/// The percentiles a curve is drawn through.
pub const CURVE_PERCENTILES: [f64; 10] = [0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 100.0];

impl LatencyCurve {
    pub fn from_histogram(name: &str, h: &Histogram<u64>) -> LatencyCurve {
        let points = CURVE_PERCENTILES
            .iter()
            .map(|&p| {
                (
                    p,
                    if h.is_empty() {
                        0
                    } else {
                        h.value_at_quantile(p / 100.0)
                    },
                )
            })
            .collect();
        LatencyCurve {
            name: name.to_owned(),
            points,
        }
    }
}

/// A throughput bar: `value` in `unit` (MiB/s, messages/s, ops/s...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    pub name: String,
    pub value: f64,
    pub unit: String,
}

/// What every scenario writes under `"summary"` in its JSON, whatever else it reports: the
/// headline figures, latency curves and throughput bars. `loadtest report` compares two
/// servers' summaries; `--svg` draws the curves and bars.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub scenario: String,
    /// The server measured, as named by `--label`.
    pub label: String,
    pub headlines: Vec<Headline>,
    pub latency: Vec<LatencyCurve>,
    pub throughput: Vec<Bar>,
}

/// A histogram as its recorded (value, count) pairs: how worker processes hand theirs to the
/// parent, which merges them. Lossless: same buckets, same counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistogramData(pub Vec<(u64, u64)>);

impl HistogramData {
    pub fn encode(h: &Histogram<u64>) -> HistogramData {
        HistogramData(
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        )
    }

    /// Adds these values into `into` (a `latency_histogram()`), clamping as `record` does.
    pub fn merge_into(&self, into: &mut Histogram<u64>) {
        for &(value, count) in &self.0 {
            // Cannot fail: saturating_record_n clamps to the histogram's range.
            into.saturating_record_n(value.max(1), count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_are_formatted_by_magnitude() {
        assert_eq!(format_micros(0), "0 µs");
        assert_eq!(format_micros(812), "812 µs");
        assert_eq!(format_micros(1_204), "1.20 ms");
        assert_eq!(format_micros(12_345), "12.3 ms");
        assert_eq!(format_micros(2_500_000), "2.50 s");
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = latency_histogram();
        for us in 1..=1000u64 {
            record(&mut h, Duration::from_micros(us));
        }
        record(&mut h, Duration::from_secs(2));
        let s = LatencySummary::from_histogram(&h);
        assert_eq!(s.count, 1001);
        // 3 significant digits: values are exact up to 2048 µs.
        assert_eq!(s.p50_us, 501);
        assert_eq!(s.p90_us, 901);
        assert_eq!(s.p99_us, 991);
        assert_eq!(s.p999_us, 1000);
        assert!((1_998_000..=2_003_000).contains(&s.max_us), "max {}", s.max_us);
        assert_eq!(
            s.line(),
            format!(
                "p50 501 µs  p90 901 µs  p99 991 µs  p99.9 1.00 ms  max {}",
                format_micros(s.max_us)
            )
        );
    }

    #[test]
    fn out_of_range_latency_is_clamped_not_lost() {
        let mut h = latency_histogram();
        record(&mut h, Duration::ZERO);
        record(&mut h, Duration::from_secs(3600));
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn throughput_and_table() {
        assert_eq!(mib_per_sec(0, Duration::ZERO), 0.0);
        assert!((mib_per_sec(1 << 30, Duration::from_secs(2)) - 512.0).abs() < 1e-9);
        let rows = [
            ThroughputRow::new("raw loopback TCP", 1 << 30, 1 << 30, Duration::from_secs(1)),
            ThroughputRow::new("POP3 plaintext", 1 << 29, 1 << 29, Duration::from_secs(1)),
        ];
        let table = throughput_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].ends_with("100.0 %"), "{}", lines[1]);
        assert!(
            lines[2].contains("512.0") && lines[2].ends_with("50.0 %"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn histograms_merge_across_processes() {
        let (mut a, mut b) = (latency_histogram(), latency_histogram());
        for us in 1..=500u64 {
            record(&mut a, Duration::from_micros(us));
            record(&mut b, Duration::from_micros(us + 500));
        }
        record(&mut b, Duration::from_secs(7));
        let wire = serde_json::to_string(&HistogramData::encode(&b)).unwrap();
        let mut merged = latency_histogram();
        HistogramData::encode(&a).merge_into(&mut merged);
        serde_json::from_str::<HistogramData>(&wire)
            .unwrap()
            .merge_into(&mut merged);
        let mut direct = a.clone();
        direct.add(&b).unwrap();
        assert_eq!(merged.len(), 1001);
        assert_eq!(merged, direct);
        assert_eq!(
            LatencySummary::from_histogram(&merged),
            LatencySummary::from_histogram(&direct)
        );
        let curve = LatencyCurve::from_histogram("x", &merged);
        assert_eq!(curve.points[1], (50.0, 501));
        assert_eq!(curve.points.last().unwrap().1, merged.max());
        assert_eq!(
            LatencyCurve::from_histogram("empty", &latency_histogram()).points[9],
            (100.0, 0)
        );
    }

    #[test]
    fn summary_round_trips_through_json() {
        let mut h = latency_histogram();
        record(&mut h, Duration::from_millis(3));
        let s = Summary {
            scenario: "login".into(),
            label: "ringmail".into(),
            headlines: Headline::latencies("login", &LatencySummary::from_histogram(&h)),
            latency: vec![LatencyCurve::from_histogram("login", &h)],
            throughput: vec![Bar {
                name: "logins".into(),
                value: 1234.5,
                unit: "logins/s".into(),
            }],
        };
        assert_eq!(s.headlines[0].better, Better::Lower);
        assert!((s.headlines[1].value - 3.0).abs() < 0.01, "{:?}", s.headlines);
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains(r#""better":"lower""#), "{text}");
        assert_eq!(serde_json::from_str::<Summary>(&text).unwrap(), s);
    }
}
