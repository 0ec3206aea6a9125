//! Client-side caching (`CLIENT TRACKING`): which clients may hold which
//! keys, and the invalidation messages sent when those keys change.
//!
//! As Redis's `tracking.c`:
//! - **Default mode**: a tracking client that reads a key is remembered in
//!   the table under that key (keys are names, databases do not matter);
//!   the next write of the key by anyone sends it one invalidation and
//!   forgets it. `OPTIN` remembers only reads right after `CLIENT CACHING
//!   YES`; `OPTOUT` all but those after `CLIENT CACHING NO`; `NOLOOP` skips
//!   the writer's own writes.
//! - **BCAST**: nothing is remembered; every write of a key that starts
//!   with one of the client's prefixes (or any key, without prefixes) is
//!   sent.
//! - The table holds at most `tracking-table-max-keys` keys: beyond, keys
//!   are dropped with an invalidation, so clients never keep stale data.
//! - FLUSHALL/FLUSHDB send every tracking client a null invalidation.
//!
//! Invalidations go through the target's worker mailbox
//! (`pubsub::deliver::Mail::Invalidate`): under RESP3 a push
//! `invalidate [keys]`; with `REDIRECT id` to that client, as a
//! `__redis__:invalidate` message when it speaks RESP2.
//!
//! # Cost
//! With no tracking client, [`Tracking::any`] is one relaxed load per write
//! command; the table is split in [`SHARDS`] mutexes by key hash.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::protocol::{Replies, Style};
use crate::pubsub::deliver::Mail;
use crate::state::ServerState;

/// The channel RESP2 clients subscribe to for redirected invalidations.
pub const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// Table shards: writers on different keys rarely share a lock.
const SHARDS: usize = 16;

/// Writes one invalidation: under RESP3 the push `invalidate [keys]`, under
/// RESP2 (a redirect target subscribed to [`INVALIDATE_CHANNEL`]) the
/// message `message __redis__:invalidate [keys]`. `None`: every key
/// (FLUSHALL/FLUSHDB), a null instead of the array.
pub fn encode_invalidation(out: &mut Replies, keys: Option<&[Vec<u8>]>) {
    if out.style() == Style::Resp3 {
        out.push(2);
        out.bulk(b"invalidate");
    } else {
        out.push(3);
        out.bulk(b"message");
        out.bulk(INVALIDATE_CHANNEL);
    }
    match keys {
        Some(keys) => {
            out.array(keys.len());
            for key in keys {
                out.bulk(key);
            }
        }
        None => out.nil(),
    }
}

/// `tracking-table-max-keys` in force (0: no limit), a process-wide copy
/// of the live setting as `notify`'s classes.
static MAX_KEYS: AtomicU64 = AtomicU64::new(1_000_000);

/// Installs `tracking-table-max-keys` (start and CONFIG SET).
pub fn set_max_keys(max: u64) {
    MAX_KEYS.store(max, Ordering::Relaxed);
}

/// A client's tracking options (`ClientState::tracking`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mode {
    /// Client id invalidations go to (0: the client itself).
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    pub prefixes: Vec<Vec<u8>>,
    /// `CLIENT CACHING YES|NO` for the next command (OPTIN/OPTOUT).
    pub caching: Option<bool>,
}

/// What the table keeps of a tracking client.
#[derive(Clone, Debug)]
struct Tracker {
    worker: usize,
    redirect: u64,
    noloop: bool,
    bcast: bool,
    prefixes: Vec<Vec<u8>>,
}

/// The server's tracking table (in `ServerState`).
pub struct Tracking {
    clients: AtomicUsize,
    keys: AtomicUsize,
    trackers: RwLock<HashMap<u64, Tracker>>,
    /// BCAST clients (ids), checked on every write while any exists.
    bcast: AtomicUsize,
    table: Vec<Mutex<HashMap<Vec<u8>, Vec<u64>>>>,
    hasher: ahash::RandomState,
}

impl Default for Tracking {
    fn default() -> Self {
        Tracking {
            clients: AtomicUsize::new(0),
            keys: AtomicUsize::new(0),
            trackers: RwLock::new(HashMap::new()),
            bcast: AtomicUsize::new(0),
            table: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: ahash::RandomState::new(),
        }
    }
}

impl Tracking {
    /// True if any client tracks: one relaxed load per write command.
    #[inline]
    pub fn any(&self) -> bool {
        self.clients.load(Ordering::Relaxed) != 0
    }

    /// Clients with tracking on (INFO `tracking_clients`).
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// Keys in the tracking table (INFO `tracking_total_keys`).
    pub fn total_keys(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    /// Turns tracking on (or changes its options) for client `id`.
    pub fn enable(&self, id: u64, worker: usize, mode: &Mode) {
        let tracker = Tracker {
            worker,
            redirect: mode.redirect,
            noloop: mode.noloop,
            bcast: mode.bcast,
            prefixes: mode.prefixes.clone(),
        };
        let mut trackers = self.trackers.write();
        if let Some(old) = trackers.insert(id, tracker) {
            if old.bcast {
                self.bcast.fetch_sub(1, Ordering::Relaxed);
            }
        } else if self.clients.fetch_add(1, Ordering::Relaxed) == 0 {
            crate::notify::set_tracking(true);
        }
        if mode.bcast {
            self.bcast.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Turns tracking off for client `id` (OFF, RESET, disconnect). Its
    /// entries in the table are dropped lazily, as Redis does.
    pub fn disable(&self, id: u64) {
        if let Some(old) = self.trackers.write().remove(&id) {
            if self.clients.fetch_sub(1, Ordering::Relaxed) == 1 {
                crate::notify::set_tracking(false);
            }
            if old.bcast {
                self.bcast.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn shard(&self, key: &[u8]) -> &Mutex<HashMap<Vec<u8>, Vec<u64>>> {
        &self.table[self.hasher.hash_one(key) as usize % SHARDS]
    }

    /// Client `id` read `key`: it may cache it until it is invalidated.
    pub fn remember(&self, state: &ServerState, id: u64, key: &[u8]) {
        let added = {
            let mut shard = self.shard(key).lock();
            match shard.get_mut(key) {
                Some(ids) if ids.contains(&id) => false,
                Some(ids) => {
                    ids.push(id);
                    false
                }
                None => {
                    shard.insert(key.to_vec(), vec![id]);
                    true
                }
            }
        };
        if added {
            let total = self.keys.fetch_add(1, Ordering::Relaxed) + 1;
            let max = MAX_KEYS.load(Ordering::Relaxed);
            if max > 0 && total as u64 > max {
                self.shrink(state, max);
            }
        }
    }

    /// Over `tracking-table-max-keys`: drops keys (invalidating them, so no
    /// client keeps a value nobody will tell it about) until within.
    fn shrink(&self, state: &ServerState, max: u64) {
        for shard in &self.table {
            if self.keys.load(Ordering::Relaxed) as u64 <= max {
                return;
            }
            let victim = shard.lock().keys().next().cloned();
            if let Some(key) = victim {
                self.invalidate(state, &key, None);
            }
        }
    }

    /// `key` was written (by client `writer`, if a client): sends its
    /// invalidation to every client that may cache it.
    pub fn invalidate(&self, state: &ServerState, key: &[u8], writer: Option<u64>) {
        let ids = self.shard(key).lock().remove(key);
        let trackers = self.trackers.read();
        if let Some(ids) = ids {
            self.keys.fetch_sub(1, Ordering::Relaxed);
            for id in ids {
                if let Some(t) = trackers.get(&id) {
                    if !(t.noloop && writer == Some(id)) {
                        send(state, id, t, Some(Arc::new(vec![key.to_vec()])));
                    }
                }
            }
        }
        if self.bcast.load(Ordering::Relaxed) != 0 {
            for (&id, t) in trackers.iter().filter(|(_, t)| t.bcast) {
                if t.noloop && writer == Some(id) {
                    continue;
                }
                if t.prefixes.is_empty() || t.prefixes.iter().any(|p| key.starts_with(p)) {
                    send(state, id, t, Some(Arc::new(vec![key.to_vec()])));
                }
            }
        }
    }

    /// FLUSHALL/FLUSHDB: every tracking client gets the null invalidation
    /// and the table is emptied.
    pub fn invalidate_all(&self, state: &ServerState) {
        for shard in &self.table {
            shard.lock().clear();
        }
        self.keys.store(0, Ordering::Relaxed);
        for (&id, t) in self.trackers.read().iter() {
            send(state, id, t, None);
        }
    }
}

/// Mails an invalidation for tracking client `id` to whoever receives it.
fn send(state: &ServerState, id: u64, t: &Tracker, keys: Option<Arc<Vec<Vec<u8>>>>) {
    if t.redirect == 0 {
        state.pubsub.post(t.worker, Mail::Invalidate { client: id, keys });
        return;
    }
    // The redirect target may live on another worker.
    if let Some(target) = state.clients.get(t.redirect) {
        state.pubsub.post(
            target.worker,
            Mail::Invalidate {
                client: t.redirect,
                keys,
            },
        );
    }
}

/// The executor's hook after a command ran, while some client tracks: a
/// write that changed its keys invalidates them; a read by a tracking
/// client (default mode, subject to OPTIN/OPTOUT) remembers them.
pub fn after_command(
    state: &ServerState,
    client: &mut crate::state::ClientState,
    spec: &crate::command::CommandSpec,
    args: &crate::command::Args<'_>,
    changed: bool,
) {
    use crate::command::KeySpec;
    if matches!(spec.name, "flushall" | "flushdb") {
        state.tracking.invalidate_all(state);
        return;
    }
    let Some(keys) = spec.keys.filter(|k| !matches!(k, KeySpec::All)) else {
        return;
    };
    if spec.flags.write {
        if changed {
            for i in keys.positions(args.len()) {
                state.tracking.invalidate(state, args.get(i), Some(client.id));
            }
        }
    } else if let Some(mode) = &client.tracking {
        let cache = if mode.optin {
            mode.caching == Some(true)
        } else if mode.optout {
            mode.caching != Some(false)
        } else {
            true
        };
        if cache && !mode.bcast {
            for i in keys.positions(args.len()) {
                state.tracking.remember(state, client.id, args.get(i));
            }
        }
    }
    // CLIENT CACHING applies to the next command only.
    if let Some(mode) = &mut client.tracking {
        mode.caching = None;
    }
}
