//! Client threads that stop together: the scenarios run each client on a thread of its own,
//! and a client that fails raises a flag the others check between operations, so a broken
//! run ends at once instead of running out its clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::bail;

/// Fails once `deadline` has passed, naming what was still going on.
pub fn check_deadline(deadline: Instant, doing: &str) -> anyhow::Result<()> {
    if Instant::now() > deadline {
        bail!("timed out while {doing} (see --timeout)");
    }
    Ok(())
}

/// What client threads share: the flag a failing client raises so the others stop.
pub trait Clients: Send + Sync + 'static {
    fn abort(&self) -> &AtomicBool;
}

/// Runs `client(shared, i)` on `n` threads. A client that fails raises `abort`, which the
/// others check between operations, so a broken run ends instead of running out its clock.
pub fn spawn_clients<S: Clients, T: Send + 'static>(
    shared: &Arc<S>,
    n: usize,
    client: fn(&S, usize) -> anyhow::Result<T>,
) -> Vec<JoinHandle<anyhow::Result<T>>> {
    (0..n)
        .map(|i| {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let result = client(&shared, i);
                if result.is_err() {
                    shared.abort().store(true, Ordering::Relaxed);
                }
                result
            })
        })
        .collect()
}

/// Waits for every client thread; their results, or the first error (a panic is one).
pub fn join_clients<T>(threads: Vec<JoinHandle<anyhow::Result<T>>>) -> anyhow::Result<Vec<T>> {
    let mut results = Vec::with_capacity(threads.len());
    let mut first_error = None;
    for thread in threads {
        match thread.join() {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(_) => {
                first_error.get_or_insert(anyhow::anyhow!("a client thread panicked"));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(results),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flag(AtomicBool);

    impl Clients for Flag {
        fn abort(&self) -> &AtomicBool {
            &self.0
        }
    }

    #[test]
    fn a_failing_client_stops_the_others_and_its_error_is_returned() {
        let shared = Arc::new(Flag(AtomicBool::new(false)));
        let threads = spawn_clients(&shared, 3, |flag, i| {
            if i == 1 {
                bail!("client {i} failed");
            }
            // The others run until the failing one raises the flag.
            while !flag.abort().load(Ordering::Relaxed) {
                std::thread::yield_now();
            }
            Ok(i)
        });
        let e = join_clients(threads).unwrap_err();
        assert_eq!(e.to_string(), "client 1 failed");
        let ok = join_clients(spawn_clients(&shared, 2, |_, i| Ok(i * 10))).unwrap();
        assert_eq!(ok, [0, 10]);
    }
}
