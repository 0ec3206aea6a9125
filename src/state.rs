//! State shared by every worker ([`ServerState`]) and the per-connection
//! state commands may change ([`ClientState`]).

use std::collections::HashMap;
use std::net::{Shutdown as SocketShutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::Config;
use crate::runtime::RuntimeConfig;
use crate::stats::Stats;
use crate::store::Store;
use crate::wal::{ReplayReport, Wal};

/// Everything the workers share. Immutable after start except for the
/// atomics and the client registry.
pub struct ServerState {
    /// The configuration the server started with; settings `CONFIG SET` can
    /// change are read from `runtime` instead.
    pub config: Config,
    /// Live settings (`CONFIG SET`/`GET`/`REWRITE`), e.g. `state.runtime.maxmemory()`.
    pub runtime: RuntimeConfig,
    pub store: Arc<Store>,
    pub wal: Option<Arc<Wal>>,
    pub stats: Stats,
    pub shutdown: ShutdownSignal,
    pub clients: ClientRegistry,
    /// What recovery found at startup (INFO persistence).
    pub replay: Option<ReplayReport>,
    next_client_id: AtomicU64,
}

impl ServerState {
    /// Shared state for a server with `config`.
    pub fn new(
        config: Config,
        store: Arc<Store>,
        wal: Option<Arc<Wal>>,
        replay: Option<ReplayReport>,
    ) -> ServerState {
        let workers = config.workers;
        ServerState {
            runtime: RuntimeConfig::new(&config),
            config,
            store,
            wal,
            stats: Stats::new(workers),
            shutdown: ShutdownSignal::default(),
            clients: ClientRegistry::default(),
            replay,
            next_client_id: AtomicU64::new(1),
        }
    }

    /// A fresh, unique client id (CLIENT ID).
    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Per-connection state visible to commands.
#[derive(Debug, Default)]
pub struct ClientState {
    pub id: u64,
    pub addr: String,
    pub name: Option<Vec<u8>>,
    pub lib_name: Option<Vec<u8>>,
    pub lib_ver: Option<Vec<u8>>,
    pub authenticated: bool,
    /// True after `HELLO 3`: RESP requests get RESP3 replies (CLIENT LIST's `resp=`).
    pub resp3: bool,
    /// MULTI queue and WATCHed keys (CLIENT LIST's `multi=` and `watch=`).
    pub tx: crate::command::transaction::TxState,
    /// Set by QUIT/SHUTDOWN: send the pending replies, then close.
    pub close_after_reply: bool,
}

impl ClientState {
    /// The RESP version this connection speaks (2 or 3), as `HELLO` and
    /// `CLIENT LIST` (`resp=`) report it.
    pub fn resp_version(&self) -> u8 {
        if self.resp3 {
            3
        } else {
            2
        }
    }
}

/// The stop request: set by SIGINT/SIGTERM or SHUTDOWN, observed by the
/// accept loop (woken by a connection to itself) and the workers (whose
/// blocked reads are ended by shutting the read side of their sockets).
#[derive(Default)]
pub struct ShutdownSignal {
    requested: AtomicBool,
    listen_addr: Mutex<Option<SocketAddr>>,
}

impl ShutdownSignal {
    /// Records where the accept loop listens, so `request` can wake it.
    pub fn set_listen_addr(&self, addr: SocketAddr) {
        *self.listen_addr.lock() = Some(addr);
    }

    /// True once shutdown has been requested.
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    /// Requests shutdown and wakes the accept loop.
    pub fn request(&self) {
        if self.requested.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(addr) = *self.listen_addr.lock() {
            let wake = match addr {
                SocketAddr::V4(a) if a.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], a.port())),
                SocketAddr::V6(a) if a.ip().is_unspecified() => {
                    SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
                }
                other => other,
            };
            let _ = TcpStream::connect_timeout(&wake, std::time::Duration::from_secs(1));
        }
    }
}

/// Sockets of connected clients, so shutdown can end their blocked reads.
#[derive(Default)]
pub struct ClientRegistry(Mutex<HashMap<u64, TcpStream>>);

impl ClientRegistry {
    /// Registers a client's socket (a `try_clone` of it).
    pub fn add(&self, id: u64, stream: TcpStream) {
        self.0.lock().insert(id, stream);
    }

    /// Forgets a disconnected client.
    pub fn remove(&self, id: u64) {
        self.0.lock().remove(&id);
    }

    /// Shuts the read side of every client socket: each worker finishes the
    /// command in hand, sends its replies, sees end-of-file and exits.
    pub fn close_reads(&self) {
        for stream in self.0.lock().values() {
            let _ = stream.shutdown(SocketShutdown::Read);
        }
    }
}
