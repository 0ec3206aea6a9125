//! A read-only byte range of a shared, reference-counted buffer.
//!
//! Big values travel without copies: a connection reads a large bulk
//! argument into a buffer sized for it, and once the command is framed that
//! buffer is handed over whole. The store keeps a [`SharedBytes`] of the
//! value's range, and the WAL keeps another until the record is on disk, so
//! one 512 MiB `SET` costs 512 MiB (plus the command's few header bytes),
//! not the four copies a read buffer, a store allocation, an encoded record
//! and the log buffer would take. The buffer is freed when the last holder
//! lets go. Nothing ever writes through a `SharedBytes`; a value that is
//! edited later (`APPEND`, `SETRANGE`) is first copied into the store's own
//! allocation.

use std::ops::{Deref, Range};
use std::sync::Arc;

/// Values at least this long are shared instead of copied (a smaller value's
/// copy costs less than the bookkeeping, and the read buffer that holds it is
/// reused by the next command).
pub const SHARE_THRESHOLD: usize = 1024 * 1024;

/// Bytes `range` of a buffer that may also be held elsewhere.
#[derive(Clone)]
pub struct SharedBytes {
    buf: Arc<Vec<u8>>,
    range: Range<usize>,
}

impl SharedBytes {
    /// The bytes `range` of `buf`. `range` must lie inside `buf`.
    pub fn new(buf: Arc<Vec<u8>>, range: Range<usize>) -> SharedBytes {
        assert!(range.start <= range.end && range.end <= buf.len());
        SharedBytes { buf, range }
    }

    /// A buffer holding exactly `bytes` (a copy: for values that were not
    /// read into a buffer of their own).
    pub fn copy_of(bytes: &[u8]) -> SharedBytes {
        SharedBytes {
            range: 0..bytes.len(),
            buf: Arc::new(bytes.to_vec()),
        }
    }

    /// Bytes the whole underlying buffer keeps allocated (`MEMORY USAGE`):
    /// the value plus the few command bytes around it that were read with it.
    pub fn allocated(&self) -> usize {
        self.buf.capacity()
    }
}

impl Deref for SharedBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}

impl std::fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBytes")
            .field("len", &self.range.len())
            .field("allocated", &self.allocated())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_reads_its_bytes_and_clones_share_the_buffer() {
        let buf = Arc::new(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n".to_vec());
        let value = SharedBytes::new(buf.clone(), 24..29);
        assert_eq!(&*value, b"hello");
        let copy = value.clone();
        assert_eq!(Arc::strong_count(&buf), 3);
        drop(value);
        drop(copy);
        assert_eq!(Arc::strong_count(&buf), 1);
    }

    #[test]
    #[should_panic]
    fn a_range_outside_the_buffer_is_refused() {
        SharedBytes::new(Arc::new(vec![0; 4]), 2..5);
    }
}
