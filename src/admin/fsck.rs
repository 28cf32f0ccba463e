//! `ringmail fsck [--repair]`: the store's invariants checked on a stopped server
//! (`store::check`), each finding printed, and with `--repair` fixed where that is safe.

use anyhow::{bail, Context, Result};

use crate::config::Config;
use crate::store::check::Report;
use crate::store::{WriteOp, WriteOutcome};

pub fn run(config: &Config, repair: bool) -> Result<()> {
    // The server must be stopped: a store being written to shows passing states.
    let _lock = crate::serve::lock_data_dir(&config.server.data_dir).context("stop the server first")?;
    let store = super::open_stopped(config)?;
    let report = if repair {
        match store.write_blocking(WriteOp::Repair)? {
            WriteOutcome::Repaired { report, repaired } => {
                print_report(&report);
                println!("repaired {repaired} of {} findings", report.findings.len());
                store.check()?
            }
            other => bail!("the writer answered a repair with {other:?}"),
        }
    } else {
        let report = store.check()?;
        print_report(&report);
        report
    };
    println!(
        "{} users, {} mailboxes, {} messages, {} bodies, {} queue entries: {}",
        report.users,
        report.mailboxes,
        report.messages,
        report.bodies,
        report.queue_entries,
        if report.is_clean() { "clean" } else { "damaged" }
    );
    if !report.is_clean() {
        if repair {
            print_report(&report);
            bail!("{} findings remain after the repair", report.findings.len());
        }
        bail!(
            "{} findings ({} repairable with --repair)",
            report.findings.len(),
            report.repairable()
        );
    }
    Ok(())
}

fn print_report(report: &Report) {
    for finding in &report.findings {
        println!("{finding}");
    }
}
