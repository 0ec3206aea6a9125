//! Keyspace and expiry commands: DEL, EXISTS, TYPE, RENAME, KEYS, SCAN,
//! RANDOMKEY, DBSIZE (each in the client's database), EXPIRE & co, TTL & co, PERSIST.
//! Expiry is stored and logged as an absolute unix-ms time.

use super::{int_arg, is, locate, CommandError, CommandResult, Ctx};
use crate::store::{Value, ValueKind};
use crate::wal::{Record, RecordKind};

/// DEL key [key ...] (also UNLINK): number of keys removed.
pub fn del(c: &mut Ctx<'_, '_>) -> CommandResult {
    let mut removed = 0;
    for key in c.args.iter_from(1) {
        let (map, hash) = locate(&mut c.db, key)?;
        if map.get_live(hash, key, c.now).0.is_some() {
            map.remove(hash, key);
            c.log.push(Record::Del { key });
            crate::notify::emit(crate::notify::GENERIC, "del", c.client.db, key);
            removed += 1;
        }
    }
    c.out.int(removed);
    Ok(())
}

/// EXISTS key [key ...]: how many of the keys exist (repeats count again).
/// Not an access: the key's idle time goes on (Redis's `LOOKUP_NOTOUCH`).
pub fn exists(c: &mut Ctx<'_, '_>) -> CommandResult {
    let mut count = 0;
    for key in c.args.iter_from(1) {
        let (map, hash) = locate(&mut c.db, key)?;
        count += i64::from(map.get_live_untouched(hash, key, c.now).0.is_some());
    }
    c.out.int(count);
    Ok(())
}

/// TYPE key: `string`, `hash` or `none`. Not an access.
pub fn type_(c: &mut Ctx<'_, '_>) -> CommandResult {
    let key = c.args.get(1);
    let (map, hash) = locate(&mut c.db, key)?;
    c.out.simple(match map.get_live_untouched(hash, key, c.now).0 {
        Some(slot) => slot.kind().name(),
        None => "none",
    });
    Ok(())
}

/// Moves `src` to `dst` (value and TTL). Returns false if `dst` exists and `only_if_free`.
fn rename_key(c: &mut Ctx<'_, '_>, only_if_free: bool) -> Result<bool, CommandError> {
    let (src, dst) = (c.args.get(1), c.args.get(2));
    let (map, hash) = locate(&mut c.db, src)?;
    if map.get_live(hash, src, c.now).0.is_none() {
        return Err(CommandError::NoSuchKey);
    }
    if src == dst {
        return Ok(!only_if_free);
    }
    let (dst_map, dst_hash) = locate(&mut c.db, dst)?;
    if only_if_free && dst_map.get_live(dst_hash, dst, c.now).0.is_some() {
        return Ok(false);
    }
    let (map, hash) = locate(&mut c.db, src)?;
    let Some((value, expires_at)) = map.take_value(hash, src) else {
        return Err(CommandError::NoSuchKey);
    };
    // The destination's records are its whole new value. A string's Set
    // replaces anything; a hash's HashSet merges, so it follows a Del.
    match &value {
        Value::String(bytes) => c.log.push(Record::Set {
            key: dst,
            value: bytes,
            expires_at_ms: (expires_at != 0).then_some(expires_at),
        }),
        Value::Shared(bytes) => c
            .log
            .push_shared_set(dst, bytes, (expires_at != 0).then_some(expires_at)),
        Value::Hash(h) => {
            c.log.push(Record::Del { key: dst });
            let mut record = c.log.hash_record(RecordKind::HashSet, dst);
            for (field, value, at) in h.iter() {
                record.entry(field, value, at);
            }
            drop(record);
            if expires_at != 0 {
                c.log.push(Record::Expire {
                    key: dst,
                    expires_at_ms: Some(expires_at),
                });
            }
        }
        Value::Collection(collection) => {
            // An OP_REPLACE record replaces whatever the destination held.
            collection.snapshot(dst, &mut |record| c.log.push(record));
            if expires_at != 0 {
                c.log.push(Record::Expire {
                    key: dst,
                    expires_at_ms: Some(expires_at),
                });
            }
        }
    }
    c.log.push(Record::Del { key: src });
    let (dst_map, dst_hash) = locate(&mut c.db, dst)?;
    dst_map.put_value(dst_hash, dst, value, expires_at);
    Ok(true)
}

/// RENAME key newkey
pub fn rename(c: &mut Ctx<'_, '_>) -> CommandResult {
    rename_key(c, false)?;
    c.out.ok();
    Ok(())
}

/// RENAMENX key newkey
pub fn renamenx(c: &mut Ctx<'_, '_>) -> CommandResult {
    let renamed = rename_key(c, true)?;
    c.out.int(i64::from(renamed));
    Ok(())
}

/// KEYS pattern
pub fn keys(c: &mut Ctx<'_, '_>) -> CommandResult {
    let keys = c.state.dbs.store(c.client.db).keys(c.args.get(1));
    c.out.array(keys.len());
    for key in &keys {
        c.out.bulk(key);
    }
    Ok(())
}

/// SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]
pub fn scan(c: &mut Ctx<'_, '_>) -> CommandResult {
    let cursor = std::str::from_utf8(c.args.get(1))
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(CommandError::InvalidCursor)?;
    let mut pattern = None;
    let mut count = 10usize;
    let mut kind: Option<Option<ValueKind>> = None;
    let mut i = 2;
    while i < c.args.len() {
        let (word, value) = (c.args.get(i), c.args.get(i + 1));
        if i + 1 >= c.args.len() {
            return Err(CommandError::Syntax);
        }
        if is(word, "match") {
            pattern = Some(value).filter(|p| *p != b"*");
        } else if is(word, "count") {
            count = int_arg(value)?.try_into().map_err(|_| CommandError::Syntax)?;
            if count < 1 {
                return Err(CommandError::Syntax);
            }
        } else if is(word, "type") {
            kind = Some(if let Some(kind) = ValueKind::from_name(value) {
                Some(kind)
            } else if is(value, "stream") {
                // Types kvserver does not have: nothing matches.
                None
            } else {
                return Err(CommandError::Other(format!(
                    "ERR unknown type name '{}'",
                    String::from_utf8_lossy(value)
                )));
            });
        } else {
            return Err(CommandError::Syntax);
        }
        i += 2;
    }
    let mut keys = Vec::new();
    let next = c.state.dbs.store(c.client.db).scan_typed(
        cursor,
        count.min(1 << 20),
        pattern,
        kind.flatten(),
        &mut keys,
    );
    if kind == Some(None) {
        keys.clear();
    }
    c.out.array(2);
    c.out.bulk(next.to_string().as_bytes());
    c.out.array(keys.len());
    for key in &keys {
        c.out.bulk(key);
    }
    Ok(())
}

/// RANDOMKEY
pub fn randomkey(c: &mut Ctx<'_, '_>) -> CommandResult {
    c.out
        .bulk_or_nil(c.state.dbs.store(c.client.db).random_key().as_deref());
    Ok(())
}

/// DBSIZE
pub fn dbsize(c: &mut Ctx<'_, '_>) -> CommandResult {
    c.out.int(c.state.dbs.store(c.client.db).len() as i64);
    Ok(())
}

/// EXPIRE-family conditions.
#[derive(Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn expire_flags(c: &Ctx<'_, '_>) -> Result<ExpireFlags, CommandError> {
    let mut flags = ExpireFlags::default();
    for word in c.args.iter_from(3) {
        if is(word, "nx") {
            flags.nx = true;
        } else if is(word, "xx") {
            flags.xx = true;
        } else if is(word, "gt") {
            flags.gt = true;
        } else if is(word, "lt") {
            flags.lt = true;
        } else {
            return Err(CommandError::Other(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(word)
            )));
        }
    }
    if flags.nx && (flags.xx || flags.gt || flags.lt) {
        return Err(CommandError::Other(
            "ERR NX and XX, GT or LT options at the same time are not compatible".into(),
        ));
    }
    if flags.gt && flags.lt {
        return Err(CommandError::Other(
            "ERR GT and LT options at the same time are not compatible".into(),
        ));
    }
    Ok(flags)
}

/// Shared body of EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT.
fn expire_generic(
    c: &mut Ctx<'_, '_>,
    ms_per_unit: i64,
    relative: bool,
    name: &'static str,
) -> CommandResult {
    let key = c.args.get(1);
    let amount = int_arg(c.args.get(2))?;
    let flags = expire_flags(c)?;
    let invalid = || CommandError::InvalidExpire(name);
    let mut at = amount.checked_mul(ms_per_unit).ok_or_else(invalid)?;
    if relative {
        at = at.checked_add(c.now as i64).ok_or_else(invalid)?;
    }
    let (map, hash) = locate(&mut c.db, key)?;
    let Some(slot) = map.get_live(hash, key, c.now).0 else {
        c.out.int(0);
        return Ok(());
    };
    let current = slot.expires_at().map(|t| t as i64);
    let allowed = match current {
        None => !(flags.xx || flags.gt),
        Some(current) => !(flags.nx || (flags.gt && at <= current) || (flags.lt && at >= current)),
    };
    if !allowed {
        c.out.int(0);
        return Ok(());
    }
    if at <= c.now as i64 {
        map.remove(hash, key);
        c.log.push(Record::Del { key });
    } else {
        map.set_expiry(hash, key, at as u64);
        c.log.push(Record::Expire {
            key,
            expires_at_ms: Some(at as u64),
        });
    }
    c.out.int(1);
    Ok(())
}

/// EXPIRE key seconds [NX|XX|GT|LT]
pub fn expire(c: &mut Ctx<'_, '_>) -> CommandResult {
    expire_generic(c, 1000, true, "expire")
}

/// PEXPIRE key milliseconds [NX|XX|GT|LT]
pub fn pexpire(c: &mut Ctx<'_, '_>) -> CommandResult {
    expire_generic(c, 1, true, "pexpire")
}

/// EXPIREAT key unix-seconds [NX|XX|GT|LT]
pub fn expireat(c: &mut Ctx<'_, '_>) -> CommandResult {
    expire_generic(c, 1000, false, "expireat")
}

/// PEXPIREAT key unix-ms [NX|XX|GT|LT]
pub fn pexpireat(c: &mut Ctx<'_, '_>) -> CommandResult {
    expire_generic(c, 1, false, "pexpireat")
}

/// The TTL-style reply: -2 missing, -1 no expiry, else `f(expires_at)`.
/// Not an access, as in Redis (TTL, PTTL, EXPIRETIME, PEXPIRETIME).
fn ttl_generic(c: &mut Ctx<'_, '_>, f: impl Fn(u64, u64) -> i64) -> CommandResult {
    let key = c.args.get(1);
    let (map, hash) = locate(&mut c.db, key)?;
    let reply = match map.get_live_untouched(hash, key, c.now).0 {
        None => -2,
        Some(slot) => slot.expires_at().map_or(-1, |at| f(at, c.now)),
    };
    c.out.int(reply);
    Ok(())
}

/// TTL key (seconds, rounded as Redis does)
pub fn ttl(c: &mut Ctx<'_, '_>) -> CommandResult {
    ttl_generic(c, |at, now| ((at - now + 500) / 1000) as i64)
}

/// PTTL key
pub fn pttl(c: &mut Ctx<'_, '_>) -> CommandResult {
    ttl_generic(c, |at, now| (at - now) as i64)
}

/// EXPIRETIME key
pub fn expiretime(c: &mut Ctx<'_, '_>) -> CommandResult {
    ttl_generic(c, |at, _| (at / 1000) as i64)
}

/// PEXPIRETIME key
pub fn pexpiretime(c: &mut Ctx<'_, '_>) -> CommandResult {
    ttl_generic(c, |at, _| at as i64)
}

/// PERSIST key
pub fn persist(c: &mut Ctx<'_, '_>) -> CommandResult {
    let key = c.args.get(1);
    let (map, hash) = locate(&mut c.db, key)?;
    let had_ttl = map
        .get_live(hash, key, c.now)
        .0
        .and_then(|s| s.expires_at())
        .is_some();
    if had_ttl {
        map.set_expiry(hash, key, 0);
        c.log.push(Record::Expire {
            key,
            expires_at_ms: None,
        });
    }
    c.out.int(i64::from(had_ttl));
    Ok(())
}

/// COPY source destination [DB db] [REPLACE]: the value and TTL of `source`
/// at `destination`; 1 if copied, 0 if `source` is missing or
/// `destination` exists without REPLACE.
///
/// The copy is built the way replay would build it: the records that
/// describe `source` (`databases::value_records`, what MOVE and compaction
/// write) are addressed to `destination`, applied through the replay code
/// and logged — one path for every type.
pub fn copy(c: &mut Ctx<'_, '_>) -> CommandResult {
    let (src, dst) = (c.args.get(1), c.args.get(2));
    let mut replace = false;
    let mut i = 3;
    while i < c.args.len() {
        let word = c.args.get(i);
        if is(word, "replace") {
            replace = true;
            i += 1;
        } else if is(word, "db") && i + 1 < c.args.len() {
            let db = int_arg(c.args.get(i + 1))?;
            if usize::try_from(db)
                .ok()
                .filter(|&d| c.state.dbs.contains(d))
                .is_none()
            {
                return Err(CommandError::DbIndexOutOfRange);
            }
            if db as usize != c.client.db {
                return Err(CommandError::Other(
                    "ERR COPY to another database is not supported; use MOVE, or COPY then MOVE".into(),
                ));
            }
            i += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    if src == dst {
        return Err(CommandError::SameObject);
    }
    let now = c.now;
    let mut frames = Vec::new();
    {
        let (map, hash) = locate(&mut c.db, src)?;
        let Some(entry) = map.get_live(hash, src, now).0 else {
            c.out.int(0);
            return Ok(());
        };
        super::databases::value_records(dst, entry, now, &mut |r| r.encode(&mut frames));
    }
    let (map, hash) = locate(&mut c.db, dst)?;
    if map.get_live(hash, dst, now).0.is_some() {
        if !replace {
            c.out.int(0);
            return Ok(());
        }
        map.remove(hash, dst);
    }
    c.log.push(Record::Del { key: dst });
    let limits = crate::store::hash::limits().get();
    let mut at = 0;
    while at + crate::wal::FRAME_HEADER_LEN <= frames.len() {
        let len =
            u32::from_le_bytes([frames[at + 4], frames[at + 5], frames[at + 6], frames[at + 7]]) as usize;
        let kind = crate::wal::RecordKind::from_byte(frames[at + 8]);
        let payload = &frames[at + crate::wal::FRAME_HEADER_LEN..at + crate::wal::FRAME_HEADER_LEN + len];
        at += crate::wal::FRAME_HEADER_LEN + len;
        let Some(record) = kind.and_then(|k| crate::wal::decode_payload(k, payload).ok()) else {
            return Err(CommandError::Other("ERR internal error: COPY record".into()));
        };
        match record {
            Record::Set {
                value, expires_at_ms, ..
            } => map.set(hash, dst, value, expires_at_ms.unwrap_or(0)),
            Record::Expire { expires_at_ms, .. } => {
                map.set_expiry(hash, dst, expires_at_ms.unwrap_or(0));
            }
            Record::HashSet { fields, .. }
            | Record::HashDel { fields, .. }
            | Record::HashExpire { fields, .. } => {
                crate::server::replay::apply_hash_record(map, record.kind(), hash, dst, fields, now, limits)
            }
            Record::Collection { op, payload, .. } => {
                crate::store::types::apply_record(map, hash, dst, op, payload, now)
                    .map_err(|e| CommandError::Other(format!("ERR internal error: {e}")))?;
            }
            _ => {}
        }
        c.log.push(record);
    }
    c.out.int(1);
    Ok(())
}
