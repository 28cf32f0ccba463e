//! Bearer tokens (OAUTHBEARER, RFC 7628; XOAUTH2): a token is a JWT (RFC 7519) that the
//! configured issuer signed with one of the keys it publishes (a JWK Set, RFC 7517, fetched
//! from `[oauth] jwks_url` and cached, or read from `jwks_file`), for this server (`aud`),
//! not expired; its user is the value of the claim `[oauth] user_claim`, an address's local
//! part when it is one of a served domain.
//!
//! Only public-key algorithms are accepted (RS*, PS*, ES256/384, EdDSA): a key set holding a
//! shared secret cannot be used to forge tokens by naming HS256. Checking is blocking (a key
//! fetch may go over the network): call it on the login pool. The keys are fetched again when
//! they are older than `jwks_refresh`, or when a token names a key id the set lacks (a
//! rotation), at most once every `MIN_REFETCH`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

/// A key set is fetched again for an unknown key id at most this often.
const MIN_REFETCH: Duration = Duration::from_secs(30);
/// Largest JWK Set accepted, in bytes.
const MAX_JWKS: usize = 1 << 20;
/// How long fetching the key set may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token is not one this server takes: bad form, signature, issuer, audience, expiry,
    /// or no user. The client is told only that it was refused.
    #[error("token refused: {0}")]
    Refused(String),
    /// The issuer's keys could not be had: try again later.
    #[error("cannot get the issuer's keys: {0}")]
    Keys(String),
}

/// Where the issuer's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    Url { url: String, ca: Option<PathBuf> },
    File(PathBuf),
}

/// How tokens are checked (`[oauth]`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: String,
    pub audience: Vec<String>,
    pub keys: KeySource,
    pub user_claim: String,
    /// Mail domains served; an address claim's domain must be one (any, if empty).
    pub domains: Vec<String>,
    pub refresh: Duration,
    /// Seconds of clock difference tolerated on `exp` and `nbf`.
    pub leeway: u64,
}

struct Keys {
    set: Arc<JwkSet>,
    fetched: Instant,
}

pub struct Validator {
    settings: Settings,
    keys: RwLock<Option<Keys>>,
    /// When the key set was last fetched or tried, held while a fetch runs: one fetch at a
    /// time, and at most one every `MIN_REFETCH` whatever its outcome, so tokens made up to
    /// name unknown keys (or an issuer that is down) cannot tie up the login pool.
    fetching: std::sync::Mutex<Option<Instant>>,
}

static VALIDATOR: OnceLock<Validator> = OnceLock::new();

/// Checks tokens with `settings` from now on (once per process).
pub fn configure(settings: Settings) {
    let _ = VALIDATOR.set(Validator::new(settings));
}

/// The user a token proves, with the process's settings; refused when none are configured.
/// `authzid`, the user the client said the token is for (a name or an address), must be it.
pub fn user_of(token: &str, authzid: Option<&str>) -> Result<String, TokenError> {
    let Some(v) = VALIDATOR.get() else {
        return Err(TokenError::Refused("no [oauth] issuer configured".into()));
    };
    let user = v.user_of(token)?;
    match authzid.map(|z| v.user_name(z)).transpose()? {
        Some(named) if named != user => Err(TokenError::Refused(format!("a token of {user} used for {named}"))),
        _ => Ok(user),
    }
}

impl Validator {
    pub fn new(settings: Settings) -> Validator {
        Validator {
            settings,
            keys: RwLock::new(None),
            fetching: std::sync::Mutex::new(None),
        }
    }

    /// The user `token` proves.
    pub fn user_of(&self, token: &str) -> Result<String, TokenError> {
        let refused = |e: jsonwebtoken::errors::Error| TokenError::Refused(e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(refused)?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(TokenError::Refused(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let key = self.key(header.kid.as_deref())?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&self.settings.audience);
        validation.leeway = self.settings.leeway;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &key, &validation)
            .map_err(refused)?
            .claims;
        let value = claims
            .get(&self.settings.user_claim)
            .and_then(|v| v.as_str())
            .ok_or_else(|| TokenError::Refused(format!("no {} claim", self.settings.user_claim)))?;
        // OpenID Connect: an address the provider has not verified names nobody.
        if claims.get("email_verified").and_then(|v| v.as_bool()) == Some(false) && value.contains('@') {
            return Err(TokenError::Refused("the address is not verified".into()));
        }
        self.user_name(value)
    }

    /// The user a claim's value names: an address's local part (its domain served here),
    /// else the value itself.
    fn user_name(&self, value: &str) -> Result<String, TokenError> {
        let value = value.to_ascii_lowercase();
        let name = match value.rsplit_once('@') {
            Some((local, domain)) => {
                // Only a domain this server serves: `alice@elsewhere` is not alice. With no
                // domains configured there is none to compare, so an address names nobody.
                let domains = &self.settings.domains;
                if domains.is_empty() {
                    return Err(TokenError::Refused(
                        "an address claim needs [server] domains to say which domains are ours".into(),
                    ));
                }
                if !domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
                    return Err(TokenError::Refused(format!("{domain} is not a domain served here")));
                }
                local.to_owned()
            }
            None => value,
        };
        if name.is_empty() {
            return Err(TokenError::Refused("empty user claim".into()));
        }
        Ok(name)
    }

    /// The key `kid` names (the only key, if the token names none).
    fn key(&self, kid: Option<&str>) -> Result<DecodingKey, TokenError> {
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        let (set, fresh) = self.keys(false)?;
        let jwk = match find(&set) {
            Some(jwk) => jwk,
            // A key we do not know yet: the issuer may have rotated its keys.
            None if !fresh => find(&self.keys(true)?.0).ok_or_else(|| unknown_key(kid))?,
            None => return Err(unknown_key(kid)),
        };
        DecodingKey::from_jwk(&jwk).map_err(|e| TokenError::Refused(format!("key {kid:?}: {e}")))
    }

    /// The key set, fetched if there is none, it is stale, or `again` asks (not more often than
    /// `MIN_REFETCH`, and by one thread at a time); with whether it was fetched just now.
    fn keys(&self, again: bool) -> Result<(Arc<JwkSet>, bool), TokenError> {
        let now = Instant::now();
        let held = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|k| (k.set.clone(), k.fetched));
        if let Some((set, fetched)) = &held {
            let age = now.duration_since(*fetched);
            if age < self.settings.refresh && !(again && age >= MIN_REFETCH) {
                return Ok((set.clone(), false));
            }
        }
        let unavailable = |why: &str| match &held {
            Some((set, _)) => Ok((set.clone(), false)),
            None => Err(TokenError::Keys(why.to_owned())),
        };
        // Another thread is fetching: what we have (or a temporary failure) meanwhile.
        let Ok(mut last) = self.fetching.try_lock() else {
            return unavailable("the issuer's keys are being fetched");
        };
        if last.is_some_and(|at| now.duration_since(at) < MIN_REFETCH) {
            return unavailable("the issuer's keys could not be fetched a moment ago");
        }
        *last = Some(now);
        match load(&self.settings.keys) {
            Ok(set) => {
                let set = Arc::new(set);
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Some(Keys {
                    set: set.clone(),
                    fetched: now,
                });
                Ok((set, true))
            }
            // Keys we have are better than none while the issuer cannot be reached.
            Err(e) => {
                tracing::warn!("oauth: {e}");
                match held {
                    Some((set, _)) => Ok((set, false)),
                    None => Err(e),
                }
            }
        }
    }
}

fn unknown_key(kid: Option<&str>) -> TokenError {
    TokenError::Refused(format!("no key {kid:?} in the issuer's key set"))
}

/// Reads the key set from its source.
fn load(source: &KeySource) -> Result<JwkSet, TokenError> {
    let bytes = match source {
        KeySource::File(path) => {
            std::fs::read(path).map_err(|e| TokenError::Keys(format!("{}: {e}", path.display())))?
        }
        KeySource::Url { url, ca } => fetch(url, ca.as_deref())?,
    };
    if bytes.len() > MAX_JWKS {
        return Err(TokenError::Keys("the key set is too large".into()));
    }
    serde_json::from_slice(&bytes).map_err(|e| TokenError::Keys(format!("not a JWK Set: {e}")))
}

/// GETs `url` (https, or http to a loopback address), on a runtime of its own: this runs on
/// the login pool, never on a core loop.
fn fetch(url: &str, ca: Option<&std::path::Path>) -> Result<Vec<u8>, TokenError> {
    let keys = |e: String| TokenError::Keys(format!("{url}: {e}"));
    let uri: hyper::Uri = url.parse().map_err(|e| keys(format!("{e}")))?;
    let host = uri.host().ok_or_else(|| keys("no host".into()))?.to_owned();
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(keys("not an http(s) URL".into())),
    };
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| keys(e.to_string()))?;
    let tls = match https {
        true => {
            Some(crate::tls::client_config(ca, "[oauth] jwks_ca").ok_or_else(|| keys("no CA certificates".into()))?)
        }
        false => None,
    };
    let get = async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| keys(e.to_string()))?;
        let peer = stream.peer_addr().map_err(|e| keys(e.to_string()))?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        match tls {
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| keys(e.to_string()))?;
                let stream = tokio_rustls::TlsConnector::from(tls)
                    .connect(name, stream)
                    .await
                    .map_err(|e| keys(e.to_string()))?;
                get(stream, &host, &path).await.map_err(keys)
            }
            // Tokens' keys over plain HTTP could be swapped on the way: only from this machine.
            None if peer.ip().is_loopback() => get(stream, &host, &path).await.map_err(keys),
            None => Err(keys(
                "plain http is allowed to loopback addresses only; use https".into(),
            )),
        }
    };
    runtime.block_on(async {
        tokio::time::timeout(FETCH_TIMEOUT, get)
            .await
            .map_err(|_| keys("timed out".into()))?
    })
}

/// One HTTP/1.1 GET over `io`; the body of a 200 answer.
async fn get<I>(io: I, host: &str, path: &str) -> Result<Vec<u8>, String>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::{BodyExt, Empty, Limited};
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::ACCEPT, "application/json")
        .body(Empty::<hyper::body::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    if response.status() != hyper::StatusCode::OK {
        return Err(format!("answered {}", response.status()));
    }
    let body = Limited::new(response.into_body(), MAX_JWKS)
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(body.to_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    /// A P-256 key pair: the signing key, and the public key as a JWK Set with `kid`.
    fn key_pair(kid: &str) -> (EncodingKey, String) {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        use base64::Engine as _;
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = pair.public_key_raw();
        let (x, y) = (B64.encode(&raw[1..33]), B64.encode(&raw[33..65]));
        let jwks = format!(
            r#"{{"keys":[{{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"{kid}","x":"{x}","y":"{y}"}}]}}"#
        );
        (EncodingKey::from_ec_der(&pair.serialize_der()), jwks)
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn token(key: &EncodingKey, kid: &str, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    fn validator(jwks: &str, dir: &tempfile::TempDir) -> Validator {
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks).unwrap();
        Validator::new(Settings {
            issuer: "https://id.example.com".into(),
            audience: vec!["ringmail".into()],
            keys: KeySource::File(path),
            user_claim: "email".into(),
            domains: vec!["example.com".into()],
            refresh: Duration::from_secs(3600),
            leeway: 0,
        })
    }

    #[test]
    fn a_good_token_names_its_user_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (key, jwks) = key_pair("k1");
        let v = validator(&jwks, &dir);
        let claims = |iss: &str, aud: &str, exp: u64, email: &str| serde_json::json!({"iss": iss, "aud": aud, "exp": exp, "email": email});
        let (iss, exp) = ("https://id.example.com", now() + 600);
        let good = token(&key, "k1", claims(iss, "ringmail", exp, "Alice@example.com"));
        assert_eq!(v.user_of(&good).unwrap(), "alice");
        let refused = |t: String| matches!(v.user_of(&t), Err(TokenError::Refused(_)));
        assert!(refused(token(
            &key,
            "k1",
            claims(iss, "ringmail", now() - 600, "alice@example.com")
        )));
        assert!(refused(token(
            &key,
            "k1",
            claims(iss, "someone-else", exp, "alice@example.com")
        )));
        assert!(refused(token(
            &key,
            "k1",
            claims("https://evil", "ringmail", exp, "alice@example.com")
        )));
        assert!(refused(token(
            &key,
            "k1",
            claims(iss, "ringmail", exp, "alice@other.org")
        )));
        assert!(refused(token(
            &key,
            "k9",
            claims(iss, "ringmail", exp, "alice@example.com")
        )));
        // Signed by a key the issuer does not publish, under its key id.
        let (other, _) = key_pair("k1");
        assert!(refused(token(
            &other,
            "k1",
            claims(iss, "ringmail", exp, "alice@example.com")
        )));
        // A shared-secret algorithm is never accepted, whatever the key set holds.
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(iss, "ringmail", exp, "alice@example.com"),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(refused(hs));
        assert!(refused("not.a.token".into()));
    }

    #[test]
    fn an_address_names_a_user_only_of_a_served_domain_and_when_verified() {
        let dir = tempfile::tempdir().unwrap();
        let (key, jwks) = key_pair("k1");
        let mut v = validator(&jwks, &dir);
        let claims = |email: &str, verified: bool| {
            serde_json::json!({"iss": "https://id.example.com", "aud": "ringmail", "exp": now() + 60,
                "email": email, "email_verified": verified})
        };
        assert!(v
            .user_of(&token(&key, "k1", claims("alice@example.com", false)))
            .is_err());
        assert_eq!(
            v.user_of(&token(&key, "k1", claims("alice@example.com", true)))
                .unwrap(),
            "alice"
        );
        v.settings.domains.clear();
        assert!(v
            .user_of(&token(&key, "k1", claims("alice@example.com", true)))
            .is_err());
    }

    #[test]
    fn a_missing_key_file_is_a_temporary_failure() {
        let dir = tempfile::tempdir().unwrap();
        let (key, jwks) = key_pair("k1");
        let v = validator(&jwks, &dir);
        std::fs::remove_file(dir.path().join("jwks.json")).unwrap();
        let claims = serde_json::json!({"iss": "https://id.example.com", "aud": "ringmail", "exp": now() + 60, "email": "a@example.com"});
        assert!(matches!(
            v.user_of(&token(&key, "k1", claims)),
            Err(TokenError::Keys(_))
        ));
    }
}
