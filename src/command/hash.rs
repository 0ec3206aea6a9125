//! Hash commands (Redis 7.4): HSET & co, HRANDFIELD, HSCAN and per-field
//! expiry (HEXPIRE family, HTTL family, HPERSIST).
//!
//! Every write logs its effect as a hash record — fields set with their
//! final values and expiries (`HashSet`), fields removed (`HashDel`), field
//! expiries as absolute times (`HashExpire`) — never the command, so replay
//! is idempotent: `HINCRBY` logs the new number, `HEXPIRE 10` the absolute
//! time. Expired fields are purged by the store on every access (lazy
//! expiry) and by the active cycle; those purges are not logged, because the
//! log already holds each field's absolute expiry and replay drops fields
//! whose time has passed.

use super::{int_arg, is, locate, CommandError, CommandResult, Ctx};
use crate::protocol::{Replies, Style};
use crate::store::{random_u64, Hash, Limits, Locked, ShardMap, WrongType};
use crate::wal::{HashFields, Record, RecordKind};

impl From<WrongType> for CommandError {
    fn from(_: WrongType) -> CommandError {
        CommandError::WrongType
    }
}

/// Redis's `HFE_MAX_ABS_TIME_MSEC`: the latest field expiry accepted.
const MAX_FIELD_EXPIRY_MS: i64 = 0xFFFF_FFFF_FFFF >> 2;

/// Starts a reply of `pairs` field/value pairs (HGETALL): a RESP3 map, a
/// flat array in RESP2 and text.
fn map_reply(out: &mut Replies, pairs: usize) {
    out.map(pairs);
}

/// The shard map of `key`, its hash, and the listpack limits for a hash write.
macro_rules! hash_map {
    ($c:expr, $key:expr) => {{
        let limits: Limits = crate::store::hash::limits().get();
        let now = $c.now;
        let (map, hash): (&mut ShardMap, u64) = locate(&mut $c.db, $key)?;
        (map, hash, now, limits)
    }};
}

/// Reads the live hash at `key` (None: missing), counting the keyspace hit or miss.
fn read_hash<'m>(
    db: &'m mut Option<&mut Locked<'_>>,
    key: &[u8],
    now: u64,
    hits: &mut u64,
    misses: &mut u64,
) -> Result<Option<&'m Hash>, CommandError> {
    let (map, hash) = locate(db, key)?;
    let found = map.hash_get(hash, key, now)?;
    if found.is_some() {
        *hits += 1;
    } else {
        *misses += 1;
    }
    Ok(found)
}

macro_rules! read_hash {
    ($c:expr, $key:expr) => {
        read_hash(&mut $c.db, $key, $c.now, &mut $c.hits, &mut $c.misses)
    };
}

/// HSET key field value [field value ...]
pub fn hset(c: &mut Ctx<'_, '_>) -> CommandResult {
    let created = set_fields(c, "hset")?;
    c.out.int(created);
    Ok(())
}

/// HMSET key field value [field value ...] (deprecated alias answering OK)
pub fn hmset(c: &mut Ctx<'_, '_>) -> CommandResult {
    set_fields(c, "hmset")?;
    c.out.ok();
    Ok(())
}

/// Sets every field/value pair (clearing their TTLs) and logs one record.
fn set_fields(c: &mut Ctx<'_, '_>, name: &'static str) -> Result<i64, CommandError> {
    if c.args.len() % 2 == 1 {
        return Err(CommandError::WrongArity(name));
    }
    let args = c.args;
    let key = args.get(1);
    let (map, hash, now, limits) = hash_map!(c, key);
    let created = map
        .hash_update(hash, key, now, true, |h| {
            let mut created = 0;
            for i in (2..args.len()).step_by(2) {
                if h.set(args.get(i), args.get(i + 1), false, limits)
                    == crate::store::hash::SetOutcome::Created
                {
                    created += 1;
                }
            }
            created
        })?
        .unwrap_or(0);
    let mut record = c.log.hash_record(RecordKind::HashSet, key);
    for i in (2..args.len()).step_by(2) {
        record.entry(args.get(i), args.get(i + 1), None);
    }
    Ok(created)
}

/// HSETNX key field value
pub fn hsetnx(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let (key, field, value) = (args.get(1), args.get(2), args.get(3));
    let (map, hash, now, limits) = hash_map!(c, key);
    let set = map
        .hash_update(hash, key, now, true, |h| {
            if h.get(field).is_some() {
                false
            } else {
                h.set(field, value, false, limits);
                true
            }
        })?
        .unwrap_or(false);
    if set {
        c.log
            .hash_record(RecordKind::HashSet, key)
            .entry(field, value, None);
    }
    c.out.int(i64::from(set));
    Ok(())
}

/// HGET key field
pub fn hget(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let value = read_hash!(c, args.get(1))?.and_then(|h| h.get(args.get(2)));
    c.out.bulk_or_nil(value);
    Ok(())
}

/// HMGET key field [field ...]
pub fn hmget(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let found = read_hash!(c, args.get(1))?;
    // Resolve every field before writing: `found` borrows the map, not the reply.
    let out = &mut *c.out;
    out.array(args.len() - 2);
    for field in args.iter_from(2) {
        out.bulk_or_nil(found.and_then(|h| h.get(field)));
    }
    Ok(())
}

/// Which parts of each field HGETALL/HKEYS/HVALS reply with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parts {
    Both,
    Fields,
    Values,
}

fn get_all(c: &mut Ctx<'_, '_>, parts: Parts) -> CommandResult {
    let args = c.args;
    let found = read_hash!(c, args.get(1))?;
    let out = &mut *c.out;
    let Some(h) = found else {
        if parts == Parts::Both {
            map_reply(out, 0);
        } else {
            out.array(0);
        }
        return Ok(());
    };
    match parts {
        Parts::Both => map_reply(out, h.len()),
        _ => out.array(h.len()),
    }
    for (field, value, _) in h.iter() {
        if parts != Parts::Values {
            out.bulk(field);
        }
        if parts != Parts::Fields {
            out.bulk(value);
        }
    }
    Ok(())
}

/// HGETALL key
pub fn hgetall(c: &mut Ctx<'_, '_>) -> CommandResult {
    get_all(c, Parts::Both)
}

/// HKEYS key
pub fn hkeys(c: &mut Ctx<'_, '_>) -> CommandResult {
    get_all(c, Parts::Fields)
}

/// HVALS key
pub fn hvals(c: &mut Ctx<'_, '_>) -> CommandResult {
    get_all(c, Parts::Values)
}

/// HDEL key field [field ...]
pub fn hdel(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let key = args.get(1);
    let (map, hash, now, _) = hash_map!(c, key);
    let mut record = c.log.hash_record(RecordKind::HashDel, key);
    let removed = map
        .hash_update(hash, key, now, false, |h| {
            let mut removed = 0;
            for field in args.iter_from(2) {
                if h.remove(field) {
                    record.entry(field, &[], None);
                    removed += 1;
                }
            }
            removed
        })?
        .unwrap_or(0);
    drop(record);
    c.out.int(removed);
    Ok(())
}

/// HEXISTS key field
pub fn hexists(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let exists = read_hash!(c, args.get(1))?.is_some_and(|h| h.get(args.get(2)).is_some());
    c.out.int(i64::from(exists));
    Ok(())
}

/// HLEN key
pub fn hlen(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let len = read_hash!(c, args.get(1))?.map_or(0, |h| h.len());
    c.out.int(len as i64);
    Ok(())
}

/// HSTRLEN key field
pub fn hstrlen(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let len = read_hash!(c, args.get(1))?
        .and_then(|h| h.get(args.get(2)))
        .map_or(0, |v| v.len());
    c.out.int(len as i64);
    Ok(())
}

/// Applies `f` to the current value of `field` (None when missing) and
/// stores the text it returns, keeping the field's TTL, as HINCRBY does.
/// Logs the final value and expiry.
fn update_number(
    c: &mut Ctx<'_, '_>,
    f: impl FnOnce(Option<&[u8]>) -> Result<Vec<u8>, CommandError>,
) -> Result<Vec<u8>, CommandError> {
    let args = c.args;
    let (key, field) = (args.get(1), args.get(2));
    let (map, hash, now, limits) = hash_map!(c, key);
    let result = map
        .hash_update(hash, key, now, true, |h| {
            let text = f(h.get(field))?;
            h.set(field, &text, true, limits);
            Ok((text, h.expiry(field).flatten()))
        })?
        .unwrap_or(Err(CommandError::NoSuchKey))?;
    let (text, expires_at) = result;
    c.log
        .hash_record(RecordKind::HashSet, key)
        .entry(field, &text, expires_at);
    Ok(text)
}

/// HINCRBY key field increment
pub fn hincrby(c: &mut Ctx<'_, '_>) -> CommandResult {
    let delta = int_arg(c.args.get(3))?;
    let mut new = 0;
    update_number(c, |current| {
        let old = match current {
            Some(v) => crate::protocol::parse_i64(v)
                .ok_or_else(|| CommandError::Other("ERR hash value is not an integer".into()))?,
            None => 0,
        };
        new = old.checked_add(delta).ok_or(CommandError::Overflow)?;
        Ok(itoa::Buffer::new().format(new).as_bytes().to_vec())
    })?;
    c.out.int(new);
    Ok(())
}

/// HINCRBYFLOAT key field increment
pub fn hincrbyfloat(c: &mut Ctx<'_, '_>) -> CommandResult {
    let delta = super::strings::parse_float(c.args.get(3)).ok_or(CommandError::NotFloat)?;
    if !delta.is_finite() {
        return Err(CommandError::Other("ERR value is NaN or Infinity".into()));
    }
    let text = update_number(c, |current| {
        let old = match current {
            Some(v) => super::strings::parse_float(v)
                .ok_or_else(|| CommandError::Other("ERR hash value is not a float".into()))?,
            None => 0.0,
        };
        let new = old + delta;
        if !new.is_finite() {
            return Err(CommandError::NanOrInfinity);
        }
        Ok(format!("{new}").into_bytes())
    })?;
    c.out.bulk(&text);
    Ok(())
}

/// HRANDFIELD key [count [WITHVALUES]]
pub fn hrandfield(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let mut count = None;
    let mut with_values = false;
    if args.len() >= 3 {
        let n = int_arg(args.get(2))?;
        if n == i64::MIN {
            return Err(CommandError::Other(format!(
                "ERR value is out of range, value must between {} and {}",
                -i64::MAX,
                i64::MAX
            )));
        }
        if args.len() > 4 || (args.len() == 4 && !is(args.get(3), "withvalues")) {
            return Err(CommandError::Syntax);
        }
        if args.len() == 4 {
            with_values = true;
            if !(-i64::MAX / 2..=i64::MAX / 2).contains(&n) {
                return Err(CommandError::Other("ERR value is out of range".into()));
            }
        }
        super::check_random_repeats(n, "HRANDFIELD")?;
        count = Some(n);
    }
    let found = read_hash!(c, args.get(1))?;
    let out = &mut *c.out;
    let Some(h) = found else {
        match count {
            None => out.nil(),
            Some(_) => out.array(0),
        }
        return Ok(());
    };
    let Some(n) = count else {
        match h.random_entry(random_u64) {
            Some((field, _)) => out.bulk(field),
            None => out.nil(),
        }
        return Ok(());
    };
    // RESP3 answers WITHVALUES as [field, value] pairs, RESP2 and text flat.
    let nested = with_values && out.style() == Style::Resp3;
    let per_item = if with_values && !nested { 2 } else { 1 };
    let emit = |out: &mut Replies, (field, value): (&[u8], &[u8])| {
        if nested {
            out.array(2);
        }
        out.bulk(field);
        if with_values {
            out.bulk(value);
        }
    };
    if n < 0 {
        // Repeats allowed: independent picks.
        let n = n.unsigned_abs() as usize;
        out.array(n * per_item);
        for _ in 0..n {
            if let Some(entry) = h.random_entry(random_u64) {
                emit(out, entry);
            }
        }
        return Ok(());
    }
    // Distinct fields: a partial Fisher–Yates shuffle of the entries.
    let mut entries: Vec<(&[u8], &[u8])> = h.iter().map(|(f, v, _)| (f, v)).collect();
    let take = (n as usize).min(entries.len());
    for i in 0..take {
        let j = i + (random_u64() % (entries.len() - i) as u64) as usize;
        entries.swap(i, j);
    }
    out.array(take * per_item);
    for &entry in &entries[..take] {
        emit(out, entry);
    }
    Ok(())
}

/// HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]
pub fn hscan(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let cursor = super::scan_cursor(args.get(2))?;
    let found = read_hash!(c, args.get(1))?;
    let out = &mut *c.out;
    let Some(h) = found else {
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return Ok(());
    };
    let super::ScanOptions {
        pattern,
        count,
        no_values,
    } = super::scan_options(args, 3, true)?;
    let mut items = Vec::new();
    let next = h.scan(cursor, count, pattern, &mut items);
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(items.len() * if no_values { 1 } else { 2 });
    for (field, value) in items {
        out.bulk(field);
        if !no_values {
            out.bulk(value);
        }
    }
    Ok(())
}

// ------------------------------------------------------------ field expiry

/// Parses `FIELDS numfields field ...` starting at `at` (the FIELDS word).
/// Returns the index of the first field.
fn fields_arg(args: super::Args<'_>, at: usize, numfields_error: &str) -> Result<usize, CommandError> {
    if at >= args.len() || !is(args.get(at), "fields") {
        return Err(CommandError::Other(
            "ERR Mandatory argument FIELDS is missing or not at the right position".into(),
        ));
    }
    let numfields_error = || CommandError::Other(format!("ERR {numfields_error}"));
    let n = crate::protocol::parse_i64(args.get(at + 1)).ok_or_else(numfields_error)?;
    if n < 1 {
        return Err(numfields_error());
    }
    if n as u64 != (args.len() - at - 2) as u64 {
        return Err(CommandError::Other(
            "ERR The `numfields` parameter must match the number of arguments".into(),
        ));
    }
    Ok(at + 2)
}

/// The condition of HEXPIRE & co.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Condition {
    Always,
    Nx,
    Xx,
    Gt,
    Lt,
}

/// HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT: `base` is now (relative) or 0.
fn hexpire_generic(
    c: &mut Ctx<'_, '_>,
    ms_per_unit: i64,
    relative: bool,
    name: &'static str,
) -> CommandResult {
    let args = c.args;
    let key = args.get(1);
    // Type first, as Redis does (a string key answers WRONGTYPE before any argument error).
    {
        let (map, hash) = locate(&mut c.db, key)?;
        map.hash_get(hash, key, c.now)?;
    }
    let amount = int_arg(args.get(2))?;
    if amount < 0 {
        return Err(CommandError::Other(
            "ERR invalid expire time, must be >= 0".into(),
        ));
    }
    let invalid = || CommandError::InvalidExpire(name);
    if ms_per_unit == 1000 && amount > MAX_FIELD_EXPIRY_MS / 1000 {
        return Err(invalid());
    }
    let base = if relative { c.now as i64 } else { 0 };
    let ms = amount * ms_per_unit;
    if ms > MAX_FIELD_EXPIRY_MS - base {
        return Err(invalid());
    }
    let at = (ms + base) as u64;
    let word = args.get(3);
    let condition = if is(word, "nx") {
        Condition::Nx
    } else if is(word, "xx") {
        Condition::Xx
    } else if is(word, "gt") {
        Condition::Gt
    } else if is(word, "lt") {
        Condition::Lt
    } else {
        Condition::Always
    };
    let fields_at = if condition == Condition::Always { 3 } else { 4 };
    let first = fields_arg(args, fields_at, "Parameter `numFields` should be greater than 0")?;
    let now = c.now;
    let (map, hash) = locate(&mut c.db, key)?;
    let codes: Vec<i64> = map
        .hash_update(hash, key, now, false, |h| {
            args.iter_from(first)
                .map(|field| {
                    let Some(current) = h.expiry(field) else {
                        return -2;
                    };
                    let allowed = match (condition, current) {
                        (Condition::Always, _) => true,
                        (Condition::Nx, current) => current.is_none(),
                        (Condition::Xx, current) => current.is_some(),
                        (Condition::Gt, None) => false,
                        (Condition::Gt, Some(t)) => at > t,
                        (Condition::Lt, None) => true,
                        (Condition::Lt, Some(t)) => at < t,
                    };
                    if !allowed {
                        0
                    } else if at <= now {
                        h.remove(field);
                        2
                    } else {
                        h.set_expiry(field, Some(at));
                        1
                    }
                })
                .collect()
        })?
        .unwrap_or_else(|| vec![-2; args.len() - first]);
    let fields = || args.iter_from(first).zip(codes.iter().copied());
    {
        let mut record = c.log.hash_record(RecordKind::HashExpire, key);
        for (field, _) in fields().filter(|&(_, code)| code == 1) {
            record.entry(field, &[], Some(at));
        }
    }
    {
        let mut record = c.log.hash_record(RecordKind::HashDel, key);
        for (field, _) in fields().filter(|&(_, code)| code == 2) {
            record.entry(field, &[], None);
        }
    }
    c.out.array(codes.len());
    for code in codes {
        c.out.int(code);
    }
    Ok(())
}

/// HEXPIRE key seconds [NX|XX|GT|LT] FIELDS numfields field [field ...]
pub fn hexpire(c: &mut Ctx<'_, '_>) -> CommandResult {
    hexpire_generic(c, 1000, true, "hexpire")
}

/// HPEXPIRE key milliseconds [NX|XX|GT|LT] FIELDS numfields field [field ...]
pub fn hpexpire(c: &mut Ctx<'_, '_>) -> CommandResult {
    hexpire_generic(c, 1, true, "hpexpire")
}

/// HEXPIREAT key unix-seconds [NX|XX|GT|LT] FIELDS numfields field [field ...]
pub fn hexpireat(c: &mut Ctx<'_, '_>) -> CommandResult {
    hexpire_generic(c, 1000, false, "hexpireat")
}

/// HPEXPIREAT key unix-ms [NX|XX|GT|LT] FIELDS numfields field [field ...]
pub fn hpexpireat(c: &mut Ctx<'_, '_>) -> CommandResult {
    hexpire_generic(c, 1, false, "hpexpireat")
}

/// HTTL family: -2 no such field, -1 no TTL, else `f(expires_at, now)`.
fn httl_generic(c: &mut Ctx<'_, '_>, f: impl Fn(u64, u64) -> i64) -> CommandResult {
    let args = c.args;
    let now = c.now;
    let found = read_hash!(c, args.get(1))?;
    let first = fields_arg(args, 2, "Number of fields must be a positive integer")?;
    let expiries: Vec<Option<Option<u64>>> = match found {
        Some(h) => args.iter_from(first).map(|field| h.expiry(field)).collect(),
        None => vec![None; args.len() - first],
    };
    c.out.array(expiries.len());
    for e in expiries {
        c.out.int(match e {
            None => -2,
            Some(None) => -1,
            Some(Some(at)) => f(at, now),
        });
    }
    Ok(())
}

/// HTTL key FIELDS numfields field [field ...] (seconds, rounded up as Redis does)
pub fn httl(c: &mut Ctx<'_, '_>) -> CommandResult {
    httl_generic(c, |at, now| ((at + 999 - now) / 1000) as i64)
}

/// HPTTL key FIELDS numfields field [field ...]
pub fn hpttl(c: &mut Ctx<'_, '_>) -> CommandResult {
    httl_generic(c, |at, now| (at - now) as i64)
}

/// HEXPIRETIME key FIELDS numfields field [field ...]
pub fn hexpiretime(c: &mut Ctx<'_, '_>) -> CommandResult {
    httl_generic(c, |at, _| at.div_ceil(1000) as i64)
}

/// HPEXPIRETIME key FIELDS numfields field [field ...]
pub fn hpexpiretime(c: &mut Ctx<'_, '_>) -> CommandResult {
    httl_generic(c, |at, _| at as i64)
}

/// HPERSIST key FIELDS numfields field [field ...]: -2 no field, -1 no TTL, 1 removed.
pub fn hpersist(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let key = args.get(1);
    let now = c.now;
    {
        let (map, hash) = locate(&mut c.db, key)?;
        map.hash_get(hash, key, now)?;
    }
    let first = fields_arg(args, 2, "Number of fields must be a positive integer")?;
    let (map, hash) = locate(&mut c.db, key)?;
    let mut record = c.log.hash_record(RecordKind::HashExpire, key);
    let codes: Vec<i64> = map
        .hash_update(hash, key, now, false, |h| {
            args.iter_from(first)
                .map(|field| match h.expiry(field) {
                    None => -2,
                    Some(None) => -1,
                    Some(Some(_)) => {
                        h.set_expiry(field, None);
                        record.entry(field, &[], None);
                        1
                    }
                })
                .collect()
        })?
        .unwrap_or_else(|| vec![-2; args.len() - first]);
    drop(record);
    c.out.array(codes.len());
    for code in codes {
        c.out.int(code);
    }
    Ok(())
}

/// Most entry bytes in one compaction record of a hash: a bigger hash is
/// written as several `HashSet` records (they merge on replay).
const SNAPSHOT_HASH_CHUNK: usize = 32 * 1024 * 1024;

/// Emits `hash` as one `HashSet` record (several for a huge hash), skipping
/// fields whose expiry has passed: compaction, MOVE.
pub fn hash_records(key: &[u8], hash: &Hash, now: u64, buf: &mut Vec<u8>, emit: &mut dyn FnMut(Record<'_>)) {
    buf.clear();
    let mut count = 0u32;
    for (field, value, expires_at) in hash.iter() {
        if expires_at.is_some_and(|at| at <= now) {
            continue;
        }
        HashFields::put_entry(buf, RecordKind::HashSet, field, value, expires_at);
        count += 1;
        if buf.len() >= SNAPSHOT_HASH_CHUNK {
            emit(Record::HashSet {
                key,
                fields: HashFields::new(RecordKind::HashSet, count, buf),
            });
            buf.clear();
            count = 0;
        }
    }
    if count > 0 {
        emit(Record::HashSet {
            key,
            fields: HashFields::new(RecordKind::HashSet, count, buf),
        });
    }
}
