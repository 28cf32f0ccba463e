//! A small HTTP/1.1 server for the side doors of a server: the operator's metrics endpoint and
//! the clients' autoconfiguration documents. hyper speaks the protocol; this module only binds,
//! bounds and routes. It runs on a thread of its own with a current-thread tokio runtime, never
//! on a core loop, so a slow scrape or a flood of autoconfig requests cannot delay a mail
//! session.
//!
//! Every connection is bounded: headers must arrive within `HEADER_TIMEOUT`, a request body is
//! at most `MAX_BODY` bytes, a TLS handshake has `HANDSHAKE_TIMEOUT`, at most `MAX_CONNECTIONS`
//! are served at once (the rest wait in the listen queue), and one address holds at most
//! `MAX_PER_ADDRESS` of them (more are closed at once), so a few slow clients cannot take
//! the door from everyone.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};

const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole request, body included, must have come in this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_BODY: usize = 64 * 1024;
const MAX_CONNECTIONS: usize = 256;
const MAX_PER_ADDRESS: usize = 16;

/// Connections open per client address, over every listener of one server.
type PerAddress = std::rc::Rc<std::cell::RefCell<std::collections::HashMap<std::net::IpAddr, usize>>>;

/// A request as a handler sees it.
pub struct Request {
    pub method: hyper::Method,
    pub path: String,
    pub query: Option<String>,
    /// The Host header, without a port.
    pub host: Option<String>,
    pub body: Bytes,
    /// It came over TLS.
    pub tls: bool,
}

/// What a handler answers.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status: 200,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn status(status: u16, text: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: format!("{text}\n").into_bytes(),
        }
    }
}

pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// One address to serve, in plain HTTP or over TLS.
pub struct Listener {
    pub addr: SocketAddr,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// A running HTTP server; it stops when `stop` is called or it is dropped.
pub struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds every listener (an error names the address that failed), then serves them with
    /// `handler` on a thread named `name`.
    pub fn start(name: &str, listeners: Vec<Listener>, handler: Handler) -> Result<Server, crate::serve::ServeError> {
        let mut bound = Vec::new();
        for l in listeners {
            let socket = std::net::TcpListener::bind(l.addr).map_err(|source| crate::serve::ServeError::Listen {
                addr: l.addr.to_string(),
                source,
            })?;
            socket.set_nonblocking(true)?;
            bound.push((socket, l.tls));
        }
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(bound, handler, stopped))?;
        Ok(Server {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.halt();
    }
}

type Bound = Vec<(std::net::TcpListener, Option<Arc<rustls::ServerConfig>>)>;

fn run(bound: Bound, handler: Handler, stopped: tokio::sync::oneshot::Receiver<()>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("http: cannot start its runtime: {e}");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let per_address = PerAddress::default();
        for (socket, tls) in bound {
            let listener = match tokio::net::TcpListener::from_std(socket) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!("http: {e}");
                    continue;
                }
            };
            let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
            let limits = (slots.clone(), per_address.clone());
            tokio::task::spawn_local(accept_loop(listener, acceptor, handler.clone(), limits));
        }
        let _ = stopped.await;
    });
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    handler: Handler,
    (slots, per_address): (Arc<tokio::sync::Semaphore>, PerAddress),
) {
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("http: accept: {e}");
                // Out of descriptors, say: give the others a moment rather than spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ip = peer.ip();
        let held = {
            let mut counts = per_address.borrow_mut();
            let n = counts.entry(ip).or_default();
            *n += 1;
            *n
        };
        let per_address = per_address.clone();
        let release = move || {
            let mut counts = per_address.borrow_mut();
            if let Some(n) = counts.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&ip);
                }
            }
        };
        if held > MAX_PER_ADDRESS {
            release();
            continue;
        }
        let (acceptor, handler) = (acceptor.clone(), handler.clone());
        tokio::task::spawn_local(async move {
            match acceptor {
                None => serve(TokioIo::new(stream), handler, false).await,
                Some(acceptor) => {
                    if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        serve(TokioIo::new(tls), handler, true).await;
                    }
                }
            }
            release();
            drop(slot);
        });
    }
}

async fn serve<I>(io: I, handler: Handler, tls: bool)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(answer(request, &handler, tls).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false)
        .serve_connection(io, service);
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, connection).await;
}

async fn answer(request: hyper::Request<Incoming>, handler: &Handler, tls: bool) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return build(Response::status(413, "request body too large")),
    };
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| strip_port(h).to_ascii_lowercase());
    let request = Request {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        host,
        body,
        tls,
    };
    build(handler(&request))
}

/// `host[:port]` or `[v6]:port` without the port.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn build(response: Response) -> hyper::Response<Full<Bytes>> {
    let mut builder = hyper::Response::builder()
        .status(response.status)
        .header(hyper::header::CONTENT_TYPE, response.content_type);
    for (name, value) in response.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from(response.body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::from_static(b"bad response\n"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_not_part_of_the_host() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "::1");
    }
}
