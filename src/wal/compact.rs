//! Background compaction: rewrite the log as a snapshot of the store plus every write that
//! happened while the snapshot was taken, then atomically swap it in.
//!
//! Steps (the no-loss argument is in `docs/persistence.md`):
//! 1. Under the buffer mutex: set `is_compacting`, start the rewrite buffer (every append from
//!    now on is copied into it).
//! 2. With no WAL lock held: snapshot the store one shard at a time into memory (under that
//!    shard's lock, inside `SnapshotSource::snapshot_shard`) and write each shard's records to
//!    `kvserver.wal.compact.tmp` after the shard is unlocked.
//! 3. Drain the rewrite buffer into the temp file in big chunks, swapping it out under the
//!    buffer mutex and writing without it; then fdatasync the temp file, still without a WAL
//!    lock, so the flusher never waits for the snapshot's writeback.
//! 4. Under the I/O mutex (+ the buffer mutex for a swap): take the last remainder, stop the
//!    rewrite buffer, take the old log's pending bytes; release the buffer mutex; write those
//!    pending bytes to the OLD log (so a crash before the rename loses nothing), write the
//!    remainder to the temp file, fsync it, lower the synced watermark to the new file's length
//!    if it was larger (so it holds for either file after a crash), rename it over the log, fsync
//!    the directory, switch the writer to the new file, clear the flag.
//!
//! It owns the temp file. It must never hold a WAL lock while calling into the store, never do
//! I/O under the buffer mutex, and never leave the log replaced by an incomplete file: on any
//! error before the rename the temp file is removed and the old log stays the log.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use super::fault::{crash_point_from_env, maybe_crash, CrashPoint};
use super::log_buf::LogBuf;
use super::record::file_header;
use super::writer::sync_dir;
use super::{FsyncPolicy, SnapshotSource, Wal, WalError, COMPACT_TMP_FILE_NAME};

/// Below this, the rewrite buffer's remainder is written under the I/O mutex at the switch.
const DRAIN_FINAL_THRESHOLD: usize = 256 * 1024;

impl Wal {
    /// `COMPACT` / `BGREWRITEAOF`: starts a background rewrite of the log from a store snapshot.
    /// Err(AlreadyCompacting) if one runs, Err(NoSnapshotSource) before `set_snapshot_source`.
    pub fn start_compaction(self: &Arc<Self>) -> Result<(), WalError> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(WalError::ShutDown);
        }
        let src = self
            .snapshot_source
            .lock()
            .clone()
            .ok_or(WalError::NoSnapshotSource)?;
        let mut slot = self.compactor.lock();
        let mut started = Err(WalError::AlreadyCompacting);
        src.begin_snapshot(&mut || {
            let mut b = self.buf.lock();
            if b.rewrite.is_some() || self.is_compacting.load(Ordering::Acquire) {
                return;
            }
            b.rewrite = Some(LogBuf::default());
            // The rewrite buffer follows a snapshot that ends in database 0. If the log is in
            // another one, both streams get a `Select` with the next database-scoped append.
            if b.db != Some(0) {
                b.db = None;
            }
            self.is_compacting.store(true, Ordering::Release);
            let c = &self.counters;
            c.changes_at_snapshot
                .store(c.changes.load(Ordering::Relaxed), Ordering::Relaxed);
            c.compaction_started_unix_ms
                .store(crate::store::now_ms().max(1), Ordering::Relaxed);
            started = Ok(());
        });
        started?;
        // A finished previous compaction's handle: reap it.
        if let Some(old) = slot.take() {
            let _ = old.join();
        }
        let wal = Arc::clone(self);
        let spawned = thread::Builder::new()
            .name("wal-compact".into())
            .spawn(move || wal.run_compaction(src));
        match spawned {
            Ok(h) => {
                *slot = Some(h);
                Ok(())
            }
            Err(e) => {
                self.buf.lock().rewrite = None;
                self.counters
                    .compaction_started_unix_ms
                    .store(0, Ordering::Relaxed);
                self.is_compacting.store(false, Ordering::Release);
                Err(WalError::io("spawning the compaction thread for", &self.path, e))
            }
        }
    }

    /// Waits for the running (or last) compaction and returns its result; Ok if none ran.
    /// For tests, `shutdown`, and an operator command that wants to wait.
    pub fn wait_compaction(&self) -> Result<(), WalError> {
        let handle = self.compactor.lock().take();
        match handle {
            None => Ok(()),
            Some(h) => h.join().unwrap_or_else(|_| {
                Err(WalError::CompactionFailed {
                    cause: "compaction thread panicked".into(),
                })
            }),
        }
    }

    fn run_compaction(&self, src: Arc<dyn SnapshotSource>) -> Result<(), WalError> {
        let t0 = Instant::now();
        let tmp_path = self.cfg.dir.join(COMPACT_TMP_FILE_NAME);
        let res = self.compact(&*src, &tmp_path);
        match &res {
            Ok(size) => {
                let ms = t0.elapsed().as_millis() as u64;
                self.counters.compactions.fetch_add(1, Ordering::Relaxed);
                self.counters.last_compaction_ms.store(ms, Ordering::Relaxed);
                let c = &self.counters;
                c.changes_at_last_save
                    .store(c.changes_at_snapshot.load(Ordering::Relaxed), Ordering::Relaxed);
                c.last_save_unix
                    .store(crate::store::now_ms() / 1000, Ordering::Relaxed);
                c.last_compaction_failed.store(false, Ordering::Relaxed);
                tracing::info!(path = %self.path.display(), size, ms, "WAL compacted");
            }
            Err(e) => {
                self.buf.lock().rewrite = None;
                let _ = fs::remove_file(&tmp_path);
                self.counters.compaction_failures.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .last_compaction_failed
                    .store(true, Ordering::Relaxed);
                // Do not retry automatically until the log grows again.
                let size = self.counters.file_size.load(Ordering::Relaxed);
                self.counters.compact_base_size.store(size, Ordering::Relaxed);
                tracing::error!(path = %self.path.display(), "WAL compaction abandoned, the old log stays in use: {e}");
            }
        }
        self.counters
            .compaction_started_unix_ms
            .store(0, Ordering::Relaxed);
        self.is_compacting.store(false, Ordering::Release);
        res.map(|_| ())
    }

    /// Steps 2–4. Returns the new log size.
    fn compact(&self, src: &dyn SnapshotSource, tmp_path: &std::path::Path) -> Result<u64, WalError> {
        let crash_at = crash_point_from_env();
        let tmp_err = |op, e| WalError::io(op, tmp_path, e);
        let tmp = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp_path)
            .map_err(|e| tmp_err("creating", e))?;
        let header = file_header();
        tmp.write_all_at(&header, 0).map_err(|e| tmp_err("writing", e))?;
        let mut off = header.len() as u64;
        let mut chunk: Vec<u8> = Vec::with_capacity(1024 * 1024);

        // Step 2: snapshot shard by shard; encode under the shard lock, write after it.
        for i in 0..src.shard_count() {
            if self.stopping.load(Ordering::SeqCst) {
                return Err(WalError::ShutDown);
            }
            src.snapshot_shard(i, &mut |rec| rec.encode(&mut chunk));
            tmp.write_all_at(&chunk, off).map_err(|e| tmp_err("writing", e))?;
            off += chunk.len() as u64;
            chunk.clear();
        }

        // Step 3: drain the rewrite buffer in big chunks without holding the buffer mutex
        // during the write.
        let mut drained = LogBuf::default();
        loop {
            {
                let mut b = self.buf.lock();
                let Some(rw) = b.rewrite.as_mut() else {
                    return Err(WalError::CompactionFailed {
                        cause: "rewrite buffer vanished".into(),
                    });
                };
                if rw.len() < DRAIN_FINAL_THRESHOLD {
                    break;
                }
                std::mem::swap(rw, &mut drained);
            }
            drained
                .write_all_at(&tmp, off, 0)
                .map_err(|e| tmp_err("writing", e))?;
            off += drained.len() as u64;
            drained.clear();
        }
        drop(chunk);
        // The snapshot's bulk goes to the disk now, without the I/O mutex: the fsync in step 4
        // then covers only the last remainder, so the flusher (and group commit) waits for a
        // small write, not for the whole snapshot's writeback.
        tmp.sync_data().map_err(|e| tmp_err("fsyncing", e))?;

        // Step 4: the switch, under the I/O mutex so no other writer touches either file.
        let mut io = self.io.lock();
        let switch_lsn = {
            let mut b = self.buf.lock();
            drained = b.rewrite.take().unwrap_or_default();
            b.move_pending_into(&mut io.carry);
            b.appended_lsn
        };
        // Flush the old log's pending bytes so a crash before the rename loses nothing.
        // A failure here is recorded (MISCONF) but does not stop the compaction: the new file
        // holds these records too, and the switch makes the held-back bytes redundant.
        let sync_old = self.fsync() != FsyncPolicy::Never;
        if let Err(e) = self.write_carry(&mut io, switch_lsn, sync_old) {
            tracing::warn!("flushing the old WAL before the compaction switch failed: {e}");
        }
        drained
            .write_all_at(&tmp, off, 0)
            .map_err(|e| tmp_err("writing", e))?;
        off += drained.len() as u64;
        drop(drained);
        tmp.sync_all().map_err(|e| tmp_err("fsyncing", e))?;
        {
            // The synced watermark must hold for whichever file the path names after a crash:
            // lowered to the new file's length (all fsynced), it holds for both.
            let mut wm = self.watermark.lock();
            if wm.recorded > off && !wm.record(off) {
                return Err(WalError::CompactionFailed {
                    cause: "could not lower the synced watermark".into(),
                });
            }
        }
        maybe_crash(&crash_at, CrashPoint::BeforeRename);
        fs::rename(tmp_path, &self.path).map_err(|e| tmp_err("renaming", e))?;
        maybe_crash(&crash_at, CrashPoint::BeforeDirsync);
        // The rename happened: from here on the path names the new file, so the writer must
        // switch to it whatever happens.
        if let Err(e) = sync_dir(&self.cfg.dir) {
            tracing::error!("compaction: {e}; the rename may not survive a power cut");
        }
        maybe_crash(&crash_at, CrashPoint::AfterRename);
        io.file = tmp;
        io.file_len = off;
        io.carry.clear();
        io.carry_written = 0;
        io.dirty_tail = false;
        io.written_lsn = switch_lsn;
        io.synced_lsn = switch_lsn;
        io.synced_len = off;
        io.log_generation += 1;
        // From here the flusher records lengths of the new file only (see `Wal::record_synced`).
        self.watermark.lock().log_generation = io.log_generation;
        self.counters.file_size.store(off, Ordering::Relaxed);
        self.counters.written_lsn.store(switch_lsn, Ordering::Relaxed);
        self.counters.compact_base_size.store(off, Ordering::Relaxed);
        self.publish_durable(switch_lsn);
        self.clear_failing();
        Ok(off)
    }
}
