//! Commands: the table (name, arity, flags, key positions, handler) and the
//! executor that runs one command or a batch of them against the store.
//!
//! This is the only layer that knows both the protocol (arguments in,
//! [`Replies`] out) and the store. Before a handler runs, the executor checks,
//! in Redis's order: lookup → arity → authentication → write gate (the WAL
//! must be accepting writes). Then it locks the shards of the command's keys
//! (ascending order), runs the handler, appends the WAL records the handler
//! produced *while the locks are still held* (so log order = memory order per
//! key), releases the locks and, under `fsync = "always"`, waits for the
//! group commit before the reply can be sent.
//!
//! # Batching
//! Consecutive keyed commands from one read (pipelining, `MSET`-heavy
//! clients) run as one batch: the union of their shards is locked once, each
//! command runs in order, their records go to the WAL in one append, and the
//! replies are released after the batch is applied — never before.

mod args;
pub mod client;
mod config;
mod databases;
mod error;
mod hash;
mod keys;
mod keyspace_events;
mod list;
pub mod maxmemory;
mod object;
pub mod pubsub;
pub mod scripting;
mod server;
mod set;
mod sort;
mod strings;
mod table;
pub mod transaction;
pub mod zset;

use std::time::Instant;

pub use args::Args;
pub use error::{CommandError, CommandResult};
pub use hash::hash_records;
pub use table::{lookup, CommandSpec, KeySpec, COMMANDS};

use crate::protocol::{Replies, Style};
use crate::shared_bytes::SharedBytes;
use crate::state::{ClientState, ReplyMode, ServerState};
use crate::store::{evict, Locked, ShardMap, ShardSet};
use crate::wal::{HashFields, Lsn, Record, RecordKind, WalError, FRAME_HEADER_LEN};

/// The most commands run under one set of shard locks: bounds how long a
/// pipelining client can hold shards other clients are waiting for.
pub const MAX_BATCH: usize = 256;

/// Everything a handler can see and touch.
pub struct Ctx<'a, 'l> {
    pub args: Args<'a>,
    pub out: &'a mut Replies,
    pub state: &'a ServerState,
    pub client: &'a mut ClientState,
    /// The locked shards of this command's keys (None for keyless commands).
    pub db: Option<&'a mut Locked<'l>>,
    pub log: RecordLog<'a>,
    /// Unix milliseconds at the start of the command (expiry decisions).
    pub now: u64,
    pub hits: u64,
    pub misses: u64,
}

/// Where handlers put the WAL records of their writes.
pub struct RecordLog<'a> {
    buf: &'a mut Vec<u8>,
    /// Big values referenced instead of copied: `(offset in buf, value)`.
    /// `None` where the records must be plain bytes (an `EXEC`'s frame).
    pieces: Option<&'a mut Vec<(usize, SharedBytes)>>,
    enabled: bool,
}

impl RecordLog<'_> {
    /// False when persistence is off: a handler may skip building a record.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Encodes `record` for the WAL (a no-op when persistence is off).
    pub fn push(&mut self, record: Record<'_>) {
        if self.enabled {
            record.encode(self.buf);
        }
    }

    /// Logs `SET key value` for a big value kept without a copy: the WAL
    /// holds a reference to the value until it is written, not a copy.
    pub fn push_shared_set(&mut self, key: &[u8], value: &SharedBytes, expires_at_ms: Option<u64>) {
        if !self.enabled {
            return;
        }
        match self.pieces.as_deref_mut() {
            Some(pieces) => {
                let at = crate::wal::encode_set_around_value(key, value, expires_at_ms, self.buf);
                pieces.push((at, value.clone()));
            }
            None => self.push(Record::Set {
                key,
                value,
                expires_at_ms,
            }),
        }
    }
}

impl RecordLog<'_> {
    /// Starts a hash record of `kind` for `key`; entries are encoded straight
    /// into the log buffer (no per-command allocation) and the frame is
    /// completed when the writer is dropped — or removed if it got no entry.
    pub fn hash_record<'w>(&'w mut self, kind: RecordKind, key: &'w [u8]) -> HashRecordWriter<'w> {
        let start = self.buf.len();
        let count_at = start + FRAME_HEADER_LEN + 4 + key.len();
        if self.enabled {
            // Frame header and key; payload length, count and crc are patched in `drop`.
            self.buf.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
            self.buf[start + 8] = kind as u8;
            self.buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
            self.buf.extend_from_slice(key);
            self.buf.extend_from_slice(&[0u8; 4]);
        }
        HashRecordWriter {
            buf: &mut *self.buf,
            enabled: self.enabled,
            kind,
            start,
            count_at,
            count: 0,
        }
    }
}

/// Encodes the entries of one hash record into the log buffer.
pub struct HashRecordWriter<'w> {
    buf: &'w mut Vec<u8>,
    enabled: bool,
    kind: RecordKind,
    start: usize,
    count_at: usize,
    count: u32,
}

impl HashRecordWriter<'_> {
    /// Adds one entry (the kind decides which parts are written).
    pub fn entry(&mut self, field: &[u8], value: &[u8], expires_at_ms: Option<u64>) {
        if self.enabled {
            HashFields::put_entry(self.buf, self.kind, field, value, expires_at_ms);
            self.count += 1;
        }
    }
}

impl Drop for HashRecordWriter<'_> {
    fn drop(&mut self) {
        if !self.enabled {
            return;
        }
        if self.count == 0 {
            self.buf.truncate(self.start);
            return;
        }
        let payload_len = (self.buf.len() - self.start - FRAME_HEADER_LEN) as u32;
        self.buf[self.count_at..self.count_at + 4].copy_from_slice(&self.count.to_le_bytes());
        self.buf[self.start + 4..self.start + 8].copy_from_slice(&payload_len.to_le_bytes());
        let crc = crc32c::crc32c(&self.buf[self.start + 4..]);
        self.buf[self.start..self.start + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The shard map of `key` and the key's hash. Errors only if the command
/// touched a key outside its declared key positions (a bug, not client input).
pub fn locate<'m>(
    db: &'m mut Option<&mut Locked<'_>>,
    key: &[u8],
) -> Result<(&'m mut ShardMap, u64), CommandError> {
    let locked = db.as_deref_mut().ok_or_else(internal_error)?;
    let hash = locked.store().hash(key);
    let map = locked.map(hash).ok_or_else(internal_error)?;
    Ok((map, hash))
}

fn internal_error() -> CommandError {
    CommandError::Other("ERR internal error: key outside the command's lock set".into())
}

/// One command of a batch, as the session hands it over.
#[derive(Clone, Copy)]
pub struct Invocation<'a> {
    pub args: Args<'a>,
    pub style: Style,
    /// The command's table entry, looked up once when it was framed (None: unknown).
    pub spec: Option<&'static CommandSpec>,
}

/// Per-connection scratch the executor reuses between reads.
#[derive(Default)]
pub struct ExecScratch {
    records: Vec<u8>,
    /// Big values of `records`, spliced in by the WAL (see [`RecordLog`]).
    pieces: Vec<(usize, SharedBytes)>,
    /// An `EXEC`'s records wrapped as one transaction frame.
    framed: Vec<u8>,
    admitted: Vec<Result<&'static CommandSpec, CommandError>>,
    /// Leave `fsync = always` commits to the driver (one per poll pass).
    deferred: bool,
    /// Highest WAL position a deferred commit must cover.
    commit_lsn: Option<Lsn>,
    /// Reply ranges of write batches awaiting the deferred commit.
    uncommitted: Vec<UncommittedBatch>,
    /// Styles of the replies in `uncommitted` (to rewrite them as errors).
    styles: Vec<Style>,
}

/// The replies of one write batch that a deferred commit must cover.
struct UncommittedBatch {
    replies: std::ops::Range<usize>,
    styles: std::ops::Range<usize>,
}

impl ExecScratch {
    /// See [`crate::session::Session::set_deferred_commit`].
    pub fn set_deferred_commit(&mut self, deferred: bool) {
        self.deferred = deferred;
    }

    /// The WAL position replies are waiting for, if any.
    pub fn pending_commit(&self) -> Option<Lsn> {
        self.commit_lsn
    }

    /// Ends the deferred commit; on failure every reply of the covered write
    /// batches becomes the error, so nothing unsynced is acknowledged.
    pub fn finish_commit(&mut self, out: &mut Replies, result: Result<(), &WalError>) {
        if let Err(e) = result {
            let message = e.to_string();
            let old = out.take_bytes();
            let mut copied = 0;
            for batch in &self.uncommitted {
                out.raw(&old[copied..batch.replies.start]);
                for &style in &self.styles[batch.styles.clone()] {
                    out.set_style(style);
                    out.error(&message);
                }
                copied = batch.replies.end;
            }
            out.raw(&old[copied..]);
        }
        self.commit_lsn = None;
        self.uncommitted.clear();
        self.styles.clear();
    }
}

/// Checks that must pass before a handler runs, in Redis's order.
fn admit(
    state: &ServerState,
    client: &ClientState,
    cmd: &Invocation<'_>,
) -> Result<&'static CommandSpec, CommandError> {
    let args = &cmd.args;
    let spec = cmd.spec.ok_or_else(|| unknown_command(args))?;
    if !spec.arity_ok(args.len()) {
        return Err(CommandError::WrongArity(spec.name));
    }
    if !client.authenticated && state.runtime.requirepass_set() && !spec.flags.no_auth {
        return Err(CommandError::NoAuth);
    }
    if state.is_loading() && !allowed_while_loading(spec) {
        return Err(CommandError::Loading);
    }
    // A plain field test for clients that never subscribed.
    if client.in_pubsub_context() && !pubsub::allowed_while_subscribed(spec.name) {
        return Err(CommandError::Other(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            pubsub::full_name(spec, args)
        )));
    }
    if spec.flags.write {
        if let Some(wal) = state.wal() {
            wal.check_writable()
                .map_err(|e| CommandError::Other(e.to_string()))?;
        }
    }
    Ok(spec)
}

/// Commands Redis flags `loading` (they touch no data): the rest get `-LOADING`
/// while the WAL is replayed, PING included, as in Redis.
fn allowed_while_loading(spec: &CommandSpec) -> bool {
    matches!(
        spec.name,
        "info"
            | "auth"
            | "hello"
            | "reset"
            | "quit"
            | "shutdown"
            | "client"
            | "select"
            | "command"
            | "config"
            | "stats"
            | "time"
    )
}

fn unknown_command(args: &Args<'_>) -> CommandError {
    let name = String::from_utf8_lossy(&args.get(0)[..args.get(0).len().min(128)]).into_owned();
    let mut preview = String::new();
    for i in 1..args.len().min(4) {
        let arg = args.get(i);
        preview.push('\'');
        preview.push_str(&String::from_utf8_lossy(&arg[..arg.len().min(128)]));
        preview.push_str("' ");
    }
    CommandError::UnknownCommand { name, args: preview }
}

/// True if a command can join a batch: a known keyed command with valid arity.
pub fn batchable(spec: Option<&CommandSpec>, argc: usize) -> bool {
    spec.is_some_and(|spec| spec.keys.is_some() && !spec.flags.may_block && spec.arity_ok(argc))
}

/// Runs `commands` (all batchable, or a single command of any kind) and
/// appends their replies to `out`. Returns how many ran: a batch ends early,
/// before a `denyoom` command that finds memory over `maxmemory` (see
/// [`maxmemory`]); the caller runs the rest as a new batch, which begins by
/// evicting. At least one command always runs.
pub fn execute<'a>(
    state: &ServerState,
    client: &mut ClientState,
    out: &mut Replies,
    scratch: &mut ExecScratch,
    commands: impl Iterator<Item = Invocation<'a>> + Clone,
    worker: usize,
) -> usize {
    let started = Instant::now();
    let reply_start = out.len();
    let stats = state.stats.worker(worker);
    // The database of the whole batch: only keyless commands (SELECT) change it,
    // and those never join a batch.
    let db = client.db;
    // Admission and the union of shards to lock.
    let mut shards = ShardSet::default();
    let mut first_needs_memory = false;
    scratch.admitted.clear();
    for cmd in commands.clone() {
        let admitted = admit(state, client, &cmd);
        if let Ok(spec) = admitted {
            first_needs_memory |= scratch.admitted.is_empty() && spec.flags.denyoom;
            match spec.keys {
                Some(KeySpec::All) => shards = state.dbs.all_shards(),
                Some(keys) => {
                    for k in keys.positions(cmd.args.len()) {
                        state.dbs.add_key(&mut shards, cmd.args.get(k));
                    }
                }
                None => {}
            }
        }
        scratch.admitted.push(admitted);
    }
    // Over maxmemory: evict before locking anything (eviction locks shards
    // one at a time); if that cannot make room, refuse the command. Later
    // commands of the batch are checked as they come (the loop below).
    if first_needs_memory {
        if let Err(oom) = maxmemory::make_room(state) {
            scratch.admitted[0] = Err(oom);
        }
    }
    scratch.records.clear();
    // Without a WAL, records are still built when notifications or tracking
    // need them: a write that recorded one changed something.
    let recording = records_needed(state);
    let mut locked = None;
    if !shards.is_empty() {
        if crate::scripting::cache::any_running() {
            // A script holds shards: never wait behind one that turned busy.
            match state.dbs.lock_set_unless_busy(db, shards) {
                Ok(l) => locked = Some(l),
                Err(_busy) => scratch
                    .admitted
                    .iter_mut()
                    .for_each(|a| *a = Err(CommandError::Other(crate::scripting::cache::BUSY_ERROR.into()))),
            }
        } else {
            locked = Some(state.dbs.lock_set(db, shards));
        }
    } else if crate::scripting::cache::any_busy() {
        // Keyless commands that read the keyspace would wait on the script's shards.
        for (cmd, admitted) in commands.clone().zip(scratch.admitted.iter_mut()) {
            if cmd.spec.is_some_and(|s| !scripting::allowed_while_busy(s.name)) {
                *admitted = Err(CommandError::Other(crate::scripting::cache::BUSY_ERROR.into()));
            }
        }
    }
    let count = scratch.admitted.len();
    // One clock read per command: each command's span ends where the next
    // one's begins (and the first begins once the locks are held).
    let mut t0 = Instant::now();
    let lock_wait = (t0 - started) / count.max(1) as u32;
    let mut wrote = false;
    // One clock read per batch: expiry decisions inside a batch share "now".
    let now = crate::store::now_ms();
    // Under `fsync = always` (the live policy: CONFIG SET may change it) a
    // driver that asked for it commits once per pass; remember each reply's
    // style so a failed commit can turn them into errors.
    let defer_commit = scratch.deferred
        && state
            .wal()
            .is_some_and(|wal| wal.fsync() == crate::wal::FsyncPolicy::Always);
    let styles_start = scratch.styles.len();
    let mut ran = 0;
    // Commands that logged a change, for `rdb_changes_since_last_save`.
    let mut changes = 0;
    for (cmd, admitted) in commands.clone().zip(scratch.admitted.drain(..)) {
        if ran > 0 && admitted.as_ref().is_ok_and(|spec| spec.flags.denyoom) && maxmemory::over_limit(state) {
            // Evicting needs the shards this batch holds: end it here.
            break;
        }
        ran += 1;
        let style = cmd.style.with_resp3(client.resp3);
        out.set_style(style);
        let mark = out.len();
        let mode_before = client.reply_mode;
        let records_before = scratch.records.len();
        let (recorded, result) = match admitted {
            Ok(spec) => {
                wrote |= spec.flags.write;
                let mut ctx = Ctx {
                    args: cmd.args,
                    out: &mut *out,
                    state,
                    client: &mut *client,
                    db: locked.as_mut(),
                    log: RecordLog {
                        buf: &mut scratch.records,
                        pieces: Some(&mut scratch.pieces),
                        enabled: recording,
                    },
                    now,
                    hits: 0,
                    misses: 0,
                };
                let suppress = ctx.client.no_touch && spec.name != "touch";
                let result = evict::without_touching(suppress, || (spec.handler)(&mut ctx));
                let changed = ctx.log.buf.len() > records_before;
                after_handler(&mut ctx, spec, result.is_ok(), changed);
                (Some((spec.index(), ctx.hits, ctx.misses)), result)
            }
            Err(e) => (None, Err(e)),
        };
        changes += u64::from(scratch.records.len() > records_before);
        if let Err(e) = &result {
            out.truncate(mark);
            let message = e.to_string();
            stats.error_reply(&message);
            out.error(&message);
        }
        let t1 = Instant::now();
        let elapsed = t1 - t0;
        t0 = t1;
        match recorded {
            Some((index, hits, misses)) => {
                stats.record(index, elapsed + lock_wait, result.is_err(), hits, misses);
                client.last_command = Some(index);
            }
            None => {
                if let Some(spec) = cmd.spec {
                    stats.rejected(spec.index());
                }
            }
        }
        if apply_reply_mode(client, mode_before) {
            out.truncate(mark);
        } else if defer_commit {
            scratch.styles.push(style);
        }
    }
    // Log while the shards are still locked: per-key WAL order = memory order.
    let lsn = match (state.wal(), scratch.records.is_empty()) {
        (Some(wal), false) => {
            wal.count_changes(changes);
            Some(wal.append_parts_in(db as u32, &scratch.records, &scratch.pieces))
        }
        _ => None,
    };
    // The WAL holds its own references: a big value is freed as soon as the
    // store and the log are done with it.
    scratch.pieces.clear();
    drop(locked);
    // Keyspace notifications of this batch, now that no shard is locked.
    crate::notify::flush(state, db);
    if ran > 1 {
        stats.batch(ran as u64);
    }
    if let (Some(wal), Some(lsn)) = (state.wal(), lsn) {
        if wrote && defer_commit {
            scratch.commit_lsn = Some(scratch.commit_lsn.map_or(lsn, |l| l.max(lsn)));
            scratch.uncommitted.push(UncommittedBatch {
                replies: reply_start..out.len(),
                styles: styles_start..scratch.styles.len(),
            });
            return ran;
        }
        if wrote {
            if let Err(e) = wal.commit(lsn) {
                // The writes are applied in memory but not durable: do not say OK.
                crate::error_limited!(crate::wal::COMMIT_FAILED_LOG, "WAL commit failed: {e}");
                out.truncate(reply_start);
                for cmd in commands.take(ran) {
                    out.set_style(cmd.style.with_resp3(client.resp3));
                    out.error(&e.to_string());
                }
            }
        }
    }
    // Nothing of this batch waits for a deferred commit.
    scratch.styles.truncate(styles_start);
    ran
}

/// True when handlers must produce records: for the WAL, and for keyspace
/// notifications and tracking, which learn from them what a write changed.
pub(crate) fn records_needed(state: &ServerState) -> bool {
    state.wal().is_some() || crate::notify::publishing() || state.tracking.any()
}

/// What follows every handler, wherever it runs (a batch, `EXEC`, a
/// script's `redis.call`): keyspace events of a write that changed
/// something, client-side caching (invalidate written keys, remember read
/// ones), and MONITOR. Each costs one relaxed load when unused.
pub(crate) fn after_handler(ctx: &mut Ctx<'_, '_>, spec: &CommandSpec, ok: bool, changed: bool) {
    if ok && changed && spec.flags.write && crate::notify::publishing() {
        keyspace_events::after_write(ctx, spec);
    }
    if ok && ctx.state.tracking.any() {
        crate::tracking::after_command(ctx.state, ctx.client, spec, &ctx.args, changed);
    }
    if ctx.state.pubsub.monitoring() {
        crate::monitor::feed(ctx.state, spec, &ctx.args, ctx.client.db, &ctx.client.addr);
    }
}

/// Applies `CLIENT REPLY` after a command ran; returns true when its reply
/// must be dropped. `mode_before` is the mode the command started in.
fn apply_reply_mode(client: &mut ClientState, mode_before: ReplyMode) -> bool {
    let suppress = client.reply_mode != ReplyMode::On;
    client.reply_mode = match (mode_before, client.reply_mode) {
        (_, ReplyMode::SkipNext) => ReplyMode::Skipping,
        (ReplyMode::Skipping, ReplyMode::Skipping) => ReplyMode::On,
        (_, mode) => mode,
    };
    suppress
}

/// Parses an integer argument (`ERR value is not an integer or out of range`).
pub fn int_arg(arg: &[u8]) -> Result<i64, CommandError> {
    crate::protocol::parse_i64(arg).ok_or(CommandError::NotInteger)
}

/// Most elements a negative HRANDFIELD, SRANDMEMBER or ZRANDMEMBER count
/// may ask for: the reply is built in memory, so an absurd count must not
/// exhaust it (Redis has no cap).
pub const MAX_RANDOM_REPEATS: u64 = 1 << 24;

/// Refuses a negative random-pick count beyond [`MAX_RANDOM_REPEATS`] with a
/// clear error, rather than answering fewer elements than asked.
pub fn check_random_repeats(count: i64, command: &str) -> Result<(), CommandError> {
    if count < 0 && count.unsigned_abs() > MAX_RANDOM_REPEATS {
        return Err(CommandError::Other(format!(
            "ERR value is out of range (kvserver caps a negative {command} count at -{MAX_RANDOM_REPEATS})"
        )));
    }
    Ok(())
}

/// A SCAN-family cursor argument (`ERR invalid cursor` if not a u64).
pub fn scan_cursor(arg: &[u8]) -> Result<u64, CommandError> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(CommandError::InvalidCursor)
}

/// The options of HSCAN, SSCAN and ZSCAN.
pub struct ScanOptions<'a> {
    /// The MATCH glob; None for none or `*`.
    pub pattern: Option<&'a [u8]>,
    /// COUNT (default 10, capped at 2^20: the work one call may do).
    pub count: usize,
    /// NOVALUES (HSCAN only).
    pub no_values: bool,
}

/// Parses `[MATCH pattern] [COUNT n]` (and `NOVALUES` when `allow_no_values`)
/// from argument `from` on, as Redis's `scanGenericCommand` does.
pub fn scan_options<'a>(
    args: Args<'a>,
    from: usize,
    allow_no_values: bool,
) -> Result<ScanOptions<'a>, CommandError> {
    let mut options = ScanOptions {
        pattern: None,
        count: 10,
        no_values: false,
    };
    let mut i = from;
    while i < args.len() {
        let word = args.get(i);
        let has_value = i + 1 < args.len();
        if is(word, "count") && has_value {
            let n = int_arg(args.get(i + 1))?;
            if n < 1 {
                return Err(CommandError::Syntax);
            }
            options.count = usize::try_from(n).unwrap_or(usize::MAX).min(1 << 20);
            i += 2;
        } else if is(word, "match") && has_value {
            options.pattern = Some(args.get(i + 1)).filter(|p| *p != b"*");
            i += 2;
        } else if allow_no_values && is(word, "novalues") {
            options.no_values = true;
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(options)
}

/// ASCII case-insensitive comparison of an option argument.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}
