//! The scenarios: each drives real connections and measures; the figures' arithmetic and
//! formatting live in the library's `report`.

pub mod bulk;
pub mod deliver;
pub mod fanout;
pub mod fleet;
pub mod idle;
pub mod imap_bulk;
pub mod login;
pub mod mixed;
pub mod submit;
pub mod txn;

use std::time::Instant;

use anyhow::bail;

/// `user%d` with `%d` replaced by `n`; a pattern without `%d` names one user for all `n`.
pub fn user_name(pattern: &str, n: u64) -> String {
    pattern.replace("%d", &n.to_string())
}

/// Fails once `deadline` has passed, naming what was still going on.
pub fn check_deadline(deadline: Instant, doing: &str) -> anyhow::Result<()> {
    if Instant::now() > deadline {
        bail!("timed out while {doing} (see --timeout)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_pattern() {
        assert_eq!(user_name("user%d", 7), "user7");
        assert_eq!(user_name("bench", 7), "bench");
    }
}
