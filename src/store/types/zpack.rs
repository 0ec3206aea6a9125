//! The listpack encoding of small sorted sets: one buffer of (member,
//! score) entries ordered by (score, member), as Redis's `zset` listpack.
//!
//! # Layout
//! `[u32 count]` then `count` entries, each
//! `[head][varint(len - 31) if len ≥ 31][member bytes][score bytes]`, where
//! `head = score encoding | min(len, 31) << 3` and the score encoding is
//! the narrowest exact one: an integer in `i8`, `i16` or `i32` (1, 2 or 4
//! bytes), an `f32` that converts back to the same `f64` (4 bytes: `1.5`,
//! `±inf`), else the `f64` (8 bytes). So `member:7` at score 3 is 11 bytes
//! (Redis's listpack: 12). An empty set has no buffer at all.
//!
//! The buffer is reallocated at exactly its new size on every change (as
//! Redis's listpack is): a sorted set here holds at most
//! `zset-max-listpack-entries` (128) members of at most
//! `zset-max-listpack-value` (64) bytes, so a change copies a few KiB at
//! most, and a lookup is a linear scan of one buffer rather than a chase
//! through one allocation per member. Rank, score and lex ranges are the
//! same scan: see [`ZPack::count_before`].
//!
//! Scores are never NaN (`zset.rs` refuses them before they get here), so
//! the order is total. The buffer is only ever written by this module, so a
//! decode that fails can only mean a bug; it ends the scan instead of
//! panicking.

use std::cmp::Ordering;

use super::codec::{get_varint, put_varint};
use crate::memory::chunk_size;

/// Bytes of the count header.
const HEAD: usize = 4;
/// Member lengths from this on take a varint after the head byte.
const LONG: usize = 31;

const ENC_I8: u8 = 0;
const ENC_I16: u8 = 1;
const ENC_I32: u8 = 2;
const ENC_F32: u8 = 3;
const ENC_F64: u8 = 4;

/// Order of (score, member) pairs: score, then member bytes.
pub fn cmp_entry(a_score: f64, a: &[u8], b_score: f64, b: &[u8]) -> Ordering {
    a_score
        .partial_cmp(&b_score)
        .unwrap_or(Ordering::Equal)
        .then_with(|| a.cmp(b))
}

/// The narrowest exact encoding of `score` and its bytes.
fn encode_score(score: f64) -> (u8, [u8; 8], usize) {
    let mut out = [0u8; 8];
    if score.fract() == 0.0 && score.abs() <= f64::from(i32::MAX) {
        let n = score as i32;
        if let Ok(b) = i8::try_from(n) {
            out[0] = b as u8;
            return (ENC_I8, out, 1);
        }
        if let Ok(h) = i16::try_from(n) {
            out[..2].copy_from_slice(&h.to_le_bytes());
            return (ENC_I16, out, 2);
        }
        out[..4].copy_from_slice(&n.to_le_bytes());
        return (ENC_I32, out, 4);
    }
    let single = score as f32;
    if f64::from(single) == score {
        out[..4].copy_from_slice(&single.to_le_bytes());
        return (ENC_F32, out, 4);
    }
    out.copy_from_slice(&score.to_le_bytes());
    (ENC_F64, out, 8)
}

/// Bytes of a score in encoding `enc`.
fn score_len(enc: u8) -> Option<usize> {
    match enc {
        ENC_I8 => Some(1),
        ENC_I16 => Some(2),
        ENC_I32 | ENC_F32 => Some(4),
        ENC_F64 => Some(8),
        _ => None,
    }
}

fn decode_score(enc: u8, b: &[u8]) -> Option<f64> {
    Some(match (enc, b) {
        (ENC_I8, &[x]) => f64::from(x as i8),
        (ENC_I16, &[x, y]) => f64::from(i16::from_le_bytes([x, y])),
        (ENC_I32, &[a, b, c, d]) => f64::from(i32::from_le_bytes([a, b, c, d])),
        (ENC_F32, &[a, b, c, d]) => f64::from(f32::from_le_bytes([a, b, c, d])),
        (ENC_F64, &[a, b, c, d, e, f, g, h]) => f64::from_le_bytes([a, b, c, d, e, f, g, h]),
        _ => return None,
    })
}

/// Appends one encoded entry.
fn put_entry(out: &mut Vec<u8>, member: &[u8], score: f64) {
    let (enc, bytes, n) = encode_score(score);
    out.push(enc | (member.len().min(LONG) as u8) << 3);
    if member.len() >= LONG {
        put_varint(out, member.len() - LONG);
    }
    out.extend_from_slice(member);
    out.extend_from_slice(&bytes[..n]);
}

/// One decoded entry: its member, score and byte range in the buffer.
#[derive(Debug, Clone)]
struct Decoded<'a> {
    member: &'a [u8],
    score: f64,
    start: usize,
    end: usize,
}

/// A small sorted set in one buffer (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct ZPack {
    buf: Box<[u8]>,
}

impl ZPack {
    /// Number of members.
    pub fn len(&self) -> usize {
        match self.buf.get(..HEAD) {
            Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) as usize,
            _ => 0,
        }
    }

    /// True with no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated, as malloc rounds them.
    pub fn heap_bytes(&self) -> usize {
        if self.buf.is_empty() {
            0
        } else {
            chunk_size(self.buf.len())
        }
    }

    /// The entry starting at byte `at`, if one does.
    fn decode(&self, at: usize) -> Option<Decoded<'_>> {
        let head = *self.buf.get(at)?;
        let mut p = at + 1;
        let mut len = (head >> 3) as usize;
        if len == LONG {
            let (extra, n) = get_varint(self.buf.get(p..)?)?;
            len = LONG.checked_add(extra)?;
            p += n;
        }
        let member = self.buf.get(p..p.checked_add(len)?)?;
        p += len;
        let enc = head & 7;
        let n = score_len(enc)?;
        let score = decode_score(enc, self.buf.get(p..p + n)?)?;
        Some(Decoded {
            member,
            score,
            start: at,
            end: p + n,
        })
    }

    /// Every entry with its byte range, ascending.
    fn scan(&self) -> impl Iterator<Item = Decoded<'_>> + '_ {
        let mut at = HEAD;
        std::iter::from_fn(move || {
            let d = self.decode(at)?;
            at = d.end;
            Some(d)
        })
    }

    /// The members and scores, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        self.scan().map(|d| (d.member, d.score))
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scan().find(|d| d.member == member).map(|d| d.score)
    }

    /// Sets `member` to `score`; returns the previous score (`None` if it
    /// was added). One scan finds the old entry and the new position, and
    /// the buffer is rebuilt once.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let mut old: Option<Decoded<'_>> = None;
        let mut at = None;
        for d in self.scan() {
            if d.member == member {
                if d.score == score {
                    return Some(score);
                }
                old = Some(d.clone());
                if at.is_some() {
                    break;
                }
                continue;
            }
            if at.is_none() && cmp_entry(d.score, d.member, score, member) == Ordering::Greater {
                at = Some(d.start);
                if old.is_some() {
                    break;
                }
            }
        }
        let at = at.unwrap_or(self.buf.len().max(HEAD));
        let old_score = old.as_ref().map(|d| d.score);
        let removed = old.map(|d| d.start..d.end);
        let mut entry = Vec::with_capacity(member.len() + 12);
        put_entry(&mut entry, member, score);
        let count = self.len() + usize::from(removed.is_none());
        self.rebuild(count, removed, Some((at, &entry)));
        old_score
    }

    /// Removes `member`; returns its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let d = self.scan().find(|d| d.member == member)?;
        let (score, range) = (d.score, d.start..d.end);
        self.rebuild(self.len() - 1, Some(range), None);
        Some(score)
    }

    /// Writes a new buffer of exactly its size: this one without the bytes
    /// in `removed`, with `insert.1` put at old offset `insert.0`, and the
    /// count set to `count` (no buffer at all when 0).
    fn rebuild(
        &mut self,
        count: usize,
        removed: Option<std::ops::Range<usize>>,
        insert: Option<(usize, &[u8])>,
    ) {
        if count == 0 {
            self.buf = Box::default();
            return;
        }
        let old: &[u8] = if self.buf.is_empty() {
            &[0; HEAD]
        } else {
            &self.buf
        };
        let removed = removed.unwrap_or(0..0);
        let (at, entry) = insert.unwrap_or((old.len(), &[]));
        let mut v = Vec::with_capacity(old.len() - removed.len() + entry.len());
        let copy = |from: usize, to: usize, v: &mut Vec<u8>| {
            // Copies old[from..to] minus the removed range.
            if removed.start >= to || removed.end <= from {
                v.extend_from_slice(&old[from..to]);
            } else {
                v.extend_from_slice(&old[from..removed.start.max(from)]);
                v.extend_from_slice(&old[removed.end.min(to)..to]);
            }
        };
        copy(0, at, &mut v);
        v.extend_from_slice(entry);
        copy(at, old.len(), &mut v);
        v[..HEAD].copy_from_slice(&(count as u32).to_le_bytes());
        self.buf = v.into_boxed_slice();
    }

    /// How many leading members satisfy `before` (a predicate true on a
    /// prefix of the order).
    pub fn count_before(&self, before: &dyn Fn(f64, &[u8]) -> bool) -> usize {
        self.scan().take_while(|d| before(d.score, d.member)).count()
    }

    /// The members of ranks `start..end` (already clamped), ascending, or
    /// descending when `rev`.
    pub fn range(&self, start: usize, end: usize, rev: bool) -> Vec<(&[u8], f64)> {
        let mut out: Vec<(&[u8], f64)> = self.iter().skip(start).take(end.saturating_sub(start)).collect();
        if rev {
            out.reverse();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_take_the_narrowest_exact_encoding() {
        for (score, len) in [
            (0.0, 1),
            (-128.0, 1),
            (127.0, 1),
            (128.0, 2),
            (-32768.0, 2),
            (40000.0, 4),
            (f64::from(i32::MIN), 4),
            (f64::from(i32::MAX) + 1.0, 4),
            (1.5, 4),
            (f64::INFINITY, 4),
            (f64::NEG_INFINITY, 4),
            (0.1, 8),
            (1e300, 8),
            (f64::MIN_POSITIVE, 8),
        ] {
            let (enc, bytes, n) = encode_score(score);
            assert_eq!(n, len, "{score}");
            assert_eq!(decode_score(enc, &bytes[..n]), Some(score), "{score}");
        }
    }

    #[test]
    fn equal_scores_order_by_member_and_long_members_round_trip() {
        let mut z = ZPack::default();
        let long = vec![b'z'; 40];
        for m in [&b"b"[..], b"a", &long, b"c"] {
            assert_eq!(z.insert(m, 1.0), None);
        }
        z.insert(b"first", f64::NEG_INFINITY);
        z.insert(b"last", f64::INFINITY);
        let got: Vec<&[u8]> = z.iter().map(|(m, _)| m).collect();
        assert_eq!(got, vec![&b"first"[..], b"a", b"b", b"c", &long, b"last"]);
        assert_eq!(z.insert(b"a", 2.0), Some(1.0));
        assert_eq!(z.range(4, 5, false), vec![(&b"a"[..], 2.0)]);
        assert_eq!(z.remove(&long), Some(1.0));
        assert_eq!(z.len(), 5);
        assert_eq!(z.heap_bytes(), chunk_size(z.buf.len()));
        for m in [&b"first"[..], b"a", b"b", b"c", b"last"] {
            assert!(z.remove(m).is_some());
        }
        assert!(z.buf.is_empty() && z.is_empty());
    }
}
