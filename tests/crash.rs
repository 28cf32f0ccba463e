//! The crash-consistency harness's short form (issue 11, item 2): a mixed load of every kind
//! of write, `kill -9` at random moments, `ringmail fsck` and a check of every mailbox after
//! each restart, on one data directory. The long form is `loadtest crash` (BENCHMARKS.md).

mod common;

use std::path::PathBuf;

use loadtest::crash::{run, Settings};

#[test]
fn acknowledged_writes_survive_kill_9_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        ringmail: PathBuf::from(common::bin()),
        dir: dir.path().to_owned(),
        rounds: 12,
        seed: std::process::id().into(),
        load_ms: (100, 900),
        verbose: false,
    };
    let summary = run(&settings).unwrap();
    assert!(
        summary.violations.is_empty(),
        "seed {}: {:#?}",
        settings.seed,
        summary.violations
    );
    assert_eq!(summary.kills, 12);
    // Every kind of operation was acknowledged at least once, so each was also cut off.
    for kind in [
        "lmtp delivery",
        "submission, local",
        "submission, queued",
        "imap append",
        "imap move",
        "imap copy",
        "imap store",
        "imap expunge",
        "imap create+rename+delete",
        "pop3 dele+quit",
    ] {
        assert!(
            summary.by_kind.get(kind).copied().unwrap_or(0) > 0,
            "no {kind}: {:?}",
            summary.by_kind
        );
    }
}
