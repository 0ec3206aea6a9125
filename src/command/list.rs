//! List commands: LPUSH & co, LRANGE, LINDEX, LSET, LINSERT, LREM, LTRIM,
//! LPOS, LMOVE / RPOPLPUSH and LMPOP, with Redis 7's replies and errors.
//!
//! Every write logs one `Collection` record per key holding the splices it
//! made (`store::types::list`): absolute positions, items inserted and
//! counts deleted — a result, never the command — so replay rebuilds the
//! same list. A list emptied by a write is deleted by the store, and the
//! same splices replayed empty it (and so delete it) again.

use std::time::{Duration, Instant};

use super::{int_arg, is, locate, CommandError, CommandResult, Ctx};
use crate::blocking::{Serve, WakeReason};
use crate::protocol::Replies;
use crate::store::types::list::{SpliceLog, OP_SPLICE};
use crate::store::types::{List, TYPE_LIST};
use crate::store::ValueKind;
use crate::wal::Record;

/// Head or tail of a list (`LEFT`/`RIGHT`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum End {
    Left,
    Right,
}

impl End {
    /// `LEFT` or `RIGHT`, case-insensitively; anything else is a syntax error.
    pub fn parse(arg: &[u8]) -> Result<End, CommandError> {
        if is(arg, "left") {
            Ok(End::Left)
        } else if is(arg, "right") {
            Ok(End::Right)
        } else {
            Err(CommandError::Syntax)
        }
    }
}

fn log_splices(c: &mut Ctx<'_, '_>, key: &[u8], splices: &SpliceLog) {
    if !splices.is_empty() {
        c.log.push(Record::Collection {
            key,
            op: TYPE_LIST | OP_SPLICE,
            payload: splices.payload(),
        });
    }
}

fn error(message: &str) -> CommandError {
    CommandError::Other(format!("ERR {message}"))
}

/// A non-negative count argument (`value is out of range, must be positive`).
fn positive(arg: &[u8]) -> Result<usize, CommandError> {
    match crate::protocol::parse_i64(arg) {
        Some(n) if n >= 0 => Ok(n as usize),
        _ => Err(error("value is out of range, must be positive")),
    }
}

/// Pushes `items` at `end` of the list at `key` (creating it unless `only_existing`),
/// logs the splice, and returns the new length (0: nothing pushed to a missing key).
fn push(
    c: &mut Ctx<'_, '_>,
    key: &[u8],
    end: End,
    items: &[&[u8]],
    only_existing: bool,
) -> Result<usize, CommandError> {
    // Without a WAL there is no splice to build (two allocations per push).
    let logging = c.log.enabled();
    let (map, hash) = locate(&mut c.db, key)?;
    let mut splices = SpliceLog::default();
    let len = map.collection_update(hash, key, c.now, ValueKind::List, !only_existing, |value| {
        let Some(list) = value.as_list_mut() else {
            return 0;
        };
        match end {
            End::Left => {
                for item in items {
                    list.push_front(item);
                }
                if logging {
                    let reversed: Vec<&[u8]> = items.iter().rev().copied().collect();
                    splices.push(0, 0, &reversed);
                }
            }
            End::Right => {
                if logging {
                    splices.push(list.len(), 0, items);
                }
                for item in items {
                    list.push_back(item);
                }
            }
        }
        list.len()
    })?;
    log_splices(c, key, &splices);
    let len = len.unwrap_or(0);
    if len > 0 {
        signal_ready(c, key, items.len());
    }
    Ok(len)
}

/// `added` elements arrived at `key`: serves the clients blocked on it,
/// first come first served, while the pusher still holds the key's shard
/// lock (see `crate::blocking`): each pop is applied and logged here, and
/// its reply goes to the waiter's worker, so no later command sees an
/// element a blocked client was owed. Waiters that cannot be served in place
/// (`BLMOVE`) are woken to retry, one per element not yet claimed.
pub fn signal_ready(c: &mut Ctx<'_, '_>, key: &[u8], added: usize) {
    if !c.state.blocking.any() {
        return;
    }
    let mut unclaimed = added;
    while unclaimed > 0 {
        let Some(waiter) = c.state.blocking.next_waiter(c.client.db, key) else {
            return;
        };
        let served = waiter
            .serve
            .and_then(|serve| serve_waiter(c, key, serve, waiter.style));
        let reason = match served {
            Some((reply, taken)) => {
                unclaimed = unclaimed.saturating_sub(taken);
                WakeReason::Served(reply)
            }
            None => {
                unclaimed -= 1;
                WakeReason::Retry
            }
        };
        c.state.clients.wake(waiter.worker, waiter.id, reason);
    }
}

/// Pops what a blocked client asked for from `key` and renders its reply in
/// `style`: (reply, elements taken), or None if there was nothing to take
/// (the key is gone or holds another type: the client retries).
fn serve_waiter(
    c: &mut Ctx<'_, '_>,
    key: &[u8],
    serve: Serve,
    style: crate::protocol::Style,
) -> Option<(Vec<u8>, usize)> {
    let mut reply = Replies::default();
    reply.set_style(style);
    let taken = match serve {
        Serve::List { left, count } => {
            let end = if left { End::Left } else { End::Right };
            let items = pop(c, key, end, count.unwrap_or(1)).ok()??;
            if items.is_empty() {
                return None;
            }
            reply.array(2);
            reply.bulk(key);
            match count {
                None => reply.bulk(&items[0]),
                Some(_) => {
                    reply.array(items.len());
                    for item in &items {
                        reply.bulk(item);
                    }
                }
            }
            items.len()
        }
        Serve::ZSet { max, count } => super::zset::serve_blocked(c, key, max, count, &mut reply)?,
    };
    Some((reply.take_bytes(), taken))
}

/// The reply a pusher rendered for this client while it was blocked
/// ([`signal_ready`]), written out as this command's reply. Each blocking
/// command that can be served in place checks this first.
pub fn take_served(c: &mut Ctx<'_, '_>) -> bool {
    if !matches!(c.client.wake_reason, Some(WakeReason::Served(_))) {
        return false;
    }
    if let Some(WakeReason::Served(reply)) = c.client.wake_reason.take() {
        c.client.resumed_deadline = None;
        c.out.raw(&reply);
    }
    true
}

fn push_command(c: &mut Ctx<'_, '_>, end: End, only_existing: bool) -> CommandResult {
    let key = c.args.get(1);
    let items: Vec<&[u8]> = c.args.iter_from(2).collect();
    let len = push(c, key, end, &items, only_existing)?;
    c.out.int(len as i64);
    Ok(())
}

/// LPUSH key element [element ...]
pub fn lpush(c: &mut Ctx<'_, '_>) -> CommandResult {
    push_command(c, End::Left, false)
}

/// RPUSH key element [element ...]
pub fn rpush(c: &mut Ctx<'_, '_>) -> CommandResult {
    push_command(c, End::Right, false)
}

/// LPUSHX key element [element ...]: only onto an existing list.
pub fn lpushx(c: &mut Ctx<'_, '_>) -> CommandResult {
    push_command(c, End::Left, true)
}

/// RPUSHX key element [element ...]: only onto an existing list.
pub fn rpushx(c: &mut Ctx<'_, '_>) -> CommandResult {
    push_command(c, End::Right, true)
}

/// Pops up to `count` items from `end` of the list at `key`, logging the
/// splice. None: no such key.
pub fn pop(
    c: &mut Ctx<'_, '_>,
    key: &[u8],
    end: End,
    count: usize,
) -> Result<Option<Vec<Vec<u8>>>, CommandError> {
    let logging = c.log.enabled();
    let (map, hash) = locate(&mut c.db, key)?;
    let mut splices = SpliceLog::default();
    let popped = map.collection_update(hash, key, c.now, ValueKind::List, false, |value| {
        let Some(list) = value.as_list_mut() else {
            return Vec::new();
        };
        let n = count.min(list.len());
        let mut items = Vec::with_capacity(n);
        match end {
            End::Left => {
                if logging {
                    splices.push(0, n, &[]);
                }
                for _ in 0..n {
                    items.extend(list.pop_front());
                }
            }
            End::Right => {
                if logging {
                    splices.push(list.len() - n, n, &[]);
                }
                for _ in 0..n {
                    items.extend(list.pop_back());
                }
            }
        }
        items
    })?;
    if popped.as_ref().is_some_and(|items| !items.is_empty()) {
        log_splices(c, key, &splices);
    }
    Ok(popped)
}

fn pop_command(c: &mut Ctx<'_, '_>, end: End) -> CommandResult {
    if c.args.len() > 3 {
        return Err(CommandError::WrongArity(if end == End::Left {
            "lpop"
        } else {
            "rpop"
        }));
    }
    let key = c.args.get(1);
    let count = if c.args.len() == 3 {
        Some(positive(c.args.get(2))?)
    } else {
        None
    };
    match count {
        None => match pop(c, key, end, 1)? {
            Some(items) if !items.is_empty() => c.out.bulk(&items[0]),
            _ => c.out.nil(),
        },
        Some(count) => match pop(c, key, end, count)? {
            None => c.out.null_array(),
            Some(items) => {
                c.out.array(items.len());
                for item in &items {
                    c.out.bulk(item);
                }
            }
        },
    }
    Ok(())
}

/// LPOP key [count]
pub fn lpop(c: &mut Ctx<'_, '_>) -> CommandResult {
    pop_command(c, End::Left)
}

/// RPOP key [count]
pub fn rpop(c: &mut Ctx<'_, '_>) -> CommandResult {
    pop_command(c, End::Right)
}

/// Runs `f` on the live list at `key` (None: missing), counting a hit or miss.
fn read_list<R>(
    c: &mut Ctx<'_, '_>,
    key: &[u8],
    f: impl FnOnce(&List) -> R,
) -> Result<Option<R>, CommandError> {
    let (map, hash) = locate(&mut c.db, key)?;
    let found = map.collection_get(hash, key, c.now, ValueKind::List)?;
    let result = found.and_then(|value| value.as_list()).map(f);
    if result.is_some() {
        c.hits += 1;
    } else {
        c.misses += 1;
    }
    Ok(result)
}

/// LLEN key
pub fn llen(c: &mut Ctx<'_, '_>) -> CommandResult {
    let len = read_list(c, c.args.get(1), List::len)?.unwrap_or(0);
    c.out.int(len as i64);
    Ok(())
}

/// Redis's index normalisation: negative counts from the tail; None when
/// it falls outside `0..len`.
fn index_in(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 { len as i64 + index } else { index };
    (0..len as i64).contains(&i).then_some(i as usize)
}

/// `start..=stop` of a list of `len` as LRANGE/LTRIM read them (clamped;
/// None when empty).
fn range_in(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let stop = if stop < 0 { len + stop } else { stop.min(len - 1) };
    (start <= stop && start < len).then_some((start as usize, stop as usize))
}

/// LRANGE key start stop
pub fn lrange(c: &mut Ctx<'_, '_>) -> CommandResult {
    let start = int_arg(c.args.get(2))?;
    let stop = int_arg(c.args.get(3))?;
    let key = c.args.get(1);
    let (map, hash) = locate(&mut c.db, key)?;
    let found = map.collection_get(hash, key, c.now, ValueKind::List)?;
    match found.and_then(|value| value.as_list()) {
        None => {
            c.misses += 1;
            c.out.array(0);
        }
        Some(list) => {
            c.hits += 1;
            match range_in(start, stop, list.len()) {
                None => c.out.array(0),
                Some((from, to)) => {
                    c.out.array(to - from + 1);
                    for item in list.range(from, to) {
                        c.out.bulk(item);
                    }
                }
            }
        }
    }
    Ok(())
}

/// LINDEX key index
pub fn lindex(c: &mut Ctx<'_, '_>) -> CommandResult {
    let index = int_arg(c.args.get(2))?;
    let key = c.args.get(1);
    let (map, hash) = locate(&mut c.db, key)?;
    let found = map.collection_get(hash, key, c.now, ValueKind::List)?;
    let item = found
        .and_then(|value| value.as_list())
        .and_then(|list| index_in(index, list.len()).and_then(|i| list.get(i)));
    c.out.bulk_or_nil(item);
    Ok(())
}

/// LSET key index element
pub fn lset(c: &mut Ctx<'_, '_>) -> CommandResult {
    let index = int_arg(c.args.get(2))?;
    let key = c.args.get(1);
    let item = c.args.get(3);
    let (map, hash) = locate(&mut c.db, key)?;
    let mut splices = SpliceLog::default();
    let done = map.collection_update(hash, key, c.now, ValueKind::List, false, |value| {
        let list = value.as_list_mut()?;
        let i = index_in(index, list.len())?;
        list.set(i, item);
        splices.push(i, 1, &[item]);
        Some(())
    })?;
    match done {
        None => Err(CommandError::NoSuchKey),
        Some(None) => Err(error("index out of range")),
        Some(Some(())) => {
            log_splices(c, key, &splices);
            c.out.ok();
            Ok(())
        }
    }
}

/// LINSERT key BEFORE|AFTER pivot element
pub fn linsert(c: &mut Ctx<'_, '_>) -> CommandResult {
    let after = if is(c.args.get(2), "after") {
        true
    } else if is(c.args.get(2), "before") {
        false
    } else {
        return Err(CommandError::Syntax);
    };
    let key = c.args.get(1);
    let pivot = c.args.get(3);
    let item = c.args.get(4);
    let (map, hash) = locate(&mut c.db, key)?;
    let mut splices = SpliceLog::default();
    let reply = map.collection_update(hash, key, c.now, ValueKind::List, false, |value| {
        let Some(list) = value.as_list_mut() else {
            return -1;
        };
        let Some(at) = list.iter().position(|x| x == pivot) else {
            return -1;
        };
        let at = at + usize::from(after);
        list.insert(at, item);
        splices.push(at, 0, &[item]);
        list.len() as i64
    })?;
    log_splices(c, key, &splices);
    c.out.int(reply.unwrap_or(0));
    Ok(())
}

/// LREM key count element
pub fn lrem(c: &mut Ctx<'_, '_>) -> CommandResult {
    let count = int_arg(c.args.get(2))?;
    let key = c.args.get(1);
    let item = c.args.get(3);
    let (map, hash) = locate(&mut c.db, key)?;
    let mut splices = SpliceLog::default();
    let removed = map.collection_update(hash, key, c.now, ValueKind::List, false, |value| {
        let Some(list) = value.as_list_mut() else {
            return 0;
        };
        let limit = if count == 0 {
            usize::MAX
        } else {
            count.unsigned_abs() as usize
        };
        let mut positions: Vec<usize> = if count >= 0 {
            list.iter()
                .enumerate()
                .filter(|(_, x)| *x == item)
                .map(|(i, _)| i)
                .take(limit)
                .collect()
        } else {
            let len = list.len();
            list.iter()
                .rev()
                .enumerate()
                .filter(|(_, x)| *x == item)
                .map(|(i, _)| len - 1 - i)
                .take(limit)
                .collect()
        };
        // Remove from the back so earlier positions stay valid; log the same order.
        positions.sort_unstable_by(|a, b| b.cmp(a));
        for &at in &positions {
            list.remove_range(at, 1);
            splices.push(at, 1, &[]);
        }
        positions.len()
    })?;
    log_splices(c, key, &splices);
    c.out.int(removed.unwrap_or(0) as i64);
    Ok(())
}

/// LTRIM key start stop
pub fn ltrim(c: &mut Ctx<'_, '_>) -> CommandResult {
    let start = int_arg(c.args.get(2))?;
    let stop = int_arg(c.args.get(3))?;
    let key = c.args.get(1);
    let (map, hash) = locate(&mut c.db, key)?;
    let mut splices = SpliceLog::default();
    map.collection_update(hash, key, c.now, ValueKind::List, false, |value| {
        let Some(list) = value.as_list_mut() else {
            return;
        };
        let len = list.len();
        match range_in(start, stop, len) {
            None => {
                list.remove_range(0, len);
                splices.push(0, len, &[]);
            }
            Some((from, to)) => {
                if to + 1 < len {
                    list.remove_range(to + 1, len - to - 1);
                    splices.push(to + 1, len - to - 1, &[]);
                }
                if from > 0 {
                    list.remove_range(0, from);
                    splices.push(0, from, &[]);
                }
            }
        }
    })?;
    log_splices(c, key, &splices);
    c.out.ok();
    Ok(())
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
pub fn lpos(c: &mut Ctx<'_, '_>) -> CommandResult {
    let key = c.args.get(1);
    let item = c.args.get(2);
    let mut rank: i64 = 1;
    let mut count: Option<usize> = None;
    let mut maxlen: usize = 0;
    let mut i = 3;
    while i < c.args.len() {
        let word = c.args.get(i);
        let value = (i + 1 < c.args.len()).then(|| c.args.get(i + 1));
        match value {
            Some(value) if is(word, "rank") => {
                rank = match crate::protocol::parse_i64(value) {
                    Some(i64::MIN) => return Err(error("value is out of range")),
                    Some(n) => n,
                    None => return Err(CommandError::NotInteger),
                };
                if rank == 0 {
                    return Err(error(
                        "RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
                         or use negative to start from the end of the list",
                    ));
                }
            }
            Some(value) if is(word, "count") => {
                count = Some(match crate::protocol::parse_i64(value) {
                    Some(n) if n >= 0 => n as usize,
                    _ => return Err(error("COUNT can't be negative")),
                });
            }
            Some(value) if is(word, "maxlen") => {
                maxlen = match crate::protocol::parse_i64(value) {
                    Some(n) if n >= 0 => n as usize,
                    _ => return Err(error("MAXLEN can't be negative")),
                };
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 2;
    }
    let wanted = match count {
        Some(0) => usize::MAX,
        Some(n) => n,
        None => 1,
    };
    let skip = rank.unsigned_abs() as usize - 1;
    let scan = if maxlen == 0 { usize::MAX } else { maxlen };
    let found = read_list(c, key, |list| {
        let len = list.len();
        let matches = |it: &mut dyn Iterator<Item = (usize, &[u8])>| -> Vec<usize> {
            it.take(scan)
                .filter(|(_, x)| *x == item)
                .map(|(i, _)| i)
                .skip(skip)
                .take(wanted)
                .collect()
        };
        if rank > 0 {
            matches(&mut list.iter().enumerate())
        } else {
            matches(&mut list.iter().rev().enumerate().map(|(i, x)| (len - 1 - i, x)))
        }
    })?
    .unwrap_or_default();
    match count {
        None => match found.first() {
            Some(&at) => c.out.int(at as i64),
            None => c.out.nil(),
        },
        Some(_) => {
            c.out.array(found.len());
            for at in found {
                c.out.int(at as i64);
            }
        }
    }
    Ok(())
}

/// Moves one item from `end_from` of `src` to `end_to` of `dst`, logging
/// both splices. None: `src` is missing. A `dst` of another type is checked
/// before anything is popped, so a WRONGTYPE changes nothing.
pub fn move_one(
    c: &mut Ctx<'_, '_>,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
) -> Result<Option<Vec<u8>>, CommandError> {
    {
        let (map, hash) = locate(&mut c.db, dst)?;
        map.collection_get(hash, dst, c.now, ValueKind::List)?;
    }
    let Some(mut items) = pop(c, src, from, 1)? else {
        return Ok(None);
    };
    let Some(item) = items.pop() else {
        return Ok(None);
    };
    push(c, dst, to, &[&item], false)?;
    Ok(Some(item))
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
pub fn lmove(c: &mut Ctx<'_, '_>) -> CommandResult {
    let from = End::parse(c.args.get(3))?;
    let to = End::parse(c.args.get(4))?;
    let (src, dst) = (c.args.get(1), c.args.get(2));
    let item = move_one(c, src, dst, from, to)?;
    c.out.bulk_or_nil(item.as_deref());
    Ok(())
}

/// RPOPLPUSH source destination (LMOVE source destination RIGHT LEFT)
pub fn rpoplpush(c: &mut Ctx<'_, '_>) -> CommandResult {
    let (src, dst) = (c.args.get(1), c.args.get(2));
    let item = move_one(c, src, dst, End::Right, End::Left)?;
    c.out.bulk_or_nil(item.as_deref());
    Ok(())
}

/// The arguments of LMPOP/BLMPOP from `first` on: `numkeys key... LEFT|RIGHT [COUNT n]`.
pub struct MultiPop {
    /// Positions of the keys in the arguments.
    pub keys: std::ops::Range<usize>,
    pub end: End,
    pub count: usize,
}

/// Parses `numkeys key... LEFT|RIGHT [COUNT n]` starting at argument `first`.
pub fn parse_multi_pop(c: &Ctx<'_, '_>, first: usize) -> Result<MultiPop, CommandError> {
    let numkeys = match crate::protocol::parse_i64(c.args.get(first)) {
        Some(n) if n >= 1 => n as usize,
        _ => return Err(error("numkeys should be greater than 0")),
    };
    let where_at = first + 1 + numkeys;
    if where_at >= c.args.len() {
        return Err(CommandError::Syntax);
    }
    let end = End::parse(c.args.get(where_at))?;
    let mut count = None;
    let mut i = where_at + 1;
    while i < c.args.len() {
        if count.is_none() && is(c.args.get(i), "count") && i + 1 < c.args.len() {
            count = Some(match crate::protocol::parse_i64(c.args.get(i + 1)) {
                Some(n) if n >= 1 => n as usize,
                _ => return Err(error("count should be greater than 0")),
            });
            i += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(MultiPop {
        keys: first + 1..where_at,
        end,
        count: count.unwrap_or(1),
    })
}

/// Pops from the first non-empty list of `spec`'s keys; writes `[key,
/// [items]]` and returns true, or writes nothing and returns false.
pub fn multi_pop(c: &mut Ctx<'_, '_>, spec: &MultiPop) -> Result<bool, CommandError> {
    for k in spec.keys.clone() {
        let key = c.args.get(k);
        if let Some(items) = pop(c, key, spec.end, spec.count)? {
            if items.is_empty() {
                continue;
            }
            c.out.array(2);
            c.out.bulk(key);
            c.out.array(items.len());
            for item in &items {
                c.out.bulk(item);
            }
            return Ok(true);
        }
    }
    Ok(false)
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn lmpop(c: &mut Ctx<'_, '_>) -> CommandResult {
    let spec = parse_multi_pop(c, 1)?;
    if !multi_pop(c, &spec)? {
        c.out.null_array();
    }
    Ok(())
}

/// A blocking command's timeout: seconds with decimals, 0 = forever
/// (Redis's `getTimeoutFromObjectOrReply`).
pub fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, CommandError> {
    let seconds = std::str::from_utf8(arg)
        .ok()
        .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|v| !v.is_nan())
        .ok_or_else(|| error("timeout is not a float or out of range"))?;
    if seconds < 0.0 {
        return Err(error("timeout is negative"));
    }
    if seconds * 1000.0 > i64::MAX as f64 {
        return Err(error("timeout is out of range"));
    }
    Ok((seconds > 0.0).then(|| Duration::from_secs_f64(seconds)))
}

/// Nothing to pop: reply null if the wait is over (or cannot start: inside
/// EXEC), otherwise register the client as blocked on `keys` and reply
/// nothing — the session stops until the worker wakes it.
pub fn block_on(
    c: &mut Ctx<'_, '_>,
    keys: &[&[u8]],
    timeout: Option<Duration>,
    null: fn(&mut Replies),
    serve: Option<Serve>,
) -> CommandResult {
    let resumed = c.client.resumed_deadline.take();
    match c.client.wake_reason.take() {
        Some(WakeReason::Served(reply)) => {
            // Handlers check `take_served` first; never drop a served reply.
            c.out.raw(&reply);
            return Ok(());
        }
        Some(WakeReason::Timeout) => {
            null(c.out);
            return Ok(());
        }
        Some(WakeReason::Error) => {
            return Err(CommandError::Other(
                "UNBLOCKED client unblocked via CLIENT UNBLOCK".into(),
            ));
        }
        Some(WakeReason::Retry) | None => {}
    }
    let Some(handle) = c.client.handle.clone() else {
        null(c.out);
        return Ok(());
    };
    if c.client.in_exec {
        // As Redis: inside MULTI/EXEC a blocking command does not block.
        null(c.out);
        return Ok(());
    }
    let deadline = resumed.unwrap_or_else(|| timeout.map(|t| Instant::now() + t));
    if deadline.is_some_and(|d| d <= Instant::now()) {
        null(c.out);
        return Ok(());
    }
    // Still under the keys' shard locks: no push can slip in between.
    let style = c.out.style();
    c.state.blocking.block(
        c.client.id,
        handle.worker,
        c.client.db,
        keys,
        resumed.is_some(),
        crate::blocking::Wants { serve, style },
    );
    handle.blocked.store(true, std::sync::atomic::Ordering::Relaxed);
    c.client.blocked = Some(crate::state::BlockedOn { deadline });
    Ok(())
}

fn blocking_pop(c: &mut Ctx<'_, '_>, end: End) -> CommandResult {
    if take_served(c) {
        return Ok(());
    }
    let last = c.args.len() - 1;
    let timeout = parse_timeout(c.args.get(last))?;
    for k in 1..last {
        let key = c.args.get(k);
        if let Some(items) = pop(c, key, end, 1)? {
            if let Some(item) = items.first() {
                c.out.array(2);
                c.out.bulk(key);
                c.out.bulk(item);
                return Ok(());
            }
        }
    }
    let keys: Vec<&[u8]> = (1..last).map(|k| c.args.get(k)).collect();
    let serve = Serve::List {
        left: end == End::Left,
        count: None,
    };
    block_on(c, &keys, timeout, Replies::null_array, Some(serve))
}

/// BLPOP key [key ...] timeout
pub fn blpop(c: &mut Ctx<'_, '_>) -> CommandResult {
    blocking_pop(c, End::Left)
}

/// BRPOP key [key ...] timeout
pub fn brpop(c: &mut Ctx<'_, '_>) -> CommandResult {
    blocking_pop(c, End::Right)
}

fn blocking_move(c: &mut Ctx<'_, '_>, from: End, to: End, timeout_at: usize) -> CommandResult {
    let timeout = parse_timeout(c.args.get(timeout_at))?;
    let (src, dst) = (c.args.get(1), c.args.get(2));
    match move_one(c, src, dst, from, to)? {
        Some(item) => {
            c.out.bulk(&item);
            Ok(())
        }
        // Not served in place: the destination may be a shard the pusher
        // does not hold. Woken, it runs again.
        None => block_on(c, &[src], timeout, Replies::nil, None),
    }
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
pub fn blmove(c: &mut Ctx<'_, '_>) -> CommandResult {
    let from = End::parse(c.args.get(3))?;
    let to = End::parse(c.args.get(4))?;
    blocking_move(c, from, to, 5)
}

/// BRPOPLPUSH source destination timeout
pub fn brpoplpush(c: &mut Ctx<'_, '_>) -> CommandResult {
    blocking_move(c, End::Right, End::Left, 3)
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn blmpop(c: &mut Ctx<'_, '_>) -> CommandResult {
    if take_served(c) {
        return Ok(());
    }
    let timeout = parse_timeout(c.args.get(1))?;
    let spec = parse_multi_pop(c, 2)?;
    if multi_pop(c, &spec)? {
        return Ok(());
    }
    let keys: Vec<&[u8]> = spec.keys.clone().map(|k| c.args.get(k)).collect();
    let serve = Serve::List {
        left: spec.end == End::Left,
        count: Some(spec.count),
    };
    block_on(c, &keys, timeout, Replies::null_array, Some(serve))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_and_ranges_normalise_as_redis() {
        assert_eq!(index_in(-1, 3), Some(2));
        assert_eq!(index_in(3, 3), None);
        assert_eq!(index_in(-4, 3), None);
        assert_eq!(range_in(0, -1, 3), Some((0, 2)));
        assert_eq!(range_in(-100, 100, 3), Some((0, 2)));
        assert_eq!(range_in(2, 1, 3), None);
        assert_eq!(range_in(5, 10, 3), None);
        assert_eq!(range_in(0, 0, 0), None);
    }
}
