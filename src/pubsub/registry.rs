//! The server-wide registry of *which workers* have subscribers for each
//! channel, shard channel and pattern, with a count per worker.
//!
//! It answers the two questions a `PUBLISH` asks — how many receivers (the
//! reply) and which workers' mailboxes get the message — without knowing
//! any client. Channels are spread over [`SHARDS`] read-mostly locks by
//! hash, so publishers on different channels never share a lock, and a
//! publisher on a channel takes only a read lock. Patterns are few in
//! practice and live in one list behind their own lock, skipped entirely
//! (one relaxed load) while there are none.
//!
//! Lock order: a registry lock is taken alone, or before a worker's
//! mailbox mutex, and never while a shard lock of the store is held:
//! PUBLISH is keyless, and keyspace notifications are published after the
//! store's locks are released (see `crate::notify`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;

use crate::store::glob_match;

/// Channel-map shards: enough that publishers on different channels rarely
/// meet on one lock's cache line.
const SHARDS: usize = 32;

/// Subscribers per worker (index = worker).
type Counts = Vec<u32>;

/// Where a publish must go: the receiver count and the workers to mail.
#[derive(Debug, Default)]
pub struct Targets {
    /// Receivers at publish time (a client subscribed to the channel and to
    /// a matching pattern counts twice, as in Redis).
    pub receivers: usize,
    /// Workers with at least one receiver, ascending, no duplicates.
    pub workers: Vec<usize>,
}

impl Targets {
    fn add(&mut self, counts: &Counts) {
        for (worker, &n) in counts.iter().enumerate() {
            if n > 0 {
                self.receivers += n as usize;
                if let Err(at) = self.workers.binary_search(&worker) {
                    self.workers.insert(at, worker);
                }
            }
        }
    }
}

/// One namespace of exact channel names (plain or shard channels).
struct ChannelMap {
    shards: Vec<RwLock<HashMap<Vec<u8>, Counts>>>,
    hasher: ahash::RandomState,
    /// Distinct channels with at least one subscriber.
    distinct: AtomicUsize,
    workers: usize,
}

impl ChannelMap {
    fn new(workers: usize) -> ChannelMap {
        ChannelMap {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: ahash::RandomState::new(),
            distinct: AtomicUsize::new(0),
            workers,
        }
    }

    fn shard(&self, channel: &[u8]) -> &RwLock<HashMap<Vec<u8>, Counts>> {
        &self.shards[self.hasher.hash_one(channel) as usize % SHARDS]
    }

    fn add(&self, channel: &[u8], worker: usize) {
        let mut map = self.shard(channel).write();
        let counts = map.entry(channel.to_vec()).or_insert_with(|| {
            self.distinct.fetch_add(1, Ordering::Relaxed);
            vec![0; self.workers]
        });
        counts[worker] += 1;
    }

    fn remove(&self, channel: &[u8], worker: usize) {
        let mut map = self.shard(channel).write();
        if let Some(counts) = map.get_mut(channel) {
            counts[worker] = counts[worker].saturating_sub(1);
            if counts.iter().all(|&n| n == 0) {
                map.remove(channel);
                self.distinct.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn collect(&self, channel: &[u8], into: &mut Targets) {
        if let Some(counts) = self.shard(channel).read().get(channel) {
            into.add(counts);
        }
    }

    fn subscribers(&self, channel: &[u8]) -> usize {
        self.shard(channel)
            .read()
            .get(channel)
            .map_or(0, |c| c.iter().map(|&n| n as usize).sum())
    }

    /// Every channel with a subscriber matching `pattern` (None: all).
    fn names(&self, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for shard in &self.shards {
            for name in shard.read().keys() {
                if pattern.is_none_or(|p| glob_match(p, name)) {
                    out.push(name.clone());
                }
            }
        }
        out
    }
}

/// See the module doc.
pub struct Registry {
    channels: ChannelMap,
    shard_channels: ChannelMap,
    patterns: RwLock<Vec<(Vec<u8>, Counts)>>,
    pattern_count: AtomicUsize,
    workers: usize,
}

impl Registry {
    /// An empty registry for `workers` workers.
    pub fn new(workers: usize) -> Registry {
        let workers = workers.max(1);
        Registry {
            channels: ChannelMap::new(workers),
            shard_channels: ChannelMap::new(workers),
            patterns: RwLock::new(Vec::new()),
            pattern_count: AtomicUsize::new(0),
            workers,
        }
    }

    /// Records one more subscriber of `channel` on `worker`.
    pub fn add_channel(&self, channel: &[u8], worker: usize, shard: bool) {
        self.map(shard).add(channel, worker.min(self.workers - 1));
    }

    /// Records one subscriber fewer of `channel` on `worker`.
    pub fn remove_channel(&self, channel: &[u8], worker: usize, shard: bool) {
        self.map(shard).remove(channel, worker.min(self.workers - 1));
    }

    /// Records one more subscriber of `pattern` on `worker`.
    pub fn add_pattern(&self, pattern: &[u8], worker: usize) {
        let worker = worker.min(self.workers - 1);
        let mut patterns = self.patterns.write();
        match patterns.iter_mut().find(|(p, _)| p == pattern) {
            Some((_, counts)) => counts[worker] += 1,
            None => {
                let mut counts = vec![0; self.workers];
                counts[worker] = 1;
                patterns.push((pattern.to_vec(), counts));
                self.pattern_count.store(patterns.len(), Ordering::Relaxed);
            }
        }
    }

    /// Records one subscriber fewer of `pattern` on `worker`.
    pub fn remove_pattern(&self, pattern: &[u8], worker: usize) {
        let worker = worker.min(self.workers - 1);
        let mut patterns = self.patterns.write();
        if let Some(at) = patterns.iter().position(|(p, _)| p == pattern) {
            let counts = &mut patterns[at].1;
            counts[worker] = counts[worker].saturating_sub(1);
            if counts.iter().all(|&n| n == 0) {
                patterns.swap_remove(at);
                self.pattern_count.store(patterns.len(), Ordering::Relaxed);
            }
        }
    }

    /// Receivers and workers of a message on `channel` (plain: channel
    /// subscribers plus matching patterns; shard: shard subscribers only).
    pub fn targets(&self, channel: &[u8], shard: bool) -> Targets {
        let mut targets = Targets::default();
        self.map(shard).collect(channel, &mut targets);
        if !shard && self.pattern_count.load(Ordering::Relaxed) != 0 {
            for (pattern, counts) in self.patterns.read().iter() {
                if glob_match(pattern, channel) {
                    targets.add(counts);
                }
            }
        }
        targets
    }

    /// Subscribers of exactly `channel` (PUBSUB NUMSUB / SHARDNUMSUB).
    pub fn subscribers(&self, channel: &[u8], shard: bool) -> usize {
        self.map(shard).subscribers(channel)
    }

    /// Active channels matching `pattern` (PUBSUB CHANNELS / SHARDCHANNELS).
    pub fn channel_names(&self, pattern: Option<&[u8]>, shard: bool) -> Vec<Vec<u8>> {
        self.map(shard).names(pattern)
    }

    /// Distinct channels with subscribers (INFO `pubsub_channels`).
    pub fn channel_count(&self) -> usize {
        self.channels.distinct.load(Ordering::Relaxed)
    }

    /// Distinct shard channels (INFO `pubsubshard_channels`).
    pub fn shard_channel_count(&self) -> usize {
        self.shard_channels.distinct.load(Ordering::Relaxed)
    }

    /// Distinct patterns (INFO `pubsub_patterns`, PUBSUB NUMPAT).
    pub fn pattern_count(&self) -> usize {
        self.pattern_count.load(Ordering::Relaxed)
    }

    fn map(&self, shard: bool) -> &ChannelMap {
        if shard {
            &self.shard_channels
        } else {
            &self.channels
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_count_channel_and_pattern_subscribers_per_worker() {
        let r = Registry::new(4);
        r.add_channel(b"news", 0, false);
        r.add_channel(b"news", 2, false);
        r.add_channel(b"news", 2, false);
        r.add_pattern(b"n*", 3);
        let t = r.targets(b"news", false);
        assert_eq!(t.receivers, 4);
        assert_eq!(t.workers, vec![0, 2, 3]);
        assert_eq!(r.targets(b"news", true).receivers, 0);
        assert_eq!(r.channel_count(), 1);
        r.remove_channel(b"news", 2, false);
        r.remove_channel(b"news", 2, false);
        r.remove_channel(b"news", 0, false);
        r.remove_pattern(b"n*", 3);
        assert_eq!(r.targets(b"news", false).receivers, 0);
        assert_eq!((r.channel_count(), r.pattern_count()), (0, 0));
    }
}
