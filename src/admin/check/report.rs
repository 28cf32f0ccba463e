//! The table `ringmail check` prints: one row per step, with where it ran, how it ended, how
//! long it took and which server answered. A step is timed from before its connect to after
//! its last answer; a skipped step was never tried because one it needs did not pass.

use std::fmt;
use std::time::Instant;

use super::CheckError;

/// Longest failure reason shown: a server's answer can be a long line.
const MAX_REASON: usize = 160;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Security {
    /// Plaintext upgraded with STARTTLS (IMAP, SMTP) or STLS (POP3).
    Upgraded,
    /// TLS from the first byte.
    Implicit,
}

/// Where a step runs: the protocol, the port and how TLS starts there.
#[derive(Debug, Clone, Copy)]
pub(super) struct Endpoint {
    pub protocol: &'static str,
    pub port: u16,
    pub security: Security,
}

impl Endpoint {
    pub fn implicit_tls(&self) -> bool {
        self.security == Security::Implicit
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match (self.security, self.protocol) {
            (Security::Implicit, _) => "TLS",
            (Security::Upgraded, "pop3") => "STLS",
            (Security::Upgraded, _) => "STARTTLS",
        };
        write!(f, "{} {} {mode}", self.protocol, self.port)
    }
}

/// What a step that passed hands on, and the server that answered it, if it said.
pub(super) struct Done<T> {
    pub value: T,
    pub served_by: Option<String>,
}

impl<T> Done<T> {
    pub fn new(value: T, served_by: Option<String>) -> Done<T> {
        Done { value, served_by }
    }
}

enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

struct Row {
    step: &'static str,
    endpoint: Endpoint,
    outcome: Outcome,
    millis: Option<u128>,
    served_by: Option<String>,
}

#[derive(Default)]
pub(super) struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Runs and times one step; its value if it passed.
    pub fn step<T>(
        &mut self,
        step: &'static str,
        endpoint: Endpoint,
        work: impl FnOnce() -> Result<Done<T>, CheckError>,
    ) -> Option<T> {
        let started = Instant::now();
        let result = work();
        let millis = Some(started.elapsed().as_millis());
        let (outcome, served_by, value) = match result {
            Ok(done) => (Outcome::Passed, done.served_by, Some(done.value)),
            Err(e) => (Outcome::Failed(e.to_string()), None, None),
        };
        self.rows.push(Row {
            step,
            endpoint,
            outcome,
            millis,
            served_by,
        });
        value
    }

    /// A step not tried because `why`.
    pub fn skip(&mut self, step: &'static str, endpoint: Endpoint, why: &str) {
        self.rows.push(Row {
            step,
            endpoint,
            outcome: Outcome::Skipped(why.to_owned()),
            millis: None,
            served_by: None,
        });
    }

    pub fn steps(&self) -> usize {
        self.rows.len()
    }

    pub fn not_passed(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| !matches!(r.outcome, Outcome::Passed))
            .count()
    }

    /// The table, a header line first, columns aligned.
    pub fn render(&self) -> String {
        let mut cells: Vec<[String; 5]> = vec![["STEP", "ENDPOINT", "RESULT", "MS", "SERVED BY"].map(String::from)];
        for row in &self.rows {
            let result = match &row.outcome {
                Outcome::Passed => "ok".to_owned(),
                Outcome::Failed(why) => format!("FAILED: {}", one_line(why)),
                Outcome::Skipped(why) => format!("skipped: {why}"),
            };
            cells.push([
                row.step.to_owned(),
                row.endpoint.to_string(),
                result,
                row.millis.map_or("-".into(), |ms| ms.to_string()),
                row.served_by.as_deref().map_or("-".into(), one_line),
            ]);
        }
        let width = |i: usize| cells.iter().map(|c| c[i].chars().count()).max().unwrap_or(0);
        let widths = [width(0), width(1), width(2), width(3)];
        let mut out = String::new();
        for [step, endpoint, result, ms, served_by] in &cells {
            let line = format!(
                "{step:<w0$}  {endpoint:<w1$}  {result:<w2$}  {ms:>w3$}  {served_by}",
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Server text made safe for one table cell: control characters out, length bounded.
fn one_line(text: &str) -> String {
    let mut clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON)
        .collect();
    if text.chars().count() > MAX_REASON {
        clean.push('…');
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAPS: Endpoint = Endpoint {
        protocol: "imap",
        port: 993,
        security: Security::Implicit,
    };

    #[test]
    fn rows_are_aligned_and_say_how_each_step_ended() {
        let mut report = Report::default();
        let pop3 = Endpoint {
            protocol: "pop3",
            port: 110,
            security: Security::Upgraded,
        };
        assert_eq!(
            report.step("login", pop3, || Ok(Done::new(7, Some("b1".into())))),
            Some(7)
        );
        let failed: Option<()> = report.step("find", IMAPS, || Err(CheckError::NotFound(10)));
        assert_eq!(failed, None);
        report.skip("delete", IMAPS, "nothing found");
        let text = report.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("STEP    ENDPOINT       RESULT"), "{text}");
        assert!(lines[1].starts_with("login   pop3 110 STLS  ok "), "{text}");
        assert!(lines[1].ends_with(" b1"), "{text}");
        assert!(
            lines[2].starts_with("find    imap 993 TLS   FAILED: not there after 10 s"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("delete  imap 993 TLS   skipped: nothing found"),
            "{text}"
        );
        assert!(lines[3].ends_with(" -  -"), "{text}");
        assert_eq!(report.not_passed(), 2);
        assert_eq!(report.steps(), 3);
    }

    #[test]
    fn server_text_stays_on_one_line() {
        assert_eq!(one_line("a\r\nb"), "a  b");
        assert_eq!(one_line(&"x".repeat(500)).chars().count(), MAX_REASON + 1);
    }
}
