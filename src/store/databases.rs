//! Numbered databases (`SELECT n`): one [`Store`] per database behind an
//! indirection table that `SWAPDB` can swap in O(1).
//!
//! A client's `db` is a *logical* index. `map[db]` names the *physical*
//! store holding that database's keys. `SWAPDB a b` swaps two entries of the
//! table instead of moving keys, so it costs the same for ten keys or ten
//! million, and the 16-shard store itself knows nothing about databases.
//!
//! # Why this costs a single-database deployment nothing measurable
//! A command resolves its store with one relaxed-ordering atomic load before
//! locking and one after (to detect a `SWAPDB` that ran in between, see
//! [`Databases::lock_set`]). Every store shares one hasher, so the shard set
//! of a command does not depend on which physical store it lands in.
//!
//! # Lock order
//! Ordinary commands and batches lock shards of ONE store ([`Store::lock_set`],
//! which never blocks while holding a shard). Commands that span stores —
//! `MOVE`, `SWAPDB`, `FLUSHALL` — lock in the global order (physical store
//! index, then shard index) and never hold a lock of a later store while
//! waiting for an earlier one. `SWAPDB` additionally holds `swap_lock`, which
//! is taken before any shard lock; WAL compaction takes it (and then the WAL
//! buffer mutex) to capture the table at the instant its rewrite buffer
//! starts (see [`Databases::begin_snapshot`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{Locked, ShardSet, Store};

/// A busy script holds a shard the caller needs (it answers `-BUSY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptBusy;

/// Redis's `databases` default.
pub const DEFAULT_DATABASES: usize = 16;

/// Most databases a server may have: each costs one empty store (its shard
/// locks and empty tables, a few KiB) and a row in the indirection table.
pub const MAX_DATABASES: usize = 1024;

/// Every database of the server.
pub struct Databases {
    stores: Box<[Store]>,
    /// Logical database → physical store index.
    map: Box<[AtomicUsize]>,
    /// Serialises `SWAPDB` against itself and against the start of a WAL
    /// compaction; taken before any shard lock.
    swap_lock: Mutex<()>,
    /// The table as it was when the current compaction's rewrite buffer
    /// started: physical store → the logical database its snapshot is filed under.
    snapshot_labels: Mutex<Vec<usize>>,
}

impl Databases {
    /// `count` empty databases (clamped to 1..=[`MAX_DATABASES`]) of `shards` shards each.
    pub fn new(count: usize, shards: usize) -> Databases {
        let count = count.clamp(1, MAX_DATABASES);
        let hasher = ahash::RandomState::new();
        Databases {
            stores: (0..count)
                .map(|_| Store::with_hasher(shards, hasher.clone()))
                .collect(),
            map: (0..count).map(AtomicUsize::new).collect(),
            swap_lock: Mutex::new(()),
            snapshot_labels: Mutex::new((0..count).collect()),
        }
    }

    /// Number of databases (`databases`).
    pub fn count(&self) -> usize {
        self.stores.len()
    }

    /// True if `db` is a valid database index.
    pub fn contains(&self, db: usize) -> bool {
        db < self.stores.len()
    }

    /// Shards per database.
    pub fn shard_count(&self) -> usize {
        self.stores[0].shard_count()
    }

    /// The physical store index of logical database `db`.
    #[inline]
    pub fn physical_index(&self, db: usize) -> usize {
        self.map[db].load(Ordering::Acquire)
    }

    /// The store of logical database `db` right now (readers that lock one
    /// shard at a time: KEYS, SCAN, DBSIZE, RANDOMKEY). A `SWAPDB` running
    /// concurrently may make such a reader see either side, as in Redis.
    #[inline]
    pub fn store(&self, db: usize) -> &Store {
        &self.stores[self.physical_index(db)]
    }

    /// Physical store `index` (replay, snapshots, per-store maintenance).
    pub fn physical(&self, index: usize) -> &Store {
        &self.stores[index]
    }

    /// Every physical store, in physical order.
    pub fn stores(&self) -> impl Iterator<Item = &Store> {
        self.stores.iter()
    }

    /// Adds the shard of `key` to `set` (the same in every database).
    #[inline]
    pub fn add_key(&self, set: &mut ShardSet, key: &[u8]) {
        self.stores[0].add_key(set, key);
    }

    /// Every shard of one database (FLUSHDB).
    pub fn all_shards(&self) -> ShardSet {
        self.stores[0].all_shards()
    }

    /// Locks `set` in database `db`. If a `SWAPDB` moved `db` to another
    /// store between resolving it and holding the locks, the locks are
    /// released and taken again on the new store: once this returns, `db`
    /// maps to the locked store until the guards are dropped.
    #[inline]
    pub fn lock_set(&self, db: usize, set: ShardSet) -> Locked<'_> {
        loop {
            let physical = self.physical_index(db);
            let locked = self.stores[physical].lock_set(set);
            if self.physical_index(db) == physical {
                return locked;
            }
        }
    }

    /// [`Databases::lock_set`] while scripts run: tries the set, and between
    /// tries checks whether a busy script (past `busy-reply-threshold`)
    /// holds one of its shards — then gives up with `Err(ScriptBusy)` (the caller
    /// answers `-BUSY`) instead of blocking its worker behind the script.
    pub fn lock_set_unless_busy(&self, db: usize, set: ShardSet) -> Result<Locked<'_>, ScriptBusy> {
        loop {
            if !crate::scripting::cache::any_running() {
                return Ok(self.lock_set(db, set));
            }
            let physical = self.physical_index(db);
            if crate::scripting::cache::busy_holds(physical, set.0) {
                return Err(ScriptBusy);
            }
            if let Some(locked) = self.stores[physical].try_lock_set(set) {
                if self.physical_index(db) == physical {
                    return Ok(locked);
                }
                continue;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Locks shard `shard` of databases `a` and `b` (distinct), in physical
    /// order, verified against a concurrent `SWAPDB` as [`Databases::lock_set`].
    pub fn lock_pair(&self, a: usize, b: usize, shard: usize) -> (Locked<'_>, Locked<'_>) {
        let mut set = ShardSet::default();
        set.insert(shard);
        self.lock_pair_set(a, b, set)
    }

    fn lock_pair_set(&self, a: usize, b: usize, set: ShardSet) -> (Locked<'_>, Locked<'_>) {
        loop {
            let (pa, pb) = (self.physical_index(a), self.physical_index(b));
            let (first, second) = if pa < pb { (pa, pb) } else { (pb, pa) };
            let lf = self.stores[first].lock_set(set);
            let ls = self.stores[second].lock_set(set);
            if self.physical_index(a) == pa && self.physical_index(b) == pb {
                return if pa < pb { (lf, ls) } else { (ls, lf) };
            }
        }
    }

    /// Holds off `SWAPDB` and compaction starts, then locks every shard of
    /// every database in physical order: an `EXEC` that may touch any
    /// database. The database table cannot change until the guards drop,
    /// except by [`Databases::swap_held`] on this thread.
    pub fn lock_everything(&self) -> (parking_lot::MutexGuard<'_, ()>, Vec<Locked<'_>>) {
        let serial = self.swap_lock.lock();
        (serial, self.lock_all())
    }

    /// `SWAPDB` inside an `EXEC` that holds [`Databases::lock_everything`].
    pub fn swap_held(&self, a: usize, b: usize) {
        let pa = self.map[a].load(Ordering::Acquire);
        let pb = self.map[b].load(Ordering::Acquire);
        if pa != pb {
            // `Store::lock` hands out the shards this thread's EXEC lent.
            let now = super::now_ms();
            for i in 0..self.shard_count() {
                let mut sa = self.stores[pa].lock(i);
                let mut sb = self.stores[pb].lock(i);
                sa.swap_watches(&mut sb, now);
            }
        }
        self.map[a].store(pb, Ordering::Release);
        self.map[b].store(pa, Ordering::Release);
    }

    /// Locks every shard of every database, in physical order (FLUSHALL).
    pub fn lock_all(&self) -> Vec<Locked<'_>> {
        let all = self.all_shards();
        self.stores.iter().map(|s| s.lock_set(all)).collect()
    }

    /// `SWAPDB a b`: swaps the two databases with every shard of both held.
    /// Watched keys stay with their logical database, touched where the swap
    /// changes them ([`super::ShardMap::swap_watches`]), as in Redis.
    /// `log` runs while the locks are still held, so the caller can append
    /// the WAL record at the same point of the log as the swap in memory; it
    /// returns what it logged (passed back to the caller).
    pub fn swap<T>(&self, a: usize, b: usize, log: impl FnOnce() -> T) -> T {
        let _serial = self.swap_lock.lock();
        if a == b {
            return log();
        }
        let (mut la, mut lb) = self.lock_pair_set(a, b, self.all_shards());
        let logged = log();
        let now = super::now_ms();
        for (sa, sb) in la.all_maps().zip(lb.all_maps()) {
            sa.swap_watches(sb, now);
        }
        let pa = self.map[a].load(Ordering::Acquire);
        let pb = self.map[b].load(Ordering::Acquire);
        self.map[a].store(pb, Ordering::Release);
        self.map[b].store(pa, Ordering::Release);
        drop((la, lb));
        logged
    }

    /// Installs the logical → physical table rebuilt by WAL replay.
    pub fn install_map(&self, map: &[usize]) {
        for (slot, &physical) in self.map.iter().zip(map) {
            slot.store(physical, Ordering::Release);
        }
    }

    /// For WAL compaction: runs `start` (which starts the WAL's rewrite
    /// buffer) with no `SWAPDB` in progress and records, for each physical
    /// store, the logical database it belongs to at that instant. Replaying
    /// the snapshot under those labels and then the rewrite buffer (which
    /// holds every later `SWAPDB`) rebuilds the current state.
    pub fn begin_snapshot(&self, start: &mut dyn FnMut()) {
        let _serial = self.swap_lock.lock();
        start();
        let mut labels = self.snapshot_labels.lock();
        for (logical, slot) in self.map.iter().enumerate() {
            labels[slot.load(Ordering::Acquire)] = logical;
        }
    }

    /// The logical database physical store `index` is filed under in the
    /// running compaction's snapshot.
    pub fn snapshot_label(&self, index: usize) -> usize {
        self.snapshot_labels.lock()[index]
    }

    /// The logical database physical store `index` holds now.
    pub fn logical_of(&self, index: usize) -> usize {
        self.map
            .iter()
            .position(|slot| slot.load(Ordering::Acquire) == index)
            .unwrap_or(0)
    }

    /// Evicts one key by `policy` from some database (starting at a random
    /// one, skipping empty ones); `on_evict(physical store, key)` runs under
    /// the key's shard lock, so the store's database cannot change meanwhile.
    /// False if no database had a candidate.
    pub fn evict_one(
        &self,
        policy: super::EvictionPolicy,
        samples: usize,
        on_evict: &mut dyn FnMut(usize, &[u8]),
    ) -> bool {
        let n = self.stores.len();
        let start = if n == 1 {
            0
        } else {
            super::random_u64() as usize % n
        };
        for k in 0..n {
            let physical = (start + k) % n;
            let store = &self.stores[physical];
            if n > 1 && store.is_empty() {
                continue;
            }
            if store.evict_one(policy, samples, &mut |key| on_evict(physical, key)) {
                return true;
            }
        }
        false
    }

    /// Keys evicted from every database.
    pub fn evicted(&self) -> u64 {
        self.stores.iter().map(Store::evicted).sum()
    }

    /// CONFIG RESETSTAT: every database's counters.
    pub fn reset_counters(&self) {
        self.stores.iter().for_each(Store::reset_counters);
    }

    /// Keys in every database.
    pub fn len(&self) -> usize {
        self.stores.iter().map(Store::len).sum()
    }

    /// True if no database holds a key.
    pub fn is_empty(&self) -> bool {
        self.stores.iter().all(Store::is_empty)
    }

    /// Keys with a TTL in every database.
    pub fn ttl_len(&self) -> usize {
        self.stores.iter().map(Store::ttl_len).sum()
    }

    /// Sums of the per-shard counters over every database: (lock acquisitions, expired keys).
    pub fn counters(&self) -> (u64, u64) {
        self.stores.iter().fold((0, 0), |(a, e), s| {
            let (a2, e2) = s.counters();
            (a + a2, e + e2)
        })
    }

    /// One active-expiry pass over every database within `budget`.
    pub fn active_expire_cycle(&self, budget: Duration) -> usize {
        self.active_expire_cycle_then(budget, &|_| {})
    }

    /// [`Databases::active_expire_cycle`], calling `after(logical db)` once
    /// each database's pass is done and its locks released (keyspace
    /// notifications of the expired keys are published there).
    pub fn active_expire_cycle_then(&self, budget: Duration, after: &dyn Fn(usize)) -> usize {
        let started = std::time::Instant::now();
        let mut removed = 0;
        for (physical, store) in self.stores.iter().enumerate() {
            let left = budget.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            if !store.is_empty() {
                removed += store.active_expire_cycle(left);
                after(self.logical_of(physical));
            }
        }
        removed
    }
}

/// Runs [`Databases::active_expire_cycle`] ten times a second (Redis's `hz 10`)
/// until `stop` is set.
pub fn spawn_expiry_thread(
    dbs: Arc<Databases>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    after: Box<dyn Fn(usize) + Send>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("kv-expire".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                // Redis's slow cycle uses at most 25% of a 100 ms tick.
                dbs.active_expire_cycle_then(Duration::from_millis(25), &*after);
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(dbs: &Databases, db: usize, key: &[u8]) {
        let mut set = ShardSet::default();
        dbs.add_key(&mut set, key);
        let mut locked = dbs.lock_set(db, set);
        let hash = locked.store().hash(key);
        locked.map(hash).unwrap().set(hash, key, b"v", 0);
    }

    #[test]
    fn databases_are_isolated_and_swapdb_exchanges_their_contents() {
        let dbs = Databases::new(4, 16);
        put(&dbs, 1, b"a");
        put(&dbs, 1, b"b");
        put(&dbs, 2, b"c");
        assert_eq!(
            (dbs.store(0).len(), dbs.store(1).len(), dbs.store(2).len()),
            (0, 2, 1)
        );
        dbs.swap(1, 2, || ());
        assert_eq!((dbs.store(1).len(), dbs.store(2).len()), (1, 2));
        assert_eq!(dbs.len(), 3);
    }

    #[test]
    fn concurrent_swaps_moves_and_flushes_neither_deadlock_nor_lose_the_table() {
        let dbs = Arc::new(Databases::new(3, 4));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let dbs = Arc::clone(&dbs);
                std::thread::spawn(move || {
                    for i in 0..2000usize {
                        match (t + i) % 4 {
                            0 => dbs.swap(i % 3, (i + 1) % 3, || ()),
                            1 => drop(dbs.lock_pair(2, 0, i % 4)),
                            2 => drop(dbs.lock_all()),
                            _ => put(&dbs, i % 3, b"k"),
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let mut physical: Vec<usize> = (0..3).map(|db| dbs.physical_index(db)).collect();
        physical.sort_unstable();
        assert_eq!(physical, vec![0, 1, 2]);
    }
}
