//! Sorted sets: members ordered by (score, member bytes), with O(log n)
//! rank for big sets and a compact sorted vector for small ones.
//!
//! # Encodings
//! - **listpack** (`OBJECT ENCODING listpack`): one buffer of (member,
//!   score) entries sorted by score then member, scores at their narrowest
//!   exact width ([`ZPack`], `zpack.rs`). Up to `zset-max-listpack-entries`
//!   (128) members of at most `zset-max-listpack-value` (64) bytes each,
//!   every operation is a short linear scan over one allocation — cheaper
//!   in memory and time than any tree at that size, as Redis's listpack is.
//! - **skiplist** (`OBJECT ENCODING skiplist`): Redis's design — a skiplist
//!   with spans (so rank and "element at rank" are O(log n)) plus a
//!   member → score hash map (O(1) ZSCORE and the lookup before an update).
//!   Nodes live in one arena `Vec` addressed by `u32` indices (no unsafe,
//!   no per-link pointers), freed slots are reused. A skiplist was chosen
//!   over an order-statistic B-tree because its rank/range walks are the
//!   ones `t_zset.c` documents, so every range command maps one-to-one onto
//!   a known-good algorithm, and it needs no rebalancing code. The member
//!   bytes are stored twice (node and map key), where Redis shares one sds;
//!   see `docs/types/zset.md`.
//!
//! A set converts to skiplist when it would exceed either limit and never
//! converts back on its own (as Redis); `*STORE` commands build a new value
//! with [`ZSet::from_entries`], which picks the encoding by size.
//!
//! Scores are `f64`; NaN is never stored (callers reject it) and `-0.0` is
//! stored as `0.0`, so `partial_cmp` is a total order here.
//!
//! # WAL effects
//! - [`OP_ADD`] (1): `u32 count`, then `count` × (`f64 score` as IEEE bits
//!   LE, `u32 len`, member bytes): set each member to that absolute score
//!   (added or updated). ZINCRBY logs the resulting score, never the
//!   increment. `OP_REPLACE` snapshot payloads are the same format.
//! - [`OP_REM`] (2): `u32 count`, then `count` × (`u32 len`, member bytes):
//!   remove these members (ZREM, ZPOP*, ZREMRANGEBY*, ZMPOP log the members
//!   they removed). Absent members are ignored on replay.
//!
//! A payload that is truncated, has trailing bytes or carries a NaN score is
//! an error, never a panic.

use std::cmp::Ordering as CmpOrdering;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::codec::{put_bytes, put_f64, Reader};
use super::zpack::{cmp_entry, ZPack};
use super::OP_ADD;

/// Operation 2: remove members.
pub const OP_REM: u8 = 2;

/// `zset-max-listpack-entries` (Redis's default 128).
static MAX_LISTPACK_ENTRIES: AtomicUsize = AtomicUsize::new(128);
/// `zset-max-listpack-value` (Redis's default 64).
static MAX_LISTPACK_VALUE: AtomicUsize = AtomicUsize::new(64);

/// Sets `zset-max-listpack-entries` (CONFIG SET; existing values keep their
/// encoding until they next grow).
pub fn set_max_listpack_entries(v: usize) {
    MAX_LISTPACK_ENTRIES.store(v, Ordering::Relaxed);
}

/// `zset-max-listpack-entries`.
pub fn max_listpack_entries() -> usize {
    MAX_LISTPACK_ENTRIES.load(Ordering::Relaxed)
}

/// Sets `zset-max-listpack-value` (CONFIG SET).
pub fn set_max_listpack_value(v: usize) {
    MAX_LISTPACK_VALUE.store(v, Ordering::Relaxed);
}

/// `zset-max-listpack-value`.
pub fn max_listpack_value() -> usize {
    MAX_LISTPACK_VALUE.load(Ordering::Relaxed)
}

/// Stores `-0.0` as `0.0`, so equal scores compare and print equal.
fn normalize(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

const NIL: u32 = u32::MAX;
const MAX_LEVEL: usize = 32;

#[derive(Debug, Clone, Copy)]
struct Level {
    forward: u32,
    /// Number of level-0 steps this link skips (Redis's span).
    span: u32,
}

/// Levels kept inside the node when there are few: with Redis's p = 1/4,
/// 99.6 % of nodes have at most [`INLINE_LEVELS`], so a search step reads
/// the node's cache line and not a second allocation (measured: ZADD into a
/// 100 000-member set spent ~70 % of its time in insert/delete walks, and
/// heap-allocated levels made each step two cache misses).
const INLINE_LEVELS: usize = 4;

#[derive(Debug, Clone)]
enum Levels {
    Inline(u8, [Level; INLINE_LEVELS]),
    Heap(Vec<Level>),
}

impl Levels {
    fn new(n: usize) -> Levels {
        let empty = Level {
            forward: NIL,
            span: 0,
        };
        if n <= INLINE_LEVELS {
            Levels::Inline(n as u8, [empty; INLINE_LEVELS])
        } else {
            Levels::Heap(vec![empty; n])
        }
    }

    /// Bytes allocated outside the node.
    fn heap_bytes(&self) -> usize {
        match self {
            Levels::Inline(..) => 0,
            Levels::Heap(v) => v.capacity() * std::mem::size_of::<Level>(),
        }
    }
}

impl std::ops::Deref for Levels {
    type Target = [Level];
    fn deref(&self) -> &[Level] {
        match self {
            Levels::Inline(n, a) => &a[..*n as usize],
            Levels::Heap(v) => v,
        }
    }
}

impl std::ops::DerefMut for Levels {
    fn deref_mut(&mut self) -> &mut [Level] {
        match self {
            Levels::Inline(n, a) => &mut a[..*n as usize],
            Levels::Heap(v) => v,
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    score: f64,
    member: Box<[u8]>,
    backward: u32,
    levels: Levels,
}

/// A skiplist with spans over an arena; node 0 is the header.
#[derive(Debug, Clone)]
struct Skiplist {
    nodes: Vec<Node>,
    free: Vec<u32>,
    tail: u32,
    len: usize,
    level: usize,
    scores: HashMap<Box<[u8]>, f64, ahash::RandomState>,
}

impl Skiplist {
    fn new() -> Skiplist {
        let header = Node {
            score: 0.0,
            member: Box::default(),
            backward: NIL,
            levels: Levels::new(MAX_LEVEL),
        };
        Skiplist {
            nodes: vec![header],
            free: Vec::new(),
            tail: NIL,
            len: 0,
            level: 1,
            scores: HashMap::default(),
        }
    }

    fn random_level() -> usize {
        // p = 1/4 per level, as Redis's ZSKIPLIST_P.
        let mut bits = crate::store::random_u64();
        let mut level = 1;
        while level < MAX_LEVEL && bits & 3 == 0 {
            level += 1;
            bits >>= 2;
        }
        level
    }

    fn node(&self, i: u32) -> &Node {
        &self.nodes[i as usize]
    }

    /// Inserts a member known to be absent.
    fn insert(&mut self, score: f64, member: &[u8]) {
        let mut update = [0u32; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut x = 0u32;
        for i in (0..self.level).rev() {
            rank[i] = if i == self.level - 1 { 0 } else { rank[i + 1] };
            loop {
                let f = self.node(x).levels[i].forward;
                if f != NIL
                    && cmp_entry(self.node(f).score, &self.node(f).member, score, member) == CmpOrdering::Less
                {
                    rank[i] += self.node(x).levels[i].span;
                    x = f;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let level = Self::random_level();
        if level > self.level {
            for i in self.level..level {
                rank[i] = 0;
                update[i] = 0;
                self.nodes[0].levels[i].span = self.len as u32;
            }
            self.level = level;
        }
        let node = Node {
            score,
            member: member.into(),
            backward: NIL,
            levels: Levels::new(level),
        };
        let new = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        for i in 0..level {
            let u = update[i] as usize;
            let forward = self.nodes[u].levels[i].forward;
            let span = self.nodes[u].levels[i].span;
            self.nodes[new as usize].levels[i] = Level {
                forward,
                span: span - (rank[0] - rank[i]),
            };
            self.nodes[u].levels[i] = Level {
                forward: new,
                span: (rank[0] - rank[i]) + 1,
            };
        }
        for (i, &u) in update.iter().enumerate().take(self.level).skip(level) {
            self.nodes[u as usize].levels[i].span += 1;
        }
        self.nodes[new as usize].backward = if update[0] == 0 { NIL } else { update[0] };
        let next = self.nodes[new as usize].levels[0].forward;
        if next != NIL {
            self.nodes[next as usize].backward = new;
        } else {
            self.tail = new;
        }
        self.len += 1;
        self.scores.insert(member.into(), score);
    }

    /// Removes a member with this score; false if absent.
    fn delete(&mut self, score: f64, member: &[u8]) -> bool {
        let mut update = [0u32; MAX_LEVEL];
        let mut x = 0u32;
        for i in (0..self.level).rev() {
            loop {
                let f = self.node(x).levels[i].forward;
                if f != NIL
                    && cmp_entry(self.node(f).score, &self.node(f).member, score, member) == CmpOrdering::Less
                {
                    x = f;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let target = self.node(x).levels[0].forward;
        if target == NIL
            || cmp_entry(self.node(target).score, &self.node(target).member, score, member)
                != CmpOrdering::Equal
        {
            return false;
        }
        for (i, &u) in update.iter().enumerate().take(self.level) {
            let u = u as usize;
            if self.nodes[u].levels[i].forward == target {
                let t = &self.nodes[target as usize].levels[i];
                let (forward, span) = (t.forward, t.span);
                self.nodes[u].levels[i].span += span;
                self.nodes[u].levels[i].span -= 1;
                self.nodes[u].levels[i].forward = forward;
            } else {
                self.nodes[u].levels[i].span -= 1;
            }
        }
        let next = self.node(target).levels[0].forward;
        let back = self.node(target).backward;
        if next != NIL {
            self.nodes[next as usize].backward = back;
        } else {
            self.tail = back;
        }
        while self.level > 1 && self.nodes[0].levels[self.level - 1].forward == NIL {
            self.level -= 1;
        }
        let node = &mut self.nodes[target as usize];
        node.member = Box::default();
        node.levels = Levels::new(0);
        self.free.push(target);
        self.len -= 1;
        self.scores.remove(member);
        true
    }

    /// How many leading elements satisfy `before` (a predicate true on a
    /// prefix of the order).
    fn count_before(&self, before: &dyn Fn(f64, &[u8]) -> bool) -> usize {
        let mut x = 0u32;
        let mut rank = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let f = self.node(x).levels[i].forward;
                if f != NIL && before(self.node(f).score, &self.node(f).member) {
                    rank += self.node(x).levels[i].span as usize;
                    x = f;
                } else {
                    break;
                }
            }
        }
        rank
    }

    /// The node at 0-based `rank` (< len).
    fn at_rank(&self, rank: usize) -> u32 {
        let target = rank + 1;
        let mut x = 0u32;
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.node(x).levels[i];
                if l.forward != NIL && traversed + l.span as usize <= target {
                    traversed += l.span as usize;
                    x = l.forward;
                } else {
                    break;
                }
            }
            if traversed == target {
                return x;
            }
        }
        NIL
    }
}

#[derive(Debug, Clone)]
enum Repr {
    Listpack(ZPack),
    Skiplist(Box<Skiplist>),
}

/// A sorted set is one pointer and a length (see `Collection`).
const _: () = assert!(std::mem::size_of::<ZSet>() <= 16);

/// A sorted-set value.
#[derive(Debug, Clone)]
pub struct ZSet {
    repr: Repr,
}

impl Default for ZSet {
    fn default() -> ZSet {
        ZSet::new()
    }
}

impl ZSet {
    /// An empty value (listpack-encoded).
    pub fn new() -> ZSet {
        ZSet {
            repr: Repr::Listpack(ZPack::default()),
        }
    }

    /// A value holding `entries` (distinct members, any order), encoded as
    /// Redis encodes a freshly stored result: listpack when within limits.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a [u8], f64)>) -> ZSet {
        let mut z = ZSet::new();
        for (member, score) in entries {
            z.insert(member, score);
        }
        z
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Listpack(p) => p.len(),
            Repr::Skiplist(s) => s.len,
        }
    }

    /// True with no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `OBJECT ENCODING`.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Listpack(_) => "listpack",
            Repr::Skiplist(_) => "skiplist",
        }
    }

    /// Bytes allocated, as malloc rounds them.
    pub fn memory_usage(&self) -> usize {
        use crate::memory::chunk_size;
        let boxed = |n: usize| if n == 0 { 0 } else { chunk_size(n) };
        match &self.repr {
            Repr::Listpack(p) => p.heap_bytes(),
            Repr::Skiplist(s) => {
                let arena = chunk_size(s.nodes.capacity() * std::mem::size_of::<Node>());
                let nodes: usize = s
                    .nodes
                    .iter()
                    .map(|n| boxed(n.levels.heap_bytes()) + boxed(n.member.len()))
                    .sum();
                // hashbrown: buckets of (key, value) plus one control byte each.
                let buckets = if s.scores.capacity() == 0 {
                    0
                } else {
                    (s.scores.capacity() * 8 / 7 + 1).next_power_of_two()
                };
                let table = boxed(buckets * (std::mem::size_of::<(Box<[u8]>, f64)>() + 1) + 16);
                let keys: usize = s.scores.keys().map(|k| boxed(k.len())).sum();
                chunk_size(std::mem::size_of::<Skiplist>())
                    + arena
                    + nodes
                    + boxed(s.free.capacity() * 4)
                    + table
                    + keys
            }
        }
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Listpack(p) => p.score(member),
            Repr::Skiplist(s) => s.scores.get(member).copied(),
        }
    }

    /// Sets `member` to `score` (NaN must be rejected by the caller);
    /// returns the previous score, `None` if it was added.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let score = normalize(score);
        if let Repr::Listpack(p) = &mut self.repr {
            if member.len() <= max_listpack_value() && p.len() < max_listpack_entries() {
                return p.insert(member, score);
            }
        }
        let old = self.score(member);
        if old == Some(score) {
            return old;
        }
        if old.is_some() {
            self.remove(member);
        }
        if let Repr::Listpack(p) = &mut self.repr {
            if p.len() + 1 > max_listpack_entries() || member.len() > max_listpack_value() {
                self.convert_to_skiplist();
            } else {
                // The member was there and removed above: room again.
                p.insert(member, score);
                return old;
            }
        }
        if let Repr::Skiplist(s) = &mut self.repr {
            s.insert(score, member);
        }
        old
    }

    fn convert_to_skiplist(&mut self) {
        if let Repr::Listpack(p) = &self.repr {
            let mut s = Box::new(Skiplist::new());
            for (member, score) in p.iter() {
                s.insert(score, member);
            }
            self.repr = Repr::Skiplist(s);
        }
    }

    /// Removes `member`; returns its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Listpack(p) => p.remove(member),
            Repr::Skiplist(s) => {
                let score = *s.scores.get(member)?;
                s.delete(score, member);
                Some(score)
            }
        }
    }

    /// 0-based ascending rank of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(self.count_before(&|s, m| cmp_entry(s, m, score, member) == CmpOrdering::Less))
    }

    /// How many leading members satisfy `before`, a predicate that holds on
    /// a prefix of the (score, member) order: the bridge from score and lex
    /// bounds to ranks.
    pub fn count_before(&self, before: &dyn Fn(f64, &[u8]) -> bool) -> usize {
        match &self.repr {
            Repr::Listpack(p) => p.count_before(before),
            Repr::Skiplist(s) => s.count_before(before),
        }
    }

    /// The members of ascending ranks `start..end` (clamped to the length),
    /// ascending, or descending when `rev`.
    pub fn range(&self, start: usize, end: usize, rev: bool) -> Vec<(&[u8], f64)> {
        let end = end.min(self.len());
        if start >= end {
            return Vec::new();
        }
        let mut out = Vec::new();
        match &self.repr {
            Repr::Listpack(p) => out = p.range(start, end, rev),
            Repr::Skiplist(s) => {
                out.reserve_exact(end - start);
                let mut x = s.at_rank(if rev { end - 1 } else { start });
                while x != NIL && out.len() < end - start {
                    let n = s.node(x);
                    out.push((&*n.member, n.score));
                    x = if rev { n.backward } else { n.levels[0].forward };
                }
            }
        }
        out
    }

    /// Every member, ascending.
    pub fn entries(&self) -> Vec<(&[u8], f64)> {
        self.range(0, self.len(), false)
    }

    /// Payloads (operation `OP_ADD`) of the whole value in chunks of about
    /// `SNAPSHOT_CHUNK` bytes; at least one, even when empty.
    pub fn snapshot_chunks(&self, emit: &mut dyn FnMut(&[u8])) {
        let mut batch: Vec<(&[u8], f64)> = Vec::new();
        let mut bytes = 0;
        let mut emitted = false;
        for (member, score) in self.entries() {
            batch.push((member, score));
            bytes += member.len() + 12;
            if bytes >= super::SNAPSHOT_CHUNK {
                emit(&add_payload(&batch));
                emitted = true;
                batch.clear();
                bytes = 0;
            }
        }
        if !batch.is_empty() || !emitted {
            emit(&add_payload(&batch));
        }
    }

    /// Applies an effect decoded from `payload`. The payload is validated
    /// in full before anything changes.
    pub fn apply(&mut self, op: u8, payload: &[u8]) -> Result<(), &'static str> {
        match op {
            OP_ADD => {
                for (member, score) in decode_add(payload)? {
                    self.insert(member, score);
                }
                Ok(())
            }
            OP_REM => {
                for member in decode_rem(payload)? {
                    self.remove(member);
                }
                Ok(())
            }
            _ => Err("unknown zset operation"),
        }
    }
}

/// Encodes an [`OP_ADD`] payload.
pub fn add_payload(entries: &[(&[u8], f64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + entries.iter().map(|e| e.0.len() + 12).sum::<usize>());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (member, score) in entries {
        put_f64(&mut out, *score);
        put_bytes(&mut out, member);
    }
    out
}

/// Encodes an [`OP_REM`] payload.
pub fn rem_payload<'a>(members: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = vec![0u8; 4];
    let mut n = 0u32;
    for member in members {
        put_bytes(&mut out, member);
        n += 1;
    }
    out[..4].copy_from_slice(&n.to_le_bytes());
    out
}

fn decode_add(payload: &[u8]) -> Result<Vec<(&[u8], f64)>, &'static str> {
    let mut r = Reader { buf: payload };
    let n = r.u32()? as usize;
    // Each entry takes at least 12 bytes: a count larger than that is a lie.
    let mut out = Vec::with_capacity(n.min(payload.len() / 12));
    for _ in 0..n {
        let score = r.f64()?;
        if score.is_nan() {
            return Err("zset payload has a NaN score");
        }
        out.push((r.bytes()?, score));
    }
    if !r.is_empty() {
        return Err("zset payload has trailing bytes");
    }
    Ok(out)
}

fn decode_rem(payload: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    let mut r = Reader { buf: payload };
    let n = r.u32()? as usize;
    let mut out = Vec::with_capacity(n.min(payload.len() / 4));
    for _ in 0..n {
        out.push(r.bytes()?);
    }
    if !r.is_empty() {
        return Err("zset payload has trailing bytes");
    }
    Ok(out)
}

/// Parses a score as Redis's `getDoubleFromObject` (strtod): decimal or
/// exponent forms, `inf`/`+inf`/`-inf`; NaN, spaces and empty are refused.
pub fn parse_score(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let v: f64 = text.parse().ok()?;
    if v.is_nan() {
        None
    } else {
        Some(normalize(v))
    }
}

/// One end of a score range: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

impl ScoreBound {
    /// Parses a bound (`ERR min or max is not a float` on None).
    pub fn parse(arg: &[u8]) -> Option<ScoreBound> {
        match arg.split_first() {
            Some((b'(', rest)) => parse_score(rest).map(|value| ScoreBound {
                value,
                exclusive: true,
            }),
            _ => parse_score(arg).map(|value| ScoreBound {
                value,
                exclusive: false,
            }),
        }
    }
}

/// One end of a lex range: `-`, `+`, `[a` (inclusive), `(a` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LexBound<'a> {
    Min,
    Max,
    Inclusive(&'a [u8]),
    Exclusive(&'a [u8]),
}

impl<'a> LexBound<'a> {
    /// Parses a bound (`ERR min or max not valid string range item` on None).
    pub fn parse(arg: &'a [u8]) -> Option<LexBound<'a>> {
        match arg.split_first() {
            Some((b'-', [])) => Some(LexBound::Min),
            Some((b'+', [])) => Some(LexBound::Max),
            Some((b'[', rest)) => Some(LexBound::Inclusive(rest)),
            Some((b'(', rest)) => Some(LexBound::Exclusive(rest)),
            _ => None,
        }
    }
}

impl ZSet {
    /// Ascending ranks `start..end` of the members with scores in `[min, max]`.
    pub fn score_ranks(&self, min: ScoreBound, max: ScoreBound) -> (usize, usize) {
        let start = self.count_before(&|s, _| s < min.value || (min.exclusive && s == min.value));
        let end = self.count_before(&|s, _| s < max.value || (!max.exclusive && s == max.value));
        (start, end.max(start))
    }

    /// Ascending ranks `start..end` of the members in the lex range (the
    /// members are assumed to share one score, as Redis assumes).
    pub fn lex_ranks(&self, min: LexBound<'_>, max: LexBound<'_>) -> (usize, usize) {
        let start = self.count_before(&|_, m| match min {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Inclusive(b) => m < b,
            LexBound::Exclusive(b) => m <= b,
        });
        let end = self.count_before(&|_, m| match max {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Inclusive(b) => m <= b,
            LexBound::Exclusive(b) => m < b,
        });
        (start, end.max(start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn model_order(model: &std::collections::BTreeMap<Vec<u8>, f64>) -> Vec<(Vec<u8>, f64)> {
        let mut v: Vec<(Vec<u8>, f64)> = model.iter().map(|(m, s)| (m.clone(), *s)).collect();
        v.sort_by(|a, b| cmp_entry(a.1, &a.0, b.1, &b.0));
        v
    }

    fn check_against_model(z: &ZSet, model: &std::collections::BTreeMap<Vec<u8>, f64>) {
        let want = model_order(model);
        let got: Vec<(Vec<u8>, f64)> = z.entries().into_iter().map(|(m, s)| (m.to_vec(), s)).collect();
        assert_eq!(got, want);
        assert_eq!(z.len(), want.len());
        for (rank, (m, s)) in want.iter().enumerate() {
            assert_eq!(z.rank(m), Some(rank));
            assert_eq!(z.score(m), Some(*s));
            assert_eq!(z.range(rank, rank + 1, false), vec![(&m[..], *s)]);
        }
        let rev: Vec<Vec<u8>> = z
            .range(0, z.len(), true)
            .into_iter()
            .map(|(m, _)| m.to_vec())
            .collect();
        let mut want_rev: Vec<Vec<u8>> = want.iter().map(|(m, _)| m.clone()).collect();
        want_rev.reverse();
        assert_eq!(rev, want_rev);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, i8),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (any::<u8>(), any::<i8>()).prop_map(|(m, s)| Op::Insert(m, s)),
            1 => any::<u8>().prop_map(Op::Remove),
        ]
    }

    proptest! {
        #[test]
        fn ranks_and_order_match_a_sorted_model_in_both_encodings(ops in proptest::collection::vec(op(), 1..400)) {
            let mut z = ZSet::new();
            let mut model = std::collections::BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(m, s) => {
                        let member = vec![b'm', m];
                        let score = f64::from(s) / 4.0;
                        prop_assert_eq!(z.insert(&member, score), model.insert(member, score));
                    }
                    Op::Remove(m) => {
                        let member = vec![b'm', m];
                        prop_assert_eq!(z.remove(&member), model.remove(&member));
                    }
                }
            }
            check_against_model(&z, &model);
            let below = z.count_before(&|s, _| s < 0.0);
            prop_assert_eq!(below, model.values().filter(|s| **s < 0.0).count());
        }

        #[test]
        fn score_ranges_select_what_a_filter_over_the_model_selects(
            scores in proptest::collection::vec(-8i8..8, 0..300),
            lo in -9i8..9,
            hi in -9i8..9,
            lo_excl in any::<bool>(),
            hi_excl in any::<bool>(),
        ) {
            let mut z = ZSet::new();
            let mut model = std::collections::BTreeMap::new();
            for (i, s) in scores.iter().enumerate() {
                let member = format!("m{i:03}").into_bytes();
                z.insert(&member, f64::from(*s));
                model.insert(member, f64::from(*s));
            }
            let (lo, hi) = (f64::from(lo), f64::from(hi));
            let inside = |s: f64| {
                (if lo_excl { s > lo } else { s >= lo }) && (if hi_excl { s < hi } else { s <= hi })
            };
            let want: Vec<Vec<u8>> = model_order(&model)
                .into_iter()
                .filter(|(_, s)| inside(*s))
                .map(|(m, _)| m)
                .collect();
            let (start, end) = z.score_ranks(
                ScoreBound { value: lo, exclusive: lo_excl },
                ScoreBound { value: hi, exclusive: hi_excl },
            );
            let got: Vec<Vec<u8>> = z.range(start, end, false).into_iter().map(|(m, _)| m.to_vec()).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn arbitrary_payloads_never_panic(op in 0u8..4, bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut z = ZSet::new();
            let _ = z.apply(op, &bytes);
        }
    }

    /// Scores that exercise every packed score encoding, ties and ±inf.
    fn any_score() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-3i8..3).prop_map(f64::from),
            any::<i16>().prop_map(f64::from),
            any::<i32>().prop_map(|n| f64::from(n) * 2.0),
            any::<f32>()
                .prop_filter("not NaN", |f| !f.is_nan())
                .prop_map(f64::from),
            any::<f64>().prop_filter("not NaN", |f| !f.is_nan()),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
        ]
    }

    proptest! {
        #[test]
        fn the_packed_encoding_matches_a_model_for_any_score(
            ops in proptest::collection::vec((any::<bool>(), 0u8..40, any_score()), 1..300),
        ) {
            let mut z = ZSet::new();
            let mut model = std::collections::BTreeMap::new();
            for (add, m, score) in ops {
                // Members of 1 to 40 bytes: short and long packed heads.
                let member = vec![b'a' + m % 26; usize::from(m) + 1];
                if add {
                    let score = normalize(score);
                    prop_assert_eq!(z.insert(&member, score), model.insert(member, score));
                } else {
                    prop_assert_eq!(z.remove(&member), model.remove(&member));
                }
            }
            prop_assert_eq!(z.encoding(), "listpack");
            check_against_model(&z, &model);
        }
    }

    #[test]
    fn the_listpack_holds_exactly_128_members_of_up_to_64_bytes() {
        let mut z = ZSet::new();
        for i in 0..128 {
            z.insert(format!("{i:064}").as_bytes(), f64::from(i % 3));
        }
        assert_eq!(z.encoding(), "listpack");
        assert_eq!(z.insert(format!("{:064}", 5).as_bytes(), 9.0), Some(2.0));
        assert_eq!(z.encoding(), "listpack", "an update is not a 129th member");
        z.insert(b"one-more", 0.0);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.len(), 129);
        assert_eq!(
            z.range(0, 1, false),
            vec![(
                &b"0000000000000000000000000000000000000000000000000000000000000000"[..],
                0.0
            )]
        );
    }

    #[test]
    fn equal_scores_order_by_member_bytes_and_infinities_sort_at_the_ends() {
        let z = ZSet::from_entries([
            (&b"b"[..], 1.0),
            (&b"a"[..], 1.0),
            (&b"top"[..], f64::INFINITY),
            (&b"bottom"[..], f64::NEG_INFINITY),
            (&b"\xff"[..], 1.0),
        ]);
        let order: Vec<&[u8]> = z.entries().into_iter().map(|(m, _)| m).collect();
        assert_eq!(order, vec![&b"bottom"[..], b"a", b"b", b"\xff", b"top"]);
        assert_eq!(z.score(b"top"), Some(f64::INFINITY));
        assert_eq!(z.rank(b"b"), Some(2));
    }

    #[test]
    fn a_small_sorted_set_is_one_buffer() {
        let mut z = ZSet::new();
        assert_eq!(z.memory_usage(), 0);
        for m in 0..20 {
            z.insert(format!("member:{m}").as_bytes(), f64::from(m) * 1.5);
        }
        // 4-byte count; per member a head byte, 8 or 9 bytes of member and
        // a score of 1 byte (integers) or 4 (halves, as f32).
        let bytes = 4 + 20 + (10 * 8 + 10 * 9) + (10 + 10 * 4);
        assert_eq!(z.memory_usage(), crate::memory::chunk_size(bytes));
    }

    #[test]
    fn a_big_set_converts_to_skiplist_and_keeps_its_order() {
        let mut z = ZSet::new();
        let mut model = std::collections::BTreeMap::new();
        for i in 0..1000u32 {
            let member = format!("m{}", (i * 7919) % 1000).into_bytes();
            let score = f64::from(i % 13);
            z.insert(&member, score);
            model.insert(member, score);
        }
        assert_eq!(z.encoding(), "skiplist");
        check_against_model(&z, &model);
        for i in (0..1000u32).step_by(3) {
            let member = format!("m{i}").into_bytes();
            assert_eq!(z.remove(&member), model.remove(&member));
        }
        check_against_model(&z, &model);
        assert!(z.memory_usage() > 1000);
    }

    #[test]
    fn a_long_member_converts_to_skiplist() {
        let mut z = ZSet::new();
        z.insert(b"a", 1.0);
        assert_eq!(z.encoding(), "listpack");
        z.insert(&[b'x'; 65], 2.0);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.rank(b"a"), Some(0));
    }

    #[test]
    fn snapshot_payloads_rebuild_the_same_set() {
        for n in [0usize, 5, 300] {
            let mut z = ZSet::new();
            for i in 0..n {
                z.insert(format!("k{i}").as_bytes(), i as f64 * 0.5 - 3.0);
            }
            let mut rebuilt = ZSet::new();
            let mut calls = 0;
            z.snapshot_chunks(&mut |p| {
                calls += 1;
                rebuilt.apply(OP_ADD, p).unwrap();
            });
            assert!(calls >= 1);
            assert_eq!(rebuilt.entries(), z.entries());
        }
    }

    #[test]
    fn remove_payloads_round_trip_and_bad_payloads_are_errors() {
        let mut z = ZSet::from_entries([(&b"a"[..], 1.0), (&b"b"[..], 2.0)]);
        z.apply(OP_REM, &rem_payload([&b"a"[..], &b"zz"[..]])).unwrap();
        assert_eq!(z.entries(), vec![(&b"b"[..], 2.0)]);
        let good = add_payload(&[(b"c", 3.0)]);
        assert!(z.apply(OP_ADD, &good[..good.len() - 1]).is_err());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(z.apply(OP_ADD, &trailing).is_err());
        assert!(z.apply(OP_ADD, &add_payload(&[(b"n", f64::NAN)])).is_err());
        assert!(z.apply(OP_ADD, &[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(z.apply(9, &good).is_err());
        assert_eq!(z.len(), 1);
    }

    #[test]
    fn scores_parse_like_strtod_and_refuse_nan() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"1e3"), Some(1000.0));
        assert!(parse_score(b"-0").unwrap().is_sign_positive());
        assert_eq!(parse_score(b"nan"), None);
        assert_eq!(parse_score(b""), None);
        assert_eq!(parse_score(b" 1"), None);
        assert_eq!(parse_score(b"abc"), None);
        assert_eq!(
            ScoreBound::parse(b"(2"),
            Some(ScoreBound {
                value: 2.0,
                exclusive: true
            })
        );
        assert_eq!(LexBound::parse(b"a"), None);
        assert_eq!(LexBound::parse(b"[a"), Some(LexBound::Inclusive(b"a")));
    }

    #[test]
    fn score_and_lex_bounds_map_to_rank_ranges() {
        let z = ZSet::from_entries([(&b"a"[..], 1.0), (&b"b"[..], 2.0), (&b"c"[..], 3.0)]);
        let b = |v: f64, exclusive| ScoreBound { value: v, exclusive };
        assert_eq!(z.score_ranks(b(1.0, false), b(3.0, false)), (0, 3));
        assert_eq!(z.score_ranks(b(1.0, true), b(3.0, true)), (1, 2));
        assert_eq!(z.score_ranks(b(3.0, false), b(1.0, false)), (2, 2));
        let l = ZSet::from_entries([(&b"a"[..], 0.0), (&b"b"[..], 0.0), (&b"c"[..], 0.0)]);
        assert_eq!(l.lex_ranks(LexBound::Min, LexBound::Max), (0, 3));
        assert_eq!(
            l.lex_ranks(LexBound::Exclusive(b"a"), LexBound::Inclusive(b"b")),
            (1, 2)
        );
    }
}
