//! Recovery at startup, run in the background while the listener already
//! answers.
//!
//! The listener is bound before the WAL is read, so a busy port fails in
//! milliseconds instead of after a replay of minutes. While the `kv-loader`
//! thread replays, `ServerState::is_loading` is true and the command
//! executor answers every command but a few harmless ones (INFO, AUTH,
//! HELLO, ...) with Redis's `-LOADING` error. When replay ends, the loader
//! installs the WAL and the database table, clears the flag and logs
//! `ready to accept connections` (the line scripts and tests wait for).
//! If replay fails, it requests shutdown and the error becomes the
//! process's exit status.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::replay;
use crate::config::Config;
use crate::state::ServerState;
use crate::store::{Databases, ValueRef};
use crate::wal::{Record, ReplayReport, SnapshotSource, Wal, WalConfig};

/// Test hook: while the file this variable names exists, the loader waits
/// after replaying and before serving, so a test can observe `-LOADING`
/// without racing a fast replay. Unset in production.
pub const HOLD_LOADING_ENV: &str = "KVSERVER_TEST_HOLD_LOADING";

/// Lets the WAL snapshot every database one shard at a time during compaction.
///
/// Snapshot shard `i` is shard `i % shards` of physical store `i / shards`,
/// filed under the logical database that store had when the compaction's
/// rewrite buffer started ([`Databases::begin_snapshot`]). A `Select` record
/// is emitted only where the database changes (a new file starts in
/// database 0), so a single-database snapshot holds none.
struct DatabasesSnapshot {
    dbs: Arc<Databases>,
    /// The database the snapshot's records so far end in (compaction calls
    /// `snapshot_shard` in order, from one thread).
    emitted_db: AtomicU32,
}

impl SnapshotSource for DatabasesSnapshot {
    fn shard_count(&self) -> usize {
        self.dbs.count() * self.dbs.shard_count()
    }

    fn snapshot_shard(&self, i: usize, emit: &mut dyn FnMut(Record<'_>)) {
        if i == 0 {
            // Function libraries first: loaded functions survive compaction.
            let libs = crate::scripting::cache::libraries_snapshot();
            for lib in libs.libs.values() {
                emit(Record::Function {
                    op: 1,
                    data: &lib.code,
                });
            }
        }
        let shards = self.dbs.shard_count();
        let (physical, shard) = (i / shards, i % shards);
        let db = self.dbs.snapshot_label(physical) as u32;
        let mut selected = self.emitted_db.load(Ordering::Relaxed) == db;
        let now = crate::store::now_ms();
        let mut fields = Vec::new();
        self.dbs
            .physical(physical)
            .for_each_in_shard(shard, |key, value, expires_at_ms| {
                if !selected {
                    emit(Record::Select { db });
                    selected = true;
                }
                match value {
                    ValueRef::String(value) => emit(Record::Set {
                        key,
                        value,
                        expires_at_ms,
                    }),
                    ValueRef::Hash(hash) => {
                        crate::command::hash_records(key, hash, now, &mut fields, emit);
                        if expires_at_ms.is_some() {
                            emit(Record::Expire { key, expires_at_ms });
                        }
                    }
                    ValueRef::Collection(value) => {
                        value.snapshot(key, emit);
                        if expires_at_ms.is_some() {
                            emit(Record::Expire { key, expires_at_ms });
                        }
                    }
                }
            });
        if selected {
            self.emitted_db.store(db, Ordering::Relaxed);
        }
        // The snapshot ends in database 0, where the WAL expects it (see `SnapshotSource`).
        if i + 1 == self.shard_count() && self.emitted_db.load(Ordering::Relaxed) != 0 {
            emit(Record::Select { db: 0 });
        }
    }

    fn begin_snapshot(&self, start: &mut dyn FnMut()) {
        self.emitted_db.store(0, Ordering::Relaxed);
        self.dbs.begin_snapshot(start)
    }
}

/// Opens the WAL and replays it into `dbs` (None when `wal = false`).
pub fn recover(
    config: &Config,
    dbs: &Arc<Databases>,
) -> anyhow::Result<(Option<Arc<Wal>>, Option<ReplayReport>)> {
    if !config.wal {
        tracing::warn!("WAL disabled: data lives in memory only and is lost when the server stops");
        return Ok((None, None));
    }
    let started = Instant::now();
    let now = crate::store::now_ms();
    let wal_config = WalConfig {
        dir: config.dir.clone(),
        fsync: config.fsync,
        flush_interval: Duration::from_millis(config.flush_interval_ms),
        truncate_corrupt: config.wal_truncate_corrupt,
        compact_min_size: config.compact_min_size,
        compact_growth_percent: config.compact_growth_percent,
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut replay = replay::ParallelReplay::start(Arc::clone(dbs), threads, now)
        .context("cannot start WAL replay threads")?;
    let opened = Wal::open(wal_config, |record| replay.apply(record));
    let finished = replay.finish();
    let (wal, mut report) =
        opened.with_context(|| format!("cannot open the WAL in {}", config.dir.display()))?;
    let map = match finished {
        Ok(map) => map,
        Err(e) => {
            let _ = wal.shutdown();
            return Err(e);
        }
    };
    dbs.install_map(&map);
    // The reader finished before the apply threads did: report the end-to-end time and rate.
    report.elapsed = started.elapsed();
    report.records_per_sec = report.records.total() as f64 / report.elapsed.as_secs_f64().max(1e-9);
    wal.set_snapshot_source(Arc::new(DatabasesSnapshot {
        dbs: Arc::clone(dbs),
        emitted_db: AtomicU32::new(0),
    }));
    tracing::info!(
        keys = dbs.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "recovered from WAL: {report}"
    );
    Ok((Some(wal), Some(report)))
}

/// Loads the dataset and then opens the server for commands. With a WAL
/// this runs on the `kv-loader` thread (returned, to join after the accept
/// loop ends; its result is the recovery's); without one there is nothing to
/// replay, so it runs here and no thread is started.
pub fn start_loading(
    state: Arc<ServerState>,
    addr: SocketAddr,
) -> anyhow::Result<Option<JoinHandle<anyhow::Result<()>>>> {
    if !state.config.wal {
        load(&state, addr)?;
        return Ok(None);
    }
    let handle = std::thread::Builder::new()
        .name("kv-loader".into())
        .spawn(move || load(&state, addr))
        .context("cannot start the WAL loader thread")?;
    Ok(Some(handle))
}

fn load(state: &ServerState, addr: SocketAddr) -> anyhow::Result<()> {
    let (wal, report) = match recover(&state.config, &state.dbs) {
        Ok(r) => r,
        Err(e) => {
            state.shutdown.request();
            return Err(e);
        }
    };
    hold_for_tests(state);
    state.finish_loading(wal, report);
    tracing::info!(
        workers = state.config.worker_threads(),
        maxclients = state.runtime.maxclients(),
        shards = state.dbs.shard_count(),
        databases = state.dbs.count(),
        wal = state.wal().is_some(),
        "ready to accept connections on {addr}"
    );
    Ok(())
}

fn hold_for_tests(state: &ServerState) {
    let Some(path) = std::env::var_os(HOLD_LOADING_ENV) else {
        return;
    };
    let path = std::path::PathBuf::from(path);
    while path.exists() && !state.shutdown.is_requested() {
        std::thread::sleep(Duration::from_millis(10));
    }
}
