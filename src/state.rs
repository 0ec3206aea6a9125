//! State shared by every worker ([`ServerState`]) and the per-connection
//! state commands may change ([`ClientState`]).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::Config;
use crate::runtime::RuntimeConfig;
use crate::stats::Stats;
use crate::store::Databases;
use crate::wal::{ReplayReport, Wal};

/// Everything the workers share. Immutable after start except for the
/// atomics, the client registry and the two values recovery fills in once.
pub struct ServerState {
    /// The configuration the server started with; settings `CONFIG SET` can
    /// change are read from `runtime` instead.
    pub config: Config,
    /// Every database (`SELECT n`); a client's `ClientState::db` indexes it.
    pub dbs: Arc<Databases>,
    /// Live settings (`CONFIG SET`/`GET`/`REWRITE`), e.g. `state.runtime.maxmemory()`.
    pub runtime: RuntimeConfig,
    pub stats: Stats,
    pub shutdown: ShutdownSignal,
    pub clients: ClientRegistry,
    /// Clients blocked in BLPOP & co, by key.
    pub blocking: crate::blocking::Blocking,
    /// Pub/Sub subscriptions, per-worker mailboxes and monitors.
    pub pubsub: crate::pubsub::PubSub,
    /// Client-side caching: which clients may cache which keys.
    pub tracking: crate::tracking::Tracking,
    /// The WAL, set once replay has finished (never while `loading`).
    wal: OnceLock<Arc<Wal>>,
    /// What recovery found at startup (INFO persistence).
    replay: OnceLock<ReplayReport>,
    /// True while the WAL is being replayed: every command gets `-LOADING`.
    loading: AtomicBool,
    next_client_id: AtomicU64,
}

impl ServerState {
    /// Shared state for a server with `config`, ready to serve (not loading).
    pub fn new(
        config: Config,
        dbs: Arc<Databases>,
        wal: Option<Arc<Wal>>,
        replay: Option<ReplayReport>,
    ) -> ServerState {
        let state = ServerState::loading(config, dbs);
        state.finish_loading(wal, replay);
        state
    }

    /// Shared state for a server that is still replaying its WAL into `dbs`:
    /// commands are refused with `-LOADING` until [`ServerState::finish_loading`].
    pub fn loading(config: Config, dbs: Arc<Databases>) -> ServerState {
        let workers = config.worker_threads();
        ServerState {
            runtime: RuntimeConfig::new(&config),
            config,
            dbs,
            stats: Stats::new(workers),
            shutdown: ShutdownSignal::default(),
            clients: ClientRegistry::default(),
            blocking: crate::blocking::Blocking::default(),
            pubsub: crate::pubsub::PubSub::new(workers),
            tracking: crate::tracking::Tracking::default(),
            wal: OnceLock::new(),
            replay: OnceLock::new(),
            loading: AtomicBool::new(true),
            next_client_id: AtomicU64::new(1),
        }
    }

    /// Installs what recovery produced and starts admitting commands.
    pub fn finish_loading(&self, wal: Option<Arc<Wal>>, replay: Option<ReplayReport>) {
        if let Some(wal) = wal {
            let _ = self.wal.set(wal);
        }
        if let Some(replay) = replay {
            let _ = self.replay.set(replay);
        }
        self.loading.store(false, Ordering::Release);
    }

    /// The WAL (None with `wal = false`, or while loading).
    #[inline]
    pub fn wal(&self) -> Option<&Arc<Wal>> {
        self.wal.get()
    }

    /// What WAL replay found (None with `wal = false`, or while loading).
    pub fn replay(&self) -> Option<&ReplayReport> {
        self.replay.get()
    }

    /// True while the WAL is being replayed (INFO's `loading:1`).
    #[inline]
    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Acquire)
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
    /// The selected database (`SELECT`), 0 on connect.
    pub db: usize,
    /// True after `HELLO 3`: RESP requests get RESP3 replies (CLIENT LIST's `resp=`).
    pub resp3: bool,
    /// MULTI queue and WATCHed keys (CLIENT LIST's `multi=` and `watch=`).
    pub tx: crate::command::transaction::TxState,
    /// Set by QUIT/SHUTDOWN: send the pending replies, then close.
    pub close_after_reply: bool,
    /// Table index of the last command run (`CLIENT LIST cmd=`).
    pub last_command: Option<usize>,
    /// `CLIENT REPLY ON|OFF|SKIP`.
    pub reply_mode: ReplyMode,
    /// `CLIENT NO-TOUCH ON`: this client's commands other than TOUCH leave
    /// keys' access times alone (CLIENT LIST flag `T`).
    pub no_touch: bool,
    /// Set by a blocking command that found nothing: the session runs no
    /// command until its worker wakes it (`crate::blocking`).
    pub blocked: Option<BlockedOn>,
    /// Why the blocked command runs again (set by the worker's wake-up).
    pub wake_reason: Option<crate::blocking::WakeReason>,
    /// The deadline a woken command keeps if it must block again.
    pub resumed_deadline: Option<Option<std::time::Instant>>,
    /// True while EXEC runs queued commands: blocking commands do not block.
    pub in_exec: bool,
    /// What other threads see of this client (None in unit tests).
    pub handle: Option<Arc<ClientHandle>>,
    /// The read buffer while commands run, set by the session before it runs
    /// them: what `CLIENT LIST`/`CLIENT INFO` report for the calling client
    /// as `qbuf` and `qbuf-free`.
    pub query_buffer: BufferUse,
    /// Pub/Sub subscriptions (CLIENT LIST's `sub=`, `psub=`, `ssub=`).
    pub subs: crate::pubsub::Subscriptions,
    /// The style of the command that subscribed (or started MONITOR):
    /// messages are written in it (RESP3 pushes after `HELLO 3`).
    pub push_style: Option<crate::protocol::Style>,
    /// In MONITOR mode (CLIENT LIST flag `O`).
    pub monitor: bool,
    /// `subs.any()`, kept as a plain flag for the executor's admission check.
    pub pubsub_flag: bool,
    /// `CLIENT TRACKING ON` options (None: off).
    pub tracking: Option<crate::tracking::Mode>,
}

/// How much of a buffer is in use: what `CLIENT LIST` reports for a
/// client's read buffer while one of its commands runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufferUse {
    /// Bytes held. For the read buffer while a command runs: the running
    /// command and everything read after it, plus the commands run before it
    /// from the same read (Redis 7's `sdslen(querybuf)`, which it trims only
    /// after the read's last command).
    pub len: usize,
    /// Bytes allocated (`len` plus the spare room, Redis's `qbuf-free`).
    pub capacity: usize,
}

/// A blocked client's wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockedOn {
    /// When the wait ends with a null reply; None: forever (timeout 0).
    pub deadline: Option<std::time::Instant>,
}

/// `CLIENT REPLY`: whether replies are sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// Suppress the reply of the next command only.
    SkipNext,
    /// Set while the command after `SKIP` runs; back to `On` after it.
    Skipping,
}

impl ClientState {
    /// True while a RESP2 (or text) client is subscribed: only the pub/sub
    /// commands, PING, QUIT and RESET are allowed (a RESP3 client may send
    /// anything). One boolean test for clients that never subscribed.
    #[inline]
    pub fn in_pubsub_context(&self) -> bool {
        self.pubsub_flag && !self.resp3
    }

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
/// accept loop (woken by a connection to itself); the listener then stops
/// the workers.
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

/// What every other thread may know about one connected client: the data
/// behind `CLIENT LIST` and the switch behind `CLIENT KILL`.
///
/// The owning worker's [`Session`](crate::session::Session) publishes into it
/// once per pass (a few relaxed stores; strings only when they changed), so
/// the hot path never takes a shared lock for introspection.
#[derive(Debug)]
pub struct ClientHandle {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    /// Index of the worker thread that owns the connection.
    pub worker: usize,
    pub created: Instant,
    /// Milliseconds since `created` of the last read or write.
    last_active_ms: AtomicU64,
    /// Command table index + 1 of the last command run (0 = none yet).
    last_command: AtomicUsize,
    /// Bytes in the read buffer after the last pass, i.e. a partial command
    /// (`qbuf`), and its spare room (`qbuf-free`).
    pub query_buffer: AtomicUsize,
    pub query_buffer_free: AtomicUsize,
    /// Reply bytes the socket has not taken yet (`obl` and `omem`: kvserver
    /// keeps one reply buffer that grows, where Redis chains 16 KiB blocks
    /// after a fixed one, so the two figures are the same number here).
    pub output_buffer: AtomicUsize,
    /// Bytes allocated for replies (`rbs`) and the most that waited in them
    /// at once during the current 5-second window (`rbp`).
    pub reply_buffer_size: AtomicUsize,
    pub reply_buffer_peak: AtomicUsize,
    /// Memory of the arguments queued in `MULTI` (`multi-mem`).
    pub multi_mem: AtomicUsize,
    /// False while the worker does not read from the client because its
    /// unsent output is over the high-water mark (`events=` loses its `r`).
    pub reading: AtomicBool,
    /// Database and RESP version as last published by the session.
    pub db: AtomicUsize,
    pub resp: AtomicUsize,
    /// Commands queued in MULTI (-1 outside a transaction) and keys WATCHed.
    pub multi: std::sync::atomic::AtomicI64,
    pub watch: AtomicUsize,
    /// `CLIENT NO-TOUCH ON` (flag `T`).
    pub no_touch: AtomicBool,
    /// Blocked in BLPOP & co (flag `b`, `CLIENT UNBLOCK`).
    pub blocked: AtomicBool,
    /// Subscribed channels, patterns and shard channels (`sub=`, `psub=`, `ssub=`).
    pub sub: AtomicUsize,
    pub psub: AtomicUsize,
    pub ssub: AtomicUsize,
    /// In MONITOR mode (flag `O`).
    pub monitor: AtomicBool,
    /// CLIENT TRACKING on (flag `t`).
    pub tracking: AtomicBool,
    /// CLIENT TRACKING's REDIRECT target (`redir=`), -1 for none.
    pub redirect: std::sync::atomic::AtomicI64,
    names: Mutex<ClientNames>,
    killed: AtomicBool,
}

/// The strings of a client that `CLIENT SETNAME`/`SETINFO`/`HELLO` change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientNames {
    pub name: Option<Vec<u8>>,
    pub lib_name: Option<Vec<u8>>,
    pub lib_ver: Option<Vec<u8>>,
}

impl ClientHandle {
    /// A handle for a client that just connected.
    pub fn new(id: u64, addr: String, laddr: String, fd: i32, worker: usize) -> ClientHandle {
        ClientHandle {
            id,
            addr,
            laddr,
            fd,
            worker,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            last_command: AtomicUsize::new(0),
            query_buffer: AtomicUsize::new(0),
            query_buffer_free: AtomicUsize::new(0),
            output_buffer: AtomicUsize::new(0),
            reply_buffer_size: AtomicUsize::new(0),
            reply_buffer_peak: AtomicUsize::new(0),
            multi_mem: AtomicUsize::new(0),
            reading: AtomicBool::new(true),
            no_touch: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            sub: AtomicUsize::new(0),
            psub: AtomicUsize::new(0),
            ssub: AtomicUsize::new(0),
            monitor: AtomicBool::new(false),
            tracking: AtomicBool::new(false),
            redirect: std::sync::atomic::AtomicI64::new(-1),
            db: AtomicUsize::new(0),
            resp: AtomicUsize::new(2),
            multi: std::sync::atomic::AtomicI64::new(-1),
            watch: AtomicUsize::new(0),
            names: Mutex::new(ClientNames::default()),
            killed: AtomicBool::new(false),
        }
    }

    /// Records activity now (a read or a write made progress).
    pub fn touch(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.created).as_millis() as u64;
        self.last_active_ms.store(ms, Ordering::Relaxed);
    }

    /// How long the client has been idle.
    pub fn idle(&self, now: Instant) -> Duration {
        let active = self.created + Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed));
        now.saturating_duration_since(active)
    }

    /// Records the last command run (its table index).
    pub fn set_last_command(&self, index: usize) {
        self.last_command.store(index + 1, Ordering::Relaxed);
    }

    /// The table index of the last command run, if any.
    pub fn last_command(&self) -> Option<usize> {
        self.last_command.load(Ordering::Relaxed).checked_sub(1)
    }

    /// The published names.
    pub fn names(&self) -> ClientNames {
        self.names.lock().clone()
    }

    /// Publishes changed names.
    pub fn set_names(&self, names: ClientNames) {
        *self.names.lock() = names;
    }
}

/// Tells a worker that one of its clients was killed (wakes its poller).
pub type KillNotifier = Box<dyn Fn(u64) + Send + Sync>;

/// Tells a worker to run a blocked client's command again (wakes its poller).
pub type WakeNotifier = Box<dyn Fn(u64, crate::blocking::WakeReason) + Send + Sync>;

/// Every connected client, by id: `CLIENT LIST`, `CLIENT KILL`, and the
/// count behind `maxclients`.
#[derive(Default)]
pub struct ClientRegistry {
    clients: Mutex<HashMap<u64, Arc<ClientHandle>>>,
    notifiers: OnceLock<Vec<KillNotifier>>,
    wakers: OnceLock<Vec<WakeNotifier>>,
}

impl ClientRegistry {
    /// Installs one kill notifier per worker (once, at start).
    pub fn set_notifiers(&self, notifiers: Vec<KillNotifier>) {
        let _ = self.notifiers.set(notifiers);
    }

    /// Installs one wake notifier per worker (once, at start).
    pub fn set_wakers(&self, wakers: Vec<WakeNotifier>) {
        let _ = self.wakers.set(wakers);
    }

    /// Asks `worker` to run blocked client `id`'s command again.
    pub fn wake(&self, worker: usize, id: u64, reason: crate::blocking::WakeReason) {
        if let Some(wake) = self.wakers.get().and_then(|w| w.get(worker)) {
            wake(id, reason);
        }
    }

    /// The handle of client `id`, if connected.
    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.clients.lock().get(&id).cloned()
    }

    /// Registers a connected client.
    pub fn add(&self, handle: Arc<ClientHandle>) {
        self.clients.lock().insert(handle.id, handle);
    }

    /// Forgets a disconnected client.
    pub fn remove(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    /// Every client, ordered by id (as `CLIENT LIST` prints them).
    pub fn snapshot(&self) -> Vec<Arc<ClientHandle>> {
        let mut all: Vec<_> = self.clients.lock().values().cloned().collect();
        all.sort_by_key(|h| h.id);
        all
    }

    /// Marks `handle` killed and asks its worker to close the connection.
    pub fn kill(&self, handle: &ClientHandle) {
        if handle.killed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(notify) = self.notifiers.get().and_then(|n| n.get(handle.worker)) {
            notify(handle.id);
        }
    }
}
