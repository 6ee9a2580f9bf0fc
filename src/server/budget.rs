//! The byte budget of answers built but not yet sent.
//!
//! A client that asks for a large answer (a year of history at one-minute
//! steps is megabytes) and never reads it would otherwise keep that answer
//! in memory until its write times out; a few hundred such clients were
//! hundreds of megabytes. Every built answer larger than `SMALL` holds its
//! size from this budget until the front has written it (or given up on the
//! client); one that does not fit is replaced by a small 503 with
//! `Retry-After`, so memory stays bounded whatever clients do. Small answers
//! (`/healthz`, errors, the 503 itself) and bytes compiled into the binary
//! (the embedded dashboard) cost nothing and are never refused. Answers from
//! the history store hold `BUILD_ESTIMATE` while they are built, so a flood
//! of them is refused before any is built, not after.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Answers up to this size are not counted (at most one per connection).
pub const SMALL: usize = 32 * 1024;
/// Bytes of large answers that may wait for their clients at once.
pub const DEFAULT_BYTES: usize = 8 * 1024 * 1024;
/// Taken while an answer from the history store is built (its size is not
/// known before): at most `DEFAULT_BYTES / BUILD_ESTIMATE` (16) such
/// requests are under way at once, beyond which they are refused unbuilt.
pub const BUILD_ESTIMATE: usize = 512 * 1024;

/// Shared by every connection of one server.
#[derive(Debug)]
pub struct Budget {
    cap: usize,
    used: Arc<AtomicUsize>,
}

impl Budget {
    pub fn new(cap: usize) -> Self {
        Budget { cap, used: Arc::new(AtomicUsize::new(0)) }
    }

    /// Takes `n` bytes when they fit (an answer larger than the whole
    /// budget fits only an empty one). None when over budget.
    pub fn take(&self, n: usize) -> Option<Held> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            if used != 0 && used.saturating_add(n) > self.cap {
                return None;
            }
            match self.used.compare_exchange_weak(
                used,
                used + n,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Held { n, used: Arc::clone(&self.used) }),
                Err(now) => used = now,
            }
        }
    }

    /// Bytes held now (for tests and metrics).
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// Bytes taken from a budget, given back when dropped (when the answer
/// that holds them has been written, or abandoned).
#[derive(Debug)]
pub struct Held {
    n: usize,
    used: Arc<AtomicUsize>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.used.fetch_sub(self.n, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_held_until_dropped_and_an_oversize_answer_needs_an_empty_budget() {
        let b = Budget::new(100);
        let a = b.take(60).expect("fits");
        assert!(b.take(50).is_none(), "60 + 50 > 100");
        let c = b.take(40).expect("fits exactly");
        assert_eq!(b.used(), 100);
        drop(a);
        drop(c);
        assert_eq!(b.used(), 0);
        let big = b.take(500).expect("alone, an oversize answer still goes out");
        assert!(b.take(1).is_none());
        drop(big);
        assert_eq!(b.used(), 0);
    }
}
