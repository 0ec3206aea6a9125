//! The synced watermark: `dir/kvserver.wal.synced` records a length of the log that had
//! certainly reached the disk, so recovery can tell damage in bytes that were durable (refused,
//! as before) from damage in bytes written after the last completed fsync (a torn tail that a
//! power cut's out-of-order writeback explains: truncated).
//!
//! What it promises: the value on disk is always a **lower bound** on the length of the log at
//! its last completed fsync, for whichever file the log's path names. It is written only after
//! the log's own fsync completed, it may lag (it is written at most once per flusher tick, by
//! `FLUSH` and by shutdown, never on the group-commit path, so `always` pays no extra fsync per
//! commit), and a compaction that replaces the log with a shorter file first lowers it to the new
//! file's length (fsynced before the rename).
//!
//! The file holds two 512-byte slots, each `magic | sequence (u64) | synced length (u64) | crc32c`,
//! written alternately and fdatasync'ed: a write torn by a power cut leaves the other slot, an
//! older and therefore still valid lower bound (PostgreSQL keeps `pg_control` within one 512-byte
//! sector for the same reason). Reading takes the valid slot with the highest sequence. A missing
//! file or no valid slot means "no bound": recovery is as strict as it was before the watermark
//! existed. It must never state more than was synced, and never fail a write: a watermark that
//! cannot be written is logged and the previous one stays (it under-states, which is safe).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::log_limit::{LogLimiter, DEFAULT_INTERVAL};

/// File name of the watermark inside `WalConfig::dir`.
pub const SYNCED_FILE_NAME: &str = "kvserver.wal.synced";

/// One slot per 512-byte sector, so a slot write never spans two sectors.
const SLOT_SPACING: u64 = 512;
/// `"KVSY"`: tells a slot from zeros or foreign bytes.
const SLOT_MAGIC: [u8; 4] = *b"KVSY";
/// magic (4) + sequence (8) + synced length (8) + crc32c of the first 20 bytes (4).
const SLOT_LEN: usize = 24;

/// A failing disk would otherwise log one line per flusher tick.
static WATERMARK_FAILED_LOG: LogLimiter = LogLimiter::new(DEFAULT_INTERVAL);

/// The open watermark file and what was last written to it. Guarded by `Wal::watermark`.
pub(super) struct Watermark {
    file: Option<File>,
    path: PathBuf,
    /// Sequence number of the last slot written (the next write uses `seq + 1`).
    seq: u64,
    /// The highest value recovery could read now: the last one written, or after a failed write
    /// the larger of it and the one attempted (that write may or may not have landed).
    pub recorded: u64,
    /// The log generation `recorded` describes: bumped when a compaction switches files, so a
    /// length read from the old file is never recorded for the new one.
    pub log_generation: u64,
}

impl Watermark {
    /// Reads the watermark of `dir` without creating anything: `None` when there is no file or
    /// no valid slot (then nothing is known about what was synced).
    pub fn read(dir: &Path) -> io::Result<Option<u64>> {
        let path = dir.join(SYNCED_FILE_NAME);
        match File::open(&path) {
            Ok(f) => Ok(read_slots(&f)?.map(|(_, len)| len)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens (creating it if needed, with a directory fsync so its name survives a power cut)
    /// the watermark of `dir`. Errors are logged and leave a watermark that writes nothing:
    /// the log must keep working without it.
    pub fn open(dir: &Path) -> Watermark {
        let path = dir.join(SYNCED_FILE_NAME);
        let existed = path.exists();
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .and_then(|f| {
                let seq = read_slots(&f)?.map_or(0, |(seq, _)| seq);
                if !existed {
                    File::open(dir).and_then(|d| d.sync_all())?;
                }
                Ok((f, seq))
            });
        match opened {
            Ok((file, seq)) => Watermark {
                file: Some(file),
                path,
                seq,
                recorded: 0,
                log_generation: 0,
            },
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot open the WAL synced watermark: {e}; a power cut's torn tail will be treated as corruption");
                Watermark {
                    file: None,
                    path,
                    seq: 0,
                    recorded: 0,
                    log_generation: 0,
                }
            }
        }
    }

    /// Records that the log was synced up to `synced_len`. The caller guarantees the log's fsync
    /// covering `synced_len` has completed. Writes the next slot and fdatasyncs it; false if
    /// that failed (logged; the watermark may then read as either value).
    pub fn record(&mut self, synced_len: u64) -> bool {
        let Some(file) = self.file.as_ref() else {
            return false;
        };
        let seq = self.seq + 1;
        let slot = encode_slot(seq, synced_len);
        let at = (seq % 2) * SLOT_SPACING;
        match file.write_all_at(&slot, at).and_then(|()| file.sync_data()) {
            Ok(()) => {
                self.seq = seq;
                self.recorded = synced_len;
                true
            }
            Err(e) => {
                // The slot may be torn (the other one still holds the previous value) or may
                // have landed. Move on so the next attempt does not overwrite the other slot.
                self.seq = seq;
                self.recorded = self.recorded.max(synced_len);
                crate::warn_limited!(WATERMARK_FAILED_LOG, path = %self.path.display(), "cannot record the WAL synced watermark: {e}");
                false
            }
        }
    }
}

fn encode_slot(seq: u64, synced_len: u64) -> [u8; SLOT_LEN] {
    let mut slot = [0u8; SLOT_LEN];
    slot[..4].copy_from_slice(&SLOT_MAGIC);
    slot[4..12].copy_from_slice(&seq.to_le_bytes());
    slot[12..20].copy_from_slice(&synced_len.to_le_bytes());
    let crc = crc32c::crc32c(&slot[..20]);
    slot[20..].copy_from_slice(&crc.to_le_bytes());
    slot
}

fn decode_slot(slot: &[u8; SLOT_LEN]) -> Option<(u64, u64)> {
    let crc = u32::from_le_bytes([slot[20], slot[21], slot[22], slot[23]]);
    if slot[..4] != SLOT_MAGIC || crc32c::crc32c(&slot[..20]) != crc {
        return None;
    }
    let seq = u64::from_le_bytes(slot[4..12].try_into().ok()?);
    let len = u64::from_le_bytes(slot[12..20].try_into().ok()?);
    Some((seq, len))
}

/// The valid slot with the highest sequence: `(sequence, synced length)`.
fn read_slots(file: &File) -> io::Result<Option<(u64, u64)>> {
    let mut best: Option<(u64, u64)> = None;
    for i in 0..2 {
        let mut slot = [0u8; SLOT_LEN];
        let mut got = 0;
        while got < SLOT_LEN {
            match file.read_at(&mut slot[got..], i * SLOT_SPACING + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if got < SLOT_LEN {
            continue;
        }
        if let Some(found) = decode_slot(&slot) {
            if best.is_none_or(|(seq, _)| found.0 > seq) {
                best = Some(found);
            }
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_recorded_length_is_read_back_and_a_torn_slot_falls_back_to_the_other() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(Watermark::read(tmp.path()).unwrap(), None);
        let mut wm = Watermark::open(tmp.path());
        wm.record(100);
        wm.record(250);
        assert_eq!(Watermark::read(tmp.path()).unwrap(), Some(250));
        // Tear the newest slot (sequence 2, slot 0): the older value is what remains.
        let path = tmp.path().join(SYNCED_FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[14] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(Watermark::read(tmp.path()).unwrap(), Some(100));
        // A reopened watermark continues after the highest valid sequence.
        let mut wm = Watermark::open(tmp.path());
        wm.record(300);
        assert_eq!(Watermark::read(tmp.path()).unwrap(), Some(300));
    }
}
