//! Base subject extraction (RFC 5256 §2.1), which SORT SUBJECT and both THREAD algorithms
//! compare, and the "reply or forward" fact THREAD=REFERENCES needs (RFC 5256 §3 step 5).
//!
//! Works on the subject with its RFC 2047 encoded-words already decoded (the MIME layer did
//! that at delivery: step 1's first half). Every marker it removes is ASCII, so cutting the
//! string at them never splits a character. Linear in the subject's length: no prefix is
//! scanned twice, however the markers are stacked.

/// The base subject of a message and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseSubject {
    /// RFC 5256 §2.1 step 7: what SORT and THREAD compare (under i;unicode-casemap).
    pub text: String,
    /// A "Re:", "Fw:", "Fwd:" leader, a "(fwd)" trailer or a "[fwd: ...]" wrapper was removed:
    /// the message is a reply or forward in the sense of RFC 5256 §3 step 5.
    pub is_reply_or_forward: bool,
}

/// RFC 5256 §2.1 steps 1–7 applied to a decoded subject.
pub fn base_subject(subject: &str) -> BaseSubject {
    // Step 1: tabs and line breaks (continuations) become spaces, runs of spaces one space.
    let mut text = String::with_capacity(subject.len());
    for c in subject.chars() {
        let c = if matches!(c, '\t' | '\r' | '\n') { ' ' } else { c };
        if !(c == ' ' && text.ends_with(' ')) {
            text.push(c);
        }
    }
    let mut reply = false;
    let mut s = text.as_str();
    loop {
        // Step 2: subj-trailer = "(fwd)" / WSP, removed from the end as long as one is there.
        loop {
            if let Some(rest) = s.strip_suffix(' ') {
                s = rest;
            } else if let Some(rest) = strip_suffix_ignore_case(s, "(fwd)") {
                s = rest;
                reply = true;
            } else {
                break;
            }
        }
        // Steps 3–5: leaders, then one blob, until neither is there. A blob run that failed to
        // lead to "re:" ends at `blob_run_end`; removing one of its blobs at a time (step 4)
        // cannot make it succeed, so it is not scanned again.
        let mut blob_run_end = 0;
        loop {
            let before = s.len();
            // Step 3: subj-leader = (*subj-blob subj-refwd) / WSP, as many as there are.
            loop {
                if let Some(rest) = s.strip_prefix(' ') {
                    s = rest;
                    continue;
                }
                let offset = text_offset(&text, s);
                if offset < blob_run_end {
                    break;
                }
                match refwd_leader(s) {
                    Ok(len) => {
                        s = &s[len..];
                        reply = true;
                    }
                    Err(blobs_end) => {
                        blob_run_end = offset + blobs_end;
                        break;
                    }
                }
            }
            // Step 4: one leading subj-blob, unless it is all that is left (then it is the
            // subj-base).
            if let Some(len) = blob(s) {
                if s[len..].bytes().any(|b| b != b' ') {
                    s = &s[len..];
                }
            }
            if s.len() == before {
                break;
            }
        }
        // Step 6: subj-fwd-hdr "[fwd:" ... subj-fwd-trl "]": unwrap and start again at step 2.
        match s.strip_suffix(']') {
            Some(inner) if starts_with_ignore_case(inner, "[fwd:") => {
                s = &inner["[fwd:".len()..];
                reply = true;
            }
            _ => break,
        }
    }
    // Step 7.
    BaseSubject {
        text: s.to_owned(),
        is_reply_or_forward: reply,
    }
}

/// Where `part`, a slice of `whole`, starts in it.
fn text_offset(whole: &str, part: &str) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

/// `*subj-blob subj-refwd` at the start of `s`: its length, or, when there is none, where the
/// leading blobs end.
fn refwd_leader(s: &str) -> Result<usize, usize> {
    let mut pos = 0;
    while let Some(len) = blob(&s[pos..]) {
        pos += len;
    }
    refwd(&s[pos..]).map(|len| pos + len).ok_or(pos)
}

/// subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" — its length at the start of `s`.
fn refwd(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut pos = if starts_with_ignore_case(s, "re") {
        2
    } else if starts_with_ignore_case(s, "fwd") {
        3
    } else if starts_with_ignore_case(s, "fw") {
        2
    } else {
        return None;
    };
    while b.get(pos) == Some(&b' ') {
        pos += 1;
    }
    if let Some(len) = blob(&s[pos..]) {
        pos += len;
    }
    (b.get(pos) == Some(&b':')).then_some(pos + 1)
}

/// subj-blob = "[" *BLOBCHAR "]" *WSP, BLOBCHAR being anything but "[" and "]" — its length at
/// the start of `s`.
fn blob(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.first() != Some(&b'[') {
        return None;
    }
    let close = 1 + b[1..].iter().position(|&c| c == b'[' || c == b']')?;
    if b[close] != b']' {
        return None;
    }
    let mut pos = close + 1;
    while b.get(pos) == Some(&b' ') {
        pos += 1;
    }
    Some(pos)
}

/// ABNF literals are case-insensitive (RFC 5234 §2.3); these are ASCII, so a byte comparison is
/// exact and the cut falls on a character boundary.
fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

fn strip_suffix_ignore_case<'s>(s: &'s str, suffix: &str) -> Option<&'s str> {
    let cut = s.len().checked_sub(suffix.len())?;
    s.as_bytes()[cut..]
        .eq_ignore_ascii_case(suffix.as_bytes())
        .then(|| &s[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects() {
        // Rows: subject, base subject, reply or forward.
        let cases: &[(&str, &str, bool)] = &[
            ("", "", false),
            ("Hello", "Hello", false),
            ("  Hello\t\r\n  world  ", "Hello world", false),
            // subj-refwd, in any case, stacked, with and without spaces.
            ("Re: Hello", "Hello", true),
            ("RE: re: Re: Hello", "Hello", true),
            ("Re:Hello", "Hello", true),
            ("Re : Hello", "Hello", true),
            ("Fw: Hello", "Hello", true),
            ("FWD: Hello", "Hello", true),
            ("Fwd:Re:fw: Hello", "Hello", true),
            ("Re[2]: Hello", "Hello", true),
            ("Re [list] : Hello", "Hello", true),
            ("Re:", "", true),
            // Not leaders.
            ("Reply: Hello", "Reply: Hello", false),
            ("Re Hello", "Re Hello", false),
            ("Fwd Hello", "Fwd Hello", false),
            ("Réponse: Hello", "Réponse: Hello", false),
            ("AW: Hello", "AW: Hello", false),
            // subj-trailer.
            ("Hello (fwd)", "Hello", true),
            ("Hello (FWD) (fwd)  ", "Hello", true),
            ("(fwd)", "", true),
            ("Hello(fwd)", "Hello", true),
            ("Hello (fwd) x", "Hello (fwd) x", false),
            // subj-blob: removed before a leader (step 3) or alone (step 4), kept when it is the
            // whole base subject.
            ("[list] Hello", "Hello", false),
            ("[list] Re: Hello", "Hello", true),
            ("Re: [list] Hello", "Hello", true),
            ("[a] [b] Re: [c] Re: Hello", "Hello", true),
            ("[PATCH v2] Re: [PATCH 1/3] fix the parser", "fix the parser", true),
            ("[]Hello", "Hello", false),
            ("[list]", "[list]", false),
            ("[a][b]", "[b]", false),
            ("Re: [list]", "[list]", true),
            ("[a [b] Hello", "[a [b] Hello", false),
            ("Hello [list]", "Hello [list]", false),
            // subj-fwd, nested, and mixed with everything else.
            ("[Fwd: Hello]", "Hello", true),
            ("[fwd: [Fwd: Hello]]", "Hello", true),
            ("[Fwd: Re: [list] Hello (fwd)]", "Hello", true),
            ("Re: [Fwd: Hello]", "Hello", true),
            ("[fwd:]", "", true),
            ("[Fwd: Hello", "[Fwd: Hello", false),
            // The blob goes first (step 4), so there is no wrapper left for step 6.
            ("[Fwd: a] b]", "b]", false),
            // Decoded (non-ASCII) text is kept as it is; only the markers are ASCII.
            ("Re: Grüße [fwd]", "Grüße [fwd]", true),
            ("RE: 日本語 (fwd)", "日本語", true),
        ];
        for &(subject, text, reply) in cases {
            let want = BaseSubject {
                text: text.to_owned(),
                is_reply_or_forward: reply,
            };
            assert_eq!(base_subject(subject), want, "{subject:?}");
        }
    }

    /// Hostile stacks of markers stay linear: each would take minutes if prefixes were rescanned.
    #[test]
    fn long_subjects_are_linear() {
        let n = 200_000;
        let blobs = format!("{}Hello", "[x] ".repeat(n));
        assert_eq!(base_subject(&blobs).text, "Hello");
        let leaders = format!("{}Hello", "Re: ".repeat(n));
        assert_eq!(base_subject(&leaders).text, "Hello");
        let trailers = format!("Hello{}", " (fwd)".repeat(n));
        assert_eq!(base_subject(&trailers).text, "Hello");
        let wrapped = format!("{}Hello{}", "[Fwd: ".repeat(n), "]".repeat(n));
        assert_eq!(base_subject(&wrapped).text, "Hello");
        let unclosed = "[".repeat(n);
        assert_eq!(base_subject(&unclosed).text, unclosed);
    }
}
