//! Client autoconfiguration (`[autoconfig] listen`): the documents mail clients fetch to set
//! themselves up from nothing but an address, each naming this server's IMAP, POP3 and
//! submission endpoints as `[server] external_hostname` and the listeners give them, TLS
//! first (Exchange's ExternalConnectionSettings):
//!
//! - Mozilla autoconfig (Thunderbird, and many others): `GET /mail/config-v1.1.xml` at
//!   `autoconfig.DOMAIN` and `GET /.well-known/autoconfig/mail/config-v1.1.xml` at `DOMAIN`,
//!   with `?emailaddress=`;
//! - Microsoft Autodiscover, plain old XML (Outlook): `POST /autodiscover/autodiscover.xml`
//!   (any case) with the address in the request body;
//! - an Apple configuration profile (iPhone, iPad, Mac Mail):
//!   `GET /apple/mail.mobileconfig?emailaddress=`.
//!
//! The documents say only what any client could learn by connecting, so they are given to
//! anyone, for any address of a served domain, without saying whether the account exists.
//! Built here from the config, sans I/O; `crate::http` serves them.

use std::fmt::Write as _;

use crate::config::Config;
use crate::http::{Handler, Request, Response};

/// How a client reaches one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub port: u16,
    /// TLS from the first byte (else STARTTLS/STLS on a plaintext port).
    pub implicit_tls: bool,
}

/// What the documents say: where each service is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub hostname: String,
    /// Mail domains served; empty: any.
    pub domains: Vec<String>,
    pub imap: Option<Endpoint>,
    pub pop3: Option<Endpoint>,
    pub submission: Option<Endpoint>,
}

/// The endpoint of a protocol's listeners: its implicit-TLS port if it has one, else its
/// STARTTLS port.
fn endpoint(plain: &[std::net::SocketAddr], tls: &[std::net::SocketAddr]) -> Option<Endpoint> {
    let pick = |addrs: &[std::net::SocketAddr], implicit_tls| {
        addrs.first().map(|a| Endpoint {
            port: a.port(),
            implicit_tls,
        })
    };
    pick(tls, true).or_else(|| pick(plain, false))
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        Settings {
            hostname: config.external_hostname().to_owned(),
            domains: config.server.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            imap: endpoint(&config.imap.listen, &config.imap.listen_tls),
            pop3: endpoint(&config.pop3.listen, &config.pop3.listen_tls),
            submission: endpoint(&config.submission.listen, &config.submission.listen_tls),
        }
    }

    fn serves(&self, domain: &str) -> bool {
        self.domains.is_empty() || self.domains.iter().any(|d| d == domain)
    }
}

/// A mail address as a client gives it, split; `None` unless it is one this server may
/// describe (a plain local part, a served domain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub local: String,
    pub domain: String,
}

impl Address {
    pub fn parse(text: &str, settings: &Settings) -> Option<Address> {
        let (local, domain) = text.trim().rsplit_once('@')?;
        let (local, domain) = (local.to_ascii_lowercase(), domain.to_ascii_lowercase());
        let local_ok = local.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b));
        let domain_ok = domain.bytes().all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b));
        let sized = (1..=64).contains(&local.len()) && (1..=253).contains(&domain.len());
        (local_ok && domain_ok && sized && settings.serves(&domain)).then_some(Address { local, domain })
    }

    fn full(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
}

/// Text made safe inside an XML element or attribute.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Mozilla's `clientConfig` (version 1.1) for `domain`; the user name is the address's local
/// part, as `%EMAILLOCALPART%` when no address was given.
pub fn mozilla(settings: &Settings, domain: &str, address: Option<&Address>) -> String {
    let user = address.map_or_else(|| "%EMAILLOCALPART%".to_owned(), |a| xml(&a.local));
    let host = xml(&settings.hostname);
    let domain = xml(domain);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n  \
         <emailProvider id=\"{domain}\">\n    <domain>{domain}</domain>\n    \
         <displayName>{domain} mail</displayName>\n    <displayShortName>{domain}</displayShortName>\n"
    );
    let server = |out: &mut String, element: &str, kind: &str, e: Endpoint| {
        let socket = if e.implicit_tls { "SSL" } else { "STARTTLS" };
        let _ = write!(
            out,
            "    <{element} type=\"{kind}\">\n      <hostname>{host}</hostname>\n      <port>{}</port>\n      \
             <socketType>{socket}</socketType>\n      <authentication>password-cleartext</authentication>\n      \
             <username>{user}</username>\n    </{element}>\n",
            e.port
        );
    };
    if let Some(e) = settings.imap {
        server(&mut out, "incomingServer", "imap", e);
    }
    if let Some(e) = settings.pop3 {
        server(&mut out, "incomingServer", "pop3", e);
    }
    if let Some(e) = settings.submission {
        server(&mut out, "outgoingServer", "smtp", e);
    }
    out.push_str("  </emailProvider>\n</clientConfig>\n");
    out
}

/// The address in a Microsoft Autodiscover request (`<Request><EMailAddress>`).
pub fn autodiscover_request(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    // roxmltree refuses DTDs, so no entity can expand.
    let doc = roxmltree::Document::parse(text).ok()?;
    let root = doc.root_element();
    if root.tag_name().name() != "Autodiscover" {
        return None;
    }
    let found = root
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "EMailAddress")?
        .text()?;
    Some(found.trim().to_owned())
}

/// A Microsoft Autodiscover response (POX, the Outlook response schema 2006a) for `address`.
pub fn autodiscover(settings: &Settings, address: &Address) -> String {
    let host = xml(&settings.hostname);
    let user = xml(&address.local);
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  \
         <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n    \
         <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n",
    );
    for (kind, endpoint) in [
        ("IMAP", settings.imap),
        ("POP3", settings.pop3),
        ("SMTP", settings.submission),
    ] {
        let Some(e) = endpoint else { continue };
        // `Encryption` (SSL: from the first byte, TLS: STARTTLS) takes precedence over `SSL`.
        let encryption = if e.implicit_tls { "SSL" } else { "TLS" };
        let _ = write!(
            out,
            "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{host}</Server>\n        \
             <Port>{}</Port>\n        <DomainRequired>off</DomainRequired>\n        <LoginName>{user}</LoginName>\n        \
             <SPA>off</SPA>\n        <SSL>on</SSL>\n        <Encryption>{encryption}</Encryption>\n        \
             <AuthRequired>on</AuthRequired>\n      </Protocol>\n",
            e.port
        );
    }
    out.push_str("    </Account>\n  </Response>\n</Autodiscover>\n");
    out
}

/// A UUID (version 8, RFC 9562 §5.8) derived from `seed`: the same address always gets the
/// same profile identifiers, so installing it again replaces it instead of adding a copy.
fn uuid(seed: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// An Apple configuration profile with one mail account for `address` (IMAP if offered, else
/// POP3), sending through submission; the password is asked for at installation.
pub fn apple(settings: &Settings, address: &Address) -> Option<String> {
    let (kind, incoming) = match (settings.imap, settings.pop3) {
        (Some(e), _) => ("EmailTypeIMAP", e),
        (None, Some(e)) => ("EmailTypePOP", e),
        (None, None) => return None,
    };
    let outgoing = settings.submission?;
    let host = xml(&settings.hostname);
    let (user, full) = (xml(&address.local), xml(&address.full()));
    let id = format!("{}.mail.{}", reverse(&settings.hostname), address.full());
    let id = xml(&id);
    let flag = |on: bool| if on { "<true/>" } else { "<false/>" };
    let account = format!(
        "    <dict>\n\
         \x20     <key>EmailAccountDescription</key><string>{full}</string>\n\
         \x20     <key>EmailAccountName</key><string>{user}</string>\n\
         \x20     <key>EmailAccountType</key><string>{kind}</string>\n\
         \x20     <key>EmailAddress</key><string>{full}</string>\n\
         \x20     <key>IncomingMailServerAuthentication</key><string>EmailAuthPassword</string>\n\
         \x20     <key>IncomingMailServerHostName</key><string>{host}</string>\n\
         \x20     <key>IncomingMailServerPortNumber</key><integer>{}</integer>\n\
         \x20     <key>IncomingMailServerUseSSL</key>{}\n\
         \x20     <key>IncomingMailServerUsername</key><string>{user}</string>\n\
         \x20     <key>OutgoingMailServerAuthentication</key><string>EmailAuthPassword</string>\n\
         \x20     <key>OutgoingMailServerHostName</key><string>{host}</string>\n\
         \x20     <key>OutgoingMailServerPortNumber</key><integer>{}</integer>\n\
         \x20     <key>OutgoingMailServerUseSSL</key>{}\n\
         \x20     <key>OutgoingMailServerUsername</key><string>{user}</string>\n\
         \x20     <key>OutgoingPasswordSameAsIncomingPassword</key><true/>\n\
         \x20     <key>PayloadDescription</key><string>Mail account {full}</string>\n\
         \x20     <key>PayloadDisplayName</key><string>{full}</string>\n\
         \x20     <key>PayloadIdentifier</key><string>{id}.account</string>\n\
         \x20     <key>PayloadType</key><string>com.apple.mail.managed</string>\n\
         \x20     <key>PayloadUUID</key><string>{}</string>\n\
         \x20     <key>PayloadVersion</key><integer>1</integer>\n\
         \x20   </dict>\n",
        incoming.port,
        flag(incoming.implicit_tls),
        outgoing.port,
        flag(outgoing.implicit_tls),
        uuid(&format!("{id}.account")),
    );
    Some(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n<dict>\n  <key>PayloadContent</key>\n  <array>\n{account}  </array>\n  \
         <key>PayloadDescription</key><string>Sets up mail for {full} on {host}</string>\n  \
         <key>PayloadDisplayName</key><string>Mail ({full})</string>\n  \
         <key>PayloadIdentifier</key><string>{id}</string>\n  \
         <key>PayloadRemovalDisallowed</key><false/>\n  \
         <key>PayloadType</key><string>Configuration</string>\n  \
         <key>PayloadUUID</key><string>{}</string>\n  \
         <key>PayloadVersion</key><integer>1</integer>\n</dict>\n</plist>\n",
        uuid(&id),
    ))
}

/// `mail.example.com` → `com.example.mail`, the reverse-DNS style of profile identifiers.
fn reverse(host: &str) -> String {
    host.split('.').rev().collect::<Vec<_>>().join(".")
}

/// The value of `name` in a query string.
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.into_owned())
}

const XML: &str = "application/xml; charset=utf-8";

/// Starts the autoconfig listeners of `config`, if it has any; HTTPS with the server's
/// certificate (a reload reaches them too).
pub fn start(
    config: &Config,
    tls: &std::sync::Arc<rustls::ServerConfig>,
) -> Result<Option<crate::http::Server>, crate::serve::ServeError> {
    let c = &config.autoconfig;
    if c.listen.is_empty() && c.listen_tls.is_empty() {
        return Ok(None);
    }
    let mut https = (**tls).clone();
    https.alpn_protocols = vec![b"http/1.1".to_vec()];
    let https = std::sync::Arc::new(https);
    let plain = c.listen.iter().map(|&addr| crate::http::Listener { addr, tls: None });
    let secure = c.listen_tls.iter().map(|&addr| crate::http::Listener {
        addr,
        tls: Some(https.clone()),
    });
    let listeners = plain.chain(secure).collect();
    crate::http::Server::start("ringmail-autoconfig", listeners, handler(config)).map(Some)
}

/// Serves the documents over `crate::http`.
pub fn handler(config: &Config) -> Handler {
    let settings = Settings::from_config(config);
    std::sync::Arc::new(move |request| answer(&settings, request))
}

pub fn answer(settings: &Settings, request: &Request) -> Response {
    use hyper::Method;
    let path = request.path.to_ascii_lowercase();
    let given = query_value(request.query.as_deref(), "emailaddress");
    let address = given.as_deref().and_then(|a| Address::parse(a, settings));
    if given.is_some() && address.is_none() {
        return Response::status(404, "no mail service here for that address");
    }
    match (&request.method, path.as_str()) {
        (&Method::GET, "/mail/config-v1.1.xml" | "/.well-known/autoconfig/mail/config-v1.1.xml") => {
            // Without an address, the domain is the one asked for (autoconfig.DOMAIN).
            let domain = match (&address, &request.host) {
                (Some(a), _) => a.domain.clone(),
                (None, Some(host)) => host.strip_prefix("autoconfig.").unwrap_or(host).to_owned(),
                (None, None) => return Response::status(400, "emailaddress is missing"),
            };
            if !settings.serves(&domain) {
                return Response::status(404, "no mail service here for that domain");
            }
            Response::ok(XML, mozilla(settings, &domain, address.as_ref()))
        }
        (&Method::POST, "/autodiscover/autodiscover.xml") => {
            let Some(text) = autodiscover_request(&request.body) else {
                return Response::status(400, "not an Autodiscover request");
            };
            match Address::parse(&text, settings) {
                Some(address) => Response::ok(XML, autodiscover(settings, &address)),
                None => Response::status(404, "no mail service here for that address"),
            }
        }
        (&Method::GET, "/apple/mail.mobileconfig") => {
            let Some(address) = address else {
                return Response::status(400, "emailaddress is missing");
            };
            match apple(settings, &address) {
                Some(profile) => {
                    let mut response = Response::ok("application/x-apple-aspen-config", profile);
                    let name = format!("attachment; filename=\"{}.mobileconfig\"", address.domain);
                    response.headers.push(("content-disposition", name));
                    response
                }
                None => Response::status(404, "this server offers no IMAP or POP3 with submission"),
            }
        }
        (_, "/mail/config-v1.1.xml" | "/.well-known/autoconfig/mail/config-v1.1.xml" | "/apple/mail.mobileconfig") => {
            Response::status(405, "GET only")
        }
        (_, "/autodiscover/autodiscover.xml") => Response::status(405, "POST only"),
        _ => Response::status(404, "not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            hostname: "mail.example.com".into(),
            domains: vec!["example.com".into()],
            imap: Some(Endpoint {
                port: 993,
                implicit_tls: true,
            }),
            pop3: None,
            submission: Some(Endpoint {
                port: 587,
                implicit_tls: false,
            }),
        }
    }

    #[test]
    fn addresses_of_other_domains_or_odd_forms_are_not_described() {
        let s = settings();
        assert_eq!(
            Address::parse("Alice@Example.COM", &s),
            Some(Address {
                local: "alice".into(),
                domain: "example.com".into()
            })
        );
        for bad in [
            "alice@other.org",
            "alice",
            "@example.com",
            "a<b@example.com",
            "a b@example.com",
        ] {
            assert_eq!(Address::parse(bad, &s), None, "{bad}");
        }
    }

    #[test]
    fn the_documents_are_well_formed_xml() {
        let s = settings();
        let a = Address::parse("alice@example.com", &s).unwrap();
        for doc in [
            mozilla(&s, "example.com", Some(&a)),
            mozilla(&s, "example.com", None),
            autodiscover(&s, &a),
        ] {
            roxmltree::Document::parse(&doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
        }
        // The profile has a DOCTYPE, as Apple's plists do.
        let profile = apple(&s, &a).unwrap();
        let options = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        };
        roxmltree::Document::parse_with_options(&profile, options).unwrap();
        assert_eq!(uuid("x"), uuid("x"));
        assert_ne!(uuid("x"), uuid("y"));
    }

    #[test]
    fn an_autodiscover_request_names_its_address() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>alice@example.com</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"#;
        assert_eq!(autodiscover_request(body).as_deref(), Some("alice@example.com"));
        assert_eq!(autodiscover_request(b"<x/>"), None);
        let bomb =
            br#"<!DOCTYPE a [<!ENTITY b "bbbbbbbb">]><Autodiscover><EMailAddress>&b;</EMailAddress></Autodiscover>"#;
        assert_eq!(autodiscover_request(bomb), None, "no DTD, so no entity");
    }
}
