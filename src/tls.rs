//! TLS server configuration: the certificate from config, or a self-signed one generated into
//! data_dir on first start (naming localhost, 127.0.0.1, ::1 and the configured hostname so that
//! clients told to trust it can verify it). TLS 1.2 and 1.3 only.
//!
//! The certificate and key are the server's `Identity`, which a reload (SIGHUP, `ringmail
//! reload`) reads again from the same files: handshakes after it present the new pair, sessions
//! already up keep theirs, and a pair that does not load is refused with the old one kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("certificate and key do not fit together: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot make the keys of TLS session tickets: {0}")]
    Tickets(rustls::Error),
}

/// Where the generated certificate lives, for clients that want to trust it.
pub fn generated_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    (data_dir.join("cert.pem"), data_dir.join("key.pem"))
}

/// The certificate chain and key handshakes present, and where they are read from.
#[derive(Debug)]
pub struct Identity {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Identity {
    /// Reads the certificate and key files again; on success new handshakes use them, on
    /// failure the pair in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = load(&self.cert_path, &self.key_path, &self.provider)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
        Ok(())
    }

    /// The certificate file, for log lines.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }
}

impl ResolvesServerCert for Identity {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// Logs the outcome of a reload of `identity` (the signal handler's whole job).
pub fn reload_logged(identity: &Identity) {
    match identity.reload() {
        Ok(()) => tracing::info!(cert = %identity.cert_path().display(), "reloaded the certificate and key"),
        Err(e) => tracing::error!("reload refused, the certificate in use is kept: {e}"),
    }
}

/// A certificate chain and its key from PEM files, checked to belong together.
fn load(cert_path: &Path, key_path: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let pem_err = |path: &Path| {
        let path = path.to_owned();
        move |e: rustls::pki_types::pem::Error| TlsError::Pem {
            path: path.clone(),
            message: e.to_string(),
        }
    };
    let certs = CertificateDer::pem_file_iter(cert_path)
        .map_err(pem_err(cert_path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err(cert_path))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert_path.to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(pem_err(key_path))?;
    Ok(CertifiedKey::from_der(certs, key, provider)?)
}

/// The server's TLS configuration, and its identity for reloads.
pub fn server_config(config: &Config) -> Result<(Arc<ServerConfig>, Arc<Identity>), TlsError> {
    let (cert_path, key_path) = match (&config.tls.cert, &config.tls.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let paths = generated_paths(&config.server.data_dir);
            if !paths.0.exists() || !paths.1.exists() {
                generate(&config.server.hostname, &paths.0, &paths.1)?;
            }
            paths
        }
    };
    let mut provider = rustls::crypto::ring::default_provider();
    // AES-128-GCM first: as strong as mail needs, and a third cheaper per byte than AES-256
    // on a bulk download (the server's order wins: `ignore_client_order` below).
    provider
        .cipher_suites
        .sort_by_key(|s| !format!("{:?}", s.suite()).contains("AES_128_GCM"));
    let provider = Arc::new(provider);
    let identity = Arc::new(Identity {
        current: RwLock::new(Arc::new(load(&cert_path, &key_path, &provider)?)),
        cert_path,
        key_path,
        provider: provider.clone(),
    });
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(identity.clone());
    server.ignore_client_order = true;
    // Stateless session tickets (TLS 1.3 and 1.2; keys made at start and rotated every six
    // hours): a client that comes back, a phone after its network blipped, resumes without
    // the certificate and its signature, however many sessions came between. rustls's
    // default keeps 256 sessions in memory, which a reconnect storm of thousands overruns.
    // No early data (`max_early_data_size` stays 0): a replayed command would run twice.
    server.ticketer = rustls::crypto::ring::Ticketer::new().map_err(TlsError::Tickets)?;
    // After the handshake the records are ours (`net::record`): rustls hands the keys over.
    crate::net::tls::hand_over(&mut server);
    Ok((Arc::new(server), identity))
}

fn generate(hostname: &str, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if !names.iter().any(|n| n == hostname) {
        names.push(hostname.to_string());
    }
    let certified = rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    let write = |path: &Path, text: String| {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
                path: dir.to_owned(),
                source,
            })?;
        }
        // Written to a temporary name and renamed, so a crash never leaves half a key.
        let tmp = path.with_extension("tmp");
        write_private(&tmp, text.as_bytes())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|source| TlsError::Write {
                path: path.to_owned(),
                source,
            })
    };
    write(key_path, certified.signing_key.serialize_pem())?;
    write(cert_path, certified.cert.pem())?;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Where the system's CA bundle usually is, when no CA file is configured.
const SYSTEM_CAS: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// A client configuration that trusts the CAs in `ca`, or the system's without it; None (and
/// an error logged naming `setting`) when no CA could be read.
pub fn client_config(ca: Option<&Path>, setting: &str) -> Option<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    let files: Vec<&Path> = match ca {
        Some(path) => vec![path],
        None => SYSTEM_CAS.iter().map(Path::new).filter(|p| p.exists()).collect(),
    };
    for file in files {
        match CertificateDer::pem_file_iter(file) {
            Ok(certs) => {
                let _ = roots.add_parsable_certificates(certs.filter_map(Result::ok));
            }
            Err(e) => tracing::error!("{setting} {}: {e}", file.display()),
        }
    }
    if roots.is_empty() {
        tracing::error!("no CA certificates to verify servers with: set {setting}");
        return None;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Some(Arc::new(config))
}
