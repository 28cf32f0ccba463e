//! TLS server configuration: the certificate from config, or a self-signed one generated into
//! data_dir on first start (naming localhost, 127.0.0.1, ::1 and the configured hostname so that
//! clients told to trust it can verify it). TLS 1.2 and 1.3 only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
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
}

/// Where the generated certificate lives, for clients that want to trust it.
pub fn generated_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    (data_dir.join("cert.pem"), data_dir.join("key.pem"))
}

pub fn server_config(config: &Config) -> Result<Arc<ServerConfig>, TlsError> {
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
    let pem_err = |path: &Path| {
        let path = path.to_owned();
        move |e: rustls::pki_types::pem::Error| TlsError::Pem {
            path: path.clone(),
            message: e.to_string(),
        }
    };
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .map_err(pem_err(&cert_path))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err(&cert_path))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert_path));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(pem_err(&key_path))?;
    let mut provider = rustls::crypto::ring::default_provider();
    // AES-128-GCM first: as strong as mail needs, and a third cheaper per byte than AES-256
    // on a bulk download (the server's order wins: `ignore_client_order` below).
    provider
        .cipher_suites
        .sort_by_key(|s| !format!("{:?}", s.suite()).contains("AES_128_GCM"));
    let provider = Arc::new(provider);
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    server.ignore_client_order = true;
    Ok(Arc::new(server))
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
