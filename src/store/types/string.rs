//! Strings: the one type stored in the slot itself.
//!
//! # Encodings
//! * **Inline** (almost every string): the slot's pointer owns one
//!   allocation holding `key ++ value`, its two lengths in the slot
//!   (`shard.rs`, "Memory layout"). A string key costs 24 bytes of slot,
//!   the table entry and exactly its bytes: one malloc per pair, none for
//!   the type. Overwriting with a value of the same length reuses the
//!   allocation; `APPEND`/`SETRANGE` switch it to power-of-two capacities
//!   (the slot's `SPARE` flag) so repeated appends stay amortised O(1).
//! * **Shared**: a value of at least `SHARE_THRESHOLD` bytes that arrived
//!   in a read buffer of its own is kept as a `SharedBody` (the key and a
//!   `SharedBytes` range of that buffer, which the WAL may reference too
//!   until the record is written): no copy on the way in. The first edit in
//!   place copies it into an inline allocation.
//!
//! `OBJECT ENCODING` answers `int`, `embstr` or `raw` as Redis would for the
//! same bytes (`command::object`); the store itself has no integer encoding.
//!
//! # Memory accounting
//! `Entry::footprint`: the allocation as malloc rounds it (or the shared
//! body, key and buffer), plus slot, table entry and TTL-index entry.
//!
//! # WAL effects
//! Strings log results, never commands: `Set` (with an absolute expiry) for
//! every write that replaces a value — `INCR` logs the new number,
//! `SET ... EX` the absolute time — and `Patch` (offset, bytes, new length)
//! for `APPEND`/`SETRANGE`; see `docs/persistence.md`.

use super::super::evict;
use super::super::shard::{ShardMap, Slot};
use crate::shared_bytes::SharedBytes;

impl ShardMap {
    /// Inserts or overwrites `key` with `value` and expiry (0 = none).
    pub fn set(&mut self, hash: u64, key: &[u8], value: &[u8], expires_at: u64) {
        self.touch(key);
        match self.find(hash, key) {
            Some(i) => {
                self.make_string(i, key);
                self.slots[i as usize].set_value(value);
                self.set_expiry_slot(i, expires_at);
            }
            None => self.insert_new(hash, key, value, expires_at),
        }
    }

    /// [`ShardMap::set`] for a big value kept without a copy (see the module doc).
    pub fn set_shared(&mut self, hash: u64, key: &[u8], value: SharedBytes, expires_at: u64) {
        self.touch(key);
        match self.find(hash, key) {
            Some(i) => {
                self.untrack_hfe(i);
                let slot = &mut self.slots[i as usize];
                slot.replace_with(Slot::new_shared(key, value, slot.access));
                self.set_expiry_slot(i, expires_at);
            }
            None => {
                let slot = Slot::new_shared(key, value, evict::initial_access());
                self.insert_slot(hash, slot, expires_at);
            }
        }
    }

    /// Appends to `key`'s value (creating it), keeping its TTL. Returns the new length.
    pub fn append(&mut self, hash: u64, key: &[u8], tail: &[u8]) -> usize {
        self.touch(key);
        match self.find(hash, key) {
            Some(i) => {
                self.make_string(i, key);
                let slot = &mut self.slots[i as usize];
                let old = slot.value().len();
                slot.resize_value(old + tail.len(), true);
                let at = slot.key_len as usize + old;
                slot.bytes_mut()[at..].copy_from_slice(tail);
                old + tail.len()
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
        if self.slots[i as usize].is_hash() || self.slots[i as usize].is_collection() {
            return None;
        }
        self.touch(key);
        self.slots[i as usize].unshare();
        let mut value = ValueMut {
            slot: &mut self.slots[i as usize],
        };
        Some(f(&mut value))
    }

    /// Replays a `Patch` WAL record: `key`'s value (empty if absent) cut or
    /// zero-padded to `len`, `bytes` written at `offset`, expiry (0 = none) set.
    pub fn patch(&mut self, hash: u64, key: &[u8], offset: usize, bytes: &[u8], len: usize, expires_at: u64) {
        if self.find(hash, key).is_none() {
            self.insert_new(hash, key, b"", expires_at);
        }
        self.with_value_mut(hash, key, |v| {
            v.set_len(len);
            v.write_at(offset, bytes);
        });
        self.set_expiry(hash, key, expires_at);
    }

    /// Turns hash slot `i` into an empty string of the same key (a string
    /// write over another type replaces it, as `SET` does in Redis).
    fn make_string(&mut self, i: u32, key: &[u8]) {
        if !self.slots[i as usize].is_hash() && !self.slots[i as usize].is_collection() {
            return;
        }
        self.untrack_hfe(i);
        let slot = &mut self.slots[i as usize];
        slot.replace_with(Slot::new(key, b"", slot.access));
    }

    fn insert_new(&mut self, hash: u64, key: &[u8], value: &[u8], expires_at: u64) {
        let slot = Slot::new(key, value, evict::initial_access());
        self.insert_slot(hash, slot, expires_at);
    }
}

/// A value being edited in place by `SETRANGE`.
pub struct ValueMut<'a> {
    slot: &'a mut Slot,
}

impl ValueMut<'_> {
    /// The current value.
    pub fn get(&self) -> &[u8] {
        self.slot.value()
    }

    /// Cuts or zero-pads the value to `len` bytes.
    pub fn set_len(&mut self, len: usize) {
        // Patches come from APPEND/SETRANGE: keep room to grow, as they do.
        self.slot.resize_value(len, true);
    }

    /// Overwrites from `offset`, zero-padding any gap, as `SETRANGE` does.
    pub fn write_at(&mut self, offset: usize, bytes: &[u8]) {
        let end = offset + bytes.len();
        if self.slot.value().len() < end {
            self.slot.resize_value(end, true);
        }
        let start = self.slot.key_len as usize + offset;
        self.slot.bytes_mut()[start..start + bytes.len()].copy_from_slice(bytes);
    }
}
