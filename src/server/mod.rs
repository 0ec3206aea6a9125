//! The daemon: recovery, the listener, the worker pool, background threads
//! and an orderly shutdown.
//!
//! ```text
//! main thread   TcpListener::accept (blocking) ──submit──▶ a worker's inbox + waker
//! kv-worker-i   worker::Worker::run: one epoll loop over many connections;
//!               per pass: read → Session::run → group commit → write
//! kv-expire     active expiry cycle, 10×/s
//! kv-signals    SIGINT/SIGTERM → ShutdownSignal::request; SIGHUP → reopen the log file
//! kv-loader     WAL replay at startup, while clients get -LOADING (startup.rs)
//! WAL threads   flusher (every flush-interval-ms), compaction (on demand)
//! ```

mod bounds;
pub mod connection;
pub mod fd_limit;
pub mod pool;
pub(crate) mod replay;
mod startup;
pub mod worker;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::Config;
use crate::daemon;
use crate::log_limit::LogLimiter;
use crate::state::ServerState;
use crate::store::Databases;

/// The reply to a client beyond `maxclients`.
const MAX_CLIENTS_ERROR: &[u8] = b"-ERR max number of clients reached\r\n";

/// A client can be refused, or `accept` fail, thousands of times a second:
/// one line per interval, with a count (`INFO stats` has the totals).
static REJECTED_LOG: LogLimiter = LogLimiter::new(crate::log_limit::DEFAULT_INTERVAL);
static PROTECTED_LOG: LogLimiter = LogLimiter::new(crate::log_limit::DEFAULT_INTERVAL);
static ACCEPT_FAILED_LOG: LogLimiter = LogLimiter::new(crate::log_limit::DEFAULT_INTERVAL);
static NONBLOCKING_FAILED_LOG: LogLimiter = LogLimiter::new(crate::log_limit::DEFAULT_INTERVAL);

/// Runs the server until SIGINT/SIGTERM or SHUTDOWN; returns after a clean stop.
pub fn run(mut config: Config) -> anyhow::Result<()> {
    // Before anything slow: a SIGHUP during replay must not kill the process.
    let signals = daemon::SignalHandlers::install()?;
    // Before any thread, lock or socket: refuse what the system cannot give.
    let workers = config.worker_threads();
    bounds::check(config.workers, workers, pool::WORKER_STACK)?;
    config.maxclients = fd_limit::fit_maxclients(config.maxclients, config.workers, workers)?;
    let _dir_lock = daemon::lock_data_dir(&config)?;
    // Bind before replaying: a busy port fails now, not after the whole WAL.
    let listener = TcpListener::bind((config.bind.as_str(), config.port))
        .with_context(|| format!("cannot listen on {}:{}", config.bind, config.port))?;
    let addr = listener.local_addr()?;
    daemon::warn_about_exposure(&config, addr);
    let dbs = Arc::new(Databases::new(config.databases, config.shards));
    let limits = crate::store::hash::limits();
    limits.set_max_entries(config.hash_max_listpack_entries);
    limits.set_max_value(config.hash_max_listpack_value);
    crate::store::types::apply_limits(&config);
    let state = Arc::new(ServerState::loading(config, Arc::clone(&dbs)));
    state.shutdown.set_listen_addr(addr);

    signals.spawn(Arc::clone(&state))?;
    let stop_expiry = Arc::new(AtomicBool::new(false));
    let notify_state = Arc::clone(&state);
    let expiry = crate::store::spawn_expiry_thread(
        Arc::clone(&dbs),
        Arc::clone(&stop_expiry),
        Box::new(move |db| crate::notify::flush(&notify_state, db)),
    )?;
    let pool = pool::WorkerPool::start(workers, &state).with_context(|| {
        format!(
            "cannot start {workers} worker threads (threads are limited by RLIMIT_NPROC, \
             kernel.threads-max and the cgroup's pids.max); lower workers or raise the limit"
        )
    })?;

    tracing::info!("listening on {addr}; loading the dataset (clients get -LOADING until it is done)");
    let loader = startup::start_loading(Arc::clone(&state), addr)?;
    accept_loop(&listener, &pool, &state);

    tracing::info!("shutting down: no new clients; finishing commands in flight");
    drop(listener);
    pool.stop();
    stop_expiry.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = expiry.join();
    let loaded = loader.map_or(Ok(()), |loader| {
        loader
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the WAL loader thread panicked")))
    });
    if let Some(wal) = state.wal() {
        wal.shutdown().context("final WAL flush failed")?;
    }
    loaded?;
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
                crate::warn_limited!(ACCEPT_FAILED_LOG, "accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let protected = socket.peer_addr().is_ok_and(|peer| {
            crate::daemon::protected_mode_refuses(&state.config, state.runtime.requirepass_set(), peer.ip())
        });
        if protected {
            refuse(socket, crate::daemon::DENIED_REPLY);
            crate::warn_limited!(
                PROTECTED_LOG,
                "refused a non-loopback client: protected mode (no password set)"
            );
            continue;
        }
        let connected = state
            .stats
            .connected_clients
            .load(std::sync::atomic::Ordering::Relaxed);
        if connected >= state.runtime.maxclients() {
            state.stats.client_rejected();
            refuse(socket, MAX_CLIENTS_ERROR);
            crate::warn_limited!(REJECTED_LOG, "rejected a client: max number of clients reached");
            continue;
        }
        if let Err(e) = socket.set_nonblocking(true) {
            crate::warn_limited!(
                NONBLOCKING_FAILED_LOG,
                "cannot make a client socket non-blocking: {e}"
            );
            continue;
        }
        state.stats.client_connected();
        pool.submit(state.next_client_id(), socket);
    }
}

/// Sends a refused client its error line and closes it without blocking the
/// accept loop.
fn refuse(mut socket: TcpStream, reply: &[u8]) {
    let _ = socket.set_nonblocking(true);
    let _ = socket.write_all(reply);
    let _ = socket.shutdown(std::net::Shutdown::Write);
    // Drain what the client already sent, so closing does not turn into a
    // reset that could destroy the error before the client reads it.
    let mut sink = [0u8; 4096];
    let _ = socket.read(&mut sink);
}
