//! A fixed pool of threads for password verification (argon2id: tens of milliseconds and a
//! 19 MiB work area each), as many threads as event loops.
//!
//! tokio's blocking pool would start a thread for every login in flight (up to 512 per
//! core) and keep each one, with its allocator's 19 MiB arena, for 10 s after: a burst of
//! 32 logins left ~600 MiB resident on an otherwise idle server, and ran no faster, since
//! the cores are the limit. Here logins beyond the pool wait in its queue; the memory kept
//! is bounded by the pool's size.

use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

pub struct LoginPool {
    jobs: Sender<Job>,
}

impl LoginPool {
    /// Starts `threads` threads (at least one); they end when the pool is dropped.
    pub fn start(threads: usize) -> std::io::Result<LoginPool> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("ringmail-login-{index}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job, never while running it.
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        // A panic ends that job (its caller gets None), not the thread.
                        Ok(job) => drop(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))),
                        Err(_) => return,
                    }
                    // What the login freed goes back now, not when this thread next allocates
                    // (perhaps never, after a burst): tens of microseconds against a login's
                    // tens of milliseconds. The work area stays; it is in use, not freed.
                    crate::runtime::give_back_memory();
                })?;
        }
        Ok(LoginPool { jobs })
    }

    /// Runs `work` on the pool; `None` if the pool has stopped or `work` panicked.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.jobs.send(job).ok()?;
        result.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_work_on_its_threads_and_returns_the_result() {
        let pool = LoginPool::start(2).unwrap();
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
    fn a_panicking_job_is_reported_and_the_pool_goes_on() {
        let pool = LoginPool::start(1).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            assert_eq!(pool.run(|| -> u8 { panic!("boom") }).await, None);
            assert_eq!(pool.run(|| 7u8).await, Some(7));
        });
    }
}
