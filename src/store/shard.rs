//! One shard's map: binary keys to string entries, with stable slots.
//!
//! Entries live in a slot vector; a `hashbrown::HashTable` maps a key's hash
//! to its slot index. A removed entry leaves a vacant slot that a later
//! insert reuses, and **an entry never moves while it exists**. That one
//! property gives us three things a plain `HashMap` cannot:
//!
//! * `SCAN` can use the slot index as its cursor: a key present for the
//!   whole iteration keeps its slot, so it is returned, whatever is inserted
//!   or deleted meanwhile (Redis gets the same guarantee from its
//!   reverse-binary cursor over hash buckets).
//! * `RANDOMKEY` and the active expiry cycle can sample in O(1).
//! * Keys with a TTL are listed in a side vector (`ttl_slots`) so the expiry
//!   cycle samples only them, like Redis's `expires` dict, at 4 bytes a key.
//!
//! A string's key and value share one allocation (`data = key ++ value`),
//! so storing a pair costs one malloc, and overwriting a value reuses the
//! allocation when it fits. A hash lives behind one box holding its key and
//! its [`Hash`]; the body enum stays 24 bytes (the `Vec`'s niche), so
//! typed values cost string keys nothing.
//!
//! Hashes with per-field TTLs are listed in `hfe_slots` (like `ttl_slots`
//! for key TTLs) so the active expiry cycle samples only them.

use std::collections::HashMap;

use hashbrown::HashTable;

use super::hash::Hash;

/// Sentinel `key_len` of a vacant slot.
const VACANT: u32 = u32::MAX;
/// Sentinel `ttl_pos` of an entry without a TTL.
const NO_TTL: u32 = u32::MAX;

/// The type of a stored value (`TYPE`, `SCAN ... TYPE`, `WRONGTYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    String,
    Hash,
}

impl ValueKind {
    /// The name `TYPE` answers.
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::String => "string",
            ValueKind::Hash => "hash",
        }
    }
}

/// The operation met a key holding another type (`WRONGTYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrongType;

/// What a slot holds. A small enum, never a trait object: adding a type is
/// one variant (boxed, to keep this at 24 bytes).
#[derive(Debug)]
enum Body {
    /// `key ++ value`.
    Str(Vec<u8>),
    Hash(Box<HashBody>),
}

#[derive(Debug)]
struct HashBody {
    key: Box<[u8]>,
    hash: Hash,
    /// Position in the shard's `hfe_slots`, or `NO_TTL`.
    hfe_pos: u32,
}

/// An owned value taken out of the map (RENAME moves values of any type).
#[derive(Debug)]
pub enum Value {
    String(Vec<u8>),
    Hash(Hash),
}

/// A borrowed value (compaction snapshots, typed reads).
#[derive(Clone, Copy, Debug)]
pub enum ValueRef<'a> {
    String(&'a [u8]),
    Hash(&'a Hash),
}

/// A stored value and its metadata.
#[derive(Debug)]
pub struct Slot {
    body: Body,
    key_len: u32,
    ttl_pos: u32,
    /// The low 32 bits of the key's hash: enough to find its table entry.
    tag: u32,
    /// LRU clock or LFU counter, see `store::evict` (4 bytes that were padding).
    access: u32,
    /// Absolute expiry in unix milliseconds; 0 means none.
    expires_at: u64,
}

impl Slot {
    /// The key bytes.
    pub fn key(&self) -> &[u8] {
        match &self.body {
            Body::Str(data) => &data[..self.key_len as usize],
            Body::Hash(h) => &h.key,
        }
    }

    /// The string value's bytes; empty for a value of another type (callers
    /// check [`Slot::kind`] first — the string commands do, via `WRONGTYPE`).
    pub fn value(&self) -> &[u8] {
        match &self.body {
            Body::Str(data) => &data[self.key_len as usize..],
            Body::Hash(_) => &[],
        }
    }

    /// The value's type.
    pub fn kind(&self) -> ValueKind {
        match &self.body {
            Body::Str(_) => ValueKind::String,
            Body::Hash(_) => ValueKind::Hash,
        }
    }

    /// The value, typed.
    pub fn value_ref(&self) -> ValueRef<'_> {
        match &self.body {
            Body::Str(data) => ValueRef::String(&data[self.key_len as usize..]),
            Body::Hash(h) => ValueRef::Hash(&h.hash),
        }
    }

    /// The string value, or `WRONGTYPE`.
    pub fn string(&self) -> Result<&[u8], WrongType> {
        match &self.body {
            Body::Str(data) => Ok(&data[self.key_len as usize..]),
            Body::Hash(_) => Err(WrongType),
        }
    }

    /// The hash, if this is one.
    pub fn as_hash(&self) -> Option<&Hash> {
        match &self.body {
            Body::Hash(h) => Some(&h.hash),
            Body::Str(_) => None,
        }
    }

    /// Absolute expiry (unix ms), if any.
    pub fn expires_at(&self) -> Option<u64> {
        (self.expires_at != 0).then_some(self.expires_at)
    }

    /// True if the entry's expiry is at or before `now`.
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at != 0 && self.expires_at <= now
    }

    /// The access clock (LRU) or counter (LFU) as last touched; see `store::evict`.
    pub fn access(&self) -> u32 {
        self.access
    }

    fn is_vacant(&self) -> bool {
        self.key_len == VACANT
    }
}

/// The map of one shard. Not synchronised: the store wraps it in a lock.
#[derive(Debug, Default)]
pub struct ShardMap {
    /// Entries are `hash32 << 32 | slot index`: the table can rehash and
    /// reject most non-matching probes without touching the slot vector.
    table: HashTable<u64>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    ttl_slots: Vec<u32>,
    /// Hashes with field TTLs (their `hfe_pos` points back here).
    hfe_slots: Vec<u32>,
    len: usize,
    /// Number of times this shard's lock was taken (read under the lock, so
    /// it costs no extra synchronisation); STATS sums it across shards.
    pub lock_acquisitions: u64,
    /// Expired entries removed (lazily or by the active cycle), for STATS/INFO.
    pub expired: u64,
    /// Expired hash fields removed (INFO's `expired_subkeys`).
    pub expired_fields: u64,
    /// Entries removed to stay under `maxmemory`, for STATS/INFO.
    pub evicted: u64,
    /// Keys some client WATCHes, with a counter every change of the key
    /// bumps. Empty unless someone watches, so a change costs one `is_empty`.
    watched: HashMap<Box<[u8]>, WatchEntry, ahash::RandomState>,
}

/// A watched key: how many clients watch it and how often it changed since
/// the first of them did.
#[derive(Clone, Copy, Debug)]
struct WatchEntry {
    hash: u64,
    watchers: u32,
    version: u64,
}

impl ShardMap {
    /// Live plus not-yet-reclaimed expired entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the shard holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries with a TTL.
    pub fn ttl_len(&self) -> usize {
        self.ttl_slots.len()
    }

    /// Bytes one entry costs (MEMORY USAGE): its key+value allocation as
    /// malloc rounds it, its slot, its hash-table entry (8 bytes plus a
    /// control byte, at hashbrown's 7/8 maximum load) and, with a TTL, its
    /// place in the TTL index.
    pub fn footprint(slot: &Slot) -> usize {
        let table = (std::mem::size_of::<u64>() + 1) * 8 / 7;
        let ttl = if slot.ttl_pos != NO_TTL {
            std::mem::size_of::<u32>()
        } else {
            0
        };
        let body = match &slot.body {
            Body::Str(data) => crate::memory::chunk_size(data.capacity()),
            Body::Hash(h) => {
                crate::memory::chunk_size(std::mem::size_of::<HashBody>())
                    + crate::memory::chunk_size(h.key.len())
                    + h.hash.memory_usage()
                    + if h.hfe_pos != NO_TTL {
                        std::mem::size_of::<u32>()
                    } else {
                        0
                    }
            }
        };
        body + std::mem::size_of::<Slot>() + table + ttl
    }

    /// Number of slots (occupied or vacant): the SCAN cursor range.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let tag = hash as u32;
        self.table
            .find(table_hash(tag), |&entry| {
                entry_tag(entry) == tag && self.slots[entry_slot(entry) as usize].key() == key
            })
            .map(|&entry| entry_slot(entry))
    }

    /// The entry for `key`, whether or not it has expired.
    pub fn get_raw(&self, hash: u64, key: &[u8]) -> Option<&Slot> {
        self.find(hash, key).map(|i| &self.slots[i as usize])
    }

    /// The live entry for `key`; an expired one is removed on the way (lazy
    /// expiry). Returns whether an expired entry was removed, for stats.
    /// A hit counts as an access for LRU/LFU eviction.
    pub fn get_live(&mut self, hash: u64, key: &[u8], now: u64) -> (Option<&Slot>, bool) {
        let Some(i) = self.find(hash, key) else {
            return (None, false);
        };
        let slot = &mut self.slots[i as usize];
        if slot.is_expired(now) {
            self.remove_slot(i);
            self.expired += 1;
            return (None, true);
        }
        slot.access = super::evict::touched(slot.access, now);
        (Some(&self.slots[i as usize]), false)
    }

    /// Inserts or overwrites `key` with `value` and expiry (0 = none).
    pub fn set(&mut self, hash: u64, key: &[u8], value: &[u8], expires_at: u64) {
        self.touch(key);
        match self.find(hash, key) {
            Some(i) => {
                self.make_string(i);
                let slot = &mut self.slots[i as usize];
                if let Body::Str(data) = &mut slot.body {
                    data.truncate(slot.key_len as usize);
                    data.extend_from_slice(value);
                }
                self.set_expiry_slot(i, expires_at);
            }
            None => self.insert_new(hash, key, value, expires_at),
        }
    }

    /// Turns slot `i` into an empty string of the same key (a string write
    /// over a value of another type replaces it, as `SET` does in Redis).
    fn make_string(&mut self, i: u32) {
        if matches!(self.slots[i as usize].body, Body::Str(_)) {
            return;
        }
        self.untrack_hfe(i);
        let slot = &mut self.slots[i as usize];
        let data = slot.key().to_vec();
        slot.body = Body::Str(data);
    }

    /// Appends to `key`'s value (creating it), keeping its TTL. Returns the new length.
    pub fn append(&mut self, hash: u64, key: &[u8], tail: &[u8]) -> usize {
        self.touch(key);
        match self.find(hash, key) {
            Some(i) => {
                self.make_string(i);
                let slot = &mut self.slots[i as usize];
                if let Body::Str(data) = &mut slot.body {
                    data.extend_from_slice(tail);
                }
                slot.value().len()
            }
            None => {
                self.insert_new(hash, key, tail, 0);
                tail.len()
            }
        }
    }

    /// Mutable access to an existing value (for `SETRANGE`); the closure may resize it.
    pub fn with_value_mut<R>(
        &mut self,
        hash: u64,
        key: &[u8],
        f: impl FnOnce(&mut ValueMut<'_>) -> R,
    ) -> Option<R> {
        let i = self.find(hash, key)?;
        self.touch(key);
        let slot = &mut self.slots[i as usize];
        let Body::Str(data) = &mut slot.body else {
            return None;
        };
        let mut value = ValueMut {
            data,
            key_len: slot.key_len as usize,
        };
        Some(f(&mut value))
    }

    /// Removes `key`. Returns true if it existed (expired or not).
    pub fn remove(&mut self, hash: u64, key: &[u8]) -> bool {
        match self.find(hash, key) {
            Some(i) => {
                self.remove_slot(i);
                true
            }
            None => false,
        }
    }

    /// Sets or clears (0) the expiry of an existing `key`. Returns false if absent.
    pub fn set_expiry(&mut self, hash: u64, key: &[u8], expires_at: u64) -> bool {
        match self.find(hash, key) {
            Some(i) => {
                self.touch(key);
                self.set_expiry_slot(i, expires_at);
                true
            }
            None => false,
        }
    }

    /// Drops every entry and releases the memory. Watched keys that existed
    /// count as changed; watching itself survives (FLUSHALL, FLUSHDB).
    pub fn clear(&mut self) {
        let mut watched = std::mem::take(&mut self.watched);
        for (key, entry) in watched.iter_mut() {
            if self.find(entry.hash, key).is_some() {
                entry.version += 1;
            }
        }
        *self = ShardMap {
            lock_acquisitions: self.lock_acquisitions,
            expired: self.expired,
            expired_fields: self.expired_fields,
            evicted: self.evicted,
            watched,
            ..ShardMap::default()
        };
    }

    /// A random slot index of an entry with a TTL (volatile eviction policies).
    pub fn random_ttl_slot(&self, mut random: impl FnMut() -> u64) -> Option<usize> {
        if self.ttl_slots.is_empty() {
            return None;
        }
        let pos = (random() % self.ttl_slots.len() as u64) as usize;
        Some(self.ttl_slots[pos] as usize)
    }

    /// Registers one more watcher of `key` and returns the key's change
    /// counter, to compare with [`ShardMap::watch_version`] at `EXEC`.
    pub fn watch(&mut self, hash: u64, key: &[u8]) -> u64 {
        if let Some(entry) = self.watched.get_mut(key) {
            entry.watchers += 1;
            return entry.version;
        }
        self.watched.insert(
            key.into(),
            WatchEntry {
                hash,
                watchers: 1,
                version: 0,
            },
        );
        0
    }

    /// Removes one watcher of `key`; the entry goes with the last one.
    pub fn unwatch(&mut self, _hash: u64, key: &[u8]) {
        if let Some(entry) = self.watched.get_mut(key) {
            entry.watchers -= 1;
            if entry.watchers == 0 {
                self.watched.remove(key);
            }
        }
    }

    /// The change counter of a watched `key` (`None` if nobody watches it).
    pub fn watch_version(&self, _hash: u64, key: &[u8]) -> Option<u64> {
        self.watched.get(key).map(|e| e.version)
    }

    /// Number of distinct watched keys in this shard.
    pub fn watched_len(&self) -> usize {
        self.watched.len()
    }

    /// Records a change of `key` for its watchers, if any.
    #[inline]
    fn touch(&mut self, key: &[u8]) {
        if !self.watched.is_empty() {
            self.touch_watched(key);
        }
    }

    #[cold]
    fn touch_watched(&mut self, key: &[u8]) {
        if let Some(entry) = self.watched.get_mut(key) {
            entry.version += 1;
        }
    }

    /// The occupied slot at `index`, if any (SCAN and sampling).
    pub fn slot(&self, index: usize) -> Option<&Slot> {
        self.slots.get(index).filter(|s| !s.is_vacant())
    }

    /// Iterates occupied slots with their indexes.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Slot)> {
        self.slots.iter().enumerate().filter(|(_, s)| !s.is_vacant())
    }

    /// Picks an occupied slot index using `random` as the source of entropy.
    /// Tries a few random slots, then walks forward, so a sparse slot vector
    /// still answers in bounded time.
    pub fn random_slot(&self, mut random: impl FnMut() -> u64) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let n = self.slots.len();
        for _ in 0..16 {
            let i = (random() % n as u64) as usize;
            if !self.slots[i].is_vacant() {
                return Some(i);
            }
        }
        let start = (random() % n as u64) as usize;
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| !self.slots[i].is_vacant())
    }

    /// Samples up to `count` keys with a TTL and removes the expired ones.
    /// Returns (sampled, removed): the caller repeats while many were expired.
    pub fn expire_sample(
        &mut self,
        count: usize,
        now: u64,
        mut random: impl FnMut() -> u64,
    ) -> (usize, usize) {
        let mut sampled = 0;
        let mut removed = 0;
        while sampled < count && !self.ttl_slots.is_empty() {
            let pos = (random() % self.ttl_slots.len() as u64) as usize;
            let i = self.ttl_slots[pos];
            sampled += 1;
            if self.slots[i as usize].is_expired(now) {
                self.remove_slot(i);
                self.expired += 1;
                removed += 1;
            }
        }
        (sampled, removed)
    }

    /// The live hash at `key`: `Ok(None)` if the key is missing (or expired,
    /// or every field expired), `Err(WrongType)` if it holds another type.
    /// Expired fields are purged on the way (lazy field expiry).
    pub fn hash_get(&mut self, hash: u64, key: &[u8], now: u64) -> Result<Option<&Hash>, WrongType> {
        let Some(i) = self.live_hash_slot(hash, key, now)? else {
            return Ok(None);
        };
        match &self.slots[i as usize].body {
            Body::Hash(h) => Ok(Some(&h.hash)),
            Body::Str(_) => Err(WrongType),
        }
    }

    /// Runs `f` on the live hash at `key`, creating an empty one first if
    /// `create` (`Ok(None)` when missing and not created). Afterwards an
    /// emptied hash is deleted and field-TTL tracking is brought up to date.
    pub fn hash_update<R>(
        &mut self,
        hash: u64,
        key: &[u8],
        now: u64,
        create: bool,
        f: impl FnOnce(&mut Hash) -> R,
    ) -> Result<Option<R>, WrongType> {
        let i = match self.live_hash_slot(hash, key, now)? {
            Some(i) => i,
            None if create => self.insert_hash(hash, key, Hash::new(), 0),
            None => return Ok(None),
        };
        let Body::Hash(body) = &mut self.slots[i as usize].body else {
            return Err(WrongType);
        };
        let result = f(&mut body.hash);
        self.touch(key);
        self.after_hash_change(i);
        Ok(Some(result))
    }

    /// Key-level lazy expiry, type check and field purge; the slot of a live hash.
    fn live_hash_slot(&mut self, hash: u64, key: &[u8], now: u64) -> Result<Option<u32>, WrongType> {
        let Some(i) = self.find(hash, key) else {
            return Ok(None);
        };
        if self.slots[i as usize].is_expired(now) {
            self.remove_slot(i);
            self.expired += 1;
            return Ok(None);
        }
        let Body::Hash(body) = &mut self.slots[i as usize].body else {
            return Err(WrongType);
        };
        if body.hash.min_expiry() != 0 && body.hash.min_expiry() <= now {
            let purged = body.hash.purge_expired(now);
            let emptied = body.hash.is_empty();
            self.expired_fields += purged as u64;
            if purged > 0 {
                self.touch(key);
            }
            if emptied {
                self.remove_slot(i);
                return Ok(None);
            }
            self.after_hash_change(i);
        }
        Ok(Some(i))
    }

    /// Deletes an emptied hash; keeps `hfe_slots` in step with the hash's field TTLs.
    fn after_hash_change(&mut self, i: u32) {
        let Body::Hash(body) = &self.slots[i as usize].body else {
            return;
        };
        if body.hash.is_empty() {
            self.remove_slot(i);
        } else if body.hash.has_field_ttls() {
            if body.hfe_pos == NO_TTL {
                let pos = self.hfe_slots.len() as u32;
                self.hfe_slots.push(i);
                if let Body::Hash(body) = &mut self.slots[i as usize].body {
                    body.hfe_pos = pos;
                }
            }
        } else {
            self.untrack_hfe(i);
        }
    }

    fn untrack_hfe(&mut self, i: u32) {
        let Body::Hash(body) = &mut self.slots[i as usize].body else {
            return;
        };
        if body.hfe_pos == NO_TTL {
            return;
        }
        let pos = body.hfe_pos as usize;
        body.hfe_pos = NO_TTL;
        self.hfe_slots.swap_remove(pos);
        if let Some(&moved) = self.hfe_slots.get(pos) {
            if let Body::Hash(body) = &mut self.slots[moved as usize].body {
                body.hfe_pos = pos as u32;
            }
        }
    }

    /// Stores `value` at `key` (replacing any value of any type) with `expires_at` (0 = none).
    pub fn put_value(&mut self, hash: u64, key: &[u8], value: Value, expires_at: u64) {
        self.touch(key);
        match value {
            Value::String(v) => self.set(hash, key, &v, expires_at),
            Value::Hash(h) => {
                if let Some(i) = self.find(hash, key) {
                    self.remove_slot(i);
                }
                let i = self.insert_hash(hash, key, h, expires_at);
                self.after_hash_change(i);
            }
        }
    }

    /// Removes `key` and returns its value and expiry (0 = none), if present.
    pub fn take_value(&mut self, hash: u64, key: &[u8]) -> Option<(Value, u64)> {
        let i = self.find(hash, key)?;
        self.touch(key);
        self.untrack_hfe(i);
        let slot = &mut self.slots[i as usize];
        let expires_at = slot.expires_at;
        // Move the value out but keep the key: remove_slot reads it (watchers).
        let value = match &mut slot.body {
            Body::Str(data) => Value::String(data[slot.key_len as usize..].to_vec()),
            Body::Hash(body) => Value::Hash(std::mem::take(&mut body.hash)),
        };
        self.remove_slot(i);
        Some((value, expires_at))
    }

    fn insert_hash(&mut self, hash: u64, key: &[u8], value: Hash, expires_at: u64) -> u32 {
        let body = Body::Hash(Box::new(HashBody {
            key: key.into(),
            hash: value,
            hfe_pos: NO_TTL,
        }));
        self.insert_body(hash, key.len() as u32, body, expires_at)
    }

    /// Hashes with field TTLs (INFO keyspace's `subexpiry`).
    pub fn hfe_len(&self) -> usize {
        self.hfe_slots.len()
    }

    /// Samples up to `count` hashes with field TTLs and purges their expired
    /// fields, deleting hashes left empty. Returns (sampled, fields removed).
    pub fn expire_fields_sample(
        &mut self,
        count: usize,
        now: u64,
        mut random: impl FnMut() -> u64,
    ) -> (usize, usize) {
        let mut sampled = 0;
        let mut removed = 0;
        while sampled < count && !self.hfe_slots.is_empty() {
            let pos = (random() % self.hfe_slots.len() as u64) as usize;
            let i = self.hfe_slots[pos];
            sampled += 1;
            if self.slots[i as usize].is_expired(now) {
                self.remove_slot(i);
                self.expired += 1;
                continue;
            }
            if let Body::Hash(body) = &mut self.slots[i as usize].body {
                let n = body.hash.purge_expired(now);
                self.expired_fields += n as u64;
                removed += n;
                if n > 0 && !self.watched.is_empty() {
                    let key = body.key.clone();
                    self.touch_watched(&key);
                }
            }
            self.after_hash_change(i);
        }
        (sampled, removed)
    }

    fn insert_new(&mut self, hash: u64, key: &[u8], value: &[u8], expires_at: u64) {
        let mut data = Vec::with_capacity(key.len() + value.len());
        data.extend_from_slice(key);
        data.extend_from_slice(value);
        self.insert_body(hash, key.len() as u32, Body::Str(data), expires_at);
    }

    fn insert_body(&mut self, hash: u64, key_len: u32, body: Body, expires_at: u64) -> u32 {
        let slot = Slot {
            body,
            key_len,
            ttl_pos: NO_TTL,
            tag: hash as u32,
            access: super::evict::initial_access(),
            expires_at: 0,
        };
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.table
            .insert_unique(table_hash(hash as u32), entry(hash as u32, index), |&e| {
                table_hash(entry_tag(e))
            });
        self.len += 1;
        self.set_expiry_slot(index, expires_at);
        index
    }

    fn set_expiry_slot(&mut self, i: u32, expires_at: u64) {
        let slot = &mut self.slots[i as usize];
        slot.expires_at = expires_at;
        match (expires_at != 0, slot.ttl_pos != NO_TTL) {
            (true, false) => {
                slot.ttl_pos = self.ttl_slots.len() as u32;
                self.ttl_slots.push(i);
            }
            (false, true) => self.untrack_ttl(i),
            _ => {}
        }
    }

    fn untrack_ttl(&mut self, i: u32) {
        let pos = self.slots[i as usize].ttl_pos as usize;
        self.slots[i as usize].ttl_pos = NO_TTL;
        self.ttl_slots.swap_remove(pos);
        if let Some(&moved) = self.ttl_slots.get(pos) {
            self.slots[moved as usize].ttl_pos = pos as u32;
        }
    }

    fn remove_slot(&mut self, i: u32) {
        if !self.watched.is_empty() {
            // Deletes, lazy and active expiry and eviction all end here.
            let slot = &self.slots[i as usize];
            if let Some(entry) = self.watched.get_mut(slot.key()) {
                entry.version += 1;
            }
        }
        if self.slots[i as usize].ttl_pos != NO_TTL {
            self.untrack_ttl(i);
        }
        self.untrack_hfe(i);
        let tag = self.slots[i as usize].tag;
        if let Ok(found) = self.table.find_entry(table_hash(tag), |&e| entry_slot(e) == i) {
            found.remove();
        }
        let slot = &mut self.slots[i as usize];
        slot.body = Body::Str(Vec::new());
        slot.key_len = VACANT;
        slot.expires_at = 0;
        self.len -= 1;
        if self.len == 0 {
            // An emptied shard gives its slot vector back. Otherwise vacant slots
            // stay on the free list (48 bytes each): compacting the vector would
            // move live entries and break SCAN's guarantee.
            self.slots = Vec::new();
            self.free = Vec::new();
            self.table = HashTable::new();
            self.hfe_slots = Vec::new();
        } else {
            self.free.push(i);
        }
    }
}

/// The 64-bit hash the table works with, rebuilt from the 32 bits it stores:
/// the low bits pick the bucket, the top bits form hashbrown's tag byte.
#[inline]
fn table_hash(tag: u32) -> u64 {
    u64::from(tag) << 32 | u64::from(tag)
}

#[inline]
fn entry(tag: u32, slot: u32) -> u64 {
    u64::from(tag) << 32 | u64::from(slot)
}

#[inline]
fn entry_tag(entry: u64) -> u32 {
    (entry >> 32) as u32
}

#[inline]
fn entry_slot(entry: u64) -> u32 {
    entry as u32
}

/// A value being edited in place by `SETRANGE`.
pub struct ValueMut<'a> {
    data: &'a mut Vec<u8>,
    key_len: usize,
}

impl ValueMut<'_> {
    /// The current value.
    pub fn get(&self) -> &[u8] {
        &self.data[self.key_len..]
    }

    /// Overwrites from `offset`, zero-padding any gap, as `SETRANGE` does.
    pub fn write_at(&mut self, offset: usize, bytes: &[u8]) {
        let start = self.key_len + offset;
        if self.data.len() < start + bytes.len() {
            self.data.resize(start + bytes.len(), 0);
        }
        self.data[start..start + bytes.len()].copy_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(key: &[u8]) -> u64 {
        key.iter().fold(1469598103934665603u64, |a, &b| {
            (a ^ b as u64).wrapping_mul(1099511628211)
        })
    }

    #[test]
    fn set_get_overwrite_remove() {
        let mut m = ShardMap::default();
        m.set(h(b"a"), b"a", b"1", 0);
        m.set(h(b"b"), b"b", b"2", 0);
        m.set(h(b"a"), b"a", b"333", 0);
        assert_eq!(
            m.get_raw(h(b"a"), b"a").map(|s| s.value().to_vec()),
            Some(b"333".to_vec())
        );
        assert_eq!(m.len(), 2);
        assert!(m.remove(h(b"a"), b"a"));
        assert!(!m.remove(h(b"a"), b"a"));
        assert_eq!(m.len(), 1);
        assert!(m.get_raw(h(b"b"), b"b").is_some());
    }

    #[test]
    fn entries_keep_their_slot_while_others_come_and_go() {
        let mut m = ShardMap::default();
        for i in 0..100u32 {
            let k = i.to_be_bytes();
            m.set(h(&k), &k, b"v", 0);
        }
        let slot_of = |m: &ShardMap, k: &[u8]| m.iter().find(|(_, s)| s.key() == k).map(|(i, _)| i);
        let before = slot_of(&m, &50u32.to_be_bytes());
        for i in (0..100u32).filter(|i| i % 3 == 0) {
            let k = i.to_be_bytes();
            m.remove(h(&k), &k);
        }
        for i in 100..200u32 {
            let k = i.to_be_bytes();
            m.set(h(&k), &k, b"v", 0);
        }
        assert_eq!(slot_of(&m, &50u32.to_be_bytes()), before);
    }

    #[test]
    fn ttl_tracking_follows_set_persist_and_remove() {
        let mut m = ShardMap::default();
        m.set(h(b"a"), b"a", b"1", 100);
        m.set(h(b"b"), b"b", b"1", 200);
        assert_eq!(m.ttl_len(), 2);
        m.set_expiry(h(b"a"), b"a", 0);
        assert_eq!(m.ttl_len(), 1);
        m.remove(h(b"b"), b"b");
        assert_eq!(m.ttl_len(), 0);
        m.set(h(b"c"), b"c", b"1", 50);
        let mut r = 0u64;
        let (_, removed) = m.expire_sample(20, 1000, || {
            r += 1;
            r
        });
        assert_eq!(removed, 1);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m.get_live(h(b"a"), b"a", 1000).0.map(|s| s.value().to_vec()),
            Some(b"1".to_vec())
        );
    }
}
