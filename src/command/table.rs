//! The command table, modelled on Redis's `commands.def`: name, arity
//! (negative = at least |arity|), flags, key positions and handler.
//! Adding a command means adding one row here and one handler function.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{
    client, config, databases, hash, keys, list, object, pubsub, scripting, server, set, sort, strings,
    transaction, zset, CommandResult, Ctx,
};

/// Properties the executor checks before a handler runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    /// Changes the keyspace: refused while the WAL is failing.
    pub write: bool,
    /// Allowed before AUTH (AUTH, HELLO, QUIT).
    pub no_auth: bool,
    /// Server administration (SHUTDOWN, CONFIG, FLUSH, COMPACT).
    pub admin: bool,
    /// May need memory: refused with `-OOM` when over `maxmemory` and nothing
    /// can be evicted (Redis's `denyoom`: SET, APPEND, INCR…, not DEL or GET).
    pub denyoom: bool,
    /// Refused between MULTI and EXEC with `Command not allowed inside a
    /// transaction`, which aborts the transaction (Redis's `no-multi`: SAVE,
    /// SHUTDOWN; kvserver has no SYNC/PSYNC).
    pub no_multi: bool,
    /// May block the client (BLPOP & co): never batched with other commands,
    /// so the session can stop right after it (`crate::blocking`).
    pub may_block: bool,
    /// Runs a Lua script (EVAL, EVALSHA, FCALL and their `_RO` forms): the
    /// session hands it to `scripting::run`, which takes its own locks.
    pub script: bool,
}

/// Which arguments are keys, as Redis's (first, last, step); `last` < 0
/// counts from the end. `All` locks every shard (FLUSHALL).
#[derive(Clone, Copy, Debug)]
pub enum KeySpec {
    Range { first: usize, last: isize, step: usize },
    All,
}

impl KeySpec {
    /// Positions of the key arguments in a command of `argc` arguments.
    pub fn positions(self, argc: usize) -> impl Iterator<Item = usize> {
        let (first, last, step) = match self {
            KeySpec::Range { first, last, step } => {
                let last = if last < 0 { argc as isize + last } else { last };
                (first, last.max(0) as usize, step)
            }
            KeySpec::All => (1, 0, 1),
        };
        (first..=last.min(argc.saturating_sub(1)))
            .step_by(step)
            .filter(move |&i| i >= first && last >= first)
    }
}

/// One command.
pub struct CommandSpec {
    /// Lower-case name, as in error messages (`'get' command`).
    pub name: &'static str,
    pub arity: i32,
    pub flags: Flags,
    pub keys: Option<KeySpec>,
    pub handler: fn(&mut Ctx<'_, '_>) -> CommandResult,
    /// One line for HELP and COMMAND DOCS.
    pub summary: &'static str,
    /// Arguments as shown in HELP.
    pub syntax: &'static str,
}

impl CommandSpec {
    /// True if `argc` (including the name) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= self.arity.unsigned_abs() as usize
        }
    }

    /// Position of this spec in [`COMMANDS`] (the stats index).
    pub fn index(&self) -> usize {
        (self as *const CommandSpec as usize - COMMANDS.as_ptr() as usize)
            / std::mem::size_of::<CommandSpec>()
    }
}

const R: Flags = Flags {
    write: false,
    no_auth: false,
    admin: false,
    denyoom: false,
    no_multi: false,
    may_block: false,
    script: false,
};
const W: Flags = Flags {
    write: true,
    no_auth: false,
    admin: false,
    denyoom: false,
    no_multi: false,
    may_block: false,
    script: false,
};
/// A write that may need memory.
const WM: Flags = Flags {
    write: true,
    no_auth: false,
    admin: false,
    denyoom: true,
    no_multi: false,
    may_block: false,
    script: false,
};
const A: Flags = Flags {
    write: false,
    no_auth: false,
    admin: true,
    denyoom: false,
    no_multi: false,
    may_block: false,
    script: false,
};
/// A write that may block (BLPOP, BRPOP, BLMPOP).
const WB: Flags = Flags {
    write: true,
    no_auth: false,
    admin: false,
    denyoom: false,
    no_multi: false,
    may_block: true,
    script: false,
};
/// A write that may need memory and may block (BLMOVE, BRPOPLPUSH).
const WMB: Flags = Flags {
    write: true,
    no_auth: false,
    admin: false,
    denyoom: true,
    no_multi: false,
    may_block: true,
    script: false,
};
/// Administration that must not run inside MULTI (SAVE, SHUTDOWN).
const ANM: Flags = Flags {
    write: false,
    no_auth: false,
    admin: true,
    denyoom: false,
    no_multi: true,
    may_block: false,
    script: false,
};
const NA: Flags = Flags {
    write: false,
    no_auth: true,
    admin: false,
    denyoom: false,
    no_multi: false,
    may_block: false,
    script: false,
};

/// A Lua script command (see [`Flags::script`]).
const S: Flags = Flags { script: true, ..R };

const fn one() -> Option<KeySpec> {
    Some(KeySpec::Range {
        first: 1,
        last: 1,
        step: 1,
    })
}
const fn all_args() -> Option<KeySpec> {
    Some(KeySpec::Range {
        first: 1,
        last: -1,
        step: 1,
    })
}
const fn pairs() -> Option<KeySpec> {
    Some(KeySpec::Range {
        first: 1,
        last: -1,
        step: 2,
    })
}

macro_rules! cmd {
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, $handler:path, $syntax:literal, $summary:literal) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            keys: $keys,
            handler: $handler,
            summary: $summary,
            syntax: $syntax,
        }
    };
}

/// Every command the server knows.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    // strings
    cmd!("get", 2, R, one(), strings::get, "key", "Get the value of a key"),
    cmd!("set", -3, WM, one(), strings::set, "key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]", "Set a key's value, optionally with an expiry"),
    cmd!("setnx", 3, WM, one(), strings::setnx, "key value", "Set a key only if it does not exist"),
    cmd!("setex", 4, WM, one(), strings::setex, "key seconds value", "Set a key with an expiry in seconds"),
    cmd!("psetex", 4, WM, one(), strings::psetex, "key milliseconds value", "Set a key with an expiry in milliseconds"),
    cmd!("getset", 3, WM, one(), strings::getset, "key value", "Set a key and return its old value"),
    cmd!("getdel", 2, W, one(), strings::getdel, "key", "Get a key's value and delete it"),
    cmd!("getex", -2, W, one(), strings::getex, "key [EX s|PX ms|EXAT t|PXAT t|PERSIST]", "Get a key's value and change its expiry"),
    cmd!("mget", -2, R, all_args(), strings::mget, "key [key ...]", "Get the values of several keys"),
    cmd!("mset", -3, WM, pairs(), strings::mset, "key value [key value ...]", "Set several keys"),
    cmd!("msetnx", -3, WM, pairs(), strings::msetnx, "key value [key value ...]", "Set several keys only if none exists"),
    cmd!("incr", 2, WM, one(), strings::incr, "key", "Increment an integer value by one"),
    cmd!("decr", 2, WM, one(), strings::decr, "key", "Decrement an integer value by one"),
    cmd!("incrby", 3, WM, one(), strings::incrby, "key increment", "Increment an integer value"),
    cmd!("decrby", 3, WM, one(), strings::decrby, "key decrement", "Decrement an integer value"),
    cmd!("incrbyfloat", 3, WM, one(), strings::incrbyfloat, "key increment", "Increment a floating point value"),
    cmd!("append", 3, WM, one(), strings::append, "key value", "Append to a value"),
    cmd!("strlen", 2, R, one(), strings::strlen, "key", "Length of a value"),
    cmd!("getrange", 4, R, one(), strings::getrange, "key start end", "Substring of a value"),
    cmd!("setrange", 4, WM, one(), strings::setrange, "key offset value", "Overwrite part of a value"),
    // lists
    cmd!("lpush", -3, WM, one(), list::lpush, "key element [element ...]", "Prepend elements to a list"),
    cmd!("rpush", -3, WM, one(), list::rpush, "key element [element ...]", "Append elements to a list"),
    cmd!("lpushx", -3, WM, one(), list::lpushx, "key element [element ...]", "Prepend elements to an existing list"),
    cmd!("rpushx", -3, WM, one(), list::rpushx, "key element [element ...]", "Append elements to an existing list"),
    cmd!("lpop", -2, W, one(), list::lpop, "key [count]", "Remove and return the first elements of a list"),
    cmd!("rpop", -2, W, one(), list::rpop, "key [count]", "Remove and return the last elements of a list"),
    cmd!("llen", 2, R, one(), list::llen, "key", "Length of a list"),
    cmd!("lrange", 4, R, one(), list::lrange, "key start stop", "A range of a list's elements"),
    cmd!("lindex", 3, R, one(), list::lindex, "key index", "A list element by index"),
    cmd!("lset", 4, WM, one(), list::lset, "key index element", "Set a list element by index"),
    cmd!("linsert", 5, WM, one(), list::linsert, "key BEFORE|AFTER pivot element", "Insert an element before or after another"),
    cmd!("lrem", 4, W, one(), list::lrem, "key count element", "Remove occurrences of an element"),
    cmd!("ltrim", 4, W, one(), list::ltrim, "key start stop", "Keep only a range of a list"),
    cmd!("lpos", -3, R, one(), list::lpos, "key element [RANK rank] [COUNT n] [MAXLEN len]", "Positions of matching elements"),
    cmd!("lmove", 5, WM, Some(KeySpec::Range { first: 1, last: 2, step: 1 }), list::lmove, "source destination LEFT|RIGHT LEFT|RIGHT", "Pop from one list and push onto another"),
    cmd!("rpoplpush", 3, WM, Some(KeySpec::Range { first: 1, last: 2, step: 1 }), list::rpoplpush, "source destination", "Pop the tail of one list and push it onto another's head"),
    cmd!("lmpop", -4, W, Some(KeySpec::Range { first: 2, last: -1, step: 1 }), list::lmpop, "numkeys key [key ...] LEFT|RIGHT [COUNT count]", "Pop elements from the first non-empty list"),
    cmd!("blpop", -3, WB, Some(KeySpec::Range { first: 1, last: -2, step: 1 }), list::blpop, "key [key ...] timeout", "Pop the first element of the first non-empty list, or block"),
    cmd!("brpop", -3, WB, Some(KeySpec::Range { first: 1, last: -2, step: 1 }), list::brpop, "key [key ...] timeout", "Pop the last element of the first non-empty list, or block"),
    cmd!("blmove", 6, WMB, Some(KeySpec::Range { first: 1, last: 2, step: 1 }), list::blmove, "source destination LEFT|RIGHT LEFT|RIGHT timeout", "LMOVE, or block until the source has an element"),
    cmd!("brpoplpush", 4, WMB, Some(KeySpec::Range { first: 1, last: 2, step: 1 }), list::brpoplpush, "source destination timeout", "RPOPLPUSH, or block until the source has an element"),
    cmd!("blmpop", -5, WB, Some(KeySpec::Range { first: 3, last: -1, step: 1 }), list::blmpop, "timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]", "LMPOP, or block until a list has elements"),
    // hashes
    cmd!("hset", -4, WM, one(), hash::hset, "key field value [field value ...]", "Set hash fields"),
    cmd!("hsetnx", 4, WM, one(), hash::hsetnx, "key field value", "Set a hash field only if it does not exist"),
    cmd!("hmset", -4, WM, one(), hash::hmset, "key field value [field value ...]", "Set hash fields (deprecated: HSET)"),
    cmd!("hget", 3, R, one(), hash::hget, "key field", "Get a hash field"),
    cmd!("hmget", -3, R, one(), hash::hmget, "key field [field ...]", "Get several hash fields"),
    cmd!("hgetall", 2, R, one(), hash::hgetall, "key", "Every field and value of a hash"),
    cmd!("hkeys", 2, R, one(), hash::hkeys, "key", "Every field of a hash"),
    cmd!("hvals", 2, R, one(), hash::hvals, "key", "Every value of a hash"),
    cmd!("hdel", -3, W, one(), hash::hdel, "key field [field ...]", "Delete hash fields"),
    cmd!("hexists", 3, R, one(), hash::hexists, "key field", "Whether a hash field exists"),
    cmd!("hlen", 2, R, one(), hash::hlen, "key", "Number of fields in a hash"),
    cmd!("hstrlen", 3, R, one(), hash::hstrlen, "key field", "Length of a hash field's value"),
    cmd!("hincrby", 4, WM, one(), hash::hincrby, "key field increment", "Increment an integer hash field"),
    cmd!("hincrbyfloat", 4, WM, one(), hash::hincrbyfloat, "key field increment", "Increment a float hash field"),
    cmd!("hrandfield", -2, R, one(), hash::hrandfield, "key [count [WITHVALUES]]", "Random fields of a hash"),
    cmd!("hscan", -3, R, one(), hash::hscan, "key cursor [MATCH pattern] [COUNT n] [NOVALUES]", "Iterate a hash incrementally"),
    cmd!("hexpire", -6, WM, one(), hash::hexpire, "key seconds [NX|XX|GT|LT] FIELDS numfields field [field ...]", "Set hash field TTLs in seconds"),
    cmd!("hpexpire", -6, WM, one(), hash::hpexpire, "key milliseconds [NX|XX|GT|LT] FIELDS numfields field [field ...]", "Set hash field TTLs in milliseconds"),
    cmd!("hexpireat", -6, WM, one(), hash::hexpireat, "key unix-seconds [NX|XX|GT|LT] FIELDS numfields field [field ...]", "Set absolute hash field expiries in seconds"),
    cmd!("hpexpireat", -6, WM, one(), hash::hpexpireat, "key unix-ms [NX|XX|GT|LT] FIELDS numfields field [field ...]", "Set absolute hash field expiries in milliseconds"),
    cmd!("httl", -5, R, one(), hash::httl, "key FIELDS numfields field [field ...]", "Remaining TTL of hash fields in seconds"),
    cmd!("hpttl", -5, R, one(), hash::hpttl, "key FIELDS numfields field [field ...]", "Remaining TTL of hash fields in milliseconds"),
    cmd!("hexpiretime", -5, R, one(), hash::hexpiretime, "key FIELDS numfields field [field ...]", "Absolute expiry of hash fields in unix seconds"),
    cmd!("hpexpiretime", -5, R, one(), hash::hpexpiretime, "key FIELDS numfields field [field ...]", "Absolute expiry of hash fields in unix milliseconds"),
    cmd!("hpersist", -5, W, one(), hash::hpersist, "key FIELDS numfields field [field ...]", "Remove hash field TTLs"),
    // sets
    cmd!("sadd", -3, WM, one(), set::sadd, "key member [member ...]", "Add members to a set"),
    cmd!("srem", -3, W, one(), set::srem, "key member [member ...]", "Remove members from a set"),
    cmd!("smembers", 2, R, one(), set::smembers, "key", "All members of a set"),
    cmd!("sismember", 3, R, one(), set::sismember, "key member", "Whether a member is in a set"),
    cmd!("smismember", -3, R, one(), set::smismember, "key member [member ...]", "Whether each member is in a set"),
    cmd!("scard", 2, R, one(), set::scard, "key", "Number of members of a set"),
    cmd!("spop", -2, W, one(), set::spop, "key [count]", "Remove and return random members of a set"),
    cmd!("srandmember", -2, R, one(), set::srandmember, "key [count]", "Random members of a set"),
    cmd!("smove", 4, W, Some(KeySpec::Range { first: 1, last: 2, step: 1 }), set::smove, "source destination member", "Move a member from one set to another"),
    cmd!("sinter", -2, R, all_args(), set::sinter, "key [key ...]", "Intersection of sets"),
    cmd!("sintercard", -3, R, Some(KeySpec::Range { first: 2, last: -1, step: 1 }), set::sintercard, "numkeys key [key ...] [LIMIT limit]", "Cardinality of the intersection of sets"),
    cmd!("sinterstore", -3, WM, all_args(), set::sinterstore, "destination key [key ...]", "Store the intersection of sets"),
    cmd!("sunion", -2, R, all_args(), set::sunion, "key [key ...]", "Union of sets"),
    cmd!("sunionstore", -3, WM, all_args(), set::sunionstore, "destination key [key ...]", "Store the union of sets"),
    cmd!("sdiff", -2, R, all_args(), set::sdiff, "key [key ...]", "Difference of sets"),
    cmd!("sdiffstore", -3, WM, all_args(), set::sdiffstore, "destination key [key ...]", "Store the difference of sets"),
    cmd!("sscan", -3, R, one(), set::sscan, "key cursor [MATCH pattern] [COUNT count]", "Iterate the members of a set"),
    // keys
    cmd!("del", -2, W, all_args(), keys::del, "key [key ...]", "Delete keys"),
    cmd!("unlink", -2, W, all_args(), keys::del, "key [key ...]", "Delete keys (same as DEL)"),
    cmd!("exists", -2, R, all_args(), keys::exists, "key [key ...]", "Count existing keys"),
    cmd!("type", 2, R, one(), keys::type_, "key", "Type of a key's value"),
    cmd!("rename", 3, W, Some(KeySpec::Range { first: 1, last: 2, step: 1 }), keys::rename, "key newkey", "Rename a key"),
    cmd!("renamenx", 3, W, Some(KeySpec::Range { first: 1, last: 2, step: 1 }), keys::renamenx, "key newkey", "Rename a key if the new name is free"),
    cmd!("copy", -3, WM, Some(KeySpec::Range { first: 1, last: 2, step: 1 }), keys::copy, "source destination [DB db] [REPLACE]", "Copy a key's value and TTL to another key"),
    cmd!("sort", -2, WM, Some(KeySpec::All), sort::sort, "key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE destination]", "Sort a list, set or sorted set"),
    cmd!("sort_ro", -2, R, Some(KeySpec::All), sort::sort_ro, "key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]", "Sort a list, set or sorted set (read-only)"),
    cmd!("keys", 2, R, None, keys::keys, "pattern", "All keys matching a glob pattern"),
    cmd!("scan", -2, R, None, keys::scan, "cursor [MATCH pattern] [COUNT n] [TYPE t]", "Iterate the keyspace incrementally"),
    cmd!("randomkey", 1, R, None, keys::randomkey, "", "A random key"),
    cmd!("dbsize", 1, R, None, keys::dbsize, "", "Number of keys"),
    cmd!("flushdb", -1, W, Some(KeySpec::All), databases::flushdb, "[ASYNC|SYNC]", "Delete every key of the current database"),
    cmd!("flushall", -1, W, None, databases::flushall, "[ASYNC|SYNC]", "Delete every key of every database"),
    cmd!("swapdb", 3, W, None, databases::swapdb, "index1 index2", "Swap two databases"),
    cmd!("move", 3, W, None, databases::move_, "key db", "Move a key to another database"),
    // expiry
    cmd!("expire", -3, W, one(), keys::expire, "key seconds [NX|XX|GT|LT]", "Set a TTL in seconds"),
    cmd!("pexpire", -3, W, one(), keys::pexpire, "key milliseconds [NX|XX|GT|LT]", "Set a TTL in milliseconds"),
    cmd!("expireat", -3, W, one(), keys::expireat, "key unix-seconds [NX|XX|GT|LT]", "Set an absolute expiry in seconds"),
    cmd!("pexpireat", -3, W, one(), keys::pexpireat, "key unix-ms [NX|XX|GT|LT]", "Set an absolute expiry in milliseconds"),
    cmd!("ttl", 2, R, one(), keys::ttl, "key", "Remaining time to live in seconds"),
    cmd!("pttl", 2, R, one(), keys::pttl, "key", "Remaining time to live in milliseconds"),
    cmd!("expiretime", 2, R, one(), keys::expiretime, "key", "Absolute expiry in unix seconds"),
    cmd!("pexpiretime", 2, R, one(), keys::pexpiretime, "key", "Absolute expiry in unix milliseconds"),
    cmd!("persist", 2, W, one(), keys::persist, "key", "Remove a key's TTL"),
    // sorted sets
    cmd!("zadd", -4, WM, one(), zset::zadd, "key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]", "Add members to a sorted set or update their scores"),
    cmd!("zincrby", 4, WM, one(), zset::zincrby, "key increment member", "Increment a member's score"),
    cmd!("zrem", -3, W, one(), zset::zrem, "key member [member ...]", "Remove members from a sorted set"),
    cmd!("zcard", 2, R, one(), zset::zcard, "key", "Number of members in a sorted set"),
    cmd!("zscore", 3, R, one(), zset::zscore, "key member", "Score of a member"),
    cmd!("zmscore", -3, R, one(), zset::zmscore, "key member [member ...]", "Scores of several members"),
    cmd!("zrank", -3, R, one(), zset::zrank, "key member [WITHSCORE]", "Rank of a member, lowest score first"),
    cmd!("zrevrank", -3, R, one(), zset::zrevrank, "key member [WITHSCORE]", "Rank of a member, highest score first"),
    cmd!("zrange", -4, R, one(), zset::zrange, "key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]", "Members in a range of ranks, scores or names"),
    cmd!("zrangestore", -5, WM, Some(KeySpec::Range { first: 1, last: 2, step: 1 }), zset::zrangestore, "dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]", "Store a range of a sorted set"),
    cmd!("zrevrange", -4, R, one(), zset::zrevrange, "key start stop [WITHSCORES]", "Members in a range of ranks, highest first"),
    cmd!("zrangebyscore", -4, R, one(), zset::zrangebyscore, "key min max [WITHSCORES] [LIMIT offset count]", "Members in a score range"),
    cmd!("zrevrangebyscore", -4, R, one(), zset::zrevrangebyscore, "key max min [WITHSCORES] [LIMIT offset count]", "Members in a score range, highest first"),
    cmd!("zrangebylex", -4, R, one(), zset::zrangebylex, "key min max [LIMIT offset count]", "Members in a lexicographic range"),
    cmd!("zrevrangebylex", -4, R, one(), zset::zrevrangebylex, "key max min [LIMIT offset count]", "Members in a lexicographic range, last first"),
    cmd!("zcount", 4, R, one(), zset::zcount, "key min max", "Count members in a score range"),
    cmd!("zlexcount", 4, R, one(), zset::zlexcount, "key min max", "Count members in a lexicographic range"),
    cmd!("zpopmin", -2, W, one(), zset::zpopmin, "key [count]", "Remove and return the lowest-scored members"),
    cmd!("zpopmax", -2, W, one(), zset::zpopmax, "key [count]", "Remove and return the highest-scored members"),
    cmd!("zmpop", -4, W, all_args(), zset::zmpop, "numkeys key [key ...] MIN|MAX [COUNT count]", "Pop from the first non-empty sorted set"),
    cmd!("bzpopmin", -3, WB, Some(KeySpec::Range { first: 1, last: -2, step: 1 }), zset::bzpopmin, "key [key ...] timeout", "Pop the lowest-scored member of the first non-empty sorted set, or block"),
    cmd!("bzpopmax", -3, WB, Some(KeySpec::Range { first: 1, last: -2, step: 1 }), zset::bzpopmax, "key [key ...] timeout", "Pop the highest-scored member of the first non-empty sorted set, or block"),
    cmd!("bzmpop", -5, WB, Some(KeySpec::Range { first: 3, last: -1, step: 1 }), zset::bzmpop, "timeout numkeys key [key ...] MIN|MAX [COUNT count]", "ZMPOP, or block until a sorted set has members"),
    cmd!("zremrangebyrank", 4, W, one(), zset::zremrangebyrank, "key start stop", "Remove members in a range of ranks"),
    cmd!("zremrangebyscore", 4, W, one(), zset::zremrangebyscore, "key min max", "Remove members in a score range"),
    cmd!("zremrangebylex", 4, W, one(), zset::zremrangebylex, "key min max", "Remove members in a lexicographic range"),
    cmd!("zscan", -3, R, one(), zset::zscan, "key cursor [MATCH pattern] [COUNT n]", "Iterate a sorted set incrementally"),
    cmd!("zrandmember", -2, R, one(), zset::zrandmember, "key [count [WITHSCORES]]", "Random members of a sorted set"),
    cmd!("zunion", -3, R, all_args(), zset::zunion, "numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]", "Union of sorted sets"),
    cmd!("zinter", -3, R, all_args(), zset::zinter, "numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]", "Intersection of sorted sets"),
    cmd!("zdiff", -3, R, all_args(), zset::zdiff, "numkeys key [key ...] [WITHSCORES]", "Difference of sorted sets"),
    cmd!("zunionstore", -4, WM, all_args(), zset::zunionstore, "dst numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]", "Store the union of sorted sets"),
    cmd!("zinterstore", -4, WM, all_args(), zset::zinterstore, "dst numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]", "Store the intersection of sorted sets"),
    cmd!("zdiffstore", -4, WM, all_args(), zset::zdiffstore, "dst numkeys key [key ...]", "Store the difference of sorted sets"),
    cmd!("zintercard", -3, R, all_args(), zset::zintercard, "numkeys key [key ...] [LIMIT limit]", "Cardinality of the intersection of sorted sets"),
    // transactions (MULTI, EXEC, DISCARD and WATCH are never queued: see transaction::in_multi)
    cmd!("multi", 1, R, None, transaction::multi, "", "Start a transaction"),
    cmd!("exec", 1, R, None, transaction::exec_without_multi, "", "Run the queued commands atomically"),
    cmd!("discard", 1, R, None, transaction::discard, "", "Forget the queued commands"),
    cmd!("watch", -2, R, all_args(), transaction::watch, "key [key ...]", "Make the next EXEC fail if a key changes"),
    cmd!("unwatch", 1, R, None, transaction::unwatch, "", "Forget every watched key"),
    // scripting (EVAL and FCALL run on their own executor path: command::scripting::run)
    cmd!("eval", -3, S, None, scripting::routed_elsewhere, "script numkeys [key ...] [arg ...]", "Run a Lua script"),
    cmd!("evalsha", -3, S, None, scripting::routed_elsewhere, "sha1 numkeys [key ...] [arg ...]", "Run a cached Lua script by its SHA1"),
    cmd!("eval_ro", -3, S, None, scripting::routed_elsewhere, "script numkeys [key ...] [arg ...]", "Run a read-only Lua script"),
    cmd!("evalsha_ro", -3, S, None, scripting::routed_elsewhere, "sha1 numkeys [key ...] [arg ...]", "Run a cached read-only Lua script"),
    cmd!("fcall", -3, S, None, scripting::routed_elsewhere, "function numkeys [key ...] [arg ...]", "Call a function"),
    cmd!("fcall_ro", -3, S, None, scripting::routed_elsewhere, "function numkeys [key ...] [arg ...]", "Call a read-only function"),
    cmd!("script", -2, R, None, scripting::script, "LOAD script|EXISTS sha1 ...|FLUSH [ASYNC|SYNC]|KILL", "Manage the script cache"),
    cmd!("function", -2, W, None, scripting::function, "LOAD [REPLACE] code|DELETE lib|LIST [LIBRARYNAME p] [WITHCODE]|FLUSH|DUMP|RESTORE payload [FLUSH|APPEND|REPLACE]|STATS|KILL", "Manage function libraries"),
    // connection and server
    cmd!("ping", -1, R, None, server::ping, "[message]", "Test the connection"),
    cmd!("echo", 2, R, None, server::echo, "message", "Echo a message"),
    cmd!("quit", -1, NA, None, server::quit, "", "Close the connection"),
    cmd!("select", 2, R, None, databases::select, "index", "Select the database of this connection"),
    cmd!("auth", -2, NA, None, server::auth, "[username] password", "Authenticate"),
    cmd!("hello", -1, NA, None, server::hello, "[2|3 [AUTH user pass] [SETNAME name]]", "Handshake: choose RESP2 or RESP3, authenticate, name the connection"),
    cmd!("reset", 1, NA, None, server::reset, "", "Reset the connection: discard MULTI and WATCH, database 0, RESP2, replies on, no name, authentication as on connect"),
    cmd!("client", -2, R, None, client::client, "ID|INFO|LIST|KILL|SETNAME|GETNAME|SETINFO|REPLY|NO-EVICT|NO-TOUCH ...", "Connection properties and introspection"),
    cmd!("config", -2, A, None, config::config, "GET pattern ...|SET name value ...|RESETSTAT|REWRITE", "Read and change configuration"),
    cmd!("command", -1, R, None, server::command, "[COUNT|DOCS|INFO ...]", "Command table introspection"),
    cmd!("info", -1, R, None, server::info, "[section ...]", "Server information"),
    cmd!("stats", 1, R, None, server::stats, "", "Statistics and latency percentiles as JSON"),
    cmd!("help", -1, R, None, server::help, "", "List commands"),
    cmd!("shutdown", -1, ANM, None, server::shutdown, "[NOSAVE|SAVE]", "Stop the server cleanly"),
    cmd!("flush", 1, A, None, server::flush, "", "Return once every acknowledged write is on disk"),
    cmd!("compact", 1, A, None, server::compact, "", "Rewrite the WAL to the live data, in the background"),
    cmd!("bgrewriteaof", 1, A, None, server::compact, "", "Alias of COMPACT"),
    cmd!("save", 1, ANM, None, server::save, "", "Compact the WAL and return when it is done (a synchronous save)"),
    cmd!("bgsave", -1, A, None, server::bgsave, "[SCHEDULE]", "Compact the WAL in the background (a background save)"),
    cmd!("lastsave", 1, R, None, server::lastsave, "", "Unix time of the last completed compaction (save)"),
    cmd!("time", 1, R, None, server::time, "", "Server time"),
    // pub/sub and monitor
    cmd!("subscribe", -2, R, None, pubsub::subscribe, "channel [channel ...]", "Listen for messages published to channels"),
    cmd!("unsubscribe", -1, R, None, pubsub::unsubscribe, "[channel ...]", "Stop listening to channels (all without arguments)"),
    cmd!("psubscribe", -2, R, None, pubsub::psubscribe, "pattern [pattern ...]", "Listen for messages published to channels matching glob patterns"),
    cmd!("punsubscribe", -1, R, None, pubsub::punsubscribe, "[pattern ...]", "Stop listening to patterns (all without arguments)"),
    cmd!("ssubscribe", -2, R, None, pubsub::ssubscribe, "shardchannel [shardchannel ...]", "Listen for messages published to shard channels"),
    cmd!("sunsubscribe", -1, R, None, pubsub::sunsubscribe, "[shardchannel ...]", "Stop listening to shard channels (all without arguments)"),
    cmd!("publish", 3, R, None, pubsub::publish, "channel message", "Post a message to a channel; returns the number of receivers"),
    cmd!("spublish", 3, R, None, pubsub::spublish, "shardchannel message", "Post a message to a shard channel"),
    cmd!("pubsub", -2, R, None, pubsub::pubsub, "CHANNELS [pattern]|NUMSUB [channel ...]|NUMPAT|SHARDCHANNELS [pattern]|SHARDNUMSUB [channel ...]", "Inspect the Pub/Sub state"),
    cmd!("monitor", 1, A, None, pubsub::monitor, "", "Receive every command processed by the server"),
    // memory and introspection
    cmd!("touch", -2, R, all_args(), object::touch, "key [key ...]", "Count existing keys and mark them accessed"),
    cmd!("object", -2, R, Some(KeySpec::Range { first: 2, last: 2, step: 1 }), object::object, "FREQ|IDLETIME|ENCODING|REFCOUNT key", "Inspect a key's internals"),
    cmd!("memory", -2, R, Some(KeySpec::Range { first: 2, last: 2, step: 1 }), object::memory, "USAGE key [SAMPLES n]", "Bytes a key and its value use"),
];

/// Finds a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    static INDEX: OnceLock<HashMap<&'static [u8], usize, ahash::RandomState>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        COMMANDS
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_bytes(), i))
            .collect()
    });
    let mut lower = [0u8; 24];
    let lower = lower.get_mut(..name.len())?;
    for (dst, src) in lower.iter_mut().zip(name) {
        *dst = src.to_ascii_lowercase();
    }
    index.get(&*lower).map(|&i| &COMMANDS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_positions_follow_first_last_step() {
        let mset = KeySpec::Range {
            first: 1,
            last: -1,
            step: 2,
        };
        assert_eq!(mset.positions(5).collect::<Vec<_>>(), vec![1, 3]);
        let get = KeySpec::Range {
            first: 1,
            last: 1,
            step: 1,
        };
        assert_eq!(get.positions(2).collect::<Vec<_>>(), vec![1]);
        let del = KeySpec::Range {
            first: 1,
            last: -1,
            step: 1,
        };
        assert_eq!(del.positions(4).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn lookup_is_case_insensitive_and_indexes_match() {
        assert_eq!(lookup(b"gEt").map(|c| c.name), Some("get"));
        assert!(lookup(b"nosuchcommand-with-a-very-long-name").is_none());
        for (i, c) in COMMANDS.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(lookup(c.name.as_bytes()).map(|s| s.index()), Some(i));
        }
    }
}
