//! What a front end's metrics endpoint shows beside the process's counters (`crate::metrics`),
//! read at scrape time: its sessions by protocol and state (relayed ones count as
//! authenticated: the front end does not read what they do; how many of them rest, quiet), and
//! the health of each back end as its circuit breakers see it.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};

use super::Front;
use crate::metrics::{encode_gauge, encode_gauges, encode_sessions};

const PROTOCOLS: [&str; 4] = ["imap", "pop3", "submission", "lmtp"];

#[derive(Clone)]
pub struct Exposition(pub Arc<Front>);

impl std::fmt::Debug for Exposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exposition")
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    backend: String,
    site: String,
    protocol: &'static str,
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let front = &self.0;
        encode_sessions(&mut encoder, &front.sessions, &PROTOCOLS)?;
        encode_gauge(
            &mut encoder,
            (
                "relays_resting",
                "Relayed sessions quiet both ways, held as data until either side speaks",
            ),
            super::rest::resting_total(),
        )?;
        let now = Instant::now();
        let mut health = Vec::new();
        for b in &front.config.cluster.backends {
            let listeners = [
                ("imap", b.imap),
                ("pop3", b.pop3),
                ("submission", b.submission),
                ("lmtp", b.lmtp),
            ];
            for (protocol, addr) in listeners {
                let Some(addr) = addr else { continue };
                let labels = BackendLabels {
                    backend: b.name.clone(),
                    site: b.site.clone(),
                    protocol,
                };
                health.push((labels, i64::from(!front.breakers.is_open(addr, now))));
            }
        }
        encode_gauges(
            &mut encoder,
            (
                "backend_up",
                "Back ends by listener: 1 while logins are sent there, 0 while its circuit breaker refuses them",
            ),
            health,
        )
    }
}
