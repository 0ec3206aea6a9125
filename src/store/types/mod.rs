//! The aggregate value types — lists, sets and sorted sets — one module each,
//! each owning its encodings, its memory accounting and its WAL effects.
//!
//! The shard map ([`super::ShardMap`]) knows these values only as a
//! [`Collection`] in a boxed slot body: it does expiry, eviction, WATCH
//! versions and type checks for every type alike, and string keys pay
//! nothing for the others (see `shard.rs`, "Typed values").
//!
//! # WAL effects
//! Every change to a collection is logged as one `Collection` record
//! (`wal::Record::Collection { key, op, payload }`): `op` carries the type in
//! its high nibble ([`TYPE_LIST`], [`TYPE_SET`], [`TYPE_ZSET`]) and the
//! operation in its low nibble. Operation [`OP_REPLACE`] (0) means "the key
//! now holds a new value of this type, built by applying operation 1 to an
//! empty one" — compaction snapshots and the `*STORE` commands use it.
//! Operations 1.. are the type's own *effects*, each expressed as a result
//! (positions and members, never a command), so replay is deterministic:
//! `SPOP` logs the members it removed, a blocking pop logs the pop.
//! `docs/persistence.md` gives every payload layout.

pub mod hash;
pub mod intset;
pub mod list;
pub mod set;
mod string;
pub mod zpack;
pub mod zset;

pub use list::List;
pub use set::Set;
pub use string::ValueMut;
pub use zset::ZSet;

use super::evict;
use super::shard::{ShardMap, Slot, Value, ValueKind, WrongType};
use crate::wal::Record;

/// High nibble of a `Collection` record's `op`: a list.
pub const TYPE_LIST: u8 = 0x10;
/// High nibble of a `Collection` record's `op`: a set.
pub const TYPE_SET: u8 = 0x20;
/// High nibble of a `Collection` record's `op`: a sorted set.
pub const TYPE_ZSET: u8 = 0x30;
/// Low nibble: replace the key with a value built by operation 1.
pub const OP_REPLACE: u8 = 0;
/// Low nibble of each type's "add these elements" operation (list: splice).
pub const OP_ADD: u8 = 1;

/// Most payload bytes one snapshot record carries: a big key is written as
/// one `OP_REPLACE` record and as many `OP_ADD` records as it needs, so no
/// record approaches the WAL's frame limit and replay never holds a huge frame.
pub const SNAPSHOT_CHUNK: usize = 1 << 20;

/// A list, set or sorted set.
///
/// Kept at 24 bytes because it sits in every collection key's one
/// allocation next to the key (see `shard.rs`, `collection_layout`): a set
/// of up to ten small integers lives inside it ([`set`]), a small sorted set
/// is one pointer to its packed buffer, and a list — whose header is bigger
/// and whose items dwarf it — is boxed.
#[derive(Debug)]
pub enum Collection {
    List(Box<List>),
    Set(Set),
    ZSet(ZSet),
}

/// The size the layout above relies on (a compile-time check).
const _: () = assert!(std::mem::size_of::<Collection>() <= 24);

impl Collection {
    /// An empty value of `kind` (a list for the non-aggregate kinds, which
    /// never reach here).
    pub fn new(kind: ValueKind) -> Collection {
        match kind {
            ValueKind::Set => Collection::Set(Set::new()),
            ValueKind::ZSet => Collection::ZSet(ZSet::new()),
            _ => Collection::List(Box::default()),
        }
    }

    /// The type `TYPE` reports.
    pub fn kind(&self) -> ValueKind {
        match self {
            Collection::List(_) => ValueKind::List,
            Collection::Set(_) => ValueKind::Set,
            Collection::ZSet(_) => ValueKind::ZSet,
        }
    }

    /// Elements (members, entries).
    pub fn len(&self) -> usize {
        match self {
            Collection::List(l) => l.len(),
            Collection::Set(s) => s.len(),
            Collection::ZSet(z) => z.len(),
        }
    }

    /// True with no element: the map deletes such a key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `OBJECT ENCODING`.
    pub fn encoding(&self) -> &'static str {
        match self {
            Collection::List(l) => l.encoding(),
            Collection::Set(s) => s.encoding(),
            Collection::ZSet(z) => z.encoding(),
        }
    }

    /// Bytes the value's allocations take, as malloc rounds them.
    pub fn memory_usage(&self) -> usize {
        match self {
            // The list's header is boxed (see the type's doc).
            Collection::List(l) => crate::memory::chunk_size(std::mem::size_of::<List>()) + l.memory_usage(),
            Collection::Set(s) => s.memory_usage(),
            Collection::ZSet(z) => z.memory_usage(),
        }
    }

    /// The type nibble of this value's records.
    pub fn type_tag(&self) -> u8 {
        type_tag(self.kind())
    }

    /// The list, if this is one.
    pub fn as_list(&self) -> Option<&List> {
        match self {
            Collection::List(l) => Some(l),
            _ => None,
        }
    }

    /// The list, if this is one.
    pub fn as_list_mut(&mut self) -> Option<&mut List> {
        match self {
            Collection::List(l) => Some(l),
            _ => None,
        }
    }

    /// The set, if this is one.
    pub fn as_set(&self) -> Option<&Set> {
        match self {
            Collection::Set(s) => Some(s),
            _ => None,
        }
    }

    /// The set, if this is one.
    pub fn as_set_mut(&mut self) -> Option<&mut Set> {
        match self {
            Collection::Set(s) => Some(s),
            _ => None,
        }
    }

    /// The sorted set, if this is one.
    pub fn as_zset(&self) -> Option<&ZSet> {
        match self {
            Collection::ZSet(z) => Some(z),
            _ => None,
        }
    }

    /// The sorted set, if this is one.
    pub fn as_zset_mut(&mut self) -> Option<&mut ZSet> {
        match self {
            Collection::ZSet(z) => Some(z),
            _ => None,
        }
    }

    /// Every element in the type's natural order: a list head to tail, a
    /// sorted set by score, a set in its own order (SORT's input).
    pub fn members(&self) -> Vec<Vec<u8>> {
        match self {
            Collection::List(l) => l.iter().map(<[u8]>::to_vec).collect(),
            Collection::Set(s) => s.iter().map(|m| m.to_vec()).collect(),
            Collection::ZSet(z) => z.entries().into_iter().map(|(m, _)| m.to_vec()).collect(),
        }
    }

    /// Writes the whole value as records: one `OP_REPLACE` and, for a value
    /// over [`SNAPSHOT_CHUNK`] bytes, `OP_ADD` records for the rest (always
    /// at least the replace, so an empty value is never written as nothing).
    pub fn snapshot(&self, key: &[u8], emit: &mut dyn FnMut(Record<'_>)) {
        let tag = self.type_tag();
        let mut first = true;
        let mut chunk = |payload: &[u8]| {
            let op = tag | if first { OP_REPLACE } else { OP_ADD };
            first = false;
            emit(Record::Collection { key, op, payload });
        };
        match self {
            Collection::List(l) => l.snapshot_chunks(&mut chunk),
            Collection::Set(s) => s.snapshot_chunks(&mut chunk),
            Collection::ZSet(z) => z.snapshot_chunks(&mut chunk),
        }
    }

    /// Applies effect `op` (a low nibble ≥ [`OP_ADD`]) decoded from `payload`.
    pub fn apply(&mut self, op: u8, payload: &[u8]) -> Result<(), &'static str> {
        match self {
            Collection::List(l) => l.apply(op, payload),
            Collection::Set(s) => s.apply(op, payload),
            Collection::ZSet(z) => z.apply(op, payload),
        }
    }
}

/// Applies the encoding thresholds of `config` (at start and after
/// `CONFIG SET`); values already built keep their encoding.
pub fn apply_limits(config: &crate::config::Config) {
    list::set_max_listpack_size(config.list_max_listpack_size);
    set::set_max_intset_entries(config.set_max_intset_entries);
    set::set_max_listpack_entries(config.set_max_listpack_entries);
    set::set_max_listpack_value(config.set_max_listpack_value);
    zset::set_max_listpack_entries(config.zset_max_listpack_entries);
    zset::set_max_listpack_value(config.zset_max_listpack_value);
}

/// The type nibble of `kind`'s records.
pub fn type_tag(kind: ValueKind) -> u8 {
    match kind {
        ValueKind::Set => TYPE_SET,
        ValueKind::ZSet => TYPE_ZSET,
        _ => TYPE_LIST,
    }
}

/// The kind a record's `op` names, if any.
pub fn kind_of(op: u8) -> Option<ValueKind> {
    match op & 0xF0 {
        TYPE_LIST => Some(ValueKind::List),
        TYPE_SET => Some(ValueKind::Set),
        TYPE_ZSET => Some(ValueKind::ZSet),
        _ => None,
    }
}

/// Replays one `Collection` record into `map`. A delta on a key that holds
/// another type (impossible in a log this server wrote) replaces it; a
/// value left empty is deleted, as it was when the record was written.
pub fn apply_record(
    map: &mut ShardMap,
    hash: u64,
    key: &[u8],
    op: u8,
    payload: &[u8],
    now: u64,
) -> Result<(), &'static str> {
    let kind = kind_of(op).ok_or("unknown collection type")?;
    let low = op & 0x0F;
    if low == OP_REPLACE {
        let mut value = Collection::new(kind);
        value.apply(OP_ADD, payload)?;
        map.put_value(hash, key, Value::Collection(value), 0);
        return Ok(());
    }
    match map.collection_update(hash, key, now, kind, true, |c| c.apply(low, payload)) {
        Ok(Some(result)) => result,
        Ok(None) => Ok(()),
        Err(WrongType) => {
            map.remove(hash, key);
            match map.collection_update(hash, key, now, kind, true, |c| c.apply(low, payload)) {
                Ok(Some(result)) => result,
                _ => Err("collection record over another type"),
            }
        }
    }
}

/// Little-endian payload helpers shared by the type modules.
pub mod codec {
    /// Appends a u32 length and the bytes.
    pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    }

    /// Appends `n` as a LEB128 varint (7 bits a byte, low first): the
    /// length prefix of the packed small-collection buffers.
    pub fn put_varint(out: &mut Vec<u8>, mut n: usize) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    /// Bytes [`put_varint`] writes for `n`.
    pub fn varint_len(mut n: usize) -> usize {
        let mut len = 1;
        while n >= 0x80 {
            n >>= 7;
            len += 1;
        }
        len
    }

    /// Reads a varint at the front of `buf`: (value, bytes it took); None
    /// if `buf` ends inside it or it runs past 9 bytes.
    pub fn get_varint(buf: &[u8]) -> Option<(usize, usize)> {
        let mut n = 0usize;
        for (i, &b) in buf.iter().enumerate().take(9) {
            n |= ((b & 0x7F) as usize) << (7 * i);
            if b < 0x80 {
                return Some((n, i + 1));
            }
        }
        None
    }

    /// Appends a u64.
    pub fn put_u64(out: &mut Vec<u8>, v: u64) {
        out.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends an f64 (its IEEE bits).
    pub fn put_f64(out: &mut Vec<u8>, v: f64) {
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    /// A reader over a payload; every read checks the length first, so a
    /// bad payload is an error, never a panic.
    pub struct Reader<'a> {
        pub buf: &'a [u8],
    }

    impl<'a> Reader<'a> {
        /// Reads `n` raw bytes.
        pub fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
            if self.buf.len() < n {
                return Err("collection payload truncated");
            }
            let (head, tail) = self.buf.split_at(n);
            self.buf = tail;
            Ok(head)
        }

        /// Reads a u32.
        pub fn u32(&mut self) -> Result<u32, &'static str> {
            let b = self.take(4)?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }

        /// Reads a u64.
        pub fn u64(&mut self) -> Result<u64, &'static str> {
            let b = self.take(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok(u64::from_le_bytes(a))
        }

        /// Reads an f64.
        pub fn f64(&mut self) -> Result<f64, &'static str> {
            Ok(f64::from_bits(self.u64()?))
        }

        /// Reads a u32 length and that many bytes.
        pub fn bytes(&mut self) -> Result<&'a [u8], &'static str> {
            let n = self.u32()? as usize;
            self.take(n)
        }

        /// True when everything was read.
        pub fn is_empty(&self) -> bool {
            self.buf.is_empty()
        }
    }
}

/// The collection types' operations on the shard map: one typed lookup
/// and one update for lists, sets and sorted sets alike.
impl ShardMap {
    /// The live list, set or sorted set of `kind` at `key`: `Ok(None)` if
    /// the key is missing (or expired), `Err(WrongType)` if it holds
    /// anything else. A hit counts as an access.
    pub fn collection_get(
        &mut self,
        hash: u64,
        key: &[u8],
        now: u64,
        kind: ValueKind,
    ) -> Result<Option<&Collection>, WrongType> {
        let Some(i) = self.live_collection_slot(hash, key, now, kind)? else {
            return Ok(None);
        };
        Ok(self.slots[i as usize].collection_body())
    }

    /// Runs `f` on the live collection of `kind` at `key`, creating an
    /// empty one first if `create` (`Ok(None)` when missing and not
    /// created). A collection `f` leaves empty is deleted, as Redis deletes
    /// empty aggregates; WATCHers of the key see a change.
    pub fn collection_update<R>(
        &mut self,
        hash: u64,
        key: &[u8],
        now: u64,
        kind: ValueKind,
        create: bool,
        f: impl FnOnce(&mut Collection) -> R,
    ) -> Result<Option<R>, WrongType> {
        let i = match self.live_collection_slot(hash, key, now, kind)? {
            Some(i) => i,
            None if create => {
                let slot = Slot::new_collection(key, Collection::new(kind), evict::initial_access());
                self.insert_slot(hash, slot, 0)
            }
            None => return Ok(None),
        };
        let Some(body) = self.slots[i as usize].collection_body_mut() else {
            return Err(WrongType);
        };
        let result = f(body);
        let emptied = body.is_empty();
        self.touch(key);
        if emptied {
            self.remove_slot(i);
        }
        Ok(Some(result))
    }

    /// Key-level lazy expiry, type check and access stamp; the slot of a
    /// live collection of `kind`.
    fn live_collection_slot(
        &mut self,
        hash: u64,
        key: &[u8],
        now: u64,
        kind: ValueKind,
    ) -> Result<Option<u32>, WrongType> {
        let Some(i) = self.live_index(hash, key, now, true).0 else {
            return Ok(None);
        };
        match self.slots[i as usize].collection_body() {
            Some(body) if body.kind() == kind => Ok(Some(i)),
            _ => Err(WrongType),
        }
    }
}
