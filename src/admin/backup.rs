//! `ringmail backup PATH`: a consistent, compacted copy of the store, made while the server
//! runs (LMDB copies from one read transaction; writers go on meanwhile), into a new
//! directory laid out as a data_dir: `data.mdb`, and the server's certificate and key if it
//! made them there. A server started with `data_dir = PATH` runs on the copy.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::config::Config;

/// What a data_dir holds besides the store that a server on the copy should find: the TLS
/// identity `ringmail serve` generates when none is configured.
const ALONGSIDE: [&str; 2] = ["cert.pem", "key.pem"];

pub fn run(config: &Config, to: &Path) -> Result<()> {
    if to.exists() && std::fs::read_dir(to).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} exists and is not an empty directory", to.display());
    }
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let store = super::open(config)?;
    let data = to.join("data.mdb");
    let bytes = store
        .backup(&data)
        .with_context(|| format!("cannot copy the store to {}", data.display()))?;
    let from = &config.server.data_dir;
    for name in ALONGSIDE {
        let source = from.join(name);
        if source.exists() {
            copy_durably(&source, &to.join(name)).with_context(|| format!("cannot copy {}", source.display()))?;
        }
    }
    // The new names are durable only once their directory is.
    std::fs::File::open(to)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", to.display()))?;
    println!(
        "backed up the store to {} ({bytes} bytes, compacted); a server with data_dir = \"{}\" runs on it",
        data.display(),
        to.display()
    );
    Ok(())
}

/// Copies `from` to the new file `to` (same permissions) and makes it durable.
fn copy_durably(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::copy(from, to)?;
    std::fs::File::open(to)?.sync_all()
}
