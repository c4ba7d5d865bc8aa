//! Giving memory back to the system after a crowd of sockets leaves.
//!
//! Each socket costs the connector about 20 KiB while it is open. When they close, the memory is
//! freed but glibc's allocator keeps the pages in its arenas for reuse: after 19,936 sockets
//! closed, the resident size stayed at 421 to 430 MB while the live heap was about 5 MB
//! (`malloc_stats`). That is not a leak (new sockets reuse it), but it is what the instance
//! appears to need, what memory alerts and autoscaling see, and what a later spike of another
//! kind comes on top of.
//!
//! The fix is `malloc_trim(0)` once a crowd has left: glibc walks its arenas and returns every
//! free page to the kernel (`MADV_DONTNEED`), not only the top of each heap. It is triggered by
//! the socket count, not by a timer, so an idle or steady connector does no work at all:
//! - [`Crowd`] counts live sockets and remembers the peak since the last trim. A trim is due
//!   when at least [`MIN_RELEASED`] sockets have closed since that peak and at most half of it
//!   remain; the peak then restarts from the sockets still open, so a crowd leaving slowly
//!   costs a round of trims per halving and a connector whose count swings by less than
//!   [`MIN_RELEASED`] never trims;
//! - the task [`MemoryRelease::run`] sleeps on a [`Notify`]; when a trim is due it trims on a
//!   blocking thread, [`SETTLE`] later and then again every [`SETTLE`] for as long as a trim
//!   returns at least [`WORTHWHILE_KIB`] (memory keeps being freed for a few seconds after the
//!   disconnect handlers ran; see `worth_another_round`).
//!
//! Measured with the benchmark (`--only connections`, BENCHMARKS.md finding 5): 428 MB with
//! 19,936 sockets, under 60 MB 2.0 to 6.0 s after the last one closed and 19.2 to 20.4 MB 10 s
//! after; per-socket and idle figures unchanged (20.4 KiB, 11 MB). The cost: `malloc_trim` holds
//! each arena's lock while it walks it, so a thread allocating from that arena waits. The first
//! round after 20,000 sockets took 0.09 to 0.4 s, and `/status` during the closing was no worse
//! than without trimming; on a machine saturated by other builds it took up to 2.7 s, and
//! `/status` then answered in up to 2.6 s (0.7 s without trimming).
//!
//! Alternatives measured and not taken: `MALLOC_TRIM_THRESHOLD_` and `MALLOC_ARENA_MAX=2`
//! (glibc then returns only the free space at the top of a heap, and the sockets' freed memory is
//! spread through it: 427 MB after 30 s); jemalloc 5.3 with background purging (memory back in
//! 6.8 s, but 21.5 KiB per socket and 14.5 MB idle, against targets of 20 KiB and 15 MB); a
//! single trim a second after the crowd left (91 to 135 MB after 30 s: what is freed after it
//! stays). Where the allocator is not glibc's there is nothing to call and the task only counts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Fewest sockets that must have closed since the peak before a trim: below this the memory at
/// stake (about 20 KiB a socket, so 20 MB) is not worth a walk of the heap.
pub const MIN_RELEASED: usize = 1_000;

/// How long a trim waits after it became due, so that the rest of a burst of disconnections
/// (a load balancer draining, a network partition) is freed first; also the time between rounds.
pub const SETTLE: Duration = Duration::from_secs(1);

/// The socket count the trigger reads: live sockets, and the peak since the last trim.
#[derive(Debug, Default)]
pub struct Crowd {
    live: usize,
    peak: usize,
    /// A trim is due and the task has been woken (so later closes do not wake it again).
    due: bool,
}

impl Crowd {
    pub fn opened(&mut self) {
        self.live += 1;
        self.peak = self.peak.max(self.live);
    }

    /// Counts a closed socket; true when this close makes a trim due (once per trim).
    pub fn closed(&mut self) -> bool {
        self.live = self.live.saturating_sub(1);
        let released = self.peak - self.live;
        if !self.due && released >= MIN_RELEASED && self.live <= self.peak / 2 {
            self.due = true;
            return true;
        }
        false
    }

    /// The trim is starting: what closes from now on counts towards the next one.
    pub fn trimming(&mut self) {
        self.peak = self.live;
        self.due = false;
    }

    pub fn live(&self) -> usize {
        self.live
    }
}

/// The connector's trigger and the task that trims; shared by the socket handlers.
#[derive(Default)]
pub struct MemoryRelease {
    crowd: Mutex<Crowd>,
    wake: Notify,
}

impl MemoryRelease {
    pub fn socket_opened(&self) {
        self.lock().opened();
    }

    pub fn socket_closed(&self) {
        if self.lock().closed() {
            self.wake.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Crowd> {
        // The counts stay meaningful even if a holder panicked: take them as they are.
        self.crowd.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Trims after each crowd that leaves, until `shutdown` fires.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
            }
            let sockets = {
                let mut crowd = self.lock();
                crowd.trimming();
                crowd.live()
            };
            for round in 1..=MAX_ROUNDS {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(SETTLE) => {}
                }
                let started = Instant::now();
                let Ok(released) = tokio::task::spawn_blocking(trim_and_measure).await else {
                    tracing::warn!("memory trim did not run");
                    break;
                };
                tracing::info!(
                    sockets,
                    round,
                    released_kib = released,
                    took_ms = started.elapsed().as_millis() as u64,
                    "returned freed memory to the system after sockets closed"
                );
                if !worth_another_round(released) {
                    break;
                }
            }
        }
    }
}

/// A trim round that returned less than this (KiB of resident memory) ends the rounds.
pub const WORTHWHILE_KIB: u64 = 8 * 1024;

/// Most trim rounds after one crowd.
pub const MAX_ROUNDS: usize = 8;

/// Whether what a round returned (`None`: not known) calls for another round.
///
/// Memory keeps being freed for a while after the last socket's disconnect handler has run
/// (likely the bus dropping each conversation's subscription as its unsubscription is
/// processed, and engineioxide's per-connection tasks ending after the handler; not traced):
/// measured, one trim a second after a crowd
/// of 19,936 left took the RSS from 429 to 149 MB, and a trim some seconds later to 23 MB. So
/// rounds continue, [`SETTLE`] apart, for as long as they pay.
fn worth_another_round(released_kib: Option<u64>) -> bool {
    released_kib.is_some_and(|kib| kib >= WORTHWHILE_KIB)
}

/// Trims, and returns how much resident memory that gave back (KiB), if the platform says.
fn trim_and_measure() -> Option<u64> {
    let before = resident_kib();
    trim();
    Some(before?.saturating_sub(resident_kib()?))
}

/// This process's resident size (`VmRSS`) in KiB, where `/proc` exists.
fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Returns free heap pages to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: `malloc_trim` takes no pointer and touches only glibc's own allocator state, under
    // the arenas' locks, so it is sound to call from any thread while others allocate.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators (musl's, or another platform's) have no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn crowd_of(open: usize) -> Crowd {
        let mut crowd = Crowd::default();
        for _ in 0..open {
            crowd.opened();
        }
        crowd
    }

    /// Closes `n` sockets; how many of the closes made a trim due.
    fn close(crowd: &mut Crowd, n: usize) -> usize {
        (0..n).filter(|_| crowd.closed()).count()
    }

    #[test]
    fn a_crowd_leaving_makes_one_trim_due_at_half() {
        let mut crowd = crowd_of(20_000);
        assert_eq!(close(&mut crowd, 9_999), 0);
        assert_eq!(close(&mut crowd, 1), 1, "due at half the peak");
        assert_eq!(close(&mut crowd, 10_000), 0, "already due: no second wake");
    }

    #[test]
    fn after_a_trim_the_next_needs_another_halving() {
        let mut crowd = crowd_of(20_000);
        assert_eq!(close(&mut crowd, 12_000), 1);
        crowd.trimming();
        // 8,000 open: due again at 4,000.
        assert_eq!(close(&mut crowd, 3_999), 0);
        assert_eq!(close(&mut crowd, 1), 1);
        crowd.trimming();
        // The last 4,000 leave: one more trim returns their memory too.
        assert_eq!(close(&mut crowd, 4_000), 1);
        crowd.trimming();
        assert_eq!(crowd.live(), 0);
    }

    #[test]
    fn small_swings_never_trim() {
        let mut crowd = crowd_of(1_500);
        assert_eq!(close(&mut crowd, 999), 0, "fewer than MIN_RELEASED closed");
        // Back up and down again around the same level: the peak does not move.
        for _ in 0..999 {
            crowd.opened();
        }
        assert_eq!(close(&mut crowd, 999), 0);
        // A few sockets coming and going all day never trims either.
        let mut small = crowd_of(10);
        for _ in 0..10_000 {
            small.opened();
            assert!(!small.closed());
        }
    }

    #[test]
    fn a_crowd_that_stays_above_half_does_not_trim() {
        let mut crowd = crowd_of(20_000);
        assert_eq!(
            close(&mut crowd, 9_000),
            0,
            "11,000 still open: reuse, not trim"
        );
    }

    #[test]
    fn rounds_continue_while_they_pay() {
        assert!(worth_another_round(Some(120 * 1024)));
        assert!(worth_another_round(Some(WORTHWHILE_KIB)));
        assert!(!worth_another_round(Some(WORTHWHILE_KIB - 1)));
        assert!(!worth_another_round(None), "unknown: one round only");
    }

    #[test]
    fn the_resident_size_is_read() {
        let kib = resident_kib().expect("/proc/self/status has VmRSS on Linux");
        assert!(kib > 100, "{kib} KiB");
    }

    #[test]
    fn the_count_never_goes_below_zero() {
        let mut crowd = Crowd::default();
        assert!(!crowd.closed());
        assert_eq!(crowd.live(), 0);
    }
}
