//! CLIENT: this connection's properties (ID, SETNAME, SETINFO, REPLY, …) and
//! every connection's introspection (LIST, INFO, KILL) through the client
//! registry, which knows no sockets: a kill is a flag plus a wake-up of the
//! worker that owns the connection.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::table::COMMANDS;
use super::{int_arg, is, CommandError, CommandResult, Ctx};
use crate::state::{ClientHandle, ClientNames, ReplyMode};

/// CLIENT subcommand ...
pub fn client(c: &mut Ctx<'_, '_>) -> CommandResult {
    let sub = c.args.get(1);
    let argc = c.args.len();
    if is(sub, "id") && argc == 2 {
        c.out.int(c.client.id as i64);
    } else if is(sub, "setname") && argc == 3 {
        super::server::set_name(c, c.args.get(2))?;
        c.out.ok();
    } else if is(sub, "getname") && argc == 2 {
        c.out.bulk_or_nil(c.client.name.as_deref());
    } else if is(sub, "setinfo") && argc == 4 {
        set_info(c)?;
    } else if is(sub, "info") && argc == 2 {
        let line = own_line(c);
        c.out.verbatim(line.as_bytes());
    } else if is(sub, "list") {
        list(c)?;
    } else if is(sub, "kill") && argc >= 3 {
        kill(c)?;
    } else if is(sub, "reply") && argc == 3 {
        reply(c)?;
    } else if is(sub, "unblock") && (argc == 3 || argc == 4) {
        unblock(c)?;
    } else if is(sub, "no-touch") && argc == 3 {
        c.client.no_touch = on_off(c.args.get(2))?;
        c.out.ok();
    } else if is(sub, "no-evict") && argc == 3 {
        // Accepted for compatibility: kvserver never evicts clients (its
        // output limits disconnect them instead), so there is nothing to opt out of.
        on_off(c.args.get(2))?;
        c.out.ok();
    } else if is(sub, "tracking") && argc >= 3 {
        tracking(c)?;
    } else if is(sub, "caching") && argc == 3 {
        caching(c)?;
    } else if is(sub, "getredir") && argc == 2 {
        let redirect = c.client.tracking.as_ref().map_or(-1, |m| m.redirect as i64);
        c.out.int(redirect);
    } else if is(sub, "trackinginfo") && argc == 2 {
        tracking_info(c);
    } else if is(sub, "help") && argc == 2 {
        help(c);
    } else if SUBCOMMANDS.iter().any(|name| is(sub, name)) {
        return Err(CommandError::Other(format!(
            "ERR wrong number of arguments for 'client|{}' command",
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        )));
    } else {
        return Err(unknown_subcommand(sub));
    }
    Ok(())
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: ends another client's blocking
/// command as if it timed out (null reply) or with `-UNBLOCKED`. `1` if the
/// client was blocked, else `0`.
fn unblock(c: &mut Ctx<'_, '_>) -> CommandResult {
    let id = int_arg(c.args.get(2))?;
    let reason = match c.args.len() {
        3 => crate::blocking::WakeReason::Timeout,
        _ if is(c.args.get(3), "timeout") => crate::blocking::WakeReason::Timeout,
        _ if is(c.args.get(3), "error") => crate::blocking::WakeReason::Error,
        _ => {
            return Err(CommandError::Other(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR".into(),
            ))
        }
    };
    let unblocked = u64::try_from(id)
        .ok()
        .and_then(|id| Some((id, c.state.blocking.unblock(id)?)))
        .map(|(id, worker)| c.state.clients.wake(worker, id, reason))
        .is_some();
    c.out.int(i64::from(unblocked));
    Ok(())
}

/// `ON` or `OFF`, case-insensitively; anything else is a syntax error.
fn on_off(arg: &[u8]) -> Result<bool, CommandError> {
    if is(arg, "on") {
        Ok(true)
    } else if is(arg, "off") {
        Ok(false)
    } else {
        Err(CommandError::Syntax)
    }
}

/// Every subcommand, for telling a wrong argument count from an unknown name.
const SUBCOMMANDS: &[&str] = &[
    "id",
    "setname",
    "getname",
    "setinfo",
    "info",
    "list",
    "kill",
    "reply",
    "no-evict",
    "no-touch",
    "help",
    "tracking",
    "caching",
    "getredir",
    "trackinginfo",
    "unblock",
];

fn unknown_subcommand(sub: &[u8]) -> CommandError {
    CommandError::UnknownSubcommand {
        sub: String::from_utf8_lossy(sub).into_owned(),
        command: "CLIENT".into(),
    }
}

fn set_info(c: &mut Ctx<'_, '_>) -> CommandResult {
    let value = c.args.get(3);
    if value.iter().any(|&b| b <= b' ' || b > b'~') {
        return Err(CommandError::Other(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(c.args.get(2)).to_ascii_lowercase()
        )));
    }
    let value = (!value.is_empty()).then(|| value.to_vec());
    if is(c.args.get(2), "lib-name") {
        c.client.lib_name = value;
    } else if is(c.args.get(2), "lib-ver") {
        c.client.lib_ver = value;
    } else {
        return Err(CommandError::Other(format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(c.args.get(2))
        )));
    }
    c.out.ok();
    Ok(())
}

/// CLIENT REPLY ON|OFF|SKIP. OFF and SKIP have no reply of their own; the
/// executor applies the mode after each command.
fn reply(c: &mut Ctx<'_, '_>) -> CommandResult {
    let mode = c.args.get(2);
    if is(mode, "on") {
        c.client.reply_mode = ReplyMode::On;
        c.out.ok();
    } else if is(mode, "off") {
        c.client.reply_mode = ReplyMode::Off;
    } else if is(mode, "skip") {
        if c.client.reply_mode != ReplyMode::Off {
            c.client.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        return Err(CommandError::Syntax);
    }
    Ok(())
}

/// CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id ...]]
fn list(c: &mut Ctx<'_, '_>) -> CommandResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut normal = true;
    let mut i = 2;
    while i < c.args.len() {
        if is(c.args.get(i), "type") && i + 1 < c.args.len() {
            normal = client_type_is_normal(c.args.get(i + 1))?;
            i += 2;
        } else if is(c.args.get(i), "id") && i + 1 < c.args.len() {
            let mut wanted = Vec::new();
            for j in i + 1..c.args.len() {
                match int_arg(c.args.get(j)) {
                    Ok(id) if id > 0 => wanted.push(id as u64),
                    _ => return Err(CommandError::Other("ERR Invalid client ID".into())),
                }
            }
            ids = Some(wanted);
            i = c.args.len();
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let mut text = String::new();
    if normal {
        let now = Instant::now();
        for handle in c.state.clients.snapshot() {
            if ids.as_ref().is_some_and(|ids| !ids.contains(&handle.id)) {
                continue;
            }
            if handle.id == c.client.id {
                text.push_str(&own_line(c));
            } else {
                text.push_str(&line(
                    &handle,
                    &handle.names(),
                    now,
                    None,
                    &Buffers::published(&handle),
                ));
            }
        }
    }
    c.out.verbatim(text.as_bytes());
    Ok(())
}

/// Normal clients are the only kind; the others are valid but empty.
fn client_type_is_normal(kind: &[u8]) -> Result<bool, CommandError> {
    if is(kind, "normal") {
        Ok(true)
    } else if is(kind, "master") || is(kind, "replica") || is(kind, "slave") || is(kind, "pubsub") {
        Ok(false)
    } else {
        Err(CommandError::Other(format!(
            "ERR Unknown client type '{}'",
            String::from_utf8_lossy(kind)
        )))
    }
}

/// One client's filters for CLIENT KILL (new form).
#[derive(Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<Vec<u8>>,
    laddr: Option<Vec<u8>>,
    max_age_secs: Option<u64>,
    normal: Option<bool>,
    skip_me: bool,
}

impl KillFilter {
    fn matches(&self, h: &ClientHandle, now: Instant) -> bool {
        self.id.is_none_or(|id| id == h.id)
            && self.addr.as_deref().is_none_or(|a| a == h.addr.as_bytes())
            && self.laddr.as_deref().is_none_or(|a| a == h.laddr.as_bytes())
            && self
                .max_age_secs
                .is_none_or(|age| now.duration_since(h.created).as_secs() >= age)
            && self.normal.unwrap_or(true)
    }
}

/// CLIENT KILL ip:port | CLIENT KILL <filter value> ...
fn kill(c: &mut Ctx<'_, '_>) -> CommandResult {
    let old_form = c.args.len() == 3;
    let filter = if old_form {
        KillFilter {
            addr: Some(c.args.get(2).to_vec()),
            ..KillFilter::default()
        }
    } else {
        parse_kill_filter(c)?
    };
    let now = Instant::now();
    let mut killed = 0;
    for handle in c.state.clients.snapshot() {
        if !filter.matches(&handle, now) {
            continue;
        }
        if handle.id == c.client.id {
            if filter.skip_me {
                continue;
            }
            // Closed by our own worker once this reply is written.
            c.client.close_after_reply = true;
        } else {
            c.state.clients.kill(&handle);
        }
        killed += 1;
    }
    if old_form {
        if killed == 0 {
            return Err(CommandError::Other("ERR No such client".into()));
        }
        c.out.ok();
    } else {
        c.out.int(killed);
    }
    Ok(())
}

fn parse_kill_filter(c: &Ctx<'_, '_>) -> Result<KillFilter, CommandError> {
    let mut filter = KillFilter {
        skip_me: true,
        ..KillFilter::default()
    };
    let args = &c.args;
    if (args.len() - 2) % 2 != 0 {
        return Err(CommandError::Syntax);
    }
    for i in (2..args.len()).step_by(2) {
        let (name, value) = (args.get(i), args.get(i + 1));
        if is(name, "id") {
            match int_arg(value) {
                Ok(id) if id > 0 => filter.id = Some(id as u64),
                _ => {
                    return Err(CommandError::Other(
                        "ERR client-id should be greater than 0".into(),
                    ))
                }
            }
        } else if is(name, "addr") {
            filter.addr = Some(value.to_vec());
        } else if is(name, "laddr") {
            filter.laddr = Some(value.to_vec());
        } else if is(name, "type") {
            filter.normal = Some(client_type_is_normal(value)?);
        } else if is(name, "user") {
            if !is(value, "default") {
                return Err(CommandError::Other(format!(
                    "ERR No such user '{}'",
                    String::from_utf8_lossy(value)
                )));
            }
        } else if is(name, "skipme") {
            filter.skip_me = if is(value, "yes") {
                true
            } else if is(value, "no") {
                false
            } else {
                return Err(CommandError::Syntax);
            };
        } else if is(name, "maxage") {
            match int_arg(value)? {
                age if age > 0 => filter.max_age_secs = Some(age as u64),
                _ => return Err(CommandError::Other("ERR maxage should be greater than 0".into())),
            }
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(filter)
}

/// This connection's line, from its own (freshest) state. As Redis does, it
/// shows the running command: `cmd=` names the subcommand (`client|list`),
/// `qbuf=` counts the read buffer, which still holds the running command
/// (26 bytes for a lone `CLIENT LIST` sent as RESP), and `argv-mem=` the
/// running command's arguments.
fn own_line(c: &Ctx<'_, '_>) -> String {
    let names = ClientNames {
        name: c.client.name.clone(),
        lib_name: c.client.lib_name.clone(),
        lib_ver: c.client.lib_ver.clone(),
    };
    let cmd = format!(
        "client|{}",
        String::from_utf8_lossy(c.args.get(1)).to_ascii_lowercase()
    );
    let fallback;
    let handle = match &c.client.handle {
        Some(handle) => handle.as_ref(),
        None => {
            fallback = ClientHandle::new(c.client.id, c.client.addr.clone(), String::new(), -1, 0);
            &fallback
        }
    };
    publish_own(c, handle);
    let query = c.client.query_buffer;
    let unsent = c.out.len();
    let buffers = Buffers {
        qbuf: query.len,
        qbuf_free: query.capacity.saturating_sub(query.len),
        argv_mem: c.args.iter_from(0).map(<[u8]>::len).sum(),
        multi_mem: c.client.tx.queued_memory(),
        rbs: c.out.capacity(),
        rbp: handle.reply_buffer_peak.load(Ordering::Relaxed).max(unsent),
        unsent,
        // Its input is being read right now; `w` still means output the
        // socket did not take at the last write.
        reading: true,
        writing: handle.output_buffer.load(Ordering::Relaxed) > 0,
    };
    line(handle, &names, Instant::now(), Some(&cmd), &buffers)
}

/// The caller's fields that may have changed earlier in this pass.
fn publish_own(c: &Ctx<'_, '_>, handle: &ClientHandle) {
    handle
        .resp
        .store(usize::from(c.client.resp_version()), Ordering::Relaxed);
    let multi = c.client.tx.queued().map_or(-1, |n| n as i64);
    handle.multi.store(multi, Ordering::Relaxed);
    handle.watch.store(c.client.tx.watched(), Ordering::Relaxed);
    handle.db.store(c.client.db, Ordering::Relaxed);
}

/// The memory figures of one line, with Redis's meanings where kvserver has
/// the same thing and the nearest truthful one where it does not.
struct Buffers {
    /// `qbuf`: bytes in the read buffer (for the caller, including the
    /// running command; for others, the partial command left after a pass).
    qbuf: usize,
    /// `qbuf-free`: the read buffer's spare room (0 for an idle client,
    /// which lends its buffer back to the worker).
    qbuf_free: usize,
    /// `argv-mem`: bytes of the running command's arguments (only the caller
    /// runs one while the line is made). They are borrowed from the read
    /// buffer, not copied, so `tot-mem` does not count them again.
    argv_mem: usize,
    /// `multi-mem`: memory of the arguments queued in `MULTI` (their bytes
    /// plus 16 per argument).
    multi_mem: usize,
    /// `rbs`: bytes allocated for replies (0 for an idle client, whose reply
    /// buffer is freed after a second).
    rbs: usize,
    /// `rbp`: the most reply bytes that waited at once in the last window of
    /// about 5 seconds.
    rbp: usize,
    /// `obl` and `omem`: reply bytes not yet taken by the socket. kvserver
    /// has one reply buffer that grows instead of Redis's fixed buffer plus a
    /// list of blocks, so `oll` is always 0 and `obl` equals `omem`, the
    /// figure `client-output-buffer-limit` is checked against.
    unsent: usize,
    /// `events=r`: the worker reads from the client (it stops while unsent
    /// output is over its high-water mark).
    reading: bool,
    /// `events=w`: output waits for the socket to take it.
    writing: bool,
}

impl Buffers {
    /// The figures the client's worker published after its last pass.
    fn published(h: &ClientHandle) -> Buffers {
        let unsent = h.output_buffer.load(Ordering::Relaxed);
        Buffers {
            qbuf: h.query_buffer.load(Ordering::Relaxed),
            qbuf_free: h.query_buffer_free.load(Ordering::Relaxed),
            argv_mem: 0,
            multi_mem: h.multi_mem.load(Ordering::Relaxed),
            rbs: h.reply_buffer_size.load(Ordering::Relaxed),
            rbp: h.reply_buffer_peak.load(Ordering::Relaxed),
            unsent,
            reading: h.reading.load(Ordering::Relaxed),
            writing: unsent > 0,
        }
    }

    /// `tot-mem`: the buffers the connection holds — read buffer, reply
    /// buffer and transaction queue. Unlike Redis's it leaves out the fixed
    /// per-connection structures.
    fn total(&self) -> usize {
        self.qbuf + self.qbuf_free + self.rbs + self.multi_mem
    }

    fn events(&self) -> &'static str {
        match (self.reading, self.writing) {
            (true, true) => "rw",
            (true, false) => "r",
            (false, true) => "w",
            (false, false) => "",
        }
    }
}

/// CLIENT LIST's `flags=`, in Redis's order: `O` monitor, `P` subscribed,
/// `x` in MULTI, `b` blocked, `t` tracking, `T` no-touch; `N` for none.
fn flags(h: &ClientHandle) -> String {
    let mut flags = String::new();
    if h.monitor.load(Ordering::Relaxed) {
        flags.push('O');
    }
    if h.sub.load(Ordering::Relaxed) + h.psub.load(Ordering::Relaxed) + h.ssub.load(Ordering::Relaxed) > 0 {
        flags.push('P');
    }
    if h.multi.load(Ordering::Relaxed) >= 0 {
        flags.push('x');
    }
    if h.blocked.load(Ordering::Relaxed) {
        flags.push('b');
    }
    if h.tracking.load(Ordering::Relaxed) {
        flags.push('t');
    }
    if h.no_touch.load(Ordering::Relaxed) {
        flags.push('T');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    flags
}

/// One line of CLIENT LIST / CLIENT INFO, with Redis 7's fields in Redis's
/// order (7.4's `watch=` included). `running` is the command the caller is
/// running; other clients show the last command they ran.
fn line(h: &ClientHandle, names: &ClientNames, now: Instant, running: Option<&str>, b: &Buffers) -> String {
    let text = |v: &Option<Vec<u8>>| {
        v.as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default()
            .into_owned()
    };
    let last = h
        .last_command()
        .and_then(|i| COMMANDS.get(i))
        .map_or("NULL", |spec| spec.name);
    let cmd = running.unwrap_or(last);
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} \
         multi={} watch={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} obl={} oll=0 \
         omem={} tot-mem={} events={} cmd={cmd} user=default redir={} resp={} lib-name={} lib-ver={}\n",
        h.id,
        h.addr,
        h.laddr,
        h.fd,
        text(&names.name),
        now.duration_since(h.created).as_secs(),
        h.idle(now).as_secs(),
        flags(h),
        h.db.load(Ordering::Relaxed),
        h.sub.load(Ordering::Relaxed),
        h.psub.load(Ordering::Relaxed),
        h.ssub.load(Ordering::Relaxed),
        h.multi.load(Ordering::Relaxed),
        h.watch.load(Ordering::Relaxed),
        b.qbuf,
        b.qbuf_free,
        b.argv_mem,
        b.multi_mem,
        b.rbs,
        b.rbp,
        b.unsent,
        b.unsent,
        b.total(),
        b.events(),
        h.redirect.load(Ordering::Relaxed),
        h.resp.load(Ordering::Relaxed),
        text(&names.lib_name),
        text(&names.lib_ver),
    )
}

fn help(c: &mut Ctx<'_, '_>) {
    const LINES: &[&str] = &[
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "LIST [TYPE <normal|master|replica|pubsub>] [ID <id> [<id> ...]]",
        "    Return information about client connections.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are: ID <id>, ADDR <ip:port>, LADDR <ip:port>,",
        "    TYPE <normal|master|replica|pubsub>, USER <username>, SKIPME (YES|NO), MAXAGE <seconds>.",
        "SETNAME <name>, GETNAME",
        "    Set / return the name of the current connection.",
        "SETINFO <LIB-NAME|LIB-VER> <value>",
        "    Set client library name or version.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "NO-EVICT (ON|OFF), NO-TOUCH (ON|OFF)",
        "    Accepted for compatibility.",
        "HELP",
        "    Print this help.",
    ];
    c.out.status_lines(LINES);
}

fn err(message: &str) -> CommandError {
    CommandError::Other(format!("ERR {message}"))
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN]
/// [OPTOUT] [NOLOOP], with Redis 7.0's checks and messages.
fn tracking(c: &mut Ctx<'_, '_>) -> CommandResult {
    let mut mode = crate::tracking::Mode::default();
    let argc = c.args.len();
    let mut j = 3;
    while j < argc {
        let word = c.args.get(j);
        let more = argc - 1 - j > 0;
        if is(word, "redirect") && more {
            j += 1;
            if mode.redirect != 0 {
                return Err(err("A client can only redirect to a single other client"));
            }
            let id = super::int_arg(c.args.get(j))?;
            if id <= 0 || c.state.clients.get(id as u64).is_none() {
                return Err(err("The client ID you want redirect to does not exist"));
            }
            mode.redirect = id as u64;
        } else if is(word, "bcast") {
            mode.bcast = true;
        } else if is(word, "optin") {
            mode.optin = true;
        } else if is(word, "optout") {
            mode.optout = true;
        } else if is(word, "noloop") {
            mode.noloop = true;
        } else if is(word, "prefix") && more {
            j += 1;
            mode.prefixes.push(c.args.get(j).to_vec());
        } else {
            return Err(CommandError::Syntax);
        }
        j += 1;
    }
    let worker = c.client.handle.as_ref().map_or(0, |h| h.worker);
    let onoff = c.args.get(2);
    if is(onoff, "on") {
        if !mode.bcast && !mode.prefixes.is_empty() {
            return Err(err("PREFIX option requires BCAST mode to be enabled"));
        }
        if let Some(old) = &c.client.tracking {
            if old.bcast != mode.bcast {
                return Err(err("You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
            }
        }
        if mode.bcast && (mode.optin || mode.optout) {
            return Err(err("OPTIN and OPTOUT are not compatible with BCAST"));
        }
        if mode.optin && mode.optout {
            return Err(err("You can't use both OPTIN and OPTOUT"));
        }
        if let Some(old) = &c.client.tracking {
            if (mode.optin && old.optout) || (mode.optout && old.optin) {
                return Err(err("You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
            }
        }
        for (i, a) in mode.prefixes.iter().enumerate() {
            for b in &mode.prefixes[i + 1..] {
                if a.starts_with(b) || b.starts_with(a) {
                    return Err(err(&format!(
                        "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                        String::from_utf8_lossy(a),
                        String::from_utf8_lossy(b)
                    )));
                }
            }
        }
        c.state.tracking.enable(c.client.id, worker, &mode);
        set_tracking_handle(c, Some(mode.redirect as i64));
        c.client.tracking = Some(mode);
    } else if is(onoff, "off") {
        disable_tracking(c.state, c.client);
        set_tracking_handle(c, None);
    } else {
        return Err(CommandError::Syntax);
    }
    c.out.ok();
    Ok(())
}

fn set_tracking_handle(c: &Ctx<'_, '_>, redirect: Option<i64>) {
    if let Some(h) = &c.client.handle {
        h.tracking.store(redirect.is_some(), Ordering::Relaxed);
        h.redirect.store(redirect.unwrap_or(-1), Ordering::Relaxed);
    }
}

/// Turns tracking off for a client (CLIENT TRACKING OFF, RESET, disconnect).
pub fn disable_tracking(state: &crate::state::ServerState, client: &mut crate::state::ClientState) {
    if client.tracking.take().is_some() {
        state.tracking.disable(client.id);
        if let Some(h) = &client.handle {
            h.tracking.store(false, Ordering::Relaxed);
            h.redirect.store(-1, Ordering::Relaxed);
        }
    }
}

/// CLIENT CACHING YES|NO: whether the next command's reads are tracked.
fn caching(c: &mut Ctx<'_, '_>) -> CommandResult {
    let Some(mode) = c.client.tracking.as_mut().filter(|m| m.optin || m.optout) else {
        return Err(err("CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
    };
    let opt = c.args.get(2);
    if is(opt, "yes") {
        if !mode.optin {
            return Err(err(
                "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
        mode.caching = Some(true);
    } else if is(opt, "no") {
        if !mode.optout {
            return Err(err(
                "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
        mode.caching = Some(false);
    } else {
        return Err(CommandError::Syntax);
    }
    c.out.ok();
    Ok(())
}

/// CLIENT TRACKINGINFO: flags, redirect and prefixes, as Redis 7.0.
fn tracking_info(c: &mut Ctx<'_, '_>) {
    let mode = c.client.tracking.clone();
    c.out.map(3);
    c.out.bulk(b"flags");
    match &mode {
        None => {
            c.out.set(1);
            c.out.bulk(b"off");
        }
        Some(m) => {
            let mut flags: Vec<&[u8]> = vec![b"on"];
            if m.bcast {
                flags.push(b"bcast");
            }
            if m.optin {
                flags.push(b"optin");
                if m.caching == Some(true) {
                    flags.push(b"caching-yes");
                }
            }
            if m.optout {
                flags.push(b"optout");
                if m.caching == Some(false) {
                    flags.push(b"caching-no");
                }
            }
            if m.noloop {
                flags.push(b"noloop");
            }
            if m.redirect != 0 && c.state.clients.get(m.redirect).is_none() {
                flags.push(b"broken_redirect");
            }
            c.out.set(flags.len());
            for f in flags {
                c.out.bulk(f);
            }
        }
    }
    c.out.bulk(b"redirect");
    c.out.int(mode.as_ref().map_or(-1, |m| m.redirect as i64));
    c.out.bulk(b"prefixes");
    let prefixes = mode.map(|m| m.prefixes).unwrap_or_default();
    c.out.array(prefixes.len());
    for p in prefixes {
        c.out.bulk(&p);
    }
}
