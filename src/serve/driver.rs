//! The one driver every protocol's session runs on (IMAP, POP3, submission, LMTP, and the
//! proxy's front ends): it feeds the session its client's bytes, sends what it answers, carries
//! out STARTTLS, waits for more input until the instant the session names (or the server's
//! shutdown), and hands the session's other actions to the protocol's part (`Protocol`), which
//! holds what only that protocol does: its store reads and writes, its logins, its message
//! streaming, IMAP's IDLE.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use super::link::{Closed, Link, Stop};
use super::Budget;
use crate::engine::{Engine, Next};
use crate::net::conn::{TLS_READ_BULK, TLS_READ_IDLE};
use crate::net::Input;
use crate::runtime::Shutdown;

/// A session's connection, its input, and what the driver needs to wait and to upgrade.
pub(crate) struct Driver {
    pub link: Link,
    /// Client bytes not yet taken by the session.
    pub input: Input,
    pub shutdown: Shutdown,
    /// For STARTTLS: the server's TLS settings (LMTP has none). The handshake comes before
    /// login, so the session's login deadline bounds it.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// What a wait for the client came to.
pub(crate) enum Waited {
    /// More input is buffered.
    Input,
    /// Nothing is buffered and the session is to wait as data, not as a suspended future: its
    /// run ends, and the protocol's part waits for the socket's readiness in a small task of
    /// its own (IMAP's IDLE, `serve::imap`).
    Park,
}

/// What one protocol's driver part does: give its session what its input reads, carry out
/// its actions, and, where it differs from the others, send and wait.
pub(crate) trait Protocol<E: Engine> {
    /// Feeds the session `input`, with what it reads; its answers go to `link`'s output.
    fn input(&mut self, engine: &mut E, input: &[u8], link: &mut Link) -> Result<(usize, E::Action), Closed>;

    /// Carries out `action`; answers the session's next one.
    async fn act(&mut self, d: &mut Driver, engine: &mut E, action: E::Action) -> Result<E::Action, Closed>;

    /// Sends what is queued.
    async fn flush(&mut self, d: &mut Driver) -> Result<(), Closed> {
        d.link.flush().await
    }

    /// Bytes queued to send.
    fn queued(&self, d: &Driver) -> usize {
        d.link.out.len()
    }

    /// Waits for more client input, or says the session is to park.
    async fn wait(&mut self, d: &mut Driver, engine: &mut E) -> Result<Waited, Closed> {
        d.read(engine).await.map(|()| Waited::Input)
    }
}

impl Driver {
    /// A session's driver over `link`, with nothing read yet.
    pub fn new(link: Link, shutdown: Shutdown, tls: Option<Arc<rustls::ServerConfig>>) -> Driver {
        Driver {
            link,
            input: Input::default(),
            shutdown,
            tls,
        }
    }

    /// Reads more client input, until the session's deadline or shutdown. While input streams
    /// in (the last read filled its buffer) it reads big; otherwise the connection is
    /// probably waiting, and parks only small buffers (DESIGN.md §4).
    pub async fn read<E: Engine>(&mut self, engine: &mut E) -> Result<(), Closed> {
        let begun = !self.input.pending().is_empty();
        let deadline = engine.deadline(Instant::now(), begun);
        let streaming = self.input.streaming();
        self.link.release_output(streaming);
        if !streaming {
            self.input.shrink_idle();
        }
        let size = if streaming { TLS_READ_BULK } else { TLS_READ_IDLE };
        self.link.conn.set_tls_read_size(size);
        let buf = self.input.read_buffer();
        match self.link.read(buf, deadline, &self.shutdown).await {
            Ok(_) => Ok(()),
            Err(stop) => Err(self.stopped(engine, stop)),
        }
    }

    /// After a step of the session: its entry among the live sessions follows where it stands,
    /// and a command it finished is counted with how long it took.
    fn observe<E: Engine>(&self, engine: &E, (command, began): Command) {
        let Some(listed) = &self.link.listed else {
            return;
        };
        listed.set_phase(engine.phase());
        if let Some(command) = command {
            crate::metrics::command(listed.protocol(), command, began.elapsed());
        }
    }

    /// A wait ended without input: the session's goodbye, when it has one to say.
    pub fn stopped<E: Engine>(&mut self, engine: &E, stop: Stop) -> Closed {
        if let Stop::Goodbye(why) = stop {
            self.link.out.extend_from_slice(engine.goodbye(why).as_bytes());
        }
        Closed
    }
}

/// Greets the client and runs its session to the end; what is left to send (a goodbye) is
/// sent before the connection closes. For protocols that do not park (IMAP's part runs
/// `run` itself).
///
/// Not an `async fn`: that would keep the driver twice, as its argument and as the local it
/// is moved into, in every session's future (rust-lang/rust#62958).
#[allow(clippy::manual_async_fn)] // see above
pub(crate) fn drive<'a, E: Engine, P: Protocol<E>>(
    mut d: Driver,
    p: &'a mut P,
    engine: &'a mut E,
) -> impl Future<Output = ()> + 'a {
    async move {
        engine.greeting(&mut d.link.out);
        let _ = run(&mut d, p, engine).await;
        let _ = p.flush(&mut d).await;
        d.link.close().await;
    }
}

/// How a session's run came to an end.
pub(crate) enum Ended {
    /// The session or its client ended it.
    Over,
    /// It parked (`Waited::Park`).
    Parked,
}

/// Runs a greeted session until it or its client ends it, or it parks.
pub(crate) async fn run<E: Engine>(d: &mut Driver, p: &mut impl Protocol<E>, engine: &mut E) -> Result<Ended, Closed> {
    let mut budget = Budget::default();
    loop {
        // Give the session everything buffered, one step at a time; input pipelined before a
        // kick is not acted on after it.
        while !d.input.pending().is_empty() {
            if d.link.is_kicked() {
                return Err(d.stopped(engine, Stop::Goodbye(crate::goodbye::Goodbye::Kicked)));
            }
            let began = Instant::now();
            let (used, action) = p.input(engine, d.input.pending(), &mut d.link)?;
            d.input.consume(used);
            if let Some(line) = engine.take_log() {
                d.link.log('<', line.as_bytes());
            }
            let command = (engine.take_command(), began);
            match E::next(action) {
                Next::Read => d.observe(engine, command),
                // Boxed: the actions' futures (logins, store writes, TLS) are kilobytes, and
                // inline they would be part of every session's state, idle or not.
                next => {
                    if Box::pin(carry_out(d, p, engine, next, command)).await? {
                        return Ok(Ended::Over);
                    }
                }
            }
            if used == 0 {
                break;
            }
            if budget.spend(p.queued(d)) {
                p.flush(d).await?;
                tokio::task::yield_now().await;
            }
        }
        p.flush(d).await?;
        if let Waited::Park = p.wait(d, engine).await? {
            return Ok(Ended::Parked);
        }
    }
}

/// The command a step began, if any, and when the step began.
type Command = (Option<&'static str>, Instant);

/// Carries out what the session asked and whatever that leads to, then notes the step
/// (`observe`); true when the session is over. The step's `command` is kept here, in the boxed
/// future, not in the session's.
async fn carry_out<E: Engine>(
    d: &mut Driver,
    p: &mut impl Protocol<E>,
    engine: &mut E,
    next: Next<E::Action>,
    command: Command,
) -> Result<bool, Closed> {
    let over = carry_out_actions(d, p, engine, next).await?;
    d.observe(engine, command);
    Ok(over)
}

async fn carry_out_actions<E: Engine>(
    d: &mut Driver,
    p: &mut impl Protocol<E>,
    engine: &mut E,
    mut next: Next<E::Action>,
) -> Result<bool, Closed> {
    loop {
        next = match next {
            Next::Read => return Ok(false),
            Next::Close => return Ok(true),
            Next::StartTls => {
                p.flush(d).await?;
                // RFC 3207 §4.2, 2595 §4, 9051 §6.2.1: nothing the client pipelined before the
                // handshake survives it.
                d.input.discard();
                let Some(tls) = d.tls.clone() else {
                    return Err(Closed);
                };
                let by = engine.deadline(Instant::now(), false);
                match tokio::time::timeout_at(by.into(), d.link.conn.start_tls(tls)).await {
                    Ok(Ok(())) => {
                        engine.tls_started();
                        if let Some(listed) = &d.link.listed {
                            listed.tls_started();
                        }
                    }
                    _ => return Err(Closed),
                }
                return Ok(false);
            }
            Next::Act(action) => E::next(p.act(d, engine, action).await?),
        };
    }
}
