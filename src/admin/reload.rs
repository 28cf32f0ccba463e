//! `ringmail reload`: the server and the front end running on this config's data_dir read
//! their certificate and key again (SIGHUP to each; see `tls::Identity`). What the reload
//! did is in their logs: a pair that does not load is refused and the one in use kept.

use anyhow::{bail, Context, Result};

use crate::config::Config;
use crate::serve::{lock_in, ServeError, PROXY_LOCK, SERVE_LOCK};

pub fn run(config: &Config) -> Result<()> {
    let dir = &config.server.data_dir;
    let mut told = 0;
    for (name, what) in [(SERVE_LOCK, "serve"), (PROXY_LOCK, "proxy")] {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        // Running only while its lock is held; taken here, it was not.
        match lock_in(dir, name) {
            Ok(_not_running) => continue,
            Err(ServeError::Busy(..)) => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let pid: i32 = text
            .trim()
            .parse()
            .with_context(|| format!("{} holds no process id", path.display()))?;
        crate::runtime::send_hangup(pid).with_context(|| format!("cannot signal process {pid}"))?;
        println!("asked `ringmail {what}` (pid {pid}) to reload its certificate and key");
        told += 1;
    }
    if told == 0 {
        bail!(
            "no `ringmail serve` or `ringmail proxy` is running on {}",
            dir.display()
        );
    }
    Ok(())
}
