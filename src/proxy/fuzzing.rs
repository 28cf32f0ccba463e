//! The front end's pre-login path without sockets, for the `proxy_prelogin` fuzz target:
//! everything a client can make a front end do before a back end is involved.

use super::front::{Ask, PreLogin};
use crate::config::Config;
use crate::engine::Next;
use crate::serve::login::Failure;

/// A front end's client protocol.
#[derive(Debug, Clone, Copy)]
pub enum Protocol {
    Imap,
    Pop3,
    Submission,
}

/// Feeds `input` in reads of `piece` bytes to the pre-login session of `protocol` on a
/// plaintext listener, as the front end's core does: STARTTLS succeeds (what was buffered is
/// dropped), SCRAM finds no keys, and every login fails with a failure chosen by `failures`.
/// Returns what the front end said and whether it closed the connection.
pub fn pre_login(config: &Config, protocol: Protocol, input: &[u8], piece: usize, failures: u8) -> (Vec<u8>, bool) {
    match protocol {
        Protocol::Imap => drive(
            super::imap::ImapFront::new(config, false, false),
            input,
            piece,
            failures,
        ),
        Protocol::Pop3 => drive(super::pop3::front(config, false, false), input, piece, failures),
        Protocol::Submission => drive(super::submission::front(config, false, false), input, piece, failures),
    }
}

fn drive<S: PreLogin>(mut session: S, input: &[u8], piece: usize, failures: u8) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    session.greeting(&mut out);
    let mut buffered = Vec::new();
    let mut logins = 0u32;
    for read in input.chunks(piece.max(1)) {
        buffered.extend_from_slice(read);
        while !buffered.is_empty() {
            let (used, mut action) = session.input(&buffered, &mut (), &mut out);
            let _ = session.take_log();
            buffered.drain(..used);
            loop {
                action = match S::next(action) {
                    Next::Read => break,
                    Next::Close => return (out, true),
                    Next::StartTls => {
                        buffered.clear();
                        session.tls_started();
                        break;
                    }
                    Next::Act(action) => match S::ask(action) {
                        Ask::Nothing => return (out, true),
                        Ask::LookupScram(_) => session.scram_credentials(None, &mut out),
                        Ask::Login(_) => {
                            let failure = match (failures >> (logins % 4 * 2)) & 3 {
                                0 => Failure::BadCredentials,
                                1 => Failure::Refused("IMAP4 access is disabled".into()),
                                2 => Failure::Limit("too many connections for this user".into()),
                                _ => Failure::Temporary,
                            };
                            logins += 1;
                            session.login_failed(failure, &mut out)
                        }
                    },
                };
            }
            if used == 0 {
                break;
            }
        }
    }
    (out, false)
}
