//! The write-ahead log: every write's *result* is framed as a [`Record`], appended to an
//! in-memory buffer while the caller still holds its shard locks, and written + fsynced to
//! `dir/kvserver.wal` according to the [`FsyncPolicy`]. On start the log is replayed into the
//! store; a background compaction rewrites it from a store snapshot when it grows.
//!
//! What this module owns: the file format (`record`), reading and recovery (`reader`, `open`),
//! the buffer / flusher / group commit / failure handling (`writer`), the compaction (`compact`)
//! and the offline checker (`check`). It knows records, never commands, sockets or the store's
//! types: the store is reached only through [`SnapshotSource`] and the `apply` callback.
//! It must never block an appender on I/O (appenders hold shard locks), never acknowledge a
//! write it has dropped, and never panic on bytes read from disk.
//!
//! # Locks and their order
//! * **buffer mutex** (`Wal::buf`): the pending bytes, the rewrite buffer and the append LSN.
//!   Held only for a memcpy or a `Vec` swap, never across I/O.
//! * **I/O mutex** (`Wal::io`): the file handle and its good length. Serializes every write to
//!   the log: flusher, group-commit leader, `sync_all`, the end of a compaction.
//! * **commit state mutex** (`Wal::commit`) + condvar: durable LSN, group-commit leadership.
//! * **watermark mutex** (`Wal::watermark`): the synced-watermark file (`watermark.rs`). Taken
//!   after the I/O mutex is released (flusher, `FLUSH`, shutdown) or under it by a compaction's
//!   switch; held across the watermark's small write + fdatasync, never while taking another lock.
//! * leaf locks (`last_error`, `snapshot_source`, thread handles): never held while taking another.
//!
//! Order (a thread holding a lock on the left may take one on the right, never the reverse):
//! `store shard locks → buffer mutex`; `I/O mutex → buffer mutex`; `I/O mutex → commit mutex`;
//! `I/O mutex → watermark mutex`.
//! Never `buffer → I/O`, never `commit → I/O`, never take a shard lock while holding any WAL lock
//! (compaction calls [`SnapshotSource::snapshot_shard`] with no WAL lock held).

mod check;
mod compact;
mod fault;
mod log_buf;
mod reader;
pub(crate) mod record;
mod watermark;
mod writer;

#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use check::{check, CheckReport};
pub use fault::CRASH_AT_ENV;
pub use reader::{KindCounts, ReadEnd};
pub use record::{
    decode_payload, encode_set_around_value, encode_transaction, HashField, HashFields, Record, RecordKind,
    FILE_HEADER_LEN, FILE_MAGIC, FORMAT_VERSION, FRAME_HEADER_LEN, MAX_PAYLOAD_LEN,
};
pub use watermark::SYNCED_FILE_NAME;
pub use writer::{ReplayReport, Wal, WalStats};

/// "WAL commit failed" is logged by whichever thread waited for the commit,
/// once per write while the WAL is failing: one line per interval instead
/// (the WAL itself logs the failure and the recovery once each).
pub static COMMIT_FAILED_LOG: crate::log_limit::LogLimiter =
    crate::log_limit::LogLimiter::new(crate::log_limit::DEFAULT_INTERVAL);

/// Log sequence number: the logical byte offset of the end of an append, counted from the start
/// of the log file at open and monotonic across compactions. `commit(lsn)` waits for it.
pub type Lsn = u64;

/// File name of the log inside `WalConfig::dir`.
pub const WAL_FILE_NAME: &str = "kvserver.wal";
/// File name a compaction writes before renaming it over the log; removed on open.
pub const COMPACT_TMP_FILE_NAME: &str = "kvserver.wal.compact.tmp";

/// `create_dir_all` followed by an fsync of the parent of every directory it created, so a
/// power cut cannot lose the data directory (and the log in it) the server just created: a new
/// directory entry is durable only once its parent directory is fsynced.
pub fn create_dir_durably(dir: &Path) -> io::Result<()> {
    let mut created = Vec::new();
    let mut next = Some(dir);
    while let Some(d) = next {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        created.push(d);
        next = d.parent();
    }
    fs::create_dir_all(dir)?;
    for d in created {
        let parent = d
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// When appended records reach the disk, i.e. what an `OK` reply promises after a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// `commit` returns only once the record is written and fdatasync'ed (group commit):
    /// nothing acknowledged is lost, even on power loss.
    Always,
    /// A background thread writes and fdatasyncs every `flush_interval`: a crash loses about one
    /// interval of acknowledged writes, a power cut about one interval plus one write+fdatasync
    /// (it loses everything after the last *completed* fdatasync; see docs/persistence.md).
    #[default]
    Interval,
    /// A background thread writes every `flush_interval` without fsync: the kernel decides when
    /// data reaches the disk (a process crash loses about one interval; a power cut, anything
    /// since the last FLUSH, start or compaction that the kernel had not written back).
    Never,
}

impl FsyncPolicy {
    /// The config-file spelling, for `CONFIG GET` / `INFO`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Interval => "interval",
            FsyncPolicy::Never => "never",
        }
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FsyncPolicy {
    type Err = String;
    /// Parses the same lowercase words as the config file, so the CLI flag and TOML agree.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "interval" => Ok(FsyncPolicy::Interval),
            "never" => Ok(FsyncPolicy::Never),
            _ => Err(format!(
                "invalid fsync policy '{s}': expected always, interval or never"
            )),
        }
    }
}

/// Everything the WAL needs to know; built by the server from its `Config`.
#[derive(Clone, Debug)]
pub struct WalConfig {
    /// Directory holding `kvserver.wal` (created if missing).
    pub dir: PathBuf,
    /// Durability policy, see [`FsyncPolicy`].
    pub fsync: FsyncPolicy,
    /// Period of the background flusher (and of write retries while failing). Default 100 ms.
    pub flush_interval: Duration,
    /// On mid-file corruption, truncate at the bad record and start (dropping what follows)
    /// instead of refusing to start. Default false: an operator should look first.
    pub truncate_corrupt: bool,
    /// Auto-compaction never runs while the log is smaller than this. Default 100 MiB.
    pub compact_min_size: u64,
    /// Auto-compaction runs when the log has grown by this percentage since the last compaction
    /// (or since open). Default 100 (doubled). 0 disables auto-compaction.
    pub compact_growth_percent: u64,
}

impl WalConfig {
    /// A config with every default and the given directory.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WalConfig {
            dir: dir.into(),
            fsync: FsyncPolicy::Interval,
            flush_interval: Duration::from_millis(100),
            truncate_corrupt: false,
            compact_min_size: 100 * 1024 * 1024,
            compact_growth_percent: 100,
        }
    }

    /// Path of the log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(WAL_FILE_NAME)
    }
}

impl Default for WalConfig {
    /// Defaults with `dir = "data"`.
    fn default() -> Self {
        WalConfig::new("data")
    }
}

/// Something that can hand out a consistent view of one shard at a time (implemented by the store).
pub trait SnapshotSource: Send + Sync {
    /// How many shards `snapshot_shard` accepts (`0..shard_count()`).
    fn shard_count(&self) -> usize;
    /// Locks shard `i`, calls `emit` for every live (non-expired) key as a `Record::Set`, unlocks.
    /// A source with several databases emits `Select` records between them and must leave the
    /// snapshot in database 0 (a `Select 0` at the end of the last shard if needed).
    /// `emit` only encodes into memory: it never does I/O or takes a lock.
    fn snapshot_shard(&self, i: usize, emit: &mut dyn FnMut(Record<'_>));
    /// Called once per compaction with `start`, which starts the rewrite buffer: a source
    /// whose layout can change under writes (SWAPDB) runs `start` while holding that change
    /// off, and captures the layout its snapshot will describe. The default just runs it.
    fn begin_snapshot(&self, start: &mut dyn FnMut()) {
        start()
    }
}

/// Errors of the WAL layer. `Display` is a complete Redis-style error line (code first), so the
/// server can send it as `-{err}` unchanged.
#[derive(Debug)]
pub enum WalError {
    /// An I/O call failed outside the write path (open, read, rename, ...).
    Io {
        /// What was being done, e.g. "opening".
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The last write or fsync of the log failed; writes are refused until one succeeds.
    Misconf {
        /// The OS error text, e.g. "No space left on device (os error 28)".
        cause: String,
    },
    /// A bad record followed by valid records: damage, not an interrupted write.
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// Offset of the bad record.
        offset: u64,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The file does not start with the kvserver WAL magic.
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The file is a kvserver WAL of a version this build cannot read.
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// `start_compaction` while one is running.
    AlreadyCompacting,
    /// `start_compaction` before `set_snapshot_source`.
    NoSnapshotSource,
    /// A compaction was abandoned (the log is unchanged).
    CompactionFailed {
        /// Why.
        cause: String,
    },
    /// The WAL was shut down while an operation needed it.
    ShutDown,
}

impl WalError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> WalError {
        WalError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalError::Io { op, path, source } => {
                write!(f, "ERR WAL I/O error {op} {}: {source}", path.display())
            }
            WalError::Misconf { cause } => write!(f, "MISCONF Errors writing to the WAL: {cause}"),
            WalError::Corrupt { path, offset, reason } => write!(
                f,
                "ERR WAL {} is corrupt at byte offset {offset} ({reason}) and valid records follow; \
                 refusing to start. Inspect it with `kvserver check-wal {}`, then repair with \
                 --repair or start with truncate_corrupt = true (drops everything from that offset)",
                path.display(),
                path.display()
            ),
            WalError::UnknownFormat { path } => write!(
                f,
                "ERR {} is not a kvserver WAL (unknown magic); refusing to touch it",
                path.display()
            ),
            WalError::UnsupportedVersion { path, version } => write!(
                f,
                "ERR WAL {} has format version {version}, this build reads only version {FORMAT_VERSION}",
                path.display()
            ),
            WalError::AlreadyCompacting => f.write_str("ERR Background WAL rewrite already in progress"),
            WalError::NoSnapshotSource => {
                f.write_str("ERR WAL compaction unavailable: no snapshot source registered")
            }
            WalError::CompactionFailed { cause } => write!(f, "ERR WAL compaction failed: {cause}"),
            WalError::ShutDown => f.write_str("ERR WAL is shut down"),
        }
    }
}

impl std::error::Error for WalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WalError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
