//! Fixed pools of threads for the work an event loop must not do itself: password
//! verification (argon2id: tens of milliseconds and a 19 MiB work area each), and ingest (the
//! one MIME parse of a message delivered, appended or submitted).
//!
//! tokio's blocking pool would start a thread for every job in flight (up to 512 per core)
//! and end each one after 10 s without work. A burst of 32 logins left ~600 MiB resident on
//! an otherwise idle server, and ran no faster, since the cores are the limit; and the first
//! deliveries after every quiet spell paid for new threads (12 of them for 8 LMTP connections
//! on two cores) and for their allocators' first pages. Here jobs beyond the pool wait in its
//! queue; the threads, and the memory they keep, are bounded by the pool's size.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// Ingest threads per event loop: one long parse (a message of tens of megabytes) holds its
/// thread for a while, and the small ones behind it take the other.
pub const INGEST_THREADS_PER_CORE: usize = 2;
/// How long an ingest thread waits for its next parse before it gives back what it freed.
pub const INGEST_REST: Duration = Duration::from_secs(1);

pub struct Pool {
    queue: Arc<Queue>,
}

/// The jobs waiting for a thread. The threads wait on `ready` with the lock let go, so each
/// one's wait for work, and its rest, is its own.
#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// The pool was dropped: the threads end once the jobs already queued are done.
    closed: bool,
}

/// When a pool's threads hand what their jobs freed back to the system.
#[derive(Clone, Copy, Debug)]
pub enum GiveBack {
    /// After every job: a login's work area is 19 MiB, and logins come in bursts. Tens of
    /// microseconds against a login's tens of milliseconds.
    EachJob,
    /// Once a thread has waited this long for its next job: parses are small and come many a
    /// second, and a thread that gave back after each would fault the same pages in again.
    WhenIdleFor(Duration),
}

/// What a thread of the pool does next.
enum Next {
    Run(Job),
    /// No job came for the `WhenIdleFor` time.
    Rest,
    Stop,
}

impl Pool {
    /// Starts `threads` threads (at least one) named `name-N`; they end when the pool is dropped.
    pub fn start(name: &str, threads: usize, give_back: GiveBack) -> std::io::Result<Pool> {
        let queue = Arc::new(Queue::default());
        for index in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || work(&queue, give_back))?;
        }
        Ok(Pool { queue })
    }

    /// Runs `work` on the pool; `None` if the pool has stopped or `work` panicked.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.queue.state.lock().ok()?.jobs.push_back(job);
        self.queue.ready.notify_one();
        result.await.ok()
    }
}

/// A thread of the pool: takes jobs until the pool is dropped, handing back what they freed
/// as `give_back` says.
fn work(queue: &Queue, give_back: GiveBack) {
    // Nothing to give back before the first job.
    let mut rested = true;
    loop {
        let idle_for = match give_back {
            GiveBack::WhenIdleFor(quiet) if !rested => Some(quiet),
            _ => None,
        };
        match queue.next(idle_for) {
            Next::Run(job) => {
                // A panic ends that job (its caller gets None), not the thread.
                drop(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)));
                rested = matches!(give_back, GiveBack::EachJob);
                if rested {
                    crate::runtime::give_back_memory();
                }
            }
            Next::Rest => {
                crate::runtime::give_back_memory();
                rested = true;
            }
            Next::Stop => return,
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Ok(mut state) = self.queue.state.lock() {
            state.closed = true;
        }
        self.queue.ready.notify_all();
    }
}

impl Queue {
    /// The next job, waiting at most `idle_for` for one when given. The lock is held only to
    /// take a job, never while one runs or while a thread waits.
    fn next(&self, idle_for: Option<Duration>) -> Next {
        let Ok(mut state) = self.state.lock() else {
            return Next::Stop;
        };
        loop {
            if let Some(job) = state.jobs.pop_front() {
                return Next::Run(job);
            }
            if state.closed {
                return Next::Stop;
            }
            let waited = match idle_for {
                Some(quiet) => self
                    .ready
                    .wait_timeout(state, quiet)
                    .ok()
                    .map(|(s, w)| (s, w.timed_out())),
                None => self.ready.wait(state).ok().map(|s| (s, false)),
            };
            let Some((now, timed_out)) = waited else {
                return Next::Stop;
            };
            state = now;
            if timed_out && state.jobs.is_empty() && !state.closed {
                return Next::Rest;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_work_on_its_threads_and_returns_the_result() {
        let pool = Pool::start("ringmail-login", 2, GiveBack::EachJob).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let results: Vec<(u32, String)> = rt.block_on(async {
            let mut out = Vec::new();
            for i in 0..4u32 {
                out.push(
                    pool.run(move || (i * 2, std::thread::current().name().unwrap_or("").to_owned()))
                        .await
                        .unwrap(),
                );
            }
            out
        });
        assert_eq!(results.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 2, 4, 6]);
        assert!(
            results.iter().all(|r| r.1.starts_with("ringmail-login-")),
            "{results:?}"
        );
    }

    #[test]
    fn jobs_beyond_its_threads_wait_for_them_and_threads_that_rest_go_on() {
        let pool =
            Arc::new(Pool::start("ringmail-ingest", 2, GiveBack::WhenIdleFor(Duration::from_millis(5))).unwrap());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let mut names = std::collections::BTreeSet::new();
        for _round in 0..3 {
            let ran: Vec<String> = rt.block_on(async {
                let jobs: Vec<_> = (0..8)
                    .map(|_| {
                        let pool = pool.clone();
                        tokio::spawn(async move {
                            pool.run(|| {
                                std::thread::sleep(Duration::from_millis(1));
                                std::thread::current().name().unwrap_or("").to_owned()
                            })
                            .await
                        })
                    })
                    .collect();
                let mut ran = Vec::new();
                for job in jobs {
                    ran.push(job.await.unwrap().expect("the job ran"));
                }
                ran
            });
            names.extend(ran);
            // Longer than the idle time: every thread gives back what it freed, and then
            // waits for work again.
            std::thread::sleep(Duration::from_millis(30));
        }
        let expected: std::collections::BTreeSet<String> =
            ["ringmail-ingest-0", "ringmail-ingest-1"].map(String::from).into();
        assert!(names.is_subset(&expected), "{names:?}");
    }

    #[test]
    fn its_threads_end_when_it_is_dropped() {
        let threads = || {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter(|t| {
                    let comm = t.as_ref().map(|t| t.path().join("comm")).ok();
                    comm.and_then(|c| std::fs::read_to_string(c).ok())
                        .is_some_and(|name| name.starts_with("pool-ends-"))
                })
                .count()
        };
        let until = |want: usize| {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while threads() != want && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            threads()
        };
        let pool = Pool::start("pool-ends", 3, GiveBack::WhenIdleFor(Duration::from_millis(5))).unwrap();
        assert_eq!(until(3), 3);
        // Some threads rest, some wait: all of them hear that the pool is gone.
        std::thread::sleep(Duration::from_millis(20));
        drop(pool);
        assert_eq!(until(0), 0);
    }

    #[test]
    fn a_panicking_job_is_reported_and_the_pool_goes_on() {
        let pool = Pool::start("ringmail-ingest", 1, GiveBack::WhenIdleFor(Duration::from_millis(10))).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            assert_eq!(pool.run(|| -> u8 { panic!("boom") }).await, None);
            assert_eq!(pool.run(|| 7u8).await, Some(7));
        });
    }
}
