//! Two (or more) servers' runs of the same scenarios, side by side: which runs pair up, the
//! ratios, and the Markdown of REPORT.md. Pure functions only; `loadtest report` reads the
//! files and the machine and writes the results.
//!
//! A ratio always reads the same way: above 1 means "ours" did better, whichever way the
//! figure is better (DESIGN.md §8 quotes figures as ratios against Dovecot on the same
//! machine).

use std::fmt::Write;

use crate::report::{Better, Headline, Summary};

/// The scenarios in the order the report shows them; others follow, alphabetically.
const ORDER: [&str; 10] = [
    "bulk",
    "imap-bulk",
    "deliver",
    "submit",
    "login",
    "idle",
    "fanout",
    "mixed",
    "stress",
    "seed",
];

/// What one server's run of one scenario left: its summary, or why it failed, or both (a run
/// can write its figures and still fail, e.g. bulk when only the TLS download failed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub summary: Option<Summary>,
    pub failure: Option<String>,
}

/// One scenario's outcomes, one per label in the order the labels were given (None where a
/// server has no run of it).
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub outcomes: Vec<Option<Outcome>>,
}

/// A run as found on disk: the scenario, the label, and what it left.
#[derive(Debug, Clone)]
pub struct Run {
    pub scenario: String,
    pub label: String,
    pub outcome: Outcome,
}

/// Groups `runs` by scenario, with one column per label in `labels` (runs of other labels
/// are left out). A second run of the same scenario and label merges into the first: a
/// summary fills a missing summary, a failure a missing failure.
pub fn pair(runs: &[Run], labels: &[&str]) -> Vec<Scenario> {
    let mut scenarios: Vec<Scenario> = Vec::new();
    for run in runs {
        let Some(column) = labels.iter().position(|l| *l == run.label) else {
            continue;
        };
        let index = match scenarios.iter().position(|s| s.name == run.scenario) {
            Some(i) => i,
            None => {
                scenarios.push(Scenario {
                    name: run.scenario.clone(),
                    outcomes: vec![None; labels.len()],
                });
                scenarios.len() - 1
            }
        };
        let slot = scenarios[index].outcomes[column].get_or_insert_with(Outcome::default);
        if slot.summary.is_none() {
            slot.summary.clone_from(&run.outcome.summary);
        }
        if slot.failure.is_none() {
            slot.failure.clone_from(&run.outcome.failure);
        }
    }
    scenarios.sort_by_key(|s| {
        let rank = ORDER.iter().position(|o| *o == s.name).unwrap_or(ORDER.len());
        (rank, s.name.clone())
    });
    scenarios
}

/// How much better `ours` is than `theirs`: ours / theirs where higher is better, theirs /
/// ours where lower is better. None when the division means nothing (a zero or a negative).
pub fn ratio(better: Better, ours: f64, theirs: f64) -> Option<f64> {
    let (num, den) = match better {
        Better::Higher => (ours, theirs),
        Better::Lower => (theirs, ours),
    };
    let r = num / den;
    (num >= 0.0 && den > 0.0 && r.is_finite()).then_some(r)
}

/// A figure with about three significant digits and its unit: "812 MiB/s", "1.20 ms".
pub fn format_value(value: f64, unit: &str) -> String {
    let number = match value.abs() {
        v if v >= 100.0 => format!("{value:.0}"),
        v if v >= 10.0 => format!("{value:.1}"),
        _ => format!("{value:.2}"),
    };
    if unit.is_empty() {
        number
    } else if unit == "%" {
        format!("{number} %")
    } else {
        format!("{number} {unit}")
    }
}

pub fn format_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| MISSING.to_owned(), |r| format!("{r:.2}×"))
}

/// What a cell shows when a server has no such figure.
pub const MISSING: &str = "—";

/// The headline named `name` in `outcome`, if it has one.
fn headline<'a>(outcome: &'a Option<Outcome>, name: &str) -> Option<&'a Headline> {
    outcome
        .as_ref()?
        .summary
        .as_ref()?
        .headlines
        .iter()
        .find(|h| h.name == name)
}

/// The columns a scenario's table has: ours always, each other server only if it has a run
/// of the scenario (a variant run for some scenarios only adds no empty columns elsewhere).
fn columns(scenario: &Scenario) -> Vec<usize> {
    (0..scenario.outcomes.len())
        .filter(|&i| i == 0 || scenario.outcomes[i].is_some())
        .collect()
}

/// One scenario's table: `figure | ours | theirs | ratio [| theirs2 | ratio ...]`, a row per
/// headline any server has, in the order they first appear (ours first). A server without
/// the figure shows "failed" if its run failed, "—" otherwise. No figures at all, no table.
pub fn table(scenario: &Scenario, labels: &[&str]) -> String {
    let columns = columns(scenario);
    let mut names: Vec<&str> = Vec::new();
    for outcome in scenario.outcomes.iter().flatten() {
        for h in outcome.summary.iter().flat_map(|s| &s.headlines) {
            if !names.contains(&h.name.as_str()) {
                names.push(&h.name);
            }
        }
    }
    if names.is_empty() {
        return String::new();
    }
    let mut out = String::from("| figure |");
    let mut rule = String::from("| --- |");
    for &i in &columns {
        let label = labels[i];
        let _ = write!(out, " {label} |");
        rule.push_str(" ---: |");
        if i > 0 {
            let _ = write!(out, " {} vs {label} |", labels[0]);
            rule.push_str(" ---: |");
        }
    }
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    for name in names {
        let ours = headline(&scenario.outcomes[0], name);
        let _ = write!(out, "| {name} |");
        for &i in &columns {
            let outcome = &scenario.outcomes[i];
            let theirs = headline(outcome, name);
            let cell = match (theirs, outcome) {
                (Some(h), _) => format_value(h.value, &h.unit),
                (None, Some(Outcome { failure: Some(_), .. })) => "failed".to_owned(),
                (None, _) => MISSING.to_owned(),
            };
            let _ = write!(out, " {cell} |");
            if i > 0 {
                let r = match (ours, theirs) {
                    (Some(o), Some(t)) => ratio(o.better, o.value, t.value),
                    _ => None,
                };
                let _ = write!(out, " {} |", format_ratio(r));
            }
        }
        out.push('\n');
    }
    out
}

/// The failures under a scenario's table, one line each: "- dovecot: failed: <first line>".
pub fn failures(scenario: &Scenario, labels: &[&str]) -> String {
    let mut out = String::new();
    for i in columns(scenario) {
        match &scenario.outcomes[i] {
            Some(Outcome {
                failure: Some(error), ..
            }) => {
                let first = error.lines().find(|l| !l.trim().is_empty()).unwrap_or("(no message)");
                let first = first.trim().replace('`', "'");
                // A script that decided not to run a scenario says why, starting "not run".
                let _ = match first.strip_prefix("not run") {
                    Some(why) => writeln!(out, "- {}: not run{why}", labels[i]),
                    None => writeln!(out, "- {}: the run failed: `{first}`", labels[i]),
                };
            }
            None => {
                let _ = writeln!(out, "- {}: not run", labels[i]);
            }
            _ => {}
        }
    }
    out
}

/// Where and when the runs were made, for the report's opening lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// UTC, "2025-01-31 14:05 UTC".
    pub date: String,
    pub cores: usize,
    pub cpu_model: Option<String>,
    pub kernel: Option<String>,
    pub memory_kib: Option<u64>,
}

impl Machine {
    pub fn line(&self) -> String {
        let model = self.cpu_model.as_deref().map(|m| format!(" ({m})")).unwrap_or_default();
        let kernel = self.kernel.as_deref().map(|k| format!(", {k}")).unwrap_or_default();
        let memory = self
            .memory_kib
            .map(|kib| format!(", {:.1} GiB memory", kib as f64 / (1024.0 * 1024.0)))
            .unwrap_or_default();
        format!("Measured {} on {} cores{model}{kernel}{memory}.", self.date, self.cores)
    }
}

/// The first `model name` in /proc/cpuinfo's text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

/// MemTotal from /proc/meminfo's text, in KiB.
pub fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Seconds since the Unix epoch as "YYYY-MM-DD HH:MM UTC" (the proleptic Gregorian calendar).
pub fn utc_date(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let minutes = (unix_seconds % 86_400) / 60;
    // Days to a civil date: eras of 400 years, each 146,097 days, counted from 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minutes / 60,
        minutes % 60
    )
}

/// Everything REPORT.md says besides the charts' files.
pub struct Document<'a> {
    pub labels: &'a [&'a str],
    pub scenarios: &'a [Scenario],
    pub machine: &'a Machine,
    /// Each scenario's chart, as a path relative to the report (None: no chart).
    pub charts: &'a [Option<String>],
    /// Free text from the script: versions, sizes, targets met or missed.
    pub notes: Option<&'a str>,
}

/// The whole report as Markdown.
pub fn markdown(doc: &Document<'_>) -> String {
    let labels = doc.labels;
    let ours = labels.first().copied().unwrap_or("ours");
    let mut out = format!("# {}\n\n", labels.join(" vs "));
    let _ = writeln!(out, "{}\n", doc.machine.line());
    if labels.len() > 1 {
        let _ = writeln!(
            out,
            "Every ratio reads as {ours}'s advantage: {ours} / other where higher is better, \
             other / {ours} where lower is better, so above 1 means {ours} did better. \
             \"{MISSING}\" means the figure is missing on one side.\n"
        );
    }
    if let Some(notes) = doc.notes.map(str::trim).filter(|n| !n.is_empty()) {
        out.push_str("## Notes\n\n");
        out.push_str(notes);
        out.push_str("\n\n");
    }
    for (i, scenario) in doc.scenarios.iter().enumerate() {
        let _ = writeln!(out, "## {}\n", scenario.name);
        let table = table(scenario, labels);
        out.push_str(&table);
        let failed = failures(scenario, labels);
        if !failed.is_empty() {
            if !table.is_empty() {
                out.push('\n');
            }
            out.push_str(&failed);
        }
        if let Some(Some(chart)) = doc.charts.get(i) {
            let _ = write!(out, "\n![{} chart]({chart})\n", scenario.name);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Headline;

    fn run(scenario: &str, label: &str, headlines: Vec<Headline>) -> Run {
        Run {
            scenario: scenario.into(),
            label: label.into(),
            outcome: Outcome {
                summary: Some(Summary {
                    scenario: scenario.into(),
                    label: label.into(),
                    headlines,
                    ..Summary::default()
                }),
                failure: None,
            },
        }
    }

    fn failed(scenario: &str, label: &str, error: &str) -> Run {
        Run {
            scenario: scenario.into(),
            label: label.into(),
            outcome: Outcome {
                summary: None,
                failure: Some(error.into()),
            },
        }
    }

    #[test]
    fn ratio_above_one_means_ours_did_better() {
        assert_eq!(ratio(Better::Higher, 200.0, 100.0), Some(2.0));
        assert_eq!(ratio(Better::Lower, 2.0, 8.0), Some(4.0));
        assert_eq!(ratio(Better::Lower, 8.0, 2.0), Some(0.25));
        assert_eq!(ratio(Better::Higher, 1.0, 0.0), None);
        assert_eq!(ratio(Better::Lower, 0.0, 1.0), None);
        assert_eq!(format_ratio(Some(2.0)), "2.00×");
        assert_eq!(format_ratio(None), "—");
    }

    #[test]
    fn values_keep_three_digits() {
        assert_eq!(format_value(812.34, "MiB/s"), "812 MiB/s");
        assert_eq!(format_value(12.345, "ms"), "12.3 ms");
        assert_eq!(format_value(1.2, "ms"), "1.20 ms");
        assert_eq!(format_value(41.06, "%"), "41.1 %");
    }

    #[test]
    fn tables_pair_figures_and_mark_what_is_missing() {
        let runs = [
            run(
                "deliver",
                "ringmail",
                vec![
                    Headline::new("rate", 3000.0, "messages/s", Better::Higher),
                    Headline::new("p99", 2.0, "ms", Better::Lower),
                    Headline::new("ours only", 1.0, "", Better::Higher),
                ],
            ),
            run(
                "deliver",
                "dovecot",
                vec![
                    Headline::new("p99", 6.0, "ms", Better::Lower),
                    Headline::new("rate", 1000.0, "messages/s", Better::Higher),
                ],
            ),
            run(
                "bulk",
                "ringmail",
                vec![Headline::new("POP3", 900.0, "MiB/s", Better::Higher)],
            ),
            failed("bulk", "dovecot", "\nloadtest: login refused\nmore"),
            failed("idle", "dovecot", "not run: 9000 imap processes would need 54 GiB"),
            run("idle", "dovecot", vec![]),
            run("deliver", "someone else", vec![]),
        ];
        let labels = ["ringmail", "dovecot"];
        let scenarios = pair(&runs, &labels);
        let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["bulk", "deliver", "idle"]);

        let deliver = table(&scenarios[1], &labels);
        let rows: Vec<&str> = deliver.lines().collect();
        assert_eq!(rows[0], "| figure | ringmail | dovecot | ringmail vs dovecot |");
        assert_eq!(rows[2], "| rate | 3000 messages/s | 1000 messages/s | 3.00× |");
        assert_eq!(rows[3], "| p99 | 2.00 ms | 6.00 ms | 3.00× |");
        assert_eq!(rows[4], "| ours only | 1.00 | — | — |");

        let bulk = table(&scenarios[0], &labels);
        assert!(bulk.contains("| POP3 | 900 MiB/s | failed | — |"), "{bulk}");
        assert_eq!(
            failures(&scenarios[0], &labels),
            "- dovecot: the run failed: `loadtest: login refused`\n"
        );
        assert_eq!(
            failures(&scenarios[2], &labels),
            "- ringmail: not run\n- dovecot: not run: 9000 imap processes would need 54 GiB\n"
        );
        assert_eq!(table(&scenarios[2], &labels), "", "no figures, no table");
    }

    #[test]
    fn a_third_server_gets_its_own_ratio_column() {
        let runs = [
            run(
                "idle",
                "ringmail",
                vec![Headline::new("memory", 2.0, "KiB", Better::Lower)],
            ),
            run(
                "idle",
                "dovecot",
                vec![Headline::new("memory", 200.0, "KiB", Better::Lower)],
            ),
            run(
                "idle",
                "hibernate",
                vec![Headline::new("memory", 20.0, "KiB", Better::Lower)],
            ),
        ];
        let labels = ["ringmail", "dovecot", "hibernate"];
        let t = table(&pair(&runs, &labels)[0], &labels);
        assert_eq!(
            t.lines().nth(2),
            Some("| memory | 2.00 KiB | 200 KiB | 100.00× | 20.0 KiB | 10.00× |")
        );
        // Where the third server has no run, it has no columns.
        let t = table(&pair(&runs[..2], &labels)[0], &labels);
        assert_eq!(t.lines().nth(2), Some("| memory | 2.00 KiB | 200 KiB | 100.00× |"));
    }

    #[test]
    fn machine_and_date() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: x\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(
            mem_total_kib("MemTotal:       24567890 kB\nMemFree: 1 kB\n"),
            Some(24_567_890)
        );
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(951_782_400 + 3_600 + 120), "2000-02-29 01:02 UTC");
        assert_eq!(utc_date(1_735_689_599), "2024-12-31 23:59 UTC");
        let m = Machine {
            date: utc_date(0),
            cores: 2,
            cpu_model: Some("X".into()),
            kernel: Some("Linux 6.1".into()),
            memory_kib: Some(24 * 1024 * 1024),
        };
        assert_eq!(
            m.line(),
            "Measured 1970-01-01 00:00 UTC on 2 cores (X), Linux 6.1, 24.0 GiB memory."
        );
    }

    #[test]
    fn the_document_links_charts_and_keeps_notes() {
        let runs = [
            run(
                "deliver",
                "ringmail",
                vec![Headline::new("rate", 2.0, "messages/s", Better::Higher)],
            ),
            run(
                "deliver",
                "dovecot",
                vec![Headline::new("rate", 1.0, "messages/s", Better::Higher)],
            ),
        ];
        let labels = ["ringmail", "dovecot"];
        let scenarios = pair(&runs, &labels);
        let machine = Machine {
            date: utc_date(0),
            cores: 2,
            cpu_model: None,
            kernel: None,
            memory_kib: None,
        };
        let text = markdown(&Document {
            labels: &labels,
            scenarios: &scenarios,
            machine: &machine,
            charts: &[Some("report/deliver.svg".into())],
            notes: Some("Targets: all met.\n"),
        });
        assert!(text.starts_with("# ringmail vs dovecot\n\nMeasured 1970-01-01 00:00 UTC on 2 cores."));
        assert!(text.contains("## Notes\n\nTargets: all met.\n\n## deliver\n"), "{text}");
        assert!(text.contains("| rate | 2.00 messages/s | 1.00 messages/s | 2.00× |"));
        assert!(text.contains("![deliver chart](report/deliver.svg)"));
    }
}
