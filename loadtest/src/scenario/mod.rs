//! The scenarios: each drives real connections and measures; the figures' arithmetic and
//! formatting live in the library's `report`.

pub mod bulk;
pub mod changes;
pub mod crash;
pub mod deliver;
pub mod fanout;
pub mod fleet;
pub mod idle;
pub mod imap_bulk;
pub mod login;
pub mod maildir;
pub mod mixed;
pub mod storm;
pub mod submit;
pub mod txn;

pub use loadtest::threads::{check_deadline, join_clients, spawn_clients, Clients};

/// `user%d` with `%d` replaced by `n`; a pattern without `%d` names one user for all `n`.
pub fn user_name(pattern: &str, n: u64) -> String {
    pattern.replace("%d", &n.to_string())
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
