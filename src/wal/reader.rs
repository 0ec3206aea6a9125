//! Reading a WAL file from start to end: header validation, the record scan, and the decision
//! between a torn tail and mid-file corruption.
//!
//! This file owns *framing-level* reading only: it reports how the log ends ([`ReadEnd`]) and
//! leaves policy (truncate, refuse, repair) to its callers (`Wal::open`, `check`). It must never
//! modify the file, never allocate per record (records borrow from one big read buffer), and never
//! allocate according to an unbounded length read from disk.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::record::{
    self, frame_header, parse_frame, Frame, Record, RecordKind, FILE_HEADER_LEN, FILE_MAGIC, FORMAT_VERSION,
    FRAME_HEADER_LEN,
};
use super::WalError;

/// Size of one read during replay: big sequential reads keep replay CPU-bound.
const READ_CHUNK: usize = 4 * 1024 * 1024;
/// Window used while looking for a valid record after a bad one.
const SCAN_WINDOW: usize = 1024 * 1024;

/// How a log ends. Framing only: the caller decides what to do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// Every byte after the header belongs to a valid record.
    CleanEnd,
    /// The bytes from `offset` to the end are not a valid record and no valid record follows:
    /// the expected result of a crash in the middle of a write. Safe to truncate.
    TornTail {
        /// Offset of the first byte that is not part of a valid record.
        offset: u64,
        /// How many bytes lie from `offset` to the end of the file.
        dropped_bytes: u64,
    },
    /// The record at `offset` is bad but a valid record starts later, at `next_valid_offset`:
    /// this is damage, not an interrupted write, and truncating would drop acknowledged data.
    Corrupt {
        /// Offset of the bad record.
        offset: u64,
        /// Offset of the first valid record found after it.
        next_valid_offset: u64,
        /// Why the record at `offset` was rejected.
        reason: &'static str,
    },
}

impl ReadEnd {
    /// The offset where valid data ends (`None` for a clean log).
    pub fn bad_offset(&self) -> Option<u64> {
        match *self {
            ReadEnd::CleanEnd => None,
            ReadEnd::TornTail { offset, .. } | ReadEnd::Corrupt { offset, .. } => Some(offset),
        }
    }
}

/// Record counts by kind, for replay and check reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindCounts {
    /// `Set` records.
    pub set: u64,
    /// `Del` records.
    pub del: u64,
    /// `Expire` records.
    pub expire: u64,
    /// `FlushAll` records.
    pub flush_all: u64,
    /// `Patch` records (`APPEND`, `SETRANGE`).
    pub patch: u64,
    /// `HashSet` records.
    pub hash_set: u64,
    /// `HashDel` records.
    pub hash_del: u64,
    /// `HashExpire` records.
    pub hash_expire: u64,
    /// `Select` records (database switches).
    pub select: u64,
    /// `SwapDb` records.
    pub swap_db: u64,
    /// `FlushDb` records.
    pub flush_db: u64,
    /// `Collection` records (lists, sets, sorted sets).
    pub collection: u64,
    /// `Function` records (function library changes).
    pub function: u64,
    /// Transaction frames (`EXEC`s); their records are counted by kind above.
    pub transactions: u64,
}

impl KindCounts {
    /// All records.
    pub fn total(&self) -> u64 {
        self.set
            + self.del
            + self.expire
            + self.flush_all
            + self.patch
            + self.hash_set
            + self.hash_del
            + self.hash_expire
            + self.select
            + self.swap_db
            + self.flush_db
            + self.collection
            + self.function
    }

    #[inline]
    fn add(&mut self, kind: RecordKind) {
        match kind {
            RecordKind::Set => self.set += 1,
            RecordKind::Del => self.del += 1,
            RecordKind::Expire => self.expire += 1,
            RecordKind::FlushAll => self.flush_all += 1,
            RecordKind::Patch => self.patch += 1,
            RecordKind::HashSet => self.hash_set += 1,
            RecordKind::HashDel => self.hash_del += 1,
            RecordKind::HashExpire => self.hash_expire += 1,
            RecordKind::Select => self.select += 1,
            RecordKind::SwapDb => self.swap_db += 1,
            RecordKind::FlushDb => self.flush_db += 1,
            RecordKind::Collection => self.collection += 1,
            RecordKind::Function => self.function += 1,
            RecordKind::Transaction => self.transactions += 1,
        }
    }
}

impl std::fmt::Display for KindCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "set {}, del {}, expire {}, flushall {}, hset {}, hdel {}, hexpire {}",
            self.set, self.del, self.expire, self.flush_all, self.hash_set, self.hash_del, self.hash_expire
        )?;
        if self.patch > 0 {
            write!(f, ", patch {}", self.patch)?;
        }
        // Database records exist only in multi-database logs; older reports stay unchanged.
        if self.select + self.swap_db + self.flush_db > 0 {
            write!(
                f,
                ", select {}, swapdb {}, flushdb {}",
                self.select, self.swap_db, self.flush_db
            )?;
        }
        if self.collection > 0 {
            write!(f, ", collection {}", self.collection)?;
        }
        if self.function > 0 {
            write!(f, ", function {}", self.function)?;
        }
        if self.transactions > 0 {
            write!(f, "; in {} transactions", self.transactions)?;
        }
        Ok(())
    }
}

/// What the header check found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderState {
    /// Empty file, or a prefix of our header (a crash while creating it): write a fresh header.
    New,
    /// A valid header of this version.
    Valid,
}

/// Validates the file header. Unknown magic or version is an error naming the file.
pub(crate) fn read_header(file: &File, path: &Path, file_len: u64) -> Result<HeaderState, WalError> {
    let want = record::file_header();
    let n = (file_len as usize).min(FILE_HEADER_LEN);
    let mut got = [0u8; FILE_HEADER_LEN];
    read_exact_at(file, &mut got[..n], 0).map_err(|e| WalError::io("reading the header of", path, e))?;
    if n < FILE_HEADER_LEN {
        if got[..n] == want[..n] {
            return Ok(HeaderState::New);
        }
        return Err(WalError::UnknownFormat {
            path: path.to_path_buf(),
        });
    }
    if got[..8] != FILE_MAGIC {
        return Err(WalError::UnknownFormat {
            path: path.to_path_buf(),
        });
    }
    let version = u32::from_le_bytes([got[8], got[9], got[10], got[11]]);
    if version != FORMAT_VERSION {
        return Err(WalError::UnsupportedVersion {
            path: path.to_path_buf(),
            version,
        });
    }
    Ok(HeaderState::Valid)
}

/// Result of a full scan.
#[derive(Debug)]
pub(crate) struct ScanOutcome {
    pub counts: KindCounts,
    /// Offset just past the last valid record read before the end or the first bad record.
    pub valid_end: u64,
    pub end: ReadEnd,
}

fn read_exact_at(file: &File, mut buf: &mut [u8], mut off: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, off) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "file shrank while being read",
                ))
            }
            Ok(n) => {
                buf = &mut buf[n..];
                off += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads every record after the header in file order, calling `apply` for each, then classifies
/// the end. `file_len` is the length to consider (bytes past it are ignored).
pub(crate) fn scan(
    file: &File,
    path: &Path,
    file_len: u64,
    mut apply: impl FnMut(Record<'_>),
) -> Result<ScanOutcome, WalError> {
    let mut counts = KindCounts::default();
    let cap = READ_CHUNK.min(file_len.saturating_sub(FILE_HEADER_LEN as u64) as usize + FRAME_HEADER_LEN);
    let mut buf = vec![0u8; cap.max(FRAME_HEADER_LEN)];
    let (mut start, mut end) = (0usize, 0usize);
    let mut base = FILE_HEADER_LEN as u64; // file offset of buf[0]
    let mut file_pos = base; // next offset to read
    let bad: Option<(u64, &'static str)> = loop {
        match parse_frame(&buf[start..end]) {
            Frame::Complete { record, len } => {
                counts.add(record.kind());
                apply(record);
                start += len;
            }
            Frame::Transaction { body, len } => {
                counts.add(RecordKind::Transaction);
                for record in record::transaction_records(body).flatten() {
                    counts.add(record.kind());
                    apply(record);
                }
                start += len;
            }
            Frame::Incomplete { need } => {
                let at = base + start as u64;
                if file_pos >= file_len || at + need as u64 > file_len {
                    if start == end && file_pos >= file_len {
                        break None;
                    }
                    break Some((at, "record cut short by the end of the file"));
                }
                buf.copy_within(start..end, 0);
                base = at;
                end -= start;
                start = 0;
                if need > buf.len() {
                    buf.resize(need, 0);
                }
                let want = (buf.len() - end).min((file_len - file_pos) as usize);
                read_exact_at(file, &mut buf[end..end + want], file_pos)
                    .map_err(|e| WalError::io("reading", path, e))?;
                end += want;
                file_pos += want as u64;
            }
            Frame::Bad(reason) => break Some((base + start as u64, reason)),
        }
    };
    let Some((offset, reason)) = bad else {
        return Ok(ScanOutcome {
            counts,
            valid_end: file_len,
            end: ReadEnd::CleanEnd,
        });
    };
    drop(buf);
    let end = match find_valid_after(file, path, offset + 1, file_len)? {
        Some(next_valid_offset) => ReadEnd::Corrupt {
            offset,
            next_valid_offset,
            reason,
        },
        None => ReadEnd::TornTail {
            offset,
            dropped_bytes: file_len - offset,
        },
    };
    Ok(ScanOutcome {
        counts,
        valid_end: offset,
        end,
    })
}

/// Looks for any offset in `[from, file_len)` where a valid record starts. A bad record with no
/// valid record after it is a torn tail; one followed by a valid record is corruption.
/// Candidates are filtered by the cheap header checks (bounded length, known kind, fits in the
/// file) before any checksum; records longer than the window are checked by a streaming CRC, so
/// a garbage length never allocates.
pub(crate) fn find_valid_after(
    file: &File,
    path: &Path,
    from: u64,
    file_len: u64,
) -> Result<Option<u64>, WalError> {
    let mut win = vec![0u8; SCAN_WINDOW.min(file_len.saturating_sub(from) as usize)];
    let mut wbase = from;
    let mut wlen = 0usize;
    let mut q = from;
    while q + FRAME_HEADER_LEN as u64 <= file_len {
        if q + FRAME_HEADER_LEN as u64 > wbase + wlen as u64 {
            wbase = q;
            wlen = win.len().min((file_len - q) as usize);
            read_exact_at(file, &mut win[..wlen], q).map_err(|e| WalError::io("reading", path, e))?;
        }
        let rel = (q - wbase) as usize;
        if let Some(Ok((crc, len, _))) = frame_header(&win[rel..wlen]) {
            let total = (FRAME_HEADER_LEN + len) as u64;
            if q + total <= file_len {
                let valid = if rel + total as usize <= wlen {
                    matches!(
                        parse_frame(&win[rel..wlen]),
                        Frame::Complete { .. } | Frame::Transaction { .. }
                    )
                } else {
                    streaming_crc(file, path, q + 4, total - 4)? == crc
                };
                if valid {
                    return Ok(Some(q));
                }
            }
        }
        q += 1;
    }
    Ok(None)
}

fn streaming_crc(file: &File, path: &Path, mut off: u64, mut len: u64) -> Result<u32, WalError> {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut crc = 0u32;
    while len > 0 {
        let n = (chunk.len() as u64).min(len) as usize;
        read_exact_at(file, &mut chunk[..n], off).map_err(|e| WalError::io("reading", path, e))?;
        crc = crc32c::crc32c_append(crc, &chunk[..n]);
        off += n as u64;
        len -= n as u64;
    }
    Ok(crc)
}

/// Frames at most this long are read whole to count a transaction's records; a longer one
/// (a huge value) counts as one record without being read into memory.
const COUNT_READ_LIMIT: usize = 16 * 1024 * 1024;

/// Counts the records of every valid frame in `[from, file_len)`, skipping bad bytes between
/// them: what a truncation at `from` drops besides the damage itself. Used for the warning when
/// damage in the unsynced tail is truncated (a transaction frame counts its records).
pub(crate) fn count_records_after(
    file: &File,
    path: &Path,
    from: u64,
    file_len: u64,
) -> Result<u64, WalError> {
    let mut records = 0u64;
    let mut q = from;
    let mut frame = Vec::new();
    loop {
        if let Some((n, total)) = frame_at(file, path, q, file_len, &mut frame)? {
            records += n;
            q += total;
            continue;
        }
        match find_valid_after(file, path, q + 1, file_len)? {
            Some(at) => q = at,
            None => return Ok(records),
        }
    }
}

/// The valid frame starting at `at`, if any: `(records in it, its length)`. A frame longer than
/// [`COUNT_READ_LIMIT`] is checked by a streaming CRC and counts as one record.
fn frame_at(
    file: &File,
    path: &Path,
    at: u64,
    file_len: u64,
    frame: &mut Vec<u8>,
) -> Result<Option<(u64, u64)>, WalError> {
    if at + FRAME_HEADER_LEN as u64 > file_len {
        return Ok(None);
    }
    let mut head = [0u8; FRAME_HEADER_LEN];
    read_exact_at(file, &mut head, at).map_err(|e| WalError::io("reading", path, e))?;
    let Some(Ok((crc, len, _))) = frame_header(&head) else {
        return Ok(None);
    };
    let total = FRAME_HEADER_LEN + len;
    if at + total as u64 > file_len {
        return Ok(None);
    }
    if total > COUNT_READ_LIMIT {
        let valid = streaming_crc(file, path, at + 4, total as u64 - 4)? == crc;
        return Ok(valid.then_some((1, total as u64)));
    }
    frame.resize(total, 0);
    read_exact_at(file, frame, at).map_err(|e| WalError::io("reading", path, e))?;
    Ok(match parse_frame(frame) {
        Frame::Complete { .. } => Some((1, total as u64)),
        Frame::Transaction { body, .. } => {
            Some((record::transaction_records(body).count() as u64, total as u64))
        }
        _ => None,
    })
}
