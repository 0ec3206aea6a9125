//! Clients blocked in BLPOP, BRPOP, BLMOVE, BRPOPLPUSH and BLMPOP: who waits
//! on which key, in arrival order, and which worker to wake.
//!
//! # The protocol
//! A blocking command first tries its non-blocking form. Finding every key
//! empty, it registers the client here **while it still holds the shard
//! locks of its keys**, and its session stops running commands (the command
//! stays in the read buffer). A push to a list calls [`Blocking::signal`]
//! while it holds that key's shard lock, so a push either happened before
//! the registration (the command saw the element) or finds the client here:
//! no wake-up is ever lost. `signal` takes the first waiters of the key —
//! one per pushed element, in FIFO order — out of the registry and asks
//! their workers (through the same mailbox and `mio` waker as CLIENT KILL)
//! to run the command again. A client that then finds the list empty
//! (another client popped first) registers again, at the *front* of the
//! queues it waits on, so it keeps its turn.
//!
//! Redis serves a woken client before any later command sees the element;
//! here a non-blocking `LPOP` from another connection that lands between the
//! push and the re-run can take it first (the blocked client keeps waiting,
//! first in line). See docs/protocol.md.
//!
//! # Cost
//! A push pays one relaxed load ([`Blocking::any`]) when nobody is blocked.
//!
//! # Lock order
//! shard locks → `Blocking::inner` → a worker's inbox mutex.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

/// Why a blocked client is asked to run its command again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakeReason {
    /// A key it waits on was pushed to: try again.
    Retry,
    /// Its timeout passed, or `CLIENT UNBLOCK id [TIMEOUT]`: reply null.
    Timeout,
    /// `CLIENT UNBLOCK id ERROR`: reply `-UNBLOCKED`.
    Error,
}

/// What a blocked client waits on.
#[derive(Debug)]
struct Waiter {
    worker: usize,
    db: usize,
    keys: Vec<Vec<u8>>,
}

#[derive(Default)]
struct Inner {
    /// Blocked client ids per (database, key), first come first served.
    queues: HashMap<(usize, Vec<u8>), VecDeque<u64>>,
    waiters: HashMap<u64, Waiter>,
}

/// The registry of blocked clients (one per server).
#[derive(Default)]
pub struct Blocking {
    blocked: AtomicUsize,
    inner: Mutex<Inner>,
}

impl Blocking {
    /// True if any client is blocked: the fast path of every push.
    #[inline]
    pub fn any(&self) -> bool {
        self.blocked.load(Ordering::Relaxed) != 0
    }

    /// Clients blocked now (`INFO clients` `blocked_clients`).
    pub fn blocked_clients(&self) -> usize {
        self.blocked.load(Ordering::Relaxed)
    }

    /// Registers client `id` (served by `worker`) as waiting on `keys` of
    /// database `db`. `front`: it was woken and lost the race, so it goes
    /// back to the head of each queue.
    pub fn block(&self, id: u64, worker: usize, db: usize, keys: &[&[u8]], front: bool) {
        let mut inner = self.inner.lock();
        if inner.waiters.contains_key(&id) {
            return;
        }
        let mut owned: Vec<Vec<u8>> = Vec::with_capacity(keys.len());
        for key in keys {
            if owned.iter().any(|k| k == key) {
                continue;
            }
            let queue = inner.queues.entry((db, key.to_vec())).or_default();
            if front {
                queue.push_front(id);
            } else {
                queue.push_back(id);
            }
            owned.push(key.to_vec());
        }
        inner.waiters.insert(
            id,
            Waiter {
                worker,
                db,
                keys: owned,
            },
        );
        self.blocked.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets client `id` (timeout, CLIENT UNBLOCK, disconnect). Returns its
    /// worker if it was blocked.
    pub fn unblock(&self, id: u64) -> Option<usize> {
        let mut inner = self.inner.lock();
        let waiter = Self::remove(&mut inner, id)?;
        self.blocked.fetch_sub(1, Ordering::Relaxed);
        Some(waiter.worker)
    }

    fn remove(inner: &mut Inner, id: u64) -> Option<Waiter> {
        let waiter = inner.waiters.remove(&id)?;
        for key in &waiter.keys {
            let slot = (waiter.db, key.clone());
            if let Some(queue) = inner.queues.get_mut(&slot) {
                queue.retain(|&w| w != id);
                if queue.is_empty() {
                    inner.queues.remove(&slot);
                }
            }
        }
        Some(waiter)
    }

    /// `pushed` elements arrived at `key` of database `db`: takes up to that
    /// many waiters out of the registry, first come first served, and
    /// returns them as (worker, client id) to wake.
    pub fn signal(&self, db: usize, key: &[u8], pushed: usize) -> Vec<(usize, u64)> {
        if !self.any() {
            return Vec::new();
        }
        let mut inner = self.inner.lock();
        let mut woken = Vec::new();
        while woken.len() < pushed {
            let Some(id) = inner
                .queues
                .get(&(db, key.to_vec()))
                .and_then(|q| q.front().copied())
            else {
                break;
            };
            if let Some(waiter) = Self::remove(&mut inner, id) {
                self.blocked.fetch_sub(1, Ordering::Relaxed);
                woken.push((waiter.worker, id));
            }
        }
        woken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_are_woken_first_come_first_served_once_each() {
        let b = Blocking::default();
        assert!(!b.any());
        b.block(1, 0, 0, &[b"q", b"other"], false);
        b.block(2, 1, 0, &[b"q"], false);
        b.block(3, 0, 0, &[b"q"], false);
        assert_eq!(b.blocked_clients(), 3);
        assert_eq!(b.signal(0, b"q", 1), vec![(0, 1)]);
        // Client 1 left every queue it was in.
        assert!(b.signal(0, b"other", 1).is_empty());
        // A client that lost the race goes back to the front.
        b.block(1, 0, 0, &[b"q"], true);
        assert_eq!(b.signal(0, b"q", 2), vec![(0, 1), (1, 2)]);
        assert_eq!(b.unblock(3), Some(0));
        assert_eq!(b.unblock(3), None);
        assert!(b.signal(0, b"q", 5).is_empty());
        assert!(!b.any());
    }

    #[test]
    fn keys_of_other_databases_do_not_wake_a_client() {
        let b = Blocking::default();
        b.block(7, 0, 1, &[b"q"], false);
        assert!(b.signal(0, b"q", 1).is_empty());
        assert_eq!(b.signal(1, b"q", 1), vec![(0, 7)]);
    }
}
