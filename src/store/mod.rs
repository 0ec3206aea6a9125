//! The keyspace: N shards (16 by default), each a `parking_lot::Mutex`
//! around a [`ShardMap`], chosen by an `ahash` of the key.
//!
//! The store knows keys, values and absolute expiry times. It knows nothing
//! about sockets, protocols or the WAL; callers that must log a write do so
//! while they still hold the guard returned here, which is what keeps the
//! WAL's order per key equal to the order in memory.
//!
//! # Lock order
//! Shard locks are always taken in ascending shard index ([`Store::lock_set`]
//! does this for multi-key commands and batches), and a shard lock may be
//! held while taking the WAL buffer mutex — never the other way round.

mod databases;
pub mod evict;
mod glob;
mod shard;
pub mod types;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::cell::Cell;
use std::ops::{Deref, DerefMut};

use parking_lot::{Mutex, MutexGuard};

pub use databases::{spawn_expiry_thread, Databases, DEFAULT_DATABASES, MAX_DATABASES};
pub use evict::EvictionPolicy;
pub use glob::glob_match;
pub use shard::{Entry, ShardMap, Value, ValueKind, ValueRef, WrongType};
pub use types::hash;
pub use types::hash::{Hash, HashLimits, Limits};
pub use types::Collection;
pub use types::ValueMut;

/// Most shards a store may have: lock sets are a `u64` bit mask.
pub const MAX_SHARDS: usize = 64;

/// A shard lock on its own cache line, so two cores hammering neighbouring
/// shards do not false-share.
#[repr(align(128))]
struct PaddedShard(Mutex<ShardMap>);

/// The sharded keyspace.
pub struct Store {
    shards: Box<[PaddedShard]>,
    hasher: ahash::RandomState,
    mask: u64,
}

/// A set of shards to lock together, as a bit mask (bit i = shard i).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardSet(pub u64);

impl ShardSet {
    /// Adds shard `index`.
    pub fn insert(&mut self, index: usize) {
        self.0 |= 1 << index;
    }
    /// True if no shard is in the set.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
}

/// Milliseconds since the unix epoch: the unit of every expiry.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Store {
    /// A store with `shards` shards (a power of two, at most [`MAX_SHARDS`]).
    pub fn new(shards: usize) -> Store {
        Store::with_hasher(shards, ahash::RandomState::new())
    }

    /// A store hashing with `hasher`: the databases of a server share one, so a
    /// key's shard index is the same in every database.
    pub fn with_hasher(shards: usize, hasher: ahash::RandomState) -> Store {
        let shards = shards.clamp(1, MAX_SHARDS).next_power_of_two();
        Store {
            shards: (0..shards)
                .map(|_| PaddedShard(Mutex::new(ShardMap::with_hasher(hasher.clone()))))
                .collect(),
            hasher,
            mask: shards as u64 - 1,
        }
    }

    /// The listpack/hashtable thresholds for hashes (one setting for the
    /// process, see [`hash::limits`]).
    pub fn hash_limits(&self) -> &'static HashLimits {
        hash::limits()
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The hash used both to pick the shard and inside the shard's table.
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The shard owning `hash`. Uses bits 40.. so it is independent of the
    /// low bits (bucket index) and top 7 bits (tag) the hash table uses.
    #[inline]
    pub fn shard_of(&self, hash: u64) -> usize {
        ((hash >> 40) & self.mask) as usize
    }

    /// Locks one shard — or, on a thread running `EXEC` that holds every
    /// shard and lent them ([`lend_every_store`]), hands out the held shard
    /// instead of deadlocking on it. Used by everything outside the command hot path
    /// (keyspace scans, expiry, replay); commands use [`Store::lock_set`].
    pub fn lock(&self, index: usize) -> ShardGuard<'_> {
        let mut guard = self.lock_uncounted(index);
        guard.lock_acquisitions += 1;
        guard
    }

    fn lock_uncounted(&self, index: usize) -> ShardGuard<'_> {
        if LENT.with(Cell::get) {
            // SAFETY: this thread holds every shard's lock of every store in
            // `Locked`s that are mutably borrowed by the live `LentEvery`
            // which set the flag, so nothing else can reach this map until it
            // drops; Store's methods hold at most one guard of a shard at a time.
            return ShardGuard::Lent(unsafe { &mut *self.shards[index].0.data_ptr() });
        }
        ShardGuard::Own(self.shards[index].0.lock())
    }

    fn lock_guard(&self, index: usize) -> MutexGuard<'_, ShardMap> {
        let mut guard = self.shards[index].0.lock();
        guard.lock_acquisitions += 1;
        guard
    }

    /// Locks every shard in `set` without ever blocking while holding one.
    ///
    /// A plain ascending-order acquisition is deadlock-free but convoys: a
    /// batch that blocks on shard 9 while holding shards 1..8 stalls every
    /// client of those shards too, and on a 2-core machine the holder is
    /// often descheduled. Instead every shard is *tried*; on the first busy
    /// one everything is released, the thread waits for that shard alone,
    /// and starts over. A single-shard set is a plain blocking lock.
    pub fn lock_set(&self, set: ShardSet) -> Locked<'_> {
        let mut guards: [Option<MutexGuard<'_, ShardMap>>; MAX_SHARDS] = std::array::from_fn(|_| None);
        if set.0.count_ones() == 1 {
            let i = set.0.trailing_zeros() as usize;
            guards[i] = Some(self.lock_guard(i));
            return Locked { store: self, guards };
        }
        'retry: loop {
            let mut bits = set.0;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if guards[i].is_some() {
                    continue;
                }
                match self.shards[i].0.try_lock() {
                    Some(mut guard) => {
                        guard.lock_acquisitions += 1;
                        guards[i] = Some(guard);
                    }
                    None => {
                        guards.iter_mut().for_each(|g| *g = None);
                        // Wait for the busy shard holding nothing else, keep it, retry the rest.
                        guards[i] = Some(self.lock_guard(i));
                        continue 'retry;
                    }
                }
            }
            return Locked { store: self, guards };
        }
    }

    /// Locks every shard in `set` if all are free right now; `None` (holding
    /// nothing) otherwise. Clients use it while a script runs, so a script
    /// that turns busy can be answered with `-BUSY` instead of waited for.
    pub fn try_lock_set(&self, set: ShardSet) -> Option<Locked<'_>> {
        let mut guards: [Option<MutexGuard<'_, ShardMap>>; MAX_SHARDS] = std::array::from_fn(|_| None);
        let mut bits = set.0;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let mut guard = self.shards[i].0.try_lock()?;
            guard.lock_acquisitions += 1;
            guards[i] = Some(guard);
        }
        Some(Locked { store: self, guards })
    }

    /// The set of every shard (FLUSHALL locks them all, in order).
    pub fn all_shards(&self) -> ShardSet {
        ShardSet(if self.shards.len() == 64 {
            u64::MAX
        } else {
            (1u64 << self.shards.len()) - 1
        })
    }

    /// Adds the shard of `key` to `set`.
    pub fn add_key(&self, set: &mut ShardSet, key: &[u8]) {
        set.insert(self.shard_of(self.hash(key)));
    }

    /// Number of keys (including expired keys not yet reclaimed, as Redis's DBSIZE).
    pub fn len(&self) -> usize {
        (0..self.shards.len()).map(|i| self.lock_uncounted(i).len()).sum()
    }

    /// True if no shard holds a key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys with a TTL (INFO keyspace's `expires`).
    pub fn ttl_len(&self) -> usize {
        (0..self.shards.len())
            .map(|i| self.lock_uncounted(i).ttl_len())
            .sum()
    }

    /// Hashes with field TTLs (INFO keyspace's `subexpiry`) and expired fields removed so far.
    pub fn field_expiry_counters(&self) -> (usize, u64) {
        let mut hashes = 0;
        let mut fields = 0;
        for shard in self.shards.iter() {
            let map = shard.0.lock();
            hashes += map.hfe_len();
            fields += map.expired_fields;
        }
        (hashes, fields)
    }

    /// Sum of per-shard counters: (lock acquisitions, expired keys removed).
    pub fn counters(&self) -> (u64, u64) {
        let mut acquisitions = 0;
        let mut expired = 0;
        for i in 0..self.shards.len() {
            let map = self.lock_uncounted(i);
            acquisitions += map.lock_acquisitions;
            expired += map.expired;
        }
        (acquisitions, expired)
    }

    /// Every live key matching `pattern`, one shard locked at a time.
    pub fn keys(&self, pattern: &[u8]) -> Vec<Vec<u8>> {
        let now = now_ms();
        let match_all = pattern == b"*";
        let mut out = Vec::new();
        for i in 0..self.shards.len() {
            let map = self.lock(i);
            for (_, slot) in map.iter() {
                if !slot.is_expired(now) && (match_all || glob_match(pattern, slot.key())) {
                    out.push(slot.key().to_vec());
                }
            }
        }
        out
    }

    /// One SCAN step from `cursor`: examines about `count` entries, pushes the
    /// live ones matching `pattern` into `out`, and returns the next cursor
    /// (0 when the iteration is complete).
    ///
    /// The cursor is `shard << 40 | slot`. Entries never move between slots
    /// while they exist, so a key present for the whole iteration is returned.
    pub fn scan(&self, cursor: u64, count: usize, pattern: Option<&[u8]>, out: &mut Vec<Vec<u8>>) -> u64 {
        self.scan_typed(cursor, count, pattern, None, out)
    }

    /// [`Store::scan`] keeping only values of `kind` (`SCAN ... TYPE`).
    pub fn scan_typed(
        &self,
        cursor: u64,
        count: usize,
        pattern: Option<&[u8]>,
        kind: Option<ValueKind>,
        out: &mut Vec<Vec<u8>>,
    ) -> u64 {
        let now = now_ms();
        let mut shard = (cursor >> 40) as usize;
        let mut slot = (cursor & ((1 << 40) - 1)) as usize;
        let mut examined = 0;
        // Vacant slots cost a little too, so a sparse shard cannot make one call unbounded.
        let mut budget = count.saturating_mul(10).max(100);
        while shard < self.shards.len() {
            let map = self.lock(shard);
            while slot < map.slot_count() {
                if examined >= count || budget == 0 {
                    return (shard as u64) << 40 | slot as u64;
                }
                budget -= 1;
                if let Some(entry) = map.slot(slot) {
                    examined += 1;
                    if !entry.is_expired(now)
                        && kind.is_none_or(|k| entry.kind() == k)
                        && pattern.is_none_or(|p| glob_match(p, entry.key()))
                    {
                        out.push(entry.key().to_vec());
                    }
                }
                slot += 1;
            }
            drop(map);
            shard += 1;
            slot = 0;
        }
        0
    }

    /// A random live key, or None if the keyspace is empty.
    pub fn random_key(&self) -> Option<Vec<u8>> {
        let now = now_ms();
        let n = self.shards.len();
        let start = random_u64() as usize % n;
        for k in 0..n {
            let map = self.lock((start + k) % n);
            for _ in 0..8 {
                let Some(i) = map.random_slot(random_u64) else {
                    break;
                };
                if let Some(slot) = map.slot(i) {
                    if !slot.is_expired(now) {
                        return Some(slot.key().to_vec());
                    }
                }
            }
        }
        None
    }

    /// One pass of active expiry, as Redis's `activeExpireCycle`: in each
    /// shard sample 20 keys with a TTL and remove the expired ones; repeat on
    /// that shard while more than a quarter of the sample had expired, within
    /// a time budget. Returns keys removed.
    pub fn active_expire_cycle(&self, budget: Duration) -> usize {
        const SAMPLE: usize = 20;
        let started = std::time::Instant::now();
        let now = now_ms();
        let mut removed_total = 0;
        for i in 0..self.shards.len() {
            loop {
                let (sampled, removed) = self.lock(i).expire_sample(SAMPLE, now, random_u64);
                removed_total += removed;
                if sampled == 0 || removed * 4 <= sampled || started.elapsed() > budget {
                    break;
                }
            }
            // Hash fields: sample hashes with field TTLs the same way.
            loop {
                let (sampled, removed) = self.lock(i).expire_fields_sample(SAMPLE, now, random_u64);
                if sampled == 0 || removed * 4 <= sampled || started.elapsed() > budget {
                    break;
                }
            }
        }
        removed_total
    }

    /// Calls `emit(key, value, expires_at_ms)` for every live entry of shard
    /// `index`, under its lock. A hash is passed whole (its expired fields
    /// may still be in it: the caller skips fields whose expiry has passed).
    pub fn for_each_in_shard(&self, index: usize, mut emit: impl FnMut(&[u8], ValueRef<'_>, Option<u64>)) {
        let now = now_ms();
        let map = self.lock(index);
        for (_, slot) in map.iter() {
            if !slot.is_expired(now) {
                emit(slot.key(), slot.value_ref(), slot.expires_at());
            }
        }
    }
}

thread_local! {
    /// True while this thread's `EXEC` lends every shard it holds to the
    /// keyless commands it runs ([`lend_every_store`]).
    static LENT: Cell<bool> = const { Cell::new(false) };
}

/// One shard's map, locked by [`Store::lock`].
pub enum ShardGuard<'a> {
    /// Locked by this guard.
    Own(MutexGuard<'a, ShardMap>),
    /// Already held by this thread's `EXEC` and lent for one command.
    Lent(&'a mut ShardMap),
}

impl Deref for ShardGuard<'_> {
    type Target = ShardMap;
    fn deref(&self) -> &ShardMap {
        match self {
            ShardGuard::Own(g) => g,
            ShardGuard::Lent(m) => m,
        }
    }
}

impl DerefMut for ShardGuard<'_> {
    fn deref_mut(&mut self) -> &mut ShardMap {
        match self {
            ShardGuard::Own(g) => g,
            ShardGuard::Lent(m) => m,
        }
    }
}

/// Lends every shard of every store in `locked` (which must hold them all:
/// `Databases::lock_everything`) to this thread's [`Store::lock`] calls
/// while the returned guard lives. `EXEC` does this for keyless commands that
/// may touch any database (FLUSHALL, MOVE, SWAPDB, INFO, SELECT + KEYS).
pub fn lend_every_store<'b, 'a>(locked: &'b mut [Locked<'a>]) -> LentEvery<'b, 'a> {
    LENT.with(|c| c.set(true));
    LentEvery { _locked: locked }
}

/// True while this thread's `EXEC` lends every store ([`lend_every_store`]):
/// commands that span databases then use [`Store::lock`] instead of taking
/// locks of their own, which this thread already holds.
pub fn lending_every_store() -> bool {
    LENT.with(Cell::get)
}

/// The guard of [`lend_every_store`].
pub struct LentEvery<'b, 'a> {
    _locked: &'b mut [Locked<'a>],
}

impl Drop for LentEvery<'_, '_> {
    fn drop(&mut self) {
        LENT.with(|c| c.set(false));
    }
}

/// Shards locked together for one command or one batch.
pub struct Locked<'a> {
    store: &'a Store,
    guards: [Option<MutexGuard<'a, ShardMap>>; MAX_SHARDS],
}

impl<'a> Locked<'a> {
    /// The map of the shard owning `hash`. The caller must have included the
    /// key's shard in the lock set; `None` otherwise (a bug, never client input).
    #[inline]
    pub fn map(&mut self, hash: u64) -> Option<&mut ShardMap> {
        let i = self.store.shard_of(hash);
        self.guards[i].as_deref_mut()
    }

    /// The store these locks belong to.
    pub fn store(&self) -> &Store {
        self.store
    }

    /// True if shard `index` is held.
    pub fn holds(&self, index: usize) -> bool {
        self.guards.get(index).is_some_and(Option::is_some)
    }

    /// The highest shard index held, if any.
    pub fn highest(&self) -> Option<usize> {
        self.guards.iter().rposition(Option::is_some)
    }

    /// Adds shard `index` to the held set if it is free right now (a script
    /// touching an undeclared key below a shard it holds: waiting could deadlock).
    pub fn try_add(&mut self, index: usize) -> bool {
        match self.store.shards[index].0.try_lock() {
            Some(mut guard) => {
                guard.lock_acquisitions += 1;
                self.guards[index] = Some(guard);
                true
            }
            None => false,
        }
    }

    /// Adds shard `index`, waiting for it. Only for an index above every held
    /// shard: ascending acquisition keeps the global lock order.
    pub fn add_blocking(&mut self, index: usize) {
        self.guards[index] = Some(self.store.lock_guard(index));
    }

    /// Every locked shard (FLUSHALL).
    pub fn all_maps(&mut self) -> impl Iterator<Item = &mut ShardMap> + use<'_, 'a> {
        self.guards.iter_mut().filter_map(|g| g.as_deref_mut())
    }
}

thread_local! {
    static RNG: std::cell::Cell<u64> = std::cell::Cell::new({
        let seed = ahash::RandomState::new().hash_one(std::thread::current().id());
        seed | 1
    });
}

/// A fast thread-local xorshift64* generator for sampling (not for secrets).
pub fn random_u64() -> u64 {
    RNG.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn overlapping_lock_sets_from_many_threads_neither_deadlock_nor_lose_updates() {
        let store = Arc::new(Store::new(16));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    let mut x = t.wrapping_mul(0x9E37_79B9) | 1;
                    let mut expected = 0u64;
                    for _ in 0..2000 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let set = ShardSet(x & 0xFFFF | 1);
                        expected += u64::from(set.0.count_ones());
                        let mut locked = store.lock_set(set);
                        // Every locked shard counts this acquisition in a per-shard counter key.
                        for map in locked.all_maps() {
                            let key = b"counter";
                            let hash = map.hash(key);
                            let n = map.get_raw(hash, key).map_or(0, |s| {
                                std::str::from_utf8(s.value())
                                    .ok()
                                    .and_then(|v| v.parse::<u64>().ok())
                                    .unwrap_or(0)
                            });
                            map.set(hash, key, (n + 1).to_string().as_bytes(), 0);
                        }
                    }
                    expected
                })
            })
            .collect();
        let expected: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let total: u64 = (0..16)
            .map(|i| {
                let map = store.lock(i);
                map.get_raw(map.hash(b"counter"), b"counter").map_or(0, |s| {
                    std::str::from_utf8(s.value()).unwrap().parse::<u64>().unwrap()
                })
            })
            .sum();
        // Every shard of every set was held, exclusively, exactly once per set.
        assert_eq!(total, expected);
    }
}
