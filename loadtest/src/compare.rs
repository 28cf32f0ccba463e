//! `loadtest report`: reads the JSON the scenarios wrote (and the `.failed` notes a script
//! leaves for runs that failed), pairs the runs by scenario between the labels, draws one
//! chart per scenario and writes the Markdown report. The pairing, ratios and Markdown are
//! the library's `comparison`; this module only reads and writes files.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;

use loadtest::chart;
use loadtest::comparison::{self, Document, Machine, Outcome, Run};
use loadtest::report::Summary;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// JSON files written by the scenarios' `--json`, or directories of them. A file
    /// `LABEL-SCENARIO.failed` beside them marks a run that failed; its text says why.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// The label of the server the report is about; ratios are its advantage.
    #[arg(long)]
    ours: String,
    /// The label of a server to compare with; may be given more than once.
    #[arg(long, required = true)]
    theirs: Vec<String>,
    /// The Markdown report to write.
    #[arg(long)]
    out: PathBuf,
    /// Where the charts go (SCENARIO.svg); by default `report/` beside the report.
    #[arg(long)]
    charts: Option<PathBuf>,
    /// Free text to include under "Notes" (versions, sizes, targets met or missed).
    #[arg(long)]
    notes: Option<PathBuf>,
}

/// The JSON `Common::write_report` writes; the details are not needed here.
#[derive(Deserialize)]
struct Written {
    summary: Summary,
}

pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let mut labels: Vec<&str> = vec![args.ours.as_str()];
    labels.extend(args.theirs.iter().map(String::as_str));
    let mut runs = Vec::new();
    for input in &args.inputs {
        if input.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("listing {}", input.display()))?
                .map(|entry| entry.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .with_context(|| format!("listing {}", input.display()))?;
            files.sort();
            for file in files {
                runs.extend(read_run(&file, &labels)?);
            }
        } else {
            match read_run(input, &labels)? {
                Some(run) => runs.push(run),
                None => bail!("{}: neither .json nor .failed", input.display()),
            }
        }
    }
    let scenarios = comparison::pair(&runs, &labels);
    if scenarios.is_empty() {
        bail!("no runs labelled {} found", labels.join(" or "));
    }

    let out_dir = match args.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let charts_dir = args.charts.clone().unwrap_or_else(|| out_dir.join("report"));
    std::fs::create_dir_all(&charts_dir).with_context(|| format!("creating {}", charts_dir.display()))?;
    let mut charts = Vec::new();
    for scenario in &scenarios {
        let summaries: Vec<&Summary> = scenario
            .outcomes
            .iter()
            .flatten()
            .filter_map(|o| o.summary.as_ref())
            .collect();
        if summaries.is_empty() {
            charts.push(None);
            continue;
        }
        let path = charts_dir.join(format!("{}.svg", scenario.name));
        chart::write_svg(&path, &summaries)?;
        charts.push(Some(relative_link(&path, &out_dir)));
    }

    let notes = match &args.notes {
        Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?),
        None => None,
    };
    let machine = machine();
    let text = comparison::markdown(&Document {
        labels: &labels,
        scenarios: &scenarios,
        machine: &machine,
        charts: &charts,
        notes: notes.as_deref(),
    });
    std::fs::write(&args.out, text).with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {} ({} scenarios) and charts in {}",
        args.out.display(),
        scenarios.len(),
        charts_dir.display()
    );
    Ok(())
}

/// A `.json` run or a `.failed` note; None for any other file. A JSON file of another
/// label is read (and left out by the pairing); one without a summary is skipped, with a
/// warning, as older runs wrote none.
fn read_run(path: &Path, labels: &[&str]) -> anyhow::Result<Option<Run>> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            match serde_json::from_str::<Written>(&text) {
                Ok(written) => Ok(Some(Run {
                    scenario: written.summary.scenario.clone(),
                    label: written.summary.label.clone(),
                    outcome: Outcome {
                        summary: Some(written.summary),
                        failure: None,
                    },
                })),
                Err(e) => {
                    eprintln!("loadtest report: skipping {}: no summary ({e})", path.display());
                    Ok(None)
                }
            }
        }
        Some("failed") => {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let Some((label, scenario)) = split_failed(stem, labels) else {
                eprintln!(
                    "loadtest report: skipping {}: not named LABEL-SCENARIO.failed for a known label",
                    path.display()
                );
                return Ok(None);
            };
            let error = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Ok(Some(Run {
                scenario: scenario.to_owned(),
                label: label.to_owned(),
                outcome: Outcome {
                    summary: None,
                    failure: Some(error),
                },
            }))
        }
        _ => Ok(None),
    }
}

/// `LABEL-SCENARIO` split at the longest known label, as labels may have dashes in them
/// ("dovecot-hibernate-idle").
fn split_failed<'a>(stem: &'a str, labels: &[&str]) -> Option<(&'a str, &'a str)> {
    labels
        .iter()
        .filter(|l| stem.len() > l.len() + 1 && stem.starts_with(*l) && stem.as_bytes()[l.len()] == b'-')
        .max_by_key(|l| l.len())
        .map(|l| (&stem[..l.len()], &stem[l.len() + 1..]))
}

/// `path` relative to `dir` when it is under it (a link that survives moving both), else
/// as given.
fn relative_link(path: &Path, dir: &Path) -> String {
    let relative = path.strip_prefix(dir).unwrap_or(path);
    relative.to_string_lossy().into_owned()
}

/// This machine, from /proc: what the figures were measured on.
fn machine() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let kernel = match (read("/proc/sys/kernel/ostype"), read("/proc/sys/kernel/osrelease")) {
        (Some(os), Some(release)) => Some(format!("{} {}", os.trim(), release.trim())),
        _ => None,
    };
    Machine {
        date: comparison::utc_date(seconds),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model: read("/proc/cpuinfo").as_deref().and_then(comparison::cpu_model),
        kernel,
        memory_kib: read("/proc/meminfo").as_deref().and_then(comparison::mem_total_kib),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_notes_split_at_the_longest_label() {
        let labels = ["ringmail", "dovecot", "dovecot-hibernate"];
        assert_eq!(split_failed("dovecot-idle", &labels), Some(("dovecot", "idle")));
        assert_eq!(
            split_failed("dovecot-hibernate-idle", &labels),
            Some(("dovecot-hibernate", "idle"))
        );
        assert_eq!(
            split_failed("ringmail-imap-bulk", &labels),
            Some(("ringmail", "imap-bulk"))
        );
        assert_eq!(split_failed("ringmail-", &labels), None);
        assert_eq!(split_failed("other-idle", &labels), None);
    }

    #[test]
    fn links_are_relative_to_the_report() {
        assert_eq!(
            relative_link(Path::new("loadtest/report/bulk.svg"), Path::new("loadtest")),
            "report/bulk.svg"
        );
        assert_eq!(
            relative_link(Path::new("/tmp/x.svg"), Path::new("loadtest")),
            "/tmp/x.svg"
        );
    }
}
