//! One mail transaction (MAIL, RCPT, DATA), the same over LMTP and SMTP submission: the
//! scenarios `deliver` and `submit` differ only in how they connect, and summarise their runs
//! the same way.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};

use hdrhistogram::Histogram;
use loadtest::client::lmtp::{Lmtp, Reply};
use loadtest::client::smtp::Smtp;
use loadtest::client::Transport;
use loadtest::report::{Bar, Better, Headline, LatencyCurve, LatencySummary, Summary};

/// A connection that speaks the SMTP command/reply dialogue.
pub trait Dialogue {
    fn transport(&mut self) -> &mut Transport;
    fn reply(&mut self) -> io::Result<Reply>;
    fn cmd(&mut self, line: &str) -> io::Result<Reply>;
}

impl Dialogue for Lmtp {
    fn transport(&mut self) -> &mut Transport {
        &mut self.t
    }
    fn reply(&mut self) -> io::Result<Reply> {
        Lmtp::reply(self)
    }
    fn cmd(&mut self, line: &str) -> io::Result<Reply> {
        Lmtp::cmd(self, line)
    }
}

impl Dialogue for Smtp {
    fn transport(&mut self) -> &mut Transport {
        &mut self.t
    }
    fn reply(&mut self) -> io::Result<Reply> {
        Smtp::reply(self)
    }
    fn cmd(&mut self, line: &str) -> io::Result<Reply> {
        Smtp::cmd(self, line)
    }
}

/// One transaction with one recipient. The outer error is I/O or protocol breakage (the
/// run stops); the inner one a refusal by the server (counted, the run goes on).
pub fn transaction(
    conn: &mut impl Dialogue,
    from: &str,
    rcpt: &str,
    wire: &[u8],
    pipelining: bool,
) -> io::Result<Result<(), Reply>> {
    let commands = [
        format!("MAIL FROM:<{from}>"),
        format!("RCPT TO:<{rcpt}>"),
        "DATA".to_owned(),
    ];
    let replies: Vec<Reply> = if pipelining {
        // RFC 2920 §3.1: DATA ends a group; the data waits for its 354.
        let group = format!("{}\r\n{}\r\n{}\r\n", commands[0], commands[1], commands[2]);
        conn.transport().send_raw(group.as_bytes())?;
        (0..3).map(|_| conn.reply()).collect::<Result<_, _>>()?
    } else {
        let mut replies = Vec::new();
        for command in &commands {
            let reply = conn.cmd(command)?;
            let go_on = reply.code == 250;
            replies.push(reply);
            if !go_on {
                break;
            }
        }
        replies
    };
    let expected = [250, 250, 354];
    if let Some(bad) = replies.iter().zip(expected).find(|(r, code)| r.code != *code) {
        let refusal = bad.0.clone();
        // A refused MAIL or RCPT leaves a half-open transaction; DATA was refused with it
        // when pipelined. RSET starts the next one clean.
        if replies.last().map(|r| r.code) == Some(354) {
            return Err(io::Error::other(format!(
                "DATA accepted after a refused command: {refusal:?}"
            )));
        }
        conn.cmd("RSET")?;
        return Ok(Err(refusal));
    }
    conn.transport().send_raw(wire)?;
    let reply = conn.reply()?;
    Ok(if reply.code == 250 { Ok(()) } else { Err(reply) })
}

/// A read that ran into the socket's timeout (EAGAIN on Linux, TimedOut elsewhere).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// An LMTP connection after LHLO, with reads bounded by `read_timeout`; whether the server
/// offers PIPELINING.
pub fn lmtp_connect(addr: SocketAddr, read_timeout: Duration) -> anyhow::Result<(Lmtp, bool)> {
    let t = Transport::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    t.set_read_timeout(read_timeout)?;
    let mut lmtp = Lmtp::new(t).context("LMTP greeting")?;
    lmtp.t.send_line("LHLO loadtest.invalid")?;
    let mut pipelining = false;
    loop {
        let line = lmtp.t.read_line_string().context("LHLO reply")?;
        if !line.starts_with("250") {
            bail!("LHLO refused: {line}");
        }
        pipelining |= line.get(4..).is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING"));
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((lmtp, pipelining));
        }
    }
}

/// The summary of a run of transactions: the rate, the latency percentiles and curve, all
/// named after `what` ("delivery", "submission") so two servers' runs pair up by name.
pub fn summary(what: &str, messages_per_sec: f64, histogram: &Histogram<u64>) -> Summary {
    let rate = format!("{what} rate");
    let mut headlines = vec![Headline::new(&rate, messages_per_sec, "messages/s", Better::Higher)];
    headlines.extend(Headline::latencies(what, &LatencySummary::from_histogram(histogram)));
    Summary {
        headlines,
        latency: vec![LatencyCurve::from_histogram(what, histogram)],
        throughput: vec![Bar {
            name: rate,
            value: messages_per_sec,
            unit: "messages/s".into(),
        }],
        ..Summary::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadtest::report::{latency_histogram, record};
    use std::time::Duration;

    #[test]
    fn summary_names_figures_after_the_transaction() {
        let mut h = latency_histogram();
        for ms in 1..=100 {
            record(&mut h, Duration::from_millis(ms));
        }
        let s = summary("delivery", 250.0, &h);
        let names: Vec<&str> = s.headlines.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            ["delivery rate", "delivery p50", "delivery p99", "delivery p99.9"]
        );
        assert_eq!(s.headlines[0].better, Better::Higher);
        assert_eq!(s.headlines[2].better, Better::Lower);
        assert!((s.headlines[2].value - 99.0).abs() < 0.1, "{:?}", s.headlines[2]);
        assert_eq!(s.latency[0].name, "delivery");
        assert_eq!(s.throughput[0].unit, "messages/s");
    }
}
