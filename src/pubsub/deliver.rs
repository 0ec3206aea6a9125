//! Per-worker mailboxes and subscription tables: how a message published
//! on one worker reaches clients served by another.
//!
//! A publisher posts one shared [`Mail`] to the [`Mailbox`] of every worker
//! the registry names. Posting is a short mutex section plus one atomic
//! swap; only the post that finds the mailbox empty wakes the worker (its
//! `mio` waker), so a burst of messages costs one wake-up per batch the
//! worker drains, not one per message. A worker drains its mailbox at the
//! start of every pass, in posting order, which keeps each publisher's
//! messages in order for every subscriber.
//!
//! The [`LocalTable`] of a worker maps channels and patterns to the ids of
//! *its own* clients; only that worker's thread touches it (the mutex is
//! never contended: commands that change it run on the same thread).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

/// A published message, shared by every worker that delivers it.
#[derive(Debug)]
pub struct Message {
    /// SPUBLISH (delivered as `smessage` to shard subscribers only).
    pub shard: bool,
    pub channel: Vec<u8>,
    pub payload: Vec<u8>,
}

/// What a worker finds in its mailbox.
#[derive(Debug, Clone)]
pub enum Mail {
    /// A message for this worker's subscribers of its channel or patterns.
    Message(Arc<Message>),
    /// A MONITOR line (without the leading `+`) for this worker's monitors.
    Monitor(Arc<[u8]>),
    /// A client-side caching invalidation for one client of this worker:
    /// the keys, or None for "everything" (FLUSHALL/FLUSHDB).
    Invalidate {
        client: u64,
        keys: Option<Arc<Vec<Vec<u8>>>>,
    },
}

/// Wakes a worker's poller (installed by the pool once the workers exist).
pub type Wake = Box<dyn Fn() + Send + Sync>;

/// One worker's incoming mail; see the module doc.
#[derive(Default)]
pub struct Mailbox {
    queue: Mutex<Vec<Mail>>,
    pending: AtomicBool,
    wake: OnceLock<Wake>,
}

impl Mailbox {
    /// Installs the worker's wake-up (once).
    pub fn set_wake(&self, wake: Wake) {
        let _ = self.wake.set(wake);
    }

    /// Queues `mail`; wakes the worker if its mailbox was empty.
    pub fn post(&self, mail: Mail) {
        self.queue.lock().push(mail);
        if !self.pending.swap(true, Ordering::AcqRel) {
            if let Some(wake) = self.wake.get() {
                wake();
            }
        }
    }

    /// Moves everything queued into `into` (in posting order). False, after
    /// one atomic load, when nothing is queued.
    pub fn take(&self, into: &mut Vec<Mail>) -> bool {
        if !self.pending.load(Ordering::Acquire) {
            return false;
        }
        // Cleared before the queue is taken: a post that lands after the
        // take sets it again and wakes the worker.
        self.pending.store(false, Ordering::Release);
        let mut queue = self.queue.lock();
        if into.is_empty() {
            std::mem::swap(&mut *queue, into);
        } else {
            into.append(&mut queue);
        }
        true
    }
}

/// A worker's own subscribers, by channel, shard channel and pattern, and
/// its monitors (client ids).
#[derive(Default, Debug)]
pub struct LocalTable {
    pub channels: HashMap<Vec<u8>, Vec<u64>>,
    pub shard_channels: HashMap<Vec<u8>, Vec<u64>>,
    pub patterns: Vec<(Vec<u8>, Vec<u64>)>,
    pub monitors: Vec<u64>,
}

impl LocalTable {
    /// The shard channels' lists (SSUBSCRIBE) or the plain channels'.
    fn channels_mut(&mut self, shard: bool) -> &mut HashMap<Vec<u8>, Vec<u64>> {
        if shard {
            &mut self.shard_channels
        } else {
            &mut self.channels
        }
    }

    /// Adds client `id` to `channel`'s list.
    pub fn add_channel(&mut self, channel: &[u8], id: u64, shard: bool) {
        let map = self.channels_mut(shard);
        map.entry(channel.to_vec()).or_default().push(id);
    }

    /// Removes client `id` from `channel`'s list.
    pub fn remove_channel(&mut self, channel: &[u8], id: u64, shard: bool) {
        let map = self.channels_mut(shard);
        if let Some(ids) = map.get_mut(channel) {
            ids.retain(|&c| c != id);
            if ids.is_empty() {
                map.remove(channel);
            }
        }
    }

    /// Adds client `id` to `pattern`'s list.
    pub fn add_pattern(&mut self, pattern: &[u8], id: u64) {
        match self.patterns.iter_mut().find(|(p, _)| p == pattern) {
            Some((_, ids)) => ids.push(id),
            None => self.patterns.push((pattern.to_vec(), vec![id])),
        }
    }

    /// Removes client `id` from `pattern`'s list.
    pub fn remove_pattern(&mut self, pattern: &[u8], id: u64) {
        if let Some(at) = self.patterns.iter().position(|(p, _)| p == pattern) {
            self.patterns[at].1.retain(|&c| c != id);
            if self.patterns[at].1.is_empty() {
                self.patterns.swap_remove(at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_burst_of_posts_wakes_the_worker_once_and_keeps_order() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let mailbox = Mailbox::default();
        let counter = Arc::clone(&wakes);
        mailbox.set_wake(Box::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        }));
        for i in 0..10u8 {
            mailbox.post(Mail::Monitor(Arc::from(vec![i])));
        }
        assert_eq!(wakes.load(Ordering::Relaxed), 1);
        let mut got = Vec::new();
        assert!(mailbox.take(&mut got));
        let order: Vec<u8> = got
            .iter()
            .map(|m| match m {
                Mail::Monitor(line) => line[0],
                _ => 255,
            })
            .collect();
        assert_eq!(order, (0..10).collect::<Vec<u8>>());
        assert!(!mailbox.take(&mut got));
        mailbox.post(Mail::Monitor(Arc::from(vec![1])));
        assert_eq!(wakes.load(Ordering::Relaxed), 2);
    }
}
