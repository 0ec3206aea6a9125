//! # kvserver
//!
//! A multi-threaded, Redis-compatible in-memory key-value server with a
//! write-ahead log.
//!
//! A request travels one way: the main thread accepts a socket and hands it
//! to a fixed pool of workers ([`server::pool`]); the worker's
//! [`session::Session`] frames the bytes into commands ([`protocol`]), the
//! executor in [`command`] checks and runs them against the sharded
//! [`store`], appending the results to the [`wal`] while the shard locks are
//! held, and the replies are encoded for the request's protocol and written
//! back in one system call. The store knows nothing of sockets, the
//! protocol nothing of the store, the WAL records and not commands.
//! See `docs/architecture.md` for the threads, locks and their order.

pub mod blocking;
pub mod command;
pub mod config;
pub mod daemon;
/// Fuzz targets shared by `tests/fuzz` (cargo fuzz, nightly) and the stable
/// property tests; not part of the server's API.
#[doc(hidden)]
pub mod fuzzing;
pub mod info;
pub mod log_limit;
pub mod logging;
pub mod memory;
pub mod monitor;
pub mod notify;
pub mod protocol;
pub mod pubsub;
pub mod runtime;
pub mod scripting;
pub mod server;
pub mod session;
pub mod shared_bytes;
pub mod state;
pub mod stats;
pub mod store;
pub mod tracking;
pub mod wal;
