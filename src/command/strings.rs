//! String commands. Every write logs its *result* (the final value and
//! absolute expiry), never the command, so replaying the WAL is idempotent:
//! `INCR` logs the new number, `SET .. EX 10` the absolute expiry time, and
//! `APPEND`/`SETRANGE` a `Patch`: the bytes written, their offset and the
//! resulting length, which replays to the same value however often it runs.

use super::Args;
use super::{int_arg, is, locate, CommandError, CommandResult, Ctx};
use crate::store::{Entry, ShardMap, ValueKind};
use crate::wal::Record;

/// GET key
pub fn get(c: &mut Ctx<'_, '_>) -> CommandResult {
    reply_value(c, c.args.get(1), false)
}

/// The live string at `key`: None if missing, `WRONGTYPE` if it holds another type.
fn live_string<'m>(
    map: &'m mut ShardMap,
    hash: u64,
    key: &[u8],
    now: u64,
) -> Result<Option<Entry<'m>>, CommandError> {
    match map.get_live(hash, key, now).0 {
        Some(slot) if slot.kind() != ValueKind::String => Err(CommandError::WrongType),
        other => Ok(other),
    }
}

/// Replies with `key`'s value or nil, counting the keyspace hit or miss.
/// A value of another type is `WRONGTYPE`, or nil when `nil_if_other_type` (MGET).
fn reply_value(c: &mut Ctx<'_, '_>, key: &[u8], nil_if_other_type: bool) -> CommandResult {
    let (map, hash) = locate(&mut c.db, key)?;
    let found = match live_string(map, hash, key, c.now) {
        Err(_) if nil_if_other_type => None,
        other => other?,
    };
    match found {
        Some(slot) => {
            c.hits += 1;
            c.out.bulk(slot.value());
        }
        None => {
            c.misses += 1;
            c.out.nil();
        }
    }
    Ok(())
}

/// An expiry option as given by the client, before conversion to absolute ms.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpiryOption {
    None,
    Relative { ms_per_unit: i64, amount: i64 },
    Absolute { ms_per_unit: i64, at: i64 },
    KeepTtl,
    Persist,
}

/// Converts an expiry option to absolute unix ms, with Redis's checks
/// (`invalid expire time in 'set' command` for ≤ 0 or overflow).
fn absolute_expiry(
    option: ExpiryOption,
    now: u64,
    command: &'static str,
) -> Result<Option<u64>, CommandError> {
    let invalid = || CommandError::InvalidExpire(command);
    match option {
        ExpiryOption::Relative { ms_per_unit, amount }
        | ExpiryOption::Absolute {
            ms_per_unit,
            at: amount,
        } => {
            if amount <= 0 {
                return Err(invalid());
            }
            let ms = amount.checked_mul(ms_per_unit).ok_or_else(invalid)?;
            let at = if matches!(option, ExpiryOption::Relative { .. }) {
                ms.checked_add(now as i64).ok_or_else(invalid)?
            } else {
                ms
            };
            Ok(Some(at as u64))
        }
        _ => Ok(None),
    }
}

/// `EX`/`PX`/`EXAT`/`PXAT` as (milliseconds per unit, absolute?), or None.
fn expiry_unit(word: &[u8]) -> Option<(i64, bool)> {
    if is(word, "ex") {
        Some((1000, false))
    } else if is(word, "px") {
        Some((1, false))
    } else if is(word, "exat") {
        Some((1000, true))
    } else if is(word, "pxat") {
        Some((1, true))
    } else {
        None
    }
}

/// The expiry option for `unit` with the number `amount` (parsed last, as Redis does).
fn with_amount((ms_per_unit, absolute): (i64, bool), amount: &[u8]) -> Result<ExpiryOption, CommandError> {
    let amount = int_arg(amount)?;
    Ok(if absolute {
        ExpiryOption::Absolute {
            ms_per_unit,
            at: amount,
        }
    } else {
        ExpiryOption::Relative { ms_per_unit, amount }
    })
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]
pub fn set(c: &mut Ctx<'_, '_>) -> CommandResult {
    let key = c.args.get(1);
    let (mut nx, mut xx, mut get) = (false, false, false);
    let mut expiry = ExpiryOption::None;
    let mut timed: Option<((i64, bool), &[u8])> = None;
    let mut i = 3;
    while i < c.args.len() {
        let word = c.args.get(i);
        let next = (i + 1 < c.args.len()).then(|| c.args.get(i + 1));
        if is(word, "nx") && !xx {
            nx = true;
        } else if is(word, "xx") && !nx {
            xx = true;
        } else if is(word, "get") {
            get = true;
        } else if is(word, "keepttl") && timed.is_none() {
            expiry = ExpiryOption::KeepTtl;
        } else if let (Some(unit), Some(amount)) = (expiry_unit(word), next) {
            // Redis accepts the same option twice (the last wins) but not two
            // different ones, nor one together with KEEPTTL.
            let same_or_first = timed.is_none_or(|(previous, _)| previous == unit);
            if expiry == ExpiryOption::KeepTtl || !same_or_first {
                return Err(CommandError::Syntax);
            }
            timed = Some((unit, amount));
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    if let Some((unit, amount)) = timed {
        expiry = with_amount(unit, amount)?;
    }
    let expires_at = absolute_expiry(expiry, c.now, "set")?;

    let (map, hash) = locate(&mut c.db, key)?;
    let old = map.get_live(hash, key, c.now).0;
    let exists = old.is_some();
    // SET over another type replaces it, but SET ... GET must read a string first.
    if get && old.is_some_and(|s| s.kind() != ValueKind::String) {
        return Err(CommandError::WrongType);
    }
    if get {
        c.out.bulk_or_nil(old.map(|s| s.value()));
    }
    if (nx && exists) || (xx && !exists) {
        if !get {
            c.out.nil();
        }
        return Ok(());
    }
    let expires_at = match expiry {
        ExpiryOption::KeepTtl => old.and_then(|s| s.expires_at()),
        _ => expires_at,
    };
    store_value(map, hash, key, c.args, 2, expires_at, c.now, &mut c.log);
    if !get {
        c.out.ok();
    }
    Ok(())
}

/// Stores argument `value_at` under `key` and logs it. An expiry already in
/// the past (EXAT/PXAT) deletes the key instead, as Redis does. A big value
/// that arrived in a read buffer of its own is kept without a copy, in the
/// store and in the WAL buffer alike.
#[allow(clippy::too_many_arguments)]
fn store_value(
    map: &mut ShardMap,
    hash: u64,
    key: &[u8],
    args: Args<'_>,
    value_at: usize,
    expires_at: Option<u64>,
    now: u64,
    log: &mut super::RecordLog<'_>,
) {
    if expires_at.is_some_and(|at| at <= now) {
        if map.remove(hash, key) {
            log.push(Record::Del { key });
        }
        return;
    }
    if let Some(value) = args.shared(value_at) {
        log.push_shared_set(key, &value, expires_at);
        map.set_shared(hash, key, value, expires_at.unwrap_or(0));
        return;
    }
    let value = args.get(value_at);
    map.set(hash, key, value, expires_at.unwrap_or(0));
    log.push(Record::Set {
        key,
        value,
        expires_at_ms: expires_at,
    });
}

/// SETNX key value
pub fn setnx(c: &mut Ctx<'_, '_>) -> CommandResult {
    let key = c.args.get(1);
    let (map, hash) = locate(&mut c.db, key)?;
    if map.get_live(hash, key, c.now).0.is_some() {
        c.out.int(0);
    } else {
        store_value(map, hash, key, c.args, 2, None, c.now, &mut c.log);
        c.out.int(1);
    }
    Ok(())
}

fn set_with_ttl(c: &mut Ctx<'_, '_>, ms_per_unit: i64, command: &'static str) -> CommandResult {
    let key = c.args.get(1);
    let amount = int_arg(c.args.get(2))?;
    let expires_at = absolute_expiry(ExpiryOption::Relative { ms_per_unit, amount }, c.now, command)?;
    let (map, hash) = locate(&mut c.db, key)?;
    store_value(map, hash, key, c.args, 3, expires_at, c.now, &mut c.log);
    c.out.ok();
    Ok(())
}

/// SETEX key seconds value
pub fn setex(c: &mut Ctx<'_, '_>) -> CommandResult {
    set_with_ttl(c, 1000, "setex")
}

/// PSETEX key milliseconds value
pub fn psetex(c: &mut Ctx<'_, '_>) -> CommandResult {
    set_with_ttl(c, 1, "psetex")
}

/// GETSET key value
pub fn getset(c: &mut Ctx<'_, '_>) -> CommandResult {
    let key = c.args.get(1);
    let (map, hash) = locate(&mut c.db, key)?;
    c.out
        .bulk_or_nil(live_string(map, hash, key, c.now)?.map(|s| s.value()));
    store_value(map, hash, key, c.args, 2, None, c.now, &mut c.log);
    Ok(())
}

/// GETDEL key
pub fn getdel(c: &mut Ctx<'_, '_>) -> CommandResult {
    let key = c.args.get(1);
    let (map, hash) = locate(&mut c.db, key)?;
    match live_string(map, hash, key, c.now)? {
        Some(slot) => {
            c.out.bulk(slot.value());
            map.remove(hash, key);
            c.log.push(Record::Del { key });
        }
        None => c.out.nil(),
    }
    Ok(())
}

/// GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]
pub fn getex(c: &mut Ctx<'_, '_>) -> CommandResult {
    let key = c.args.get(1);
    let mut expiry = ExpiryOption::None;
    let mut i = 2;
    while i < c.args.len() {
        let word = c.args.get(i);
        if expiry != ExpiryOption::None {
            return Err(CommandError::Syntax);
        }
        if is(word, "persist") {
            expiry = ExpiryOption::Persist;
        } else if let (Some(unit), true) = (expiry_unit(word), i + 1 < c.args.len()) {
            expiry = with_amount(unit, c.args.get(i + 1))?;
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    let expires_at = absolute_expiry(expiry, c.now, "getex")?;
    let (map, hash) = locate(&mut c.db, key)?;
    let Some(slot) = live_string(map, hash, key, c.now)? else {
        c.out.nil();
        return Ok(());
    };
    c.out.bulk(slot.value());
    match (expiry, expires_at) {
        (ExpiryOption::Persist, _) if slot.expires_at().is_some() => {
            map.set_expiry(hash, key, 0);
            c.log.push(Record::Expire {
                key,
                expires_at_ms: None,
            });
        }
        (_, Some(at)) if at <= c.now => {
            map.remove(hash, key);
            c.log.push(Record::Del { key });
        }
        (_, Some(at)) => {
            map.set_expiry(hash, key, at);
            c.log.push(Record::Expire {
                key,
                expires_at_ms: Some(at),
            });
        }
        _ => {}
    }
    Ok(())
}

/// MGET key [key ...]
pub fn mget(c: &mut Ctx<'_, '_>) -> CommandResult {
    c.out.array(c.args.len() - 1);
    let args = c.args;
    for key in args.iter_from(1) {
        reply_value(c, key, true)?;
    }
    Ok(())
}

/// MSET key value [key value ...]
pub fn mset(c: &mut Ctx<'_, '_>) -> CommandResult {
    if c.args.len() % 2 == 0 {
        return Err(CommandError::WrongArity("mset"));
    }
    set_pairs(c);
    c.out.ok();
    Ok(())
}

fn set_pairs(c: &mut Ctx<'_, '_>) {
    for i in (1..c.args.len()).step_by(2) {
        let key = c.args.get(i);
        if let Ok((map, hash)) = locate(&mut c.db, key) {
            store_value(map, hash, key, c.args, i + 1, None, c.now, &mut c.log);
        }
    }
}

/// MSETNX key value [key value ...]
pub fn msetnx(c: &mut Ctx<'_, '_>) -> CommandResult {
    if c.args.len() % 2 == 0 {
        return Err(CommandError::WrongArity("msetnx"));
    }
    for i in (1..c.args.len()).step_by(2) {
        let key = c.args.get(i);
        let (map, hash) = locate(&mut c.db, key)?;
        if map.get_live(hash, key, c.now).0.is_some() {
            c.out.int(0);
            return Ok(());
        }
    }
    set_pairs(c);
    c.out.int(1);
    Ok(())
}

/// Adds `delta` to the integer at `key` (0 if missing), keeping its TTL.
fn incr_by(c: &mut Ctx<'_, '_>, delta: i64) -> CommandResult {
    let key = c.args.get(1);
    let (map, hash) = locate(&mut c.db, key)?;
    let (current, expires_at) = match live_string(map, hash, key, c.now)? {
        Some(slot) => (parse_stored_int(slot.value())?, slot.expires_at()),
        None => (0, None),
    };
    let new = current.checked_add(delta).ok_or(CommandError::Overflow)?;
    let mut digits = itoa::Buffer::new();
    let text = digits.format(new).as_bytes();
    map.set(hash, key, text, expires_at.unwrap_or(0));
    c.log.push(Record::Set {
        key,
        value: text,
        expires_at_ms: expires_at,
    });
    c.out.int(new);
    Ok(())
}

fn parse_stored_int(value: &[u8]) -> Result<i64, CommandError> {
    crate::protocol::parse_i64(value).ok_or(CommandError::NotInteger)
}

/// INCR key
pub fn incr(c: &mut Ctx<'_, '_>) -> CommandResult {
    incr_by(c, 1)
}

/// DECR key
pub fn decr(c: &mut Ctx<'_, '_>) -> CommandResult {
    incr_by(c, -1)
}

/// INCRBY key increment
pub fn incrby(c: &mut Ctx<'_, '_>) -> CommandResult {
    let delta = int_arg(c.args.get(2))?;
    incr_by(c, delta)
}

/// DECRBY key decrement
pub fn decrby(c: &mut Ctx<'_, '_>) -> CommandResult {
    let delta = int_arg(c.args.get(2))?;
    let delta = delta.checked_neg().ok_or(CommandError::DecrementOverflow)?;
    incr_by(c, delta)
}

/// Parses a float as Redis's `string2ld`: no surrounding spaces, no NaN.
pub(crate) fn parse_float(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || text.trim() != text {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    (!value.is_nan()).then_some(value)
}

/// INCRBYFLOAT key increment
pub fn incrbyfloat(c: &mut Ctx<'_, '_>) -> CommandResult {
    let key = c.args.get(1);
    let delta = parse_float(c.args.get(2)).ok_or(CommandError::NotFloat)?;
    let (map, hash) = locate(&mut c.db, key)?;
    let (current, expires_at) = match live_string(map, hash, key, c.now)? {
        Some(slot) => (
            parse_float(slot.value()).ok_or(CommandError::NotFloat)?,
            slot.expires_at(),
        ),
        None => (0.0, None),
    };
    let new = current + delta;
    if !new.is_finite() {
        return Err(CommandError::NanOrInfinity);
    }
    let text = format!("{new}");
    map.set(hash, key, text.as_bytes(), expires_at.unwrap_or(0));
    c.log.push(Record::Set {
        key,
        value: text.as_bytes(),
        expires_at_ms: expires_at,
    });
    c.out.bulk(text.as_bytes());
    Ok(())
}

/// APPEND key value
pub fn append(c: &mut Ctx<'_, '_>) -> CommandResult {
    let (key, tail) = (c.args.get(1), c.args.get(2));
    let max = c.state.config.proto_max_bulk_len;
    let (map, hash) = locate(&mut c.db, key)?;
    let current = live_string(map, hash, key, c.now)?.map_or(0, |s| s.value().len());
    if current + tail.len() > max {
        return Err(CommandError::StringTooLong);
    }
    let len = map.append(hash, key, tail);
    log_patch(map, hash, key, len - tail.len(), tail, &mut c.log);
    c.out.int(len as i64);
    Ok(())
}

/// Logs an edit of part of `key`'s value as a Patch record: the bytes
/// written, where, and the resulting length — proportional to the change,
/// not to the value (200 one-byte APPENDs to a 10 MiB value log ~10 KB).
fn log_patch(
    map: &ShardMap,
    hash: u64,
    key: &[u8],
    offset: usize,
    bytes: &[u8],
    log: &mut super::RecordLog<'_>,
) {
    if let Some(slot) = map.get_raw(hash, key) {
        log.push(Record::Patch {
            key,
            offset: offset as u64,
            bytes,
            len: slot.value().len() as u64,
            expires_at_ms: slot.expires_at(),
        });
    }
}

/// STRLEN key
pub fn strlen(c: &mut Ctx<'_, '_>) -> CommandResult {
    let key = c.args.get(1);
    let (map, hash) = locate(&mut c.db, key)?;
    c.out
        .int(live_string(map, hash, key, c.now)?.map_or(0, |s| s.value().len() as i64));
    Ok(())
}

/// GETRANGE key start end (inclusive, negative counts from the end)
pub fn getrange(c: &mut Ctx<'_, '_>) -> CommandResult {
    let key = c.args.get(1);
    let (start, end) = (int_arg(c.args.get(2))?, int_arg(c.args.get(3))?);
    let (map, hash) = locate(&mut c.db, key)?;
    let value = live_string(map, hash, key, c.now)?.map_or(&[][..], |s| s.value());
    let len = value.len() as i64;
    if start < 0 && end < 0 && start > end {
        c.out.bulk(b"");
        return Ok(());
    }
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 {
        (len + end).max(0)
    } else {
        end.min(len - 1)
    };
    if len == 0 || start > end || start >= len {
        c.out.bulk(b"");
    } else {
        c.out.bulk(&value[start as usize..=end as usize]);
    }
    Ok(())
}

/// SETRANGE key offset value
pub fn setrange(c: &mut Ctx<'_, '_>) -> CommandResult {
    let (key, patch) = (c.args.get(1), c.args.get(3));
    let offset = int_arg(c.args.get(2))?;
    if offset < 0 {
        return Err(CommandError::OffsetOutOfRange);
    }
    let max = c.state.config.proto_max_bulk_len as i64;
    let (map, hash) = locate(&mut c.db, key)?;
    let current = live_string(map, hash, key, c.now)?.map(|s| s.value().len());
    if patch.is_empty() {
        c.out.int(current.unwrap_or(0) as i64);
        return Ok(());
    }
    if offset.saturating_add(patch.len() as i64) > max {
        return Err(CommandError::StringTooLong);
    }
    if current.is_none() {
        map.set(hash, key, b"", 0);
    }
    let len = map
        .with_value_mut(hash, key, |v| {
            v.write_at(offset as usize, patch);
            v.get().len()
        })
        .unwrap_or(0);
    log_patch(map, hash, key, offset as usize, patch, &mut c.log);
    c.out.int(len as i64);
    Ok(())
}
