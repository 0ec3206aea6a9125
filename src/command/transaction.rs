//! Transactions: `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`, with Redis's
//! semantics and error strings.
//!
//! * Between `MULTI` and `EXEC` the session hands every command to
//!   [`in_multi`]: it is checked (lookup, arity, auth, write gate) and queued
//!   with its arguments copied out of the read buffer, answering `+QUEUED`.
//!   A command refused there makes the transaction fail at `EXEC` with
//!   `EXECABORT`; errors while *running* stay per command in the `EXEC` reply.
//!   `EXEC`, `DISCARD`, `MULTI`, `WATCH`, `QUIT` and `RESET` are never queued.
//! * `EXEC` is atomic across threads: it locks the union of the shards of
//!   every queued command's keys and of the watched keys — every shard if a
//!   queued command is keyless (`FLUSHALL`, `KEYS`, `INFO`...) — checks the
//!   watches, runs every command, and appends the WAL records as **one
//!   transaction frame** before any lock is released. No other client sees
//!   part of it, and replay applies all of it or none of it.
//! * `WATCH` is optimistic. Each shard keeps a table of its watched keys with
//!   a change counter that every change bumps — writes, deletes, lazy and
//!   active expiry, `FLUSHALL`, eviction — because they all go through the
//!   shard map (`store::shard`). A client records the counter when it watches;
//!   `EXEC` compares under the locks. A shard with no watched key pays one
//!   `is_empty` test per change, so clients that never `WATCH` cost nothing.
//! * A watch belongs to the logical database it was made in, as in Redis:
//!   `SWAPDB` moves the two databases' watch tables with their table entries
//!   and touches the watched keys it changes (present on either side), under
//!   the shard locks it already holds (`ShardMap::swap_watches`).
//! * `RESET` discards the transaction and every watch ([`TxState::reset`]).
//!
//! This module must never write to a socket or keep a shard lock past `EXEC`.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use super::{
    admit, Args, CommandError, CommandResult, CommandSpec, Ctx, ExecScratch, Invocation, KeySpec, RecordLog,
};
use crate::protocol::Replies;
use crate::state::{ClientState, ServerState};
use crate::store::{lend_every_store, Databases, Locked, ShardMap, ShardSet};
use crate::wal::Record;

const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

/// A command queued between `MULTI` and `EXEC`.
struct Queued {
    first_arg: usize,
    arg_count: usize,
    spec: &'static CommandSpec,
}

impl fmt::Debug for Queued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({} args)", self.spec.name, self.arg_count)
    }
}

/// The queued commands, their arguments in one buffer.
#[derive(Debug, Default)]
struct Queue {
    bytes: Vec<u8>,
    ranges: Vec<(usize, usize)>,
    commands: Vec<Queued>,
}

impl Queue {
    fn push(&mut self, spec: &'static CommandSpec, args: &Args<'_>) {
        let first_arg = self.ranges.len();
        for i in 0..args.len() {
            let arg = args.get(i);
            let start = self.bytes.len();
            self.bytes.extend_from_slice(arg);
            self.ranges.push((start, self.bytes.len()));
        }
        self.commands.push(Queued {
            first_arg,
            arg_count: args.len(),
            spec,
        });
    }

    fn args(&self, q: &Queued) -> Args<'_> {
        Args::new(&self.bytes, &self.ranges[q.first_arg..q.first_arg + q.arg_count])
    }
}

/// One key a client watches and the key's change counter when it did.
#[derive(Debug)]
struct Watched {
    key: Box<[u8]>,
    hash: u64,
    version: u64,
    /// The logical database the key was watched in. Its watch entry lives in
    /// that database's current physical store: SWAPDB moves the watch tables
    /// along with the table entries (`ShardMap::swap_watches`).
    db: usize,
}

/// The keys a client watches. Dropping it (a disconnect) unregisters them
/// from their shards, so a shard's watch table never outlives its watchers.
#[derive(Default)]
pub struct WatchList {
    dbs: Option<Arc<Databases>>,
    keys: Vec<Watched>,
}

impl fmt::Debug for WatchList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchList").field("keys", &self.keys).finish()
    }
}

impl Drop for WatchList {
    fn drop(&mut self) {
        self.unwatch_all();
    }
}

impl WatchList {
    /// Number of watched keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if no key is watched.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Unregisters every key, locking each key's shard in turn.
    fn unwatch_all(&mut self) {
        let Some(dbs) = &self.dbs else {
            return;
        };
        for w in self.keys.drain(..) {
            // Re-check the table under the shard lock: a SWAPDB in between
            // moved the entry to the other store.
            loop {
                let physical = dbs.physical_index(w.db);
                let store = dbs.physical(physical);
                let mut map = store.lock(store.shard_of(w.hash));
                if dbs.physical_index(w.db) == physical {
                    map.unwatch(w.hash, &w.key);
                    break;
                }
            }
        }
    }

    /// Unregisters every key through shards the caller already holds.
    fn unwatch_locked(&mut self, dbs: &Databases, held: &mut Held<'_>) {
        for w in self.keys.drain(..) {
            if let Some(map) = held.map(dbs.physical_index(w.db), w.hash) {
                map.unwatch(w.hash, &w.key);
            }
        }
    }

    /// True if any watched key changed since it was watched, or expired since
    /// (a key already expired when watched was reaped by WATCH, so its removal
    /// is no change — Redis's "stale key" rule). The shards must be locked.
    fn changed(&self, dbs: &Databases, held: &mut Held<'_>, now: u64) -> bool {
        self.keys.iter().any(|w| {
            // Held locks pin the table (see `Held`); a shard not held is a bug,
            // answered safely by failing the EXEC.
            let Some(map) = held.map(dbs.physical_index(w.db), w.hash) else {
                return true;
            };
            map.watch_version(w.hash, &w.key) != Some(w.version)
                || map
                    .get_raw(w.hash, &w.key)
                    .is_some_and(|slot| slot.is_expired(now))
        })
    }
}

/// A connection's transaction state: the queue while in `MULTI`, whether a
/// queue-time error doomed it, and the watched keys.
#[derive(Debug, Default)]
pub struct TxState {
    queue: Option<Queue>,
    aborted: bool,
    watch: WatchList,
}

impl TxState {
    /// True between `MULTI` and `EXEC`/`DISCARD`.
    #[inline]
    pub fn in_multi(&self) -> bool {
        self.queue.is_some()
    }

    /// Commands queued so far, or `None` outside `MULTI` (CLIENT LIST's `multi=`).
    pub fn queued(&self) -> Option<usize> {
        self.queue.as_ref().map(|q| q.commands.len())
    }

    /// Number of watched keys (CLIENT LIST's `watch=`).
    pub fn watched(&self) -> usize {
        self.watch.len()
    }

    /// Memory of the arguments queued in `MULTI`, 0 outside it (CLIENT
    /// LIST's `multi-mem`): their bytes plus one range per argument, as
    /// Redis counts their lengths plus one pointer per argument.
    pub fn queued_memory(&self) -> usize {
        self.queue.as_ref().map_or(0, |q| {
            q.bytes.len() + q.ranges.len() * std::mem::size_of::<(usize, usize)>()
        })
    }

    /// `RESET`: leaves `MULTI` if in it and forgets every watch.
    pub fn reset(&mut self) {
        self.discard();
    }

    /// Leaves `MULTI`, forgetting the queue and every watch.
    fn discard(&mut self) {
        self.queue = None;
        self.aborted = false;
        self.watch.unwatch_all();
    }
}

/// MULTI
pub fn multi(c: &mut Ctx<'_, '_>) -> CommandResult {
    if c.client.tx.in_multi() {
        return Err(CommandError::Other("ERR MULTI calls can not be nested".into()));
    }
    c.client.tx.queue = Some(Queue::default());
    c.client.tx.aborted = false;
    c.out.ok();
    Ok(())
}

/// EXEC outside a transaction (inside one, [`in_multi`] runs [`exec`]).
pub fn exec_without_multi(_: &mut Ctx<'_, '_>) -> CommandResult {
    Err(CommandError::Other("ERR EXEC without MULTI".into()))
}

/// DISCARD
pub fn discard(c: &mut Ctx<'_, '_>) -> CommandResult {
    if !c.client.tx.in_multi() {
        return Err(CommandError::Other("ERR DISCARD without MULTI".into()));
    }
    c.client.tx.discard();
    c.out.ok();
    Ok(())
}

/// WATCH key [key ...]: runs with the keys' shards locked (it is a keyed command).
pub fn watch(c: &mut Ctx<'_, '_>) -> CommandResult {
    if c.client.tx.in_multi() {
        return Err(CommandError::Other(
            "ERR WATCH inside MULTI is not allowed".into(),
        ));
    }
    for key in c.args.iter_from(1) {
        let (map, hash) = super::locate(&mut c.db, key)?;
        let list = &mut c.client.tx.watch;
        if list
            .keys
            .iter()
            .any(|w| w.db == c.client.db && w.hash == hash && *w.key == *key)
        {
            continue;
        }
        // Reap a key that is already expired: its later removal is then no change.
        map.get_live(hash, key, c.now);
        let version = map.watch(hash, key);
        list.dbs.get_or_insert_with(|| Arc::clone(&c.state.dbs));
        list.keys.push(Watched {
            key: key.into(),
            hash,
            version,
            db: c.client.db,
        });
    }
    c.out.ok();
    Ok(())
}

/// UNWATCH
pub fn unwatch(c: &mut Ctx<'_, '_>) -> CommandResult {
    c.client.tx.watch.unwatch_all();
    c.out.ok();
    Ok(())
}

/// Handles one command of a connection that is inside `MULTI`: runs the
/// commands Redis never queues, queues the rest.
pub fn in_multi(
    state: &ServerState,
    client: &mut ClientState,
    out: &mut Replies,
    scratch: &mut ExecScratch,
    cmd: Invocation<'_>,
    worker: usize,
) {
    let name = cmd.spec.map(|s| s.name);
    match name {
        Some("exec") => exec(state, client, out, scratch, cmd, worker),
        // RESET too, as Redis: it ends the transaction instead of joining it.
        Some("multi" | "discard" | "watch" | "quit" | "reset") => {
            super::execute(state, client, out, scratch, std::iter::once(cmd), worker);
        }
        _ => {
            out.set_style(cmd.style.with_resp3(client.resp3));
            // As Redis, a command that needs memory is refused while queuing if
            // eviction cannot make room, which aborts the transaction.
            let admitted = admit(state, client, &cmd)
                .and_then(|spec| match spec.flags.no_multi {
                    true => Err(CommandError::Other(
                        "ERR Command not allowed inside a transaction".into(),
                    )),
                    false => Ok(spec),
                })
                .and_then(|spec| check_queue_size(state, client, &cmd, spec))
                .and_then(|spec| {
                    if spec.flags.denyoom {
                        super::maxmemory::make_room(state)?;
                    }
                    Ok(spec)
                });
            match admitted {
                Ok(spec) => {
                    // An aborted transaction keeps nothing: EXEC will only refuse it.
                    if !client.tx.aborted {
                        if let Some(queue) = client.tx.queue.as_mut() {
                            queue.push(spec, &cmd.args);
                        }
                    }
                    out.simple("QUEUED");
                }
                Err(e) => {
                    client.tx.aborted = true;
                    if let Some(queue) = client.tx.queue.as_mut() {
                        *queue = Queue::default();
                    }
                    out.error(&e.to_string());
                }
            }
        }
    }
}

/// Bounds a transaction's memory: its queued arguments may not exceed
/// `client-query-buffer-limit` (1 GiB by default), the bound on one client's
/// unprocessed input. Redis has no such limit short of `maxmemory`.
fn check_queue_size(
    state: &ServerState,
    client: &ClientState,
    cmd: &Invocation<'_>,
    spec: &'static CommandSpec,
) -> Result<&'static CommandSpec, CommandError> {
    let queued = client.tx.queue.as_ref().map_or(0, |q| q.bytes.len());
    let adding: usize = (0..cmd.args.len()).map(|i| cmd.args.get(i).len()).sum();
    if queued + adding > state.config.client_query_buffer_limit {
        return Err(CommandError::Other(
            "ERR transaction too large: queued arguments exceed client-query-buffer-limit".into(),
        ));
    }
    Ok(spec)
}

/// EXEC inside `MULTI`: all queued commands under one set of shard locks,
/// their WAL records framed as one unit.
fn exec(
    state: &ServerState,
    client: &mut ClientState,
    out: &mut Replies,
    scratch: &mut ExecScratch,
    cmd: Invocation<'_>,
    worker: usize,
) {
    let started = Instant::now();
    out.set_style(cmd.style.with_resp3(client.resp3));
    let Some(spec) = cmd.spec else {
        return;
    };
    if !spec.arity_ok(cmd.args.len()) {
        // Redis aborts the transaction when EXEC itself is refused.
        client.tx.discard();
        out.error("EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command");
        return;
    }
    let queue = client.tx.queue.take().unwrap_or_default();
    if std::mem::take(&mut client.tx.aborted) {
        client.tx.watch.unwatch_all();
        out.error(EXECABORT);
        return;
    }
    // EXEC of a transaction that needs memory is itself `denyoom` (Redis 7).
    if queue.commands.iter().any(|q| q.spec.flags.denyoom) {
        if let Err(oom) = super::maxmemory::make_room(state) {
            client.tx.watch.unwatch_all();
            out.error(&format!("EXECABORT Transaction discarded because of: {oom}"));
            return;
        }
    }
    let dbs = &state.dbs;
    let first_db = client.db;
    let mut shards = ShardSet::default();
    let mut every_shard = false;
    for q in &queue.commands {
        match q.spec.keys {
            Some(KeySpec::Range { .. }) => {
                let args = queue.args(q);
                for k in q
                    .spec
                    .keys
                    .into_iter()
                    .flat_map(|keys| keys.positions(args.len()))
                {
                    dbs.add_key(&mut shards, args.get(k));
                }
            }
            // Keyless commands may read the whole keyspace (KEYS, DBSIZE, INFO)
            // or any database (SELECT, MOVE, SWAPDB, FLUSHALL): they run with
            // every shard of every database held, lent by `lend_every_store`.
            Some(KeySpec::All) | None => every_shard = true,
        }
    }
    for w in &client.tx.watch.keys {
        shards.insert(dbs.store(first_db).shard_of(w.hash));
        every_shard |= w.db != first_db;
    }
    let mut held = if every_shard {
        let (serial, all) = dbs.lock_everything();
        Some(Held::Every { _serial: serial, all })
    } else {
        (!shards.is_empty()).then(|| Held::One(dbs.physical_index(first_db), dbs.lock_set(first_db, shards)))
    };
    if let Some(Held::One(physical, _)) = held.as_mut() {
        // lock_set verified the table: this is the store of `first_db` until unlock.
        *physical = dbs.physical_index(first_db);
    }
    let now = crate::store::now_ms();
    if let Some(held) = held.as_mut() {
        let changed = client.tx.watch.changed(dbs, held, now);
        client.tx.watch.unwatch_locked(dbs, held);
        if changed {
            out.null_array();
            return;
        }
    }
    let stats = state.stats.worker(worker);
    let reply_start = out.len();
    out.array(queue.commands.len());
    scratch.records.clear();
    let logging = super::records_needed(state);
    let mut wrote = false;
    // The database the records so far are in: a SELECT inside the transaction
    // makes the following commands' records need a Select record first.
    let mut records_db = first_db;
    // One clock read per command: each span ends where the next begins.
    let mut t0 = Instant::now();
    // Commands that logged a change, for `rdb_changes_since_last_save`.
    let mut changes = 0;
    // Blocking commands inside EXEC answer at once (`list::block_on`).
    client.in_exec = true;
    for q in &queue.commands {
        let mark = out.len();
        let cmd_db = client.db;
        let records_before = scratch.records.len();
        // The write gate is checked again: the WAL may have failed since queuing.
        let gate = match (state.wal(), q.spec.flags.write) {
            (Some(wal), true) => wal
                .check_writable()
                .map_err(|e| CommandError::Other(e.to_string())),
            _ => Ok(()),
        };
        let (result, hits, misses) = match gate {
            Err(e) => (Err(e), 0, 0),
            Ok(()) => {
                wrote |= q.spec.flags.write;
                let keyed = matches!(q.spec.keys, Some(KeySpec::Range { .. }) | Some(KeySpec::All));
                let physical = dbs.physical_index(cmd_db);
                if q.spec.flags.script {
                    // Scripts are keyless here, so EXEC holds every shard.
                    let result = match held.as_mut() {
                        Some(Held::Every { all, .. }) => super::scripting::run_in_exec(
                            state,
                            client,
                            out,
                            &mut scratch.records,
                            q.spec.name,
                            queue.args(q),
                            all,
                            worker,
                        ),
                        _ => Err(CommandError::Other(
                            "ERR internal error: script without every shard".into(),
                        )),
                    };
                    if let Err(e) = &result {
                        out.truncate(mark);
                        out.error(&e.to_string());
                    }
                    changes += u64::from(scratch.records.len() > records_before);
                    let t1 = Instant::now();
                    stats.record(q.spec.index(), t1 - t0, result.is_err(), 0, 0);
                    t0 = t1;
                    continue;
                }
                let (db, _lent) = match held.as_mut() {
                    Some(h) if keyed => (h.locked(physical), None),
                    Some(Held::Every { all, .. }) => (None, Some(lend_every_store(all))),
                    _ => (None, None),
                };
                let mut ctx = Ctx {
                    args: queue.args(q),
                    out: &mut *out,
                    state,
                    client: &mut *client,
                    db,
                    log: RecordLog {
                        buf: &mut scratch.records,
                        pieces: None,
                        enabled: logging,
                    },
                    now,
                    hits: 0,
                    misses: 0,
                };
                let suppress = ctx.client.no_touch && q.spec.name != "touch";
                let result = crate::store::evict::without_touching(suppress, || (q.spec.handler)(&mut ctx));
                let changed = ctx.log.buf.len() > records_before;
                super::after_handler(&mut ctx, q.spec, result.is_ok(), changed);
                (result, ctx.hits, ctx.misses)
            }
        };
        if let Err(e) = &result {
            out.truncate(mark);
            out.error(&e.to_string());
        }
        changes += u64::from(scratch.records.len() > records_before);
        if scratch.records.len() > records_before && cmd_db != records_db {
            let mut select = Vec::with_capacity(16);
            Record::Select { db: cmd_db as u32 }.encode(&mut select);
            scratch.records.splice(records_before..records_before, select);
            records_db = cmd_db;
        }
        let t1 = Instant::now();
        stats.record(q.spec.index(), t1 - t0, result.is_err(), hits, misses);
        t0 = t1;
    }
    client.in_exec = false;
    if records_db != first_db {
        Record::Select { db: first_db as u32 }.encode(&mut scratch.records);
    }
    // Log while every shard is still locked, as one frame: all or nothing on replay.
    let lsn = match (state.wal(), scratch.records.is_empty()) {
        (Some(wal), false) => {
            wal.count_changes(changes);
            scratch.framed.clear();
            if crate::wal::encode_transaction(&scratch.records, &mut scratch.framed) {
                Some(wal.append_in(first_db as u32, &scratch.framed))
            } else {
                if scratch.records.len() > crate::wal::MAX_PAYLOAD_LEN as usize {
                    tracing::warn!(
                        bytes = scratch.records.len(),
                        "transaction too large for one WAL frame: logged as separate records"
                    );
                }
                Some(wal.append_in(first_db as u32, &scratch.records))
            }
        }
        _ => None,
    };
    drop(held);
    crate::notify::flush(state, client.db);
    if let (Some(wal), Some(lsn)) = (state.wal(), lsn) {
        if wrote {
            if let Err(e) = wal.commit(lsn) {
                crate::error_limited!(crate::wal::COMMIT_FAILED_LOG, "WAL commit failed: {e}");
                out.truncate(reply_start);
                out.error(&e.to_string());
            }
        }
    }
    stats.record(spec.index(), started.elapsed(), false, 0, 0);
}

/// The locks an `EXEC` holds: the shards of one database, or (with a keyless
/// command queued, or watched keys in another database) every shard of every
/// database plus the SWAPDB lock. Lives on the stack for one EXEC: boxing the
/// big variant would cost an allocation per EXEC instead.
#[allow(clippy::large_enum_variant)]
enum Held<'a> {
    /// Physical store index and its locked shards.
    One(usize, Locked<'a>),
    Every {
        /// Holds off SWAPDB and compaction starts until the frame is appended.
        _serial: parking_lot::MutexGuard<'a, ()>,
        all: Vec<Locked<'a>>,
    },
}

impl<'a> Held<'a> {
    /// The locks of physical store `physical`, if held.
    fn locked(&mut self, physical: usize) -> Option<&mut Locked<'a>> {
        match self {
            Held::One(p, locked) => (*p == physical).then_some(locked),
            Held::Every { all, .. } => all.get_mut(physical),
        }
    }

    /// The map of `hash`'s shard in physical store `physical`, if held.
    fn map(&mut self, physical: usize, hash: u64) -> Option<&mut ShardMap> {
        self.locked(physical)?.map(hash)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::config::Config;
    use crate::session::Session;
    use crate::state::{ClientState, ServerState};
    use crate::store::Databases;

    fn run(state: &ServerState, session: &mut Session, input: &[u8]) -> String {
        session.feed(state, input);
        let out = String::from_utf8_lossy(session.replies()).into_owned();
        session.clear_replies();
        out
    }

    #[test]
    fn a_transaction_larger_than_the_query_buffer_limit_is_refused_and_aborted() {
        let config = Config {
            wal: false,
            client_query_buffer_limit: 64 * 1024,
            ..Config::default()
        };
        let dbs = Arc::new(Databases::new(config.databases, config.shards));
        let state = ServerState::new(config, dbs, None, None);
        let mut s = Session::new(&state, ClientState::default(), 0);
        assert_eq!(run(&state, &mut s, b"*1\r\n$5\r\nMULTI\r\n"), "+OK\r\n");
        let value = "x".repeat(10_000);
        let set = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n{value}\r\n", value.len());
        let mut replies = String::new();
        for _ in 0..10 {
            replies += &run(&state, &mut s, set.as_bytes());
        }
        assert!(replies.starts_with("+QUEUED\r\n"), "{replies}");
        assert!(replies.contains("-ERR transaction too large"), "{replies}");
        assert_eq!(
            run(&state, &mut s, b"*1\r\n$4\r\nEXEC\r\n"),
            "-EXECABORT Transaction discarded because of previous errors.\r\n"
        );
        assert!(state.dbs.is_empty());
    }

    fn state() -> ServerState {
        let config = Config {
            wal: false,
            ..Config::default()
        };
        let dbs = Arc::new(Databases::new(config.databases, config.shards));
        ServerState::new(config, dbs, None, None)
    }

    /// Distinct watched keys over every shard of database 0.
    fn watched_keys(state: &ServerState) -> usize {
        let store = state.dbs.store(0);
        (0..store.shard_count())
            .map(|i| store.lock(i).watched_len())
            .sum()
    }

    #[test]
    fn watches_are_shared_per_key_and_released_by_exec_unwatch_and_disconnect() {
        let st = state();
        let mut a = Session::new(&st, ClientState::default(), 0);
        let mut b = Session::new(&st, ClientState::default(), 0);
        assert_eq!(run(&st, &mut a, b"WATCH k1 k2 k1\r\n"), "OK\r\n");
        assert_eq!(run(&st, &mut b, b"WATCH k1\r\n"), "OK\r\n");
        assert_eq!(watched_keys(&st), 2);
        assert_eq!(run(&st, &mut b, b"UNWATCH\r\n"), "OK\r\n");
        assert_eq!(watched_keys(&st), 2, "a still watches k1 and k2");
        assert_eq!(run(&st, &mut b, b"WATCH k3\r\n"), "OK\r\n");
        assert_eq!(watched_keys(&st), 3);
        drop(b);
        assert_eq!(watched_keys(&st), 2, "a disconnect releases its watches");
        assert_eq!(run(&st, &mut a, b"MULTI\r\nEXEC\r\n"), "OK\r\n(empty array)\r\n");
        assert_eq!(watched_keys(&st), 0, "EXEC releases the watches");
    }

    #[test]
    fn flushall_counts_as_a_change_only_for_watched_keys_that_existed() {
        let st = state();
        let mut a = Session::new(&st, ClientState::default(), 0);
        let mut other = Session::new(&st, ClientState::default(), 0);
        run(&st, &mut other, b"SET present v\r\n");
        assert_eq!(run(&st, &mut a, b"WATCH absent\r\n"), "OK\r\n");
        run(&st, &mut other, b"FLUSHALL\r\n");
        assert_eq!(
            run(&st, &mut a, b"MULTI\r\nPING\r\nEXEC\r\n"),
            "OK\r\nQUEUED\r\n1) PONG\r\n"
        );
        run(&st, &mut other, b"SET present v\r\n");
        assert_eq!(run(&st, &mut a, b"WATCH present\r\n"), "OK\r\n");
        run(&st, &mut other, b"FLUSHALL\r\n");
        assert_eq!(
            run(&st, &mut a, b"MULTI\r\nPING\r\nEXEC\r\n"),
            "OK\r\nQUEUED\r\n(nil)\r\n"
        );
    }

    /// Distinct watched keys over every shard of every physical store.
    fn watched_everywhere(state: &ServerState) -> usize {
        state
            .dbs
            .stores()
            .map(|store| {
                (0..store.shard_count())
                    .map(|i| store.lock(i).watched_len())
                    .sum::<usize>()
            })
            .sum()
    }

    /// Stores `key` in database `db` with an expiry long past: a stale key
    /// that nothing reaped yet (these tests run no active expiry cycle, the
    /// way Redis's use `DEBUG SET-ACTIVE-EXPIRE 0`).
    fn stale(state: &ServerState, db: usize, key: &[u8]) {
        let store = state.dbs.store(db);
        let hash = store.hash(key);
        store.lock(store.shard_of(hash)).set(hash, key, b"v", 1);
    }

    #[test]
    fn a_watch_moved_by_swapdb_is_released_by_unwatch_exec_and_disconnect() {
        let st = state();
        let mut a = Session::new(&st, ClientState::default(), 0);
        let mut other = Session::new(&st, ClientState::default(), 0);
        assert_eq!(run(&st, &mut a, b"WATCH k1 k2\r\n"), "OK\r\n");
        run(&st, &mut other, b"SWAPDB 0 1\r\n");
        assert_eq!(watched_everywhere(&st), 2);
        assert_eq!(run(&st, &mut a, b"UNWATCH\r\n"), "OK\r\n");
        assert_eq!(watched_everywhere(&st), 0);

        assert_eq!(run(&st, &mut a, b"WATCH k1\r\n"), "OK\r\n");
        run(&st, &mut other, b"SWAPDB 1 0\r\n");
        assert_eq!(
            run(&st, &mut a, b"MULTI\r\nPING\r\nEXEC\r\n"),
            "OK\r\nQUEUED\r\n1) PONG\r\n"
        );
        assert_eq!(watched_everywhere(&st), 0);

        assert_eq!(run(&st, &mut a, b"WATCH k1\r\n"), "OK\r\n");
        run(&st, &mut other, b"SWAPDB 0 1\r\n");
        drop(a);
        assert_eq!(watched_everywhere(&st), 0);
    }

    /// A client WATCHes `key` in database `watch_db`, another runs
    /// `SWAPDB 0 1`, then the first runs a one-command transaction: the
    /// replies from MULTI on (`(nil)` for EXEC when the swap touched the key).
    fn transaction_after_swapdb(st: &ServerState, watch_db: usize, key: &str) -> String {
        let mut a = Session::new(st, ClientState::default(), 0);
        let mut other = Session::new(st, ClientState::default(), 0);
        run(st, &mut a, format!("SELECT {watch_db}\r\n").as_bytes());
        assert_eq!(run(st, &mut a, format!("WATCH {key}\r\n").as_bytes()), "OK\r\n");
        run(st, &mut other, b"SWAPDB 0 1\r\n");
        run(st, &mut a, b"MULTI\r\nPING\r\nEXEC\r\n")
    }

    const COMMITTED: &str = "OK\r\nQUEUED\r\n1) PONG\r\n";
    const ABORTED: &str = "OK\r\nQUEUED\r\n(nil)\r\n";

    #[test]
    fn the_same_key_watched_in_two_databases_is_watched_in_both() {
        let st = state();
        let mut a = Session::new(&st, ClientState::default(), 0);
        let mut other = Session::new(&st, ClientState::default(), 0);
        assert_eq!(
            run(&st, &mut a, b"WATCH k\r\nSELECT 1\r\nWATCH k\r\n"),
            "OK\r\nOK\r\nOK\r\n"
        );
        run(&st, &mut other, b"SELECT 1\r\nSET k v\r\n");
        assert_eq!(run(&st, &mut a, b"MULTI\r\nPING\r\nEXEC\r\n"), ABORTED);
    }

    #[test]
    fn swapdb_does_not_touch_watched_stale_keys() {
        // multi.tcl: an expired key replaced with no key is no change.
        let st = state();
        stale(&st, 1, b"x");
        assert_eq!(transaction_after_swapdb(&st, 1, "x"), COMMITTED);
    }

    #[test]
    fn swapdb_does_not_touch_a_missing_key_replaced_with_a_stale_key() {
        let st = state();
        stale(&st, 0, b"x");
        assert_eq!(transaction_after_swapdb(&st, 1, "x"), COMMITTED);
    }

    #[test]
    fn swapdb_does_not_touch_a_stale_key_replaced_with_another_stale_key() {
        let st = state();
        stale(&st, 1, b"x");
        stale(&st, 0, b"x");
        assert_eq!(transaction_after_swapdb(&st, 1, "x"), COMMITTED);
    }

    #[test]
    fn swapdb_touches_a_stale_watched_key_replaced_with_a_live_one() {
        // Reaped by WATCH, so missing, then replaced with a live key: a change.
        let st = state();
        stale(&st, 0, b"y");
        let mut other = Session::new(&st, ClientState::default(), 0);
        run(&st, &mut other, b"SELECT 1\r\nSET y v\r\n");
        assert_eq!(transaction_after_swapdb(&st, 0, "y"), ABORTED);
    }
}
