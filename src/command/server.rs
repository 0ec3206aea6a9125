//! Connection and server commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, RESET,
//! CONFIG, COMMAND, INFO, STATS, HELP, SHUTDOWN, FLUSH, COMPACT, TIME.

use std::fmt::Write as _;

use super::table::{CommandSpec, KeySpec, COMMANDS};
use super::{int_arg, is, CommandError, CommandResult, Ctx};
use crate::protocol::Style;
use crate::state::ReplyMode;

/// PING [message]
pub fn ping(c: &mut Ctx<'_, '_>) -> CommandResult {
    if c.client.in_pubsub_context() {
        // Redis answers a subscribed RESP2 client with a `pong` message.
        if c.args.len() > 2 {
            return Err(CommandError::WrongArity("ping"));
        }
        c.out.array(2);
        c.out.bulk(b"pong");
        c.out.bulk(if c.args.len() == 2 { c.args.get(1) } else { b"" });
        return Ok(());
    }
    match c.args.len() {
        1 => c.out.simple("PONG"),
        2 => c.out.bulk(c.args.get(1)),
        _ => return Err(CommandError::WrongArity("ping")),
    }
    Ok(())
}

/// ECHO message
pub fn echo(c: &mut Ctx<'_, '_>) -> CommandResult {
    c.out.bulk(c.args.get(1));
    Ok(())
}

/// QUIT: OK, then the connection closes; later pipelined commands are not run.
pub fn quit(c: &mut Ctx<'_, '_>) -> CommandResult {
    c.client.close_after_reply = true;
    c.out.ok();
    Ok(())
}

/// RESET: puts the connection back in the state it had on connect, as
/// Redis's `clearClientConnectionState`: the transaction and every watch are
/// discarded, database 0 selected, RESP2 spoken again, `CLIENT REPLY` back to
/// ON, the name cleared (the library name and version stay: they describe the
/// client library, not the session), and authentication back to the default
/// user's, which with `requirepass` set means not authenticated.
/// `CLIENT NO-TOUCH` goes back to off, as Redis clears `CLIENT_NO_TOUCH`.
pub fn reset(c: &mut Ctx<'_, '_>) -> CommandResult {
    super::pubsub::leave_all(c);
    c.client.no_touch = false;
    c.client.tx.reset();
    c.client.db = 0;
    c.client.resp3 = false;
    if c.out.style().is_resp() {
        c.out.set_style(Style::Resp.with_resp3(false));
    }
    // A pending `CLIENT REPLY SKIP` still skips this reply, as in Redis (which
    // clears the OFF and SKIP_NEXT flags but not the one of the running command).
    if c.client.reply_mode != ReplyMode::Skipping {
        c.client.reply_mode = ReplyMode::On;
    }
    c.client.name = None;
    c.client.authenticated = !c.state.runtime.requirepass_set();
    c.out.simple("RESET");
    Ok(())
}

/// Compares two secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// Checks `user`/`password` against `requirepass` (the only user is `default`).
/// Without `requirepass` the default user has no password, as in Redis:
/// `AUTH user pass` succeeds for `default`, the one-argument form is an error.
fn authenticate(c: &mut Ctx<'_, '_>, user: Option<&[u8]>, password: &[u8]) -> CommandResult {
    let Some(expected) = c.state.runtime.requirepass() else {
        return match user {
            None => Err(CommandError::NoPasswordSet),
            Some(b"default") => Ok(()),
            Some(_) => Err(CommandError::WrongPass),
        };
    };
    let ok = constant_time_eq(password, expected.as_bytes()) & (user.unwrap_or(b"default") == b"default");
    if !ok {
        return Err(CommandError::WrongPass);
    }
    c.client.authenticated = true;
    Ok(())
}

/// AUTH [username] password
pub fn auth(c: &mut Ctx<'_, '_>) -> CommandResult {
    let (user, password) = match c.args.len() {
        2 => (None, c.args.get(1)),
        3 => (Some(c.args.get(1)), c.args.get(2)),
        _ => return Err(CommandError::Syntax),
    };
    authenticate(c, user, password)?;
    c.out.ok();
    Ok(())
}

/// HELLO [protover [AUTH username password] [SETNAME name]]: switches the
/// connection to RESP2 or RESP3 and answers the server-info map. As Redis,
/// every option is parsed before anything changes, authentication happens
/// before the name is set, and a failed HELLO changes nothing.
pub fn hello(c: &mut Ctx<'_, '_>) -> CommandResult {
    let mut version = None;
    if c.args.len() >= 2 {
        let v = int_arg(c.args.get(1)).map_err(|_| {
            CommandError::Other("ERR Protocol version is not an integer or out of range".into())
        })?;
        if !(2..=3).contains(&v) {
            return Err(CommandError::NoProto);
        }
        version = Some(v);
    }
    let mut credentials = None;
    let mut name = None;
    let mut i = 2;
    while i < c.args.len() {
        let more = c.args.len() - 1 - i;
        let option = c.args.get(i);
        if is(option, "auth") && more >= 2 {
            credentials = Some((c.args.get(i + 1), c.args.get(i + 2)));
            i += 3;
        } else if is(option, "setname") && more >= 1 {
            let candidate = c.args.get(i + 1);
            validate_name(candidate)?;
            name = Some(candidate);
            i += 2;
        } else {
            return Err(CommandError::Other(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(option)
            )));
        }
    }
    if let Some((user, password)) = credentials {
        authenticate(c, Some(user), password)?;
    }
    if !c.client.authenticated && c.state.runtime.requirepass_set() {
        return Err(CommandError::Other(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into(),
        ));
    }
    if let Some(name) = name {
        c.client.name = (!name.is_empty()).then(|| name.to_vec());
    }
    if let Some(version) = version {
        c.client.resp3 = version == 3;
        // The reply itself is already in the new protocol, as in Redis.
        if c.out.style().is_resp() {
            c.out.set_style(Style::Resp.with_resp3(c.client.resp3));
        }
    }
    c.out.map(7);
    c.out.bulk(b"server");
    c.out.bulk(b"kvserver");
    c.out.bulk(b"version");
    c.out.bulk(env!("CARGO_PKG_VERSION").as_bytes());
    c.out.bulk(b"proto");
    c.out.int(i64::from(c.client.resp_version()));
    c.out.bulk(b"id");
    c.out.int(c.client.id as i64);
    c.out.bulk(b"mode");
    c.out.bulk(b"standalone");
    c.out.bulk(b"role");
    c.out.bulk(b"master");
    c.out.bulk(b"modules");
    c.out.array(0);
    Ok(())
}

/// Redis's rule for client names: printable ASCII without spaces.
fn validate_name(name: &[u8]) -> CommandResult {
    if name.iter().any(|&b| b <= b' ' || b > b'~') {
        return Err(CommandError::Other(
            "ERR Client names cannot contain spaces, newlines or special characters.".into(),
        ));
    }
    Ok(())
}

pub(super) fn set_name(c: &mut Ctx<'_, '_>, name: &[u8]) -> CommandResult {
    validate_name(name)?;
    c.client.name = (!name.is_empty()).then(|| name.to_vec());
    Ok(())
}

fn key_positions(spec: &CommandSpec) -> (i64, i64, i64) {
    match spec.keys {
        Some(KeySpec::Range { first, last, step }) => (first as i64, last as i64, step as i64),
        Some(KeySpec::All) | None => (0, 0, 0),
    }
}

fn flag_words(spec: &CommandSpec) -> Vec<&'static str> {
    let mut words = vec![if spec.flags.write { "write" } else { "readonly" }];
    if spec.flags.admin {
        words.push("admin");
    }
    if spec.flags.denyoom {
        words.push("denyoom");
    }
    if spec.flags.no_multi {
        words.push("no_multi");
    }
    if spec.flags.may_block {
        words.push("blocking");
    }
    if spec.flags.no_auth {
        words.push("no_auth");
    }
    words
}

/// One COMMAND INFO entry: name, arity, flags, first key, last key, step.
fn command_info(c: &mut Ctx<'_, '_>, spec: &CommandSpec) {
    let (first, last, step) = key_positions(spec);
    let flags = flag_words(spec);
    c.out.array(6);
    c.out.bulk(spec.name.as_bytes());
    c.out.int(i64::from(spec.arity));
    c.out.set(flags.len());
    for flag in flags {
        c.out.simple(flag);
    }
    c.out.int(first);
    c.out.int(last);
    c.out.int(step);
}

fn group_of(spec: &CommandSpec) -> &'static str {
    const GENERIC: &[&str] = &[
        "del", "unlink", "exists", "type", "rename", "renamenx", "persist", "ttl", "pttl",
    ];
    if ["multi", "exec", "discard", "watch", "unwatch"].contains(&spec.name) {
        return "transactions";
    }
    if [
        "ping", "echo", "quit", "select", "auth", "hello", "client", "reset",
    ]
    .contains(&spec.name)
    {
        return "connection";
    }
    match spec.keys {
        None | Some(KeySpec::All) => "server",
        Some(_) if GENERIC.contains(&spec.name) || spec.name.contains("expire") => "generic",
        Some(_) => "string",
    }
}

/// COMMAND, COMMAND COUNT, COMMAND INFO name..., COMMAND DOCS [name...]
pub fn command(c: &mut Ctx<'_, '_>) -> CommandResult {
    if c.args.len() == 1 {
        c.out.array(COMMANDS.len());
        for spec in COMMANDS {
            command_info(c, spec);
        }
        return Ok(());
    }
    let sub = c.args.get(1);
    let requested: Vec<&'static CommandSpec> = if c.args.len() > 2 {
        c.args.iter_from(2).filter_map(super::lookup).collect()
    } else {
        COMMANDS.iter().collect()
    };
    if is(sub, "count") && c.args.len() == 2 {
        c.out.int(COMMANDS.len() as i64);
    } else if is(sub, "info") {
        c.out.array(requested.len());
        for spec in requested {
            command_info(c, spec);
        }
    } else if is(sub, "docs") {
        c.out.map(requested.len());
        for spec in requested {
            c.out.bulk(spec.name.as_bytes());
            c.out.map(3);
            c.out.bulk(b"summary");
            c.out.bulk(spec.summary.as_bytes());
            c.out.bulk(b"since");
            c.out.bulk(b"1.0.0");
            c.out.bulk(b"group");
            c.out.bulk(group_of(spec).as_bytes());
        }
    } else {
        return Err(CommandError::UnknownSubcommand {
            sub: String::from_utf8_lossy(sub).into_owned(),
            command: "COMMAND".into(),
        });
    }
    Ok(())
}

/// INFO [section ...]: Redis-format `# Section` blocks of `field:value` lines.
pub fn info(c: &mut Ctx<'_, '_>) -> CommandResult {
    let wanted: Vec<String> = c
        .args
        .iter_from(1)
        .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
        .collect();
    let text = crate::info::render(c.state, &wanted);
    c.out.verbatim(text.as_bytes());
    Ok(())
}

/// STATS: one JSON object (see `crate::info::stats_json`).
pub fn stats(c: &mut Ctx<'_, '_>) -> CommandResult {
    let json = crate::info::stats_json(c.state);
    c.out.bulk(json.as_bytes());
    Ok(())
}

/// HELP: the command list, as plain lines for text clients.
pub fn help(c: &mut Ctx<'_, '_>) -> CommandResult {
    let lines: Vec<String> = COMMANDS
        .iter()
        .map(|spec| {
            let mut line = spec.name.to_ascii_uppercase();
            if !spec.syntax.is_empty() {
                let _ = write!(line, " {}", spec.syntax);
            }
            format!("{line:<60} {}", spec.summary)
        })
        .collect();
    match c.out.style() {
        Style::Text { crlf } => {
            let joined = lines.join(if crlf { "\r\n" } else { "\n" });
            c.out.bulk(joined.as_bytes());
        }
        Style::Resp | Style::Resp3 => {
            c.out.array(lines.len());
            for line in &lines {
                c.out.simple(line);
            }
        }
    }
    Ok(())
}

/// SHUTDOWN [NOSAVE|SAVE|NOW|FORCE]: flush the WAL, stop accepting, let
/// every worker finish its command in hand, exit 0.
pub fn shutdown(c: &mut Ctx<'_, '_>) -> CommandResult {
    for word in c.args.iter_from(1) {
        if !["nosave", "save", "now", "force"].iter().any(|w| is(word, w)) {
            return Err(CommandError::Syntax);
        }
    }
    if crate::scripting::cache::any_busy() {
        // A busy script holds shards (and its worker) until it ends: only
        // NOSAVE may stop the server now, at once, as Redis does. Every
        // acknowledged write is in the WAL; the script's own effects are
        // appended only when it ends, so none of them is kept.
        if !c.args.iter_from(1).any(|w| is(w, "nosave")) {
            return Err(CommandError::Other(crate::scripting::cache::BUSY_ERROR.into()));
        }
        tracing::warn!(
            client = c.client.id,
            "SHUTDOWN NOSAVE while a script is busy: exiting now"
        );
        if let Some(wal) = c.state.wal() {
            let _ = wal.sync_all();
        }
        std::process::exit(0);
    }
    tracing::info!(client = c.client.id, "SHUTDOWN requested by a client");
    c.state.shutdown.request();
    c.client.close_after_reply = true;
    c.out.ok();
    Ok(())
}

/// FLUSH: returns once every write acknowledged before it is on disk.
pub fn flush(c: &mut Ctx<'_, '_>) -> CommandResult {
    if let Some(wal) = c.state.wal() {
        wal.sync_all().map_err(|e| CommandError::Other(e.to_string()))?;
    }
    c.out.ok();
    Ok(())
}

/// COMPACT / BGREWRITEAOF: start a background rewrite of the WAL.
pub fn compact(c: &mut Ctx<'_, '_>) -> CommandResult {
    let Some(wal) = c.state.wal() else {
        return Err(CommandError::Other(
            "ERR the WAL is disabled (wal = false), nothing to compact".into(),
        ));
    };
    if crate::store::lending_every_store() {
        // Inside EXEC, which holds every shard and the database-swap lock that
        // a compaction's snapshot needs: the flusher starts it after EXEC.
        wal.schedule_compaction();
        c.out.simple("Background WAL compaction scheduled");
        return Ok(());
    }
    wal.start_compaction()
        .map_err(|e| CommandError::Other(e.to_string()))?;
    c.out.simple("Background WAL compaction started");
    Ok(())
}

/// The WAL, or the error SAVE and BGSAVE give without one: with `wal =
/// false` there is nothing on disk to bring up to date.
fn wal_to_save(state: &crate::state::ServerState) -> Result<&std::sync::Arc<crate::wal::Wal>, CommandError> {
    state
        .wal()
        .ok_or_else(|| CommandError::Other("ERR the WAL is disabled (wal = false), nothing to save".into()))
}

/// SAVE: a compaction that this client waits for, Redis's synchronous
/// save. Only this connection waits; the server keeps serving everyone
/// else, and writes made meanwhile are in the new log too.
pub fn save(c: &mut Ctx<'_, '_>) -> CommandResult {
    let wal = wal_to_save(c.state)?;
    if wal.is_compacting() {
        return Err(CommandError::Other(
            "ERR Background save already in progress".into(),
        ));
    }
    wal.start_compaction()
        .and_then(|()| wal.wait_compaction())
        .map_err(|e| CommandError::Other(e.to_string()))?;
    c.out.ok();
    Ok(())
}

/// BGSAVE [SCHEDULE]: starts a compaction, Redis's background save. With
/// SCHEDULE while one runs, another starts when it ends.
pub fn bgsave(c: &mut Ctx<'_, '_>) -> CommandResult {
    let schedule = match c.args.len() {
        1 => false,
        2 if is(c.args.get(1), "schedule") => true,
        _ => return Err(CommandError::Syntax),
    };
    let wal = wal_to_save(c.state)?;
    // Inside EXEC (see `compact`), or SCHEDULE while one runs: after it.
    if crate::store::lending_every_store() || (schedule && wal.is_compacting()) {
        wal.schedule_compaction();
        c.out.simple("Background saving scheduled");
        return Ok(());
    }
    if wal.is_compacting() {
        return Err(CommandError::Other(
            "ERR Background save already in progress".into(),
        ));
    }
    wal.start_compaction()
        .map_err(|e| CommandError::Other(e.to_string()))?;
    c.out.simple("Background saving started");
    Ok(())
}

/// LASTSAVE: unix time of the last completed compaction (or of start-up).
pub fn lastsave(c: &mut Ctx<'_, '_>) -> CommandResult {
    let at = match c.state.wal() {
        Some(wal) => wal.stats().last_save_unix,
        None => crate::info::lastsave_without_wal(c.state),
    };
    c.out.int(at as i64);
    Ok(())
}

/// TIME: [unix seconds, microseconds].
pub fn time(c: &mut Ctx<'_, '_>) -> CommandResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    c.out.array(2);
    c.out.bulk_int(now.as_secs() as i64);
    c.out.bulk_int(i64::from(now.subsec_micros()));
    Ok(())
}
