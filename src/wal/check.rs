//! `kvserver check-wal PATH [--repair]`: an offline inspection of a log file, like
//! `redis-check-aof`.
//!
//! It owns the report and the repair (a truncation at the first bad record, then fsync). It must
//! never run against a log a live server has open (the binary documents that), and never modify
//! the file unless asked to repair.

use std::fmt;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use super::reader::{read_header, scan, HeaderState, KindCounts, ReadEnd};
use super::WalError;

/// Result of [`check`]; `Display` prints the human report the binary shows.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The file checked.
    pub path: PathBuf,
    /// Its size before any repair.
    pub file_len: u64,
    /// Valid records before the end or the first bad record, by kind.
    pub records: KindCounts,
    /// Offset just past the last valid record.
    pub valid_len: u64,
    /// How the log ends.
    pub end: ReadEnd,
    /// True if `repair` truncated the file at the first bad offset.
    pub repaired: bool,
    /// True for an empty file or one holding only a partial header (it would be recreated).
    pub empty: bool,
}

impl CheckReport {
    /// The binary exits 0 only for a clean log (a repaired log was not clean when checked).
    pub fn is_clean(&self) -> bool {
        self.end == ReadEnd::CleanEnd && !self.repaired
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "WAL file: {}", self.path.display())?;
        writeln!(f, "size: {} bytes", self.file_len)?;
        if self.empty {
            writeln!(f, "empty log (no header yet): nothing to replay")?;
        }
        writeln!(
            f,
            "valid records: {} ({}), {} bytes",
            self.records.total(),
            self.records,
            self.valid_len
        )?;
        match self.end {
            ReadEnd::CleanEnd => writeln!(f, "status: OK, clean end")?,
            ReadEnd::TornTail {
                offset,
                dropped_bytes,
            } => writeln!(
                f,
                "status: TORN TAIL at byte offset {offset}: the last {dropped_bytes} bytes are an \
                 interrupted write (the server truncates these on start)"
            )?,
            ReadEnd::Corrupt {
                offset,
                next_valid_offset,
                reason,
            } => writeln!(
                f,
                "status: CORRUPT at byte offset {offset} ({reason}); valid records resume at \
                 offset {next_valid_offset}. Repair drops {} bytes from offset {offset}",
                self.file_len - offset
            )?,
        }
        if self.repaired {
            writeln!(
                f,
                "repaired: truncated to {} bytes ({} bytes removed)",
                self.valid_len,
                self.file_len - self.valid_len
            )?;
        } else if !self.is_clean() {
            writeln!(f, "run again with --repair to truncate at the first bad offset")?;
        }
        Ok(())
    }
}

/// `kvserver check-wal PATH [--repair]`: counts records by kind, finds the first bad offset
/// (torn tail vs mid-file corruption) and, with `repair`, truncates there. Err for a missing or
/// unreadable file or an unknown magic/version (never repaired: it may not be ours).
pub fn check(path: &Path, repair: bool) -> Result<CheckReport, WalError> {
    let file = OpenOptions::new()
        .read(true)
        .write(repair)
        .open(path)
        .map_err(|e| WalError::io("opening", path, e))?;
    let file_len = file
        .metadata()
        .map_err(|e| WalError::io("reading metadata of", path, e))?
        .len();
    let mut report = CheckReport {
        path: path.to_path_buf(),
        file_len,
        records: KindCounts::default(),
        valid_len: file_len,
        end: ReadEnd::CleanEnd,
        repaired: false,
        empty: false,
    };
    if read_header(&file, path, file_len)? == HeaderState::New {
        report.empty = true;
        return Ok(report);
    }
    let outcome = scan(&file, path, file_len, |_| {})?;
    report.records = outcome.counts;
    report.valid_len = outcome.valid_end;
    report.end = outcome.end;
    if repair && outcome.end != ReadEnd::CleanEnd {
        file.set_len(outcome.valid_end)
            .map_err(|e| WalError::io("truncating", path, e))?;
        file.sync_all().map_err(|e| WalError::io("fsyncing", path, e))?;
        report.repaired = true;
    }
    Ok(report)
}
