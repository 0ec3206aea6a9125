//! Bytes on their way to the log file: encoded records, in which a big value
//! may be a reference to the buffer it arrived in instead of a copy.
//!
//! The pending buffer, the bytes a writer holds back after a failure, and
//! the compaction's rewrite buffer are all `LogBuf`s. Logically one byte
//! stream; physically a `Vec<u8>` of encoded records with shared pieces
//! ([`SharedBytes`], each at least a megabyte) spliced in at recorded
//! offsets. A 512 MiB `SET` thus costs the WAL a few header bytes and a
//! reference count until the flusher writes the value straight from the
//! buffer the socket filled.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::shared_bytes::SharedBytes;

/// A byte stream of plain bytes with shared pieces inserted.
#[derive(Debug, Default)]
pub struct LogBuf {
    bytes: Vec<u8>,
    /// `(offset in bytes, piece)`: the piece comes before `bytes[offset]`.
    /// Offsets never decrease.
    pieces: Vec<(usize, SharedBytes)>,
    /// Sum of the pieces' lengths.
    pieces_len: usize,
}

impl LogBuf {
    /// Logical length: plain bytes plus pieces.
    pub fn len(&self) -> usize {
        self.bytes.len() + self.pieces_len
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.pieces.is_empty()
    }

    /// Capacity of the plain bytes (what a kept buffer pins).
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Appends `encoded` with `pieces` inserted at their offsets in it.
    pub fn push_parts(&mut self, encoded: &[u8], pieces: &[(usize, SharedBytes)]) {
        let base = self.bytes.len();
        self.bytes.extend_from_slice(encoded);
        for (at, piece) in pieces {
            debug_assert!(*at <= encoded.len());
            self.pieces_len += piece.len();
            self.pieces.push((base + at, piece.clone()));
        }
    }

    /// Moves all of `other` to the end of `self` (a swap when `self` is
    /// empty, so no bytes are copied and both allocations are reused).
    pub fn append(&mut self, other: &mut LogBuf) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            std::mem::swap(self, other);
            return;
        }
        let base = self.bytes.len();
        self.bytes.extend_from_slice(&other.bytes);
        self.pieces
            .extend(other.pieces.drain(..).map(|(at, piece)| (base + at, piece)));
        self.pieces_len += other.pieces_len;
        other.clear();
    }

    /// Forgets everything, keeping the plain bytes' allocation.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.pieces.clear();
        self.pieces_len = 0;
    }

    /// Forgets everything and frees the plain bytes' allocation.
    pub fn release(&mut self) {
        *self = LogBuf::default();
    }

    /// The longest contiguous run of bytes starting at logical `offset`
    /// (empty at or past the end).
    pub fn run_at(&self, offset: usize) -> &[u8] {
        // Logical layout: bytes[..a0], piece0, bytes[a0..a1], piece1, …
        let mut logical = 0;
        let mut plain = 0;
        for (at, piece) in &self.pieces {
            let before = at - plain;
            if offset < logical + before {
                return &self.bytes[plain + offset - logical..*at];
            }
            logical += before;
            plain = *at;
            if offset < logical + piece.len() {
                return &piece[offset - logical..];
            }
            logical += piece.len();
        }
        self.bytes.get(plain + offset - logical..).unwrap_or(&[])
    }

    /// Writes the stream from logical `from` on at file offset `at`.
    pub fn write_all_at(&self, file: &File, mut at: u64, mut from: usize) -> io::Result<()> {
        while from < self.len() {
            let run = self.run_at(from);
            file.write_all_at(run, at)?;
            at += run.len() as u64;
            from += run.len();
        }
        Ok(())
    }

    /// The whole stream as one vector.
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        let mut from = 0;
        while from < self.len() {
            let run = self.run_at(from);
            out.extend_from_slice(run);
            from += run.len();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(bytes: &[u8]) -> SharedBytes {
        SharedBytes::copy_of(bytes)
    }

    #[test]
    fn pieces_are_spliced_in_at_their_offsets() {
        let mut log = LogBuf::default();
        log.push_parts(b"ab", &[]);
        log.push_parts(b"cdef", &[(1, piece(b"XY")), (1, piece(b"Z")), (4, piece(b"!"))]);
        assert_eq!(log.to_vec(), b"abcXYZdef!");
        assert_eq!(log.len(), 10);
        assert_eq!(log.run_at(0), b"abc");
        assert_eq!(log.run_at(4), b"Y");
        assert_eq!(log.run_at(5), b"Z");
        assert_eq!(log.run_at(7), b"ef");
        assert_eq!(log.run_at(9), b"!");
        assert_eq!(log.run_at(10), b"");
    }

    #[test]
    fn append_moves_or_concatenates() {
        let mut a = LogBuf::default();
        let mut b = LogBuf::default();
        b.push_parts(b"12", &[(2, piece(b"34"))]);
        a.append(&mut b);
        assert!(b.is_empty());
        assert_eq!(a.to_vec(), b"1234");
        let mut c = LogBuf::default();
        c.push_parts(b"56", &[(0, piece(b"P"))]);
        a.append(&mut c);
        assert_eq!(a.to_vec(), b"1234P56");
        assert!(c.is_empty());
    }

    #[test]
    fn writing_from_an_offset_writes_the_rest() {
        let dir = std::env::temp_dir().join(format!("kvserver-logbuf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let file = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut log = LogBuf::default();
        log.push_parts(b"head|tail", &[(5, piece(b"VALUE|"))]);
        log.write_all_at(&file, 3, 2).unwrap();
        let written = std::fs::read(&path).unwrap();
        assert_eq!(&written[3..], b"ad|VALUE|tail");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
