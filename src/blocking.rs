//! Clients blocked in BLPOP, BRPOP, BLMOVE, BRPOPLPUSH and BLMPOP: who waits
//! on which key, in arrival order, and which worker to wake.
//!
//! # The protocol
//! A blocking command first tries its non-blocking form. Finding every key
//! empty, it registers the client here **while it still holds the shard
//! locks of its keys**, with what it wants ([`Serve`]) and its reply style,
//! and its session stops running commands (the command stays in the read
//! buffer). A push to a list (or `ZADD` to a sorted set) calls
//! `command::list::signal_ready` while it holds that key's shard lock, so a
//! push either happened before the registration (the command saw the
//! element) or finds the client here: no wake-up is ever lost.
//!
//! The pusher then **serves** the waiters of the key itself, first come
//! first served, as Redis's `serveClientsBlockedOnKey` does: still under the
//! shard lock, it pops for each waiter (logging the pop in its own WAL
//! append, so log order is memory order), renders the waiter's reply in the
//! waiter's protocol and hands it to the waiter's worker (through the same
//! mailbox and `mio` waker as CLIENT KILL) as [`WakeReason::Served`]. No
//! later command of any client can see an element a blocked client was
//! owed. A waiter whose wait cannot be served in place — `BLMOVE` and
//! `BRPOPLPUSH`, whose destination may be a shard the pusher does not hold —
//! is woken with [`WakeReason::Retry`] to run its command again; if another
//! client popped first, it registers again at the *front* of its queues,
//! keeping its turn (docs/protocol.md says so).

//! # Cost
//! A push pays one relaxed load ([`Blocking::any`]) when nobody is blocked.
//!
//! # Lock order
//! shard locks → `Blocking::inner` → a worker's inbox mutex.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::protocol::Style;

/// Why a blocked client is asked to run its command again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WakeReason {
    /// A pusher already popped for it: the command's reply, rendered in
    /// its protocol, to send as is.
    Served(Vec<u8>),
    /// A key it waits on was pushed to: try again.
    Retry,
    /// Its timeout passed, or `CLIENT UNBLOCK id [TIMEOUT]`: reply null.
    Timeout,
    /// `CLIENT UNBLOCK id ERROR`: reply `-UNBLOCKED`.
    Error,
}

/// What a blocked client wants, so that a push can serve it in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serve {
    /// BLPOP/BRPOP (`count` None: `[key, item]`) or BLMPOP (`count` Some:
    /// `[key, [items]]`), from the left end or the right.
    List { left: bool, count: Option<usize> },
    /// BZPOPMIN/BZPOPMAX (`count` None: `[key, member, score]`) or BZMPOP
    /// (`count` Some: `[key, [[member, score] ...]]`).
    ZSet { max: bool, count: Option<usize> },
}

/// What a client blocks for: how to serve it in place, and its reply style.
#[derive(Clone, Copy, Debug)]
pub struct Wants {
    /// None: it must run its command again when woken (`BLMOVE`).
    pub serve: Option<Serve>,
    pub style: Style,
}

/// A blocked client taken out of the registry to be served or woken.
#[derive(Debug)]
pub struct Woken {
    pub id: u64,
    pub worker: usize,
    /// None: it must run its command again (`BLMOVE`).
    pub serve: Option<Serve>,
    /// The style its reply must be rendered in.
    pub style: Style,
}

/// What a blocked client waits on.
#[derive(Debug)]
struct Waiter {
    worker: usize,
    db: usize,
    keys: Vec<Vec<u8>>,
    serve: Option<Serve>,
    style: Style,
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
    /// database `db` for what it `wants`. `front`: it
    /// was woken and lost the race, so it goes back to the head of each queue.
    pub fn block(&self, id: u64, worker: usize, db: usize, keys: &[&[u8]], front: bool, wants: Wants) {
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
                serve: wants.serve,
                style: wants.style,
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

    /// Takes the first client waiting on `key` of database `db` out of the
    /// registry (out of every queue it waits in), if any.
    pub fn next_waiter(&self, db: usize, key: &[u8]) -> Option<Woken> {
        if !self.any() {
            return None;
        }
        let mut inner = self.inner.lock();
        let id = inner
            .queues
            .get(&(db, key.to_vec()))
            .and_then(|q| q.front().copied())?;
        let waiter = Self::remove(&mut inner, id)?;
        self.blocked.fetch_sub(1, Ordering::Relaxed);
        Some(Woken {
            id,
            worker: waiter.worker,
            serve: waiter.serve,
            style: waiter.style,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Wants = Wants {
        serve: None,
        style: Style::Resp,
    };

    /// (worker, id) of the next waiter on `key`.
    fn next(b: &Blocking, db: usize, key: &[u8]) -> Option<(usize, u64)> {
        b.next_waiter(db, key).map(|w| (w.worker, w.id))
    }

    #[test]
    fn waiters_are_woken_first_come_first_served_once_each() {
        let b = Blocking::default();
        assert!(!b.any());
        b.block(1, 0, 0, &[b"q", b"other"], false, NONE);
        b.block(2, 1, 0, &[b"q"], false, NONE);
        b.block(3, 0, 0, &[b"q"], false, NONE);
        assert_eq!(b.blocked_clients(), 3);
        assert_eq!(next(&b, 0, b"q"), Some((0, 1)));
        // Client 1 left every queue it was in.
        assert_eq!(next(&b, 0, b"other"), None);
        // A client that lost the race goes back to the front.
        b.block(1, 0, 0, &[b"q"], true, NONE);
        assert_eq!(next(&b, 0, b"q"), Some((0, 1)));
        assert_eq!(next(&b, 0, b"q"), Some((1, 2)));
        assert_eq!(b.unblock(3), Some(0));
        assert_eq!(b.unblock(3), None);
        assert_eq!(next(&b, 0, b"q"), None);
        assert!(!b.any());
    }

    #[test]
    fn keys_of_other_databases_do_not_wake_a_client() {
        let b = Blocking::default();
        b.block(7, 0, 1, &[b"q"], false, NONE);
        assert_eq!(next(&b, 0, b"q"), None);
        assert_eq!(next(&b, 1, b"q"), Some((0, 7)));
    }
}
