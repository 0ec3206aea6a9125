//! Lists: a chain of compact nodes, as Redis's quicklist of listpacks.
//!
//! # Layout
//! A [`List`] is a `VecDeque` of [`Node`]s. A node is one contiguous byte
//! vector of entries, each `[len as LEB128][bytes][len as LEB128, reversed]`:
//! the forward length lets a reader walk from the front, the reversed copy
//! (Redis's listpack "backlen") lets it walk from the back, so `RPOP` never
//! scans its node. A 10-byte item costs 12 bytes; node headers (32 bytes)
//! are spread over up to 8 KiB of entries (`list-max-listpack-size -2`,
//! Redis's default). Pushes and pops at either end touch one node;
//! an index walks node counts first, then one node's entries.
//!
//! A list of one node within the size limit reports `OBJECT ENCODING
//! listpack`, a longer one `quicklist`, as Redis 7.2 does.
//! `list-compress-depth` is accepted but nodes are not compressed.
//!
//! # WAL effects
//! One effect, [`OP_SPLICE`]: a sequence of splices `(start, deleted,
//! inserted items)`, applied in order at absolute positions. Every list
//! write is one: `LPUSH a b` is `(0, 0, [b, a])`, `RPOP 2` on a list of 10 is
//! `(8, 2, [])`, `LREM` one splice per removed run, `LTRIM` two. Positions are
//! absolute because replay rebuilds exactly the list they were taken from.
//! An `OP_REPLACE` record's payload is the same format (one splice at 0).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};

use super::codec::{put_bytes, put_u64, Reader};

/// The list effect: a sequence of splices.
pub const OP_SPLICE: u8 = super::OP_ADD;

/// `list-max-listpack-size`: negative = node byte limit (-1 4 KiB … -5
/// 64 KiB), positive = entries per node. Redis's default is -2 (8 KiB).
static MAX_LISTPACK_SIZE: AtomicI64 = AtomicI64::new(-2);

/// Sets `list-max-listpack-size` (CONFIG SET; nodes already built keep their size).
pub fn set_max_listpack_size(v: i64) {
    MAX_LISTPACK_SIZE.store(v, Ordering::Relaxed);
}

/// `list-max-listpack-size`.
pub fn max_listpack_size() -> i64 {
    MAX_LISTPACK_SIZE.load(Ordering::Relaxed)
}

/// True if a node of `bytes` bytes and `count` entries may take one more
/// entry of `extra` bytes.
fn fits(bytes: usize, count: usize, extra: usize) -> bool {
    match max_listpack_size() {
        n if n > 0 => count < n as usize,
        n => {
            let limit = 4096usize << ((-n).clamp(1, 5) - 1);
            // An entry bigger than a node gets a node of its own.
            count == 0 || bytes + extra <= limit
        }
    }
}

fn leb_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn put_leb(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Bytes an entry of `len` item bytes takes in a node.
fn entry_len(len: usize) -> usize {
    2 * leb_len(len) + len
}

fn encode_entry(item: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entry_len(item.len()));
    put_leb(&mut out, item.len());
    out.extend_from_slice(item);
    let start = out.len();
    put_leb(&mut out, item.len());
    out[start..].reverse();
    out
}

/// One node: entries back to back (see the module doc).
#[derive(Debug, Default, Clone)]
struct Node {
    bytes: Vec<u8>,
    count: usize,
}

impl Node {
    /// The entry starting at byte `at`: (item range, end of entry).
    fn entry_at(&self, at: usize) -> (std::ops::Range<usize>, usize) {
        let mut len = 0usize;
        let mut shift = 0;
        let mut p = at;
        loop {
            let b = self.bytes[p];
            p += 1;
            len |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        let end = p + len + leb_len(len);
        (p..p + len, end)
    }

    /// The entry ending at byte `end`: its start.
    fn entry_before(&self, end: usize) -> usize {
        let mut len = 0usize;
        let mut shift = 0;
        let mut p = end;
        loop {
            p -= 1;
            let b = self.bytes[p];
            len |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        p - len - leb_len(len)
    }

    /// Byte offset of entry `i` (or the end for `i == count`), walking from
    /// whichever end is nearer.
    fn offset_of(&self, i: usize) -> usize {
        if i <= self.count / 2 {
            let mut at = 0;
            for _ in 0..i {
                at = self.entry_at(at).1;
            }
            at
        } else {
            let mut at = self.bytes.len();
            for _ in i..self.count {
                at = self.entry_before(at);
            }
            at
        }
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        NodeIter {
            node: self,
            front: 0,
            back: self.bytes.len(),
        }
    }
}

struct NodeIter<'a> {
    node: &'a Node,
    front: usize,
    back: usize,
}

impl<'a> Iterator for NodeIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.front >= self.back {
            return None;
        }
        let (item, end) = self.node.entry_at(self.front);
        self.front = end;
        Some(&self.node.bytes[item])
    }
}

impl DoubleEndedIterator for NodeIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        let start = self.node.entry_before(self.back);
        let item = self.node.entry_at(start).0;
        self.back = start;
        Some(&self.node.bytes[item])
    }
}

/// A list value.
#[derive(Debug, Default, Clone)]
pub struct List {
    nodes: VecDeque<Node>,
    len: usize,
}

impl List {
    /// An empty list.
    pub fn new() -> List {
        List::default()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True with no item.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `OBJECT ENCODING`: `listpack` for one node within the limit, else `quicklist`.
    pub fn encoding(&self) -> &'static str {
        match self.nodes.len() {
            0 | 1 => "listpack",
            _ => "quicklist",
        }
    }

    /// Bytes allocated, as malloc rounds them.
    pub fn memory_usage(&self) -> usize {
        let nodes = self.nodes.capacity() * std::mem::size_of::<Node>();
        let node_bytes: usize = self
            .nodes
            .iter()
            .map(|n| crate::memory::chunk_size(n.bytes.capacity()))
            .sum();
        if nodes == 0 {
            node_bytes
        } else {
            crate::memory::chunk_size(nodes) + node_bytes
        }
    }

    /// Adds `item` at the head.
    pub fn push_front(&mut self, item: &[u8]) {
        let entry = encode_entry(item);
        match self.nodes.front_mut() {
            Some(n) if fits(n.bytes.len(), n.count, entry.len()) => {
                n.bytes.splice(0..0, entry);
                n.count += 1;
            }
            _ => {
                // The old head is full: give back its doubling slack.
                if let Some(full) = self.nodes.front_mut() {
                    full.bytes.shrink_to_fit();
                }
                self.nodes.push_front(Node {
                    bytes: entry,
                    count: 1,
                })
            }
        }
        self.len += 1;
    }

    /// Adds `item` at the tail.
    pub fn push_back(&mut self, item: &[u8]) {
        let extra = entry_len(item.len());
        match self.nodes.back_mut() {
            Some(n) if fits(n.bytes.len(), n.count, extra) => {
                n.bytes.extend_from_slice(&encode_entry(item));
                n.count += 1;
            }
            _ => {
                // The old tail is full: give back its doubling slack (a
                // growing node has up to half its capacity unused).
                if let Some(full) = self.nodes.back_mut() {
                    full.bytes.shrink_to_fit();
                }
                self.nodes.push_back(Node {
                    bytes: encode_entry(item),
                    count: 1,
                })
            }
        }
        self.len += 1;
    }

    /// Removes and returns the head item.
    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        let node = self.nodes.front_mut()?;
        let (item, end) = node.entry_at(0);
        let value = node.bytes[item].to_vec();
        node.bytes.drain(..end);
        node.count -= 1;
        if node.count == 0 {
            self.nodes.pop_front();
        } else {
            shrink(node);
        }
        self.len -= 1;
        Some(value)
    }

    /// Removes and returns the tail item.
    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        let node = self.nodes.back_mut()?;
        let start = node.entry_before(node.bytes.len());
        let value = node.bytes[node.entry_at(start).0].to_vec();
        node.bytes.truncate(start);
        node.count -= 1;
        if node.count == 0 {
            self.nodes.pop_back();
        } else {
            shrink(node);
        }
        self.len -= 1;
        Some(value)
    }

    /// Node and entry index of item `index` (< len).
    fn locate(&self, mut index: usize) -> (usize, usize) {
        if index < self.len / 2 {
            for (n, node) in self.nodes.iter().enumerate() {
                if index < node.count {
                    return (n, index);
                }
                index -= node.count;
            }
        } else {
            let mut from_end = self.len - index;
            for (n, node) in self.nodes.iter().enumerate().rev() {
                if from_end <= node.count {
                    return (n, node.count - from_end);
                }
                from_end -= node.count;
            }
        }
        (self.nodes.len(), 0)
    }

    /// Item `index` (0-based from the head).
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        if index >= self.len {
            return None;
        }
        let (n, i) = self.locate(index);
        let node = &self.nodes[n];
        let at = node.offset_of(i);
        Some(&node.bytes[node.entry_at(at).0])
    }

    /// Items from the head.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.nodes.iter().flat_map(Node::iter)
    }

    /// Items `start..=stop` (already clamped to the list), from the head.
    pub fn range(&self, start: usize, stop: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (first_node, first_entry) = if start < self.len {
            self.locate(start)
        } else {
            (self.nodes.len(), 0)
        };
        let count = if start < self.len && stop >= start {
            stop.min(self.len - 1) - start + 1
        } else {
            0
        };
        self.nodes
            .iter()
            .skip(first_node)
            .enumerate()
            .flat_map(move |(k, node)| node.iter().skip(if k == 0 { first_entry } else { 0 }))
            .take(count)
    }

    /// Puts `item` at position `index` (0..=len).
    pub fn insert(&mut self, index: usize, item: &[u8]) {
        if index == 0 {
            return self.push_front(item);
        }
        if index >= self.len {
            return self.push_back(item);
        }
        let (n, i) = self.locate(index);
        let entry = encode_entry(item);
        let node = &mut self.nodes[n];
        let at = node.offset_of(i);
        node.bytes.splice(at..at, entry);
        node.count += 1;
        self.len += 1;
        if !fits(node.bytes.len(), node.count - 1, 0) {
            self.split(n);
        }
    }

    /// Splits node `n` in two halves by entries.
    fn split(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        if node.count < 2 {
            return;
        }
        let keep = node.count / 2;
        let at = node.offset_of(keep);
        let tail = Node {
            bytes: node.bytes.split_off(at),
            count: node.count - keep,
        };
        node.count = keep;
        shrink(node);
        self.nodes.insert(n + 1, tail);
    }

    /// Replaces item `index`; false if out of range.
    pub fn set(&mut self, index: usize, item: &[u8]) -> bool {
        if index >= self.len {
            return false;
        }
        self.remove_range(index, 1);
        self.insert(index, item);
        true
    }

    /// Removes `count` items from position `start` (clamped to the list).
    pub fn remove_range(&mut self, start: usize, count: usize) {
        let mut left = count.min(self.len.saturating_sub(start));
        while left > 0 {
            let (n, i) = self.locate(start);
            let node = &mut self.nodes[n];
            let take = left.min(node.count - i);
            if i == 0 && take == node.count {
                self.nodes.remove(n);
            } else {
                let from = node.offset_of(i);
                let to = node.offset_of(i + take);
                node.bytes.drain(from..to);
                node.count -= take;
                shrink(node);
            }
            self.len -= take;
            left -= take;
        }
    }

    /// Applies splices (see the module doc) to this list.
    pub fn splice(&mut self, start: usize, deleted: usize, items: &[&[u8]]) {
        self.remove_range(start, deleted);
        for (k, item) in items.iter().enumerate() {
            self.insert(start + k, item);
        }
    }

    /// Payloads of the whole list in chunks of about [`super::SNAPSHOT_CHUNK`] bytes.
    pub fn snapshot_chunks(&self, emit: &mut dyn FnMut(&[u8])) {
        let mut splice = SpliceLog::default();
        let mut at = 0;
        let mut items: Vec<&[u8]> = Vec::new();
        let mut bytes = 0;
        for item in self.iter() {
            items.push(item);
            bytes += item.len() + 4;
            if bytes >= super::SNAPSHOT_CHUNK {
                splice.push(at, 0, &items);
                emit(splice.payload());
                splice = SpliceLog::default();
                at += items.len();
                items.clear();
                bytes = 0;
            }
        }
        if !items.is_empty() || at == 0 {
            splice.push(at, 0, &items);
            emit(splice.payload());
        }
    }

    /// Applies an effect decoded from `payload`.
    pub fn apply(&mut self, op: u8, payload: &[u8]) -> Result<(), &'static str> {
        if op != OP_SPLICE {
            return Err("unknown list operation");
        }
        let mut r = Reader { buf: payload };
        let splices = r.u32()?;
        for _ in 0..splices {
            let start = r.u64()? as usize;
            let deleted = r.u64()? as usize;
            let n = r.u32()? as usize;
            // Bounded by the payload: each item takes at least 4 bytes.
            if n > r.buf.len() / 4 {
                return Err("list splice count out of bounds");
            }
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(r.bytes()?);
            }
            if start > self.len {
                return Err("list splice beyond the end");
            }
            self.splice(start, deleted, &items);
        }
        if !r.is_empty() {
            return Err("trailing bytes in a list record");
        }
        Ok(())
    }
}

/// Gives a node back the room a removal freed once it is mostly empty.
fn shrink(node: &mut Node) {
    if node.bytes.capacity() > 64 && node.bytes.len() < node.bytes.capacity() / 4 {
        node.bytes.shrink_to(node.bytes.len() * 2);
    }
}

/// Builds the payload of one [`OP_SPLICE`] record in one buffer: the
/// splice count comes first and is patched as splices are added.
#[derive(Debug, Default)]
pub struct SpliceLog {
    payload: Vec<u8>,
}

impl SpliceLog {
    fn count(&self) -> u32 {
        self.payload
            .first_chunk::<4>()
            .map_or(0, |b| u32::from_le_bytes(*b))
    }

    /// Adds a splice: at `start`, `deleted` items removed, then `items` inserted.
    pub fn push(&mut self, start: usize, deleted: usize, items: &[&[u8]]) {
        let count = self.count() + 1;
        if self.payload.is_empty() {
            self.payload.extend_from_slice(&[0; 4]);
        }
        self.payload[..4].copy_from_slice(&count.to_le_bytes());
        put_u64(&mut self.payload, start as u64);
        put_u64(&mut self.payload, deleted as u64);
        self.payload
            .extend_from_slice(&(items.len() as u32).to_le_bytes());
        for item in items {
            put_bytes(&mut self.payload, item);
        }
    }

    /// Adds a splice inserting items given as owned vectors.
    pub fn push_owned(&mut self, start: usize, deleted: usize, items: &[Vec<u8>]) {
        let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
        self.push(start, deleted, &refs);
    }

    /// True with no splice.
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    /// The record payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(l: &List) -> Vec<Vec<u8>> {
        l.iter().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn pushes_pops_and_indexes_agree_with_a_vecdeque_across_many_nodes() {
        let mut l = List::new();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let mut seed = 7u64;
        for step in 0..20_000u64 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let item = format!("item-{step}-{}", "x".repeat((seed >> 60) as usize * 20)).into_bytes();
            match (seed >> 33) % 7 {
                0 | 1 => {
                    l.push_front(&item);
                    model.push_front(item);
                }
                2 | 3 => {
                    l.push_back(&item);
                    model.push_back(item);
                }
                4 => assert_eq!(l.pop_front(), model.pop_front()),
                5 => assert_eq!(l.pop_back(), model.pop_back()),
                _ => {
                    let at = if model.is_empty() {
                        0
                    } else {
                        (seed as usize >> 3) % (model.len() + 1)
                    };
                    l.insert(at, &item);
                    model.insert(at, item);
                }
            }
            assert_eq!(l.len(), model.len());
        }
        assert!(l.nodes.len() > 1, "the test must span several nodes");
        assert_eq!(items(&l), model.iter().cloned().collect::<Vec<_>>());
        for i in (0..model.len()).step_by(97) {
            assert_eq!(l.get(i), Some(&model[i][..]));
        }
        let got: Vec<&[u8]> = l.range(10, 500).collect();
        let want: Vec<&[u8]> = model.iter().skip(10).take(491).map(Vec::as_slice).collect();
        assert_eq!(got, want);
        let back: Vec<&[u8]> = l.iter().rev().take(5).collect();
        let want: Vec<&[u8]> = model.iter().rev().take(5).map(Vec::as_slice).collect();
        assert_eq!(back, want);
    }

    #[test]
    fn remove_range_and_set_span_node_boundaries() {
        let mut l = List::new();
        let mut model = Vec::new();
        for i in 0..5000 {
            let item = format!("{i:06}").into_bytes();
            l.push_back(&item);
            model.push(item);
        }
        l.remove_range(100, 3000);
        model.drain(100..3100);
        assert!(l.set(150, b"changed"));
        model[150] = b"changed".to_vec();
        assert!(!l.set(10_000, b"x"));
        assert_eq!(items(&l), model);
    }

    #[test]
    fn splice_records_replay_to_the_same_list() {
        let mut l = List::new();
        for i in 0..3000 {
            l.push_back(format!("v{i}").as_bytes());
        }
        let mut log = SpliceLog::default();
        log.push(0, 0, &[b"a", b"b"]);
        log.push(10, 5, &[b"mid"]);
        log.push(2995, 3, &[]);
        let payload = log.payload().to_vec();
        let mut replayed = l.clone();
        l.splice(0, 0, &[b"a", b"b"]);
        l.splice(10, 5, &[b"mid"]);
        l.splice(2995, 3, &[]);
        replayed.apply(OP_SPLICE, &payload).unwrap();
        assert_eq!(items(&replayed), items(&l));
        // Snapshot chunks rebuild it from nothing.
        let mut rebuilt = List::new();
        l.snapshot_chunks(&mut |p| rebuilt.apply(OP_SPLICE, p).unwrap());
        assert_eq!(items(&rebuilt), items(&l));
        // A bad payload is an error, never a panic.
        assert!(List::new()
            .apply(OP_SPLICE, &payload[..payload.len() - 1])
            .is_err());
        assert!(List::new().apply(OP_SPLICE, &[1, 0, 0, 0, 9, 9]).is_err());
    }
}
