//! SASL exchanges for the AUTH/AUTHENTICATE commands of POP3, IMAP and SMTP:
//! PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login), SCRAM-SHA-256
//! (RFC 7677), OAUTHBEARER (RFC 7628) and Google's XOAUTH2, plus the base64 line
//! codec they share (RFC 4954, RFC 5034, RFC 3501).
//!
//! It never verifies passwords, looks up accounts, reads the network or logs:
//! each step tells the caller what to do next through [`SaslStep`].

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use super::scram::{random_server_nonce, ScramCredentials, ScramError, ScramServer};

/// Longest authzid, authcid or password accepted, in bytes.
pub const MAX_FIELD_LEN: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
    ScramSha256,
    /// RFC 7628: an OAuth 2.0 bearer token.
    OAuthBearer,
    /// Google's older form of the same (developers.google.com/gmail/imap/xoauth2-protocol).
    XOAuth2,
}

impl Mechanism {
    pub const ALL: [Mechanism; 5] = [
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::ScramSha256,
        Mechanism::OAuthBearer,
        Mechanism::XOAuth2,
    ];

    /// The mechanisms a server offers: the token ones only where tokens are checked
    /// (`[oauth]`).
    pub fn offered(oauth: bool) -> impl Iterator<Item = Mechanism> {
        Self::ALL.into_iter().filter(move |m| oauth || !m.takes_token())
    }

    /// The offered mechanism called `name`; names are case-insensitive (RFC 4422 §3.1).
    pub fn parse(name: &[u8], oauth: bool) -> Option<Mechanism> {
        Self::offered(oauth).find(|m| m.name().as_bytes().eq_ignore_ascii_case(name))
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::XOAuth2 => "XOAUTH2",
        }
    }

    /// Whether a secret the wire must hide crosses it: the cleartext password, or a bearer
    /// token (RFC 7628 §5), so policy may demand TLS.
    pub fn sends_password(self) -> bool {
        !matches!(self, Mechanism::ScramSha256)
    }

    pub fn takes_token(self) -> bool {
        matches!(self, Mechanism::OAuthBearer | Mechanism::XOAuth2)
    }
}

/// The error challenge after a token was refused (RFC 7628 §3.2.2), which the client answers
/// (with %x01, or an empty line for XOAUTH2) before it is told the exchange failed.
pub const TOKEN_REFUSED: &[u8] = br#"{"status":"invalid_token","schemes":"bearer"}"#;

/// One client response line as sent on the wire (base64 text, without CRLF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// "*": the client aborts the exchange.
    Cancel,
    /// Decoded bytes; an empty line or "=" is empty data.
    Data(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The client's data violates the mechanism or the exchange's order.
    #[error("malformed SASL response: {0}")]
    Malformed(&'static str),
    #[error("authentication cancelled by client")]
    Cancelled,
    #[error("authentication failed")]
    AuthFailed,
    /// The client answered the error challenge of a refused token: the login failed, and
    /// was already counted as failed when the token was refused.
    #[error("the token was refused")]
    TokenRefused,
    /// The caller drove the exchange out of order (e.g. fed a response while
    /// credentials were pending). The exchange is over.
    #[error("SASL exchange driven out of order")]
    OutOfOrder,
    /// A server-side problem, e.g. unusable stored SCRAM credentials.
    #[error("internal SASL error: {0}")]
    Internal(&'static str),
}

impl From<ScramError> for SaslError {
    fn from(e: ScramError) -> Self {
        match e {
            ScramError::Malformed(why) => SaslError::Malformed(why),
            ScramError::AuthFailed => SaslError::AuthFailed,
            ScramError::OutOfOrder => SaslError::OutOfOrder,
            ScramError::InvalidPassword(why) | ScramError::InvalidParameter(why) => SaslError::Internal(why),
        }
    }
}

/// Starts an exchange from an AUTH command's mechanism and its optional initial response
/// (base64; "=" is empty). `Err` when the initial response cannot be decoded or cancels: the
/// protocol answers that with its syntax error.
pub fn begin(mechanism: Mechanism, initial: Option<&str>) -> Result<(SaslExchange, SaslStep), SaslError> {
    let initial = match initial.map(|i| decode_response(i.as_bytes())).transpose()? {
        None => None,
        Some(Response::Data(d)) => Some(d),
        Some(Response::Cancel) => return Err(SaslError::Cancelled),
    };
    Ok(SaslExchange::start(mechanism, initial))
}

/// The next step after a client's response line (undecodable base64 fails the exchange).
pub fn respond_line(exchange: &mut SaslExchange, line: &[u8]) -> SaslStep {
    match decode_response(line) {
        Ok(response) => exchange.respond(response),
        // Whatever answers a refused token's error challenge, it is that failure (counted as
        // one, where cancelling would not be).
        Err(_) if matches!(exchange.state, State::TokenRefused) => {
            exchange.fail();
            SaslStep::Failed(SaslError::TokenRefused)
        }
        Err(e) => {
            exchange.fail();
            SaslStep::Failed(e)
        }
    }
}

/// Decodes one response line. "*" cancels (RFC 4954 §4, RFC 3501 §6.2.2);
/// "=" or an empty line is empty data (RFC 4954 §4 for initial responses).
pub fn decode_response(line: &[u8]) -> Result<Response, SaslError> {
    match line {
        b"*" => Ok(Response::Cancel),
        b"" | b"=" => Ok(Response::Data(Vec::new())),
        _ => B64
            .decode(line)
            .map(Response::Data)
            .map_err(|_| SaslError::Malformed("invalid base64")),
    }
}

/// Base64 (standard alphabet, padded) of a challenge; the caller adds "+ " /
/// "334 " and CRLF.
pub fn encode_challenge(data: &[u8]) -> String {
    B64.encode(data)
}

/// What the caller must do next.
#[derive(Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Send this challenge (raw bytes; caller base64-encodes, puts "+ " in
    /// front) and feed the next [`Response`] to [`SaslExchange::respond`].
    Challenge(Vec<u8>),
    /// Look up SCRAM credentials for this authcid and call
    /// [`SaslExchange::credentials`] (None when unknown).
    NeedCredentials { authcid: String },
    /// Verify this password (off the event loop), then authenticate as authcid
    /// if authzid is None or allowed. The exchange is complete.
    VerifyPassword {
        authzid: Option<String>,
        authcid: String,
        password: String,
    },
    /// SCRAM proof verified and server-final acknowledged. Complete.
    Authenticated { authzid: Option<String>, authcid: String },
    /// Check this bearer token (off the event loop); `authzid` is the user the client says
    /// it is for, which the token's user must be. If it is refused, call
    /// [`SaslExchange::token_refused`]; else the exchange is complete.
    VerifyToken { authzid: Option<String>, token: String },
    /// The exchange is over; report failure to the client.
    Failed(SaslError),
}

// Hand-written so that logging a step can never leak a password.
impl std::fmt::Debug for SaslStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaslStep::Challenge(c) => write!(f, "Challenge({:?})", String::from_utf8_lossy(c)),
            SaslStep::NeedCredentials { authcid } => write!(f, "NeedCredentials({authcid:?})"),
            SaslStep::VerifyPassword { authzid, authcid, .. } => {
                write!(f, "VerifyPassword({authzid:?}, {authcid:?}, <redacted>)")
            }
            SaslStep::Authenticated { authzid, authcid } => {
                write!(f, "Authenticated({authzid:?}, {authcid:?})")
            }
            SaslStep::VerifyToken { authzid, .. } => write!(f, "VerifyToken({authzid:?}, <redacted>)"),
            SaslStep::Failed(e) => write!(f, "Failed({e:?})"),
        }
    }
}

enum State {
    PlainMessage,
    LoginUsername,
    LoginPassword {
        authcid: String,
    },
    ScramClientFirst,
    ScramCredentials(ScramServer),
    ScramClientFinal(ScramServer),
    ScramAck {
        authzid: Option<String>,
        authcid: String,
    },
    /// The client's token message (RFC 7628 §3.1, or XOAUTH2's).
    TokenMessage,
    /// A token was checked.
    TokenVerifying,
    /// The error challenge went out; the client's answer ends the exchange as failed.
    TokenRefused,
    Done,
}

/// One AUTH exchange. Steps are valid only in order; once a step other than
/// `Challenge`/`NeedCredentials` is returned the exchange is over, and any
/// further response yields `Failed(Malformed)`.
pub struct SaslExchange {
    mech: Mechanism,
    state: State,
}

// Manual so sessions holding an exchange can derive Debug without exposing
// the half-finished state (usernames, SCRAM keys).
impl std::fmt::Debug for SaslExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslExchange")
            .field("mech", &self.mech)
            .finish_non_exhaustive()
    }
}

impl SaslExchange {
    /// `initial` is the already-decoded initial response (SASL-IR, RFC 4954
    /// "AUTH PLAIN xxx", RFC 5034); `Some(vec![])` means "=", an empty one.
    pub fn start(mech: Mechanism, initial: Option<Vec<u8>>) -> (SaslExchange, SaslStep) {
        let state = match mech {
            Mechanism::Plain => State::PlainMessage,
            Mechanism::Login => State::LoginUsername,
            Mechanism::ScramSha256 => State::ScramClientFirst,
            Mechanism::OAuthBearer | Mechanism::XOAuth2 => State::TokenMessage,
        };
        let mut exchange = SaslExchange { mech, state };
        let step = match (initial, mech) {
            (Some(data), _) => exchange.feed(data),
            (None, Mechanism::Login) => SaslStep::Challenge(b"Username:".to_vec()),
            // RFC 4616 §2 / RFC 5802 §5: the client speaks first, so the
            // server's first challenge is empty.
            (None, _) => SaslStep::Challenge(Vec::new()),
        };
        (exchange, step)
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mech
    }

    /// Ends the exchange: any later response fails.
    pub fn fail(&mut self) {
        self.state = State::Done;
    }

    /// The token `VerifyToken` named was refused: the error challenge to send, after which
    /// the client's answer fails the exchange (RFC 7628 §3.2.3).
    pub fn token_refused(&mut self) -> SaslStep {
        match self.state {
            State::TokenVerifying => {
                self.state = State::TokenRefused;
                SaslStep::Challenge(TOKEN_REFUSED.to_vec())
            }
            _ => {
                self.state = State::Done;
                SaslStep::Failed(SaslError::OutOfOrder)
            }
        }
    }

    /// Feeds the client's answer to the last `Challenge`.
    pub fn respond(&mut self, response: Response) -> SaslStep {
        match (response, &self.state) {
            (_, State::Done) => SaslStep::Failed(AFTER_DONE),
            (_, State::TokenRefused) => {
                self.state = State::Done;
                SaslStep::Failed(SaslError::TokenRefused)
            }
            (Response::Cancel, _) => {
                self.state = State::Done;
                SaslStep::Failed(SaslError::Cancelled)
            }
            (Response::Data(data), _) => self.feed(data),
        }
    }

    /// Supplies the SCRAM credentials asked for by `NeedCredentials`; `None`
    /// for an unknown user, which still yields a plausible challenge and fails
    /// only at the proof (RFC 5802 §9 on not disclosing account existence).
    pub fn credentials(&mut self, creds: Option<&ScramCredentials>) -> SaslStep {
        let State::ScramCredentials(mut server) = std::mem::replace(&mut self.state, State::Done) else {
            return SaslStep::Failed(SaslError::OutOfOrder);
        };
        match server.server_first(creds, &random_server_nonce()) {
            Ok(server_first) => {
                self.state = State::ScramClientFinal(server);
                SaslStep::Challenge(server_first)
            }
            Err(e) => SaslStep::Failed(e.into()),
        }
    }

    fn feed(&mut self, data: Vec<u8>) -> SaslStep {
        self.advance(data).unwrap_or_else(SaslStep::Failed)
    }

    // The state is Done unless an arm sets the next one, so a failed or
    // finished exchange can never be resumed.
    fn advance(&mut self, data: Vec<u8>) -> Result<SaslStep, SaslError> {
        Ok(match std::mem::replace(&mut self.state, State::Done) {
            State::PlainMessage => {
                let (authzid, authcid, password) = parse_plain(&data)?;
                SaslStep::VerifyPassword {
                    authzid,
                    authcid,
                    password,
                }
            }
            State::LoginUsername => {
                self.state = State::LoginPassword { authcid: field(&data)? };
                SaslStep::Challenge(b"Password:".to_vec())
            }
            State::LoginPassword { authcid } => {
                let password = field(&data)?;
                SaslStep::VerifyPassword {
                    authzid: None,
                    authcid,
                    password,
                }
            }
            State::ScramClientFirst => {
                let (server, authcid) = ScramServer::start(&data)?;
                self.state = State::ScramCredentials(server);
                SaslStep::NeedCredentials { authcid }
            }
            State::ScramCredentials(_) => return Err(SaslError::OutOfOrder),
            State::ScramClientFinal(mut server) => {
                let server_final = server.client_final(&data)?;
                let authzid = server.authzid().map(str::to_owned);
                let authcid = server.authcid().to_owned();
                self.state = State::ScramAck { authzid, authcid };
                SaslStep::Challenge(server_final)
            }
            // RFC 5802 §5: server-final went out as a challenge; the client
            // acknowledges it with an empty response before we report success.
            State::ScramAck { authzid, authcid } if data.is_empty() => SaslStep::Authenticated { authzid, authcid },
            State::ScramAck { .. } => return Err(SaslError::Malformed("expected empty response")),
            State::TokenMessage => {
                let (authzid, token) = match self.mech {
                    Mechanism::XOAuth2 => parse_xoauth2(&data)?,
                    _ => parse_oauthbearer(&data)?,
                };
                self.state = State::TokenVerifying;
                SaslStep::VerifyToken { authzid, token }
            }
            State::TokenVerifying => return Err(SaslError::OutOfOrder),
            // Whatever the client says to the error challenge, the exchange has failed.
            State::TokenRefused => return Err(SaslError::TokenRefused),
            State::Done => return Err(AFTER_DONE),
        })
    }
}

const AFTER_DONE: SaslError = SaslError::Malformed("response after exchange completed");

// RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd.
fn parse_plain(msg: &[u8]) -> Result<(Option<String>, String, String), SaslError> {
    let mut parts = msg.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed("PLAIN needs two NULs"));
    };
    let authzid = (!authzid.is_empty()).then(|| field(authzid)).transpose()?;
    Ok((authzid, field(authcid)?, field(password)?))
}

/// Longest bearer token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// RFC 7628 §3.1: `gs2-header %x01 *(key "=" value %x01) %x01`, with the token in
/// `auth=Bearer <token>`; the gs2 header's `a=` names the user. Channel binding is not
/// offered, so a `p=` flag is refused.
fn parse_oauthbearer(msg: &[u8]) -> Result<(Option<String>, String), SaslError> {
    let text = std::str::from_utf8(msg).map_err(|_| SaslError::Malformed("OAUTHBEARER is not UTF-8"))?;
    let (gs2, rest) = text
        .split_once('\x01')
        .ok_or(SaslError::Malformed("OAUTHBEARER needs a gs2 header"))?;
    let mut header = gs2.splitn(3, ',');
    let (Some(flag), Some(authzid), Some("")) = (header.next(), header.next(), header.next()) else {
        return Err(SaslError::Malformed("OAUTHBEARER gs2 header"));
    };
    if flag != "n" && flag != "y" {
        return Err(SaslError::Malformed("OAUTHBEARER offers no channel binding"));
    }
    let authzid = match authzid {
        "" => None,
        a => Some(saslname(
            a.strip_prefix("a=").ok_or(SaslError::Malformed("gs2 authzid"))?,
        )?),
    };
    let token = bearer(pairs(rest)?)?;
    Ok((authzid, token))
}

/// XOAUTH2: `user=NAME %x01 auth=Bearer TOKEN %x01 %x01`.
fn parse_xoauth2(msg: &[u8]) -> Result<(Option<String>, String), SaslError> {
    let text = std::str::from_utf8(msg).map_err(|_| SaslError::Malformed("XOAUTH2 is not UTF-8"))?;
    let pairs = pairs(text)?;
    let user = pairs
        .iter()
        .find(|(k, _)| *k == "user")
        .map(|(_, v)| field(v.as_bytes()))
        .transpose()?;
    Ok((user, bearer(pairs)?))
}

/// `key=value` pairs each ended by %x01, then a final %x01.
fn pairs(text: &str) -> Result<Vec<(&str, &str)>, SaslError> {
    let body = text
        .strip_suffix("\x01\x01")
        .ok_or(SaslError::Malformed("token message must end with two ^A"))?;
    body.split('\x01')
        .map(|kv| {
            kv.split_once('=')
                .ok_or(SaslError::Malformed("token message key=value"))
        })
        .collect()
}

/// The token of `auth=Bearer TOKEN` (the scheme is case-insensitive, RFC 6750 §2.1).
fn bearer(pairs: Vec<(&str, &str)>) -> Result<String, SaslError> {
    let auth = pairs
        .iter()
        .find(|(k, _)| *k == "auth")
        .map(|(_, v)| *v)
        .ok_or(SaslError::Malformed("no auth= in the token message"))?;
    let (scheme, token) = auth
        .split_once(' ')
        .ok_or(SaslError::Malformed("auth= needs a scheme"))?;
    let token = token.trim();
    let token_ok = token.bytes().all(|b| b.is_ascii_graphic());
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > MAX_TOKEN_LEN || !token_ok {
        return Err(SaslError::Malformed("auth= must be a Bearer token"));
    }
    Ok(token.to_owned())
}

/// RFC 5801 §4 saslname: `=2C` is ',' and `=3D` is '='; any other '=' is an error.
fn saslname(text: &str) -> Result<String, SaslError> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(SaslError::Malformed("saslname escape")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    field(out.as_bytes())
}

// RFC 4616 §2: authcid and passwd are 1*SAFE (UTF-8, no NUL, non-empty) and
// every field is at most 255 octets. LOGIN has no grammar of its own, so it
// borrows the same rules for its username and password.
fn field(bytes: &[u8]) -> Result<String, SaslError> {
    if bytes.is_empty() || bytes.len() > MAX_FIELD_LEN || bytes.contains(&0) {
        return Err(SaslError::Malformed("field empty, too long or has NUL"));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| SaslError::Malformed("field is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::scram::tests::client_final;
    use crate::auth::scram::ScramKeys;
    use Mechanism::{Login, Plain, ScramSha256};
    use SaslError::{AuthFailed, Cancelled, OutOfOrder};
    use SaslStep::*;

    fn verify(authzid: Option<&str>, authcid: &str, password: &str) -> SaslStep {
        let (authzid, authcid) = (authzid.map(Into::into), authcid.into());
        VerifyPassword {
            authzid,
            authcid,
            password: password.into(),
        }
    }
    fn need(authcid: &str) -> SaslStep {
        NeedCredentials {
            authcid: authcid.into(),
        }
    }
    fn malformed(step: &SaslStep) -> bool {
        matches!(step, Failed(SaslError::Malformed(_)))
    }
    fn data(bytes: &[u8]) -> Response {
        Response::Data(bytes.to_vec())
    }

    #[test]
    fn mechanism_names() {
        let cases: &[(&[u8], Option<Mechanism>)] = &[
            (b"PLAIN", Some(Plain)),
            (b"plain", Some(Plain)),
            (b"LoGiN", Some(Login)),
            (b"scram-sha-256", Some(ScramSha256)),
            (b"SCRAM-SHA-1", None),
            (b"SCRAM-SHA-256-PLUS", None),
            (b"PLAINX", None),
            (b"", None),
            (b"\xffPLAIN", None),
        ];
        for (name, want) in cases {
            assert_eq!(Mechanism::parse(name, true), *want, "{name:?}");
        }
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::parse(m.name().as_bytes(), true), Some(m));
            assert_eq!(m.sends_password(), m != ScramSha256);
        }
    }

    #[test]
    fn response_codec() {
        let bad = Err(SaslError::Malformed("invalid base64"));
        let cases: &[(&[u8], Result<Response, SaslError>)] = &[
            (b"*", Ok(Response::Cancel)),
            (b"", Ok(data(b""))),
            (b"=", Ok(data(b""))),
            (b"AHRpbQB0YW5zdGFhZg==", Ok(data(b"\0tim\0tanstaaf"))),
            (b"VXNlcm5hbWU6", Ok(data(b"Username:"))),
            (b"VXNlcm5hbWU", bad.clone()),
            (b"!!!!", bad.clone()),
            (b"**", bad.clone()),
            (b"VXNl cm5h", bad),
        ];
        for (line, want) in cases {
            assert_eq!(&decode_response(line), want, "{line:?}");
        }
        assert_eq!(encode_challenge(b"Password:"), "UGFzc3dvcmQ6");
        assert_eq!(encode_challenge(b""), "");
    }

    /// Found by the sasl fuzz target: bad base64 failed the step but left the exchange open.
    #[test]
    fn bad_base64_ends_the_exchange() {
        let (mut exchange, _) = begin(Login, None).unwrap();
        assert!(malformed(&respond_line(&mut exchange, b"!!!!")));
        let after = respond_line(&mut exchange, b"dGlt");
        assert!(matches!(after, Failed(_)), "{after:?}");
    }

    #[test]
    fn plain_messages() {
        let long = [b"\0".as_slice(), &[b'u'; 256], b"\0pw"].concat();
        let umlauts = verify(None, "j\u{f6}rg", "p\u{e4}ss");
        let cases: &[(&[u8], Option<SaslStep>)] = &[
            (b"\0tim\0tanstaaf", Some(verify(None, "tim", "tanstaaf"))),
            (b"Ursel\0Kurt\0xipj", Some(verify(Some("Ursel"), "Kurt", "xipj"))),
            ("\0j\u{f6}rg\0p\u{e4}ss".as_bytes(), Some(umlauts)),
            (b"", None),
            (b"\0\0pw", None),
            (b"\0user\0", None),
            (b"user\0pw", None),
            (b"a\0b\0c\0d", None),
            (b"\0us\xffer\0pw", None),
            (&long, None),
        ];
        for (msg, want) in cases {
            let (_, step) = SaslExchange::start(Plain, Some(msg.to_vec()));
            match want {
                Some(want) => assert_eq!(&step, want, "{msg:?}"),
                None => assert!(malformed(&step), "{msg:?}: {step:?}"),
            }
        }
    }

    #[test]
    fn plain_without_initial_response() {
        let (mut ex, step) = SaslExchange::start(Plain, None);
        assert_eq!(step, Challenge(vec![]));
        let want = verify(None, "tim", "tanstaaf");
        assert_eq!(ex.respond(data(b"\0tim\0tanstaaf")), want);
        assert!(malformed(&ex.respond(data(b"\0tim\0tanstaaf"))));
        assert!(malformed(&ex.respond(Response::Cancel)));
    }

    #[test]
    fn login_flows() {
        let (mut ex, step) = SaslExchange::start(Login, None);
        assert_eq!(step, Challenge(b"Username:".to_vec()));
        assert_eq!(ex.respond(data(b"tim")), Challenge(b"Password:".to_vec()));
        assert_eq!(ex.respond(data(b"pw")), verify(None, "tim", "pw"));
        assert!(malformed(&ex.respond(data(b""))));

        let (mut ex, step) = SaslExchange::start(Login, Some(b"tim".to_vec()));
        assert_eq!(step, Challenge(b"Password:".to_vec()));
        assert_eq!(ex.respond(Response::Cancel), Failed(Cancelled));
        assert!(malformed(&ex.respond(data(b"pw"))));

        let bad_fields: &[&[u8]] = &[b"", b"t\0m", b"\xff", &[b'u'; 256]];
        for bad in bad_fields {
            let (_, step) = SaslExchange::start(Login, Some(bad.to_vec()));
            assert!(malformed(&step), "user {bad:?}");
            let (mut ex, _) = SaslExchange::start(Login, Some(b"tim".to_vec()));
            assert!(malformed(&ex.respond(data(bad))), "password {bad:?}");
        }
    }

    // Drives SCRAM up to the client-final response and returns its step.
    fn scram(password: &str, creds: Option<&ScramCredentials>) -> (SaslExchange, SaslStep) {
        let cf = "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
        let (mut ex, step) = SaslExchange::start(ScramSha256, None);
        assert_eq!(step, Challenge(vec![]));
        assert_eq!(ex.respond(data(cf.as_bytes())), need("user"));
        let Challenge(sf) = ex.credentials(creds) else {
            panic!("no server-first")
        };
        let sf = String::from_utf8(sf).unwrap();
        let nonce = sf.split(',').next().unwrap();
        assert_eq!(nonce.strip_prefix("r=fyko+d2lbbFgONRv9qkxdawL").unwrap().len(), 24);
        let step = ex.respond(data(client_final(password, cf, &sf).as_bytes()));
        (ex, step)
    }

    #[test]
    fn scram_success_needs_empty_ack() {
        let creds = ScramCredentials::generate("pencil").unwrap();
        let (mut ex, step) = scram("pencil", Some(&creds));
        assert!(matches!(&step, Challenge(v) if v.starts_with(b"v=")), "{step:?}");
        let authcid = "user".to_owned();
        assert_eq!(ex.respond(data(b"")), Authenticated { authzid: None, authcid });
        assert!(malformed(&ex.respond(data(b""))));

        let (mut ex, _) = scram("pencil", Some(&creds));
        assert!(malformed(&ex.respond(data(b"x"))));
    }

    #[test]
    fn scram_failures() {
        let creds = ScramCredentials::generate("pencil").unwrap();
        assert_eq!(scram("wrong", Some(&creds)).1, Failed(AuthFailed));
        assert_eq!(scram("pencil", None).1, Failed(AuthFailed));

        let initial = b"n,a=admin,n=user,r=abc".to_vec();
        let (mut ex, step) = SaslExchange::start(ScramSha256, Some(initial.clone()));
        assert_eq!(step, need("user"));
        assert_eq!(ex.respond(data(b"c=biws")), Failed(OutOfOrder));
        assert_eq!(ex.credentials(None), Failed(OutOfOrder));

        let (mut ex, _) = SaslExchange::start(ScramSha256, Some(initial));
        assert!(matches!(ex.credentials(Some(&creds)), Challenge(_)));
        assert_eq!(ex.respond(Response::Cancel), Failed(Cancelled));

        for msg in ["", "p=tls-unique,,n=user,r=abc", "n,,n=user"] {
            let (_, step) = SaslExchange::start(ScramSha256, Some(msg.into()));
            assert!(malformed(&step), "{msg:?}");
        }
        let (mut ex, _) = SaslExchange::start(Plain, None);
        assert_eq!(ex.credentials(None), Failed(OutOfOrder));
    }

    #[test]
    fn debug_redacts_password() {
        let shown = format!("{:?}", verify(None, "tim", "tanstaaf"));
        assert!(shown.contains("tim") && !shown.contains("tanstaaf"), "{shown}");
    }
}

#[cfg(test)]
mod begin_tests {
    use super::*;

    #[test]
    fn begin_decodes_or_refuses_the_initial_response() {
        assert!(matches!(
            begin(Mechanism::Plain, Some("AGJvYgBwdw==")),
            Ok((_, SaslStep::VerifyPassword { .. }))
        ));
        assert!(matches!(begin(Mechanism::Plain, None), Ok((_, SaslStep::Challenge(_)))));
        assert!(begin(Mechanism::Plain, Some("!!!")).is_err());
        assert_eq!(begin(Mechanism::Plain, Some("*")).err(), Some(SaslError::Cancelled));
        let (mut exchange, _) = begin(Mechanism::Plain, None).unwrap();
        assert!(matches!(
            respond_line(&mut exchange, b"not base64!"),
            SaslStep::Failed(_)
        ));
    }
}

#[cfg(test)]
mod token_tests {
    use super::*;

    fn token_step(mech: Mechanism, message: &[u8]) -> (SaslExchange, SaslStep) {
        SaslExchange::start(mech, Some(message.to_vec()))
    }

    #[test]
    fn oauthbearer_gives_the_token_and_the_user_it_is_for() {
        // RFC 7628 §4.1's example.
        let msg = b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";
        let (_, step) = token_step(Mechanism::OAuthBearer, msg);
        assert_eq!(
            step,
            SaslStep::VerifyToken {
                authzid: Some("user@example.com".into()),
                token: "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==".into()
            }
        );
        let (_, step) = token_step(Mechanism::OAuthBearer, b"n,,\x01auth=bearer abc\x01\x01");
        assert_eq!(
            step,
            SaslStep::VerifyToken {
                authzid: None,
                token: "abc".into()
            }
        );
        let (_, step) = token_step(Mechanism::OAuthBearer, b"n,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01");
        assert!(matches!(step, SaslStep::VerifyToken { authzid: Some(ref z), .. } if z == "a,b=c"));
    }

    #[test]
    fn xoauth2_gives_the_token_and_its_user() {
        let (_, step) = token_step(
            Mechanism::XOAuth2,
            b"user=alice@example.com\x01auth=Bearer ya29.abc\x01\x01",
        );
        assert_eq!(
            step,
            SaslStep::VerifyToken {
                authzid: Some("alice@example.com".into()),
                token: "ya29.abc".into()
            }
        );
    }

    #[test]
    fn malformed_token_messages_fail() {
        for (mech, msg) in [
            (Mechanism::OAuthBearer, &b"n,,\x01auth=Bearer t\x01"[..]),
            (Mechanism::OAuthBearer, b"p=tls-unique,,\x01auth=Bearer t\x01\x01"),
            (Mechanism::OAuthBearer, b"n,,\x01auth=Basic dXNlcg==\x01\x01"),
            (Mechanism::OAuthBearer, b"n,,\x01host=x\x01\x01"),
            (Mechanism::OAuthBearer, b"n,a=x=1,\x01auth=Bearer t\x01\x01"),
            (Mechanism::OAuthBearer, b"n,,\x01auth=Bearer \x01\x01"),
            (Mechanism::XOAuth2, b"user=a\x01auth=Bearer t\x01"),
            (Mechanism::XOAuth2, b"\xff\x01\x01"),
        ] {
            let (_, step) = token_step(mech, msg);
            assert!(
                matches!(step, SaslStep::Failed(SaslError::Malformed(_))),
                "{msg:?}: {step:?}"
            );
        }
    }

    #[test]
    fn a_refused_token_gets_its_error_challenge_then_fails() {
        let (mut ex, step) = token_step(Mechanism::OAuthBearer, b"n,,\x01auth=Bearer t\x01\x01");
        assert!(matches!(step, SaslStep::VerifyToken { .. }));
        let SaslStep::Challenge(json) = ex.token_refused() else {
            panic!("no error challenge")
        };
        let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(parsed["status"], "invalid_token");
        // RFC 7628 §3.2.3: the client sends %x01; the exchange fails.
        assert_eq!(
            ex.respond(Response::Data(vec![1])),
            SaslStep::Failed(SaslError::TokenRefused)
        );
        // Cancelling instead, or sending garbage, fails it the same way: counted, not dodged.
        for answer in [&b"*"[..], b"!!not base64"] {
            let (mut ex, _) = token_step(Mechanism::XOAuth2, b"user=a\x01auth=Bearer t\x01\x01");
            ex.token_refused();
            assert_eq!(respond_line(&mut ex, answer), SaslStep::Failed(SaslError::TokenRefused));
        }
        // Without a client message first, the server asks for it with an empty challenge.
        let (_, step) = SaslExchange::start(Mechanism::XOAuth2, None);
        assert_eq!(step, SaslStep::Challenge(Vec::new()));
    }

    #[test]
    fn token_mechanisms_are_offered_only_with_oauth() {
        assert_eq!(Mechanism::parse(b"oauthbearer", false), None);
        assert_eq!(Mechanism::parse(b"oauthbearer", true), Some(Mechanism::OAuthBearer));
        assert_eq!(Mechanism::offered(false).count(), 3);
        assert_eq!(Mechanism::offered(true).count(), 5);
    }
}
