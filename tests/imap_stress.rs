//! `loadtest mixed --shared` against a real server for 60 s (issue 9): 20 clients on the
//! INBOX and Archive of two users at once, storing flags and new keywords, appending,
//! expunging, moving, selecting, idling, each checking every untagged response against what
//! its session was told (keywords announced in FLAGS first, `\Recent` in one session only,
//! EXISTS/EXPUNGE/VANISHED and sequence numbers consistent, MODSEQ and HIGHESTMODSEQ never
//! going back, UIDNEXT above every UID seen). No violation may be found.
//!
//! A correctness run, not a benchmark: the figures are printed, never asserted (DESIGN.md §8).

mod common;

use std::time::Duration;

use common::{Extra, Server, PASSWORD};
use loadtest::mixed::shared::{self, Options};
use loadtest::mixed::Endpoint;

const USERS: [&str; 2] = ["alice", "bob"];

#[test]
fn many_sessions_on_shared_mailboxes_see_a_consistent_server() {
    // Plaintext LOGIN, so the clients' time goes to IMAP and not to TLS.
    let server = Server::start_with(Extra {
        imap: "login_type = \"plain-text-login\"",
        ..Default::default()
    });
    for user in USERS {
        server.add_user(user);
    }
    let options = Options {
        endpoint: Endpoint {
            addr: server.addr(server.ports.imap),
            tls: None,
        },
        users: USERS.map(String::from).to_vec(),
        password: PASSWORD.into(),
        clients: 20,
        duration: Some(Duration::from_secs(60)),
        ops: None,
        timeout: Duration::from_secs(240),
        seed: 9,
        max_messages: 60,
        keywords: 100,
    };
    let outcome = shared::run(&options, || {}).expect("the run completes");
    let stats = &outcome.stats;
    let seconds = stats.elapsed.as_secs_f64();
    println!(
        "{} ops in {seconds:.1} s ({:.0} ops/s), {} messages shown \\Recent",
        stats.ops,
        stats.ops as f64 / seconds.max(1e-9),
        outcome.recent_claims
    );
    println!("checked: {:?}", outcome.checked);
    println!("refused (NO/BAD): {:?}", stats.refused);
    // Every rule met its case: keywords, \Recent, expunges both ways, MODSEQ, UIDNEXT.
    let cases = [
        "FETCH with a keyword",
        "FETCH with \\Recent",
        "EXPUNGE",
        "VANISHED",
        "FETCH with MODSEQ",
        "STATUS",
    ];
    for what in cases {
        let n = outcome.checked.get(what).copied().unwrap_or(0);
        assert!(n > 0, "no {what} checked: {:?}", outcome.checked);
    }
    assert_eq!(
        outcome.violations(),
        0,
        "violations by kind (the first ones are printed above with the commands before them): {:#?}",
        outcome.violations_by_kind()
    );
}
