//! Set commands (Redis 7.2): SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER,
//! SCARD, SPOP, SRANDMEMBER, SMOVE, SINTER, SINTERCARD, SINTERSTORE,
//! SUNION, SUNIONSTORE, SDIFF, SDIFFSTORE and SSCAN.
//!
//! Every write logs its effect as a set record (`store::types::set`'s
//! module doc gives the layouts) — members added, members removed — never
//! the command: `SPOP` logs the members it chose, `SMOVE` a removal on the
//! source and an addition on the destination, and the `*STORE` commands a
//! `Del` of the destination followed by its whole new value (or only the
//! `Del` when the result is empty), as RENAME does. Replay is therefore
//! deterministic and idempotent.
//!
//! Multi-key commands run with the shards of all their keys locked (the
//! command table's key spec), but a handler reaches one shard map at a time,
//! so an intersection copies the smallest set's members and filters them
//! set by set, and a union or difference builds its result as a new [`Set`].

use super::{int_arg, is, locate, CommandError, CommandResult, Ctx};
use crate::protocol::Replies;
use crate::store::types::set::{Member, Payload, OP_ADD, OP_REMOVE};
use crate::store::types::{Set, TYPE_SET};
use crate::store::{random_u64, Collection, Locked, Value, ValueKind};
use crate::wal::Record;

/// Reads the live set at `key` (None: missing), counting the keyspace hit or miss.
fn read_set<'m>(
    db: &'m mut Option<&mut Locked<'_>>,
    key: &[u8],
    now: u64,
    hits: &mut u64,
    misses: &mut u64,
) -> Result<Option<&'m Set>, CommandError> {
    let (map, hash) = locate(db, key)?;
    let found = map.collection_get(hash, key, now, ValueKind::Set)?;
    if found.is_some() {
        *hits += 1;
    } else {
        *misses += 1;
    }
    Ok(found.and_then(Collection::as_set))
}

macro_rules! read_set {
    ($c:expr, $key:expr) => {
        read_set(&mut $c.db, $key, $c.now, &mut $c.hits, &mut $c.misses)
    };
}

/// Runs `f` on the set at `key` (creating it first if `create`); `Ok(None)`
/// when missing and not created. An emptied set is deleted by the store.
fn update_set<R>(
    c: &mut Ctx<'_, '_>,
    key: &[u8],
    create: bool,
    f: impl FnOnce(&mut Set) -> R,
) -> Result<Option<R>, CommandError> {
    let now = c.now;
    let (map, hash) = locate(&mut c.db, key)?;
    let result = map.collection_update(hash, key, now, ValueKind::Set, create, |col| {
        col.as_set_mut().map(f)
    })?;
    Ok(result.flatten())
}

/// Logs one set effect on `key` (nothing for an empty payload).
fn log_effect(c: &mut Ctx<'_, '_>, key: &[u8], op: u8, payload: &Payload) {
    if !payload.is_empty() {
        c.log.push(Record::Collection {
            key,
            op: TYPE_SET | op,
            payload: payload.bytes(),
        });
    }
}

/// Writes one member as a bulk string.
fn member_reply(out: &mut Replies, m: Member<'_>) {
    match m {
        Member::Int(n) => out.bulk_int(n),
        Member::Bytes(b) => out.bulk(b),
    }
}

/// SADD key member [member ...]
pub fn sadd(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let key = args.get(1);
    let mut added = Payload::default();
    update_set(c, key, true, |s| {
        s.prepare(args.get(2), args.len() - 2);
        for m in args.iter_from(2) {
            if s.insert(m) {
                added.push(m);
            }
        }
    })?;
    log_effect(c, key, OP_ADD, &added);
    c.out.int(added.len() as i64);
    Ok(())
}

/// SREM key member [member ...]
pub fn srem(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let key = args.get(1);
    let mut removed = Payload::default();
    update_set(c, key, false, |s| {
        for m in args.iter_from(2) {
            if s.remove(m) {
                removed.push(m);
            }
        }
    })?;
    log_effect(c, key, OP_REMOVE, &removed);
    c.out.int(removed.len() as i64);
    Ok(())
}

/// SMEMBERS key: a RESP3 set (an array in RESP2 and text).
pub fn smembers(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let found = read_set!(c, args.get(1))?;
    let out = &mut *c.out;
    match found {
        Some(s) => {
            out.set(s.len());
            for m in s.iter() {
                member_reply(out, m);
            }
        }
        None => out.set(0),
    }
    Ok(())
}

/// SISMEMBER key member
pub fn sismember(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let found = read_set!(c, args.get(1))?.is_some_and(|s| s.contains(args.get(2)));
    c.out.int(i64::from(found));
    Ok(())
}

/// SMISMEMBER key member [member ...]
pub fn smismember(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let found = read_set!(c, args.get(1))?;
    let out = &mut *c.out;
    out.array(args.len() - 2);
    for m in args.iter_from(2) {
        out.int(i64::from(found.is_some_and(|s| s.contains(m))));
    }
    Ok(())
}

/// SCARD key
pub fn scard(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let len = read_set!(c, args.get(1))?.map_or(0, Set::len);
    c.out.int(len as i64);
    Ok(())
}

/// SPOP key [count]: one member (nil when missing) or a RESP3 set of up to
/// `count` distinct members. Logs the removal of the chosen members (a
/// `Del` when the whole set goes), never the command.
pub fn spop(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let key = args.get(1);
    if args.len() > 3 {
        return Err(CommandError::Syntax);
    }
    if args.len() == 2 {
        let popped = update_set(c, key, false, |s| s.pop_random(random_u64))?.flatten();
        if let Some(m) = &popped {
            let mut payload = Payload::default();
            payload.push(m);
            log_effect(c, key, OP_REMOVE, &payload);
        }
        c.out.bulk_or_nil(popped.as_deref());
        return Ok(());
    }
    let count = positive(args.get(2))?;
    let popped = update_set(c, key, false, |s| {
        if count >= s.len() as u64 {
            // The whole set: taken as it is, and the key is deleted.
            let all: Vec<Vec<u8>> = s.iter().map(|m| m.to_vec()).collect();
            *s = Set::new();
            (all, true)
        } else {
            let picked = (0..count).filter_map(|_| s.pop_random(random_u64)).collect();
            (picked, false)
        }
    })?;
    match popped {
        Some((members, true)) => {
            c.log.push(Record::Del { key });
            reply_members(c.out, &members);
        }
        Some((members, false)) => {
            let mut payload = Payload::default();
            for m in &members {
                payload.push(m);
            }
            log_effect(c, key, OP_REMOVE, &payload);
            reply_members(c.out, &members);
        }
        None => c.out.set(0),
    }
    Ok(())
}

fn reply_members(out: &mut Replies, members: &[Vec<u8>]) {
    out.set(members.len());
    for m in members {
        out.bulk(m);
    }
}

/// Parses a count that must be ≥ 0 (`ERR value is out of range, must be positive`).
fn positive(arg: &[u8]) -> Result<u64, CommandError> {
    let n = int_arg(arg)?;
    if n < 0 {
        return Err(CommandError::Other(
            "ERR value is out of range, must be positive".into(),
        ));
    }
    Ok(n as u64)
}

/// SRANDMEMBER key [count]: one member, or an array of `count` distinct
/// members (count > 0) or of |count| members with repeats (count < 0).
pub fn srandmember(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    if args.len() > 3 {
        return Err(CommandError::Syntax);
    }
    let count = if args.len() == 3 {
        let n = int_arg(args.get(2))?;
        if n == i64::MIN {
            return Err(CommandError::Other(format!(
                "ERR value is out of range, value must between {} and {}",
                -i64::MAX,
                i64::MAX
            )));
        }
        super::check_random_repeats(n, "SRANDMEMBER")?;
        Some(n)
    } else {
        None
    };
    let found = read_set!(c, args.get(1))?;
    let out = &mut *c.out;
    let Some(s) = found else {
        match count {
            None => out.nil(),
            Some(_) => out.array(0),
        }
        return Ok(());
    };
    let Some(n) = count else {
        match s.random(random_u64) {
            Some(m) => member_reply(out, m),
            None => out.nil(),
        }
        return Ok(());
    };
    if n < 0 {
        let n = n.unsigned_abs() as usize;
        out.array(n);
        for _ in 0..n {
            if let Some(m) = s.random(random_u64) {
                member_reply(out, m);
            }
        }
        return Ok(());
    }
    let members = s.random_distinct(usize::try_from(n).unwrap_or(usize::MAX), random_u64);
    out.array(members.len());
    for m in members {
        member_reply(out, m);
    }
    Ok(())
}

/// SMOVE source destination member: 1 if moved (or already in both when
/// source = destination), 0 if the source lacks it.
pub fn smove(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let (src, dst, member) = (args.get(1), args.get(2), args.get(3));
    // Write lookups, as Redis's: no keyspace hit or miss is counted.
    let now = c.now;
    let Some(in_src) = read_set(&mut c.db, src, now, &mut 0, &mut 0)?.map(|s| s.contains(member)) else {
        c.out.int(0);
        return Ok(());
    };
    // Redis checks the destination's type even when nothing would move.
    read_set(&mut c.db, dst, now, &mut 0, &mut 0)?;
    if src == dst || !in_src {
        c.out.int(i64::from(in_src));
        return Ok(());
    }
    update_set(c, src, false, |s| s.remove(member))?;
    let mut payload = Payload::default();
    payload.push(member);
    log_effect(c, src, OP_REMOVE, &payload);
    let added = update_set(c, dst, true, |s| {
        s.prepare(member, 1);
        s.insert(member)
    })?
    .unwrap_or(false);
    if added {
        log_effect(c, dst, OP_ADD, &payload);
    }
    c.out.int(1);
    Ok(())
}

/// Looks every key up once, in order, so a WRONGTYPE anywhere wins over a
/// missing key (as in Redis); returns each key's cardinality (None: missing).
fn cardinalities(
    c: &mut Ctx<'_, '_>,
    first: usize,
    count: usize,
) -> Result<Vec<Option<usize>>, CommandError> {
    let args = c.args;
    (first..first + count)
        .map(|i| Ok(read_set!(c, args.get(i))?.map(Set::len)))
        .collect()
}

/// Candidates SINTERCARD filters at a time, so `LIMIT` can stop early.
const LIMIT_CHUNK: usize = 1024;

/// The members in every set at args `first..first + count`, in the order
/// of the smallest set (empty if any key is missing). With `limit` > 0,
/// stops once at least `limit` are found (SINTERCARD): candidates are then
/// filtered [`LIMIT_CHUNK`] at a time.
fn intersection(
    c: &mut Ctx<'_, '_>,
    first: usize,
    count: usize,
    limit: usize,
) -> Result<Vec<Vec<u8>>, CommandError> {
    let args = c.args;
    let lens = cardinalities(c, first, count)?;
    let Some(lens) = lens.into_iter().collect::<Option<Vec<usize>>>() else {
        return Ok(Vec::new());
    };
    let smallest = (0..count).min_by_key(|&i| lens[i]).unwrap_or(0);
    let now = c.now;
    let key_of = |i: usize| args.get(first + i);
    let candidates: Vec<Vec<u8>> = {
        let (map, hash) = locate(&mut c.db, key_of(smallest))?;
        let found = map.collection_get(hash, key_of(smallest), now, ValueKind::Set)?;
        found
            .and_then(Collection::as_set)
            .map(|s| s.iter().map(|m| m.to_vec()).collect())
            .unwrap_or_default()
    };
    let chunk = if limit > 0 { LIMIT_CHUNK } else { usize::MAX };
    let mut candidates = candidates.into_iter();
    let mut kept = Vec::new();
    loop {
        let mut part: Vec<Vec<u8>> = candidates.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        for i in 0..count {
            if part.is_empty() {
                break;
            }
            if key_of(i) == key_of(smallest) {
                continue;
            }
            let (map, hash) = locate(&mut c.db, key_of(i))?;
            let found = map.collection_get(hash, key_of(i), now, ValueKind::Set)?;
            match found.and_then(Collection::as_set) {
                Some(s) => part.retain(|m| s.contains(m)),
                None => part.clear(),
            }
        }
        kept.append(&mut part);
        if limit > 0 && kept.len() >= limit {
            break;
        }
    }
    Ok(kept)
}

/// Which combination SUNION/SDIFF compute.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Combine {
    Union,
    Diff,
}

/// The union of the sets at args `first..first + count`, or the members of
/// the first that none of the others has.
fn combine(c: &mut Ctx<'_, '_>, first: usize, count: usize, how: Combine) -> Result<Set, CommandError> {
    let args = c.args;
    cardinalities(c, first, count)?;
    let now = c.now;
    let mut result = Set::new();
    let mut buf = itoa::Buffer::new();
    for i in first..first + count {
        let key = args.get(i);
        let (map, hash) = locate(&mut c.db, key)?;
        let found = map.collection_get(hash, key, now, ValueKind::Set)?;
        let Some(s) = found.and_then(Collection::as_set) else {
            if how == Combine::Diff && i == first {
                break;
            }
            continue;
        };
        if how == Combine::Union || i == first {
            for m in s.iter() {
                result.insert(m.bytes(&mut buf));
            }
        } else if s.len() <= result.len() {
            for m in s.iter() {
                result.remove(m.bytes(&mut buf));
            }
        } else {
            let gone: Vec<Vec<u8>> = result
                .iter()
                .map(|m| m.to_vec())
                .filter(|m| s.contains(m))
                .collect();
            for m in gone {
                result.remove(&m);
            }
        }
        if how == Combine::Diff && result.is_empty() {
            break;
        }
    }
    Ok(result)
}

/// Makes `dst` hold `result` (a missing key when empty) and replies with
/// its cardinality. Logs a `Del` of the destination and then its new value.
fn store(c: &mut Ctx<'_, '_>, dst: &[u8], result: Set) -> CommandResult {
    let len = result.len();
    let now = c.now;
    let (map, hash) = locate(&mut c.db, dst)?;
    if len == 0 {
        if map.get_live(hash, dst, now).0.is_some() {
            map.remove(hash, dst);
            c.log.push(Record::Del { key: dst });
        }
    } else {
        let value = Collection::Set(result);
        c.log.push(Record::Del { key: dst });
        value.snapshot(dst, &mut |record| c.log.push(record));
        map.put_value(hash, dst, Value::Collection(value), 0);
    }
    c.out.int(len as i64);
    Ok(())
}

/// Builds a set of `members` in their order (intset first, converting up
/// as members arrive, which is where Redis's result sets end up too).
fn set_of(members: &[Vec<u8>]) -> Set {
    let mut s = Set::new();
    for m in members {
        s.insert(m);
    }
    s
}

/// SINTER key [key ...]: a RESP3 set.
pub fn sinter(c: &mut Ctx<'_, '_>) -> CommandResult {
    let count = c.args.len() - 1;
    let members = intersection(c, 1, count, 0)?;
    reply_members(c.out, &members);
    Ok(())
}

/// SINTERSTORE destination key [key ...]
pub fn sinterstore(c: &mut Ctx<'_, '_>) -> CommandResult {
    let (dst, count) = (c.args.get(1), c.args.len() - 2);
    let members = intersection(c, 2, count, 0)?;
    store(c, dst, set_of(&members))
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn sintercard(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let numkeys_error = || CommandError::Other("ERR numkeys should be greater than 0".into());
    let numkeys = crate::protocol::parse_i64(args.get(1)).ok_or_else(numkeys_error)?;
    if numkeys < 1 {
        return Err(numkeys_error());
    }
    if numkeys as u64 > (args.len() - 2) as u64 {
        return Err(CommandError::Other(
            "ERR Number of keys can't be greater than number of args".into(),
        ));
    }
    let numkeys = numkeys as usize;
    let mut limit = 0u64;
    let mut i = 2 + numkeys;
    while i < args.len() {
        if is(args.get(i), "limit") && i + 1 < args.len() {
            let limit_error = || CommandError::Other("ERR LIMIT can't be negative".into());
            let n = crate::protocol::parse_i64(args.get(i + 1)).ok_or_else(limit_error)?;
            limit = u64::try_from(n).map_err(|_| limit_error())?;
            i += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let limit_items = usize::try_from(limit).unwrap_or(usize::MAX);
    let n = intersection(c, 2, numkeys, limit_items)?.len() as u64;
    let n = if limit > 0 { n.min(limit) } else { n };
    c.out.int(n as i64);
    Ok(())
}

/// SUNION key [key ...]: a RESP3 set.
pub fn sunion(c: &mut Ctx<'_, '_>) -> CommandResult {
    let count = c.args.len() - 1;
    let result = combine(c, 1, count, Combine::Union)?;
    reply_set(c.out, &result);
    Ok(())
}

/// SUNIONSTORE destination key [key ...]
pub fn sunionstore(c: &mut Ctx<'_, '_>) -> CommandResult {
    let (dst, count) = (c.args.get(1), c.args.len() - 2);
    let result = combine(c, 2, count, Combine::Union)?;
    store(c, dst, result)
}

/// SDIFF key [key ...]: a RESP3 set.
pub fn sdiff(c: &mut Ctx<'_, '_>) -> CommandResult {
    let count = c.args.len() - 1;
    let result = combine(c, 1, count, Combine::Diff)?;
    reply_set(c.out, &result);
    Ok(())
}

/// SDIFFSTORE destination key [key ...]
pub fn sdiffstore(c: &mut Ctx<'_, '_>) -> CommandResult {
    let (dst, count) = (c.args.get(1), c.args.len() - 2);
    let result = combine(c, 2, count, Combine::Diff)?;
    store(c, dst, result)
}

fn reply_set(out: &mut Replies, s: &Set) {
    out.set(s.len());
    for m in s.iter() {
        member_reply(out, m);
    }
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
pub fn sscan(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let cursor = super::scan_cursor(args.get(2))?;
    let found = read_set!(c, args.get(1))?;
    let out = &mut *c.out;
    let Some(s) = found else {
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return Ok(());
    };
    let super::ScanOptions { pattern, count, .. } = super::scan_options(args, 3, false)?;
    let mut items = Vec::new();
    let next = s.scan(cursor, count, pattern, &mut items);
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(items.len());
    for m in items {
        member_reply(out, m);
    }
    Ok(())
}
