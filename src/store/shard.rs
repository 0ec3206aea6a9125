//! One shard's map: the type-agnostic part of the keyspace — binary keys in
//! stable slots, TTLs, the LRU/LFU word, SCAN cursors, sampling for expiry
//! and eviction, WATCH versions. Each value type's operations on it live
//! with the type, in `store::types::{string, hash, list, set, zset}`.
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
//! * `RANDOMKEY`, the active expiry cycle and eviction can sample in O(1).
//! * Keys with a TTL are listed in a side vector (`ttl`, 16 bytes a key with
//!   its absolute expiry) so the expiry cycle samples only them, like
//!   Redis's `expires` dict; keys without a TTL pay nothing for expiry.
//!
//! # Memory layout (24 + 4 bytes a key, plus the key and value bytes)
//! A [`Slot`] is 24 bytes: a thin pointer to one allocation holding
//! `key ++ value`, the two lengths, the TTL-index position and the LRU/LFU
//! access word. The table stores only the slot index (4 bytes + hashbrown's
//! control byte); the hash is recomputed from the key with the shard's copy
//! of the store's hasher when the table grows or an entry is removed, which
//! is cheaper than carrying it in every bucket. Storing a pair costs one
//! malloc of exactly its bytes; overwriting a value with one of the same
//! length reuses the allocation, and `APPEND`/`SETRANGE` switch the
//! allocation to power-of-two sizes so repeated appends stay amortised O(1).
//!
//! # Typed values
//! A string lives in the slot's own allocation. Any other value sets
//! [`BOXED_FLAG`] in `key_len`, and its pointer owns a body, with
//! `value_len` saying which: a boxed [`HashBody`] (the key and the
//! [`Hash`]), or, for a list, set or sorted set, a [`Collection`] (24 bytes)
//! and its key sharing one allocation (`collection_layout`): a small set or
//! sorted set is that allocation plus at most one packed buffer (none for a
//! set of ten small integers), as Redis's object plus listpack. Strings pay
//! nothing for types (the slot stays 24 bytes). The bodies and the type
//! check live here; what a type does with its value lives in its module.
//!
//! # Big strings without a copy
//! A string of at least [`SHARE_THRESHOLD`] bytes that arrived in a read
//! buffer of its own is stored as a boxed [`SharedBody`]: the key and a
//! [`SharedBytes`] range of that buffer, which the WAL may hold too until
//! the record is written. The value is never copied on the way in; the
//! first edit in place (`APPEND`, `SETRANGE`) copies it into an ordinary
//! slot allocation, where further edits grow it amortised.
//! Hashes with per-field TTLs are listed in `hfe` (like `ttl` for key TTLs)
//! so the active expiry cycle samples only them.

use std::alloc::{self, Layout};
use std::collections::HashMap;
use std::ptr::NonNull;

use hashbrown::HashTable;

use super::types::hash::Hash;
use super::types::Collection;
use crate::shared_bytes::SharedBytes;
#[cfg(doc)]
use crate::shared_bytes::SHARE_THRESHOLD;

/// Sentinel `key_len` of a vacant slot.
const VACANT: u32 = u32::MAX;
/// Sentinel `ttl_pos` of an entry without a TTL.
pub(super) const NO_TTL: u32 = u32::MAX;
/// Flag in `value_len`: the allocation has room to grow (see [`capacity_for`]).
const SPARE: u32 = 1 << 31;
/// The length bits of `value_len`.
const LEN_MASK: u32 = !SPARE;
/// Flag in `key_len`: the slot's pointer owns a boxed body instead of
/// `key ++ value` bytes, and `value_len` says which body ([`BODY_HASH`] or
/// [`BODY_SHARED`]). Keys are at most `proto-max-bulk-len` ≤ `i32::MAX`
/// bytes, so bit 31 is free in every live slot (only `VACANT` has all bits set).
const BOXED_FLAG: u32 = 1 << 31;
/// `value_len` of a boxed slot whose pointer owns a [`HashBody`].
const BODY_HASH: u32 = 0;
/// `value_len` of a boxed slot whose pointer owns a [`SharedBody`].
const BODY_SHARED: u32 = 1;
/// `value_len` of a boxed slot whose pointer owns a collection and its key ([`collection_layout`])
/// (a list, set or sorted set: `store::types`).
const BODY_COLLECTION: u32 = 2;
/// Above this, a growing value gets 1 MiB steps instead of doubling (as Redis's sds).
const MAX_DOUBLING: usize = 1024 * 1024;

/// Bytes allocated for `total` bytes of key and value: exactly `total`,
/// or, for a value that grows in place, the next power of two (multiples
/// of 1 MiB past 1 MiB). A function of the length alone, so the slot
/// needs no capacity field.
fn capacity_for(total: usize, spare: bool) -> usize {
    match (spare, total) {
        (false, _) | (true, 0) => total,
        (true, t) if t <= MAX_DOUBLING => t.next_power_of_two(),
        (true, t) => t.div_ceil(MAX_DOUBLING) * MAX_DOUBLING,
    }
}

fn layout(size: usize) -> Layout {
    // Alignment 1 and a size below isize::MAX (values are capped at 2 GiB by
    // config validation), so this cannot fail; if it ever did, failing the
    // allocation is the only sound answer.
    Layout::from_size_align(size, 1).unwrap_or_else(|_| alloc::handle_alloc_error(Layout::new::<u8>()))
}

/// The type of a stored value (`TYPE`, `SCAN ... TYPE`, `WRONGTYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    String,
    Hash,
    List,
    Set,
    ZSet,
}

impl ValueKind {
    /// The name `TYPE` answers.
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::String => "string",
            ValueKind::Hash => "hash",
            ValueKind::List => "list",
            ValueKind::Set => "set",
            ValueKind::ZSet => "zset",
        }
    }

    /// The kind `TYPE` calls `name` (`SCAN ... TYPE name`), if any.
    pub fn from_name(name: &[u8]) -> Option<ValueKind> {
        [
            ValueKind::String,
            ValueKind::Hash,
            ValueKind::List,
            ValueKind::Set,
            ValueKind::ZSet,
        ]
        .into_iter()
        .find(|k| name.eq_ignore_ascii_case(k.name().as_bytes()))
    }
}

/// The operation met a key holding another type (`WRONGTYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrongType;

/// What a hash slot's pointer owns.
#[derive(Debug)]
pub(super) struct HashBody {
    pub(super) key: Box<[u8]>,
    pub(super) hash: Hash,
    /// Position in the shard's `hfe` index, or `NO_TTL`.
    pub(super) hfe_pos: u32,
}

/// What a shared-string slot's pointer owns.
#[derive(Debug)]
pub(super) struct SharedBody {
    pub(super) key: Box<[u8]>,
    pub(super) value: SharedBytes,
}

/// A collection slot's pointer owns one allocation laid out as this
/// layout says: the [`Collection`] (24 bytes), then the key's `key_len`
/// bytes. One allocation and no key header instead of a boxed body plus a
/// boxed key: a small set or sorted set pays 48 bytes less per key (glibc's
/// 32-byte minimum chunk for the key, 16 for its fat pointer).
fn collection_layout(key_len: usize) -> (Layout, usize) {
    Layout::new::<Collection>()
        .extend(layout(key_len))
        .unwrap_or_else(|_| alloc::handle_alloc_error(Layout::new::<Collection>()))
}

/// An owned value taken out of the map (RENAME moves values of any type).
#[derive(Debug)]
pub enum Value {
    String(Vec<u8>),
    /// A big string kept without a copy (see the module doc).
    Shared(SharedBytes),
    Hash(Hash),
    /// A list, set or sorted set.
    Collection(Collection),
}

/// A borrowed value (compaction snapshots, typed reads).
#[derive(Clone, Copy, Debug)]
pub enum ValueRef<'a> {
    String(&'a [u8]),
    Hash(&'a Hash),
    Collection(&'a Collection),
}

/// One stored key and value. Owns its allocation, like a `Box<[u8]>` with
/// the length kept outside it.
pub struct Slot {
    pub(super) ptr: NonNull<u8>,
    pub(super) key_len: u32,
    /// Value length, plus the [`SPARE`] flag.
    pub(super) value_len: u32,
    pub(super) ttl_pos: u32,
    /// LRU clock or LFU counter, see `store::evict`.
    pub(super) access: u32,
}

// SAFETY: a Slot exclusively owns the allocation behind `ptr`, as a
// `Box<[u8]>` would; sharing `&Slot` only allows reads.
unsafe impl Send for Slot {}
// SAFETY: see above.
unsafe impl Sync for Slot {}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("value_len", &self.value().len())
            .finish()
    }
}

impl Slot {
    pub(super) fn new(key: &[u8], value: &[u8], access: u32) -> Slot {
        let mut slot = Slot {
            ptr: NonNull::dangling(),
            key_len: key.len() as u32,
            value_len: 0,
            ttl_pos: NO_TTL,
            access,
        };
        slot.ptr = reallocate(slot.ptr, 0, key.len() + value.len());
        slot.value_len = value.len() as u32;
        let bytes = slot.bytes_mut();
        bytes[..key.len()].copy_from_slice(key);
        bytes[key.len()..].copy_from_slice(value);
        slot
    }

    /// A hash slot owning `body`.
    pub(super) fn new_hash(key: &[u8], hash: Hash, access: u32) -> Slot {
        let body = Box::new(HashBody {
            key: key.into(),
            hash,
            hfe_pos: NO_TTL,
        });
        Slot {
            ptr: NonNull::from(Box::leak(body)).cast::<u8>(),
            key_len: key.len() as u32 | BOXED_FLAG,
            value_len: BODY_HASH,
            ttl_pos: NO_TTL,
            access,
        }
    }

    pub(super) fn is_vacant(&self) -> bool {
        self.key_len == VACANT
    }

    /// A string slot owning a [`SharedBody`].
    pub(super) fn new_shared(key: &[u8], value: SharedBytes, access: u32) -> Slot {
        let body = Box::new(SharedBody {
            key: key.into(),
            value,
        });
        Slot {
            ptr: NonNull::from(Box::leak(body)).cast::<u8>(),
            key_len: key.len() as u32 | BOXED_FLAG,
            value_len: BODY_SHARED,
            ttl_pos: NO_TTL,
            access,
        }
    }

    /// A collection slot owning `value` and a copy of `key` in one
    /// allocation (see [`collection_layout`]).
    pub(super) fn new_collection(key: &[u8], value: Collection, access: u32) -> Slot {
        let (body, key_at) = collection_layout(key.len());
        // SAFETY: the layout's size is at least size_of::<Collection>() > 0;
        // a null result is reported as allocation failure.
        let raw = unsafe { alloc::alloc(body) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(body)
        };
        // SAFETY: `ptr` is a fresh allocation of `body`, aligned for a
        // Collection at offset 0 with `key.len()` bytes from `key_at` on.
        unsafe {
            ptr.as_ptr().cast::<Collection>().write(value);
            std::ptr::copy_nonoverlapping(key.as_ptr(), ptr.as_ptr().add(key_at), key.len());
        }
        Slot {
            ptr,
            key_len: key.len() as u32 | BOXED_FLAG,
            value_len: BODY_COLLECTION,
            ttl_pos: NO_TTL,
            access,
        }
    }

    pub(super) fn is_collection(&self) -> bool {
        self.is_boxed() && self.value_len == BODY_COLLECTION
    }

    /// The key length of a boxed slot.
    fn boxed_key_len(&self) -> usize {
        (self.key_len & !BOXED_FLAG) as usize
    }

    pub(super) fn collection_body(&self) -> Option<&Collection> {
        // SAFETY: a collection slot's pointer came from `new_collection`: an
        // initialised Collection at offset 0, owned by this slot until
        // `clear`/`drop`.
        self.is_collection()
            .then(|| unsafe { &*(self.ptr.as_ptr() as *const Collection) })
    }

    pub(super) fn collection_body_mut(&mut self) -> Option<&mut Collection> {
        // SAFETY: as in `collection_body`, and `&mut self` makes the access exclusive.
        self.is_collection()
            .then(|| unsafe { &mut *(self.ptr.as_ptr() as *mut Collection) })
    }

    /// A collection slot's key bytes (after the value in its allocation).
    fn collection_key(&self) -> Option<&[u8]> {
        if !self.is_collection() {
            return None;
        }
        let (_, key_at) = collection_layout(self.boxed_key_len());
        // SAFETY: `new_collection` copied `boxed_key_len()` key bytes at
        // `key_at` of this slot's allocation.
        Some(unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(key_at), self.boxed_key_len()) })
    }

    fn is_boxed(&self) -> bool {
        self.key_len != VACANT && self.key_len & BOXED_FLAG != 0
    }

    pub(super) fn is_hash(&self) -> bool {
        self.is_boxed() && self.value_len == BODY_HASH
    }

    fn is_shared(&self) -> bool {
        self.is_boxed() && self.value_len == BODY_SHARED
    }

    fn shared_body(&self) -> Option<&SharedBody> {
        // SAFETY: a shared slot's pointer came from `Box<SharedBody>`
        // (new_shared) and is owned by this slot until `clear`/`drop`.
        self.is_shared()
            .then(|| unsafe { &*(self.ptr.as_ptr() as *const SharedBody) })
    }

    pub(super) fn hash_body(&self) -> Option<&HashBody> {
        // SAFETY: a hash slot's pointer came from `Box<HashBody>` (new_hash)
        // and is owned by this slot until `clear`/`drop`.
        self.is_hash()
            .then(|| unsafe { &*(self.ptr.as_ptr() as *const HashBody) })
    }

    pub(super) fn hash_body_mut(&mut self) -> Option<&mut HashBody> {
        // SAFETY: as in `hash_body`, and `&mut self` makes the access exclusive.
        self.is_hash()
            .then(|| unsafe { &mut *(self.ptr.as_ptr() as *mut HashBody) })
    }

    /// Frees a boxed slot's body (the caller then marks the slot vacant or reuses it).
    fn drop_body(&mut self) {
        if self.is_hash() {
            // SAFETY: see `hash_body`; the flag is cleared so this runs once.
            drop(unsafe { Box::from_raw(self.ptr.as_ptr() as *mut HashBody) });
        } else if self.is_shared() {
            // SAFETY: see `shared_body`; the flag is cleared so this runs once.
            drop(unsafe { Box::from_raw(self.ptr.as_ptr() as *mut SharedBody) });
        } else if self.is_collection() {
            let (body, _) = collection_layout(self.boxed_key_len());
            // SAFETY: see `collection_body`; the value is dropped in place and
            // the allocation freed with the layout it was made with; the flag
            // is cleared below so this runs once.
            unsafe {
                std::ptr::drop_in_place(self.ptr.as_ptr().cast::<Collection>());
                alloc::dealloc(self.ptr.as_ptr(), body);
            }
        } else {
            return;
        }
        self.ptr = NonNull::dangling();
        self.key_len = 0;
        self.value_len = 0;
    }

    /// Turns a shared string into an ordinary `key ++ value` allocation (one
    /// copy) so it can be edited in place.
    pub(super) fn unshare(&mut self) {
        let Some(body) = self.shared_body() else {
            return;
        };
        let inline = Slot::new(&body.key, &body.value, self.access);
        self.replace_with(inline);
    }

    /// Puts `fresh` in this slot's place (dropping the old allocation or
    /// body), keeping the slot's access word and TTL-index position.
    pub(super) fn replace_with(&mut self, mut fresh: Slot) {
        fresh.access = self.access;
        fresh.ttl_pos = self.ttl_pos;
        *self = fresh;
    }

    fn total(&self) -> usize {
        if self.is_vacant() || self.is_boxed() {
            return 0;
        }
        self.key_len as usize + (self.value_len & LEN_MASK) as usize
    }

    /// Bytes allocated behind `ptr`.
    pub(super) fn capacity(&self) -> usize {
        capacity_for(self.total(), self.value_len & SPARE != 0)
    }

    pub(super) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` points to `capacity() >= total()` initialised bytes
        // owned by this slot (dangling only when `total()` is 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.total()) }
    }

    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.total()) }
    }

    /// The key bytes.
    pub fn key(&self) -> &[u8] {
        if let Some(body) = self.hash_body() {
            return &body.key;
        }
        if let Some(body) = self.shared_body() {
            return &body.key;
        }
        if let Some(key) = self.collection_key() {
            return key;
        }
        &self.bytes()[..self.key_len as usize]
    }

    /// The value bytes (empty for a hash).
    pub fn value(&self) -> &[u8] {
        if let Some(body) = self.shared_body() {
            return &body.value;
        }
        if self.is_hash() || self.is_collection() {
            return &[];
        }
        &self.bytes()[self.key_len as usize..]
    }

    /// Makes the value `len` bytes long, keeping the key and the first
    /// `min(old, len)` value bytes and zero-filling the rest. `spare` picks
    /// geometric growth (appends) over an exact fit (plain overwrites).
    pub(super) fn resize_value(&mut self, len: usize, spare: bool) {
        self.unshare();
        let old_total = self.total();
        let old_capacity = self.capacity();
        let new_total = self.key_len as usize + len;
        let new_capacity = capacity_for(new_total, spare);
        if new_capacity != old_capacity {
            self.ptr = reallocate(self.ptr, old_capacity, new_capacity);
        }
        self.value_len = len as u32 | if spare { SPARE } else { 0 };
        if new_total > old_total {
            self.bytes_mut()[old_total..].fill(0);
        }
    }

    /// Replaces the value (reusing the allocation if the length is unchanged).
    pub(super) fn set_value(&mut self, value: &[u8]) {
        if self.is_shared() {
            self.replace_with(Slot::new(self.key(), value, self.access));
            return;
        }
        let spare = self.value_len & SPARE != 0
            && capacity_for(self.key_len as usize + value.len(), true) == self.capacity();
        self.resize_value(value.len(), spare);
        let key_len = self.key_len as usize;
        self.bytes_mut()[key_len..].copy_from_slice(value);
    }

    /// Frees the allocation and marks the slot vacant.
    pub(super) fn clear(&mut self) {
        self.drop_body();
        let capacity = self.capacity();
        self.ptr = reallocate(self.ptr, capacity, 0);
        self.key_len = VACANT;
        self.value_len = 0;
        self.ttl_pos = NO_TTL;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.drop_body();
        if !self.is_vacant() {
            let capacity = self.capacity();
            reallocate(self.ptr, capacity, 0);
        }
    }
}

/// Moves an allocation of `old` bytes to one of `new` bytes (either may be
/// 0: a dangling pointer stands for "no allocation").
fn reallocate(ptr: NonNull<u8>, old: usize, new: usize) -> NonNull<u8> {
    if old == new {
        return ptr;
    }
    // SAFETY: `ptr` was returned by this allocator for `layout(old)` when
    // `old > 0`; sizes are non-zero where the allocator requires it.
    let raw = unsafe {
        match (old, new) {
            (0, _) => alloc::alloc(layout(new)),
            (_, 0) => {
                alloc::dealloc(ptr.as_ptr(), layout(old));
                return NonNull::dangling();
            }
            _ => alloc::realloc(ptr.as_ptr(), layout(old), new),
        }
    };
    NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout(new)))
}

/// A live entry as callers see it: the slot and its expiry (kept in the
/// shard's TTL index, not in the slot).
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    slot: &'a Slot,
    expires_at: u64,
}

impl<'a> Entry<'a> {
    /// The key bytes.
    pub fn key(&self) -> &'a [u8] {
        let slot: &'a Slot = self.slot;
        slot.key()
    }

    /// The string value's bytes; empty for a value of another type (callers
    /// check [`Entry::kind`] first — the string commands do, via `WRONGTYPE`).
    pub fn value(&self) -> &'a [u8] {
        let slot: &'a Slot = self.slot;
        slot.value()
    }

    /// The value's type.
    pub fn kind(&self) -> ValueKind {
        if self.slot.is_hash() {
            ValueKind::Hash
        } else if let Some(body) = self.slot.collection_body() {
            body.kind()
        } else {
            ValueKind::String
        }
    }

    /// The value, typed.
    pub fn value_ref(&self) -> ValueRef<'a> {
        let slot: &'a Slot = self.slot;
        if let Some(body) = slot.collection_body() {
            return ValueRef::Collection(body);
        }
        match slot.hash_body() {
            Some(body) => ValueRef::Hash(&body.hash),
            None => ValueRef::String(slot.value()),
        }
    }

    /// The list, set or sorted set, if this is one.
    pub fn as_collection(&self) -> Option<&'a Collection> {
        let slot: &'a Slot = self.slot;
        slot.collection_body()
    }

    /// The hash, if this is one.
    pub fn as_hash(&self) -> Option<&'a Hash> {
        let slot: &'a Slot = self.slot;
        slot.hash_body().map(|b| &b.hash)
    }

    /// Absolute expiry (unix ms), if any.
    pub fn expires_at(&self) -> Option<u64> {
        (self.expires_at != 0).then_some(self.expires_at)
    }

    /// True if the entry's expiry is at or before `now`.
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at != 0 && self.expires_at <= now
    }

    /// The access word (see `store::evict`).
    pub fn access(&self) -> u32 {
        self.slot.access
    }

    /// Bytes this entry costs (MEMORY USAGE): its allocation as malloc rounds
    /// it, its slot, its table entry (4 bytes plus a control byte, at
    /// hashbrown's 7/8 maximum load) and, with a TTL, its TTL-index entry.
    pub fn footprint(&self) -> usize {
        let table = (std::mem::size_of::<u32>() + 1) * 8 / 7;
        let ttl = if self.expires_at != 0 {
            std::mem::size_of::<Ttl>()
        } else {
            0
        };
        if let Some(shared) = self.slot.shared_body() {
            let body = crate::memory::chunk_size(std::mem::size_of::<SharedBody>())
                + crate::memory::chunk_size(shared.key.len())
                + crate::memory::chunk_size(shared.value.allocated());
            return body + std::mem::size_of::<Slot>() + table + ttl;
        }
        if let Some(c) = self.slot.collection_body() {
            let body = crate::memory::chunk_size(collection_layout(self.slot.boxed_key_len()).0.size())
                + c.memory_usage();
            return body + std::mem::size_of::<Slot>() + table + ttl;
        }
        let body = match self.slot.hash_body() {
            Some(h) => {
                crate::memory::chunk_size(std::mem::size_of::<HashBody>())
                    + crate::memory::chunk_size(h.key.len())
                    + h.hash.memory_usage()
                    + if h.hfe_pos != NO_TTL {
                        std::mem::size_of::<u32>()
                    } else {
                        0
                    }
            }
            None => crate::memory::chunk_size(self.slot.capacity()),
        };
        body + std::mem::size_of::<Slot>() + table + ttl
    }
}

/// An entry of the TTL index.
#[derive(Clone, Copy, Debug)]
struct Ttl {
    expires_at: u64,
    slot: u32,
}

/// The map of one shard. Not synchronised: the store wraps it in a lock.
#[derive(Debug, Default)]
pub struct ShardMap {
    /// Slot indexes, placed by the key's hash.
    table: HashTable<u32>,
    pub(super) slots: Vec<Slot>,
    free: Vec<u32>,
    ttl: Vec<Ttl>,
    /// Hashes with field TTLs (their `hfe_pos` points back here).
    pub(super) hfe: Vec<u32>,
    len: usize,
    /// The store's hasher: rebuilds a key's hash when the table grows or an entry leaves.
    hasher: ahash::RandomState,
    /// Number of times this shard's lock was taken (read under the lock, so
    /// it costs no extra synchronisation); STATS sums it across shards.
    pub lock_acquisitions: u64,
    /// Expired entries removed (lazily or by the active cycle), for STATS/INFO.
    pub expired: u64,
    /// Entries removed to stay under `maxmemory`, for STATS/INFO.
    pub evicted: u64,
    /// Expired hash fields removed (INFO's `expired_subkeys`).
    pub expired_fields: u64,
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
    /// An empty map whose callers hash keys with `hasher` (the store's).
    pub fn with_hasher(hasher: ahash::RandomState) -> ShardMap {
        ShardMap {
            hasher,
            ..ShardMap::default()
        }
    }

    /// The hash of `key`, as callers must pass it.
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

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
        self.ttl.len()
    }

    /// Number of slots (occupied or vacant): the SCAN cursor range.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    pub(super) fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        self.table
            .find(hash, |&i| self.slots[i as usize].key() == key)
            .copied()
    }

    pub(super) fn expires_at_of(&self, i: u32) -> u64 {
        match self.slots[i as usize].ttl_pos {
            NO_TTL => 0,
            pos => self.ttl[pos as usize].expires_at,
        }
    }

    fn entry(&self, i: u32) -> Entry<'_> {
        Entry {
            slot: &self.slots[i as usize],
            expires_at: self.expires_at_of(i),
        }
    }

    /// The entry for `key`, whether or not it has expired.
    pub fn get_raw(&self, hash: u64, key: &[u8]) -> Option<Entry<'_>> {
        self.find(hash, key).map(|i| self.entry(i))
    }

    /// The live entry for `key`; an expired one is removed on the way (lazy
    /// expiry). Returns whether an expired entry was removed, for stats.
    /// A hit counts as an access for LRU/LFU eviction.
    pub fn get_live(&mut self, hash: u64, key: &[u8], now: u64) -> (Option<Entry<'_>>, bool) {
        self.lookup_live(hash, key, now, true)
    }

    /// [`ShardMap::get_live`] that leaves the access time alone: Redis's
    /// `LOOKUP_NOTOUCH`, for the commands that ask about a key without using
    /// its value (EXISTS, TYPE, TTL and friends), so that a monitoring probe
    /// does not keep a cold key from being evicted.
    pub fn get_live_untouched(&mut self, hash: u64, key: &[u8], now: u64) -> (Option<Entry<'_>>, bool) {
        self.lookup_live(hash, key, now, false)
    }

    fn lookup_live(&mut self, hash: u64, key: &[u8], now: u64, touch: bool) -> (Option<Entry<'_>>, bool) {
        let (i, expired) = self.live_index(hash, key, now, touch);
        (i.map(|i| self.entry(i)), expired)
    }

    /// The slot of `key` if it is live, after key-level lazy expiry (and an
    /// access stamp when `touch`): the one lookup every typed read and write
    /// starts from. Also says whether an expired entry was removed.
    pub(super) fn live_index(&mut self, hash: u64, key: &[u8], now: u64, touch: bool) -> (Option<u32>, bool) {
        let Some(i) = self.find(hash, key) else {
            return (None, false);
        };
        let expires_at = self.expires_at_of(i);
        if expires_at != 0 && expires_at <= now {
            self.expire_slot(i);
            return (None, true);
        }
        if touch {
            let slot = &mut self.slots[i as usize];
            slot.access = super::evict::touched(slot.access, now);
        }
        (Some(i), false)
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
            evicted: self.evicted,
            expired_fields: self.expired_fields,
            hasher: self.hasher.clone(),
            watched,
            ..ShardMap::default()
        };
    }

    /// A random slot index of an entry with a TTL (volatile eviction policies).
    pub fn random_ttl_slot(&self, mut random: impl FnMut() -> u64) -> Option<usize> {
        if self.ttl.is_empty() {
            return None;
        }
        let pos = (random() % self.ttl.len() as u64) as usize;
        Some(self.ttl[pos].slot as usize)
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

    /// `SWAPDB` of the databases whose shard (of the same index) `self` and
    /// `other` are. A watch belongs to a *logical* database, as in Redis, but
    /// the tables live in the physical maps, so the two watch tables trade
    /// places: afterwards each follows its database to the data it now
    /// holds. Before that, each watched key the swap changes is touched, by
    /// Redis's rule (`touchAllWatchedKeysInDb`): a key present on either side
    /// changed; a key missing on both did not. Expired keys: WATCH reaps a key
    /// that is already expired (see `command::transaction`), so a watched key
    /// missing here whose replacement is merely expired is reaped from the
    /// other side instead (as lazy expiry would) and counts as no change,
    /// which is what Redis's "stale key" flag achieves.
    pub fn swap_watches(&mut self, other: &mut ShardMap, now: u64) {
        if self.watched.is_empty() && other.watched.is_empty() {
            return;
        }
        self.touch_for_swap(other, now);
        other.touch_for_swap(self, now);
        std::mem::swap(&mut self.watched, &mut other.watched);
    }

    /// Touches the keys watched in `self` (the side being replaced) that a
    /// swap with `replacement` changes; see [`ShardMap::swap_watches`].
    #[cold]
    fn touch_for_swap(&mut self, replacement: &mut ShardMap, now: u64) {
        let mut watched = std::mem::take(&mut self.watched);
        for (key, entry) in watched.iter_mut() {
            let here = self.find(entry.hash, key).is_some();
            let there = match replacement.get_raw(entry.hash, key).map(|e| e.is_expired(now)) {
                Some(true) if !here => {
                    // Missing replaced with expired: logically still missing.
                    replacement.get_live(entry.hash, key, now);
                    false
                }
                found => found.is_some(),
            };
            if here || there {
                entry.version += 1;
            }
        }
        self.watched = watched;
    }

    /// Number of distinct watched keys in this shard.
    pub fn watched_len(&self) -> usize {
        self.watched.len()
    }

    /// True if some client WATCHes a key of this shard.
    #[inline]
    pub(super) fn has_watchers(&self) -> bool {
        !self.watched.is_empty()
    }

    /// Records a change of `key` for its watchers, if any.
    #[inline]
    pub(super) fn touch(&mut self, key: &[u8]) {
        if !self.watched.is_empty() {
            self.touch_watched(key);
        }
    }

    #[cold]
    pub(super) fn touch_watched(&mut self, key: &[u8]) {
        if let Some(entry) = self.watched.get_mut(key) {
            entry.version += 1;
        }
    }

    /// The occupied slot at `index`, if any (SCAN and sampling).
    pub fn slot(&self, index: usize) -> Option<Entry<'_>> {
        self.slots
            .get(index)
            .filter(|s| !s.is_vacant())
            .map(|_| self.entry(index as u32))
    }

    /// Iterates occupied slots with their indexes.
    pub fn iter(&self) -> impl Iterator<Item = (usize, Entry<'_>)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_vacant())
            .map(|(i, _)| (i, self.entry(i as u32)))
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

    /// Removes slot `i`, whose TTL passed: lazy expiry, the active cycle and
    /// the hash-field cycle all end here, so each counts it and sends the
    /// `expired` keyspace event the same way.
    pub(super) fn expire_slot(&mut self, i: u32) {
        if crate::notify::enabled(crate::notify::EXPIRED) {
            crate::notify::emit_here(crate::notify::EXPIRED, "expired", self.slots[i as usize].key());
        }
        self.remove_slot(i);
        self.expired += 1;
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
        while sampled < count && !self.ttl.is_empty() {
            let pos = (random() % self.ttl.len() as u64) as usize;
            let Ttl { expires_at, slot } = self.ttl[pos];
            sampled += 1;
            if expires_at <= now {
                self.expire_slot(slot);
                removed += 1;
            }
        }
        (sampled, removed)
    }

    /// Stores `value` at `key` (replacing any value of any type) with `expires_at` (0 = none).
    pub fn put_value(&mut self, hash: u64, key: &[u8], value: Value, expires_at: u64) {
        self.touch(key);
        match value {
            Value::String(v) => self.set(hash, key, &v, expires_at),
            Value::Shared(v) => self.set_shared(hash, key, v, expires_at),
            Value::Hash(h) => {
                if let Some(i) = self.find(hash, key) {
                    self.remove_slot(i);
                }
                let slot = Slot::new_hash(key, h, super::evict::initial_access());
                let i = self.insert_slot(hash, slot, expires_at);
                self.after_hash_change(i);
            }
            Value::Collection(c) => {
                if let Some(i) = self.find(hash, key) {
                    self.remove_slot(i);
                }
                if !c.is_empty() {
                    let slot = Slot::new_collection(key, c, super::evict::initial_access());
                    self.insert_slot(hash, slot, expires_at);
                }
            }
        }
    }

    /// Removes `key` and returns its value and expiry (0 = none), if present.
    pub fn take_value(&mut self, hash: u64, key: &[u8]) -> Option<(Value, u64)> {
        let i = self.find(hash, key)?;
        self.touch(key);
        self.untrack_hfe(i);
        let expires_at = self.expires_at_of(i);
        let slot = &mut self.slots[i as usize];
        // Move the value out but keep the key: remove_slot reads it.
        let value = if let Some(body) = slot.shared_body() {
            Value::Shared(body.value.clone())
        } else if let Some(body) = slot.collection_body_mut() {
            let empty = Collection::new(body.kind());
            Value::Collection(std::mem::replace(body, empty))
        } else if let Some(body) = slot.hash_body_mut() {
            Value::Hash(std::mem::take(&mut body.hash))
        } else {
            Value::String(slot.value().to_vec())
        };
        self.remove_slot(i);
        Some((value, expires_at))
    }

    pub(super) fn insert_slot(&mut self, hash: u64, slot: Slot, expires_at: u64) -> u32 {
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
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.table
            .insert_unique(hash, index, |&i| hasher.hash_one(slots[i as usize].key()));
        self.len += 1;
        self.set_expiry_slot(index, expires_at);
        index
    }

    pub(super) fn set_expiry_slot(&mut self, i: u32, expires_at: u64) {
        let pos = self.slots[i as usize].ttl_pos;
        match (expires_at != 0, pos != NO_TTL) {
            (true, true) => self.ttl[pos as usize].expires_at = expires_at,
            (true, false) => {
                self.slots[i as usize].ttl_pos = self.ttl.len() as u32;
                self.ttl.push(Ttl { expires_at, slot: i });
            }
            (false, true) => self.untrack_ttl(i),
            (false, false) => {}
        }
    }

    fn untrack_ttl(&mut self, i: u32) {
        let pos = self.slots[i as usize].ttl_pos as usize;
        self.slots[i as usize].ttl_pos = NO_TTL;
        self.ttl.swap_remove(pos);
        if let Some(moved) = self.ttl.get(pos) {
            self.slots[moved.slot as usize].ttl_pos = pos as u32;
        }
    }

    pub(super) fn remove_slot(&mut self, i: u32) {
        if !self.watched.is_empty() {
            // Deletes, lazy and active expiry and eviction all end here.
            if let Some(entry) = self.watched.get_mut(self.slots[i as usize].key()) {
                entry.version += 1;
            }
        }
        if self.slots[i as usize].ttl_pos != NO_TTL {
            self.untrack_ttl(i);
        }
        self.untrack_hfe(i);
        let hash = self.hasher.hash_one(self.slots[i as usize].key());
        if let Ok(found) = self.table.find_entry(hash, |&e| e == i) {
            found.remove();
        }
        self.slots[i as usize].clear();
        self.len -= 1;
        if self.len == 0 {
            // An emptied shard gives its slot vector back. Otherwise vacant slots
            // stay on the free list (24 bytes each): compacting the vector would
            // move live entries and break SCAN's guarantee.
            self.slots = Vec::new();
            self.free = Vec::new();
            self.table = HashTable::new();
            self.hfe = Vec::new();
        } else {
            self.free.push(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(m: &mut ShardMap, key: &[u8], value: &[u8], expires_at: u64) {
        m.set(m.hash(key), key, value, expires_at);
    }

    fn get(m: &ShardMap, key: &[u8]) -> Option<Vec<u8>> {
        m.get_raw(m.hash(key), key).map(|e| e.value().to_vec())
    }

    #[test]
    fn set_get_overwrite_remove() {
        let mut m = ShardMap::default();
        set(&mut m, b"a", b"1", 0);
        set(&mut m, b"b", b"2", 0);
        set(&mut m, b"a", b"333", 0);
        assert_eq!(get(&m, b"a"), Some(b"333".to_vec()));
        assert_eq!(m.len(), 2);
        assert!(m.remove(m.hash(b"a"), b"a"));
        assert!(!m.remove(m.hash(b"a"), b"a"));
        assert_eq!(m.len(), 1);
        assert_eq!(get(&m, b"b"), Some(b"2".to_vec()));
    }

    #[test]
    fn a_hash_slot_can_be_created_overwritten_by_a_string_moved_and_dropped() {
        let mut m = ShardMap::default();
        let limits = crate::store::Limits::default();
        let h = m.hash(b"h");
        m.hash_update(h, b"h", 0, true, |hash| hash.set(b"f", b"v", false, limits))
            .unwrap();
        assert_eq!(m.get_raw(h, b"h").map(|e| e.kind()), Some(ValueKind::Hash));
        assert_eq!(m.get_raw(h, b"h").map(|e| e.key().to_vec()), Some(b"h".to_vec()));
        assert_eq!(
            m.hash_get(h, b"h", 0).unwrap().and_then(|x| x.get(b"f")),
            Some(&b"v"[..])
        );
        // A string write replaces the hash; the hash API then says WRONGTYPE.
        set(&mut m, b"h", b"s", 0);
        assert_eq!(get(&m, b"h"), Some(b"s".to_vec()));
        assert!(m.hash_get(h, b"h", 0).is_err());
        // Hashes move (RENAME) and go away with their last field.
        m.hash_update(h, b"h", 0, false, |_| ()).unwrap_err();
        let g = m.hash(b"g");
        m.hash_update(g, b"g", 0, true, |hash| hash.set(b"f", b"v", false, limits))
            .unwrap();
        let (value, _) = m.take_value(g, b"g").unwrap();
        let k = m.hash(b"k");
        m.put_value(k, b"k", value, 0);
        assert_eq!(m.hash_get(k, b"k", 0).unwrap().map(|x| x.len()), Some(1));
        m.hash_update(k, b"k", 0, false, |hash| hash.remove(b"f"))
            .unwrap();
        assert!(m.get_raw(k, b"k").is_none());
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn a_slot_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 24);
    }

    #[test]
    fn entries_keep_their_slot_while_others_come_and_go() {
        let mut m = ShardMap::default();
        for i in 0..100u32 {
            set(&mut m, &i.to_be_bytes(), b"v", 0);
        }
        let slot_of = |m: &ShardMap, k: &[u8]| m.iter().find(|(_, s)| s.key() == k).map(|(i, _)| i);
        let before = slot_of(&m, &50u32.to_be_bytes());
        for i in (0..100u32).filter(|i| i % 3 == 0) {
            let k = i.to_be_bytes();
            m.remove(m.hash(&k), &k);
        }
        for i in 100..200u32 {
            set(&mut m, &i.to_be_bytes(), b"v", 0);
        }
        assert_eq!(slot_of(&m, &50u32.to_be_bytes()), before);
        // Every key is still found after the table grew and shrank around it.
        for i in (0..200u32).filter(|i| *i >= 100 || i % 3 != 0) {
            assert_eq!(get(&m, &i.to_be_bytes()), Some(b"v".to_vec()), "{i}");
        }
    }

    #[test]
    fn ttl_tracking_follows_set_persist_and_remove() {
        let mut m = ShardMap::default();
        set(&mut m, b"a", b"1", 100);
        set(&mut m, b"b", b"1", 200);
        assert_eq!(m.ttl_len(), 2);
        m.set_expiry(m.hash(b"a"), b"a", 0);
        assert_eq!(m.ttl_len(), 1);
        m.remove(m.hash(b"b"), b"b");
        assert_eq!(m.ttl_len(), 0);
        set(&mut m, b"c", b"1", 50);
        let mut r = 0u64;
        let (_, removed) = m.expire_sample(20, 1000, || {
            r += 1;
            r
        });
        assert_eq!(removed, 1);
        assert_eq!(m.len(), 1);
        let hash = m.hash(b"a");
        assert_eq!(
            m.get_live(hash, b"a", 1000).0.map(|s| s.value().to_vec()),
            Some(b"1".to_vec())
        );
        set(&mut m, b"d", b"1", 300);
        set(&mut m, b"d", b"1", 400);
        assert_eq!(
            m.get_raw(m.hash(b"d"), b"d").and_then(|e| e.expires_at()),
            Some(400)
        );
    }

    #[test]
    fn appends_and_setrange_grow_in_place_and_overwrites_fit_exactly() {
        let mut m = ShardMap::default();
        let hash = m.hash(b"k");
        let mut expected = Vec::new();
        for i in 0..1000u32 {
            let piece = i.to_string();
            expected.extend_from_slice(piece.as_bytes());
            assert_eq!(m.append(hash, b"k", piece.as_bytes()), expected.len());
        }
        assert_eq!(get(&m, b"k"), Some(expected.clone()));
        let capacity = m.get_raw(hash, b"k").map(|e| e.slot.capacity()).unwrap();
        assert_eq!(capacity, (1 + expected.len()).next_power_of_two());
        m.with_value_mut(hash, b"k", |v| v.write_at(expected.len() + 3, b"xy"));
        expected.extend_from_slice(&[0, 0, 0, b'x', b'y']);
        assert_eq!(get(&m, b"k"), Some(expected));
        set(&mut m, b"k", b"short", 0);
        assert_eq!(get(&m, b"k"), Some(b"short".to_vec()));
        assert_eq!(m.get_raw(hash, b"k").map(|e| e.slot.capacity()), Some(6));
        set(&mut m, b"", b"", 0);
        assert_eq!(get(&m, b""), Some(Vec::new()));
        m.clear();
        assert!(m.is_empty());
    }
}
