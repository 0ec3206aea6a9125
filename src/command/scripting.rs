//! Scripting commands: `EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO`, `FCALL`,
//! `FCALL_RO` (run by their own executor path, like `EXEC`), and the
//! `SCRIPT` and `FUNCTION` administration commands (ordinary handlers).
//!
//! # Atomicity across threads
//! A script runs holding the shard locks of its declared keys (`numkeys`),
//! taken as a batch takes them. When `redis.call` touches a key whose shard
//! is not held (an undeclared key):
//! * a shard above every held one is locked, waiting (ascending order keeps
//!   the global lock order, so this cannot deadlock);
//! * a lower shard is only *tried*; if it is busy and the script has not
//!   written yet, the run is abandoned (nothing of it is visible: its reply
//!   and records are dropped) and the script runs again from the start with
//!   every shard of every database held, as `EXEC` does for keyless commands;
//! * if it already wrote, the try is repeated for a short bounded time, then
//!   the call fails with a script error (the writes so far stay, as with any
//!   script error in Redis), and the script's later runs start with every
//!   shard held.
//!
//! Commands that may touch any key (KEYS, SCAN, DBSIZE, SELECT, FLUSHALL...)
//! need every shard: the same escalation. No other client ever sees part of
//! a script. Inside `MULTI`, a script runs under `EXEC`'s locks (all shards).
//!
//! # Durability by effect
//! The records of the script's writes are gathered in one buffer and
//! appended as one transaction frame before any lock is released: replay
//! applies all of it or none of it and never runs Lua.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    admit, int_arg, is, Args, CommandError, CommandResult, Ctx, ExecScratch, Invocation, KeySpec, RecordLog,
};
use crate::protocol::{Replies, Style};
use crate::scripting::cache::{self, Running};
use crate::scripting::engine::{self, Host, Target};
use crate::scripting::ScriptFlags;
use crate::state::{ClientState, ServerState};
use crate::store::{lend_every_store, Locked, ShardSet};
use crate::wal::Record;

/// How long a script that already wrote retries an undeclared key's busy
/// shard before it fails (it cannot start over: its writes are visible).
const UNDECLARED_RETRY: Duration = Duration::from_millis(100);

/// True for the commands that run a script (their own executor path).
pub fn is_script_command(name: &str) -> bool {
    matches!(
        name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    )
}

/// Commands a script may not call (Redis's `noscript` flag).
fn noscript(name: &str) -> bool {
    matches!(
        name,
        "multi"
            | "exec"
            | "discard"
            | "watch"
            | "unwatch"
            | "auth"
            | "hello"
            | "reset"
            | "quit"
            | "client"
            | "shutdown"
            | "save"
            | "bgsave"
            | "bgrewriteaof"
            | "compact"
            | "flush"
            | "script"
            | "function"
            | "config"
    ) || is_script_command(name)
}

/// Keyless commands that touch no shard (the rest need every shard).
fn shardless(name: &str) -> bool {
    matches!(name, "ping" | "echo" | "time" | "command" | "help" | "lastsave")
}

/// Keyless commands served while a script is busy (they touch no shard).
pub fn allowed_while_busy(name: &str) -> bool {
    shardless(name)
        || matches!(
            name,
            "script"
                | "function"
                | "shutdown"
                | "auth"
                | "hello"
                | "quit"
                | "reset"
                | "client"
                | "config"
                | "multi"
                | "discard"
                | "unwatch"
                | "stats"
        )
}

/// Placeholder handler of the script commands in the table: the session and
/// `EXEC` route them to [`run`] and [`run_in_exec`] instead.
pub fn routed_elsewhere(_: &mut Ctx<'_, '_>) -> CommandResult {
    Err(CommandError::Other(
        "ERR internal error: script command outside its executor".into(),
    ))
}

/// The parsed arguments of a script command.
struct Call<'a> {
    /// SHA1 (EVAL family) or function name.
    name: String,
    body: Option<&'a [u8]>,
    is_eval: bool,
    read_only_command: bool,
    keys: Vec<&'a [u8]>,
    argv: Vec<&'a [u8]>,
}

fn parse_call<'a>(spec_name: &str, args: &Args<'a>) -> Result<Call<'a>, String> {
    let is_eval = spec_name.starts_with("eval");
    let numkeys = int_arg(args.get(2)).map_err(|e| e.to_string())?;
    if numkeys < 0 {
        return Err("ERR Number of keys can't be negative".into());
    }
    if numkeys as u64 > (args.len() - 3) as u64 {
        return Err("ERR Number of keys can't be greater than number of args".into());
    }
    let numkeys = numkeys as usize;
    let target = args.get(1);
    let (name, body) = match spec_name {
        "eval" | "eval_ro" => (crate::scripting::sha1hex(target), Some(target)),
        "evalsha" | "evalsha_ro" => {
            if target.len() != 40 {
                return Err("NOSCRIPT No matching script. Please use EVAL.".into());
            }
            (String::from_utf8_lossy(target).to_ascii_lowercase(), None)
        }
        _ => (String::from_utf8_lossy(target).into_owned(), None),
    };
    Ok(Call {
        name,
        body,
        is_eval,
        read_only_command: spec_name.ends_with("_ro"),
        keys: (3..3 + numkeys).map(|i| args.get(i)).collect(),
        argv: (3 + numkeys..args.len()).map(|i| args.get(i)).collect(),
    })
}

/// The flags of the script or function (compiling or loading it on this
/// worker), checked against the command as Redis 7 does.
fn prepare(call: &Call<'_>) -> Result<ScriptFlags, String> {
    let flags = engine::with_engine(|e| {
        if call.is_eval {
            let flags = e.prepare_eval(&call.name, call.body)?;
            if let Some(body) = call.body {
                cache::add_script_with_sha(&call.name, body);
            }
            Ok(flags)
        } else {
            e.function_flags(&call.name)
        }
    })?;
    if call.read_only_command && flags.declared && !flags.no_writes {
        return Err("ERR Can not execute a script with write flag using *_ro command.".into());
    }
    Ok(flags)
}

/// The locks a script holds (on the stack for one run: boxing the big
/// variant would cost an allocation per script).
#[allow(clippy::large_enum_variant)]
enum Locks<'h, 'a> {
    /// Shards of the script's database (grown by undeclared keys).
    Declared(Option<Locked<'a>>),
    /// Every shard of every database.
    Every(&'h mut [Locked<'a>]),
}

/// The executor side of `redis.call` for one run.
struct ScriptHost<'h, 'a> {
    state: &'a ServerState,
    worker: usize,
    /// The script's own client: its database (SELECT inside a script does
    /// not change the caller's, as in Redis 7), never blocking.
    client: ClientState,
    locks: Locks<'h, 'a>,
    records: &'h mut Vec<u8>,
    records_db: usize,
    start_db: usize,
    logging: bool,
    read_only: bool,
    oom_at_start: bool,
    wrote: bool,
    /// Set when the run must start over with every shard held.
    escalate: bool,
    can_escalate: bool,
    out: Replies,
    now: u64,
    entry: Arc<Running>,
    changes: u64,
    buf: Vec<u8>,
    ranges: Vec<(usize, usize)>,
}

impl ScriptHost<'_, '_> {
    fn undeclared(&mut self, why: &str) -> String {
        if !self.wrote && self.can_escalate {
            self.escalate = true;
            return "ERR script restarted with every shard held".into();
        }
        cache::remember_escalation(&self.entry.name);
        format!(
            "ERR {why} after the script wrote; declare every key the script touches (its next runs take every shard)"
        )
    }

    /// Makes sure the shards of `spec`'s keys are held.
    fn hold_keys(&mut self, spec: &super::CommandSpec, argc: usize) -> Result<(), String> {
        let dbs = &self.state.dbs;
        let Locks::Declared(slot) = &mut self.locks else {
            return Ok(());
        };
        let needs_every = match spec.keys {
            Some(KeySpec::Range { .. }) => self.client.db != self.start_db,
            Some(KeySpec::All) => true,
            None => !shardless(spec.name),
        };
        if needs_every {
            return Err(self.undeclared("a command that needs every shard (or another database) ran"));
        }
        let Some(keys) = spec.keys else {
            return Ok(());
        };
        let args = Args::new(&self.buf, &self.ranges);
        let mut wanted = ShardSet::default();
        for k in keys.positions(argc) {
            dbs.add_key(&mut wanted, args.get(k));
        }
        let mut missing = Vec::new();
        let mut bits = wanted.0;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if !slot.as_ref().is_some_and(|l| l.holds(i)) {
                missing.push(i);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if slot.is_none() {
            let mut set = ShardSet::default();
            missing.iter().for_each(|&i| set.insert(i));
            let locked = dbs
                .lock_set_unless_busy(self.start_db, set)
                .map_err(|_| cache::BUSY_ERROR.to_string())?;
            *slot = Some(locked);
            self.publish_locks();
            return Ok(());
        }
        for i in missing {
            let Locks::Declared(Some(locked)) = &mut self.locks else {
                return Ok(());
            };
            if locked.highest().is_none_or(|h| i > h) {
                locked.add_blocking(i);
                continue;
            }
            if locked.try_add(i) {
                continue;
            }
            if !self.wrote && self.can_escalate {
                return Err(self.undeclared("an undeclared key"));
            }
            let deadline = Instant::now() + UNDECLARED_RETRY;
            let mut got = false;
            while Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(200));
                let Locks::Declared(Some(locked)) = &mut self.locks else {
                    return Ok(());
                };
                if locked.try_add(i) {
                    got = true;
                    break;
                }
            }
            if !got {
                return Err(self.undeclared("an undeclared key's shard stayed busy"));
            }
        }
        self.publish_locks();
        Ok(())
    }

    /// Tells the running-script registry which shards this script holds.
    fn publish_locks(&self) {
        if let Locks::Declared(Some(l)) = &self.locks {
            let mask = (0..64).filter(|&i| l.holds(i)).fold(0u64, |m, i| m | 1 << i);
            self.entry.shards.store(mask, Ordering::Relaxed);
        }
    }
}

impl Host for ScriptHost<'_, '_> {
    fn call(&mut self, argv: &[Vec<u8>], resp3: bool) -> Result<Vec<u8>, String> {
        if self.escalate {
            return Err("ERR script restarted with every shard held".into());
        }
        let spec = super::lookup(&argv[0]).ok_or("ERR Unknown Redis command called from script")?;
        if !spec.arity_ok(argv.len()) {
            return Err("ERR Wrong number of args calling Redis command from script".into());
        }
        if noscript(spec.name) {
            return Err("ERR This Redis command is not allowed from script".into());
        }
        if spec.flags.write && self.read_only {
            return Err("ERR Write commands are not allowed from read-only scripts.".into());
        }
        if spec.flags.write && !self.wrote {
            if let Some(wal) = self.state.wal() {
                wal.check_writable().map_err(|e| e.to_string())?;
            }
        }
        if spec.flags.denyoom && self.oom_at_start && !self.wrote {
            return Err(CommandError::OutOfMemory.to_string());
        }
        self.buf.clear();
        self.ranges.clear();
        for a in argv {
            let start = self.buf.len();
            self.buf.extend_from_slice(a);
            self.ranges.push((start, self.buf.len()));
        }
        self.hold_keys(spec, argv.len())?;
        let started = Instant::now();
        self.out.clear();
        self.out.set_style(if resp3 { Style::Resp3 } else { Style::Resp });
        self.client.resp3 = resp3;
        let records_before = self.records.len();
        let cmd_db = self.client.db;
        let keyed = spec.keys.is_some();
        let physical = self.state.dbs.physical_index(cmd_db);
        let logging = self.logging;
        let (result, hits, misses) = {
            let (db, _lent) = match &mut self.locks {
                Locks::Every(all) if keyed => (all.get_mut(physical), None),
                Locks::Every(all) => (None, Some(lend_every_store(all))),
                Locks::Declared(l) if keyed => (l.as_mut(), None),
                Locks::Declared(_) => (None, None),
            };
            let mut ctx = Ctx {
                args: Args::new(&self.buf, &self.ranges),
                out: &mut self.out,
                state: self.state,
                client: &mut self.client,
                db,
                log: RecordLog {
                    buf: &mut *self.records,
                    pieces: None,
                    enabled: logging,
                },
                now: self.now,
                hits: 0,
                misses: 0,
            };
            let result = (spec.handler)(&mut ctx);
            let changed = ctx.log.buf.len() > records_before;
            super::after_handler(&mut ctx, spec, result.is_ok(), changed);
            (result, ctx.hits, ctx.misses)
        };
        if self.records.len() > records_before {
            self.changes += 1;
            if cmd_db != self.records_db {
                let mut select = Vec::with_capacity(16);
                Record::Select { db: cmd_db as u32 }.encode(&mut select);
                self.records.splice(records_before..records_before, select);
                self.records_db = cmd_db;
            }
        }
        if spec.flags.write && (result.is_ok() || self.records.len() > records_before) {
            self.wrote = true;
            self.entry.wrote.store(true, Ordering::Relaxed);
        }
        let stats = self.state.stats.worker(self.worker);
        stats.record(spec.index(), started.elapsed(), result.is_err(), hits, misses);
        match result {
            Ok(()) => Ok(self.out.bytes().to_vec()),
            Err(e) => {
                let message = e.to_string();
                stats.error_reply(&message);
                Err(message)
            }
        }
    }
}

fn running_entry(call: &Call<'_>, args: &Args<'_>, physical: usize) -> Running {
    Running {
        name: call.name.clone(),
        is_eval: call.is_eval,
        command: (0..args.len().min(8)).map(|i| args.get(i).to_vec()).collect(),
        started: Instant::now(),
        busy: AtomicBool::new(false),
        kill: AtomicBool::new(false),
        wrote: AtomicBool::new(false),
        physical: AtomicUsize::new(physical),
        shards: AtomicU64::new(0),
        every: AtomicBool::new(false),
    }
}

fn threshold(state: &ServerState) -> Option<Duration> {
    let ms = state.runtime.busy_reply_threshold_ms();
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// Everything a run needs besides its locks.
struct RunSetup<'c> {
    call: Call<'c>,
    read_only: bool,
    oom_at_start: bool,
}

fn setup<'c>(state: &ServerState, spec_name: &str, args: &Args<'c>) -> Result<RunSetup<'c>, String> {
    let call = parse_call(spec_name, args)?;
    let flags = prepare(&call)?;
    let read_only = call.read_only_command || flags.no_writes;
    let mut oom_at_start = false;
    if !read_only && !flags.allow_oom && state.runtime.maxmemory() > 0 {
        oom_at_start = super::maxmemory::make_room(state).is_err();
        if oom_at_start && flags.declared {
            return Err(CommandError::OutOfMemory.to_string());
        }
    }
    Ok(RunSetup {
        call,
        read_only,
        oom_at_start,
    })
}

/// Runs one script with `locks`, its reply to `out`. Unless it must start
/// over (escalation: the first result is true), `finish` gets its records
/// and change count while the locks are still held (the WAL append).
#[allow(clippy::too_many_arguments)]
fn run_once<'h, 'a, R>(
    state: &'a ServerState,
    db: usize,
    worker: usize,
    setup: &RunSetup<'_>,
    locks: Locks<'h, 'a>,
    records: &'h mut Vec<u8>,
    out: &mut Replies,
    entry: &Arc<Running>,
    can_escalate: bool,
    finish: impl FnOnce(&mut Vec<u8>, u64) -> R,
) -> (bool, Option<R>) {
    let client = ClientState {
        db,
        authenticated: true,
        in_exec: true,
        // MONITOR's address field for the commands a script calls, as Redis.
        addr: "lua".into(),
        ..ClientState::default()
    };
    let mut host = ScriptHost {
        state,
        worker,
        client,
        locks,
        records,
        records_db: db,
        start_db: db,
        logging: super::records_needed(state),
        read_only: setup.read_only,
        oom_at_start: setup.oom_at_start,
        wrote: false,
        escalate: false,
        can_escalate,
        out: Replies::default(),
        now: crate::store::now_ms(),
        entry: Arc::clone(entry),
        changes: 0,
        buf: Vec::new(),
        ranges: Vec::new(),
    };
    host.publish_locks();
    let target = if setup.call.is_eval {
        Target::Eval {
            sha: &setup.call.name,
            body: setup.call.body,
        }
    } else {
        Target::Function {
            name: &setup.call.name,
        }
    };
    let ran = engine::with_engine(|e| {
        e.run(
            &target,
            &setup.call.keys,
            &setup.call.argv,
            &mut host,
            out,
            entry,
            threshold(state),
        );
        Ok(())
    });
    if let Err(e) = ran {
        out.error(&e);
    }
    if host.escalate {
        return (true, None);
    }
    if host.records_db != db {
        Record::Select { db: db as u32 }.encode(host.records);
    }
    let changes = host.changes;
    let result = finish(host.records, changes);
    drop(host);
    (false, Some(result))
}

/// A script command outside `MULTI`: its own locks, one WAL frame.
pub fn run(
    state: &ServerState,
    client: &mut ClientState,
    out: &mut Replies,
    scratch: &mut ExecScratch,
    cmd: Invocation<'_>,
    worker: usize,
) {
    let started = Instant::now();
    out.set_style(cmd.style.with_resp3(client.resp3));
    let stats = state.stats.worker(worker);
    let spec = match admit(state, client, &cmd) {
        Ok(spec) => spec,
        Err(e) => {
            if let Some(spec) = cmd.spec {
                stats.rejected(spec.index());
            }
            let message = e.to_string();
            stats.error_reply(&message);
            out.error(&message);
            return;
        }
    };
    // MONITOR shows the script command, then (from `after_handler`) each
    // command it calls, as `[db lua]`.
    if state.pubsub.monitoring() {
        crate::monitor::feed(state, spec, &cmd.args, client.db, &client.addr);
    }
    let failed = |out: &mut Replies, message: &str| {
        stats.error_reply(message);
        out.error(message);
        stats.record(spec.index(), started.elapsed(), true, 0, 0);
    };
    let setup = match setup(state, spec.name, &cmd.args) {
        Ok(s) => s,
        Err(e) => return failed(out, &e),
    };
    let db = client.db;
    let dbs = &state.dbs;
    let mode_before = client.reply_mode;
    let mut every = cache::needs_every_shard(&setup.call.name);
    let mut declared = ShardSet::default();
    for key in &setup.call.keys {
        dbs.add_key(&mut declared, key);
    }
    let guard = cache::start_running(running_entry(&setup.call, &cmd.args, dbs.physical_index(db)));
    let entry = Arc::clone(&guard.entry);
    let mark = out.len();
    let mut framed = std::mem::take(&mut scratch.framed);
    let mut append = |records: &mut Vec<u8>, changes: u64| {
        (
            append_frame(state, db, records, &mut framed, changes),
            !records.is_empty(),
        )
    };
    let (lsn, wrote_records) = loop {
        scratch.records.clear();
        out.truncate(mark);
        if every {
            if cache::any_busy() {
                out.error(cache::BUSY_ERROR);
                break (None, false);
            }
            entry.every.store(true, Ordering::Relaxed);
            let (_serial, mut all) = dbs.lock_everything();
            let locks = Locks::Every(&mut all);
            let (_, done) = run_once(
                state,
                db,
                worker,
                &setup,
                locks,
                &mut scratch.records,
                out,
                &entry,
                false,
                &mut append,
            );
            break done.unwrap_or((None, false));
        }
        let locked = match declared.is_empty() {
            true => None,
            false => match dbs.lock_set_unless_busy(db, declared) {
                Ok(l) => Some(l),
                Err(_busy) => {
                    out.error(cache::BUSY_ERROR);
                    break (None, false);
                }
            },
        };
        let locks = Locks::Declared(locked);
        match run_once(
            state,
            db,
            worker,
            &setup,
            locks,
            &mut scratch.records,
            out,
            &entry,
            true,
            &mut append,
        ) {
            (true, _) => every = true,
            (false, done) => break done.unwrap_or((None, false)),
        }
    };
    scratch.framed = framed;
    drop(guard);
    if let (Some(wal), Some(lsn)) = (state.wal(), lsn) {
        if wrote_records {
            if let Err(e) = wal.commit(lsn) {
                crate::error_limited!(crate::wal::COMMIT_FAILED_LOG, "WAL commit failed: {e}");
                out.truncate(mark);
                out.error(&e.to_string());
            }
        }
    }
    // The keyspace events of the script's writes, now that its locks are gone.
    crate::notify::flush(state, client.db);
    let is_err = out.bytes().get(mark) == Some(&b'-');
    stats.record(spec.index(), started.elapsed(), is_err, 0, 0);
    client.last_command = Some(spec.index());
    if super::apply_reply_mode(client, mode_before) {
        out.truncate(mark);
    }
}

/// Appends the script's records as one transaction frame (locks held).
fn append_frame(
    state: &ServerState,
    db: usize,
    records: &[u8],
    framed: &mut Vec<u8>,
    changes: u64,
) -> Option<crate::wal::Lsn> {
    let wal = state.wal()?;
    if records.is_empty() {
        return None;
    }
    wal.count_changes(changes);
    framed.clear();
    if crate::wal::encode_transaction(records, framed) {
        Some(wal.append_in(db as u32, framed))
    } else {
        tracing::warn!(
            bytes = records.len(),
            "script effects too large for one WAL frame: logged as separate records"
        );
        Some(wal.append_in(db as u32, records))
    }
}

/// A script command queued in `MULTI`, run by `EXEC` with every shard held:
/// its records join the transaction's frame.
#[allow(clippy::too_many_arguments)]
pub fn run_in_exec<'a>(
    state: &'a ServerState,
    client: &ClientState,
    out: &mut Replies,
    records: &mut Vec<u8>,
    spec_name: &str,
    args: Args<'_>,
    all: &mut [Locked<'a>],
    worker: usize,
) -> CommandResult {
    let setup = setup(state, spec_name, &args).map_err(CommandError::Other)?;
    let guard = cache::start_running(running_entry(
        &setup.call,
        &args,
        state.dbs.physical_index(client.db),
    ));
    guard.entry.every.store(true, Ordering::Relaxed);
    let entry = Arc::clone(&guard.entry);
    run_once(
        state,
        client.db,
        worker,
        &setup,
        Locks::Every(all),
        records,
        out,
        &entry,
        false,
        |_, _| (),
    );
    Ok(())
}

/// SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP
pub fn script(c: &mut Ctx<'_, '_>) -> CommandResult {
    let sub = c.args.get(1);
    let argc = c.args.len();
    if is(sub, "load") && argc == 3 {
        let body = c.args.get(2);
        engine::with_engine(|e| e.check_compiles(body)).map_err(CommandError::Other)?;
        let sha = cache::add_script(body);
        c.out.bulk(sha.as_bytes());
    } else if is(sub, "exists") && argc >= 3 {
        c.out.array(argc - 2);
        for i in 2..argc {
            let sha = String::from_utf8_lossy(c.args.get(i)).to_ascii_lowercase();
            c.out.int(i64::from(cache::has_script(&sha)));
        }
    } else if is(sub, "flush") && argc <= 3 {
        if argc == 3 && !is(c.args.get(2), "async") && !is(c.args.get(2), "sync") {
            return Err(CommandError::Other(
                "ERR SCRIPT FLUSH only support SYNC|ASYNC option".into(),
            ));
        }
        cache::flush_scripts();
        c.out.ok();
    } else if is(sub, "kill") && argc == 2 {
        kill_reply(c, true)?;
    } else if is(sub, "help") && argc == 2 {
        let lines = [
            "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "EXISTS <sha1> [<sha1> ...]",
            "FLUSH [ASYNC|SYNC]",
            "KILL",
            "LOAD <script>",
            "HELP",
        ];
        c.out.status_lines(&lines);
    } else {
        return Err(subcommand_error(sub, "SCRIPT"));
    }
    Ok(())
}

fn subcommand_error(sub: &[u8], cmd: &str) -> CommandError {
    CommandError::Other(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {cmd} HELP.",
        String::from_utf8_lossy(sub)
    ))
}

fn kill_reply(c: &mut Ctx<'_, '_>, eval: bool) -> CommandResult {
    use cache::KillOutcome::*;
    match cache::kill(eval) {
        Killed => {
            c.out.ok();
            Ok(())
        }
        NotBusy => Err(CommandError::Other("NOTBUSY No scripts in execution right now.".into())),
        Unkillable => Err(CommandError::Other(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.".into(),
        )),
        WrongKind if eval => Err(CommandError::Other(
            "BUSY Redis is busy running a function. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.".into(),
        )),
        WrongKind => Err(CommandError::Other(
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.".into(),
        )),
    }
}

/// FUNCTION LOAD|DELETE|LIST|FLUSH|DUMP|RESTORE|STATS|KILL|HELP
pub fn function(c: &mut Ctx<'_, '_>) -> CommandResult {
    let sub = c.args.get(1);
    let argc = c.args.len();
    let other = |m: String| CommandError::Other(m);
    if is(sub, "load") && argc >= 3 {
        let mut replace = false;
        for i in 2..argc - 1 {
            if is(c.args.get(i), "replace") {
                replace = true;
            } else {
                return Err(other(format!(
                    "ERR Unknown option given: {}",
                    String::from_utf8_lossy(c.args.get(i))
                )));
            }
        }
        let code = c.args.get(argc - 1);
        let lib = crate::scripting::library_from_code(code).map_err(other)?;
        let name = lib.name.clone();
        cache::change_libraries(|libs| libs.add(lib, replace)).map_err(other)?;
        c.log.push(Record::Function { op: 1, data: code });
        c.out.bulk(name.as_bytes());
    } else if is(sub, "delete") && argc == 3 {
        let name = String::from_utf8_lossy(c.args.get(2)).into_owned();
        cache::change_libraries(|libs| match libs.remove(&name) {
            true => Ok(()),
            false => Err("ERR Library not found".to_string()),
        })
        .map_err(other)?;
        c.log.push(Record::Function {
            op: 2,
            data: name.as_bytes(),
        });
        c.out.ok();
    } else if is(sub, "flush") && argc <= 3 {
        if argc == 3 && !is(c.args.get(2), "async") && !is(c.args.get(2), "sync") {
            return Err(other("ERR FUNCTION FLUSH only supports SYNC|ASYNC option".into()));
        }
        cache::change_libraries(|libs| {
            *libs = cache::Libraries::default();
            Ok(())
        })
        .map_err(other)?;
        c.log.push(Record::Function { op: 3, data: b"" });
        c.out.ok();
    } else if is(sub, "list") {
        function_list(c)?;
    } else if is(sub, "dump") && argc == 2 {
        let libs = cache::libraries_snapshot();
        let payload = crate::scripting::functions::dump(libs.libs.values().map(|l| &l.code[..]));
        c.out.bulk(&payload);
    } else if is(sub, "restore") && (argc == 3 || argc == 4) {
        function_restore(c)?;
    } else if is(sub, "stats") && argc == 2 {
        let libs = cache::libraries_snapshot();
        c.out.map(2);
        c.out.bulk(b"running_script");
        match cache::running_script() {
            Some((name, command, ms)) => {
                c.out.map(3);
                c.out.bulk(b"name");
                c.out.bulk(name.as_bytes());
                c.out.bulk(b"command");
                c.out.array(command.len());
                command.iter().for_each(|a| c.out.bulk(a));
                c.out.bulk(b"duration_ms");
                c.out.int(ms as i64);
            }
            None => c.out.nil(),
        }
        c.out.bulk(b"engines");
        c.out.map(1);
        c.out.bulk(b"LUA");
        c.out.map(2);
        c.out.bulk(b"libraries_count");
        c.out.int(libs.libs.len() as i64);
        c.out.bulk(b"functions_count");
        c.out.int(libs.functions.len() as i64);
    } else if is(sub, "kill") && argc == 2 {
        kill_reply(c, false)?;
    } else if is(sub, "help") && argc == 2 {
        let lines = [
            "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LOAD [REPLACE] <FUNCTION CODE>",
            "DELETE <LIBRARY NAME>",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "FLUSH [ASYNC|SYNC]",
            "DUMP",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "STATS",
            "KILL",
            "HELP",
        ];
        c.out.status_lines(&lines);
    } else {
        return Err(subcommand_error(sub, "FUNCTION"));
    }
    Ok(())
}

fn function_list(c: &mut Ctx<'_, '_>) -> CommandResult {
    let mut pattern: Option<Vec<u8>> = None;
    let mut with_code = false;
    let mut i = 2;
    while i < c.args.len() {
        let arg = c.args.get(i);
        if is(arg, "withcode") && !with_code {
            with_code = true;
            i += 1;
        } else if is(arg, "libraryname") && pattern.is_none() {
            if i + 1 >= c.args.len() {
                return Err(CommandError::Other(
                    "ERR library name argument was not given".into(),
                ));
            }
            pattern = Some(c.args.get(i + 1).to_vec());
            i += 2;
        } else {
            return Err(CommandError::Other(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(arg)
            )));
        }
    }
    let libs = cache::libraries_snapshot();
    let chosen: Vec<_> = libs
        .libs
        .values()
        .filter(|l| {
            pattern
                .as_deref()
                .is_none_or(|p| crate::store::glob_match(p, l.name.as_bytes()))
        })
        .collect();
    c.out.array(chosen.len());
    for lib in chosen {
        c.out.map(if with_code { 4 } else { 3 });
        c.out.bulk(b"library_name");
        c.out.bulk(lib.name.as_bytes());
        c.out.bulk(b"engine");
        c.out.bulk(b"LUA");
        c.out.bulk(b"functions");
        c.out.array(lib.functions.len());
        for f in &lib.functions {
            c.out.map(3);
            c.out.bulk(b"name");
            c.out.bulk(f.name.as_bytes());
            c.out.bulk(b"description");
            match &f.description {
                Some(d) => c.out.bulk(d.as_bytes()),
                None => c.out.nil(),
            }
            c.out.bulk(b"flags");
            let names = f.flags.names();
            c.out.set(names.len());
            names.iter().for_each(|n| c.out.bulk(n.as_bytes()));
        }
        if with_code {
            c.out.bulk(b"library_code");
            c.out.bulk(&lib.code);
        }
    }
    Ok(())
}

fn function_restore(c: &mut Ctx<'_, '_>) -> CommandResult {
    #[derive(PartialEq)]
    enum Policy {
        Append,
        Replace,
        Flush,
    }
    let policy = match c.args.len() {
        3 => Policy::Append,
        _ => {
            let p = c.args.get(3);
            if is(p, "append") {
                Policy::Append
            } else if is(p, "replace") {
                Policy::Replace
            } else if is(p, "flush") {
                Policy::Flush
            } else {
                return Err(CommandError::Other(
                    "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.".into(),
                ));
            }
        }
    };
    let codes = crate::scripting::functions::undump(c.args.get(2)).map_err(CommandError::Other)?;
    let mut loaded = Vec::with_capacity(codes.len());
    for code in &codes {
        loaded.push(crate::scripting::library_from_code(code).map_err(CommandError::Other)?);
    }
    cache::change_libraries(|libs| {
        let mut next = if policy == Policy::Flush {
            cache::Libraries::default()
        } else {
            libs.clone()
        };
        for lib in loaded {
            if policy == Policy::Replace {
                // Libraries owning a function the restored one defines go too.
                let clashing: Vec<String> = lib
                    .functions
                    .iter()
                    .filter_map(|f| next.functions.get(&f.name).cloned())
                    .collect();
                for name in clashing {
                    next.remove(&name);
                }
            }
            next.add(lib, policy == Policy::Replace)?;
        }
        *libs = next;
        Ok(())
    })
    .map_err(CommandError::Other)?;
    // Logged as the resulting set: a flush and every library.
    c.log.push(Record::Function { op: 3, data: b"" });
    let libs = cache::libraries_snapshot();
    for lib in libs.libs.values() {
        c.log.push(Record::Function {
            op: 1,
            data: &lib.code,
        });
    }
    c.out.ok();
    Ok(())
}
