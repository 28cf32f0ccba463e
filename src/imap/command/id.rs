//! ID (RFC 2971): the server's name and version; the client's are only logged.

use crate::imap::command::{Spec, States};
use crate::imap::fault::ok;
use crate::imap::parse::lexer::{Cursor, Result, Syntax};
use crate::imap::session::Conn;
use crate::imap::types::Command;

/// The command table's rows (`command::COMMANDS`).
pub(crate) const ID: Spec = Spec {
    name: "ID",
    extension: Some("ID"),
    states: States::Any,
    numbers: false,
    expunges: false,
    rfc: "RFC 2971",
    parse: parse_id,
};

impl Conn {
    /// RFC 2971: the server's identity; the client's is only logged. Which machine it is only
    /// once logged in, so a stranger does not learn the host names.
    pub(crate) fn id(&self, tag: &str, logged_in: bool, out: &mut Vec<u8>) {
        let mut id = b"* ID (\"name\" \"ringmail\" \"version\" \"0.1\"".to_vec();
        if logged_in && !self.settings.server_name.is_empty() {
            id.extend_from_slice(b" \"x-host\" ");
            crate::imap::format::string(&mut id, self.settings.server_name.as_bytes(), false);
        }
        id.extend_from_slice(b")\r\n");
        out.extend_from_slice(&id);
        ok(out, tag, "ID completed");
    }
}

/// RFC 2971 §4: "ID" SP id-params-list; id-params-list = "(" *(string SP nstring) ")" / nil.
fn parse_id(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let params = if c.peek() == Some(b'(') {
        Some(c.list0(|c| {
            let field = c.string()?;
            c.sp()?;
            let value = c.nstring()?;
            Ok((field, value))
        })?)
    } else if c.word().eq_ignore_ascii_case(b"NIL") {
        None
    } else {
        return Err(Syntax("expected a parameter list or NIL"));
    };
    c.end()?;
    Ok(Command::Id(params))
}
