//! `loadtest crash`: the crash-consistency harness (`loadtest::crash`) from the command line.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use loadtest::crash::{self, Settings};

#[derive(Args, Debug)]
pub struct CrashArgs {
    /// The `ringmail` binary to test.
    #[arg(long, default_value = "target/release/ringmail")]
    pub ringmail: PathBuf,
    /// Kills, each after a random stretch of load.
    #[arg(long, default_value_t = 100)]
    pub rounds: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Shortest and longest load before a kill, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub min_ms: u64,
    #[arg(long, default_value_t = 1500)]
    pub max_ms: u64,
    /// Working directory (config, data, server log); default a new one under the temp dir,
    /// removed after a clean run.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Write the summary as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(args: &CrashArgs) -> Result<()> {
    if args.min_ms > args.max_ms {
        bail!("--min-ms is above --max-ms");
    }
    let dir = args.dir.clone().unwrap_or_else(crash::default_dir);
    let settings = Settings {
        ringmail: args.ringmail.clone(),
        dir: dir.clone(),
        rounds: args.rounds,
        seed: args.seed,
        load_ms: (args.min_ms, args.max_ms),
        verbose: true,
    };
    let summary = crash::run(&settings)?;
    println!(
        "crash: {} rounds, {} kills survived, {} operations acknowledged, {} invariant checks, {} violations",
        summary.rounds,
        summary.kills,
        summary.acknowledged,
        summary.checks,
        summary.violations.len()
    );
    for (kind, n) in &summary.by_kind {
        println!("  {n:>8} {kind}");
    }
    for v in &summary.violations {
        println!("  {v}");
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)?;
    }
    if !summary.violations.is_empty() {
        bail!(
            "{} invariant violations; the store is in {}",
            summary.violations.len(),
            dir.display()
        );
    }
    if args.dir.is_none() {
        crash::clean(&dir);
    }
    Ok(())
}
