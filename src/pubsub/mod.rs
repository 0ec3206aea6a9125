//! Pub/Sub across workers: who is subscribed where, and how a message gets
//! from a publisher's worker to every subscriber's worker.
//!
//! Three layers, each with one job:
//! - [`registry::Registry`] (server-wide, read-mostly): per channel and
//!   pattern, how many subscribers each *worker* has. A publish reads it to
//!   get the receiver count and the workers to mail.
//! - [`deliver::LocalTable`] (one per worker): per channel and pattern, the
//!   ids of that worker's own clients.
//! - [`deliver::Mailbox`] (one per worker): messages waiting for the
//!   worker's next pass, woken once per batch.
//!
//! A client's own subscriptions live in its [`Subscriptions`] (in
//! `ClientState`), which the subscribe commands change together with the
//! two tables. A client that never subscribes costs nothing: no table holds
//! it and a publish with no subscriber reads one shard of the registry.
//!
//! MONITOR lines and client-side caching invalidations travel through the
//! same mailboxes ([`deliver::Mail`]).

pub mod deliver;
pub mod registry;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::protocol::{Replies, Style};
use deliver::{LocalTable, Mail, Mailbox, Message};
use registry::Registry;

/// A client's subscriptions (empty for clients that never subscribe: three
/// empty sets allocate nothing).
#[derive(Debug, Default)]
pub struct Subscriptions {
    pub channels: HashSet<Vec<u8>>,
    pub patterns: HashSet<Vec<u8>>,
    pub shard_channels: HashSet<Vec<u8>>,
}

impl Subscriptions {
    /// The shard channels (SSUBSCRIBE) or the plain channels.
    fn channels_mut(&mut self, shard: bool) -> &mut HashSet<Vec<u8>> {
        if shard {
            &mut self.shard_channels
        } else {
            &mut self.channels
        }
    }

    /// Channels plus patterns: the count SUBSCRIBE and PSUBSCRIBE replies
    /// carry (Redis 7.0's `clientSubscriptionsCount`).
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// True if subscribed to anything (Redis's `CLIENT_PUBSUB` flag): a
    /// RESP2 client may then only send the pub/sub commands.
    pub fn any(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shard_channels.is_empty())
    }
}

/// The pub/sub hub of a server (in `ServerState`).
pub struct PubSub {
    pub registry: Registry,
    mailboxes: Vec<Mailbox>,
    locals: Vec<Mutex<LocalTable>>,
    /// Clients in MONITOR mode, and how many on each worker.
    monitors: AtomicUsize,
    monitor_workers: Mutex<Vec<usize>>,
}

impl PubSub {
    /// A hub for `workers` workers.
    pub fn new(workers: usize) -> PubSub {
        let workers = workers.max(1);
        PubSub {
            registry: Registry::new(workers),
            mailboxes: (0..workers).map(|_| Mailbox::default()).collect(),
            locals: (0..workers).map(|_| Mutex::new(LocalTable::default())).collect(),
            monitors: AtomicUsize::new(0),
            monitor_workers: Mutex::new(vec![0; workers]),
        }
    }

    fn worker(&self, worker: usize) -> usize {
        worker.min(self.mailboxes.len() - 1)
    }

    /// Worker `worker`'s mailbox (the pool installs its wake-up).
    pub fn mailbox(&self, worker: usize) -> &Mailbox {
        &self.mailboxes[self.worker(worker)]
    }

    /// Worker `worker`'s table of its own subscribers.
    pub fn local(&self, worker: usize) -> &Mutex<LocalTable> {
        &self.locals[self.worker(worker)]
    }

    /// Subscribes client `id` of `worker` to `channel`. False if it already was.
    pub fn subscribe(
        &self,
        subs: &mut Subscriptions,
        worker: usize,
        id: u64,
        channel: &[u8],
        shard: bool,
    ) -> bool {
        if !subs.channels_mut(shard).insert(channel.to_vec()) {
            return false;
        }
        let worker = self.worker(worker);
        self.locals[worker].lock().add_channel(channel, id, shard);
        self.registry.add_channel(channel, worker, shard);
        true
    }

    /// Unsubscribes client `id` from `channel`. False if it was not subscribed.
    pub fn unsubscribe(
        &self,
        subs: &mut Subscriptions,
        worker: usize,
        id: u64,
        channel: &[u8],
        shard: bool,
    ) -> bool {
        if !subs.channels_mut(shard).remove(channel) {
            return false;
        }
        let worker = self.worker(worker);
        self.locals[worker].lock().remove_channel(channel, id, shard);
        self.registry.remove_channel(channel, worker, shard);
        true
    }

    /// Subscribes client `id` to `pattern`. False if it already was.
    pub fn psubscribe(&self, subs: &mut Subscriptions, worker: usize, id: u64, pattern: &[u8]) -> bool {
        if !subs.patterns.insert(pattern.to_vec()) {
            return false;
        }
        let worker = self.worker(worker);
        self.locals[worker].lock().add_pattern(pattern, id);
        self.registry.add_pattern(pattern, worker);
        true
    }

    /// Unsubscribes client `id` from `pattern`. False if it was not subscribed.
    pub fn punsubscribe(&self, subs: &mut Subscriptions, worker: usize, id: u64, pattern: &[u8]) -> bool {
        if !subs.patterns.remove(pattern) {
            return false;
        }
        let worker = self.worker(worker);
        self.locals[worker].lock().remove_pattern(pattern, id);
        self.registry.remove_pattern(pattern, worker);
        true
    }

    /// Drops every subscription of a client (disconnect, RESET).
    pub fn unsubscribe_all(&self, subs: &mut Subscriptions, worker: usize, id: u64) {
        if !subs.any() {
            return;
        }
        let worker = self.worker(worker);
        let subs = std::mem::take(subs);
        let mut local = self.locals[worker].lock();
        for channel in &subs.channels {
            local.remove_channel(channel, id, false);
            self.registry.remove_channel(channel, worker, false);
        }
        for channel in &subs.shard_channels {
            local.remove_channel(channel, id, true);
            self.registry.remove_channel(channel, worker, true);
        }
        for pattern in &subs.patterns {
            local.remove_pattern(pattern, id);
            self.registry.remove_pattern(pattern, worker);
        }
    }

    /// PUBLISH / SPUBLISH: mails the message to every worker with a
    /// receiver and returns the number of receivers at this moment.
    pub fn publish(&self, channel: &[u8], payload: &[u8], shard: bool) -> usize {
        let targets = self.registry.targets(channel, shard);
        if targets.receivers == 0 {
            return 0;
        }
        let message = Arc::new(Message {
            shard,
            channel: channel.to_vec(),
            payload: payload.to_vec(),
        });
        for worker in targets.workers {
            self.mailboxes[worker].post(Mail::Message(Arc::clone(&message)));
        }
        targets.receivers
    }

    /// Mails an invalidation to client `client` served by `worker`.
    pub fn post(&self, worker: usize, mail: Mail) {
        self.mailboxes[self.worker(worker)].post(mail);
    }

    /// True if any client is in MONITOR mode: one relaxed load per command.
    #[inline]
    pub fn monitoring(&self) -> bool {
        self.monitors.load(Ordering::Relaxed) != 0
    }

    /// Puts client `id` of `worker` in MONITOR mode.
    pub fn add_monitor(&self, worker: usize, id: u64) {
        let worker = self.worker(worker);
        self.locals[worker].lock().monitors.push(id);
        self.monitor_workers.lock()[worker] += 1;
        self.monitors.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes client `id` of `worker` out of MONITOR mode.
    pub fn remove_monitor(&self, worker: usize, id: u64) {
        let worker = self.worker(worker);
        let mut local = self.locals[worker].lock();
        let before = local.monitors.len();
        local.monitors.retain(|&m| m != id);
        if local.monitors.len() < before {
            let mut counts = self.monitor_workers.lock();
            counts[worker] = counts[worker].saturating_sub(1);
            self.monitors.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Sends one MONITOR line to every worker with a monitor.
    pub fn feed_monitors(&self, line: Vec<u8>) {
        let line: Arc<[u8]> = Arc::from(line);
        let counts = self.monitor_workers.lock().clone();
        for (worker, n) in counts.into_iter().enumerate() {
            if n > 0 {
                self.mailboxes[worker].post(Mail::Monitor(Arc::clone(&line)));
            }
        }
    }
}

/// Writes a delivered message: `message`/`smessage` (3 elements) or
/// `pmessage` (4) — a RESP3 push, a RESP2 array, or text lines.
pub fn encode_message(out: &mut Replies, message: &Message, pattern: Option<&[u8]>) {
    match pattern {
        Some(pattern) => {
            out.push(4);
            out.bulk(b"pmessage");
            out.bulk(pattern);
        }
        None => {
            out.push(3);
            out.bulk(if message.shard { b"smessage" } else { b"message" });
        }
    }
    out.bulk(&message.channel);
    out.bulk(&message.payload);
}

/// The style pushes to a client are written in: that of the command that
/// subscribed (text stays text), RESP3 after `HELLO 3`.
pub fn push_style(base: Option<Style>, resp3: bool) -> Style {
    base.unwrap_or(Style::Resp).with_resp3(resp3)
}
