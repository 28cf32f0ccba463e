//! A server's memory, all its processes together: RSS and PSS from `/proc/PID/smaps_rollup`
//! for the process and every descendant. PSS divides shared pages among the processes that
//! map them, so it is the fair sum for a server of many processes (Dovecot); for one process
//! (ringmail) it is close to RSS. Beside it, the kernel's TCP sockets machine-wide, from
//! `/proc/net/sockstat`. Linux only; elsewhere the figures are absent.

use serde::{Deserialize, Serialize};

/// Memory of a process tree, in KiB as the kernel reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    pub processes: u32,
    pub rss_kib: u64,
    pub pss_kib: u64,
    /// Anonymous memory (heap, stacks): RSS without the file pages a server maps (LMDB's
    /// map, Dovecot's index files), which the kernel can drop and re-read.
    pub anon_kib: u64,
}

impl Memory {
    /// The tree rooted at `pid`, or `None` if that process is gone (or this is not Linux).
    pub fn of_tree(pid: u32) -> Option<Memory> {
        let mut total = Memory::default();
        for p in std::iter::once(pid).chain(descendants(pid)) {
            // A child may exit between the listing and the read: skip it.
            let Ok(text) = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")) else {
                if p == pid {
                    return None;
                }
                continue;
            };
            let (rss, pss, anon) = parse_rollup(&text);
            total.processes += 1;
            total.rss_kib += rss;
            total.pss_kib += pss;
            total.anon_kib += anon;
        }
        Some(total)
    }

    /// Bytes per session grown from `before` to `self`: (RSS, PSS, anonymous).
    pub fn per_session_since(&self, before: &Memory, sessions: u64) -> (f64, f64, f64) {
        let per = |after: u64, before: u64| {
            if sessions == 0 {
                0.0
            } else {
                (after as f64 - before as f64) * 1024.0 / sessions as f64
            }
        };
        (
            per(self.rss_kib, before.rss_kib),
            per(self.pss_kib, before.pss_kib),
            per(self.anon_kib, before.anon_kib),
        )
    }
}

/// The kernel's TCP sockets, machine-wide (both ends of a loopback connection count, and the
/// harness's own): how many are open and the buffer memory charged to them. Not what a socket
/// itself costs the kernel (its slab objects), which sockstat does not show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpSockets {
    pub in_use: u64,
    /// Socket buffer memory, KiB (the kernel counts it in pages).
    pub mem_kib: u64,
}

impl TcpSockets {
    /// Now, or `None` where `/proc/net/sockstat` cannot be read.
    pub fn now() -> Option<TcpSockets> {
        let text = std::fs::read_to_string("/proc/net/sockstat").ok()?;
        parse_sockstat(&text, page_kib())
    }
}

/// The kernel's slab memory, machine-wide, KiB (`Slab:` of /proc/meminfo): where a socket's
/// own objects live (its sock, inode, file, poll entries), which sockstat does not count.
pub fn kernel_slab_kib() -> Option<u64> {
    parse_meminfo_slab(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// `Slab:` of a /proc/meminfo text, KiB.
pub fn parse_meminfo_slab(text: &str) -> Option<u64> {
    let rest = text.lines().find_map(|l| l.strip_prefix("Slab:"))?;
    rest.split_whitespace().next()?.parse().ok()
}

/// The `TCP:` line of a `/proc/net/sockstat` text (`inuse N ... mem PAGES`).
pub fn parse_sockstat(text: &str, page_kib: u64) -> Option<TcpSockets> {
    let line = text.lines().find_map(|l| l.strip_prefix("TCP:"))?;
    let mut fields = line.split_whitespace();
    let (mut in_use, mut pages) = (None, None);
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        match name {
            "inuse" => in_use = value.parse::<u64>().ok(),
            "mem" => pages = value.parse::<u64>().ok(),
            _ => {}
        }
    }
    Some(TcpSockets {
        in_use: in_use?,
        mem_kib: pages? * page_kib,
    })
}

/// The page size in KiB, from this process's first mapping; 4 where it cannot be read.
fn page_kib() -> u64 {
    std::fs::read_to_string("/proc/self/smaps")
        .ok()
        .and_then(|text| {
            let rest = text.lines().find_map(|l| l.strip_prefix("KernelPageSize:"))?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(4)
}

/// `Rss:`, `Pss:` and `Anonymous:` of an smaps_rollup text, in KiB (0 where absent).
pub fn parse_rollup(text: &str) -> (u64, u64, u64) {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("Rss:"), field("Pss:"), field("Anonymous:"))
}

/// The parent pid from a `/proc/PID/stat` line; the command name may hold spaces and
/// parentheses, so fields are counted after its last `)`.
pub fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Every process whose chain of parents reaches `pid`.
fn descendants(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            Some((
                p,
                parse_ppid(&std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?)?,
            ))
        })
        .collect();
    tree_below(pid, &parents)
}

/// The processes below `root` in a (pid, ppid) list.
pub fn tree_below(root: u32, parents: &[(u32, u32)]) -> Vec<u32> {
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(child, _) in parents.iter().filter(|(_, ppid)| *ppid == p) {
            if !found.contains(&child) && child != root {
                found.push(child);
                frontier.push(child);
            }
        }
    }
    found
}

/// The value of the unlabelled gauge `name` on a ringmail metrics endpoint at 127.0.0.1:`port`
/// (such as a front end's `ringmail_relays_resting`), or `None` if it cannot be read.
pub fn scrape_gauge(port: u16, name: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    parse_gauge(&text, name)
}

/// `name`'s value in a Prometheus text exposition.
pub fn parse_gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gauge_is_found_by_its_whole_name() {
        let text = "# TYPE ringmail_relays_resting gauge\nringmail_relays_resting_x 7\n\
                    ringmail_relays_resting 1999\n# EOF\n";
        assert_eq!(parse_gauge(text, "ringmail_relays_resting"), Some(1999.0));
        assert_eq!(parse_gauge(text, "ringmail_relays"), None);
    }

    #[test]
    fn rollup_fields() {
        let text = "55d0c0a2e000-7ffd2d9f1000 ---p 00000000 00:00 0                  [rollup]\n\
                    Rss:               12345 kB\nPss:                6789 kB\nPss_Anon:           100 kB\n\
                    Anonymous:          120 kB\n";
        assert_eq!(parse_rollup(text), (12345, 6789, 120));
        assert_eq!(parse_rollup(""), (0, 0, 0));
    }

    #[test]
    fn sockstat_tcp_line() {
        let text = "sockets: used 10\nTCP: inuse 7 orphan 0 tw 2 alloc 9 mem 442\nUDP: inuse 0 mem 3\n";
        assert_eq!(
            parse_sockstat(text, 4),
            Some(TcpSockets {
                in_use: 7,
                mem_kib: 1768
            })
        );
        assert_eq!(parse_sockstat("sockets: used 10\n", 4), None);
        let meminfo = "MemTotal:       24000000 kB\nSlab:             123456 kB\nSReclaimable:      1000 kB\n";
        assert_eq!(parse_meminfo_slab(meminfo), Some(123_456));
        assert_eq!(parse_meminfo_slab("MemTotal: 1 kB\n"), None);
        if cfg!(target_os = "linux") {
            assert!(TcpSockets::now().is_some());
        }
    }

    #[test]
    fn ppid_after_odd_command_names() {
        assert_eq!(parse_ppid("1234 (dovecot) S 1 1234 1234 0 -1"), Some(1));
        assert_eq!(parse_ppid("77 (imap (x) y) R 1234 77 77 0"), Some(1234));
        assert_eq!(parse_ppid("garbage"), None);
    }

    #[test]
    fn whole_tree_but_not_siblings() {
        let parents = [(10, 1), (11, 10), (12, 10), (13, 11), (20, 1), (21, 20)];
        let mut below = tree_below(10, &parents);
        below.sort_unstable();
        assert_eq!(below, [11, 12, 13]);
        assert!(tree_below(13, &parents).is_empty());
    }

    #[test]
    fn growth_per_session() {
        let before = Memory {
            processes: 1,
            rss_kib: 1000,
            pss_kib: 900,
            anon_kib: 100,
        };
        let after = Memory {
            processes: 1,
            rss_kib: 3000,
            pss_kib: 2900,
            anon_kib: 1100,
        };
        assert_eq!(after.per_session_since(&before, 1000), (2048.0, 2048.0, 1024.0));
        assert_eq!(after.per_session_since(&before, 0), (0.0, 0.0, 0.0));
    }

    #[test]
    fn this_process_is_measured() {
        if cfg!(target_os = "linux") {
            let me = Memory::of_tree(std::process::id()).expect("own smaps_rollup");
            assert!(me.processes >= 1 && me.rss_kib > 0 && me.pss_kib > 0, "{me:?}");
        }
    }
}
