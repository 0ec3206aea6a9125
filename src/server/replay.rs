//! Parallel WAL replay at startup.
//!
//! The WAL reader hands us records in file order on one thread; inserting
//! them into the store is what costs time (hash probes, table growth, one
//! allocation per new key), so that work is spread over apply threads.
//! Each record goes to the thread that owns its key's shard
//! (`shard % threads`), through a FIFO channel: every key is applied by one
//! thread in file order, so per-key order — the only order replay must keep,
//! since records are results — is preserved. `FlushAll` is sent to every
//! thread, each of which clears the shards it owns at that point of its own
//! stream, which is exactly where it falls in file order for those shards.

use std::ops::Range;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender};

use crate::store::{Hash, Limits, ShardMap, Store};
use crate::wal::{HashFields, Record, RecordKind};

/// Records per batch sent to an apply thread.
const BATCH_OPS: usize = 4096;

/// One replayed write, with its bytes in the batch's arena.
enum Op {
    Set {
        hash: u64,
        key: Range<usize>,
        value: Range<usize>,
        expires_at: u64,
    },
    Del {
        hash: u64,
        key: Range<usize>,
    },
    Expire {
        hash: u64,
        key: Range<usize>,
        expires_at: u64,
    },
    FlushAll,
    /// A hash record; `fields` are its encoded entries.
    Hash {
        kind: RecordKind,
        hash: u64,
        key: Range<usize>,
        fields: Range<usize>,
        count: u32,
    },
}

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    ops: Vec<Op>,
}

impl Batch {
    fn push_bytes(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }
}

/// Routes replayed records to apply threads; joins them on [`ParallelReplay::finish`].
pub struct ParallelReplay {
    store: Arc<Store>,
    now: u64,
    pending: Vec<Batch>,
    senders: Vec<Sender<Batch>>,
    threads: Vec<JoinHandle<()>>,
}

impl ParallelReplay {
    /// Starts `threads` apply threads (at least one) writing into `store`;
    /// records whose expiry is at or before `now` (unix ms) are dropped.
    pub fn start(store: Arc<Store>, threads: usize, now: u64) -> std::io::Result<ParallelReplay> {
        let count = threads.clamp(1, store.shard_count());
        let mut senders = Vec::with_capacity(count);
        let mut handles = Vec::with_capacity(count);
        for index in 0..count {
            let (tx, rx) = bounded::<Batch>(4);
            let store = Arc::clone(&store);
            handles.push(
                std::thread::Builder::new()
                    .name(format!("kv-replay-{index}"))
                    .spawn(move || {
                        for batch in rx {
                            apply_batch(&store, &batch, index, count, now);
                        }
                    })?,
            );
            senders.push(tx);
        }
        Ok(ParallelReplay {
            store,
            now,
            pending: (0..count).map(|_| Batch::default()).collect(),
            senders,
            threads: handles,
        })
    }

    /// Queues one record for the thread owning its key.
    pub fn apply(&mut self, record: Record<'_>) {
        // An expiry already in the past means the key is gone: replay it as a delete.
        let record = match record {
            Record::Set {
                key,
                expires_at_ms: Some(at),
                ..
            }
            | Record::Expire {
                key,
                expires_at_ms: Some(at),
            } if at <= self.now => Record::Del { key },
            other => other,
        };
        let key = match record {
            Record::Set { key, .. }
            | Record::Del { key }
            | Record::Expire { key, .. }
            | Record::HashSet { key, .. }
            | Record::HashDel { key, .. }
            | Record::HashExpire { key, .. } => key,
            Record::FlushAll => {
                for t in 0..self.senders.len() {
                    self.pending[t].ops.push(Op::FlushAll);
                    self.maybe_send(t);
                }
                return;
            }
        };
        let hash = self.store.hash(key);
        let t = self.store.shard_of(hash) % self.senders.len();
        let batch = &mut self.pending[t];
        let key = batch.push_bytes(key);
        let op = match record {
            Record::Set {
                value, expires_at_ms, ..
            } => Op::Set {
                hash,
                key,
                value: batch.push_bytes(value),
                expires_at: expires_at_ms.unwrap_or(0),
            },
            Record::Expire { expires_at_ms, .. } => Op::Expire {
                hash,
                key,
                expires_at: expires_at_ms.unwrap_or(0),
            },
            Record::HashSet { fields, .. }
            | Record::HashDel { fields, .. }
            | Record::HashExpire { fields, .. } => Op::Hash {
                kind: record.kind(),
                hash,
                key,
                fields: batch.push_bytes(fields.bytes()),
                count: fields.len() as u32,
            },
            Record::Del { .. } | Record::FlushAll => Op::Del { hash, key },
        };
        batch.ops.push(op);
        self.maybe_send(t);
    }

    fn maybe_send(&mut self, t: usize) {
        if self.pending[t].ops.len() >= BATCH_OPS {
            self.send(t);
        }
    }

    fn send(&mut self, t: usize) {
        let batch = std::mem::take(&mut self.pending[t]);
        // A send fails only if the thread died (it cannot panic on valid input);
        // `finish` then reports it through the join.
        let _ = self.senders[t].send(batch);
    }

    /// Sends the partial batches and waits until every record is applied.
    pub fn finish(mut self) -> anyhow::Result<()> {
        for t in 0..self.senders.len() {
            if !self.pending[t].ops.is_empty() {
                self.send(t);
            }
        }
        self.senders.clear();
        for handle in self.threads.drain(..) {
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("a WAL replay thread panicked"))?;
        }
        Ok(())
    }
}

/// Applies one batch. Expired records were already turned into deletes by the dispatcher.
fn apply_batch(store: &Store, batch: &Batch, thread: usize, threads: usize, now: u64) {
    let bytes = &batch.bytes;
    for op in &batch.ops {
        match op {
            Op::Set {
                hash,
                key,
                value,
                expires_at,
            } => {
                store.lock(store.shard_of(*hash)).set(
                    *hash,
                    &bytes[key.clone()],
                    &bytes[value.clone()],
                    *expires_at,
                );
            }
            Op::Del { hash, key } => {
                store
                    .lock(store.shard_of(*hash))
                    .remove(*hash, &bytes[key.clone()]);
            }
            Op::Expire {
                hash,
                key,
                expires_at,
            } => {
                store
                    .lock(store.shard_of(*hash))
                    .set_expiry(*hash, &bytes[key.clone()], *expires_at);
            }
            Op::FlushAll => {
                for shard in (thread..store.shard_count()).step_by(threads) {
                    store.lock(shard).clear();
                }
            }
            Op::Hash {
                kind,
                hash,
                key,
                fields,
                count,
            } => {
                let fields = HashFields::new(*kind, *count, &bytes[fields.clone()]);
                let mut map = store.lock(store.shard_of(*hash));
                apply_hash_record(
                    &mut map,
                    *kind,
                    *hash,
                    &bytes[key.clone()],
                    fields,
                    now,
                    store.hash_limits().get(),
                );
            }
        }
    }
}

/// Applies one hash record to `map`. Fields whose expiry is at or before
/// `now` are removed rather than set; a `HashSet` over a string replaces it
/// (the log holds results, so a later record is always the newer truth).
pub(crate) fn apply_hash_record(
    map: &mut ShardMap,
    kind: RecordKind,
    hash: u64,
    key: &[u8],
    fields: HashFields<'_>,
    now: u64,
    limits: Limits,
) {
    let apply = |h: &mut Hash| {
        for entry in fields.iter() {
            let expired = entry.expires_at_ms.is_some_and(|at| at <= now);
            match kind {
                RecordKind::HashSet if !expired => {
                    h.set_with_expiry(entry.field, entry.value, entry.expires_at_ms, limits);
                }
                RecordKind::HashExpire if !expired => {
                    h.set_expiry(entry.field, entry.expires_at_ms);
                }
                _ => {
                    h.remove(entry.field);
                }
            }
        }
    };
    let create = kind == RecordKind::HashSet;
    if map.hash_update(hash, key, now, create, apply).is_err() && create {
        map.remove(hash, key);
        let _ = map.hash_update(hash, key, now, true, apply);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn parallel_replay_ends_in_the_same_state_as_applying_in_file_order() {
        let store = Arc::new(Store::new(16));
        let now = 1_000_000;
        let mut replay = ParallelReplay::start(Arc::clone(&store), 3, now).unwrap();
        let mut model: HashMap<Vec<u8>, (Vec<u8>, u64)> = HashMap::new();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for i in 0..50_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = format!("k{}", x % 500).into_bytes();
            let value = i.to_string().into_bytes();
            match x % 100 {
                0 => {
                    replay.apply(Record::FlushAll);
                    model.clear();
                }
                1..=15 => {
                    replay.apply(Record::Del { key: &key });
                    model.remove(&key);
                }
                16..=25 => {
                    let at = if x % 3 == 0 { now - 1 } else { now + 10_000 };
                    replay.apply(Record::Expire {
                        key: &key,
                        expires_at_ms: Some(at),
                    });
                    if at <= now {
                        model.remove(&key);
                    } else if let Some(entry) = model.get_mut(&key) {
                        entry.1 = at;
                    }
                }
                _ => {
                    replay.apply(Record::Set {
                        key: &key,
                        value: &value,
                        expires_at_ms: None,
                    });
                    model.insert(key, (value, 0));
                }
            }
        }
        replay.finish().unwrap();
        assert_eq!(store.len(), model.len());
        for (key, (value, expires_at)) in &model {
            let hash = store.hash(key);
            let map = store.lock(store.shard_of(hash));
            let slot = map.get_raw(hash, key).unwrap();
            assert_eq!(slot.value(), &value[..]);
            assert_eq!(slot.expires_at().unwrap_or(0), *expires_at);
        }
    }
}
