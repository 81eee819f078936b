//! Work at a lower CPU priority. Background work (verifying and storing
//! what a peer sends, reading what a peer fetches, and indexing) runs
//! lowest: when the cores are busy, people waiting for an answer (a search,
//! an admin call) go first; when nobody asks, background work has every
//! core. Searches the caches cannot answer are computed on a pool of their
//! own at people's priority, one per core at a time: the others wait
//! without taking a share of the cores, so a search answered from memory in
//! a fraction of a millisecond finds a core quickly.
//!
//! On Linux a thread's nice value is its own (and inherited by the threads it
//! starts, such as tantivy's indexing and merging threads), so the pool's
//! threads and the indexer lower theirs once, at start. Elsewhere nothing
//! changes. A process cannot raise its priority back without privileges,
//! which is why background work has threads of its own rather than
//! borrowing tokio's blocking pool.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::oneshot;

/// How much lower than its starter's a background thread's priority is
/// (nice values run from -20 to 19; 0 is the default): 10 lower, a busy
/// normal thread gets about nine tenths of a shared core.
pub const BACKGROUND: i32 = 10;

/// How much lower the computation of a search is: not at all. Measured 5
/// lower, the answers from memory got faster (p99 16.5 -> 6.2 ms in the
/// benchmark's mix) but the new searches much slower (p50 26 -> 79 ms): a
/// sync's network work runs on tokio's threads at the normal priority, and
/// outranked them.
pub const COMPUTED_SEARCHES: i32 = 0;

/// Lowers the calling thread's CPU priority to background work's (Linux
/// only).
pub fn lower_this_thread() {
    lower_this_thread_by(BACKGROUND);
}

fn lower_this_thread_by(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // On Linux nice() changes the calling thread only. Failing leaves
        // the priority as it was, which is harmless.
        // SAFETY: nice only reads its integer argument.
        let _ = unsafe { libc::nice(nice) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// Turns transparent huge pages off for this process, all its threads
/// (Linux only): call it first thing in `main`.
///
/// Where the kernel hands out 2 MiB pages to memory that asks for them, the
/// allocator's arenas get them: each time it gives unused memory back and
/// touches it again, the kernel zeroes a whole 2 MiB page, for a search that
/// needed a few kilobytes. Measured with the benchmark's probe, that zeroing
/// was a tenth of the time of a search no cache answers. RocksDB's guide
/// also advises against transparent huge pages (latency spikes).
pub fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        // Failing (an old kernel) leaves things as they were: harmless.
        // prctl reads its arguments as unsigned longs, and refuses this
        // option unless the last three are zero.
        let (on, zero): (libc::c_ulong, libc::c_ulong) = (1, 0);
        // SAFETY: prctl with PR_SET_THP_DISABLE only reads its integers.
        let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, on, zero, zero, zero) };
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A pool of threads, one per core, each `nice` lower than its starter
/// (background work's pool, and the pool computing searches).
pub struct Background {
    jobs: mpsc::Sender<Job>,
}

/// The pool dropped a job: its thread panicked, or the node is stopping.
#[derive(Debug, thiserror::Error)]
#[error("background work did not finish (see the log)")]
pub struct Dropped;

impl Background {
    /// A pool whose threads are `nice` lower than the caller
    /// (`BACKGROUND`, `COMPUTED_SEARCHES`).
    pub fn new(name: &str, nice: i32) -> Background {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    lower_this_thread_by(nice);
                    loop {
                        // The lock is held only while waiting for a job.
                        let job = match queue.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                            Ok(job) => job,
                            // The pool was dropped: the node stopped.
                            Err(_) => return,
                        };
                        // A panicking job drops its answer (its caller gets
                        // `Dropped`); the thread goes on.
                        if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
                            tracing::error!("background work panicked");
                        }
                    }
                })
                .expect("spawning a thread");
        }
        Background { jobs }
    }

    /// Queues `f` on the pool at once (not when the returned future is
    /// first polled); the future gives its result.
    pub fn spawn<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Pending<T> {
        let (tx, rx) = oneshot::channel();
        let _ = self.jobs.send(Box::new(move || {
            let _ = tx.send(f());
        }));
        Pending(rx)
    }

    /// Runs `f` on the pool and waits for its result, blocking the calling
    /// thread (not for an async task: use `spawn`).
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Dropped> {
        let (tx, rx) = mpsc::sync_channel(1);
        let _ = self.jobs.send(Box::new(move || {
            let _ = tx.send(f());
        }));
        rx.recv().map_err(|_| Dropped)
    }
}

/// The result of work queued on the pool.
pub struct Pending<T>(oneshot::Receiver<T>);

impl<T> Future for Pending<T> {
    type Output = Result<T, Dropped>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.map_err(|_| Dropped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn transparent_huge_pages_are_turned_off() {
        let thp = || {
            std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("THP_enabled:").map(|v| v.trim().to_string()))
        };
        // Kernels before 5.0 do not say.
        if thp().is_none() {
            return;
        }
        no_transparent_huge_pages();
        assert_eq!(thp().as_deref(), Some("0"));
    }

    #[tokio::test]
    async fn work_runs_at_lower_priorities_and_a_panic_is_an_error() {
        let pool = Background::new("test-background", BACKGROUND);
        let searches = Background::new("test-searches", COMPUTED_SEARCHES);
        #[cfg(target_os = "linux")]
        {
            // SAFETY: getpriority only reads its integer arguments.
            let nice = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
            let here = nice();
            let there = pool.spawn(nice).await.unwrap();
            assert_eq!(there, (here + BACKGROUND).min(19));
            // Searches computed: at their caller's priority.
            let computed = searches.run(nice).unwrap();
            assert_eq!(computed, (here + COMPUTED_SEARCHES).min(19));
            assert_eq!(nice(), here, "the caller's priority is unchanged");
        }
        assert!(pool.spawn(|| panic!("on purpose")).await.is_err());
        assert!(searches.run(|| panic!("on purpose")).is_err());
        // The pools still work after a panic.
        assert_eq!(pool.spawn(|| 2 + 2).await.unwrap(), 4);
        assert_eq!(searches.run(|| 2 + 2).unwrap(), 4);
    }
}
