//! The admin socket: `admin.sock` under data_dir, a Unix socket only its owner may open (mode
//! 0600, never on the network), through which `ringmail who` and `ringmail kick` reach a running
//! server. One request line per connection, one JSON answer:
//!
//! ```text
//! who [USER]               → [{"id":…,"user":…,"protocol":…,"client":…,"core":…,"state":…,"since":…,"tls":…}, …]
//! kick USER [PROTOCOL]     → {"kicked": N}
//! hold USER | release USER → {"held": true|false}   (a mailbox move: no logins or deliveries)
//! anything else            → {"error": "…"}
//! ```
//!
//! It runs on a thread of its own, answering one request at a time; the sessions it reads and
//! kicks are in `crate::sessions`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sessions::Registry;

/// `ringmail serve`'s socket in its data_dir.
pub const ADMIN_SOCKET: &str = "admin.sock";
/// `ringmail proxy`'s, in its own (which may be the same directory).
pub const PROXY_ADMIN_SOCKET: &str = "proxy-admin.sock";
/// A client that does not send its request (or take the answer) in this long is dropped.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REQUEST: u64 = 1024;

/// One session as `who` answers it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: u64,
    pub user: Option<String>,
    pub protocol: String,
    pub client: Option<String>,
    pub core: usize,
    pub state: String,
    /// When it connected, in seconds since the epoch.
    pub since: u64,
    pub tls: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Kicked {
    pub kicked: usize,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Held {
    pub held: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Refused {
    pub error: String,
}

/// The running admin socket; removed when stopped.
pub struct Control {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Control {
    /// Binds `dir/name` (replacing one a crashed server left: the caller holds the
    /// data_dir's lock) and answers on it for `registry`.
    pub fn start(dir: &Path, name: &str, registry: Arc<Registry>) -> std::io::Result<Control> {
        let path = dir.join(name);
        // Bound inside a directory only we may enter, made private, and only then moved to its
        // real name: whatever the umask, there is no moment in which anyone else can connect.
        let staging = dir.join(format!(".{name}.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().mode(0o700).create(&staging)?;
        }
        let bound = staging.join(name);
        let listener = UnixListener::bind(&bound)?;
        std::fs::set_permissions(&bound, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&bound, &path)?;
        let _ = std::fs::remove_dir(&staging);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("ringmail-admin".into())
                .spawn(move || accept_loop(&listener, &stop, registry))?
        };
        Ok(Control {
            path,
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept.
        let _ = UnixStream::connect(&self.path);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.halt();
    }
}

fn accept_loop(listener: &UnixListener, stop: &AtomicBool, registry: Arc<Registry>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match stream {
            Ok(stream) => {
                if let Err(e) = answer(stream, &registry) {
                    tracing::debug!("admin socket: {e}");
                }
            }
            Err(e) => {
                tracing::warn!("admin socket: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn answer(stream: UnixStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut line)?;
    let reply = respond(line.trim_end(), registry);
    (&stream).write_all(reply.as_bytes())?;
    (&stream).write_all(b"\n")
}

/// The JSON answer to one request line.
pub fn respond(request: &str, registry: &Registry) -> String {
    let words: Vec<&str> = request.split_ascii_whitespace().collect();
    let json = match words.as_slice() {
        ["who"] => serde_json::to_string(&who(registry, None)),
        ["who", user] => serde_json::to_string(&who(registry, Some(user))),
        ["kick", user] => serde_json::to_string(&Kicked {
            kicked: registry.kick(user, None),
        }),
        ["kick", user, protocol] => serde_json::to_string(&Kicked {
            kicked: registry.kick(user, Some(protocol)),
        }),
        ["hold", user] | ["release", user] => {
            registry.hold(user, words[0] == "hold");
            serde_json::to_string(&Held {
                held: registry.is_held(user),
            })
        }
        _ => serde_json::to_string(&Refused {
            error: format!("unknown request {request:?}: who [USER] | kick USER [PROTOCOL] | hold USER | release USER"),
        }),
    };
    json.unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

fn who(registry: &Registry, user: Option<&str>) -> Vec<SessionInfo> {
    registry
        .list()
        .into_iter()
        .map(|s| SessionInfo {
            id: s.id,
            user: s.user(),
            protocol: s.protocol().to_owned(),
            client: s.peer.map(|p| p.to_string()),
            core: s.core(),
            state: s.phase().name().to_owned(),
            since: s.since(),
            tls: s.tls(),
        })
        .filter(|s| user.is_none_or(|u| s.user.as_deref() == Some(u)))
        .collect()
}

/// Sends `request` to the admin socket `name` in `dir` and gives its answer (the CLI's side).
pub fn ask(dir: &Path, name: &str, request: &str) -> std::io::Result<String> {
    let path = dir.join(name);
    let mut stream = UnixStream::connect(&path)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(format!("{request}\n").as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    if reply.is_empty() {
        return Err(std::io::Error::other(
            "the server closed the admin socket without an answer",
        ));
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_their_answers() {
        let registry = Registry::new(1);
        let s = registry.register(crate::sessions::Arrival {
            id: 7,
            protocol: "imap",
            peer: Some([192, 0, 2, 1].into()),
            tls: true,
            fd: None,
        });
        s.logged_in("alice");
        let listed: Vec<SessionInfo> = serde_json::from_str(&respond("who", &registry)).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].user.as_deref(), Some("alice"));
        assert_eq!(listed[0].client.as_deref(), Some("192.0.2.1"));
        let none: Vec<SessionInfo> = serde_json::from_str(&respond("who bob", &registry)).unwrap();
        assert!(none.is_empty());
        let kicked: Kicked = serde_json::from_str(&respond("kick alice pop3", &registry)).unwrap();
        assert_eq!(kicked.kicked, 0);
        let kicked: Kicked = serde_json::from_str(&respond("kick alice", &registry)).unwrap();
        assert_eq!(kicked.kicked, 1);
        assert!(s.is_kicked());
        let refused: Refused = serde_json::from_str(&respond("shutdown now", &registry)).unwrap();
        assert!(refused.error.contains("unknown request"));
    }
}
