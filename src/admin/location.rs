//! Where `ringmail export` writes mail and `ringmail import` reads it, as `--to` and `--from`
//! name it: `maildir:PATH`, `mbox:PATH`, `imaps://[LOGIN@]HOST[:PORT]` (import only), or
//! `stream:PATH` (a mailbox stream, docs/stream.md; `-` is standard output or input).

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub enum Location {
    Maildir(PathBuf),
    /// A directory of mbox files as Dovecot keeps them (`inbox` and one file per folder), or
    /// one mbox file (import only: INBOX).
    Mbox(PathBuf),
    Stream(PathBuf),
    /// An IMAP server (import only).
    Imap(super::imap_import::ImapUrl),
}

impl std::str::FromStr for Location {
    type Err = String;

    fn from_str(s: &str) -> Result<Location, String> {
        if s.starts_with("imap://") || s.starts_with("imaps://") {
            return super::imap_import::ImapUrl::parse(s).map(Location::Imap);
        }
        match s.split_once(':') {
            Some(("maildir", path)) if !path.is_empty() => Ok(Location::Maildir(PathBuf::from(path))),
            Some(("mbox", path)) if !path.is_empty() => Ok(Location::Mbox(PathBuf::from(path))),
            Some(("stream", path)) if !path.is_empty() => Ok(Location::Stream(PathBuf::from(path))),
            _ => Err(format!(
                "{s:?}: the form is maildir:PATH, mbox:PATH, stream:PATH or imaps://[LOGIN@]HOST[:PORT]"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn locations_parse() {
        assert!(matches!("maildir:/tmp/x".parse::<Location>(), Ok(Location::Maildir(p)) if p == Path::new("/tmp/x")));
        assert!(matches!("mbox:/tmp/x".parse::<Location>(), Ok(Location::Mbox(p)) if p == Path::new("/tmp/x")));
        assert!("mbox:".parse::<Location>().is_err());
        assert!("mh:/tmp/x".parse::<Location>().is_err());
        assert!("maildir:".parse::<Location>().is_err());
        assert!(matches!("stream:-".parse::<Location>(), Ok(Location::Stream(p)) if p == Path::new("-")));
    }
}
