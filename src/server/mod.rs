//! The daemon: recovery, the listener, the worker pool, background threads
//! and an orderly shutdown.
//!
//! ```text
//! main thread   TcpListener::accept (blocking) ──submit──▶ a worker's inbox + waker
//! kv-worker-i   worker::Worker::run: one epoll loop over many connections;
//!               per pass: read → Session::run → group commit → write
//! kv-expire     active expiry cycle, 10×/s
//! kv-signals    SIGINT/SIGTERM → ShutdownSignal::request
//! WAL threads   flusher (every flush-interval-ms), compaction (on demand)
//! ```

pub mod connection;
mod fd_limit;
pub mod pool;
mod replay;
pub mod worker;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::config::Config;
use crate::state::ServerState;
use crate::store::{Hash, Store, ValueRef};
use crate::wal::{HashFields, Record, RecordKind, SnapshotSource, Wal, WalConfig};

/// The reply to a client beyond `maxclients`.
const MAX_CLIENTS_ERROR: &[u8] = b"-ERR max number of clients reached\r\n";

/// Lets the WAL snapshot the store one shard at a time during compaction.
struct StoreSnapshot(Arc<Store>);

impl SnapshotSource for StoreSnapshot {
    fn shard_count(&self) -> usize {
        self.0.shard_count()
    }

    fn snapshot_shard(&self, i: usize, emit: &mut dyn FnMut(Record<'_>)) {
        let now = crate::store::now_ms();
        let mut fields = Vec::new();
        self.0
            .for_each_in_shard(i, |key, value, expires_at_ms| match value {
                ValueRef::String(value) => emit(Record::Set {
                    key,
                    value,
                    expires_at_ms,
                }),
                ValueRef::Hash(hash) => {
                    snapshot_hash(key, hash, now, &mut fields, emit);
                    if expires_at_ms.is_some() {
                        emit(Record::Expire { key, expires_at_ms });
                    }
                }
            });
    }
}

/// Most entry bytes in one compaction record of a hash: a bigger hash is
/// written as several `HashSet` records (they merge on replay).
const SNAPSHOT_HASH_CHUNK: usize = 32 * 1024 * 1024;

/// Emits `hash` as one `HashSet` record (several for a huge hash), skipping
/// fields whose expiry has passed.
fn snapshot_hash(key: &[u8], hash: &Hash, now: u64, buf: &mut Vec<u8>, emit: &mut dyn FnMut(Record<'_>)) {
    buf.clear();
    let mut count = 0u32;
    for (field, value, expires_at) in hash.iter() {
        if expires_at.is_some_and(|at| at <= now) {
            continue;
        }
        HashFields::put_entry(buf, RecordKind::HashSet, field, value, expires_at);
        count += 1;
        if buf.len() >= SNAPSHOT_HASH_CHUNK {
            emit(Record::HashSet {
                key,
                fields: HashFields::new(RecordKind::HashSet, count, buf),
            });
            buf.clear();
            count = 0;
        }
    }
    if count > 0 {
        emit(Record::HashSet {
            key,
            fields: HashFields::new(RecordKind::HashSet, count, buf),
        });
    }
}

/// Opens the WAL and replays it into `store` (None when `wal = false`).
fn recover(
    config: &Config,
    store: &Arc<Store>,
) -> anyhow::Result<(Option<Arc<Wal>>, Option<crate::wal::ReplayReport>)> {
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
    let mut replay = replay::ParallelReplay::start(Arc::clone(store), threads, now)
        .context("cannot start WAL replay threads")?;
    let opened = Wal::open(wal_config, |record| replay.apply(record));
    replay.finish()?;
    let (wal, mut report) =
        opened.with_context(|| format!("cannot open the WAL in {}", config.dir.display()))?;
    // The reader finished before the apply threads did: report the end-to-end time and rate.
    report.elapsed = started.elapsed();
    report.records_per_sec = report.records.total() as f64 / report.elapsed.as_secs_f64().max(1e-9);
    wal.set_snapshot_source(Arc::new(StoreSnapshot(Arc::clone(store))));
    tracing::info!(
        keys = store.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "recovered from WAL: {report}"
    );
    Ok((Some(wal), Some(report)))
}

/// Runs the server until SIGINT/SIGTERM or SHUTDOWN; returns after a clean stop.
pub fn run(mut config: Config) -> anyhow::Result<()> {
    config.maxclients = fd_limit::fit_maxclients(config.maxclients);
    let store = Arc::new(Store::new(config.shards));
    store
        .hash_limits()
        .set_max_entries(config.hash_max_listpack_entries);
    store.hash_limits().set_max_value(config.hash_max_listpack_value);
    let (wal, replay) = recover(&config, &store)?;
    let listener = TcpListener::bind((config.bind.as_str(), config.port))
        .with_context(|| format!("cannot listen on {}:{}", config.bind, config.port))?;
    let addr = listener.local_addr()?;
    let state = Arc::new(ServerState::new(config, Arc::clone(&store), wal, replay));
    state.shutdown.set_listen_addr(addr);

    spawn_signal_thread(Arc::clone(&state))?;
    let stop_expiry = Arc::new(AtomicBool::new(false));
    let expiry = crate::store::spawn_expiry_thread(Arc::clone(&store), Arc::clone(&stop_expiry))?;
    let workers = state.config.worker_threads();
    let pool = pool::WorkerPool::start(workers, &state).context("cannot start worker threads")?;

    tracing::info!(
        workers,
        maxclients = state.runtime.maxclients(),
        shards = store.shard_count(),
        wal = state.wal.is_some(),
        "ready to accept connections on {addr}"
    );
    accept_loop(&listener, &pool, &state);

    tracing::info!("shutting down: no new clients; finishing commands in flight");
    drop(listener);
    pool.stop();
    stop_expiry.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = expiry.join();
    if let Some(wal) = &state.wal {
        wal.shutdown().context("final WAL flush failed")?;
    }
    tracing::info!("bye");
    Ok(())
}

fn accept_loop(listener: &TcpListener, pool: &pool::WorkerPool, state: &ServerState) {
    for incoming in listener.incoming() {
        if state.shutdown.is_requested() {
            break;
        }
        let socket = match incoming {
            Ok(socket) => socket,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let connected = state
            .stats
            .connected_clients
            .load(std::sync::atomic::Ordering::Relaxed);
        if connected >= state.runtime.maxclients() {
            state.stats.client_rejected();
            reject(socket);
            continue;
        }
        if let Err(e) = socket.set_nonblocking(true) {
            tracing::warn!("cannot make a client socket non-blocking: {e}");
            continue;
        }
        state.stats.client_connected();
        pool.submit(state.next_client_id(), socket);
    }
}

/// Tells a client the server is full and closes it without blocking the
/// accept loop.
fn reject(mut socket: TcpStream) {
    let _ = socket.set_nonblocking(true);
    let _ = socket.write_all(MAX_CLIENTS_ERROR);
    let _ = socket.shutdown(std::net::Shutdown::Write);
    // Drain what the client already sent, so closing does not turn into a
    // reset that could destroy the error before the client reads it.
    let mut sink = [0u8; 4096];
    let _ = socket.read(&mut sink);
    tracing::warn!("rejected a client: max number of clients reached");
}

fn spawn_signal_thread(state: Arc<ServerState>) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("kv-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                tracing::info!(signal, "received signal");
                state.shutdown.request();
            }
        })?;
    Ok(())
}
