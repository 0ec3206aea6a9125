//! The hash value type: field → value, each field with an optional absolute
//! expiry (Redis 7.4's per-field TTL), in one of two representations.
//!
//! * **listpack** (compact): every field and value packed into one byte
//!   buffer as `varint(len) field varint(len) value`, scanned linearly. Most
//!   feature-store and session hashes have 5–50 short fields, and one buffer
//!   per hash is the main memory lever (one allocation, no per-field
//!   pointers). Field expiries live in a parallel `Vec<u64>` that stays empty
//!   (no allocation) until the first field gets a TTL.
//! * **hashtable**: a `hashbrown::HashTable` of indexes into a vector of
//!   stable slots, used once a hash outgrows `hash-max-listpack-entries` or a
//!   field or value is longer than `hash-max-listpack-value`. A removed field
//!   leaves a vacant slot for reuse and a live field never moves, so `HSCAN`
//!   can use the slot index as its cursor (the same argument as the shard
//!   map's `SCAN`). A hash never converts back, as in Redis.
//!
//! The second half of this file is the hash's place in the shard map: the
//! typed lookup with lazy field expiry, and the `hfe` index of hashes with
//! field TTLs that the active expiry cycle samples (as `ttl` is for keys).
//!
//! This module knows nothing of commands, the WAL or locking. Expired fields
//! are not hidden by every accessor: callers run [`Hash::purge_expired`]
//! first (the store does this on every access), which keeps lookups cheap.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use hashbrown::HashTable;

use super::super::evict;
use super::super::glob_match;
use super::super::shard::{ShardMap, Slot, WrongType, NO_TTL};

/// Redis's default `hash-max-listpack-entries`.
pub const DEFAULT_MAX_LISTPACK_ENTRIES: usize = 128;
/// Redis's default `hash-max-listpack-value`.
pub const DEFAULT_MAX_LISTPACK_VALUE: usize = 64;

/// The thresholds between the two representations, settable at runtime
/// (`CONFIG SET hash-max-listpack-entries`): they only affect hashes
/// created or grown afterwards, as in Redis.
#[derive(Debug)]
pub struct HashLimits {
    entries: AtomicUsize,
    value: AtomicUsize,
}

/// The process's thresholds: one setting for every database, changed by
/// `CONFIG SET` and read on every hash write.
pub fn limits() -> &'static HashLimits {
    static LIMITS: OnceLock<HashLimits> = OnceLock::new();
    LIMITS.get_or_init(HashLimits::default)
}

impl Default for HashLimits {
    fn default() -> Self {
        HashLimits {
            entries: AtomicUsize::new(DEFAULT_MAX_LISTPACK_ENTRIES),
            value: AtomicUsize::new(DEFAULT_MAX_LISTPACK_VALUE),
        }
    }
}

impl HashLimits {
    /// The current thresholds, read once per command.
    pub fn get(&self) -> Limits {
        Limits {
            max_entries: self.entries.load(Ordering::Relaxed),
            max_value: self.value.load(Ordering::Relaxed),
        }
    }

    /// Sets `hash-max-listpack-entries`.
    pub fn set_max_entries(&self, n: usize) {
        self.entries.store(n, Ordering::Relaxed);
    }

    /// Sets `hash-max-listpack-value`.
    pub fn set_max_value(&self, n: usize) {
        self.value.store(n, Ordering::Relaxed);
    }
}

/// A snapshot of [`HashLimits`].
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: DEFAULT_MAX_LISTPACK_ENTRIES,
            max_value: DEFAULT_MAX_LISTPACK_VALUE,
        }
    }
}

/// A hash value.
#[derive(Debug, Default)]
pub struct Hash {
    repr: Repr,
    /// A lower bound of the earliest field expiry (0: no field has a TTL as
    /// far as we know). Lets every access skip the purge with one compare;
    /// it is made exact again whenever a purge runs.
    min_expiry: u64,
}

#[derive(Debug)]
enum Repr {
    Compact(Compact),
    Table(Box<Table>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Compact(Compact::default())
    }
}

/// What a set did to the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOutcome {
    Created,
    Updated,
}

impl Hash {
    /// An empty hash (the caller adds a field before storing it).
    pub fn new() -> Hash {
        Hash::default()
    }

    /// Live fields plus expired fields not yet purged.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Compact(c) => c.len as usize,
            Repr::Table(t) => t.len,
        }
    }

    /// True if no field is left: the store then deletes the key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `OBJECT ENCODING`: `listpack` or `hashtable`.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Compact(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Heap bytes owned by this hash, as malloc rounds each allocation (for
    /// `MEMORY USAGE`); the `Hash` itself lives in its key's entry.
    pub fn memory_usage(&self) -> usize {
        let chunk = |n: usize| if n == 0 { 0 } else { crate::memory::chunk_size(n) };
        match &self.repr {
            Repr::Compact(c) => chunk(c.buf.capacity()) + chunk(c.ttls.capacity() * 8),
            Repr::Table(t) => {
                chunk(std::mem::size_of::<Table>())
                    + chunk(t.slots.capacity() * std::mem::size_of::<FieldSlot>())
                    + chunk(t.index.capacity() * (std::mem::size_of::<u32>() + 1))
                    + chunk(t.free.capacity() * 4)
                    + t.slots.iter().map(|s| chunk(s.data.len())).sum::<usize>()
            }
        }
    }

    /// True if some field may carry a TTL (the shard tracks such hashes for
    /// active expiry).
    pub fn has_field_ttls(&self) -> bool {
        self.min_expiry != 0
    }

    /// The earliest field expiry bound (0 = none).
    pub fn min_expiry(&self) -> u64 {
        self.min_expiry
    }

    /// Removes every field whose expiry is at or before `now`. Returns how
    /// many were removed. O(1) when nothing can have expired.
    pub fn purge_expired(&mut self, now: u64) -> usize {
        if self.min_expiry == 0 || self.min_expiry > now {
            return 0;
        }
        let (removed, min) = match &mut self.repr {
            Repr::Compact(c) => c.purge(now),
            Repr::Table(t) => t.purge(now),
        };
        self.min_expiry = min;
        removed
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Compact(c) => c.find(field).map(|e| e.value),
            Repr::Table(t) => t.find(field).map(|i| t.slots[i as usize].value()),
        }
    }

    /// The expiry of `field`: `None` if the field is missing, `Some(None)`
    /// if it has no TTL.
    pub fn expiry(&self, field: &[u8]) -> Option<Option<u64>> {
        match &self.repr {
            Repr::Compact(c) => c.find(field).map(|e| nonzero(c.ttl(e.ordinal))),
            Repr::Table(t) => t.find(field).map(|i| nonzero(t.slots[i as usize].expires_at)),
        }
    }

    /// Sets `field` to `value`. The field's TTL is cleared (HSET) unless
    /// `keep_ttl` (HINCRBY keeps it). Converts to a hashtable when the
    /// value or the entry count outgrows `limits`.
    pub fn set(&mut self, field: &[u8], value: &[u8], keep_ttl: bool, limits: Limits) -> SetOutcome {
        self.set_inner(field, value, if keep_ttl { None } else { Some(0) }, limits)
    }

    /// Sets `field` to `value` with exactly `expires_at` (None = no TTL):
    /// replay and compaction, where the record carries the final state.
    pub fn set_with_expiry(
        &mut self,
        field: &[u8],
        value: &[u8],
        expires_at: Option<u64>,
        limits: Limits,
    ) -> SetOutcome {
        self.set_inner(field, value, Some(expires_at.unwrap_or(0)), limits)
    }

    /// `ttl`: None keeps the current TTL, Some(0) clears it, Some(t) sets it.
    fn set_inner(&mut self, field: &[u8], value: &[u8], ttl: Option<u64>, limits: Limits) -> SetOutcome {
        if let Repr::Compact(c) = &self.repr {
            let too_long = field.len() > limits.max_value || value.len() > limits.max_value;
            let grows = c.find(field).is_none();
            if too_long || (grows && c.len as usize >= limits.max_entries) {
                self.convert_to_table();
            }
        }
        if let Some(at) = ttl.filter(|&at| at != 0) {
            self.note_expiry(at);
        }
        match &mut self.repr {
            Repr::Compact(c) => c.set(field, value, ttl),
            Repr::Table(t) => t.set(field, value, ttl),
        }
    }

    /// Removes `field`. Returns true if it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Compact(c) => c.remove(field),
            Repr::Table(t) => t.remove(field),
        }
    }

    /// Sets (Some) or clears (None) the TTL of an existing `field`.
    /// Returns false if the field does not exist.
    pub fn set_expiry(&mut self, field: &[u8], expires_at: Option<u64>) -> bool {
        let at = expires_at.unwrap_or(0);
        let found = match &mut self.repr {
            Repr::Compact(c) => match c.find(field).map(|e| e.ordinal) {
                Some(ordinal) => {
                    c.set_ttl(ordinal, at);
                    true
                }
                None => false,
            },
            Repr::Table(t) => match t.find(field) {
                Some(i) => {
                    t.slots[i as usize].expires_at = at;
                    true
                }
                None => false,
            },
        };
        if found && at != 0 {
            self.note_expiry(at);
        }
        found
    }

    fn note_expiry(&mut self, at: u64) {
        if self.min_expiry == 0 || at < self.min_expiry {
            self.min_expiry = at;
        }
    }

    /// Every field as (field, value, expiry), in storage order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8], Option<u64>)> + '_ {
        let (compact, table) = match &self.repr {
            Repr::Compact(c) => (
                Some(c.iter().map(|e| (e.field, e.value, nonzero(c.ttl(e.ordinal))))),
                None,
            ),
            Repr::Table(t) => (
                None,
                Some(
                    t.slots
                        .iter()
                        .filter(|s| !s.is_vacant())
                        .map(|s| (s.field(), s.value(), nonzero(s.expires_at))),
                ),
            ),
        };
        compact.into_iter().flatten().chain(table.into_iter().flatten())
    }

    /// A uniformly chosen field index in `0..len()` turned into an entry
    /// (`HRANDFIELD`): `random` supplies the entropy.
    pub fn random_entry(&self, mut random: impl FnMut() -> u64) -> Option<(&[u8], &[u8])> {
        if self.is_empty() {
            return None;
        }
        match &self.repr {
            Repr::Compact(c) => {
                let n = (random() % u64::from(c.len)) as usize;
                c.iter().nth(n).map(|e| (e.field, e.value))
            }
            Repr::Table(t) => {
                let n = t.slots.len() as u64;
                for _ in 0..32 {
                    let s = &t.slots[(random() % n) as usize];
                    if !s.is_vacant() {
                        return Some((s.field(), s.value()));
                    }
                }
                let start = (random() % n) as usize;
                (0..t.slots.len())
                    .map(|k| &t.slots[(start + k) % t.slots.len()])
                    .find(|s| !s.is_vacant())
                    .map(|s| (s.field(), s.value()))
            }
        }
    }

    /// One `HSCAN` step: pushes fields (and values) matching `pattern` from
    /// `cursor` on into `out`, examining about `count` slots, and returns the
    /// next cursor (0 at the end). A listpack is returned whole, as in Redis.
    pub fn scan<'h>(
        &'h self,
        cursor: u64,
        count: usize,
        pattern: Option<&[u8]>,
        out: &mut Vec<(&'h [u8], &'h [u8])>,
    ) -> u64 {
        let matches = |f: &[u8]| pattern.is_none_or(|p| glob_match(p, f));
        match &self.repr {
            Repr::Compact(c) => {
                out.extend(c.iter().filter(|e| matches(e.field)).map(|e| (e.field, e.value)));
                0
            }
            Repr::Table(t) => {
                let mut i = cursor as usize;
                let mut examined = 0;
                let mut budget = count.saturating_mul(10).max(100);
                while i < t.slots.len() {
                    if examined >= count || budget == 0 {
                        return i as u64;
                    }
                    budget -= 1;
                    let s = &t.slots[i];
                    if !s.is_vacant() {
                        examined += 1;
                        if matches(s.field()) {
                            out.push((s.field(), s.value()));
                        }
                    }
                    i += 1;
                }
                0
            }
        }
    }

    fn convert_to_table(&mut self) {
        let Repr::Compact(c) = &self.repr else {
            return;
        };
        let mut table = Table::with_capacity(c.len as usize + 1);
        for e in c.iter() {
            table.set(e.field, e.value, Some(c.ttl(e.ordinal)));
        }
        self.repr = Repr::Table(Box::new(table));
    }
}

fn nonzero(at: u64) -> Option<u64> {
    (at != 0).then_some(at)
}

// ---------------------------------------------------------------- listpack

/// The compact representation.
#[derive(Debug, Default)]
struct Compact {
    /// `varint(field len) field varint(value len) value`, repeated.
    buf: Vec<u8>,
    /// Field expiries by ordinal (0 = none); empty when no field has a TTL.
    ttls: Vec<u64>,
    len: u32,
}

/// One decoded listpack entry.
struct Entry<'a> {
    ordinal: usize,
    /// Byte range of the whole entry in the buffer.
    start: usize,
    end: usize,
    field: &'a [u8],
    value: &'a [u8],
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// Reads a varint at `*pos` (the buffer is always well formed: we wrote it).
fn get_varint(buf: &[u8], pos: &mut usize) -> usize {
    let mut n = 0usize;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        n |= usize::from(b & 0x7f) << shift;
        if b < 0x80 {
            return n;
        }
        shift += 7;
    }
}

struct CompactIter<'a> {
    buf: &'a [u8],
    pos: usize,
    ordinal: usize,
}

impl<'a> Iterator for CompactIter<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let mut pos = self.pos;
        let flen = get_varint(self.buf, &mut pos);
        let field = &self.buf[pos..pos + flen];
        pos += flen;
        let vlen = get_varint(self.buf, &mut pos);
        let value = &self.buf[pos..pos + vlen];
        pos += vlen;
        self.pos = pos;
        let ordinal = self.ordinal;
        self.ordinal += 1;
        Some(Entry {
            ordinal,
            start,
            end: pos,
            field,
            value,
        })
    }
}

impl Compact {
    fn iter(&self) -> CompactIter<'_> {
        CompactIter {
            buf: &self.buf,
            pos: 0,
            ordinal: 0,
        }
    }

    fn find(&self, field: &[u8]) -> Option<Entry<'_>> {
        self.iter().find(|e| e.field == field)
    }

    fn ttl(&self, ordinal: usize) -> u64 {
        self.ttls.get(ordinal).copied().unwrap_or(0)
    }

    fn set_ttl(&mut self, ordinal: usize, at: u64) {
        if at == 0 && self.ttls.is_empty() {
            return;
        }
        if self.ttls.is_empty() {
            self.ttls = vec![0; self.len as usize];
        }
        self.ttls[ordinal] = at;
    }

    /// `ttl`: None keeps, Some(0) clears, Some(t) sets.
    fn set(&mut self, field: &[u8], value: &[u8], ttl: Option<u64>) -> SetOutcome {
        let found = self
            .find(field)
            .map(|e| (e.ordinal, e.start, e.end, e.value.len()));
        match found {
            Some((ordinal, start, end, old_len)) => {
                if old_len == value.len() {
                    // Same length: overwrite in place.
                    self.buf[end - old_len..end].copy_from_slice(value);
                } else {
                    let mut entry = Vec::with_capacity(end - start - old_len + value.len() + 4);
                    put_varint(&mut entry, field.len());
                    entry.extend_from_slice(field);
                    put_varint(&mut entry, value.len());
                    entry.extend_from_slice(value);
                    if entry.len() > end - start {
                        self.buf.reserve_exact(entry.len() - (end - start));
                    }
                    self.buf.splice(start..end, entry);
                }
                if let Some(at) = ttl {
                    self.set_ttl(ordinal, at);
                }
                SetOutcome::Updated
            }
            None => {
                let need = varint_len(field.len()) + field.len() + varint_len(value.len()) + value.len();
                self.buf.reserve_exact(need);
                put_varint(&mut self.buf, field.len());
                self.buf.extend_from_slice(field);
                put_varint(&mut self.buf, value.len());
                self.buf.extend_from_slice(value);
                self.len += 1;
                if !self.ttls.is_empty() {
                    self.ttls.push(0);
                }
                if let Some(at) = ttl {
                    self.set_ttl(self.len as usize - 1, at);
                }
                SetOutcome::Created
            }
        }
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let Some((ordinal, start, end)) = self.find(field).map(|e| (e.ordinal, e.start, e.end)) else {
            return false;
        };
        self.buf.drain(start..end);
        self.len -= 1;
        if !self.ttls.is_empty() {
            self.ttls.remove(ordinal);
        }
        if self.len == 0 {
            self.buf = Vec::new();
            self.ttls = Vec::new();
        }
        true
    }

    /// Removes expired fields; returns (removed, exact new minimum expiry).
    fn purge(&mut self, now: u64) -> (usize, u64) {
        if self.ttls.is_empty() {
            return (0, 0);
        }
        let mut kept = Vec::with_capacity(self.buf.len());
        let mut ttls = Vec::with_capacity(self.ttls.len());
        let mut removed = 0;
        let mut min = 0u64;
        for e in self.iter() {
            let at = self.ttls[e.ordinal];
            if at != 0 && at <= now {
                removed += 1;
                continue;
            }
            kept.extend_from_slice(&self.buf[e.start..e.end]);
            ttls.push(at);
            if at != 0 && (min == 0 || at < min) {
                min = at;
            }
        }
        if removed > 0 {
            kept.shrink_to_fit();
            self.buf = kept;
            self.len -= removed as u32;
        }
        self.ttls = if min == 0 { Vec::new() } else { ttls };
        (removed, min)
    }
}

// --------------------------------------------------------------- hashtable

const VACANT: u32 = u32::MAX;

/// The hasher of field names: one per process (fields are not attacker-
/// chosen bucket keys any more than keys are; ahash is keyed randomly).
fn field_hasher() -> &'static ahash::RandomState {
    static HASHER: OnceLock<ahash::RandomState> = OnceLock::new();
    HASHER.get_or_init(ahash::RandomState::new)
}

#[derive(Debug)]
struct FieldSlot {
    /// `field ++ value` in one allocation.
    data: Box<[u8]>,
    field_len: u32,
    expires_at: u64,
}

impl FieldSlot {
    fn field(&self) -> &[u8] {
        &self.data[..self.field_len as usize]
    }
    fn value(&self) -> &[u8] {
        &self.data[self.field_len as usize..]
    }
    fn is_vacant(&self) -> bool {
        self.field_len == VACANT
    }
}

/// The hashtable representation.
#[derive(Debug, Default)]
struct Table {
    index: HashTable<u32>,
    slots: Vec<FieldSlot>,
    free: Vec<u32>,
    len: usize,
}

fn joined(field: &[u8], value: &[u8]) -> Box<[u8]> {
    let mut data = Vec::with_capacity(field.len() + value.len());
    data.extend_from_slice(field);
    data.extend_from_slice(value);
    data.into_boxed_slice()
}

impl Table {
    fn with_capacity(n: usize) -> Table {
        Table {
            index: HashTable::with_capacity(n),
            slots: Vec::with_capacity(n),
            free: Vec::new(),
            len: 0,
        }
    }

    fn find(&self, field: &[u8]) -> Option<u32> {
        let hash = field_hasher().hash_one(field);
        self.index
            .find(hash, |&i| self.slots[i as usize].field() == field)
            .copied()
    }

    fn set(&mut self, field: &[u8], value: &[u8], ttl: Option<u64>) -> SetOutcome {
        if let Some(i) = self.find(field) {
            let slot = &mut self.slots[i as usize];
            if slot.value() != value {
                slot.data = joined(field, value);
            }
            if let Some(at) = ttl {
                slot.expires_at = at;
            }
            return SetOutcome::Updated;
        }
        let slot = FieldSlot {
            data: joined(field, value),
            field_len: field.len() as u32,
            expires_at: ttl.unwrap_or(0),
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        self.index.insert_unique(field_hasher().hash_one(field), i, |&j| {
            field_hasher().hash_one(slots[j as usize].field())
        });
        self.len += 1;
        SetOutcome::Created
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let hash = field_hasher().hash_one(field);
        let slots = &self.slots;
        let Ok(entry) = self
            .index
            .find_entry(hash, |&i| slots[i as usize].field() == field)
        else {
            return false;
        };
        let (i, _) = entry.remove();
        self.vacate(i);
        true
    }

    fn vacate(&mut self, i: u32) {
        let slot = &mut self.slots[i as usize];
        slot.data = Box::default();
        slot.field_len = VACANT;
        slot.expires_at = 0;
        self.len -= 1;
        self.free.push(i);
    }

    fn purge(&mut self, now: u64) -> (usize, u64) {
        let mut expired = Vec::new();
        let mut min = 0u64;
        for (i, s) in self.slots.iter().enumerate() {
            if s.is_vacant() || s.expires_at == 0 {
                continue;
            }
            if s.expires_at <= now {
                expired.push(i as u32);
            } else if min == 0 || s.expires_at < min {
                min = s.expires_at;
            }
        }
        for &i in &expired {
            let hash = field_hasher().hash_one(self.slots[i as usize].field());
            if let Ok(entry) = self.index.find_entry(hash, |&j| j == i) {
                entry.remove();
            }
            self.vacate(i);
        }
        (expired.len(), min)
    }
}

/// The hash type's operations on the shard map.
impl ShardMap {
    /// The live hash at `key`: `Ok(None)` if the key is missing (or expired,
    /// or every field expired), `Err(WrongType)` if it holds another type.
    /// Expired fields are purged on the way (lazy field expiry).
    pub fn hash_get(&mut self, hash: u64, key: &[u8], now: u64) -> Result<Option<&Hash>, WrongType> {
        let Some(i) = self.live_hash_slot(hash, key, now)? else {
            return Ok(None);
        };
        Ok(self.slots[i as usize].hash_body().map(|b| &b.hash))
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
            None if create => {
                let slot = Slot::new_hash(key, Hash::new(), evict::initial_access());
                self.insert_slot(hash, slot, 0)
            }
            None => return Ok(None),
        };
        let Some(body) = self.slots[i as usize].hash_body_mut() else {
            return Err(WrongType);
        };
        let result = f(&mut body.hash);
        self.touch(key);
        self.after_hash_change(i);
        Ok(Some(result))
    }

    /// Key-level lazy expiry, type check, access stamp and field purge; the
    /// slot of a live hash.
    fn live_hash_slot(&mut self, hash: u64, key: &[u8], now: u64) -> Result<Option<u32>, WrongType> {
        let Some(i) = self.live_index(hash, key, now, true).0 else {
            return Ok(None);
        };
        let Some(body) = self.slots[i as usize].hash_body_mut() else {
            return Err(WrongType);
        };
        if body.hash.min_expiry() != 0 && body.hash.min_expiry() <= now {
            let purged = body.hash.purge_expired(now);
            let emptied = body.hash.is_empty();
            self.expired_fields += purged as u64;
            if purged > 0 {
                crate::notify::emit_here(crate::notify::HASH, "hexpired", key);
                if emptied {
                    crate::notify::emit_here(crate::notify::GENERIC, "del", key);
                }
            }
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

    /// Deletes an emptied hash; keeps `hfe` in step with the hash's field TTLs.
    pub(in crate::store) fn after_hash_change(&mut self, i: u32) {
        let Some(body) = self.slots[i as usize].hash_body() else {
            return;
        };
        if body.hash.is_empty() {
            self.remove_slot(i);
        } else if body.hash.has_field_ttls() {
            if body.hfe_pos == NO_TTL {
                let pos = self.hfe.len() as u32;
                self.hfe.push(i);
                if let Some(body) = self.slots[i as usize].hash_body_mut() {
                    body.hfe_pos = pos;
                }
            }
        } else {
            self.untrack_hfe(i);
        }
    }

    pub(in crate::store) fn untrack_hfe(&mut self, i: u32) {
        let Some(body) = self.slots[i as usize].hash_body_mut() else {
            return;
        };
        if body.hfe_pos == NO_TTL {
            return;
        }
        let pos = body.hfe_pos as usize;
        body.hfe_pos = NO_TTL;
        self.hfe.swap_remove(pos);
        if let Some(&moved) = self.hfe.get(pos) {
            if let Some(body) = self.slots[moved as usize].hash_body_mut() {
                body.hfe_pos = pos as u32;
            }
        }
    }

    /// Hashes with field TTLs (INFO keyspace's `subexpiry`).
    pub fn hfe_len(&self) -> usize {
        self.hfe.len()
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
        while sampled < count && !self.hfe.is_empty() {
            let pos = (random() % self.hfe.len() as u64) as usize;
            let i = self.hfe[pos];
            sampled += 1;
            let expires_at = self.expires_at_of(i);
            if expires_at != 0 && expires_at <= now {
                self.expire_slot(i);
                continue;
            }
            let watched = self.has_watchers();
            let mut changed_key = None;
            if let Some(body) = self.slots[i as usize].hash_body_mut() {
                let n = body.hash.purge_expired(now);
                self.expired_fields += n as u64;
                removed += n;
                if n > 0 {
                    crate::notify::emit_here(crate::notify::HASH, "hexpired", &body.key);
                    if body.hash.is_empty() {
                        crate::notify::emit_here(crate::notify::GENERIC, "del", &body.key);
                    }
                }
                if n > 0 && watched {
                    changed_key = Some(body.key.clone());
                }
            }
            if let Some(key) = changed_key {
                self.touch_watched(&key);
            }
            self.after_hash_change(i);
        }
        (sampled, removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Limits {
        Limits {
            max_entries: 4,
            max_value: 8,
        }
    }

    fn fields(h: &Hash) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut v: Vec<_> = h.iter().map(|(f, v, _)| (f.to_vec(), v.to_vec())).collect();
        v.sort();
        v
    }

    #[test]
    fn a_small_hash_is_a_listpack_and_behaves_like_a_map() {
        let mut h = Hash::new();
        assert_eq!(h.set(b"a", b"1", false, small()), SetOutcome::Created);
        assert_eq!(h.set(b"b", b"2", false, small()), SetOutcome::Created);
        assert_eq!(h.set(b"a", b"111", false, small()), SetOutcome::Updated);
        assert_eq!(h.get(b"a"), Some(&b"111"[..]));
        assert_eq!(h.get(b"b"), Some(&b"2"[..]));
        assert_eq!(h.encoding(), "listpack");
        assert!(h.remove(b"a"));
        assert!(!h.remove(b"a"));
        assert_eq!(h.len(), 1);
        assert_eq!(fields(&h), vec![(b"b".to_vec(), b"2".to_vec())]);
    }

    #[test]
    fn outgrowing_either_threshold_converts_to_a_hashtable_keeping_fields_and_ttls() {
        let mut h = Hash::new();
        for i in 0..4u8 {
            h.set(&[b'f', i], b"v", false, small());
        }
        h.set_expiry(b"f\x01", Some(5000));
        assert_eq!(h.encoding(), "listpack");
        h.set(b"f\x04", b"v", false, small());
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 5);
        assert_eq!(h.expiry(b"f\x01"), Some(Some(5000)));
        assert_eq!(h.expiry(b"f\x02"), Some(None));

        let mut long = Hash::new();
        long.set(b"f", b"123456789", false, small());
        assert_eq!(long.encoding(), "hashtable");
    }

    #[test]
    fn expired_fields_are_purged_and_the_minimum_is_tracked() {
        for limits in [
            small(),
            Limits {
                max_entries: 0,
                max_value: 0,
            },
        ] {
            let mut h = Hash::new();
            h.set(b"a", b"1", false, limits);
            h.set(b"b", b"2", false, limits);
            h.set(b"c", b"3", false, limits);
            h.set_expiry(b"a", Some(100));
            h.set_expiry(b"b", Some(200));
            assert_eq!(h.min_expiry(), 100);
            assert_eq!(h.purge_expired(99), 0);
            assert_eq!(h.purge_expired(150), 1);
            assert_eq!(h.min_expiry(), 200);
            assert_eq!(h.get(b"a"), None);
            // HSET clears the TTL, HINCRBY-style keep_ttl does not.
            h.set(b"b", b"x", true, limits);
            assert_eq!(h.expiry(b"b"), Some(Some(200)));
            h.set(b"b", b"y", false, limits);
            assert_eq!(h.expiry(b"b"), Some(None));
            assert_eq!(h.purge_expired(1000), 0);
            assert!(!h.has_field_ttls());
            assert_eq!(
                fields(&h),
                vec![(b"b".to_vec(), b"y".to_vec()), (b"c".to_vec(), b"3".to_vec())]
            );
        }
    }

    #[test]
    fn hashtable_scan_returns_every_field_present_throughout() {
        let limits = Limits {
            max_entries: 0,
            max_value: 0,
        };
        let mut h = Hash::new();
        for i in 0..200u32 {
            h.set(&i.to_be_bytes(), b"v", false, limits);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        loop {
            let mut out = Vec::new();
            cursor = h.scan(cursor, 10, None, &mut out);
            seen.extend(out.into_iter().map(|(f, _)| f.to_vec()));
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 200);
    }

    #[test]
    fn random_entries_come_from_the_hash() {
        let mut h = Hash::new();
        h.set(b"only", b"one", false, small());
        let mut x = 7u64;
        let (f, v) = h
            .random_entry(|| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                x
            })
            .unwrap();
        assert_eq!((f, v), (&b"only"[..], &b"one"[..]));
    }
}
