//! Which keyspace notification a write command sends, in one table: the
//! executor calls [`after_write`] after a write command that changed
//! something (it logged a WAL effect), with the command's shards still
//! locked, and the events are published once they are released
//! (`crate::notify`). Event names are Redis 7's (`t_string.c`, `t_list.c`,
//! `t_hash.c`, `t_set.c`, `t_zset.c`, `db.c`, `expire.c`).
//!
//! DEL/UNLINK emit from their handler (only the keys that existed), lazy and
//! active expiry and eviction from the store and `maxmemory`.

use super::{locate, Args, CommandSpec, Ctx};
use crate::notify::{self, GENERIC, HASH, LIST, SET, STRING, ZSET};

/// Which keys an event names.
#[derive(Clone, Copy)]
enum Keys {
    /// The first key argument.
    First,
    /// Every other argument from 1 (MSET's keys).
    Pairs,
}

/// (command, class, event, keys, may delete the key when it empties it)
#[rustfmt::skip]
const TABLE: &[(&str, u32, &str, Keys, bool)] = &[
    ("set", STRING, "set", Keys::First, false),
    ("setnx", STRING, "set", Keys::First, false),
    ("setex", STRING, "set", Keys::First, false),
    ("psetex", STRING, "set", Keys::First, false),
    ("getset", STRING, "set", Keys::First, false),
    ("mset", STRING, "set", Keys::Pairs, false),
    ("msetnx", STRING, "set", Keys::Pairs, false),
    ("incr", STRING, "incrby", Keys::First, false),
    ("decr", STRING, "decrby", Keys::First, false),
    ("incrby", STRING, "incrby", Keys::First, false),
    ("decrby", STRING, "decrby", Keys::First, false),
    ("incrbyfloat", STRING, "incrbyfloat", Keys::First, false),
    ("append", STRING, "append", Keys::First, false),
    ("setrange", STRING, "setrange", Keys::First, false),
    ("getdel", GENERIC, "del", Keys::First, false),
    ("lpush", LIST, "lpush", Keys::First, false),
    ("lpushx", LIST, "lpush", Keys::First, false),
    ("rpush", LIST, "rpush", Keys::First, false),
    ("rpushx", LIST, "rpush", Keys::First, false),
    ("lpop", LIST, "lpop", Keys::First, true),
    ("rpop", LIST, "rpop", Keys::First, true),
    ("blpop", LIST, "lpop", Keys::First, true),
    ("brpop", LIST, "rpop", Keys::First, true),
    ("lset", LIST, "lset", Keys::First, false),
    ("linsert", LIST, "linsert", Keys::First, false),
    ("lrem", LIST, "lrem", Keys::First, true),
    ("ltrim", LIST, "ltrim", Keys::First, true),
    ("hset", HASH, "hset", Keys::First, false),
    ("hmset", HASH, "hset", Keys::First, false),
    ("hsetnx", HASH, "hset", Keys::First, false),
    ("hdel", HASH, "hdel", Keys::First, true),
    ("hincrby", HASH, "hincrby", Keys::First, false),
    ("hincrbyfloat", HASH, "hincrbyfloat", Keys::First, false),
    ("hexpire", HASH, "hexpire", Keys::First, true),
    ("hpexpire", HASH, "hexpire", Keys::First, true),
    ("hexpireat", HASH, "hexpire", Keys::First, true),
    ("hpexpireat", HASH, "hexpire", Keys::First, true),
    ("hpersist", HASH, "hpersist", Keys::First, false),
    ("sadd", SET, "sadd", Keys::First, false),
    ("srem", SET, "srem", Keys::First, true),
    ("spop", SET, "spop", Keys::First, true),
    ("sinterstore", SET, "sinterstore", Keys::First, false),
    ("sunionstore", SET, "sunionstore", Keys::First, false),
    ("sdiffstore", SET, "sdiffstore", Keys::First, false),
    ("zadd", ZSET, "zadd", Keys::First, false),
    ("zincrby", ZSET, "zincr", Keys::First, false),
    ("zrem", ZSET, "zrem", Keys::First, true),
    ("zpopmin", ZSET, "zpopmin", Keys::First, true),
    ("zpopmax", ZSET, "zpopmax", Keys::First, true),
    ("bzpopmin", ZSET, "zpopmin", Keys::First, true),
    ("bzpopmax", ZSET, "zpopmax", Keys::First, true),
    ("zremrangebyrank", ZSET, "zremrangebyrank", Keys::First, true),
    ("zremrangebyscore", ZSET, "zremrangebyscore", Keys::First, true),
    ("zremrangebylex", ZSET, "zremrangebylex", Keys::First, true),
    ("zunionstore", ZSET, "zunionstore", Keys::First, false),
    ("zinterstore", ZSET, "zinterstore", Keys::First, false),
    ("zdiffstore", ZSET, "zdiffstore", Keys::First, false),
    ("zrangestore", ZSET, "zrangestore", Keys::First, false),
    ("persist", GENERIC, "persist", Keys::First, false),
];

/// Records the notifications of a write command that changed something.
/// Cheap to call only when notifications are on (the executor checks).
pub fn after_write(c: &mut Ctx<'_, '_>, spec: &CommandSpec) {
    let args = c.args;
    let db = c.client.db;
    let key = |i: usize| args.get(i);
    match spec.name {
        "expire" | "pexpire" | "expireat" | "pexpireat" => {
            // A time in the past deletes the key: Redis says `del`.
            let event = if exists(c, key(1)) { "expire" } else { "del" };
            notify::emit(GENERIC, event, db, key(1));
        }
        "rename" | "renamenx" => {
            notify::emit(GENERIC, "rename_from", db, key(1));
            notify::emit(GENERIC, "rename_to", db, key(2));
        }
        "copy" => notify::emit(GENERIC, "copy_to", db, key(2)),
        "lmove" | "blmove" | "rpoplpush" | "brpoplpush" => {
            let (from, to) = directions(spec.name, &args);
            notify::emit(LIST, if from { "lpop" } else { "rpop" }, db, key(1));
            notify::emit(LIST, if to { "lpush" } else { "rpush" }, db, key(2));
            if !exists(c, key(1)) {
                notify::emit(GENERIC, "del", db, key(1));
            }
        }
        "smove" => {
            notify::emit(SET, "srem", db, key(1));
            notify::emit(SET, "sadd", db, key(2));
            if !exists(c, key(1)) {
                notify::emit(GENERIC, "del", db, key(1));
            }
        }
        name => {
            let Some(&(_, class, event, keys, may_empty)) = TABLE.iter().find(|row| row.0 == name) else {
                return;
            };
            match keys {
                Keys::First => {
                    notify::emit(class, event, db, key(1));
                    if may_empty && !exists(c, key(1)) {
                        notify::emit(GENERIC, "del", db, key(1));
                    }
                    if matches!(name, "set" | "setex" | "psetex") && has_expiry(name, &args) {
                        notify::emit(GENERIC, "expire", db, key(1));
                    }
                }
                Keys::Pairs => {
                    for i in (1..args.len()).step_by(2) {
                        notify::emit(class, event, db, key(i));
                    }
                }
            }
        }
    }
}

/// LMOVE's wheres (true = LEFT); RPOPLPUSH is RIGHT then LEFT.
fn directions(name: &str, args: &Args<'_>) -> (bool, bool) {
    match name {
        "lmove" | "blmove" => (
            args.get(3).eq_ignore_ascii_case(b"left"),
            args.get(4).eq_ignore_ascii_case(b"left"),
        ),
        _ => (false, true),
    }
}

fn has_expiry(name: &str, args: &Args<'_>) -> bool {
    name != "set"
        || args.iter_from(3).any(|a| {
            ["ex", "px", "exat", "pxat"]
                .iter()
                .any(|o| a.eq_ignore_ascii_case(o.as_bytes()))
        })
}

/// True if `key` is live (the command's shards are still locked).
fn exists(c: &mut Ctx<'_, '_>, key: &[u8]) -> bool {
    let now = c.now;
    match locate(&mut c.db, key) {
        Ok((map, hash)) => map.get_live_untouched(hash, key, now).0.is_some(),
        Err(_) => false,
    }
}
