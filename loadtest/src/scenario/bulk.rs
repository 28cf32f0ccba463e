//! Bulk download: how close POP3 RETR comes to the loopback's own speed.
//!
//! Three measurements in one run, so they share the machine's state: (1) raw TCP over
//! 127.0.0.1 to a reader, from a sender thread writing 256 KiB at a time and from one that
//! `sendfile`s from the page cache (no copy on the sending side: the fastest this machine
//! moves bytes over one loopback connection to the same reader; the faster of the two is
//! "raw", the reference every figure is a share of), with memcpy's bandwidth beside them,
//! since the reader's copy out of the socket is unavoidable; (2) POP3 over
//! plaintext, RETR of every message; (3) the same over implicit TLS (pop3s). The POP3 reader
//! uses the same 256 KiB buffer as the raw reader and un-stuffs with `MultilineScanner`
//! without keeping messages, so the client costs about what the raw reader costs. RETRs are
//! pipelined (RFC 2449 PIPELINING) when the server offers it, as a bulk client would.
//! Messages are never deleted: QUIT without DELE leaves the maildrop as it was.
//!
//! The passes, the raw reference, the CPU figures and the report are shared with the IMAP
//! bulk download (`imap_bulk`), so both protocols are measured and reported the same way.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use super::check_deadline;
use crate::cpu::{percent_of_core, CpuTime};
use crate::Common;
use loadtest::client::pop3::Pop3;
use loadtest::client::{tls_config, Transport};
use loadtest::multiline::MultilineScanner;
use loadtest::report::{self, throughput_table, Bar, Better, Headline, Summary, ThroughputRow};

/// The read (and raw write) size: large, so per-call overhead is small on both sides.
pub(super) const IO_BUFFER: usize = 256 * 1024;

#[derive(Args, Debug)]
pub struct BulkArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 110)]
    pop3_port: u16,
    /// Port of implicit-TLS POP3; 0 skips the TLS measurement.
    #[arg(long, default_value_t = 995)]
    pop3s_port: u16,
    /// The server's certificate (ringmail: data_dir/cert.pem), trusted for the TLS run.
    #[arg(long)]
    cafile: Option<PathBuf>,
    /// Name the certificate is checked against.
    #[arg(long, default_value = "localhost")]
    tls_name: String,
    #[arg(long)]
    user: String,
    #[arg(long)]
    password: String,
    /// Bytes for the raw loopback reference.
    #[arg(long, default_value_t = 1 << 30)]
    raw_bytes: u64,
    /// RETR commands in flight at once; 1 disables pipelining. Used only if the server
    /// advertises PIPELINING.
    #[arg(long, default_value_t = 8)]
    pipeline: usize,
    /// The server's process id, to report its CPU time per measurement.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The front end's process id, when the download goes through `ringmail proxy`: its
    /// CPU time is reported beside the server's.
    #[arg(long)]
    front_pid: Option<u32>,
    /// Rounds of raw, plaintext and TLS. The first download of a freshly started server also
    /// pays for mapping the store's pages in; later passes show the steady state.
    #[arg(long, default_value_t = 3)]
    passes: u32,
}

#[derive(Debug, Serialize)]
struct BulkReport {
    /// "POP3" or "IMAP".
    protocol: &'static str,
    passes: u32,
    /// Every measurement of every pass, in order; names end in `#pass` when passes > 1.
    rows: Vec<Measured>,
    failed: Vec<Failed>,
    /// Best MiB/s of each kind over the passes, and the ratios of the bests. `best_raw` is
    /// the faster of the written and the sendfile'd reference.
    best_raw: Option<f64>,
    best_raw_write: Option<f64>,
    best_raw_sendfile: Option<f64>,
    best_raw_relayed: Option<f64>,
    /// memcpy of 256 KiB blocks out of a 64 MiB buffer, MiB/s.
    memcpy: Option<f64>,
    best_plaintext: Option<f64>,
    best_tls: Option<f64>,
    plaintext_vs_raw: Option<f64>,
    tls_vs_raw: Option<f64>,
    messages: usize,
    /// Commands in flight at once (POP3 RETR); absent where one command fetches everything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pipeline_depth: Option<usize>,
}

#[derive(Debug, Serialize)]
struct Failed {
    name: String,
    error: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Kind {
    Raw,
    /// Raw loopback TCP sent with sendfile(2) from a file in the page cache.
    RawSendfile,
    /// Raw loopback TCP through a relay thread: two hops, what a front end adds at the least.
    RawRelayed,
    Plaintext,
    Tls,
}

/// What the shared pass loop measures besides the raw reference, and how it is labelled.
pub(super) struct Protocol {
    /// "POP3" or "IMAP", in the report.
    pub name: &'static str,
    /// The scenario's name in the JSON summary: "bulk" or "imap-bulk".
    pub scenario: &'static str,
    /// Row labels, e.g. "POP3 plaintext" and "POP3 TLS (pop3s)".
    pub plaintext_label: &'static str,
    pub tls_label: &'static str,
    /// The flag of the implicit-TLS port, for the error when --cafile is missing.
    pub tls_port_flag: &'static str,
}

impl Kind {
    fn label(self, protocol: &Protocol) -> &'static str {
        match self {
            Kind::Raw => "raw loopback TCP",
            Kind::RawSendfile => "raw loopback TCP, sendfile",
            Kind::RawRelayed => "raw loopback TCP, relayed",
            Kind::Plaintext => protocol.plaintext_label,
            Kind::Tls => protocol.tls_label,
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct Measured {
    kind: Kind,
    #[serde(flatten)]
    row: ThroughputRow,
    /// CPU as % of one core over the measurement: harness, server and front end.
    client_cpu_percent: Option<f64>,
    server_cpu_percent: Option<f64>,
    front_cpu_percent: Option<f64>,
}

pub fn run(args: &BulkArgs) -> anyhow::Result<()> {
    let protocol = Protocol {
        name: "POP3",
        scenario: "bulk",
        plaintext_label: "POP3 plaintext",
        tls_label: "POP3 TLS (pop3s)",
        tls_port_flag: "pop3s-port",
    };
    let passes = Passes {
        common: &args.common,
        passes: args.passes,
        raw_bytes: args.raw_bytes,
        server_pid: args.server_pid,
        plaintext_port: args.pop3_port,
        tls_port: args.pop3s_port,
        cafile: args.cafile.as_deref(),
        tls_name: &args.tls_name,
    };
    run_passes(&passes, &protocol, |t, kind, name, deadline| {
        download(t, args, kind, name, deadline)
    })
}

/// The settings every bulk scenario shares.
pub(super) struct Passes<'a> {
    pub common: &'a Common,
    pub passes: u32,
    pub raw_bytes: u64,
    pub server_pid: Option<u32>,
    pub plaintext_port: u16,
    /// 0: no TLS measurement.
    pub tls_port: u16,
    pub cafile: Option<&'a Path>,
    pub tls_name: &'a str,
}

/// Rounds of raw loopback, plaintext and (if there is a TLS port) TLS, each download made by
/// `download(connection, kind, row name, deadline)`; then the table, the JSON and the exit
/// status (an error if any measurement failed, after all were tried and reported).
pub(super) fn run_passes(
    p: &Passes<'_>,
    protocol: &Protocol,
    mut download: impl FnMut(Transport, Kind, &str, Instant) -> anyhow::Result<Download>,
) -> anyhow::Result<()> {
    p.common.check()?;
    let tls_config = match (p.tls_port, p.cafile) {
        (0, _) => None,
        (_, None) => bail!("--cafile is needed for the TLS run (or --{} 0)", protocol.tls_port_flag),
        (_, Some(cafile)) => Some(tls_config(cafile).with_context(|| format!("reading {}", cafile.display()))?),
    };
    let mut connected = |kind: Kind, name: &str, deadline: Instant| match &tls_config {
        Some(config) if kind == Kind::Tls => {
            let addr = SocketAddr::new(p.common.host, p.tls_port);
            Transport::connect_tls(addr, config.clone(), p.tls_name)
                .with_context(|| format!("TLS to {addr}"))
                .and_then(|t| download(t, kind, name, deadline))
        }
        _ => {
            let addr = SocketAddr::new(p.common.host, p.plaintext_port);
            Transport::connect(addr)
                .with_context(|| format!("connecting to {addr}"))
                .and_then(|t| download(t, kind, name, deadline))
        }
    };
    let deadline = Instant::now() + p.common.timeout();
    let mut report = BulkReport {
        protocol: protocol.name,
        passes: p.passes.max(1),
        rows: Vec::new(),
        failed: Vec::new(),
        best_raw: None,
        best_raw_write: None,
        best_raw_sendfile: None,
        best_raw_relayed: None,
        memcpy: None,
        best_plaintext: None,
        best_tls: None,
        plaintext_vs_raw: None,
        tls_vs_raw: None,
        messages: 0,
        pipeline_depth: None,
    };
    report.memcpy = Some(memcpy_bandwidth());
    let passes = report.passes;
    for pass in 1..=passes {
        let name = |kind: Kind| match passes {
            1 => kind.label(protocol).to_owned(),
            _ => format!("{} #{pass}", kind.label(protocol)),
        };
        for kind in [Kind::Raw, Kind::RawSendfile, Kind::RawRelayed] {
            let raw = raw_loopback(p.raw_bytes, (kind, &name(kind)), p.server_pid, deadline)
                .context("raw loopback reference")?;
            report.rows.push(raw);
        }
        // A failed download is a result to report, not a reason to skip the other one.
        let mut kinds = vec![Kind::Plaintext];
        if tls_config.is_some() {
            kinds.push(Kind::Tls);
        }
        for kind in kinds {
            let outcome = connected(kind, &name(kind), deadline);
            report.add(&name(kind), outcome);
        }
    }
    report.summarise();
    report.print();
    p.common
        .write_report(protocol.scenario, report.summary(protocol), &report)?;
    if let Some(first) = report.failed.first() {
        bail!(
            "{} measurement(s) failed, first: {}: {}",
            report.failed.len(),
            first.name,
            first.error
        );
    }
    Ok(())
}

impl BulkReport {
    fn add(&mut self, name: &str, outcome: anyhow::Result<Download>) {
        match outcome {
            Ok(download) => {
                self.messages = download.messages;
                self.pipeline_depth = download.pipeline_depth;
                self.rows.push(download.measured);
            }
            Err(e) => self.failed.push(Failed {
                name: name.to_owned(),
                error: format!("{e:#}"),
            }),
        }
    }

    /// Best of the passes: on a shared machine the slow passes are the ones something else
    /// interfered with, while nothing makes a pass faster than the code allows.
    fn summarise(&mut self) {
        let best = |kind: Kind| {
            self.rows
                .iter()
                .filter(|m| m.kind == kind)
                .map(|m| m.row.mib_per_sec)
                .reduce(f64::max)
        };
        self.best_raw_write = best(Kind::Raw);
        self.best_raw_sendfile = best(Kind::RawSendfile);
        self.best_raw = [self.best_raw_write, self.best_raw_sendfile]
            .into_iter()
            .flatten()
            .reduce(f64::max);
        self.best_raw_relayed = best(Kind::RawRelayed);
        self.best_plaintext = best(Kind::Plaintext);
        self.best_tls = best(Kind::Tls);
        let ratio = |x: Option<f64>| match (x, self.best_raw) {
            (Some(x), Some(raw)) if raw > 0.0 => Some(x / raw),
            _ => None,
        };
        self.plaintext_vs_raw = ratio(self.best_plaintext);
        self.tls_vs_raw = ratio(self.best_tls);
    }

    /// The bests as headlines and bars: each protocol's MiB/s, the raw reference, and the
    /// plaintext download as a share of raw (the figure DESIGN.md §8 asks for).
    fn summary(&self, protocol: &Protocol) -> Summary {
        let mut summary = Summary::default();
        let kinds = [
            (Some(Kind::Plaintext), self.best_plaintext),
            (Some(Kind::Tls), self.best_tls),
            (Some(Kind::Raw), self.best_raw),
            (Some(Kind::RawSendfile), self.best_raw_sendfile),
            (Some(Kind::RawRelayed), self.best_raw_relayed),
            (None, self.memcpy),
        ];
        for (kind, best) in kinds {
            let Some(mib) = best else { continue };
            // The references are the machine's, not the server's: their names say so, as a
            // comparison of two servers shows them beside theirs.
            let name = match kind {
                None => "memcpy (reference)",
                Some(Kind::Raw) => "raw loopback TCP (reference)",
                Some(Kind::RawSendfile) => "raw loopback TCP, sendfile (reference)",
                Some(Kind::RawRelayed) => "raw loopback TCP, relayed (reference)",
                Some(kind) => kind.label(protocol),
            };
            summary
                .headlines
                .push(Headline::new(name, mib, "MiB/s", Better::Higher));
            summary.throughput.push(Bar {
                name: name.to_owned(),
                value: mib,
                unit: "MiB/s".into(),
            });
        }
        for (kind, label) in [
            (Kind::Plaintext, protocol.plaintext_label),
            (Kind::Tls, protocol.tls_label),
        ] {
            let rows: Vec<&Measured> = self.rows.iter().filter(|m| m.kind == kind).collect();
            let whose: [(&str, PercentOf); 3] = [
                ("server", |m| m.server_cpu_percent),
                ("front end", |m| m.front_cpu_percent),
                ("harness", |m| m.client_cpu_percent),
            ];
            for (who, percent) in whose {
                if let Some(seconds) = cpu_seconds_per_gib(&rows, percent) {
                    summary.headlines.push(Headline::new(
                        &format!("{label}: {who} CPU per GiB"),
                        seconds,
                        "s",
                        Better::Lower,
                    ));
                }
            }
        }
        for (label, ratio) in [
            (protocol.plaintext_label, self.plaintext_vs_raw),
            (protocol.tls_label, self.tls_vs_raw),
        ] {
            if let Some(ratio) = ratio {
                summary.headlines.push(Headline::new(
                    &format!("{label} / raw"),
                    100.0 * ratio,
                    "%",
                    Better::Higher,
                ));
            }
        }
        summary
    }

    fn print(&self) {
        let table_rows: Vec<ThroughputRow> = self.rows.iter().map(|m| m.row.clone()).collect();
        print!("{}", throughput_table(&table_rows));
        for failed in &self.failed {
            println!("{:<24} FAILED: {}", failed.name, failed.error);
        }
        for m in &self.rows {
            let server = m
                .server_cpu_percent
                .map(|s| format!(", server {s:.0} %"))
                .unwrap_or_default();
            let front = m
                .front_cpu_percent
                .map(|f| format!(", front end {f:.0} %"))
                .unwrap_or_default();
            if let Some(c) = m.client_cpu_percent {
                println!(
                    "{:<24} cpu (% of one core): harness {c:.0} %{server}{front}",
                    m.row.name
                );
            }
        }
        let depth = self
            .pipeline_depth
            .map(|d| format!("  pipeline depth {d}"))
            .unwrap_or_default();
        println!(
            "{} messages {}{depth}  best of {} passes:",
            self.protocol, self.messages, self.passes
        );
        if let (Some(write), Some(sendfile), Some(memcpy)) = (self.best_raw_write, self.best_raw_sendfile, self.memcpy)
        {
            println!(
                "raw references: written {write:.1} MiB/s, sendfile {sendfile:.1} MiB/s; memcpy {memcpy:.1} MiB/s"
            );
        }
        if let (Some(raw), Some(plain), Some(ratio)) = (self.best_raw, self.best_plaintext, self.plaintext_vs_raw) {
            println!(
                "raw {raw:.1} MiB/s, plaintext {plain:.1} MiB/s, plaintext / raw {:.1} %",
                100.0 * ratio
            );
        }
        if let (Some(tls), Some(ratio)) = (self.best_tls, self.tls_vs_raw) {
            println!(
                "TLS {tls:.1} MiB/s ({:.2} GiB/s), TLS / raw {:.1} %",
                tls / 1024.0,
                100.0 * ratio
            );
        }
    }
}

/// One process's CPU (% of one core) over a measurement.
type PercentOf = fn(&Measured) -> Option<f64>;

/// CPU seconds (of one core) a GiB of payload took over all of `rows`' passes, by `percent`
/// of each: per pass, a 0.1 s download is a few of the kernel's 10 ms ticks, too few alone.
fn cpu_seconds_per_gib(rows: &[&Measured], percent: PercentOf) -> Option<f64> {
    let mut seconds = 0.0;
    let mut bytes = 0u64;
    for m in rows {
        seconds += percent(m)? / 100.0 * m.row.seconds;
        bytes += m.row.bytes;
    }
    (bytes > 0).then(|| seconds / (bytes as f64 / (1u64 << 30) as f64))
}

/// Wall and CPU time over the timed part of a measurement only (not login or LIST, and
/// not the server's argon2 check of the password).
pub(super) struct Stopwatch {
    started: Instant,
    server_pid: Option<u32>,
    front_pid: Option<u32>,
    client: Option<CpuTime>,
    server: Option<CpuTime>,
    front: Option<CpuTime>,
}

impl Stopwatch {
    pub(super) fn start(server_pid: Option<u32>, front_pid: Option<u32>) -> Stopwatch {
        let of = |pid: Option<u32>| pid.and_then(|p| CpuTime::of(Some(p)));
        Stopwatch {
            client: CpuTime::of(None),
            server: of(server_pid),
            front: of(front_pid),
            server_pid,
            front_pid,
            started: Instant::now(),
        }
    }

    pub(super) fn stop(self, kind: Kind, name: &str, bytes: u64, wire_bytes: u64) -> Measured {
        let elapsed = self.started.elapsed();
        let of = |pid: Option<u32>| pid.and_then(|p| CpuTime::of(Some(p)));
        let pct = |a: Option<CpuTime>, b: Option<CpuTime>| Some(percent_of_core(b?.since(&a?), elapsed));
        Measured {
            kind,
            row: ThroughputRow::new(name, bytes, wire_bytes, elapsed),
            client_cpu_percent: pct(self.client, CpuTime::of(None)),
            server_cpu_percent: pct(self.server, of(self.server_pid)),
            front_cpu_percent: pct(self.front, of(self.front_pid)),
        }
    }
}

pub(super) struct Download {
    pub measured: Measured,
    pub messages: usize,
    pub pipeline_depth: Option<usize>,
}

/// The reference: `bytes` through a loopback TCP connection, from a thread to this one.
fn raw_loopback(
    bytes: u64,
    (kind, name): (Kind, &str),
    server_pid: Option<u32>,
    deadline: Instant,
) -> anyhow::Result<Measured> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback listener")?;
    let addr = listener.local_addr()?;
    // Written (and so in the page cache) before the clock starts.
    let source = match kind {
        Kind::RawSendfile => Some(page_cache_file(bytes.min(SENDFILE_SOURCE)).context("the sendfile source")?),
        _ => None,
    };
    let stopwatch = Stopwatch::start(server_pid, None);
    // Relayed: the sender connects to a relay thread, which copies to the receiver, as a
    // front end's relay does with the least work a process can do (read, write, repeat).
    let (relay, send_to) = if kind == Kind::RawRelayed {
        let front = TcpListener::bind("127.0.0.1:0").context("binding the relay's listener")?;
        let front_addr = front.local_addr()?;
        let relay = std::thread::spawn(move || -> io::Result<()> {
            let (mut from, _) = front.accept()?;
            let mut to = TcpStream::connect(addr)?;
            let mut buf = vec![0u8; IO_BUFFER];
            loop {
                let n = from.read(&mut buf)?;
                if n == 0 {
                    return to.shutdown(std::net::Shutdown::Write);
                }
                to.write_all(&buf[..n])?;
            }
        });
        (Some(relay), front_addr)
    } else {
        (None, addr)
    };
    let sender = std::thread::spawn(move || -> io::Result<()> {
        let mut stream = TcpStream::connect(send_to)?;
        if let Some(source) = source {
            return send_file(&source, &mut stream, bytes);
        }
        // Not all zeros, in case anything on the path ever compresses or dedups.
        let chunk: Vec<u8> = (0..IO_BUFFER).map(|i| (i % 251) as u8).collect();
        let mut left = bytes;
        while left > 0 {
            let n = left.min(IO_BUFFER as u64) as usize;
            stream.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        stream.shutdown(std::net::Shutdown::Write)
    });
    let (mut stream, _) = listener.accept().context("accepting the sender")?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut buf = vec![0u8; IO_BUFFER];
    let mut received = 0u64;
    loop {
        let n = stream.read(&mut buf).context("reading")?;
        if n == 0 {
            break;
        }
        received += n as u64;
        // A timestamp per 256 KiB costs nothing beside the copy.
        check_deadline(deadline, "receiving the raw reference")?;
    }
    let measured = stopwatch.stop(kind, name, bytes, bytes);
    for (thread, what) in [(Some(sender), "sender"), (relay, "relay")] {
        match thread.map(std::thread::JoinHandle::join) {
            None | Some(Ok(Ok(()))) => {}
            Some(Ok(Err(e))) => return Err(e).context(what),
            Some(Err(_)) => bail!("the {what} thread panicked"),
        }
    }
    if received != bytes {
        bail!("received {received} bytes of {bytes}");
    }
    Ok(measured)
}

/// The sendfile reference's source: this many bytes, sent over and over.
const SENDFILE_SOURCE: u64 = 64 << 20;

/// An unnamed file of `size` bytes of the raw reference's pattern, in the page cache.
fn page_cache_file(size: u64) -> io::Result<std::fs::File> {
    let path = std::env::temp_dir().join(format!("loadtest-sendfile-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    // Unnamed from now on: nothing is left behind, whatever happens next.
    std::fs::remove_file(&path)?;
    let chunk: Vec<u8> = (0..IO_BUFFER).map(|i| (i % 251) as u8).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(IO_BUFFER as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    Ok(file)
}

/// Sends `bytes` from `source` over and over, then ends the stream. std's `io::copy` from a
/// file to a socket is `sendfile(2)` on Linux: the pages go to the socket without a copy.
fn send_file(source: &std::fs::File, stream: &mut TcpStream, bytes: u64) -> io::Result<()> {
    use std::io::Seek;
    let size = source.metadata()?.len().max(1);
    let mut left = bytes;
    let mut file = source;
    while left > 0 {
        file.seek(io::SeekFrom::Start(0))?;
        let sent = io::copy(&mut file.take(left.min(size)), stream)?;
        if sent == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        left -= sent;
    }
    stream.shutdown(std::net::Shutdown::Write)
}

/// What one core copies in memory: 256 KiB blocks (the reader's size) out of a 64 MiB
/// buffer, so the source comes from memory as a socket's pages would; MiB/s over ~0.3 s.
fn memcpy_bandwidth() -> f64 {
    let source: Vec<u8> = (0..64 << 20).map(|i: usize| (i % 251) as u8).collect();
    let mut dst = vec![0u8; IO_BUFFER];
    let started = Instant::now();
    let mut copied = 0u64;
    while started.elapsed() < Duration::from_millis(300) {
        for block in source.chunks(IO_BUFFER) {
            dst[..block.len()].copy_from_slice(std::hint::black_box(block));
            std::hint::black_box(&mut dst);
            copied += block.len() as u64;
        }
    }
    report::mib_per_sec(copied, started.elapsed())
}

/// Logs in, RETRs every message (timed), and QUITs without deleting anything.
fn download(t: Transport, args: &BulkArgs, kind: Kind, name: &str, deadline: Instant) -> anyhow::Result<Download> {
    let mut pop3 = Pop3::new(t).context("greeting")?;
    let capabilities = pop3.capa().context("CAPA")?;
    let pipelining = capabilities.iter().any(|c| c.eq_ignore_ascii_case("PIPELINING"));
    let depth = if pipelining { args.pipeline.max(1) } else { 1 };
    let status = pop3.login(&args.user, &args.password).context("USER/PASS")?;
    if !status.ok {
        bail!("login as {} refused: -ERR {}", args.user, status.text);
    }
    // STAT, not LIST: the count and total are all the run needs, and a 10,000-line LIST is
    // itself a response large enough to hit server limits before RETR is measured.
    let status = pop3.cmd("STAT").context("STAT")?;
    if !status.ok {
        bail!("STAT: -ERR {}", status.text);
    }
    let (count, total) = parse_stat(&status.text)?;
    if count == 0 {
        bail!("the maildrop of {} is empty: run `loadtest seed` first", args.user);
    }

    let stopwatch = Stopwatch::start(args.server_pid, args.front_pid);
    let mut reader = BulkReader::new(&mut pop3.t);
    let mut scanner = MultilineScanner::new();
    let mut payload = 0u64;
    let mut sent = 0;
    for done in 1..=count {
        // Keep up to `depth` RETRs in flight; batch the ones that fit into one write.
        let mut batch = String::new();
        while sent < count && sent < done - 1 + depth {
            sent += 1;
            batch.push_str(&format!("RETR {sent}\r\n"));
        }
        if !batch.is_empty() {
            reader.t.send_raw(batch.as_bytes()).context("sending RETR")?;
        }
        let status = reader.status_line().context("reading a RETR status")?;
        if !status.starts_with(b"+OK") {
            bail!("RETR {done}: {}", String::from_utf8_lossy(&status));
        }
        scanner.reset();
        reader
            .body(&mut scanner, &mut |p| payload += p.len() as u64)
            .with_context(|| format!("reading message {done}"))?;
        check_deadline(deadline, "downloading")?;
    }
    let measured = stopwatch.stop(kind, name, payload, reader.wire_bytes);
    pop3.cmd("QUIT").context("QUIT")?;
    if payload != total {
        eprintln!("{name}: downloaded {payload} message bytes, STAT said {total}");
    }
    Ok(Download {
        measured,
        messages: count,
        pipeline_depth: Some(depth),
    })
}

/// The text of `+OK nn mm` (RFC 1939 §5 STAT): message count and total octets.
fn parse_stat(text: &str) -> anyhow::Result<(usize, u64)> {
    let mut parts = text.split_ascii_whitespace();
    match (parts.next().map(str::parse), parts.next().map(str::parse)) {
        (Some(Ok(count)), Some(Ok(total))) => Ok((count, total)),
        _ => bail!("bad STAT reply {text:?}"),
    }
}

/// Frames POP3 responses straight out of one large buffer over the transport.
struct BulkReader<'t> {
    t: &'t mut Transport,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    wire_bytes: u64,
}

impl<'t> BulkReader<'t> {
    fn new(t: &'t mut Transport) -> BulkReader<'t> {
        BulkReader {
            t,
            buf: vec![0; IO_BUFFER],
            start: 0,
            end: 0,
            wire_bytes: 0,
        }
    }

    /// Reads more; unread bytes move to the front only when the buffer's tail is full.
    fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "status line longer than the buffer",
            ));
        }
        let n = self.t.read_available(&mut self.buf[self.end..])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += n;
        self.wire_bytes += n as u64;
        Ok(())
    }

    /// One line, without its CRLF.
    fn status_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            let pending = &self.buf[self.start..self.end];
            if let Some(i) = memchr::memchr(b'\n', pending) {
                let line = pending[..i].strip_suffix(b"\r").unwrap_or(&pending[..i]).to_vec();
                self.start += i + 1;
                return Ok(line);
            }
            self.fill()?;
        }
    }

    /// Passes a multi-line body to `payload` until the terminator; what follows stays.
    fn body(&mut self, scanner: &mut MultilineScanner, payload: &mut impl FnMut(&[u8])) -> io::Result<()> {
        loop {
            if self.start < self.end {
                if let Some(used) = scanner.feed(&self.buf[self.start..self.end], payload) {
                    self.start += used;
                    return Ok(());
                }
                self.start = self.end;
            }
            self.fill()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_reply() {
        assert_eq!(parse_stat("2 320").expect("valid"), (2, 320));
        assert_eq!(
            parse_stat("10000 1024000000 extra").expect("valid"),
            (10_000, 1_024_000_000)
        );
        assert!(parse_stat("2").is_err());
    }

    #[test]
    fn cpu_per_gib_sums_the_passes() {
        let pass = |gib_quarters: u64, seconds: f64, server: Option<f64>| Measured {
            kind: Kind::Plaintext,
            row: ThroughputRow::new("x", gib_quarters << 28, 0, Duration::from_secs_f64(seconds)),
            client_cpu_percent: Some(100.0),
            server_cpu_percent: server,
            front_cpu_percent: None,
        };
        // A quarter GiB in 1 s at 100 % of a core, and three quarters in 1 s at 50 %: 1.5 s of
        // a core for the GiB, not the mean of the passes' 4 and 0.67 s per GiB.
        let (a, b) = (pass(1, 1.0, Some(100.0)), pass(3, 1.0, Some(50.0)));
        let server = cpu_seconds_per_gib(&[&a, &b], |m| m.server_cpu_percent).unwrap();
        assert!((server - 1.5).abs() < 1e-9, "{server}");
        let harness = cpu_seconds_per_gib(&[&a, &b], |m| m.client_cpu_percent).unwrap();
        assert!((harness - 2.0).abs() < 1e-9, "{harness}");
        // A pass without the figure, or none at all: no figure.
        let c = pass(1, 1.0, None);
        assert!(cpu_seconds_per_gib(&[&a, &c], |m| m.server_cpu_percent).is_none());
        assert!(cpu_seconds_per_gib(&[], |m| m.server_cpu_percent).is_none());
    }

    #[test]
    fn summary_has_the_bests_and_the_share_of_raw() {
        let protocol = Protocol {
            name: "POP3",
            scenario: "bulk",
            plaintext_label: "POP3 plaintext",
            tls_label: "POP3 TLS (pop3s)",
            tls_port_flag: "pop3s-port",
        };
        let mut report = BulkReport {
            protocol: "POP3",
            passes: 2,
            rows: Vec::new(),
            failed: Vec::new(),
            best_raw: None,
            best_raw_write: None,
            best_raw_sendfile: None,
            best_raw_relayed: None,
            memcpy: None,
            best_plaintext: None,
            best_tls: None,
            plaintext_vs_raw: None,
            tls_vs_raw: None,
            messages: 1,
            pipeline_depth: None,
        };
        let mib = |m: f64| Duration::from_secs_f64(1.0 / m);
        for (kind, mib_per_sec) in [(Kind::Raw, 2000.0), (Kind::Plaintext, 500.0), (Kind::Plaintext, 1000.0)] {
            report.rows.push(Measured {
                kind,
                row: ThroughputRow::new("x", 1 << 20, 1 << 20, mib(mib_per_sec)),
                client_cpu_percent: None,
                server_cpu_percent: None,
                front_cpu_percent: None,
            });
        }
        report.add("POP3 TLS (pop3s)", Err(anyhow::anyhow!("refused")));
        report.summarise();
        let summary = report.summary(&protocol);
        let names: Vec<&str> = summary.headlines.iter().map(|h| h.name.as_str()).collect();
        // No TLS figure: its only measurement failed.
        assert_eq!(
            names,
            ["POP3 plaintext", "raw loopback TCP (reference)", "POP3 plaintext / raw"]
        );
        assert!((summary.headlines[0].value - 1000.0).abs() < 1e-6);
        assert!((summary.headlines[2].value - 50.0).abs() < 1e-6);
        assert!(summary.headlines.iter().all(|h| h.better == Better::Higher));
        assert_eq!(summary.throughput.len(), 2);
        assert!(summary.latency.is_empty());
    }

    #[test]
    fn raw_reference_moves_every_byte() {
        let deadline = Instant::now() + Duration::from_secs(30);
        for kind in [Kind::Raw, Kind::RawSendfile, Kind::RawRelayed] {
            let measured =
                raw_loopback(3 * IO_BUFFER as u64 + 17, (kind, "raw"), None, deadline).expect("loopback works");
            assert_eq!(measured.row.bytes, 3 * IO_BUFFER as u64 + 17);
        }
    }
}
