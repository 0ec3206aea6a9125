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
//!
//! Databases: the dispatcher follows `Select` records and keeps its own
//! logical → physical table, so `SwapDb` is a swap in that table (no apply
//! thread involved) and each op names the physical store it applies to. Every
//! store shares one hasher, so a key's thread does not depend on its database.
//! The final table is handed to [`Databases::install_map`].

use std::ops::Range;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender};

use crate::store::{Databases, Hash, Limits, ShardMap};
use crate::wal::{HashFields, Record, RecordKind};

/// Records per batch sent to an apply thread.
const BATCH_OPS: usize = 4096;

/// One replayed write, with its bytes in the batch's arena.
enum Op {
    Set {
        store: u32,
        hash: u64,
        key: Range<usize>,
        value: Range<usize>,
        expires_at: u64,
    },
    Del {
        store: u32,
        hash: u64,
        key: Range<usize>,
    },
    Expire {
        store: u32,
        hash: u64,
        key: Range<usize>,
        expires_at: u64,
    },
    Patch {
        store: u32,
        hash: u64,
        key: Range<usize>,
        offset: usize,
        bytes: Range<usize>,
        len: usize,
        expires_at: u64,
    },
    FlushAll,
    /// Clear one physical store (FLUSHDB).
    FlushStore(u32),
    /// A hash record; `fields` are its encoded entries.
    Hash {
        store: u32,
        kind: RecordKind,
        hash: u64,
        key: Range<usize>,
        fields: Range<usize>,
        count: u32,
    },
    /// A list, set or sorted set effect (`store::types::apply_record`).
    Collection {
        store: u32,
        hash: u64,
        key: Range<usize>,
        op: u8,
        payload: Range<usize>,
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
    dbs: Arc<Databases>,
    now: u64,
    /// The logical database the records being read belong to.
    current: usize,
    /// Logical → physical store, as SwapDb records leave it.
    map: Vec<usize>,
    /// The first database index the log names that this server does not have.
    missing_db: Option<u32>,
    pending: Vec<Batch>,
    senders: Vec<Sender<Batch>>,
    threads: Vec<JoinHandle<()>>,
}

impl ParallelReplay {
    /// Starts `threads` apply threads (at least one) writing into `store`;
    /// records whose expiry is at or before `now` (unix ms) are dropped.
    pub fn start(dbs: Arc<Databases>, threads: usize, now: u64) -> std::io::Result<ParallelReplay> {
        let count = threads.clamp(1, dbs.shard_count());
        let mut senders = Vec::with_capacity(count);
        let mut handles = Vec::with_capacity(count);
        for index in 0..count {
            let (tx, rx) = bounded::<Batch>(4);
            let dbs = Arc::clone(&dbs);
            handles.push(
                std::thread::Builder::new()
                    .name(format!("kv-replay-{index}"))
                    .spawn(move || {
                        for batch in rx {
                            apply_batch(&dbs, &batch, index, count, now);
                        }
                    })?,
            );
            senders.push(tx);
        }
        let map = (0..dbs.count()).collect();
        Ok(ParallelReplay {
            dbs,
            now,
            current: 0,
            map,
            missing_db: None,
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
            }
            | Record::Patch {
                key,
                expires_at_ms: Some(at),
                ..
            } if at <= self.now => Record::Del { key },
            other => other,
        };
        let key = match record {
            Record::Set { key, .. }
            | Record::Del { key }
            | Record::Expire { key, .. }
            | Record::Patch { key, .. }
            | Record::HashSet { key, .. }
            | Record::HashDel { key, .. }
            | Record::HashExpire { key, .. }
            | Record::Collection { key, .. } => key,
            Record::FlushAll => return self.broadcast(|| Op::FlushAll),
            Record::Function { op, data } => {
                // Not keyed: applied here, in log order, to the shared registry.
                crate::scripting::replay_function_record(op, data);
                return;
            }
            Record::Select { db } => {
                self.current = db as usize;
                if !self.dbs.contains(self.current) {
                    self.missing_db.get_or_insert(db);
                }
                return;
            }
            Record::SwapDb { a, b } => {
                let (a, b) = (a as usize, b as usize);
                if self.dbs.contains(a) && self.dbs.contains(b) {
                    self.map.swap(a, b);
                } else {
                    self.missing_db.get_or_insert(a.max(b) as u32);
                }
                return;
            }
            Record::FlushDb => {
                if let Some(&store) = self.map.get(self.current) {
                    self.broadcast(|| Op::FlushStore(store as u32));
                }
                return;
            }
        };
        // Records of a database this server lacks are skipped; `finish` refuses to start.
        let Some(&physical) = self.map.get(self.current) else {
            return;
        };
        let store = physical as u32;
        let hash = self.dbs.physical(physical).hash(key);
        let t = self.dbs.physical(physical).shard_of(hash) % self.senders.len();
        let batch = &mut self.pending[t];
        let key = batch.push_bytes(key);
        let op = match record {
            Record::Set {
                value, expires_at_ms, ..
            } => Op::Set {
                store,
                hash,
                key,
                value: batch.push_bytes(value),
                expires_at: expires_at_ms.unwrap_or(0),
            },
            Record::Expire { expires_at_ms, .. } => Op::Expire {
                store,
                hash,
                key,
                expires_at: expires_at_ms.unwrap_or(0),
            },
            Record::Patch {
                offset,
                bytes,
                len,
                expires_at_ms,
                ..
            } => Op::Patch {
                store,
                hash,
                key,
                // The decoder bounded both by MAX_PAYLOAD_LEN.
                offset: offset as usize,
                bytes: batch.push_bytes(bytes),
                len: len as usize,
                expires_at: expires_at_ms.unwrap_or(0),
            },
            Record::HashSet { fields, .. }
            | Record::HashDel { fields, .. }
            | Record::HashExpire { fields, .. } => Op::Hash {
                store,
                kind: record.kind(),
                hash,
                key,
                fields: batch.push_bytes(fields.bytes()),
                count: fields.len() as u32,
            },
            Record::Collection { op, payload, .. } => Op::Collection {
                store,
                hash,
                key,
                op,
                payload: batch.push_bytes(payload),
            },
            _ => Op::Del { store, hash, key },
        };
        batch.ops.push(op);
        self.maybe_send(t);
    }

    /// Queues an op every apply thread runs on the shards it owns.
    fn broadcast(&mut self, op: impl Fn() -> Op) {
        for t in 0..self.senders.len() {
            self.pending[t].ops.push(op());
            self.maybe_send(t);
        }
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
    /// Returns the logical → physical database table the log left, for
    /// [`Databases::install_map`]. Fails if the log names a database beyond `databases`.
    pub fn finish(mut self) -> anyhow::Result<Vec<usize>> {
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
        if let Some(db) = self.missing_db {
            anyhow::bail!(
                "the WAL holds records of database {db} but this server has databases = {}; \
                 start it with databases = {} or more",
                self.dbs.count(),
                db + 1
            );
        }
        Ok(std::mem::take(&mut self.map))
    }
}

/// Applies one batch. Expired records were already turned into deletes by the dispatcher.
fn apply_batch(dbs: &Databases, batch: &Batch, thread: usize, threads: usize, now: u64) {
    let bytes = &batch.bytes;
    for op in &batch.ops {
        match op {
            Op::Set {
                store,
                hash,
                key,
                value,
                expires_at,
            } => {
                let store = dbs.physical(*store as usize);
                store.lock(store.shard_of(*hash)).set(
                    *hash,
                    &bytes[key.clone()],
                    &bytes[value.clone()],
                    *expires_at,
                );
            }
            Op::Del { store, hash, key } => {
                let store = dbs.physical(*store as usize);
                store
                    .lock(store.shard_of(*hash))
                    .remove(*hash, &bytes[key.clone()]);
            }
            Op::Expire {
                store,
                hash,
                key,
                expires_at,
            } => {
                let store = dbs.physical(*store as usize);
                store
                    .lock(store.shard_of(*hash))
                    .set_expiry(*hash, &bytes[key.clone()], *expires_at);
            }
            Op::Patch {
                store,
                hash,
                key,
                offset,
                bytes: patch,
                len,
                expires_at,
            } => {
                let store = dbs.physical(*store as usize);
                store.lock(store.shard_of(*hash)).patch(
                    *hash,
                    &bytes[key.clone()],
                    *offset,
                    &bytes[patch.clone()],
                    *len,
                    *expires_at,
                );
            }
            Op::FlushAll => {
                for store in dbs.stores() {
                    for shard in (thread..store.shard_count()).step_by(threads) {
                        store.lock(shard).clear();
                    }
                }
            }
            Op::FlushStore(store) => {
                let store = dbs.physical(*store as usize);
                for shard in (thread..store.shard_count()).step_by(threads) {
                    store.lock(shard).clear();
                }
            }
            Op::Hash {
                store,
                kind,
                hash,
                key,
                fields,
                count,
            } => {
                let store = dbs.physical(*store as usize);
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
            Op::Collection {
                store,
                hash,
                key,
                op,
                payload,
            } => {
                let store = dbs.physical(*store as usize);
                let mut map = store.lock(store.shard_of(*hash));
                let key = &bytes[key.clone()];
                if let Err(e) =
                    crate::store::types::apply_record(&mut map, *hash, key, *op, &bytes[payload.clone()], now)
                {
                    // A valid frame (its CRC matched) this build cannot apply:
                    // say so rather than guess; the key keeps what it had.
                    tracing::error!(key = %String::from_utf8_lossy(key), "WAL collection record not applied: {e}");
                }
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
        let dbs = Arc::new(Databases::new(1, 16));
        let store = dbs.physical(0);
        let now = 1_000_000;
        let mut replay = ParallelReplay::start(Arc::clone(&dbs), 3, now).unwrap();
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

    #[test]
    fn replay_follows_select_swapdb_and_flushdb_into_the_right_databases() {
        let dbs = Arc::new(Databases::new(4, 16));
        let mut replay = ParallelReplay::start(Arc::clone(&dbs), 2, 0).unwrap();
        let set = |key| Record::Set {
            key,
            value: b"v",
            expires_at_ms: None,
        };
        replay.apply(set(b"zero"));
        replay.apply(Record::Select { db: 1 });
        replay.apply(set(b"one"));
        replay.apply(Record::Select { db: 2 });
        replay.apply(set(b"two"));
        replay.apply(Record::SwapDb { a: 1, b: 3 });
        replay.apply(Record::Select { db: 3 });
        replay.apply(set(b"three"));
        replay.apply(Record::Select { db: 2 });
        replay.apply(Record::FlushDb);
        let map = replay.finish().unwrap();
        dbs.install_map(&map);
        let keys = |db| {
            let mut keys = dbs.store(db).keys(b"*");
            keys.sort();
            keys
        };
        assert_eq!(keys(0), vec![b"zero".to_vec()]);
        assert!(keys(1).is_empty());
        assert!(keys(2).is_empty());
        assert_eq!(keys(3), vec![b"one".to_vec(), b"three".to_vec()]);
    }

    #[test]
    fn a_log_naming_a_database_the_server_lacks_refuses_to_start() {
        let dbs = Arc::new(Databases::new(2, 16));
        let mut replay = ParallelReplay::start(dbs, 1, 0).unwrap();
        replay.apply(Record::Select { db: 7 });
        let err = replay.finish().unwrap_err().to_string();
        assert!(
            err.contains("database 7") && err.contains("databases = 8"),
            "{err}"
        );
    }
}
