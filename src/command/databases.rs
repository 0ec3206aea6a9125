//! Numbered databases: SELECT, SWAPDB, MOVE, FLUSHDB, FLUSHALL.
//!
//! SELECT only changes the client's `db`. The others span databases, so they
//! either lock through the executor (FLUSHDB: every shard of the current
//! database) or take their own locks in the global order of
//! `store::Databases` (MOVE, SWAPDB, FLUSHALL are keyless in the table) and
//! then append their WAL records *before* releasing those locks — the same
//! rule as the executor: per-key WAL order = memory order. They wait for the
//! group commit after unlocking, like the executor.

use super::{int_arg, is, CommandError, CommandResult, Ctx};
use crate::store::{Entry, ShardMap, ValueRef};
use crate::wal::{Lsn, Record};

/// Parses a database index argument: `ERR value is not an integer or out of
/// range` for a non-integer, `ERR DB index is out of range` outside `databases`.
fn db_arg(c: &Ctx<'_, '_>, arg: &[u8]) -> Result<usize, CommandError> {
    let n = int_arg(arg)?;
    usize::try_from(n)
        .ok()
        .filter(|&db| c.state.dbs.contains(db))
        .ok_or(CommandError::DbIndexOutOfRange)
}

/// Waits for the group commit of `lsn` (fsync = always). An applied but not
/// durable write is reported as an error, never as success.
fn commit(c: &Ctx<'_, '_>, lsn: Option<Lsn>) -> CommandResult {
    if let (Some(wal), Some(lsn)) = (c.state.wal(), lsn) {
        wal.commit(lsn).map_err(|e| CommandError::Other(e.to_string()))?;
    }
    Ok(())
}

/// SELECT index
pub fn select(c: &mut Ctx<'_, '_>) -> CommandResult {
    c.client.db = db_arg(c, c.args.get(1))?;
    // CLIENT LIST of other connections reads the handle.
    if let Some(handle) = &c.client.handle {
        handle.db.store(c.client.db, std::sync::atomic::Ordering::Relaxed);
    }
    c.out.ok();
    Ok(())
}

/// SWAPDB index1 index2: clients connected to one database see the other's
/// keys at once. O(1): two entries of the indirection table are swapped.
pub fn swapdb(c: &mut Ctx<'_, '_>) -> CommandResult {
    let parse = |arg: &[u8], which: &str| {
        int_arg(arg).map_err(|_| CommandError::Other(format!("ERR invalid {which} DB index")))
    };
    let (a, b) = (parse(c.args.get(1), "first")?, parse(c.args.get(2), "second")?);
    let in_range = |n: i64| usize::try_from(n).ok().filter(|&db| c.state.dbs.contains(db));
    let (Some(a), Some(b)) = (in_range(a), in_range(b)) else {
        return Err(CommandError::DbIndexOutOfRange);
    };
    if crate::store::lending_every_store() {
        // Inside EXEC, which holds every lock and appends the record with its frame.
        c.state.dbs.swap_held(a, b);
        if a != b {
            c.log.push(Record::SwapDb {
                a: a as u32,
                b: b as u32,
            });
        }
        c.out.ok();
        return Ok(());
    }
    let wal = c.state.wal();
    let lsn = c.state.dbs.swap(a, b, || {
        let wal = wal.filter(|_| a != b)?;
        let mut record = Vec::with_capacity(32);
        Record::SwapDb {
            a: a as u32,
            b: b as u32,
        }
        .encode(&mut record);
        Some(wal.append(&record))
    });
    commit(c, lsn)?;
    c.out.ok();
    Ok(())
}

/// MOVE key db: 1 if the key moved (value and TTL) from the current database
/// to `db`, 0 if it does not exist here or already exists there.
pub fn move_(c: &mut Ctx<'_, '_>) -> CommandResult {
    let key = c.args.get(1);
    let dst = db_arg(c, c.args.get(2))?;
    let src = c.client.db;
    if src == dst {
        return Err(CommandError::SameObject);
    }
    let dbs = &c.state.dbs;
    let hash = dbs.store(src).hash(key);
    let shard = dbs.store(src).shard_of(hash);
    if crate::store::lending_every_store() {
        // Inside EXEC, which holds every lock and appends the records with its frame.
        let (ps, pd) = (dbs.physical_index(src), dbs.physical_index(dst));
        let (mut from, mut to) = (dbs.physical(ps).lock(shard), dbs.physical(pd).lock(shard));
        let moved = move_key(&mut from, &mut to, hash, key, c.now);
        if let (true, Some(entry)) = (moved, to.get_raw(hash, key)) {
            log_move(&mut |r| c.log.push(r), key, entry, src, dst, c.now);
        }
        c.out.int(i64::from(moved));
        return Ok(());
    }
    let (mut from, mut to) = dbs.lock_pair(src, dst, shard);
    let internal = || CommandError::Other("ERR internal error: MOVE lock set".into());
    let from_map = from.map(hash).ok_or_else(internal)?;
    let to_map = to.map(hash).ok_or_else(internal)?;
    let moved = move_key(from_map, to_map, hash, key, c.now);
    let (true, Some(entry)) = (moved, to_map.get_raw(hash, key)) else {
        c.out.int(0);
        return Ok(());
    };
    let now = c.now;
    let lsn = c.state.wal().map(|wal| {
        let mut records = Vec::with_capacity(key.len() * 2 + entry.value().len() + 64);
        log_move(&mut |r| r.encode(&mut records), key, entry, src, dst, now);
        wal.append_in(src as u32, &records)
    });
    drop((from, to));
    commit(c, lsn)?;
    c.out.int(1);
    Ok(())
}

/// Moves `key` (a value of any type, with its TTL) from one shard map to
/// the other (same shard index in two databases): false if it is missing in
/// `from` or present in `to`.
fn move_key(from: &mut ShardMap, to: &mut ShardMap, hash: u64, key: &[u8], now: u64) -> bool {
    if from.get_live(hash, key, now).0.is_none() || to.get_live(hash, key, now).0.is_some() {
        return false;
    }
    match from.take_value(hash, key) {
        Some((value, expires_at)) => {
            to.put_value(hash, key, value, expires_at);
            true
        }
        None => false,
    }
}

/// MOVE's records: Set in the target first, so a log torn between the two
/// keeps a copy of the key rather than losing it; ends in the source database.
fn log_move(
    emit: &mut dyn FnMut(Record<'_>),
    key: &[u8],
    moved: Entry<'_>,
    src: usize,
    dst: usize,
    now: u64,
) {
    emit(Record::Select { db: dst as u32 });
    value_records(key, moved, now, emit);
    emit(Record::Select { db: src as u32 });
    emit(Record::Del { key });
}

/// The records that make `key` hold `entry`'s value and TTL from nothing,
/// whatever its type (MOVE, COPY). A string's `Set` replaces anything; a
/// hash's records merge, so callers that may overwrite a hash log a `Del` first.
pub fn value_records(key: &[u8], entry: Entry<'_>, now: u64, emit: &mut dyn FnMut(Record<'_>)) {
    let ttl = entry.expires_at();
    match entry.value_ref() {
        ValueRef::String(value) => {
            return emit(Record::Set {
                key,
                value,
                expires_at_ms: ttl,
            })
        }
        ValueRef::Hash(h) => super::hash_records(key, h, now, &mut Vec::new(), emit),
        ValueRef::Collection(value) => value.snapshot(key, emit),
    }
    if ttl.is_some() {
        emit(Record::Expire {
            key,
            expires_at_ms: ttl,
        });
    }
}

fn flush_mode(c: &Ctx<'_, '_>) -> CommandResult {
    match c.args.len() {
        1 => Ok(()),
        2 if is(c.args.get(1), "async") || is(c.args.get(1), "sync") => Ok(()),
        _ => Err(CommandError::Syntax),
    }
}

/// FLUSHDB [ASYNC|SYNC]: the executor holds every shard of the current
/// database, so the FlushDb record lands in the WAL where it happened.
pub fn flushdb(c: &mut Ctx<'_, '_>) -> CommandResult {
    flush_mode(c)?;
    let db =
        c.db.as_deref_mut()
            .ok_or_else(|| CommandError::Other("ERR internal error: FLUSHDB without locks".into()))?;
    for map in db.all_maps() {
        map.clear();
    }
    c.log.push(Record::FlushDb);
    c.out.ok();
    Ok(())
}

/// FLUSHALL [ASYNC|SYNC]: every shard of every database, locked in order.
pub fn flushall(c: &mut Ctx<'_, '_>) -> CommandResult {
    flush_mode(c)?;
    if crate::store::lending_every_store() {
        // Inside EXEC, which holds every lock and appends the record with its frame.
        for store in c.state.dbs.stores() {
            for shard in 0..store.shard_count() {
                store.lock(shard).clear();
            }
        }
        c.log.push(Record::FlushAll);
        c.out.ok();
        return Ok(());
    }
    let mut all = c.state.dbs.lock_all();
    for locked in &mut all {
        for map in locked.all_maps() {
            map.clear();
        }
    }
    let lsn = c.state.wal().map(|wal| {
        let mut record = Vec::with_capacity(16);
        Record::FlushAll.encode(&mut record);
        wal.append(&record)
    });
    drop(all);
    commit(c, lsn)?;
    c.out.ok();
    Ok(())
}
