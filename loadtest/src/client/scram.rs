//! The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677), to test servers with.

use std::io;
use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2};

pub struct ScramClient {
    user: String,
    password: String,
    nonce: String,
    client_first_bare: String,
    server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    pub fn new(user: &str, password: &str) -> ScramClient {
        let mut raw = [0u8; 18];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw).expect("system randomness");
        let nonce = B64.encode(raw);
        let escaped = user.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            user: user.into(),
            password: password.into(),
            client_first_bare: format!("n={escaped},r={nonce}"),
            nonce,
            server_signature: None,
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    pub fn client_final(&mut self, server_first: &[u8]) -> io::Result<String> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("server-first: {what}"));
        let text = std::str::from_utf8(server_first).map_err(|_| bad("not UTF-8"))?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in text.split(',') {
            match attr.split_at_checked(2) {
                Some(("r=", v)) => nonce = Some(v.to_owned()),
                Some(("s=", v)) => salt = Some(B64.decode(v).map_err(|_| bad("salt"))?),
                Some(("i=", v)) => iterations = v.parse::<u32>().ok(),
                _ => {}
            }
        }
        let (nonce, salt, iterations) = match (nonce, salt, iterations) {
            (Some(n), Some(s), Some(i)) => (n, s, i),
            _ => return Err(bad("missing attribute")),
        };
        if !nonce.starts_with(&self.nonce) {
            return Err(bad("nonce does not extend ours"));
        }
        let iterations = NonZeroU32::new(iterations).ok_or_else(|| bad("zero iterations"))?;
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let salted_key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{},{}", self.client_first_bare, text, without_proof);
        let signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(signature.as_ref())
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac::sign(&salted_key, b"Server Key");
        let server_signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, server_key.as_ref()),
            auth_message.as_bytes(),
        );
        self.server_signature = Some(server_signature.as_ref().to_vec());
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Checks the server's `v=`: the server knew the password too.
    pub fn verify_server_final(&self, server_final: &[u8]) -> io::Result<()> {
        let text = String::from_utf8_lossy(server_final);
        let got = text
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "server-final"))?;
        if Some(got) == self.server_signature {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::InvalidData, "server signature mismatch"))
        }
    }
}
