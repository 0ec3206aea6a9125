//! Sets: Redis's three encodings with Redis's conversion thresholds.
//!
//! * **intset** — sorted integers at 2, 4 or 8 bytes each ([`IntSet`],
//!   as Redis's) while every member is the canonical text of a 64-bit
//!   integer (`"12"`, not `"012"` or `"+12"`) and there are at most
//!   `set-max-intset-entries` (512) of them. Membership is a binary search,
//!   SMEMBERS answers in ascending order. Ten 16-bit integers fit inside
//!   the value, so such a set allocates nothing beyond its key's slot body.
//! * **listpack** — up to `set-max-listpack-entries` (128) members of at
//!   most `set-max-listpack-value` (64) bytes, packed into one buffer of
//!   exactly its size as `[u32 count] (varint(len) bytes)*`, scanned
//!   linearly: one allocation per small set.
//! * **hashtable** — a vector of stable slots (`Option<Box<[u8]>>`) with a
//!   `hashbrown::HashTable` of slot indexes keyed by an `ahash` of the
//!   member. A removed member leaves a vacant slot that the next insert
//!   reuses and a live member never moves, so `SSCAN` uses the slot index
//!   as its cursor and `SRANDMEMBER`/`SPOP` pick a random slot in O(1).
//!
//! A set converts up (intset → listpack → hashtable, or intset → hashtable)
//! exactly where Redis 7.2's `setTypeAddAux` does, and never back down.
//! The thresholds are process-wide atomics ([`set_max_intset_entries`] and
//! friends) that only affect sets written afterwards, as in Redis.
//!
//! This module knows nothing of commands or locking; it never panics on a
//! member or a payload (a bad payload is an `Err`).
//!
//! # WAL effects
//! Both effects share one payload layout, `[u32 count][u32 len, bytes]*`
//! (little endian, via [`super::codec`]):
//! * [`OP_ADD`] (1): add these members (already present ones are ignored).
//!   An `OP_REPLACE` record (compaction, `*STORE`, RENAME) carries the same
//!   payload: the key's new value is an empty set plus these members.
//! * [`OP_REMOVE`] (2): remove these members (absent ones are ignored).
//!
//! Commands log results, never themselves: `SPOP` logs the removal of the
//! members it chose, `SMOVE` a remove on the source and an add on the
//! destination, so replay is deterministic and idempotent.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use hashbrown::HashTable;

use super::codec::{get_varint, put_bytes, put_varint, varint_len, Reader};
use super::intset::IntSet;
use crate::memory::chunk_size;
use crate::store::glob_match;

/// The set effect "add these members".
pub const OP_ADD: u8 = super::OP_ADD;
/// The set effect "remove these members".
pub const OP_REMOVE: u8 = 2;

/// Redis's default `set-max-intset-entries`.
pub const DEFAULT_MAX_INTSET_ENTRIES: usize = 512;
/// Redis's default `set-max-listpack-entries`.
pub const DEFAULT_MAX_LISTPACK_ENTRIES: usize = 128;
/// Redis's default `set-max-listpack-value`.
pub const DEFAULT_MAX_LISTPACK_VALUE: usize = 64;

/// Redis caps an intset at 2^30 entries (intset internals); so does this.
const INTSET_HARD_LIMIT: usize = 1 << 30;

static MAX_INTSET_ENTRIES: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_INTSET_ENTRIES);
static MAX_LISTPACK_ENTRIES: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_LISTPACK_ENTRIES);
static MAX_LISTPACK_VALUE: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_LISTPACK_VALUE);

/// Sets `set-max-intset-entries` (CONFIG SET; existing sets keep their encoding).
pub fn set_max_intset_entries(n: usize) {
    MAX_INTSET_ENTRIES.store(n, Ordering::Relaxed);
}

/// `set-max-intset-entries`.
pub fn max_intset_entries() -> usize {
    MAX_INTSET_ENTRIES.load(Ordering::Relaxed)
}

/// Sets `set-max-listpack-entries` (CONFIG SET; existing sets keep their encoding).
pub fn set_max_listpack_entries(n: usize) {
    MAX_LISTPACK_ENTRIES.store(n, Ordering::Relaxed);
}

/// `set-max-listpack-entries`.
pub fn max_listpack_entries() -> usize {
    MAX_LISTPACK_ENTRIES.load(Ordering::Relaxed)
}

/// Sets `set-max-listpack-value` (CONFIG SET; existing sets keep their encoding).
pub fn set_max_listpack_value(n: usize) {
    MAX_LISTPACK_VALUE.store(n, Ordering::Relaxed);
}

/// `set-max-listpack-value`.
pub fn max_listpack_value() -> usize {
    MAX_LISTPACK_VALUE.load(Ordering::Relaxed)
}

fn intset_limit() -> usize {
    max_intset_entries().min(INTSET_HARD_LIMIT)
}

/// The integer `member` spells, if it is the canonical text of one (Redis's
/// `string2ll`: no sign but `-`, no leading zero, no `-0`, no spaces).
pub fn as_int(member: &[u8]) -> Option<i64> {
    if member.is_empty() || member.len() > 20 {
        return None;
    }
    let n: i64 = std::str::from_utf8(member).ok()?.parse().ok()?;
    (itoa::Buffer::new().format(n).as_bytes() == member).then_some(n)
}

/// One member as a set hands it out: an intset yields integers, which the
/// caller formats only if it needs the text (a reply can send them as is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl Member<'_> {
    /// The member's bytes (an integer is formatted into `buf`).
    pub fn bytes<'b>(&'b self, buf: &'b mut itoa::Buffer) -> &'b [u8] {
        match self {
            Member::Int(n) => buf.format(*n).as_bytes(),
            Member::Bytes(b) => b,
        }
    }

    /// An owned copy of the member's bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes(&mut itoa::Buffer::new()).to_vec()
    }
}

/// A set value.
#[derive(Debug)]
pub struct Set {
    repr: Repr,
}

#[derive(Debug)]
enum Repr {
    Ints(IntSet),
    Pack(Pack),
    Table(Box<Table>),
}

/// A set is 24 bytes (an inline intset), see `Collection`.
const _: () = assert!(std::mem::size_of::<Set>() <= 24);

impl Default for Set {
    fn default() -> Self {
        Set::new()
    }
}

impl Set {
    /// An empty set (an empty intset: the first member decides, as in Redis).
    pub fn new() -> Set {
        Set {
            repr: Repr::Ints(IntSet::new()),
        }
    }

    /// Chooses the encoding of a new set about to receive `size_hint`
    /// members, the first being `first` (Redis's `setTypeCreate`): SADD of
    /// 1000 strings starts as a hashtable instead of converting on the way.
    /// Does nothing to a non-empty set.
    pub fn prepare(&mut self, first: &[u8], size_hint: usize) {
        if !self.is_empty() {
            return;
        }
        self.repr = if as_int(first).is_some() && size_hint <= intset_limit() {
            Repr::Ints(IntSet::new())
        } else if size_hint <= max_listpack_entries() {
            Repr::Pack(Pack::default())
        } else {
            Repr::Table(Box::new(Table::with_capacity(size_hint.min(1 << 16))))
        };
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(v) => v.len(),
            Repr::Pack(p) => p.len(),
            Repr::Table(t) => t.len,
        }
    }

    /// True with no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `OBJECT ENCODING`.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Ints(_) => "intset",
            Repr::Pack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Bytes allocated, as malloc rounds them.
    pub fn memory_usage(&self) -> usize {
        let chunk = |n: usize| if n == 0 { 0 } else { chunk_size(n) };
        match &self.repr {
            Repr::Ints(v) => v.heap_bytes(),
            Repr::Pack(p) => p.heap_bytes(),
            Repr::Table(t) => {
                chunk(std::mem::size_of::<Table>())
                    + chunk(t.slots.capacity() * std::mem::size_of::<Option<Box<[u8]>>>())
                    + table_bytes(t.index.capacity())
                    + chunk(t.free.capacity() * 4)
                    + t.member_bytes
            }
        }
    }

    /// True if `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(v) => as_int(member).is_some_and(|n| v.contains(n)),
            Repr::Pack(p) => p.find(member).is_some(),
            Repr::Table(t) => t.find(member).is_some(),
        }
    }

    /// Adds `member`; false if it was already there. Converts the encoding
    /// where Redis 7.2 does.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(v) => {
                if let Some(n) = as_int(member) {
                    if !v.insert(n) {
                        return false;
                    }
                    if v.len() > intset_limit() {
                        self.convert_to_table();
                    }
                    return true;
                }
                let widest = v.bounds().map_or(0, |(lo, hi)| digits(lo).max(digits(hi)));
                let max_value = max_listpack_value();
                if v.len() < max_listpack_entries() && member.len() <= max_value && widest <= max_value {
                    self.convert_to_pack();
                } else {
                    self.convert_to_table();
                }
                self.insert(member)
            }
            Repr::Pack(p) => {
                if p.find(member).is_some() {
                    return false;
                }
                if p.len() < max_listpack_entries() && member.len() <= max_listpack_value() {
                    p.push(member);
                    return true;
                }
                self.convert_to_table();
                self.insert(member)
            }
            Repr::Table(t) => t.insert(member),
        }
    }

    /// Removes `member`; false if it was not there. Never converts down.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(v) => as_int(member).is_some_and(|n| v.remove(n)),
            Repr::Pack(p) => match p.find(member) {
                Some(range) => {
                    p.remove(range);
                    true
                }
                None => false,
            },
            Repr::Table(t) => t.remove(member),
        }
    }

    /// Every member: ascending for an intset, insertion order for a
    /// listpack, slot order for a hashtable.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Ints(v) => Iter::Ints(v.iter()),
            Repr::Pack(p) => Iter::Pack(PackIter { buf: p.entries() }),
            Repr::Table(t) => Iter::Table(t.slots.iter()),
        }
    }

    /// A uniformly random member (`random` yields random u64s), None if empty.
    pub fn random(&self, random: impl FnMut() -> u64) -> Option<Member<'_>> {
        self.random_at(random).map(|(m, _)| m)
    }

    /// A random member and its position (index or slot).
    fn random_at(&self, mut random: impl FnMut() -> u64) -> Option<(Member<'_>, usize)> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        match &self.repr {
            Repr::Ints(v) => {
                let i = (random() % n as u64) as usize;
                v.get(i).map(|x| (Member::Int(x), i))
            }
            Repr::Pack(p) => {
                let i = (random() % n as u64) as usize;
                PackIter { buf: p.entries() }.nth(i).map(|m| (m, i))
            }
            Repr::Table(t) => {
                let slots = t.slots.len();
                // Sample slots until a live one (at least 1 slot in 8 is live:
                // `Table::remove` compacts below that, so this ends fast); a bounded
                // number of tries, then the next live slot from a random start.
                for _ in 0..32 {
                    let i = (random() % slots as u64) as usize;
                    if let Some(Some(m)) = t.slots.get(i) {
                        return Some((Member::Bytes(m), i));
                    }
                }
                let start = (random() % slots as u64) as usize;
                (0..slots)
                    .map(|k| (start + k) % slots)
                    .find_map(|i| t.slots[i].as_deref().map(|m| (Member::Bytes(m), i)))
            }
        }
    }

    /// `count` distinct random members (every member when `count` ≥ the
    /// length). Few of many (`count` under a third of the set, Redis's
    /// SRANDMEMBER "case 4") are sampled by position without copying the
    /// set; otherwise a partial Fisher–Yates shuffle of all members.
    pub fn random_distinct(&self, count: usize, mut random: impl FnMut() -> u64) -> Vec<Member<'_>> {
        let n = self.len();
        if count >= n {
            return self.iter().collect();
        }
        if count.saturating_mul(3) < n {
            let mut seen = hashbrown::HashSet::with_capacity_and_hasher(count, member_hasher().clone());
            let mut picked = Vec::with_capacity(count);
            while picked.len() < count {
                match self.random_at(&mut random) {
                    Some((m, at)) if seen.insert(at) => picked.push(m),
                    Some(_) => {}
                    None => break,
                }
            }
            return picked;
        }
        let mut members: Vec<Member<'_>> = self.iter().collect();
        for i in 0..count {
            let j = i + (random() % (members.len() - i) as u64) as usize;
            members.swap(i, j);
        }
        members.truncate(count);
        members
    }

    /// Removes and returns a random member (SPOP).
    pub fn pop_random(&mut self, random: impl FnMut() -> u64) -> Option<Vec<u8>> {
        let member = self.random_at(random).map(|(m, _)| m.to_vec())?;
        self.remove(&member);
        Some(member)
    }

    /// One `SSCAN` step: pushes members matching `pattern` from `cursor` on
    /// into `out`, examining about `count` slots, and returns the next cursor
    /// (0 at the end). An intset or listpack is returned whole, as in Redis.
    pub fn scan<'s>(
        &'s self,
        cursor: u64,
        count: usize,
        pattern: Option<&[u8]>,
        out: &mut Vec<Member<'s>>,
    ) -> u64 {
        let mut buf = itoa::Buffer::new();
        let mut matches = |m: &Member<'_>| pattern.is_none_or(|p| glob_match(p, m.bytes(&mut buf)));
        let Repr::Table(t) = &self.repr else {
            out.extend(self.iter().filter(|m| matches(m)));
            return 0;
        };
        let mut i = usize::try_from(cursor).unwrap_or(usize::MAX);
        let mut examined = 0;
        let mut budget = count.saturating_mul(10).max(100);
        while i < t.slots.len() {
            if examined >= count || budget == 0 {
                return i as u64;
            }
            budget -= 1;
            if let Some(m) = &t.slots[i] {
                examined += 1;
                let m = Member::Bytes(m);
                if matches(&m) {
                    out.push(m);
                }
            }
            i += 1;
        }
        0
    }

    /// Payloads (operation [`OP_ADD`]) of the whole value in chunks of
    /// about [`super::SNAPSHOT_CHUNK`] bytes; at least one, even when empty.
    pub fn snapshot_chunks(&self, emit: &mut dyn FnMut(&[u8])) {
        let mut payload = Payload::default();
        let mut emitted = false;
        let mut buf = itoa::Buffer::new();
        for m in self.iter() {
            payload.push(m.bytes(&mut buf));
            if payload.bytes().len() >= super::SNAPSHOT_CHUNK {
                emit(payload.bytes());
                emitted = true;
                payload = Payload::default();
            }
        }
        if payload.count > 0 || !emitted {
            emit(payload.bytes());
        }
    }

    /// Applies an effect decoded from `payload`.
    pub fn apply(&mut self, op: u8, payload: &[u8]) -> Result<(), &'static str> {
        if op != OP_ADD && op != OP_REMOVE {
            return Err("unknown set operation");
        }
        let mut r = Reader { buf: payload };
        let n = r.u32()? as usize;
        // Bounded by the payload: each member takes at least 4 bytes.
        if n > r.buf.len() / 4 {
            return Err("set member count out of bounds");
        }
        let mut members = Vec::with_capacity(n);
        for _ in 0..n {
            members.push(r.bytes()?);
        }
        if !r.is_empty() {
            return Err("trailing bytes in a set record");
        }
        for m in members {
            if op == OP_ADD {
                self.insert(m);
            } else {
                self.remove(m);
            }
        }
        Ok(())
    }

    fn convert_to_pack(&mut self) {
        let Repr::Ints(v) = &self.repr else {
            return;
        };
        let texts: Vec<String> = v
            .iter()
            .map(|n| itoa::Buffer::new().format(n).to_owned())
            .collect();
        self.repr = Repr::Pack(Pack::from_members(texts.iter().map(|t| t.as_bytes())));
    }

    fn convert_to_table(&mut self) {
        if matches!(self.repr, Repr::Table(_)) {
            return;
        }
        let mut table = Table::with_capacity(self.len() + 1);
        let mut buf = itoa::Buffer::new();
        for m in self.iter() {
            table.insert(m.bytes(&mut buf));
        }
        self.repr = Repr::Table(Box::new(table));
    }
}

/// Digits (and sign) of `n` as text: what a member takes in a listpack.
fn digits(n: i64) -> usize {
    itoa::Buffer::new().format(n).len()
}

/// Bytes of a `hashbrown` table of u32 with room for `capacity` items:
/// buckets of 4 bytes plus one control byte each and a group of trailing
/// control bytes.
fn table_bytes(capacity: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 4 {
        4
    } else if capacity < 8 {
        8
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    chunk_size(buckets * 5 + 16)
}

/// A payload builder for the set effects: `[u32 count][u32 len, bytes]*`.
#[derive(Debug)]
pub struct Payload {
    buf: Vec<u8>,
    count: u32,
}

impl Default for Payload {
    fn default() -> Self {
        Payload {
            buf: vec![0; 4],
            count: 0,
        }
    }
}

impl Payload {
    /// Adds one member.
    pub fn push(&mut self, member: &[u8]) {
        put_bytes(&mut self.buf, member);
        self.count += 1;
        self.buf[..4].copy_from_slice(&self.count.to_le_bytes());
    }

    /// Members pushed so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True with no member.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded payload.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

// ---------------------------------------------------------------- listpack

/// The listpack encoding: one buffer of exactly its size,
/// `[u32 count][varint(len) bytes]*` (empty when the set is), reallocated
/// on each change as Redis's listpack is.
#[derive(Debug, Default)]
struct Pack {
    buf: Box<[u8]>,
}

/// Bytes of the count header.
const PACK_HEAD: usize = 4;

/// The count in a pack buffer's header (0 for an empty buffer).
fn pack_count(buf: &[u8]) -> usize {
    match buf.get(..PACK_HEAD) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) as usize,
        _ => 0,
    }
}

impl Pack {
    /// A listpack of `members` (distinct), in one allocation.
    fn from_members<'a>(members: impl IntoIterator<Item = &'a [u8]>) -> Pack {
        let mut buf = vec![0; PACK_HEAD];
        let mut count = 0u32;
        for m in members {
            put_varint(&mut buf, m.len());
            buf.extend_from_slice(m);
            count += 1;
        }
        if count == 0 {
            return Pack::default();
        }
        buf[..PACK_HEAD].copy_from_slice(&count.to_le_bytes());
        Pack {
            buf: buf.into_boxed_slice(),
        }
    }

    fn len(&self) -> usize {
        pack_count(&self.buf)
    }

    /// The entries after the count.
    fn entries(&self) -> &[u8] {
        self.buf.get(PACK_HEAD..).unwrap_or_default()
    }

    /// Bytes allocated, as malloc rounds them.
    fn heap_bytes(&self) -> usize {
        if self.buf.is_empty() {
            0
        } else {
            chunk_size(self.buf.len())
        }
    }

    /// Replaces the buffer by the concatenation of `parts` (the first one
    /// starting with a count header), allocated at exactly its size, with
    /// the header set to `count`; an empty pack has no buffer at all.
    fn rebuild(&mut self, count: usize, parts: [&[u8]; 3]) {
        if count == 0 {
            self.buf = Box::default();
            return;
        }
        let mut v = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
        for p in parts {
            v.extend_from_slice(p);
        }
        v[..PACK_HEAD].copy_from_slice(&(count as u32).to_le_bytes());
        self.buf = v.into_boxed_slice();
    }

    fn push(&mut self, member: &[u8]) {
        let mut entry = Vec::with_capacity(varint_len(member.len()) + member.len());
        put_varint(&mut entry, member.len());
        entry.extend_from_slice(member);
        let old = std::mem::take(&mut self.buf);
        let head: &[u8] = if old.is_empty() { &[0; PACK_HEAD] } else { &old };
        let count = pack_count(&old) + 1;
        self.rebuild(count, [head, &entry, &[]]);
    }

    /// The byte range of `member`'s entry in `buf`, if present.
    fn find(&self, member: &[u8]) -> Option<std::ops::Range<usize>> {
        let mut at = PACK_HEAD;
        while at < self.buf.len() {
            let (len, head) = get_varint(&self.buf[at..])?;
            let start = at + head;
            let end = start.checked_add(len)?;
            if self.buf.get(start..end)? == member {
                return Some(at..end);
            }
            at = end;
        }
        None
    }

    fn remove(&mut self, entry: std::ops::Range<usize>) {
        let old = std::mem::take(&mut self.buf);
        let count = pack_count(&old).saturating_sub(1);
        let (Some(before), Some(after)) = (old.get(..entry.start), old.get(entry.end..)) else {
            self.buf = old;
            return;
        };
        self.rebuild(count, [before, after, &[]]);
    }
}

/// Members of a listpack in order.
pub struct PackIter<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for PackIter<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        let (len, head) = get_varint(self.buf)?;
        let member = self.buf.get(head..head.checked_add(len)?)?;
        self.buf = &self.buf[head + len..];
        Some(Member::Bytes(member))
    }
}

/// Members of a set, see [`Set::iter`].
pub enum Iter<'a> {
    Ints(super::intset::Iter<'a>),
    Pack(PackIter<'a>),
    Table(std::slice::Iter<'a, Option<Box<[u8]>>>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        match self {
            Iter::Ints(it) => it.next().map(Member::Int),
            Iter::Pack(it) => it.next(),
            Iter::Table(it) => it.find_map(|s| s.as_deref()).map(Member::Bytes),
        }
    }
}

// --------------------------------------------------------------- hashtable

/// Bytes malloc gives a member box of `len` bytes (none for an empty one).
fn member_chunk(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        chunk_size(len)
    }
}

/// The hasher of members: one per process, randomly keyed.
fn member_hasher() -> &'static ahash::RandomState {
    static HASHER: OnceLock<ahash::RandomState> = OnceLock::new();
    HASHER.get_or_init(ahash::RandomState::new)
}

/// The hashtable encoding: stable slots plus an index of slot numbers.
#[derive(Debug, Default)]
struct Table {
    slots: Vec<Option<Box<[u8]>>>,
    index: HashTable<u32>,
    /// Vacant slots below the last live one, reused first.
    free: Vec<u32>,
    len: usize,
    /// Bytes malloc gives the member boxes, kept as members come and go so
    /// `MEMORY USAGE` is O(1) under the shard lock.
    member_bytes: usize,
}

impl Table {
    fn with_capacity(n: usize) -> Table {
        Table {
            slots: Vec::with_capacity(n),
            index: HashTable::with_capacity(n),
            free: Vec::new(),
            len: 0,
            member_bytes: 0,
        }
    }

    fn find(&self, member: &[u8]) -> Option<u32> {
        let hash = member_hasher().hash_one(member);
        let slots = &self.slots;
        self.index
            .find(hash, |&i| slots[i as usize].as_deref() == Some(member))
            .copied()
    }

    fn insert(&mut self, member: &[u8]) -> bool {
        if self.find(member).is_some() {
            return false;
        }
        let boxed: Box<[u8]> = member.into();
        self.member_bytes += member_chunk(member.len());
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(boxed);
                i
            }
            None => {
                self.slots.push(Some(boxed));
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        self.index
            .insert_unique(member_hasher().hash_one(member), i, |&j| {
                member_hasher().hash_one(slots[j as usize].as_deref().unwrap_or_default())
            });
        self.len += 1;
        true
    }

    fn remove(&mut self, member: &[u8]) -> bool {
        let hash = member_hasher().hash_one(member);
        let slots = &self.slots;
        let Ok(entry) = self
            .index
            .find_entry(hash, |&i| slots[i as usize].as_deref() == Some(member))
        else {
            return false;
        };
        let (i, _) = entry.remove();
        self.slots[i as usize] = None;
        self.member_bytes -= member_chunk(member.len());
        self.len -= 1;
        // Trailing vacancies go away (no live member moves, so SSCAN
        // cursors stay valid); inner ones are reused by the next insert.
        if i as usize + 1 == self.slots.len() {
            while self.slots.last().is_some_and(Option::is_none) {
                self.slots.pop();
            }
            let live_end = self.slots.len() as u32;
            self.free.retain(|&f| f < live_end);
        } else {
            self.free.push(i);
        }
        if self.slots.len() > 64 && self.len * 8 < self.slots.len() {
            self.compact();
        }
        if self.slots.capacity() > 64 && self.slots.len() < self.slots.capacity() / 4 {
            self.slots.shrink_to_fit();
            self.free.shrink_to_fit();
        }
        if self.index.capacity() > 64 && self.len < self.index.capacity() / 4 {
            let slots = &self.slots;
            self.index.shrink_to_fit(|&j| {
                member_hasher().hash_one(slots[j as usize].as_deref().unwrap_or_default())
            });
        }
        true
    }
}

impl Table {
    /// Moves the live members to the front and rebuilds the index, once
    /// fewer than 1 slot in 8 is live: random picks stay O(1) expected
    /// however a set was drained. A scan in progress may miss members
    /// moved by this (see docs/types/set.md).
    fn compact(&mut self) {
        let live: Vec<Box<[u8]>> = std::mem::take(&mut self.slots).into_iter().flatten().collect();
        let mut table = Table::with_capacity(live.len());
        for (i, member) in live.into_iter().enumerate() {
            let hash = member_hasher().hash_one(&*member);
            table.slots.push(Some(member));
            let slots = &table.slots;
            table.index.insert_unique(hash, i as u32, |&j| {
                member_hasher().hash_one(slots[j as usize].as_deref().unwrap_or_default())
            });
        }
        table.len = table.slots.len();
        table.member_bytes = self.member_bytes;
        *self = table;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(s: &Set) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = s.iter().map(|m| m.to_vec()).collect();
        v.sort();
        v
    }

    fn rng() -> impl FnMut() -> u64 {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    proptest::proptest! {
        /// Random adds, removes and pops against a `BTreeSet`, over members
        /// that walk a set through every encoding: small and wide integers
        /// (intset widths 16, 32, 64), short strings (listpack), long ones
        /// and many of them (hashtable).
        #[test]
        fn every_encoding_behaves_as_a_model_set(
            ops in proptest::collection::vec((0u8..4, 0u32..1200), 1..700),
        ) {
            let mut s = Set::new();
            let mut model = std::collections::BTreeSet::new();
            let mut r = rng();
            for (kind, n) in ops {
                let member = match n % 8 {
                    0 => format!("s{n}").into_bytes(),
                    1 => (i64::from(n) * 100_000).to_string().into_bytes(),
                    2 => (-(i64::from(n) << 33)).to_string().into_bytes(),
                    3 if n % 64 == 3 => vec![b'x'; 70 + n as usize % 5],
                    _ => (n / 8).to_string().into_bytes(),
                };
                match kind {
                    0 | 1 => proptest::prop_assert_eq!(s.insert(&member), model.insert(member)),
                    2 => proptest::prop_assert_eq!(s.remove(&member), model.remove(&member)),
                    _ => {
                        if let Some(m) = s.pop_random(&mut r) {
                            proptest::prop_assert!(model.remove(&m));
                        }
                    }
                }
                proptest::prop_assert_eq!(s.len(), model.len());
            }
            let want: Vec<Vec<u8>> = model.iter().cloned().collect();
            proptest::prop_assert_eq!(members(&s), want);
            for m in &model {
                proptest::prop_assert!(s.contains(m));
            }
            if s.encoding() == "intset" {
                proptest::prop_assert!(model.iter().all(|m| as_int(m).is_some()));
                proptest::prop_assert!(model.len() <= DEFAULT_MAX_INTSET_ENTRIES);
            }
            if s.encoding() == "listpack" {
                proptest::prop_assert!(model.len() <= DEFAULT_MAX_LISTPACK_ENTRIES);
            }
        }
    }

    #[test]
    fn a_wide_integer_widens_the_intset_and_a_listpack_keeps_every_member() {
        let mut s = Set::new();
        for n in [3i64, -2, 70_000, -5_000_000_000] {
            assert!(s.insert(n.to_string().as_bytes()));
        }
        assert_eq!(s.encoding(), "intset");
        let Repr::Ints(ints) = &s.repr else {
            panic!("an intset");
        };
        assert_eq!(ints.width(), 8);
        assert!(s.insert(b"text"));
        assert_eq!(s.encoding(), "listpack");
        assert_eq!(
            members(&s),
            vec![
                b"-2".to_vec(),
                b"-5000000000".to_vec(),
                b"3".to_vec(),
                b"70000".to_vec(),
                b"text".to_vec()
            ]
        );
        assert!(s.remove(b"3") && !s.contains(b"3") && s.contains(b"70000"));
    }

    #[test]
    fn only_canonical_integers_count_as_integers() {
        assert_eq!(as_int(b"12"), Some(12));
        assert_eq!(as_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"012"[..],
            b"+1",
            b"-0",
            b" 1",
            b"1 ",
            b"",
            b"9223372036854775808",
            b"1.0",
        ] {
            assert_eq!(as_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn integers_stay_an_intset_until_the_intset_limit() {
        let mut s = Set::new();
        for i in 0..DEFAULT_MAX_INTSET_ENTRIES as i64 {
            assert!(s.insert(i.to_string().as_bytes()));
        }
        assert_eq!(s.encoding(), "intset");
        assert!(!s.insert(b"0"));
        assert!(s.insert(b"100000"));
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), DEFAULT_MAX_INTSET_ENTRIES + 1);
        assert!(s.contains(b"511") && s.contains(b"100000") && !s.contains(b"512"));
    }

    #[test]
    fn a_string_turns_a_small_intset_into_a_listpack_and_a_long_one_into_a_hashtable() {
        let mut s = Set::new();
        s.insert(b"1");
        s.insert(b"2");
        s.insert(b"a");
        assert_eq!(s.encoding(), "listpack");
        assert_eq!(members(&s), vec![b"1".to_vec(), b"2".to_vec(), b"a".to_vec()]);
        let mut t = Set::new();
        t.insert(b"1");
        t.insert(&[b'x'; 65]);
        assert_eq!(t.encoding(), "hashtable");
        assert!(t.contains(b"1") && t.contains(&[b'x'; 65]));
    }

    #[test]
    fn a_listpack_becomes_a_hashtable_past_its_entry_limit_and_never_back() {
        let mut s = Set::new();
        for i in 0..DEFAULT_MAX_LISTPACK_ENTRIES {
            s.insert(format!("m{i}").as_bytes());
        }
        assert_eq!(s.encoding(), "listpack");
        s.insert(b"one-more");
        assert_eq!(s.encoding(), "hashtable");
        for i in 0..DEFAULT_MAX_LISTPACK_ENTRIES {
            assert!(s.remove(format!("m{i}").as_bytes()));
        }
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(members(&s), vec![b"one-more".to_vec()]);
    }

    #[test]
    fn prepare_picks_the_encoding_from_the_first_member_and_the_size_hint() {
        let mut s = Set::new();
        s.prepare(b"a", 1000);
        assert_eq!(s.encoding(), "hashtable");
        let mut s = Set::new();
        s.prepare(b"1", 1000);
        assert_eq!(s.encoding(), "hashtable");
        let mut s = Set::new();
        s.prepare(b"a", 3);
        assert_eq!(s.encoding(), "listpack");
    }

    #[test]
    fn hashtable_scan_visits_every_member_across_removals() {
        let mut s = Set::new();
        for i in 0..1000 {
            s.insert(format!("k{i}").as_bytes());
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            let mut out = Vec::new();
            let next = s.scan(cursor, 10, None, &mut out);
            seen.extend(out.iter().map(|m| m.to_vec()));
            // Removing members already returned must not hide the others.
            if round % 3 == 0 {
                if let Some(m) = out.first().map(|m| m.to_vec()) {
                    s.remove(&m);
                }
            }
            round += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen.len(), 1000);
    }

    #[test]
    fn random_picks_and_pops_cover_every_encoding() {
        for n in [5usize, 50, 600] {
            let mut s = Set::new();
            for i in 0..n {
                s.insert(if n == 50 { format!("s{i}") } else { i.to_string() }.as_bytes());
            }
            let mut r = rng();
            assert!(s.random(&mut r).is_some());
            let mut popped = std::collections::HashSet::new();
            while let Some(m) = s.pop_random(&mut r) {
                assert!(popped.insert(m));
            }
            assert_eq!(popped.len(), n);
            assert!(s.is_empty());
        }
    }

    #[test]
    fn a_drained_hashtable_is_compacted_and_keeps_its_members() {
        let mut s = Set::new();
        for i in 0..10_000 {
            s.insert(format!("m{i}").as_bytes());
        }
        for i in 0..9_990 {
            assert!(s.remove(format!("m{i}").as_bytes()));
        }
        let Repr::Table(t) = &s.repr else {
            panic!("still a hashtable");
        };
        assert!(t.slots.len() < 100, "{} slots for 10 members", t.slots.len());
        let expected: Vec<Vec<u8>> = {
            let mut v: Vec<Vec<u8>> = (9_990..10_000).map(|i| format!("m{i}").into_bytes()).collect();
            v.sort();
            v
        };
        assert_eq!(members(&s), expected);
        assert!(s.contains(b"m9995") && !s.contains(b"m5"));
        assert!(s.insert(b"again") && !s.insert(b"m9999"));
    }

    #[test]
    fn random_distinct_members_are_distinct_in_every_encoding_and_size() {
        for (n, text) in [(50usize, false), (50, true), (3000, true)] {
            let mut s = Set::new();
            for i in 0..n {
                s.insert(if text { format!("s{i}") } else { i.to_string() }.as_bytes());
            }
            let mut r = rng();
            for count in [0, 1, 5, n / 3 + 1, n - 1, n, n + 7] {
                let got: Vec<Vec<u8>> = s
                    .random_distinct(count, &mut r)
                    .iter()
                    .map(|m| m.to_vec())
                    .collect();
                let distinct: std::collections::HashSet<&Vec<u8>> = got.iter().collect();
                assert_eq!(got.len(), count.min(n), "n {n} count {count}");
                assert_eq!(distinct.len(), got.len(), "n {n} count {count}");
                assert!(got.iter().all(|m| s.contains(m)));
            }
        }
    }

    #[test]
    fn snapshot_payloads_rebuild_the_same_members() {
        for n in [0usize, 3, 100, 3000] {
            let mut s = Set::new();
            for i in 0..n {
                s.insert(format!("member-{i}").as_bytes());
            }
            let mut rebuilt = Set::new();
            let mut calls = 0;
            s.snapshot_chunks(&mut |p| {
                calls += 1;
                rebuilt.apply(OP_ADD, p).unwrap();
            });
            assert!(calls >= 1);
            assert_eq!(members(&rebuilt), members(&s));
        }
    }

    #[test]
    fn remove_payloads_remove_members() {
        let mut s = Set::new();
        let mut add = Payload::default();
        for m in [&b"a"[..], b"b", b"c"] {
            add.push(m);
        }
        s.apply(OP_ADD, add.bytes()).unwrap();
        let mut rem = Payload::default();
        rem.push(b"b");
        rem.push(b"zz");
        s.apply(OP_REMOVE, rem.bytes()).unwrap();
        assert_eq!(members(&s), vec![b"a".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn bad_payloads_are_errors_not_panics() {
        let mut s = Set::new();
        let mut good = Payload::default();
        good.push(b"abc");
        let good = good.bytes().to_vec();
        assert!(s.apply(9, &good).is_err());
        assert!(s.apply(OP_ADD, &[]).is_err());
        assert!(s.apply(OP_ADD, &[0xFF, 0xFF, 0xFF, 0xFF]).is_err());
        for cut in 0..good.len() {
            assert!(s.apply(OP_ADD, &good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(s.apply(OP_ADD, &trailing).is_err());
        let mut huge = good.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(s.apply(OP_ADD, &huge).is_err());
        assert!(s.is_empty());
    }

    #[test]
    fn memory_usage_grows_with_members() {
        let mut s = Set::new();
        assert_eq!(s.memory_usage(), 0);
        s.insert(b"1");
        assert_eq!(s.memory_usage(), 0, "a tiny intset lives inside the value");
        for i in 2..=11 {
            s.insert(i.to_string().as_bytes());
        }
        assert_eq!(
            s.memory_usage(),
            chunk_size(22),
            "eleven 16-bit integers: one buffer"
        );
        s.insert(b"x");
        assert_eq!(s.encoding(), "listpack");
        // The count, then "1".."9" and "x" (a length byte each) and "10", "11".
        assert_eq!(s.memory_usage(), chunk_size(4 + 10 * 2 + 2 * 3));
        let small = s.memory_usage();
        for i in 0..1000 {
            s.insert(format!("member-{i}").as_bytes());
        }
        assert!(s.memory_usage() > small + 1000 * 16);
        let full = s.memory_usage();
        for i in 0..1000 {
            s.remove(format!("member-{i}").as_bytes());
        }
        assert!(s.memory_usage() < full);
    }
}
