//! The intset: a sorted set of distinct integers packed at one width.
//!
//! As Redis's `intset.c`, every integer is stored little endian in 2, 4 or 8
//! bytes — the narrowest width that holds all of them — in ascending order,
//! so membership is a binary search and the set is one buffer. Adding an
//! integer that needs a wider width rewrites the whole set at that width
//! (it can only go at one end: it is below or above every other); removals
//! never narrow it again (Redis neither).
//!
//! Up to [`INLINE`] bytes of integers (ten 16-bit ones) live inside the
//! value itself, so a small set of small integers costs no allocation at
//! all beyond its key's; bigger ones move to a heap buffer of exactly their
//! size, reallocated on every change as Redis's intset is (a set of at most
//! `set-max-intset-entries`, 512, integers).
//!
//! This module knows nothing of members as text or of thresholds: `set.rs`
//! decides when a set is an intset.

use crate::memory::chunk_size;

/// Bytes of integers kept inline: with the tag, width and length bytes the
/// value is 24 bytes, the size `Collection` is held to.
pub const INLINE: usize = 21;

/// A sorted set of distinct `i64`s at one width (see the module doc).
#[derive(Debug, Clone)]
pub struct IntSet {
    store: Store,
}

#[derive(Debug, Clone)]
enum Store {
    /// `len` integers of `width` bytes in `bytes[..len * width]`.
    Inline { width: u8, len: u8, bytes: [u8; INLINE] },
    /// `bytes.len() / width` integers of `width` bytes.
    Heap { width: u8, bytes: Box<[u8]> },
}

impl Default for IntSet {
    fn default() -> Self {
        IntSet::new()
    }
}

/// The narrowest width (2, 4 or 8 bytes) that holds `n`.
pub fn width_for(n: i64) -> usize {
    if i16::try_from(n).is_ok() {
        2
    } else if i32::try_from(n).is_ok() {
        4
    } else {
        8
    }
}

/// Reads one integer of `chunk.len()` (2, 4 or 8) bytes.
fn read(chunk: &[u8]) -> i64 {
    match *chunk {
        [a, b] => i64::from(i16::from_le_bytes([a, b])),
        [a, b, c, d] => i64::from(i32::from_le_bytes([a, b, c, d])),
        [a, b, c, d, e, f, g, h] => i64::from_le_bytes([a, b, c, d, e, f, g, h]),
        _ => 0,
    }
}

/// `n` at `width` bytes (the first `width` bytes of the result; `n` fits).
fn encode(n: i64) -> [u8; 8] {
    n.to_le_bytes()
}

impl IntSet {
    /// An empty set (16-bit, inline).
    pub fn new() -> IntSet {
        IntSet {
            store: Store::Inline {
                width: 2,
                len: 0,
                bytes: [0; INLINE],
            },
        }
    }

    /// A set of `width`-byte integers already encoded in `bytes` (sorted).
    fn from_bytes(width: usize, bytes: Vec<u8>) -> IntSet {
        let store = if bytes.len() <= INLINE {
            let mut inline = [0; INLINE];
            inline[..bytes.len()].copy_from_slice(&bytes);
            Store::Inline {
                width: width as u8,
                len: (bytes.len() / width) as u8,
                bytes: inline,
            }
        } else {
            Store::Heap {
                width: width as u8,
                bytes: bytes.into_boxed_slice(),
            }
        };
        IntSet { store }
    }

    /// (width, the encoded integers).
    fn parts(&self) -> (usize, &[u8]) {
        match &self.store {
            Store::Inline { width, len, bytes } => {
                let w = *width as usize;
                (w, &bytes[..(*len as usize * w).min(INLINE)])
            }
            Store::Heap { width, bytes } => (*width as usize, bytes),
        }
    }

    /// Bytes per integer: 2, 4 or 8.
    pub fn width(&self) -> usize {
        self.parts().0
    }

    /// Number of integers.
    pub fn len(&self) -> usize {
        let (w, b) = self.parts();
        b.len() / w
    }

    /// True with no integer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the integers live inside the value (no allocation).
    pub fn is_inline(&self) -> bool {
        matches!(self.store, Store::Inline { .. })
    }

    /// Bytes allocated outside the value, as malloc rounds them.
    pub fn heap_bytes(&self) -> usize {
        match &self.store {
            Store::Inline { .. } => 0,
            Store::Heap { bytes, .. } if bytes.is_empty() => 0,
            Store::Heap { bytes, .. } => chunk_size(bytes.len()),
        }
    }

    /// The `i`-th smallest integer.
    pub fn get(&self, i: usize) -> Option<i64> {
        let (w, b) = self.parts();
        b.get(i.checked_mul(w)?..i.checked_mul(w)?.checked_add(w)?)
            .map(read)
    }

    /// The smallest and the largest integer.
    pub fn bounds(&self) -> Option<(i64, i64)> {
        Some((self.get(0)?, self.get(self.len().checked_sub(1)?)?))
    }

    /// Binary search: `Ok(index)` if present, `Err(insertion index)` if not.
    fn search(&self, n: i64) -> Result<usize, usize> {
        let (w, b) = self.parts();
        let (mut lo, mut hi) = (0, b.len() / w);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match read(&b[mid * w..mid * w + w]).cmp(&n) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// True if `n` is in the set.
    pub fn contains(&self, n: i64) -> bool {
        width_for(n) <= self.width() && self.search(n).is_ok()
    }

    /// Adds `n`; false if it was already there.
    pub fn insert(&mut self, n: i64) -> bool {
        let w = self.width();
        if width_for(n) > w {
            self.upgrade_and_add(n);
            return true;
        }
        let Err(at) = self.search(n) else {
            return false;
        };
        let enc = encode(n);
        let at = at * w;
        match &mut self.store {
            Store::Inline { len, bytes, .. } if (*len as usize + 1) * w <= INLINE => {
                let end = *len as usize * w;
                bytes.copy_within(at..end, at + w);
                bytes[at..at + w].copy_from_slice(&enc[..w]);
                *len += 1;
            }
            _ => {
                let mut v = Vec::with_capacity((self.len() + 1) * w);
                let (_, b) = self.parts();
                v.extend_from_slice(&b[..at]);
                v.extend_from_slice(&enc[..w]);
                v.extend_from_slice(&b[at..]);
                *self = IntSet::from_bytes(w, v);
            }
        }
        true
    }

    /// Rewrites the set at the width `n` needs, with `n` added at whichever
    /// end it belongs (it is outside the current width's range).
    fn upgrade_and_add(&mut self, n: i64) {
        let w = width_for(n);
        let mut v = Vec::with_capacity((self.len() + 1) * w);
        if n < 0 {
            v.extend_from_slice(&encode(n)[..w]);
        }
        for x in self.iter() {
            v.extend_from_slice(&encode(x)[..w]);
        }
        if n >= 0 {
            v.extend_from_slice(&encode(n)[..w]);
        }
        *self = IntSet::from_bytes(w, v);
    }

    /// Removes `n`; false if it was not there. The width stays.
    pub fn remove(&mut self, n: i64) -> bool {
        if width_for(n) > self.width() {
            return false;
        }
        let Ok(at) = self.search(n) else {
            return false;
        };
        self.remove_at(at);
        true
    }

    /// Removes the `i`-th smallest integer (no-op past the end).
    pub fn remove_at(&mut self, i: usize) {
        let w = self.width();
        if i >= self.len() {
            return;
        }
        let at = i * w;
        match &mut self.store {
            Store::Inline { len, bytes, .. } => {
                let end = *len as usize * w;
                bytes.copy_within(at + w..end, at);
                *len -= 1;
            }
            Store::Heap { bytes, .. } => {
                let mut v = Vec::with_capacity(bytes.len() - w);
                v.extend_from_slice(&bytes[..at]);
                v.extend_from_slice(&bytes[at + w..]);
                *self = IntSet::from_bytes(w, v);
            }
        }
    }

    /// The integers, ascending.
    pub fn iter(&self) -> Iter<'_> {
        let (width, bytes) = self.parts();
        Iter { bytes, width }
    }
}

/// The integers of an [`IntSet`], ascending.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    bytes: &'a [u8],
    width: usize,
}

impl Iterator for Iter<'_> {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        if self.bytes.len() < self.width {
            return None;
        }
        let (head, tail) = self.bytes.split_at(self.width);
        self.bytes = tail;
        Some(read(head))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.bytes.len() / self.width;
        (n, Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ten_small_integers_stay_inline_and_the_eleventh_moves_to_the_heap() {
        let mut s = IntSet::new();
        for n in (0..10).rev() {
            assert!(s.insert(n));
        }
        assert!(s.is_inline());
        assert_eq!(s.heap_bytes(), 0);
        assert_eq!(s.iter().collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        assert!(s.insert(10));
        assert!(!s.is_inline());
        assert_eq!(s.heap_bytes(), chunk_size(22));
        assert!(s.remove(3));
        assert!(s.is_inline(), "back inline once it fits");
        assert!(!s.contains(3) && s.contains(10));
    }

    #[test]
    fn widths_grow_16_32_64_with_the_new_integer_at_the_right_end() {
        let mut s = IntSet::new();
        s.insert(5);
        s.insert(-7);
        assert_eq!(s.width(), 2);
        s.insert(40_000);
        assert_eq!(s.width(), 4);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![-7, 5, 40_000]);
        s.insert(-3_000_000_000);
        assert_eq!(s.width(), 8);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![-3_000_000_000, -7, 5, 40_000]);
        s.insert(i64::MAX);
        s.insert(i64::MIN);
        assert_eq!(s.bounds(), Some((i64::MIN, i64::MAX)));
        assert!(s.remove(-3_000_000_000) && s.remove(i64::MIN) && s.remove(i64::MAX));
        assert_eq!(s.width(), 8, "removals never narrow");
        assert!(s.contains(40_000) && !s.contains(41_000));
    }

    #[test]
    fn boundaries_of_each_width() {
        for (n, w) in [
            (i64::from(i16::MAX), 2),
            (i64::from(i16::MIN), 2),
            (i64::from(i16::MAX) + 1, 4),
            (i64::from(i16::MIN) - 1, 4),
            (i64::from(i32::MAX), 4),
            (i64::from(i32::MIN), 4),
            (i64::from(i32::MAX) + 1, 8),
            (i64::from(i32::MIN) - 1, 8),
        ] {
            assert_eq!(width_for(n), w, "{n}");
            let mut s = IntSet::new();
            s.insert(1);
            s.insert(n);
            assert!(s.contains(n) && s.contains(1));
            assert_eq!(s.width(), w);
        }
        let s = IntSet::new();
        assert!(!s.contains(i64::MAX));
        assert_eq!(s.get(usize::MAX), None);
    }

    proptest! {
        #[test]
        fn behaves_as_a_btreeset(ops in proptest::collection::vec((any::<bool>(), prop_oneof![
            -20i64..20,
            any::<i16>().prop_map(i64::from),
            any::<i32>().prop_map(i64::from),
            any::<i64>(),
        ]), 0..200)) {
            let mut s = IntSet::new();
            let mut model = std::collections::BTreeSet::new();
            for (add, n) in ops {
                if add {
                    prop_assert_eq!(s.insert(n), model.insert(n));
                } else {
                    prop_assert_eq!(s.remove(n), model.remove(&n));
                }
                prop_assert_eq!(s.len(), model.len());
            }
            prop_assert_eq!(s.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
            for (i, n) in model.iter().enumerate() {
                prop_assert_eq!(s.get(i), Some(*n));
                prop_assert!(s.contains(*n));
            }
            let widest = model.iter().map(|&n| width_for(n)).max().unwrap_or(2);
            prop_assert!(s.width() >= widest);
        }
    }
}
