//! The live WAL: open + replay, the append buffer, the background flusher, group commit for
//! `always`, `sync_all`, failure handling (MISCONF) and shutdown.
//!
//! It owns the log file handle and every byte appended but not yet written. It must never do I/O
//! or wait for another lock while holding the buffer mutex (appenders hold shard locks), never
//! drop bytes that failed to reach the disk (they stay in `IoState::carry` and are retried), and
//! never leave a partially written batch in the file (it truncates back to the last good length).
//! Lock order: see the module doc in `mod.rs` (shard → buffer; I/O → buffer; I/O → commit).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::fault::{self, Faults};
use super::log_buf::LogBuf;
use super::reader::{count_records_after, read_header, scan, HeaderState, KindCounts, ReadEnd};
use super::record::{file_header, Record};
use super::watermark::{Watermark, SYNCED_FILE_NAME};
use super::{
    create_dir_durably, FsyncPolicy, Lsn, SnapshotSource, WalConfig, WalError, COMPACT_TMP_FILE_NAME,
};
use crate::log_limit::{LogLimiter, DEFAULT_INTERVAL};
use crate::shared_bytes::SharedBytes;

/// A file that cannot be truncated (made immutable, say) fails the same way
/// on every retry: one line per interval.
static TRUNCATE_FAILED_LOG: LogLimiter = LogLimiter::new(DEFAULT_INTERVAL);

/// A `carry` buffer bigger than this is released after a successful write, so one burst does not
/// pin its peak memory forever.
const MAX_RETAINED_BUFFER: usize = 16 * 1024 * 1024;

/// Bytes appended but not yet handed to the writer. Guarded by the buffer mutex.
pub(super) struct BufState {
    /// Appended, not yet taken by a writer.
    pub pending: LogBuf,
    /// While compacting: every append since the compaction started (see `compact.rs`).
    pub rewrite: Option<LogBuf>,
    /// LSN of the end of the last append.
    pub appended_lsn: Lsn,
    /// The database the log's last `Select` switched to (`None`: unknown, so the next
    /// [`Wal::append_in`] writes one). Also covers the rewrite buffer, which restarts at `None`.
    pub db: Option<u32>,
}

impl BufState {
    /// Appends encoded records to the pending bytes (and the rewrite buffer while compacting).
    fn push(&mut self, encoded: &[u8]) {
        self.push_parts(encoded, &[]);
    }

    /// Appends `encoded` with shared `pieces` spliced in (see [`LogBuf`]).
    fn push_parts(&mut self, encoded: &[u8], pieces: &[(usize, SharedBytes)]) {
        let before = self.pending.len();
        self.pending.push_parts(encoded, pieces);
        if let Some(rw) = self.rewrite.as_mut() {
            rw.push_parts(encoded, pieces);
        }
        self.appended_lsn += (self.pending.len() - before) as u64;
    }

    /// Moves every pending byte to the end of `carry`: a swap of the two
    /// buffers when `carry` is empty (no copy, and the allocations are reused),
    /// an append when a failed write left bytes in it.
    pub fn move_pending_into(&mut self, carry: &mut LogBuf) {
        carry.append(&mut self.pending);
    }
}

/// The file side. Guarded by the I/O mutex.
pub(super) struct IoState {
    pub file: File,
    /// Length of the file up to the last successful write: the next write goes here.
    pub file_len: u64,
    /// Bytes taken from `pending` that are not yet written (non-empty only after a failure or
    /// between take and write). Never dropped except when a compaction has made them redundant.
    pub carry: LogBuf,
    /// How much of `carry` a failed attempt already wrote at `file_len..` (partial writes are
    /// kept, as Redis keeps them: when the disk fills, the next attempt continues after them, so
    /// writing resumes as soon as any space frees instead of when the whole batch fits).
    pub carry_written: usize,
    /// Everything up to this LSN is written to the file.
    pub written_lsn: Lsn,
    /// Everything up to this LSN is written and fsynced.
    pub synced_lsn: Lsn,
    /// A failed write could not be truncated back: cut the file at the next good length.
    pub dirty_tail: bool,
    /// Length of the current file at its last completed fsync: what the synced watermark may
    /// record (see `watermark.rs`).
    pub synced_len: u64,
    /// Which file `synced_len` describes: bumped when a compaction switches to a new file.
    pub log_generation: u64,
}

/// Group-commit bookkeeping. Guarded by the commit mutex.
///
/// Followers wait by parking their own thread, registered in `waiters`, so a
/// finished fsync wakes exactly the writers it made durable plus, if others
/// remain, one of them to lead the next round. (A shared condvar with
/// `notify_all` woke all ~50 waiting workers per fsync on the benchmark, four
/// wake-ups per request, which cost more CPU than the writes themselves.)
struct CommitState {
    durable_lsn: Lsn,
    leader_active: bool,
    waiters: Vec<Waiter>,
    next_waiter_id: u64,
    /// Highest LSN a failed write attempt tried to make durable, and a counter of failures, so a
    /// waiting follower can tell that the attempt covering it failed.
    failed_upto: Lsn,
    failure_gen: u64,
}

/// A parked group-commit follower.
struct Waiter {
    id: u64,
    lsn: Lsn,
    thread: std::thread::Thread,
}

impl CommitState {
    /// Wakes (and unregisters) every waiter whose LSN is durable; if waiters
    /// remain and nobody leads, wakes the one with the lowest LSN to lead.
    fn wake_waiters(&mut self) {
        let durable = self.durable_lsn;
        self.waiters.retain(|w| {
            if w.lsn <= durable {
                w.thread.unpark();
                false
            } else {
                true
            }
        });
        if !self.leader_active {
            if let Some(next) = self.waiters.iter().min_by_key(|w| w.lsn) {
                next.thread.unpark();
            }
        }
    }

    /// Wakes and unregisters every waiter (a failure: each checks its own fate).
    fn wake_all(&mut self) {
        for w in self.waiters.drain(..) {
            w.thread.unpark();
        }
    }
}

/// Stops and wakes the flusher without needing the `Wal` (the flusher holds only a `Weak`).
/// Live-changeable WAL settings, read with relaxed loads where `cfg` was read.
struct Tuning {
    fsync: AtomicU8,
    flush_interval_ms: AtomicU64,
    compact_min_size: AtomicU64,
    compact_growth_percent: AtomicU64,
}

impl Tuning {
    fn new(cfg: &WalConfig) -> Tuning {
        Tuning {
            fsync: AtomicU8::new(fsync_to_u8(cfg.fsync)),
            flush_interval_ms: AtomicU64::new(cfg.flush_interval.as_millis() as u64),
            compact_min_size: AtomicU64::new(cfg.compact_min_size),
            compact_growth_percent: AtomicU64::new(cfg.compact_growth_percent),
        }
    }
}

fn fsync_to_u8(policy: FsyncPolicy) -> u8 {
    match policy {
        FsyncPolicy::Always => 0,
        FsyncPolicy::Interval => 1,
        FsyncPolicy::Never => 2,
    }
}

struct FlusherCtl {
    stop: Mutex<bool>,
    wake: Condvar,
}

#[derive(Default)]
pub(super) struct Counters {
    pub appended_lsn: AtomicU64,
    /// Mirror of `IoState::written_lsn`, readable without the I/O mutex.
    pub written_lsn: AtomicU64,
    pub start_lsn: AtomicU64,
    pub bytes_written: AtomicU64,
    pub file_size: AtomicU64,
    pub flushes: AtomicU64,
    pub fsyncs: AtomicU64,
    pub last_flush_us: AtomicU64,
    pub write_errors: AtomicU64,
    pub compactions: AtomicU64,
    pub compaction_failures: AtomicU64,
    pub last_compaction_ms: AtomicU64,
    /// File size after the last compaction (or at open): the auto-compaction growth base.
    pub compact_base_size: AtomicU64,
    pub group_commit_batches: AtomicU64,
    pub commits: AtomicU64,
    /// Writes logged since open ([`Wal::count_changes`]): the base of
    /// `rdb_changes_since_last_save`.
    pub changes: AtomicU64,
    /// `changes` when the running (or last) compaction took its snapshot.
    pub changes_at_snapshot: AtomicU64,
    /// `changes` covered by the last completed compaction.
    pub changes_at_last_save: AtomicU64,
    /// Unix seconds of the last completed compaction, or of open (`LASTSAVE`).
    pub last_save_unix: AtomicU64,
    /// Unix ms when the running compaction started; 0 when none runs.
    pub compaction_started_unix_ms: AtomicU64,
    /// True when the last compaction was abandoned (`rdb_last_bgsave_status:err`).
    pub last_compaction_failed: AtomicBool,
    /// `BGSAVE SCHEDULE` arrived while a compaction ran: the flusher starts
    /// another one as soon as it is over.
    pub compaction_scheduled: AtomicBool,
}

/// The write-ahead log. Shared as `Arc<Wal>` by every worker; see the module doc for the locks.
pub struct Wal {
    pub(super) cfg: WalConfig,
    /// The settings `CONFIG SET` may change while the WAL runs (they start as `cfg`'s).
    tuning: Tuning,
    pub(super) path: PathBuf,
    pub(super) buf: Mutex<BufState>,
    pub(super) io: Mutex<IoState>,
    /// The synced watermark file (taken after the I/O mutex, never before it).
    pub(super) watermark: Mutex<Watermark>,
    commit: Mutex<CommitState>,
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// The current failure episode (leaf lock): logged once when it starts
    /// and once, with its counts, when it ends — never per retry.
    outage: Mutex<Outage>,
    pub(super) is_compacting: AtomicBool,
    pub(super) snapshot_source: Mutex<Option<Arc<dyn SnapshotSource>>>,
    flusher_ctl: Arc<FlusherCtl>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    pub(super) compactor: Mutex<Option<JoinHandle<Result<(), WalError>>>>,
    pub(super) stopping: AtomicBool,
    pub(super) counters: Counters,
    pub(super) faults: Faults,
}

/// One stretch of failing writes, for the recovery log line.
#[derive(Default)]
struct Outage {
    since: Option<Instant>,
    failed_attempts: u64,
}

impl Outage {
    /// Ends the episode: how many attempts failed and for how long.
    fn end(&mut self) -> (u64, Duration) {
        let lasted = self.since.take().map_or(Duration::ZERO, |t| t.elapsed());
        (std::mem::take(&mut self.failed_attempts), lasted)
    }
}

/// What `Wal::open` found and did, for the startup log line and `INFO`.
#[derive(Clone, Debug)]
pub struct ReplayReport {
    /// Records replayed, by kind.
    pub records: KindCounts,
    /// Bytes of valid records replayed (header excluded).
    pub bytes: u64,
    /// Wall time of the replay.
    pub elapsed: Duration,
    /// Replay speed.
    pub records_per_sec: f64,
    /// Bytes cut from the end of the file (torn tail, damage after the synced watermark, or
    /// corruption with `truncate_corrupt`).
    pub truncated_bytes: u64,
    /// Valid records found after the damage and dropped with it (damage after the synced
    /// watermark, or corruption with `truncate_corrupt`): writes that had not been fsynced.
    pub dropped_records: u64,
    /// How the log ended before any truncation.
    pub end: ReadEnd,
}

impl std::fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "replayed {} records ({}), {} bytes in {:.3}s ({:.0} records/s), truncated {} bytes",
            self.records.total(),
            self.records,
            self.bytes,
            self.elapsed.as_secs_f64(),
            self.records_per_sec,
            self.truncated_bytes
        )?;
        if self.dropped_records > 0 {
            write!(f, " holding {} later records", self.dropped_records)?;
        }
        Ok(())
    }
}

/// A point-in-time copy of the WAL counters for `INFO` / `STATS`. Cheap: atomics only, plus the
/// leaf `last_error` lock.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WalStats {
    /// The configured policy.
    pub policy: FsyncPolicy,
    /// Bytes appended since open.
    pub bytes_appended: u64,
    /// Bytes written to the log file since open (compaction output excluded).
    pub bytes_written: u64,
    /// Current size of the log file.
    pub file_size: u64,
    /// Bytes appended but not yet written (includes bytes held back by a failure).
    pub pending_bytes: u64,
    /// LSN of the last append.
    pub appended_lsn: Lsn,
    /// Everything up to this LSN is fsynced.
    pub durable_lsn: Lsn,
    /// Successful writes of a batch to the log.
    pub flushes: u64,
    /// Successful fdatasyncs of the log.
    pub fsyncs: u64,
    /// Duration of the last successful write(+fsync).
    pub last_flush_duration: Duration,
    /// Failed writes or fsyncs since open.
    pub write_errors: u64,
    /// True while writes are refused (`check_writable` errs).
    pub failing: bool,
    /// The last write/fsync error, kept after recovery for diagnosis.
    pub last_error: Option<String>,
    /// Completed compactions.
    pub compactions: u64,
    /// Abandoned compactions.
    pub compaction_failures: u64,
    /// Duration of the last completed compaction, in milliseconds.
    pub last_compaction_ms: u64,
    /// True while a compaction runs.
    pub compacting: bool,
    /// `always` only: write+fsync batches led by a committer (group-commit leaders).
    pub group_commit_batches: u64,
    /// `always` only: `commit` calls; `commits / group_commit_batches` is the sharing factor.
    pub commits: u64,
    /// Writes logged since the snapshot of the last completed compaction
    /// began (Redis's `rdb_changes_since_last_save`).
    pub changes_since_last_save: u64,
    /// Unix seconds of the last completed compaction, or of open (`LASTSAVE`).
    pub last_save_unix: u64,
    /// Seconds the running compaction has taken so far; None when none runs.
    pub compaction_running_secs: Option<u64>,
    /// False when the last compaction was abandoned.
    pub last_compaction_ok: bool,
    /// File size after the last compaction, or at open (`aof_base_size`).
    pub base_size: u64,
}

impl Wal {
    /// Creates `dir` if missing (durably), removes leftover compaction temp files, opens/creates
    /// `dir/kvserver.wal` (writing the file header if new), replays every record through `apply`
    /// in file order, truncates a torn tail (warning with how many bytes were dropped), refuses
    /// mid-file corruption with an error naming the file and byte offset unless
    /// `truncate_corrupt` — except damage at or after the synced watermark, which only unsynced
    /// bytes can hold: that is truncated as a torn tail with a warning naming the bytes and
    /// records dropped. Refuses an unknown magic/version. fsyncs the log and records its length
    /// as the new watermark, then starts the background flusher thread. Returns the WAL and a
    /// report.
    pub fn open(cfg: WalConfig, apply: impl FnMut(Record<'_>)) -> Result<(Arc<Wal>, ReplayReport), WalError> {
        let dir = cfg.dir.clone();
        create_dir_durably(&dir).map_err(|e| WalError::io("creating directory", &dir, e))?;
        // Read before anything is written: it describes the log as the last run left it.
        let synced_bound = match Watermark::read(&dir) {
            Ok(bound) => bound,
            Err(e) => {
                tracing::warn!(path = %dir.join(SYNCED_FILE_NAME).display(), "cannot read the WAL synced watermark: {e}; treating any damage as corruption");
                None
            }
        };
        let tmp = dir.join(COMPACT_TMP_FILE_NAME);
        match fs::remove_file(&tmp) {
            Ok(()) => {
                tracing::warn!(path = %tmp.display(), "removed a leftover compaction temp file (interrupted compaction)")
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(WalError::io("removing", &tmp, e)),
        }
        let path = cfg.log_path();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| WalError::io("opening", &path, e))?;
        let mut len = file
            .metadata()
            .map_err(|e| WalError::io("reading metadata of", &path, e))?
            .len();
        if read_header(&file, &path, len)? == HeaderState::New {
            if len == 0 {
                // Said loudly: on a first start it is expected, but after the log (or the data
                // directory) was deleted it is the moment data goes missing.
                tracing::warn!(path = %path.display(), "no WAL found: starting with an empty data set (first start, or the log was deleted)");
            }
            file.set_len(0)
                .map_err(|e| WalError::io("truncating", &path, e))?;
            let h = file_header();
            file.write_all_at(&h, 0)
                .map_err(|e| WalError::io("writing the header of", &path, e))?;
            file.sync_all().map_err(|e| WalError::io("fsyncing", &path, e))?;
            sync_dir(&dir)?;
            len = h.len() as u64;
        }

        let t0 = Instant::now();
        // The database the log ends in, so appends continue there without a `Select`.
        let mut last_db = 0u32;
        let mut apply = apply;
        let outcome = scan(&file, &path, len, |record| {
            if let Record::Select { db } = record {
                last_db = db;
            }
            apply(record)
        })?;
        let elapsed = t0.elapsed();
        let mut truncated_bytes = 0;
        let mut dropped_records = 0;
        match outcome.end {
            ReadEnd::CleanEnd => {}
            ReadEnd::TornTail {
                offset,
                dropped_bytes,
            } => {
                tracing::warn!(
                    path = %path.display(), offset, dropped_bytes,
                    "WAL ends with a torn record (interrupted write); truncating {dropped_bytes} bytes at offset {offset}"
                );
                truncate_to(&file, &path, offset)?;
                truncated_bytes = dropped_bytes;
            }
            ReadEnd::Corrupt {
                offset,
                next_valid_offset,
                reason,
            } if synced_bound.is_some_and(|synced| offset >= synced) => {
                // Only bytes written after the last completed fsync can be damaged here: a power
                // cut wrote back some of those pages and not others. Nothing fsynced is dropped.
                let synced = synced_bound.unwrap_or(offset);
                let dropped_bytes = len - offset;
                dropped_records = count_records_after(&file, &path, offset, len)?;
                tracing::warn!(
                    path = %path.display(), offset, next_valid_offset, reason, synced, dropped_bytes, dropped_records,
                    "WAL is damaged at offset {offset} ({reason}), past the {synced} bytes recorded as fsynced: \
                     a torn tail of unsynced writes (a power cut wrote back part of them); truncating \
                     {dropped_bytes} bytes holding {dropped_records} later records"
                );
                truncate_to(&file, &path, offset)?;
                truncated_bytes = dropped_bytes;
            }
            ReadEnd::Corrupt {
                offset,
                next_valid_offset,
                reason,
            } => {
                if !cfg.truncate_corrupt {
                    return Err(WalError::Corrupt { path, offset, reason });
                }
                tracing::error!(
                    path = %path.display(), offset, next_valid_offset, reason,
                    "WAL is corrupt mid-file; truncate_corrupt is set: dropping {} bytes from offset {offset}",
                    len - offset
                );
                dropped_records = count_records_after(&file, &path, offset, len)?;
                truncate_to(&file, &path, offset)?;
                truncated_bytes = len - offset;
            }
        }
        let file_len = outcome.valid_end.min(len);
        if truncated_bytes == 0 {
            // A killed process may have left written but unsynced bytes: make them durable so
            // the watermark can say the whole file is synced (a truncation fsynced already).
            file.sync_data().map_err(|e| WalError::io("fsyncing", &path, e))?;
        }
        let mut watermark = Watermark::open(&dir);
        watermark.record(file_len);
        let records = outcome.counts;
        let report = ReplayReport {
            records,
            bytes: file_len.saturating_sub(super::FILE_HEADER_LEN as u64),
            elapsed,
            records_per_sec: records.total() as f64 / elapsed.as_secs_f64().max(1e-9),
            truncated_bytes,
            dropped_records,
            end: outcome.end,
        };

        let counters = Counters::default();
        counters.appended_lsn.store(file_len, Ordering::Relaxed);
        counters.written_lsn.store(file_len, Ordering::Relaxed);
        counters.start_lsn.store(file_len, Ordering::Relaxed);
        counters.file_size.store(file_len, Ordering::Relaxed);
        counters.compact_base_size.store(file_len, Ordering::Relaxed);
        counters
            .last_save_unix
            .store(crate::store::now_ms() / 1000, Ordering::Relaxed);
        let wal = Arc::new(Wal {
            buf: Mutex::new(BufState {
                pending: LogBuf::default(),
                rewrite: None,
                appended_lsn: file_len,
                db: Some(last_db),
            }),
            io: Mutex::new(IoState {
                file,
                file_len,
                carry: LogBuf::default(),
                carry_written: 0,
                written_lsn: file_len,
                synced_lsn: file_len,
                dirty_tail: false,
                synced_len: file_len,
                log_generation: 0,
            }),
            watermark: Mutex::new(watermark),
            commit: Mutex::new(CommitState {
                durable_lsn: file_len,
                leader_active: false,
                waiters: Vec::new(),
                next_waiter_id: 0,
                failed_upto: 0,
                failure_gen: 0,
            }),
            failing: AtomicBool::new(false),
            outage: Mutex::new(Outage::default()),
            last_error: Mutex::new(None),
            is_compacting: AtomicBool::new(false),
            snapshot_source: Mutex::new(None),
            tuning: Tuning::new(&cfg),
            flusher_ctl: Arc::new(FlusherCtl {
                stop: Mutex::new(false),
                wake: Condvar::new(),
            }),
            flusher: Mutex::new(None),
            compactor: Mutex::new(None),
            stopping: AtomicBool::new(false),
            counters,
            faults: Faults::default(),
            path,
            cfg,
        });
        let handle = spawn_flusher(&wal)?;
        *wal.flusher.lock() = Some(handle);
        Ok((wal, report))
    }

    /// Registers the store for compaction (called once after open).
    pub fn set_snapshot_source(&self, src: Arc<dyn SnapshotSource>) {
        *self.snapshot_source.lock() = Some(src);
    }

    /// The configuration this WAL was opened with (see [`Wal::fsync`] & co for live values).
    pub fn config(&self) -> &WalConfig {
        &self.cfg
    }

    /// The fsync policy in force (`CONFIG SET fsync` changes it live).
    pub fn fsync(&self) -> FsyncPolicy {
        match self.tuning.fsync.load(Ordering::Relaxed) {
            0 => FsyncPolicy::Always,
            1 => FsyncPolicy::Interval,
            _ => FsyncPolicy::Never,
        }
    }

    /// Changes the fsync policy. Switching to `always` takes effect for the
    /// next commit; writes acknowledged before were covered by the old policy.
    pub fn set_fsync(&self, policy: FsyncPolicy) {
        self.tuning.fsync.store(fsync_to_u8(policy), Ordering::Relaxed);
    }

    /// The flusher's period in force.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.tuning.flush_interval_ms.load(Ordering::Relaxed))
    }

    /// Changes the flusher's period from its next tick on.
    pub fn set_flush_interval(&self, interval: Duration) {
        self.tuning
            .flush_interval_ms
            .store(interval.as_millis().max(1) as u64, Ordering::Relaxed);
        self.flusher_ctl.wake.notify_all();
    }

    /// Changes the automatic compaction thresholds (`compact-min-size`, `compact-growth-percent`).
    pub fn set_compaction_thresholds(&self, min_size: u64, growth_percent: u64) {
        self.tuning.compact_min_size.store(min_size, Ordering::Relaxed);
        self.tuning
            .compact_growth_percent
            .store(growth_percent, Ordering::Relaxed);
    }

    /// Gate checked BEFORE a write command runs: Err when the last write/fsync failed (disk
    /// full, EIO) so the server answers `-MISCONF ...` naming the cause instead of acknowledging.
    /// An atomic load on the happy path.
    pub fn check_writable(&self) -> Result<(), WalError> {
        if !self.failing.load(Ordering::Acquire) {
            return Ok(());
        }
        Err(self.misconf())
    }

    fn misconf(&self) -> WalError {
        let cause = self
            .last_error
            .lock()
            .clone()
            .unwrap_or_else(|| "unknown error".to_string());
        WalError::Misconf { cause }
    }

    /// Appends already-encoded records (one or a whole batch) to the in-memory buffer under the
    /// buffer mutex. The caller holds the shard locks of the keys involved, so this never blocks
    /// on I/O or any other lock: it is a memcpy (two while compacting). Returns the LSN of the
    /// end of this append, to pass to [`Wal::commit`].
    pub fn append(&self, encoded: &[u8]) -> Lsn {
        let mut b = self.buf.lock();
        b.push(encoded);
        self.counters
            .appended_lsn
            .store(b.appended_lsn, Ordering::Relaxed);
        b.appended_lsn
    }

    /// [`Wal::append`] for records of database `db`: writes a `Select` first when the log is
    /// in another database. `encoded` may switch databases itself (MOVE) if it ends in `db`.
    /// A single-database server never pays for the `Select`: the log starts in database 0.
    pub fn append_in(&self, db: u32, encoded: &[u8]) -> Lsn {
        self.append_parts_in(db, encoded, &[])
    }

    /// [`Wal::append_in`] where big values are shared pieces spliced into
    /// `encoded` at their offsets (see [`LogBuf`]), not copies: appending a
    /// 512 MiB `SET` copies its few header bytes.
    pub fn append_parts_in(&self, db: u32, encoded: &[u8], pieces: &[(usize, SharedBytes)]) -> Lsn {
        let mut b = self.buf.lock();
        if b.db != Some(db) {
            // Allocates only when the log changes database.
            let mut select = Vec::with_capacity(16);
            Record::Select { db }.encode(&mut select);
            b.push(&select);
            b.db = Some(db);
        }
        b.push_parts(encoded, pieces);
        self.counters
            .appended_lsn
            .store(b.appended_lsn, Ordering::Relaxed);
        b.appended_lsn
    }

    /// Called after the shard locks are released, before replying. `Always`: blocks until `lsn`
    /// is written and fdatasync'ed, by group commit (one leader writes + syncs everything
    /// appended so far while the others wait on a condvar, so concurrent writers share fsyncs).
    /// `Interval` / `Never`: returns at once. Err (MISCONF) if the write covering `lsn` failed.
    pub fn commit(&self, lsn: Lsn) -> Result<(), WalError> {
        if self.fsync() != FsyncPolicy::Always {
            return Ok(());
        }
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        let mut st = self.commit.lock();
        let gen = st.failure_gen;
        let mut registered: Option<u64> = None;
        let result = loop {
            if st.durable_lsn >= lsn {
                break Ok(());
            }
            if st.failure_gen != gen && st.failed_upto >= lsn {
                break Err(None);
            }
            if !st.leader_active {
                if let Some(id) = registered.take() {
                    st.waiters.retain(|w| w.id != id);
                }
                st.leader_active = true;
                let res = MutexGuard::unlocked(&mut st, || {
                    let mut io = self.io.lock();
                    self.counters.group_commit_batches.fetch_add(1, Ordering::Relaxed);
                    let target = self.take_pending(&mut io);
                    self.write_carry(&mut io, target, true)
                });
                st.leader_active = false;
                st.wake_waiters();
                if let Err(e) = res {
                    break Err(Some(e));
                }
                continue;
            }
            // Follow: park until a leader's fsync covers `lsn`, a failure, or we are asked to lead.
            let still_registered = registered.is_some_and(|id| st.waiters.iter().any(|w| w.id == id));
            if !still_registered {
                let id = st.next_waiter_id;
                st.next_waiter_id += 1;
                st.waiters.push(Waiter {
                    id,
                    lsn,
                    thread: std::thread::current(),
                });
                registered = Some(id);
            }
            MutexGuard::unlocked(&mut st, std::thread::park);
        };
        if let Some(id) = registered {
            st.waiters.retain(|w| w.id != id);
        }
        drop(st);
        // The failure's cause is read outside the commit mutex (`last_error` is a leaf lock).
        result.map_err(|e| e.unwrap_or_else(|| self.misconf()))
    }

    /// The `FLUSH` command: returns once everything appended before the call is written and
    /// fsynced, whatever the policy.
    /// It also records the synced watermark, so after `FLUSH` damage anywhere in what it
    /// synced is refused on start, not truncated.
    pub fn sync_all(&self) -> Result<(), WalError> {
        let target = self.buf.lock().appended_lsn;
        {
            let mut io = self.io.lock();
            if io.synced_lsn < target || !io.carry.is_empty() {
                let t = self.take_pending(&mut io);
                self.write_carry(&mut io, t, true)?;
            }
        }
        self.record_synced();
        Ok(())
    }

    /// Writes the current file's synced length to the watermark if it grew. Called without the
    /// I/O mutex (the watermark's own fsync must not hold up group commit); a compaction that
    /// switched files in between bumped the generation, and the stale length is not written.
    pub(super) fn record_synced(&self) {
        let (generation, synced_len) = {
            let io = self.io.lock();
            (io.log_generation, io.synced_len)
        };
        let mut wm = self.watermark.lock();
        if wm.log_generation == generation && synced_len > wm.recorded {
            wm.record(synced_len);
        }
    }

    /// True while a compaction runs (the `is_compacting` flag).
    pub fn is_compacting(&self) -> bool {
        self.is_compacting.load(Ordering::Acquire)
    }

    /// Counters for `INFO` / `STATS`.
    pub fn stats(&self) -> WalStats {
        let c = &self.counters;
        let appended = c.appended_lsn.load(Ordering::Relaxed);
        let durable = self.commit.lock().durable_lsn;
        let written = c.written_lsn.load(Ordering::Relaxed);
        WalStats {
            policy: self.fsync(),
            bytes_appended: appended - c.start_lsn.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            file_size: c.file_size.load(Ordering::Relaxed),
            pending_bytes: appended.saturating_sub(written),
            appended_lsn: appended,
            durable_lsn: durable,
            flushes: c.flushes.load(Ordering::Relaxed),
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            last_flush_duration: Duration::from_micros(c.last_flush_us.load(Ordering::Relaxed)),
            write_errors: c.write_errors.load(Ordering::Relaxed),
            failing: self.failing.load(Ordering::Acquire),
            last_error: self.last_error.lock().clone(),
            compactions: c.compactions.load(Ordering::Relaxed),
            compaction_failures: c.compaction_failures.load(Ordering::Relaxed),
            last_compaction_ms: c.last_compaction_ms.load(Ordering::Relaxed),
            compacting: self.is_compacting(),
            group_commit_batches: c.group_commit_batches.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            changes_since_last_save: c
                .changes
                .load(Ordering::Relaxed)
                .saturating_sub(c.changes_at_last_save.load(Ordering::Relaxed)),
            last_save_unix: c.last_save_unix.load(Ordering::Relaxed),
            compaction_running_secs: match c.compaction_started_unix_ms.load(Ordering::Relaxed) {
                0 => None,
                started => Some(crate::store::now_ms().saturating_sub(started) / 1000),
            },
            last_compaction_ok: !c.last_compaction_failed.load(Ordering::Relaxed),
            base_size: c.compact_base_size.load(Ordering::Relaxed),
        }
    }

    /// `BGSAVE SCHEDULE` while a compaction runs: start another one after it.
    pub fn schedule_compaction(&self) {
        self.counters.compaction_scheduled.store(true, Ordering::Relaxed);
    }

    /// True while a compaction waits for the running one to end.
    pub fn compaction_scheduled(&self) -> bool {
        self.counters.compaction_scheduled.load(Ordering::Relaxed)
    }

    /// Counts `n` logged writes (commands that changed the keyspace), for
    /// `rdb_changes_since_last_save`. The executor calls it once per batch,
    /// beside the append that already touches these counters.
    pub fn count_changes(&self, n: u64) {
        if n != 0 {
            self.counters.changes.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Clean shutdown: stop the flusher (and wait for a running compaction to finish or
    /// abandon), then write + fsync everything appended. Idempotent.
    pub fn shutdown(&self) -> Result<(), WalError> {
        self.stopping.store(true, Ordering::SeqCst);
        {
            let mut stop = self.flusher_ctl.stop.lock();
            *stop = true;
            self.flusher_ctl.wake.notify_all();
        }
        let me = thread::current().id();
        if let Some(h) = self.flusher.lock().take() {
            if h.thread().id() != me && h.join().is_err() {
                tracing::error!("WAL flusher thread panicked");
            }
        }
        let compactor = self.compactor.lock().take();
        if let Some(h) = compactor {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
        let res = {
            let mut io = self.io.lock();
            let t = self.take_pending(&mut io);
            self.write_carry(&mut io, t, true)
        };
        self.record_synced();
        res
    }

    /// Moves `pending` into `io.carry` (a swap when nothing is held back) and returns the LSN
    /// the carry then reaches. Holds the buffer mutex only for that swap/memcpy.
    pub(super) fn take_pending(&self, io: &mut IoState) -> Lsn {
        let mut b = self.buf.lock();
        b.move_pending_into(&mut io.carry);
        b.appended_lsn
    }

    /// Writes `io.carry` at the good end of the file and, if `sync`, fdatasyncs. On a failed
    /// write, what reached the file stays there (`carry_written`) and the next attempt continues
    /// after it; on a failed fsync the file is truncated back to its last good length. Either
    /// way the bytes stay in `carry` for the next attempt and the WAL is marked failing.
    /// `target` is the LSN `carry` reaches.
    pub(super) fn write_carry(&self, io: &mut IoState, target: Lsn, sync: bool) -> Result<(), WalError> {
        let t0 = Instant::now();
        if let Err(e) = check_linked(&io.file) {
            return Err(self.fail("writing", &e, target));
        }
        if !io.carry.is_empty() {
            let good = io.file_len;
            if let Err(e) = self.write_rest(io, good) {
                return Err(self.fail("writing", &e, target));
            }
            let new_len = good + io.carry.len() as u64;
            if sync {
                if let Err(e) = self.faults.sync_fault().and_then(|()| io.file.sync_data()) {
                    // After a failed fsync the kernel may have dropped the dirty pages: do not
                    // trust what was written, rewrite it all on the next attempt.
                    self.roll_back(io, good);
                    io.carry_written = 0;
                    return Err(self.fail("fsyncing", &e, target));
                }
            }
            io.carry_written = 0;
            if io.dirty_tail && io.file.set_len(new_len).is_ok() {
                io.dirty_tail = false;
            }
            io.file_len = new_len;
            let c = &self.counters;
            c.file_size.store(new_len, Ordering::Relaxed);
            c.bytes_written
                .fetch_add(io.carry.len() as u64, Ordering::Relaxed);
            c.flushes.fetch_add(1, Ordering::Relaxed);
            if io.carry.capacity() > MAX_RETAINED_BUFFER {
                io.carry.release();
            } else {
                io.carry.clear();
            }
            io.written_lsn = target;
            c.written_lsn.store(target, Ordering::Relaxed);
        } else {
            io.written_lsn = io.written_lsn.max(target);
            self.counters.written_lsn.store(io.written_lsn, Ordering::Relaxed);
            if !sync || io.synced_lsn >= io.written_lsn {
                return Ok(());
            }
            if let Err(e) = self.faults.sync_fault().and_then(|()| io.file.sync_data()) {
                return Err(self.fail("fsyncing", &e, target));
            }
        }
        if sync {
            io.synced_lsn = io.written_lsn;
            io.synced_len = io.file_len;
            self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            self.publish_durable(io.synced_lsn);
        }
        self.counters
            .last_flush_us
            .store(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
        self.end_outage("WAL writes succeed again");
        Ok(())
    }

    /// Writes the part of `carry` not yet in the file, at `good + carry_written`, counting
    /// every byte that lands so a failure part-way keeps them.
    fn write_rest(&self, io: &mut IoState, good: u64) -> io::Result<()> {
        let fault = self.faults.write_fault(io.carry.len() - io.carry_written);
        let end = fault.map_or(io.carry.len(), |n| io.carry_written + n);
        while io.carry_written < end {
            let at = good + io.carry_written as u64;
            let run = io.carry.run_at(io.carry_written);
            let run = &run[..run.len().min(end - io.carry_written)];
            match io.file.write_at(run, at) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => io.carry_written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        match fault {
            Some(_) => Err(fault::enospc()),
            None => Ok(()),
        }
    }

    /// Truncates the file back to `good` after a failed fsync (its pages cannot be trusted).
    fn roll_back(&self, io: &mut IoState, good: u64) {
        if let Err(e) = io.file.set_len(good) {
            crate::error_limited!(TRUNCATE_FAILED_LOG, path = %self.path.display(), good, "could not truncate the WAL back to its last good length: {e}");
            io.dirty_tail = true;
        }
    }

    /// Records a failed write/fsync: counters, last error, the failing flag, a log line (at
    /// error level on the first failure or a new cause, debug on repeated retries), and wakes
    /// group-commit followers whose records were in the failed batch.
    fn fail(&self, op: &str, e: &io::Error, target: Lsn) -> WalError {
        let cause = e.to_string();
        self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
        {
            let mut last = self.last_error.lock();
            let was_failing = self.failing.load(Ordering::Acquire);
            if !was_failing || last.as_deref() != Some(cause.as_str()) {
                tracing::error!(path = %self.path.display(), "error {op} the WAL: {cause}; refusing writes (MISCONF) and retrying every {:?}", self.flush_interval());
            } else {
                tracing::debug!(path = %self.path.display(), "WAL retry failed {op}: {cause}");
            }
            *last = Some(cause.clone());
            self.failing.store(true, Ordering::Release);
        }
        {
            let mut outage = self.outage.lock();
            outage.since.get_or_insert_with(Instant::now);
            outage.failed_attempts += 1;
        }
        {
            let mut st = self.commit.lock();
            st.failed_upto = st.failed_upto.max(target);
            st.failure_gen += 1;
            st.wake_all();
        }
        WalError::Misconf { cause }
    }

    /// Publishes a new durable LSN to group-commit waiters. Called with the I/O mutex held.
    pub(super) fn publish_durable(&self, lsn: Lsn) {
        let mut st = self.commit.lock();
        if lsn > st.durable_lsn {
            st.durable_lsn = lsn;
            st.wake_waiters();
        }
    }

    /// Clears the failing state after a compaction made the held-back bytes redundant.
    pub(super) fn clear_failing(&self) {
        self.end_outage("WAL rewritten by compaction");
    }

    /// Clears the failing flag, if set, and logs the outage's end once, with its counts.
    fn end_outage(&self, how: &str) {
        if self.failing.swap(false, Ordering::AcqRel) {
            let (failed_attempts, lasted) = self.outage.lock().end();
            tracing::warn!(
                path = %self.path.display(),
                failed_attempts,
                "{how} after {failed_attempts} failed attempts over {:.1} s; accepting writes",
                lasted.as_secs_f64()
            );
        }
    }

    /// One flusher tick: write (and fsync unless `never`) what was appended, record the synced
    /// watermark if an fsync (this one, a group commit's, `FLUSH`'s) moved it, then consider an
    /// automatic compaction.
    fn tick(self: &Arc<Self>) {
        {
            let mut io = self.io.lock();
            let t = self.take_pending(&mut io);
            let sync = self.fsync() != FsyncPolicy::Never;
            // Errors are recorded (failing flag, log) inside; the next tick retries.
            let _ = self.write_carry(&mut io, t, sync);
        }
        self.record_synced();
        self.maybe_auto_compact();
    }

    fn maybe_auto_compact(self: &Arc<Self>) {
        if self.counters.compaction_scheduled.load(Ordering::Relaxed)
            && !self.is_compacting()
            && self.counters.compaction_scheduled.swap(false, Ordering::Relaxed)
        {
            tracing::info!("starting the compaction BGSAVE SCHEDULE asked for");
            if let Err(e) = self.start_compaction() {
                tracing::warn!("scheduled compaction not started: {e}");
            }
            return;
        }
        let growth = self.tuning.compact_growth_percent.load(Ordering::Relaxed);
        if growth == 0 || self.is_compacting() || self.snapshot_source.lock().is_none() {
            return;
        }
        let size = self.counters.file_size.load(Ordering::Relaxed);
        let base = self.counters.compact_base_size.load(Ordering::Relaxed);
        if size > self.tuning.compact_min_size.load(Ordering::Relaxed)
            && size as u128 * 100 >= base as u128 * (100 + growth as u128)
        {
            tracing::info!(size, base, "WAL grew past the compaction threshold; compacting");
            if let Err(e) = self.start_compaction() {
                tracing::debug!("automatic compaction not started: {e}");
            }
        }
    }
}

impl Drop for Wal {
    /// Best effort: a WAL dropped without `shutdown` still writes and fsyncs what it holds.
    fn drop(&mut self) {
        if !self.stopping.load(Ordering::SeqCst) {
            if let Err(e) = self.shutdown() {
                tracing::error!("WAL shutdown on drop failed: {e}");
            }
        }
    }
}

fn spawn_flusher(wal: &Arc<Wal>) -> Result<JoinHandle<()>, WalError> {
    let weak: Weak<Wal> = Arc::downgrade(wal);
    let ctl = Arc::clone(&wal.flusher_ctl);
    thread::Builder::new()
        .name("wal-flusher".into())
        .spawn(move || {
            // Ticks start `flush_interval` apart, not `flush_interval` after the previous tick
            // ended: the time a tick takes (its fdatasync, the watermark's) does not add to the
            // window of writes a power cut can lose under `interval`.
            let mut last_start = Instant::now();
            loop {
                // Read every tick: `CONFIG SET flush-interval-ms` applies from the next one.
                let interval = match weak.upgrade() {
                    Some(wal) => wal.flush_interval(),
                    None => return,
                };
                {
                    let mut stop = ctl.stop.lock();
                    if !*stop {
                        ctl.wake.wait_until(&mut stop, last_start + interval);
                    }
                    if *stop {
                        return;
                    }
                }
                let Some(wal) = weak.upgrade() else { return };
                last_start = Instant::now();
                wal.tick();
            }
        })
        .map_err(|e| WalError::io("spawning the flusher for", &wal.path, e))
}

fn truncate_to(file: &File, path: &Path, len: u64) -> Result<(), WalError> {
    file.set_len(len)
        .map_err(|e| WalError::io("truncating", path, e))?;
    file.sync_all().map_err(|e| WalError::io("fsyncing", path, e))
}

/// fsyncs a directory so a create or rename inside it survives a power cut.
pub(super) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("fsyncing directory", dir, e))
}

/// Fails when the open log is no longer the log: its directory entry was removed (`rm`, or the
/// whole data directory deleted), so whatever is written to it is lost at the next restart.
/// One `fstat` per write or flush tick; `nlink` is 0 exactly when no name points to the file.
fn check_linked(file: &File) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    match file.metadata() {
        Ok(m) if m.nlink() == 0 => Err(io::Error::other(
            "the WAL file was deleted (link count 0; data directory removed?): COMPACT writes a new one",
        )),
        _ => Ok(()),
    }
}
