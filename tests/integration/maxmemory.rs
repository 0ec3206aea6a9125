//! Cache mode: `maxmemory`, the eight eviction policies, `-OOM`, evictions in
//! the WAL, runtime `CONFIG`, and key introspection (MEMORY, OBJECT, TOUCH).
//!
//! Memory figures are compared with a slack, never exactly: `used_memory`
//! may overshoot the limit by what one command allocates after its eviction
//! check, plus each other thread's not-yet-published allocation delta
//! (8 KiB a thread). No assertion depends on timing.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::{Commands, Connection, Value};

use crate::support::{eventually, Server};

const MB: u64 = 1024 * 1024;
/// Allowed overshoot of `used_memory` over `maxmemory` (see the module doc):
/// the bound for 8 clients pipelining 1 KiB writes.
const SLACK: u64 = 64 * 1024;

fn info_field(con: &mut Connection, section: &str, name: &str) -> String {
    let text: String = redis::cmd("INFO").arg(section).query(con).expect("INFO");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("INFO {section} has no {name}:\n{text}"))
        .trim()
        .to_string()
}

fn used_memory(con: &mut Connection) -> u64 {
    info_field(con, "memory", "used_memory").parse().unwrap()
}

fn config_set(con: &mut Connection, name: &str, value: &str) {
    let reply: String = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(con)
        .unwrap_or_else(|e| panic!("CONFIG SET {name} {value}: {e}"));
    assert_eq!(reply, "OK");
}

fn config_get(con: &mut Connection, name: &str) -> String {
    let pairs: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(con).unwrap();
    assert_eq!(pairs.len(), 2, "{pairs:?}");
    pairs[1].clone()
}

/// Writes `count` keys `prefix:N` with 1 KiB values in pipelines of 200,
/// with a one-hour TTL when `ttl`. Returns the replies' errors, if any.
fn write_keys(con: &mut Connection, prefix: &str, range: std::ops::Range<usize>, ttl: bool) -> Vec<String> {
    let value = vec![b'v'; 1024];
    let mut errors = Vec::new();
    let keys: Vec<usize> = range.collect();
    for chunk in keys.chunks(200) {
        let mut pipe = redis::pipe();
        for i in chunk {
            let key = format!("{prefix}:{i}");
            if ttl {
                pipe.cmd("SET").arg(&key).arg(&value[..]).arg("EX").arg(3600);
            } else {
                pipe.cmd("SET").arg(&key).arg(&value[..]);
            }
        }
        let replies: Vec<redis::RedisResult<Value>> = pipe
            .query::<Vec<Value>>(con)
            .map(|v| v.into_iter().map(Ok).collect())
            .unwrap_or_else(|e| vec![Err(e)]);
        for r in replies {
            match r {
                Ok(Value::ServerError(e)) => errors.push(format!("{e:?}")),
                Err(e) => errors.push(e.to_string()),
                Ok(_) => {}
            }
        }
    }
    errors
}

/// Writes 100 MB of distinct 1 KiB keys under a 20 MB limit with `policy`.
fn policy_keeps_memory_under_the_limit(policy: &str) {
    let server = Server::with_args(&["--maxmemory", "20mb", "--maxmemory-policy", policy]);
    let mut con = server.redis();
    let volatile = policy.starts_with("volatile");
    let mut peak = 0;
    for round in 0..10 {
        let errors = write_keys(&mut con, "k", round * 10_000..(round + 1) * 10_000, volatile);
        assert!(
            errors.is_empty(),
            "{policy}: {:?}",
            &errors[..errors.len().min(3)]
        );
        peak = peak.max(used_memory(&mut con));
    }
    assert!(peak <= 20 * MB + SLACK, "{policy}: used_memory peaked at {peak}");
    let evicted: u64 = info_field(&mut con, "stats", "evicted_keys").parse().unwrap();
    let keys: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert!(evicted > 50_000, "{policy}: only {evicted} evictions");
    assert_eq!(
        keys + evicted,
        100_000,
        "{policy}: every key is either present or evicted"
    );
    // 100 MB went through; RSS stays in the order of the limit.
    assert!(
        server.rss_kib() < 80 * 1024,
        "{policy}: RSS {} KiB",
        server.rss_kib()
    );
}

#[test]
fn allkeys_lru_keeps_memory_under_the_limit() {
    policy_keeps_memory_under_the_limit("allkeys-lru");
}

#[test]
fn allkeys_lfu_keeps_memory_under_the_limit() {
    policy_keeps_memory_under_the_limit("allkeys-lfu");
}

#[test]
fn allkeys_random_keeps_memory_under_the_limit() {
    policy_keeps_memory_under_the_limit("allkeys-random");
}

#[test]
fn volatile_lru_keeps_memory_under_the_limit() {
    policy_keeps_memory_under_the_limit("volatile-lru");
}

#[test]
fn volatile_lfu_keeps_memory_under_the_limit() {
    policy_keeps_memory_under_the_limit("volatile-lfu");
}

#[test]
fn volatile_random_keeps_memory_under_the_limit() {
    policy_keeps_memory_under_the_limit("volatile-random");
}

#[test]
fn volatile_ttl_keeps_memory_under_the_limit() {
    policy_keeps_memory_under_the_limit("volatile-ttl");
}

#[test]
fn noeviction_refuses_writes_with_oom_and_keeps_every_acknowledged_key() {
    let server = Server::with_args(&["--maxmemory", "10mb"]);
    let mut con = server.redis();
    let value = vec![b'v'; 1024];
    let mut acked = Vec::new();
    let mut oom = None;
    for i in 0..100_000 {
        let key = format!("k:{i}");
        match con.set::<_, _, String>(&key, &value[..]) {
            Ok(_) => acked.push(key),
            Err(e) => {
                oom = Some(e.to_string());
                break;
            }
        }
    }
    let oom = oom.expect("a write past 10 MB must be refused");
    assert!(
        oom.contains("OOM") && oom.contains("command not allowed when used memory > 'maxmemory'"),
        "{oom}"
    );
    // Reads and deletes still work; a refused write changed nothing.
    let err = con.set::<_, _, String>("refused", "x").unwrap_err();
    assert!(err.to_string().contains("OOM"), "{err}");
    assert_eq!(con.exists::<_, i64>("refused").unwrap(), 0);
    for key in &acked {
        let got: Option<Vec<u8>> = con.get(key).unwrap();
        assert_eq!(got.as_deref(), Some(&value[..]), "{key} was acknowledged");
    }
    assert_eq!(info_field(&mut con, "stats", "evicted_keys"), "0");
    let removed: i64 = con.del(&acked[..100]).unwrap();
    assert_eq!(removed, 100);
    // INCR is denyoom too, GET is not.
    let _: Option<String> = con.get("k:200").unwrap();
    let flags: Value = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("set")
        .query(&mut con)
        .unwrap();
    assert!(format!("{flags:?}").contains("denyoom"), "{flags:?}");
}

#[test]
fn volatile_ttl_evicts_the_keys_nearest_to_expiry_first() {
    let server = Server::with_args(&["--maxmemory", "10mb", "--maxmemory-policy", "volatile-ttl"]);
    let mut con = server.redis();
    let value = vec![b'v'; 1024];
    let total = 30_000;
    for chunk in (0..total).collect::<Vec<_>>().chunks(200) {
        let mut pipe = redis::pipe();
        for i in chunk {
            // Later keys expire later.
            pipe.cmd("SET")
                .arg(format!("t:{i}"))
                .arg(&value[..])
                .arg("EX")
                .arg(10_000 + i);
        }
        pipe.query::<Vec<Value>>(&mut con).unwrap();
    }
    let survivors = |con: &mut Connection, range: std::ops::Range<usize>| -> usize {
        range
            .filter(|i| con.exists::<_, bool>(format!("t:{i}")).unwrap())
            .count()
    };
    let early = survivors(&mut con, 0..1000);
    let late = survivors(&mut con, total - 1000..total);
    assert!(late > 900, "keys expiring last should survive: {late}/1000");
    assert!(
        early < late / 2,
        "keys expiring first should go first: early {early}, late {late}"
    );
}

#[test]
fn allkeys_lru_keeps_a_hot_set_read_continuously_while_cold_keys_stream_in() {
    let server = Server::with_args(&["--maxmemory", "20mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut con = server.redis();
    let hot = 1000;
    assert!(write_keys(&mut con, "hot", 0..hot, false).is_empty());
    let (mut hits, mut reads) = (0usize, 0usize);
    for round in 0..60 {
        // 1 MB of cold keys, then one read of every hot key.
        assert!(write_keys(&mut con, "cold", round * 1000..(round + 1) * 1000, false).is_empty());
        let keys: Vec<String> = (0..hot).map(|i| format!("hot:{i}")).collect();
        let values: Vec<Option<Vec<u8>>> = con.mget(&keys).unwrap();
        if round >= 30 {
            reads += values.len();
            hits += values.iter().filter(|v| v.is_some()).count();
        }
    }
    let evicted: u64 = info_field(&mut con, "stats", "evicted_keys").parse().unwrap();
    assert!(
        evicted > 30_000,
        "the cache must have been full: {evicted} evictions"
    );
    let ratio = hits as f64 / reads as f64;
    assert!(
        ratio > 0.9,
        "hot-set hit ratio {ratio:.3} after {evicted} evictions"
    );
}

#[test]
fn a_restart_after_evictions_holds_exactly_the_keys_that_were_not_evicted() {
    let data = tempfile::tempdir().unwrap();
    let args = [
        "--fsync",
        "always",
        "--maxmemory",
        "8mb",
        "--maxmemory-policy",
        "allkeys-random",
    ];
    let before: HashSet<String> = {
        let server = Server::with_wal(data.path(), &args);
        let mut con = server.redis();
        assert!(write_keys(&mut con, "k", 0..30_000, false).is_empty());
        let evicted: u64 = info_field(&mut con, "stats", "evicted_keys").parse().unwrap();
        assert!(evicted > 10_000, "{evicted}");
        let keys: Vec<String> = con.keys("*").unwrap();
        keys.into_iter().collect()
        // Dropping the server kills it (SIGKILL): only what the WAL holds survives.
    };
    let server = Server::with_wal(data.path(), &args);
    let mut con = server.redis();
    let after: HashSet<String> = con.keys::<_, Vec<String>>("*").unwrap().into_iter().collect();
    assert_eq!(before.len(), after.len());
    assert!(
        before == after,
        "the keyspace after the restart differs from the one before it"
    );
}

#[test]
fn config_set_maxmemory_below_the_data_evicts_down_to_it() {
    let server = Server::start();
    let mut con = server.redis();
    assert!(write_keys(&mut con, "k", 0..15_000, false).is_empty());
    assert!(used_memory(&mut con) > 15 * MB);
    config_set(&mut con, "maxmemory-policy", "allkeys-random");
    config_set(&mut con, "maxmemory", "8mb");
    assert_eq!(config_get(&mut con, "maxmemory"), (8 * MB).to_string());
    let used = used_memory(&mut con);
    assert!(
        used <= 8 * MB + SLACK,
        "used_memory {used} after lowering maxmemory"
    );
    let keys: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert!(keys < 10_000, "{keys}");
    assert_eq!(
        info_field(&mut con, "memory", "maxmemory_policy"),
        "allkeys-random"
    );
    assert_eq!(info_field(&mut con, "memory", "maxmemory_human"), "8.00M");
}

#[test]
fn config_set_refuses_unknown_and_immutable_settings_with_redis_errors() {
    let server = Server::start();
    let mut con = server.redis();
    let err = |con: &mut Connection, args: &[&str]| -> String {
        redis::cmd("CONFIG")
            .arg(args)
            .query::<Value>(con)
            .unwrap_err()
            .to_string()
    };
    let e = err(&mut con, &["SET", "no-such-setting", "1"]);
    assert!(
        e.contains("Unknown option or number of arguments for CONFIG SET - 'no-such-setting'"),
        "{e}"
    );
    let e = err(&mut con, &["SET", "port", "7000"]);
    assert!(
        e.contains("CONFIG SET failed (possibly related to argument 'port') - can't set immutable config"),
        "{e}"
    );
    config_set(&mut con, "save", "");
    let e = err(&mut con, &["SET", "save", "900 1"]);
    assert!(e.contains("only \"\" is accepted"), "{e}");
    let e = err(&mut con, &["SET", "maxmemory", "lots"]);
    assert!(e.contains("argument must be a memory value"), "{e}");
    let e = err(&mut con, &["SET", "maxmemory-policy", "sometimes"]);
    assert!(e.contains("must be one of the following"), "{e}");
    let e = err(&mut con, &["SET", "maxmemory"]);
    assert!(
        e.contains("wrong number of arguments for 'config|set' command"),
        "{e}"
    );
    // All or nothing: a bad pair leaves the good one unapplied.
    let e = err(&mut con, &["SET", "timeout", "30", "maxmemory-samples", "0"]);
    assert!(e.contains("argument must be between 1 and 64 inclusive"), "{e}");
    assert_eq!(config_get(&mut con, "timeout"), "0");
    // Several at once, both fsync spellings, Redis's log level names.
    let ok: String = redis::cmd("CONFIG")
        .arg(&[
            "SET",
            "timeout",
            "30",
            "maxmemory",
            "1gb",
            "appendfsync",
            "always",
            "loglevel",
            "notice",
        ])
        .query(&mut con)
        .unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(config_get(&mut con, "timeout"), "30");
    assert_eq!(config_get(&mut con, "maxmemory"), (1024 * MB).to_string());
    assert_eq!(config_get(&mut con, "fsync"), "always");
    assert_eq!(config_get(&mut con, "appendfsync"), "always");
    assert_eq!(config_get(&mut con, "loglevel"), "info");
    for (name, value) in [
        ("maxmemory-samples", "10"),
        ("lfu-log-factor", "20"),
        ("lfu-decay-time", "5"),
        ("flush-interval-ms", "50"),
        ("compact-min-size", "10mb"),
        ("compact-growth-percent", "50"),
        ("maxclients", "100"),
    ] {
        config_set(&mut con, name, value);
    }
    assert_eq!(config_get(&mut con, "compact-min-size"), (10 * MB).to_string());
    assert_eq!(config_get(&mut con, "maxclients"), "100");
    // Glob patterns over every setting.
    let pairs: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory*")
        .query(&mut con)
        .unwrap();
    let names: Vec<&String> = pairs.iter().step_by(2).collect();
    assert_eq!(names, ["maxmemory", "maxmemory-policy", "maxmemory-samples"]);
    let all: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("*").query(&mut con).unwrap();
    assert!(all.len() > 40, "{all:?}");
    let two: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("port")
        .arg("lfu-*")
        .query(&mut con)
        .unwrap();
    assert_eq!(two.len(), 6, "{two:?}");
}

#[test]
fn config_set_requirepass_applies_to_new_connections_at_once() {
    let server = Server::start();
    let mut con = server.redis();
    config_set(&mut con, "requirepass", "s3cret");
    // The client that set it, and clients already connected, keep their access.
    let _: Option<String> = con.get("x").unwrap();
    let mut fresh = server.redis();
    let e = fresh.get::<_, Option<String>>("x").unwrap_err().to_string();
    assert!(e.contains("NOAUTH"), "{e}");
    let ok: String = redis::cmd("AUTH").arg("s3cret").query(&mut fresh).unwrap();
    assert_eq!(ok, "OK");
    config_set(&mut fresh, "requirepass", "");
    let mut open = server.redis();
    let _: Option<String> = open.get("x").unwrap();
}

#[test]
fn config_rewrite_round_trips_through_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kvserver.toml");
    std::fs::write(&file, "# my settings\ntimeout = 0 # idle clients\nshards = 16\n").unwrap();
    let file_arg = file.to_str().unwrap();
    {
        let server = Server::with_args(&["--config", file_arg]);
        let mut con = server.redis();
        config_set(&mut con, "maxmemory", "7mb");
        config_set(&mut con, "timeout", "30");
        config_set(&mut con, "maxmemory-policy", "allkeys-lfu");
        let ok: String = redis::cmd("CONFIG").arg("REWRITE").query(&mut con).unwrap();
        assert_eq!(ok, "OK");
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("# my settings"), "{text}");
    assert!(text.contains("timeout = 30 # idle clients"), "{text}");
    assert!(text.contains("maxmemory = 7340032"), "{text}");
    assert!(text.contains("maxmemory-policy = \"allkeys-lfu\""), "{text}");
    let server = Server::with_args(&["--config", file_arg]);
    let mut con = server.redis();
    assert_eq!(config_get(&mut con, "maxmemory"), "7340032");
    assert_eq!(config_get(&mut con, "timeout"), "30");
    assert_eq!(config_get(&mut con, "maxmemory-policy"), "allkeys-lfu");

    let without = Server::start();
    let mut con = without.redis();
    let e = redis::cmd("CONFIG")
        .arg("REWRITE")
        .query::<Value>(&mut con)
        .unwrap_err()
        .to_string();
    assert!(e.contains("The server is running without a config file"), "{e}");
}

#[test]
fn config_resetstat_zeroes_the_counters() {
    let server = Server::with_args(&["--maxmemory", "5mb", "--maxmemory-policy", "allkeys-random"]);
    let mut con = server.redis();
    assert!(write_keys(&mut con, "k", 0..10_000, false).is_empty());
    let _: Option<String> = con.get("k:1").unwrap();
    assert_ne!(info_field(&mut con, "stats", "evicted_keys"), "0");
    let ok: String = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut con).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(info_field(&mut con, "stats", "evicted_keys"), "0");
    assert_eq!(info_field(&mut con, "stats", "keyspace_hits"), "0");
    assert_eq!(info_field(&mut con, "stats", "expired_keys"), "0");
}

#[test]
fn memory_usage_object_and_touch_answer_like_redis() {
    let server = Server::start();
    let mut con = server.redis();
    let _: () = con.set("num", "12345").unwrap();
    let _: () = con.set("short", "hello").unwrap();
    let _: () = con.set("long", "x".repeat(100)).unwrap();
    let usage: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("long")
        .query(&mut con)
        .unwrap();
    assert!((100..400).contains(&usage), "{usage}");
    let usage: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("long")
        .arg("SAMPLES")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert!(usage >= 100);
    let missing: Option<i64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("nope")
        .query(&mut con)
        .unwrap();
    assert_eq!(missing, None);
    let encoding = |con: &mut Connection, key: &str| -> Option<String> {
        redis::cmd("OBJECT").arg("ENCODING").arg(key).query(con).unwrap()
    };
    assert_eq!(encoding(&mut con, "num").as_deref(), Some("int"));
    assert_eq!(encoding(&mut con, "short").as_deref(), Some("embstr"));
    assert_eq!(encoding(&mut con, "long").as_deref(), Some("raw"));
    assert_eq!(encoding(&mut con, "nope"), None);
    let refcount: i64 = redis::cmd("OBJECT")
        .arg("REFCOUNT")
        .arg("long")
        .query(&mut con)
        .unwrap();
    assert_eq!(refcount, 1);
    let idle: i64 = redis::cmd("OBJECT")
        .arg("IDLETIME")
        .arg("long")
        .query(&mut con)
        .unwrap();
    assert!((0..5).contains(&idle), "{idle}");
    // FREQ only under an LFU policy, IDLETIME only under the others.
    let e = redis::cmd("OBJECT")
        .arg("FREQ")
        .arg("long")
        .query::<Value>(&mut con)
        .unwrap_err()
        .to_string();
    assert!(e.contains("An LFU maxmemory policy is not selected"), "{e}");
    config_set(&mut con, "maxmemory-policy", "allkeys-lfu");
    let _: () = con.set("fresh", "v").unwrap();
    let freq: i64 = redis::cmd("OBJECT")
        .arg("FREQ")
        .arg("fresh")
        .query(&mut con)
        .unwrap();
    assert!(freq >= 5, "a new key starts at LFU_INIT_VAL: {freq}");
    for _ in 0..200 {
        let _: Option<String> = con.get("fresh").unwrap();
    }
    let warmed: i64 = redis::cmd("OBJECT")
        .arg("FREQ")
        .arg("fresh")
        .query(&mut con)
        .unwrap();
    assert!(warmed > freq, "{freq} -> {warmed}");
    let e = redis::cmd("OBJECT")
        .arg("IDLETIME")
        .arg("fresh")
        .query::<Value>(&mut con)
        .unwrap_err()
        .to_string();
    assert!(e.contains("An LFU maxmemory policy is selected"), "{e}");
    let e = redis::cmd("OBJECT")
        .arg("NOPE")
        .arg("x")
        .query::<Value>(&mut con)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown subcommand 'NOPE'. Try OBJECT HELP."), "{e}");
    let e = redis::cmd("OBJECT")
        .arg("ENCODING")
        .query::<Value>(&mut con)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("wrong number of arguments for 'object|encoding' command"),
        "{e}"
    );
    let touched: i64 = redis::cmd("TOUCH")
        .arg("num")
        .arg("short")
        .arg("nope")
        .arg("num")
        .query(&mut con)
        .unwrap();
    assert_eq!(touched, 3);
}

#[test]
fn info_memory_fields_are_present_and_follow_the_data() {
    let server = Server::start();
    let mut con = server.redis();
    for field in [
        "used_memory",
        "used_memory_human",
        "used_memory_rss",
        "used_memory_peak",
        "maxmemory",
        "maxmemory_human",
        "maxmemory_policy",
        "mem_fragmentation_ratio",
    ] {
        info_field(&mut con, "memory", field);
    }
    assert_eq!(info_field(&mut con, "memory", "maxmemory_policy"), "noeviction");
    let empty = used_memory(&mut con);
    assert!(write_keys(&mut con, "k", 0..10_000, false).is_empty());
    let full = used_memory(&mut con);
    assert!(full > empty + 10 * MB, "{empty} -> {full}");
    let peak: u64 = info_field(&mut con, "memory", "used_memory_peak")
        .parse()
        .unwrap();
    assert!(peak >= full);
    let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || used_memory(&mut con) < empty + 2 * MB),
        "used_memory after FLUSHALL: {} (empty: {empty})",
        used_memory(&mut con)
    );
    let stats: String = redis::cmd("STATS").query(&mut con).unwrap();
    let json: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert!(json["memory"]["used_memory"].as_u64().unwrap() > 0, "{stats}");
    assert!(json["keyspace"]["evicted_keys"].is_u64(), "{stats}");
}

#[test]
fn transactions_respect_maxmemory_and_watch_sees_evictions() {
    let server = Server::start();
    let mut con = server.redis();
    let mut other = server.redis();
    // A denyoom command queued while over the limit aborts the transaction.
    config_set(&mut other, "maxmemory", "1");
    let _: () = redis::cmd("MULTI").query(&mut con).unwrap();
    let e = redis::cmd("SET")
        .arg("a")
        .arg("1")
        .query::<Value>(&mut con)
        .unwrap_err()
        .to_string();
    assert!(e.contains("OOM"), "{e}");
    let e = redis::cmd("EXEC")
        .query::<Value>(&mut con)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Transaction discarded"), "{e}");
    // Queued under the limit, executed over it: EXEC itself is refused.
    config_set(&mut other, "maxmemory", "0");
    let _: () = redis::cmd("MULTI").query(&mut con).unwrap();
    let queued: String = redis::cmd("SET").arg("a").arg("1").query(&mut con).unwrap();
    assert_eq!(queued, "QUEUED");
    config_set(&mut other, "maxmemory", "1");
    let e = redis::cmd("EXEC")
        .query::<Value>(&mut con)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Transaction discarded") && e.contains("OOM"), "{e}");
    assert_eq!(con.exists::<_, i64>("a").unwrap(), 0);
    // An eviction is a change for WATCH.
    config_set(&mut other, "maxmemory", "0");
    let _: () = con.set("w", "v").unwrap();
    let _: () = redis::cmd("WATCH").arg("w").query(&mut con).unwrap();
    config_set(&mut other, "maxmemory-policy", "allkeys-random");
    config_set(&mut other, "maxmemory", "1");
    assert_eq!(other.exists::<_, i64>("w").unwrap(), 0, "w was evicted");
    config_set(&mut other, "maxmemory", "0");
    let _: () = redis::cmd("MULTI").query(&mut con).unwrap();
    let _: String = redis::cmd("GET").arg("w").query(&mut con).unwrap();
    let result: Value = redis::cmd("EXEC").query(&mut con).unwrap();
    assert_eq!(result, Value::Nil, "EXEC after an eviction of a watched key");
}

/// The keys of Redis's maxmemory.tcl tests: random, so a write now and then
/// overwrites an earlier key, as there.
fn random_key(rng: &mut u64) -> String {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    format!("key:{}", *rng % 1_000_000_000)
}

/// Sets a limit 100 KiB above what the server uses now, as maxmemory.tcl does,
/// after a few rounds of the commands the test sends so that nothing the
/// server allocates once (a command's first latency histogram on a worker)
/// lands inside the measurement.
fn limit_100k_above_current_use(con: &mut Connection, policy: &str) -> u64 {
    config_set(con, "maxmemory", "0");
    for _ in 0..3 {
        let _: () = redis::cmd("SETEX")
            .arg("warm")
            .arg(10)
            .arg("x")
            .query(con)
            .unwrap();
        let _: () = con.set("warm", "x").unwrap();
        used_memory(con);
    }
    let _: () = redis::cmd("FLUSHALL").query(con).unwrap();
    let limit = used_memory(con) + 100 * 1024;
    config_set(con, "maxmemory", &limit.to_string());
    config_set(con, "maxmemory-policy", policy);
    limit
}

/// Redis's "maxmemory - is the memory limit honoured? (policy …)": fill to
/// 4 KiB under the limit, write as many keys again, and `used_memory` is
/// still under `limit + 4096` — eviction runs before every write.
#[test]
fn the_memory_limit_is_honoured_after_every_write_under_each_policy() {
    let server = Server::start();
    let mut con = server.redis();
    let mut rng = 0x9e37_79b9_7f4a_7c15;
    for policy in [
        "allkeys-random",
        "allkeys-lru",
        "allkeys-lfu",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        let limit = limit_100k_above_current_use(&mut con, policy);
        let mut written = 0;
        loop {
            let _: () = redis::cmd("SETEX")
                .arg(random_key(&mut rng))
                .arg(10_000)
                .arg("x")
                .query(&mut con)
                .unwrap();
            written += 1;
            if used_memory(&mut con) + 4096 > limit {
                break;
            }
        }
        assert!(written > 10, "{policy}: {written}");
        for _ in 0..written {
            let _: () = redis::cmd("SETEX")
                .arg(random_key(&mut rng))
                .arg(10_000)
                .arg("x")
                .query(&mut con)
                .unwrap_or_else(|e| panic!("{policy}: {e}"));
            let used = used_memory(&mut con);
            assert!(used < limit + 4096, "{policy}: used_memory {used}, limit {limit}");
        }
    }
}

/// Redis's "maxmemory - only allkeys-* should remove non-volatile keys":
/// with keys that have no TTL, `volatile-*` has nothing to evict and must
/// answer `-OOM`; `allkeys-*` evicts and stays under the limit.
#[test]
fn only_allkeys_policies_remove_keys_without_a_ttl() {
    let server = Server::start();
    let mut con = server.redis();
    let mut rng = 0x2545_f491_4f6c_dd1d;
    for policy in [
        "allkeys-random",
        "allkeys-lru",
        "volatile-lru",
        "volatile-random",
        "volatile-ttl",
    ] {
        let limit = limit_100k_above_current_use(&mut con, policy);
        let mut written = 0;
        loop {
            let _: () = con.set(random_key(&mut rng), "x").unwrap();
            written += 1;
            if used_memory(&mut con) + 4096 > limit {
                break;
            }
        }
        assert!(written > 10, "{policy}: {written}");
        let mut oom = false;
        for _ in 0..written {
            match con.set::<_, _, ()>(random_key(&mut rng), "x") {
                Ok(()) => {}
                Err(e) if e.to_string().contains("used memory") => oom = true,
                Err(e) => panic!("{policy}: {e}"),
            }
        }
        if policy.starts_with("allkeys") {
            let used = used_memory(&mut con);
            assert!(used < limit + 4096, "{policy}: used_memory {used}, limit {limit}");
            assert!(!oom, "{policy} must evict, not refuse");
        } else {
            assert!(oom, "{policy} with no volatile key must refuse with -OOM");
        }
    }
}

/// Redis's "maxmemory - policy volatile-* should only remove volatile keys".
#[test]
fn volatile_policies_evict_only_keys_with_a_ttl() {
    let server = Server::start();
    let mut con = server.redis();
    for policy in ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"] {
        let limit = limit_100k_above_current_use(&mut con, policy);
        let mut written = 0;
        loop {
            // Odd keys have a TTL, even keys do not.
            let key = format!("key:{written}");
            if written % 2 == 1 {
                let _: () = redis::cmd("SETEX")
                    .arg(&key)
                    .arg(10_000)
                    .arg("x")
                    .query(&mut con)
                    .unwrap();
            } else {
                let _: () = con.set(&key, "x").unwrap();
            }
            if used_memory(&mut con) + 4096 > limit {
                break;
            }
            written += 1;
        }
        assert!(written > 10, "{policy}: {written}");
        for j in 0..written {
            let _ = redis::cmd("SETEX")
                .arg(format!("foo:{j}"))
                .arg(10_000)
                .arg("x")
                .query::<Value>(&mut con);
        }
        let used = used_memory(&mut con);
        assert!(used < limit + 4096, "{policy}: used_memory {used}, limit {limit}");
        for j in (0..written).step_by(2) {
            assert!(
                con.exists::<_, bool>(format!("key:{j}")).unwrap(),
                "{policy}: key:{j} has no TTL"
            );
        }
    }
}

/// Several clients pipelining on two workers at once: every worker checks
/// the limit before each write, so `used_memory` never strays more than a
/// few writes (and the threads' unpublished deltas) over it.
#[test]
fn eight_clients_pipelining_on_two_workers_stay_within_64k_of_the_limit() {
    let limit = 4 * MB;
    let server = Server::with_args(&[
        "--workers",
        "2",
        "--maxmemory",
        "4mb",
        "--maxmemory-policy",
        "allkeys-lru",
    ]);
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|client| {
            let mut con = server.redis();
            std::thread::spawn(move || {
                let value = vec![b'v'; 1024];
                for round in 0..300 {
                    let mut pipe = redis::pipe();
                    for i in 0..16 {
                        pipe.cmd("SET")
                            .arg(format!("c{client}:{round}:{i}"))
                            .arg(&value[..]);
                    }
                    pipe.query::<Vec<Value>>(&mut con).expect("pipelined SETs");
                }
            })
        })
        .collect();
    let sampler = {
        let mut con = server.redis();
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(used_memory(&mut con));
            }
            peak
        })
    };
    for w in writers {
        w.join().expect("writer");
    }
    done.store(true, Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");
    let mut con = server.redis();
    let evicted: u64 = info_field(&mut con, "stats", "evicted_keys").parse().unwrap();
    assert!(
        evicted > 10_000,
        "38 MB written under a 4 MB limit: {evicted} evictions"
    );
    assert!(
        peak < limit + SLACK,
        "used_memory peaked at {peak}, {} over",
        peak.saturating_sub(limit)
    );
}

fn object_freq(con: &mut Connection, key: &str) -> i64 {
    redis::cmd("OBJECT").arg("FREQ").arg(key).query(con).unwrap()
}

/// Redis's introspection-2.tcl "TTL, TYPE and EXISTS do not alter the last
/// access time of a key" (the sleep only bounds the idle time from below).
#[test]
fn ttl_type_and_exists_leave_the_idle_time_running() {
    let server = Server::start();
    let mut con = server.redis();
    let _: () = con.set("foo", "bar").unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    let _: i64 = con.ttl("foo").unwrap();
    let _: String = redis::cmd("TYPE").arg("foo").query(&mut con).unwrap();
    let _: i64 = con.exists("foo").unwrap();
    let idle: i64 = redis::cmd("OBJECT")
        .arg("IDLETIME")
        .arg("foo")
        .query(&mut con)
        .unwrap();
    assert!(idle >= 2, "idle time {idle} after TTL, TYPE and EXISTS");
}

/// With `lfu-log-factor 0` every access adds one to the LFU counter, so
/// which commands count as an access is visible without waiting: the
/// `LOOKUP_NOTOUCH` ones of Redis do not, GET and TOUCH do, and under
/// `CLIENT NO-TOUCH ON` only TOUCH does.
#[test]
fn only_commands_that_use_a_value_count_as_an_access() {
    let server = Server::start();
    let mut con = server.redis();
    config_set(&mut con, "maxmemory-policy", "allkeys-lfu");
    config_set(&mut con, "lfu-log-factor", "0");
    // No decay: a minute boundary inside the test must not lower the counter.
    config_set(&mut con, "lfu-decay-time", "0");
    let _: () = con.set("foo", "bar").unwrap();
    let _: () = con.expire("foo", 1000).unwrap();
    let start = object_freq(&mut con, "foo");
    for probe in [
        vec!["TTL", "foo"],
        vec!["PTTL", "foo"],
        vec!["EXPIRETIME", "foo"],
        vec!["PEXPIRETIME", "foo"],
        vec!["TYPE", "foo"],
        vec!["EXISTS", "foo", "foo"],
        vec!["OBJECT", "ENCODING", "foo"],
        vec!["MEMORY", "USAGE", "foo"],
        vec!["SCAN", "0", "TYPE", "string"],
    ] {
        let _: Value = redis::cmd(probe[0]).arg(&probe[1..]).query(&mut con).unwrap();
        assert_eq!(
            object_freq(&mut con, "foo"),
            start,
            "{probe:?} counted as an access"
        );
    }
    let _: String = con.get("foo").unwrap();
    assert_eq!(object_freq(&mut con, "foo"), start + 1, "GET is an access");
    let _: i64 = redis::cmd("TOUCH").arg("foo").query(&mut con).unwrap();
    assert_eq!(object_freq(&mut con, "foo"), start + 2, "TOUCH is an access");

    let _: () = redis::cmd("CLIENT")
        .arg("NO-TOUCH")
        .arg("ON")
        .query(&mut con)
        .unwrap();
    let info: String = redis::cmd("CLIENT").arg("INFO").query(&mut con).unwrap();
    assert!(
        info.contains(" flags=T "),
        "CLIENT INFO shows the no-touch flag: {info}"
    );
    let _: String = con.get("foo").unwrap();
    let _: i64 = con.strlen("foo").unwrap();
    assert_eq!(
        object_freq(&mut con, "foo"),
        start + 2,
        "GET under CLIENT NO-TOUCH ON"
    );
    let _: i64 = redis::cmd("TOUCH").arg("foo").query(&mut con).unwrap();
    assert_eq!(
        object_freq(&mut con, "foo"),
        start + 3,
        "TOUCH still touches under NO-TOUCH"
    );
    // Inside a transaction too.
    let _: Value = redis::pipe().atomic().get("foo").query(&mut con).unwrap();
    assert_eq!(
        object_freq(&mut con, "foo"),
        start + 3,
        "GET in EXEC under NO-TOUCH"
    );
    let err = redis::cmd("CLIENT")
        .arg("NO-TOUCH")
        .arg("maybe")
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(err.to_string().contains("syntax error"), "{err}");
    let _: () = redis::cmd("RESET").query(&mut con).unwrap();
    let _: String = con.get("foo").unwrap();
    assert_eq!(
        object_freq(&mut con, "foo"),
        start + 4,
        "RESET turns NO-TOUCH off"
    );
}
