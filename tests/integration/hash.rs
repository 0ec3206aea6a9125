//! Hashes: byte-exact replies in RESP and text, WRONGTYPE both ways, and
//! the semantics of Redis 7.4's `tests/unit/type/hash.tcl` and
//! `hash-field-expire.tcl` that do not need DEBUG.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use redis::Commands;

use crate::support::*;

const WRONGTYPE: &[u8] = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

#[test]
fn hash_commands_reply_byte_exact_in_resp() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(c.cmd(&["HSET", "h", "a", "1", "b", "2"]), b":2\r\n");
    assert_eq!(c.cmd(&["HSET", "h", "a", "10", "c", "3"]), b":1\r\n");
    assert_eq!(c.cmd(&["HGET", "h", "a"]), b"$2\r\n10\r\n");
    assert_eq!(c.cmd(&["HGET", "h", "zz"]), b"$-1\r\n");
    assert_eq!(c.cmd(&["HGET", "nokey", "a"]), b"$-1\r\n");
    assert_eq!(
        c.cmd(&["HMGET", "h", "a", "zz", "c"]),
        b"*3\r\n$2\r\n10\r\n$-1\r\n$1\r\n3\r\n"
    );
    assert_eq!(c.cmd(&["HMGET", "nokey", "a", "b"]), b"*2\r\n$-1\r\n$-1\r\n");
    assert_eq!(
        c.cmd(&["HGETALL", "h"]),
        b"*6\r\n$1\r\na\r\n$2\r\n10\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n"
    );
    assert_eq!(c.cmd(&["HGETALL", "nokey"]), b"*0\r\n");
    assert_eq!(c.cmd(&["HKEYS", "h"]), b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
    assert_eq!(
        c.cmd(&["HVALS", "h"]),
        b"*3\r\n$2\r\n10\r\n$1\r\n2\r\n$1\r\n3\r\n"
    );
    assert_eq!(c.cmd(&["HLEN", "h"]), b":3\r\n");
    assert_eq!(c.cmd(&["HLEN", "nokey"]), b":0\r\n");
    assert_eq!(c.cmd(&["HSTRLEN", "h", "a"]), b":2\r\n");
    assert_eq!(c.cmd(&["HSTRLEN", "h", "zz"]), b":0\r\n");
    assert_eq!(c.cmd(&["HEXISTS", "h", "a"]), b":1\r\n");
    assert_eq!(c.cmd(&["HEXISTS", "h", "zz"]), b":0\r\n");
    assert_eq!(c.cmd(&["HSETNX", "h", "a", "x"]), b":0\r\n");
    assert_eq!(c.cmd(&["HSETNX", "h", "d", "4"]), b":1\r\n");
    assert_eq!(c.cmd(&["HMSET", "h", "e", "5"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["HDEL", "h", "d", "e", "zz"]), b":2\r\n");
    assert_eq!(c.cmd(&["HINCRBY", "h", "n", "5"]), b":5\r\n");
    assert_eq!(c.cmd(&["HINCRBY", "h", "n", "-7"]), b":-2\r\n");
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "f", "10.5"]), b"$4\r\n10.5\r\n");
    assert_eq!(c.cmd(&["HINCRBYFLOAT", "h", "f", "0.1"]), b"$4\r\n10.6\r\n");
    assert_eq!(c.cmd(&["TYPE", "h"]), b"+hash\r\n");
    assert_eq!(c.cmd(&["HSCAN", "nokey", "0"]), b"*2\r\n$1\r\n0\r\n*0\r\n");
    assert_eq!(
        c.cmd(&["HSCAN", "h", "0", "MATCH", "[ab]", "NOVALUES"]),
        b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    assert_eq!(
        c.cmd(&["HSCAN", "h", "0", "MATCH", "a"]),
        b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$2\r\n10\r\n"
    );
}

#[test]
fn hash_errors_are_redis_strings() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(
        c.cmd(&["HSET", "h", "a"]),
        b"-ERR wrong number of arguments for 'hset' command\r\n"
    );
    assert_eq!(
        c.cmd(&["HSET", "h", "a", "1", "b"]),
        b"-ERR wrong number of arguments for 'hset' command\r\n"
    );
    assert_eq!(
        c.cmd(&["HMSET", "h", "a", "1", "b"]),
        b"-ERR wrong number of arguments for 'hmset' command\r\n"
    );
    c.cmd(&["HSET", "h", "s", "abc", "big", "9223372036854775807", "fl", "1.5"]);
    assert_eq!(
        c.cmd(&["HINCRBY", "h", "s", "1"]),
        b"-ERR hash value is not an integer\r\n"
    );
    assert_eq!(
        c.cmd(&["HINCRBY", "h", "big", "1"]),
        b"-ERR increment or decrement would overflow\r\n"
    );
    assert_eq!(
        c.cmd(&["HINCRBY", "h", "big", "x"]),
        b"-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        c.cmd(&["HINCRBY", "h", "fl", "1"]),
        b"-ERR hash value is not an integer\r\n"
    );
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "s", "1"]),
        b"-ERR hash value is not a float\r\n"
    );
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "fl", "x"]),
        b"-ERR value is not a valid float\r\n"
    );
    assert_eq!(
        c.cmd(&["HINCRBYFLOAT", "h", "fl", "inf"]),
        b"-ERR value is NaN or Infinity\r\n"
    );
    // A failed increment on a missing key leaves no empty hash behind.
    assert_eq!(
        c.cmd(&["HINCRBY", "fresh", "f", "x"]),
        b"-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(c.cmd(&["EXISTS", "fresh"]), b":0\r\n");
    assert_eq!(c.cmd(&["HSCAN", "h", "x"]), b"-ERR invalid cursor\r\n");
    assert_eq!(
        c.cmd(&["HSCAN", "h", "0", "COUNT", "0"]),
        b"-ERR syntax error\r\n"
    );
    assert_eq!(c.cmd(&["HRANDFIELD", "h", "1", "x"]), b"-ERR syntax error\r\n");
    assert_eq!(
        c.cmd(&["SCAN", "0", "TYPE", "nosuch"]),
        b"-ERR unknown type name 'nosuch'\r\n"
    );
}

#[test]
fn wrongtype_is_answered_between_strings_and_hashes_both_ways() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["SET", "s", "v"]);
    c.cmd(&["HSET", "h", "f", "v"]);
    for cmd in [
        &["HSET", "s", "f", "v"][..],
        &["HSETNX", "s", "f", "v"],
        &["HGET", "s", "f"],
        &["HMGET", "s", "f"],
        &["HGETALL", "s"],
        &["HKEYS", "s"],
        &["HVALS", "s"],
        &["HDEL", "s", "f"],
        &["HLEN", "s"],
        &["HSTRLEN", "s", "f"],
        &["HEXISTS", "s", "f"],
        &["HINCRBY", "s", "f", "1"],
        &["HINCRBYFLOAT", "s", "f", "1"],
        &["HRANDFIELD", "s"],
        &["HSCAN", "s", "0"],
        &["HEXPIRE", "s", "10", "FIELDS", "1", "f"],
        &["HTTL", "s", "FIELDS", "1", "f"],
        &["HPERSIST", "s", "FIELDS", "1", "f"],
    ] {
        assert_eq!(c.cmd(cmd), WRONGTYPE, "{cmd:?}");
    }
    for cmd in [
        &["GET", "h"][..],
        &["GETSET", "h", "v"],
        &["GETDEL", "h"],
        &["GETEX", "h"],
        &["APPEND", "h", "x"],
        &["STRLEN", "h"],
        &["INCR", "h"],
        &["INCRBYFLOAT", "h", "1"],
        &["GETRANGE", "h", "0", "1"],
        &["SETRANGE", "h", "0", "x"],
        &["SET", "h", "v", "GET"],
    ] {
        assert_eq!(c.cmd(cmd), WRONGTYPE, "{cmd:?}");
    }
    // MGET answers nil for a non-string; SET replaces any type; SETNX sees the key.
    assert_eq!(c.cmd(&["MGET", "h", "s"]), b"*2\r\n$-1\r\n$1\r\nv\r\n");
    assert_eq!(c.cmd(&["SETNX", "h", "v"]), b":0\r\n");
    assert_eq!(c.cmd(&["TYPE", "s"]), b"+string\r\n");
    assert_eq!(c.cmd(&["SET", "h", "now-a-string"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["TYPE", "h"]), b"+string\r\n");
    assert_eq!(c.cmd(&["GET", "h"]), b"$12\r\nnow-a-string\r\n");
}

#[test]
fn deleting_the_last_field_deletes_the_key() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["HSET", "h", "a", "1", "b", "2"]);
    assert_eq!(c.cmd(&["HDEL", "h", "a", "b"]), b":2\r\n");
    assert_eq!(c.cmd(&["EXISTS", "h"]), b":0\r\n");
    assert_eq!(c.cmd(&["TYPE", "h"]), b"+none\r\n");
    // Once gone, the key can become a string.
    assert_eq!(c.cmd(&["INCR", "h"]), b":1\r\n");
}

#[test]
fn type_scan_type_rename_and_key_ttl_work_on_hashes() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["HSET", "h1", "f", "v"]);
    c.cmd(&["HSET", "h2", "f", "v"]);
    c.cmd(&["SET", "s1", "v"]);
    let keys = |c: &mut Raw, kind: &str| {
        let reply = c.cmd(&["SCAN", "0", "COUNT", "1000", "TYPE", kind]);
        let text = String::from_utf8_lossy(&reply).to_string();
        let mut found: Vec<String> = text
            .split("\r\n")
            .filter(|l| !l.is_empty() && !l.starts_with(['*', '$']))
            .skip(1)
            .map(str::to_string)
            .collect();
        found.sort();
        found
    };
    assert_eq!(keys(&mut c, "hash"), vec!["h1", "h2"]);
    assert_eq!(keys(&mut c, "string"), vec!["s1"]);
    assert!(keys(&mut c, "list").is_empty());
    assert_eq!(c.cmd(&["RENAME", "h1", "h3"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["HGET", "h3", "f"]), b"$1\r\nv\r\n");
    assert_eq!(c.cmd(&["RENAME", "s1", "h2"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["TYPE", "h2"]), b"+string\r\n");
    assert_eq!(c.cmd(&["PEXPIRE", "h3", "30"]), b":1\r\n");
    assert!(eventually(Duration::from_secs(10), || c.cmd(&["EXISTS", "h3"]) == b":0\r\n"));
}

#[test]
fn hash_replies_read_well_in_text_mode() {
    let server = Server::start();
    let mut c = server.raw();
    c.send(b"HSET user:1 name ada lang rust\r\n");
    c.expect(b"(integer) 2\r\n");
    c.send(b"HGETALL user:1\r\n");
    c.expect(b"1) name\r\n2) ada\r\n3) lang\r\n4) rust\r\n");
    c.send(b"HGET user:1 name\n");
    c.expect(b"ada\n");
    c.send(b"HMGET user:1 lang nope\n");
    c.expect(b"1) rust\n2) (nil)\n");
    c.send(b"HGETALL nope\r\n");
    c.expect(b"(empty array)\r\n");
    c.send(b"HTTL user:1 FIELDS 2 name nope\r\n");
    c.expect(b"1) (integer) -1\r\n2) (integer) -2\r\n");
    c.send(b"SET s v\r\n");
    c.expect(b"OK\r\n");
    c.send(b"HGET s f\r\n");
    c.expect(b"(error) WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    c.send(b"TYPE user:1\r\n");
    c.expect(b"hash\r\n");
}

#[test]
fn hrandfield_counts_follow_redis() {
    let server = Server::start();
    let mut con = server.redis();
    let mut c = server.raw();
    let _: () = con
        .hset_multiple("h", &[("a", "1"), ("b", "2"), ("c", "3")])
        .unwrap();
    assert_eq!(c.cmd(&["HRANDFIELD", "nokey"]), b"$-1\r\n");
    assert_eq!(c.cmd(&["HRANDFIELD", "nokey", "5"]), b"*0\r\n");
    assert_eq!(c.cmd(&["HRANDFIELD", "h", "0"]), b"*0\r\n");
    // A positive count returns distinct fields, at most the hash's size.
    let fields: Vec<String> = redis::cmd("HRANDFIELD").arg("h").arg(10).query(&mut con).unwrap();
    assert_eq!(fields.iter().collect::<HashSet<_>>().len(), 3);
    let two: Vec<String> = redis::cmd("HRANDFIELD").arg("h").arg(2).query(&mut con).unwrap();
    assert_eq!(two.iter().collect::<HashSet<_>>().len(), 2);
    // A negative count may repeat and returns exactly |count| fields.
    let many: Vec<String> = redis::cmd("HRANDFIELD")
        .arg("h")
        .arg(-20)
        .query(&mut con)
        .unwrap();
    assert_eq!(many.len(), 20);
    assert!(many.iter().all(|f| ["a", "b", "c"].contains(&f.as_str())));
    let pairs: Vec<String> = redis::cmd("HRANDFIELD")
        .arg("h")
        .arg(-5)
        .arg("WITHVALUES")
        .query(&mut con)
        .unwrap();
    assert_eq!(pairs.len(), 10);
    for pair in pairs.chunks(2) {
        let expected = match pair[0].as_str() {
            "a" => "1",
            "b" => "2",
            _ => "3",
        };
        assert_eq!(pair[1], expected);
    }
    let one: String = redis::cmd("HRANDFIELD").arg("h").query(&mut con).unwrap();
    assert!(["a", "b", "c"].contains(&one.as_str()));
    // Redis's "HRANDFIELD count overflow".
    for args in [
        &["HRANDFIELD", "h", "-9223372036854770000", "WITHVALUES"][..],
        &["HRANDFIELD", "h", "-9223372036854775808", "WITHVALUES"],
        &["HRANDFIELD", "h", "-9223372036854775808"],
    ] {
        let reply = c.cmd(args);
        assert!(
            reply.starts_with(b"-ERR value is out of range"),
            "{}",
            show(&reply)
        );
    }
}

#[test]
fn small_hashes_are_listpacks_until_a_threshold_is_crossed() {
    let server = Server::with_args(&["--workers", "2"]);
    let mut c = server.raw();
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "hash-max-ziplist-entries"]),
        b"*2\r\n$24\r\nhash-max-ziplist-entries\r\n$3\r\n128\r\n"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "hash-max-listpack-entries", "4"]),
        b"+OK\r\n"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "hash-max-listpack-entries"]),
        b"*2\r\n$25\r\nhash-max-listpack-entries\r\n$1\r\n4\r\n"
    );
    let mut con = server.redis();
    for i in 0..4 {
        let _: () = con.hset("small", format!("f{i}"), i).unwrap();
    }
    let _: () = con.hset("long", "f", "x".repeat(100)).unwrap();
    for i in 0..5 {
        let _: () = con.hset("big", format!("f{i}"), i).unwrap();
    }
    let encoding = |c: &mut Raw, key: &str| show(&c.cmd(&["OBJECT", "ENCODING", key]));
    assert_eq!(encoding(&mut c, "small"), show(b"$8\r\nlistpack\r\n"));
    assert_eq!(encoding(&mut c, "long"), show(b"$9\r\nhashtable\r\n"));
    assert_eq!(encoding(&mut c, "big"), show(b"$9\r\nhashtable\r\n"));
    // The old name sets the same threshold; new hashes follow it.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "hash-max-ziplist-entries", "128"]),
        b"+OK\r\n"
    );
    for i in 0..5 {
        let _: () = con.hset("again", format!("f{i}"), i).unwrap();
    }
    assert_eq!(encoding(&mut c, "again"), show(b"$8\r\nlistpack\r\n"));
    let usage = |c: &mut Raw, key: &str| -> i64 {
        let reply = show(&c.cmd(&["MEMORY", "USAGE", key]));
        reply.trim_start_matches(':').trim().parse().unwrap()
    };
    assert!(usage(&mut c, "big") > usage(&mut c, "small"));
    assert!(usage(&mut c, "long") > 100);
    // All of them keep answering the same way whatever the representation.
    let small: HashMap<String, i64> = con.hgetall("small").unwrap();
    let big: HashMap<String, i64> = con.hgetall("big").unwrap();
    assert_eq!((small.len(), big.len()), (4, 5));
    assert_eq!(con.hget::<_, _, String>("long", "f").unwrap().len(), 100);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "hash-max-listpack-value", "x"]),
        b"-ERR CONFIG SET failed (possibly related to argument 'hash-max-listpack-value') - argument couldn't be parsed into an integer\r\n"
    );
}

#[test]
fn hscan_of_a_big_hash_returns_every_field_across_cursors() {
    let server = Server::start();
    let mut con = server.redis();
    let pairs: Vec<(String, String)> = (0..1000).map(|i| (format!("f{i}"), format!("v{i}"))).collect();
    let _: () = con.hset_multiple("big", &pairs).unwrap();
    let mut seen = HashMap::new();
    let mut cursor = 0u64;
    loop {
        let (next, items): (u64, Vec<String>) = redis::cmd("HSCAN")
            .arg("big")
            .arg(cursor)
            .arg("COUNT")
            .arg(100)
            .query(&mut con)
            .unwrap();
        for kv in items.chunks(2) {
            seen.insert(kv[0].clone(), kv[1].clone());
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 1000);
    assert_eq!(seen["f999"], "v999");
}

// ------------------------------------------------------------------ field TTL

#[test]
fn hexpire_family_replies_follow_redis_7_4() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(
        c.cmd(&["HEXPIRE", "nokey", "100", "FIELDS", "2", "a", "b"]),
        b"*2\r\n:-2\r\n:-2\r\n"
    );
    assert_eq!(
        c.cmd(&["HEXPIRE", "h", "100", "FIELDS", "2", "a", "zz"]),
        b"*2\r\n:1\r\n:-2\r\n"
    );
    assert_eq!(
        c.cmd(&["HEXPIRE", "h", "200", "NX", "FIELDS", "2", "a", "b"]),
        b"*2\r\n:0\r\n:1\r\n"
    );
    assert_eq!(
        c.cmd(&["HEXPIRE", "h", "300", "XX", "FIELDS", "2", "a", "c"]),
        b"*2\r\n:1\r\n:0\r\n"
    );
    assert_eq!(
        c.cmd(&["HEXPIRE", "h", "100", "GT", "FIELDS", "2", "a", "c"]),
        b"*2\r\n:0\r\n:0\r\n"
    );
    assert_eq!(
        c.cmd(&["HEXPIRE", "h", "100", "LT", "FIELDS", "2", "a", "c"]),
        b"*2\r\n:1\r\n:1\r\n"
    );
    assert_eq!(
        c.cmd(&["HTTL", "h", "FIELDS", "4", "a", "b", "c", "zz"]),
        b"*4\r\n:100\r\n:200\r\n:100\r\n:-2\r\n"
    );
    let pttl = c.cmd(&["HPTTL", "h", "FIELDS", "1", "a"]);
    let ms: i64 = String::from_utf8_lossy(&pttl[5..pttl.len() - 2]).parse().unwrap();
    assert!((99_000..=100_000).contains(&ms), "{ms}");
    assert_eq!(
        c.cmd(&["HPEXPIREAT", "h", "4000000000000", "FIELDS", "1", "c"]),
        b"*1\r\n:1\r\n"
    );
    assert_eq!(
        c.cmd(&["HPEXPIRETIME", "h", "FIELDS", "1", "c"]),
        b"*1\r\n:4000000000000\r\n"
    );
    assert_eq!(
        c.cmd(&["HEXPIRETIME", "h", "FIELDS", "1", "c"]),
        b"*1\r\n:4000000000\r\n"
    );
    assert_eq!(
        c.cmd(&["HEXPIREAT", "h", "4000000001", "FIELDS", "1", "c"]),
        b"*1\r\n:1\r\n"
    );
    assert_eq!(
        c.cmd(&["HPERSIST", "h", "FIELDS", "3", "a", "zz", "a"]),
        b"*3\r\n:1\r\n:-2\r\n:-1\r\n"
    );
    assert_eq!(
        c.cmd(&["HPERSIST", "nokey", "FIELDS", "1", "a"]),
        b"*1\r\n:-2\r\n"
    );
    // A time in the past deletes the field (reply 2); the last one takes the key.
    assert_eq!(c.cmd(&["HEXPIRE", "h", "0", "FIELDS", "1", "a"]), b"*1\r\n:2\r\n");
    assert_eq!(
        c.cmd(&["HEXPIREAT", "h", "1", "FIELDS", "2", "b", "c"]),
        b"*2\r\n:2\r\n:2\r\n"
    );
    assert_eq!(c.cmd(&["EXISTS", "h"]), b":0\r\n");
}

#[test]
fn hexpire_argument_errors_are_redis_strings() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["HSET", "h", "a", "1"]);
    let cases: &[(&[&str], &[u8])] = &[
        (
            &["HEXPIRE", "h", "-1", "FIELDS", "1", "a"],
            b"-ERR invalid expire time, must be >= 0\r\n",
        ),
        (
            &["HEXPIRE", "h", "x", "FIELDS", "1", "a"],
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["HEXPIRE", "h", "9223372036854775", "FIELDS", "1", "a"],
            b"-ERR invalid expire time in 'hexpire' command\r\n",
        ),
        (
            &["HPEXPIRE", "h", "9223372036854775807", "FIELDS", "1", "a"],
            b"-ERR invalid expire time in 'hpexpire' command\r\n",
        ),
        (
            &["HEXPIRE", "h", "10", "FIELDX", "1", "a"],
            b"-ERR Mandatory argument FIELDS is missing or not at the right position\r\n",
        ),
        (
            &["HEXPIRE", "h", "10", "FIELDS", "0", "a"],
            b"-ERR Parameter `numFields` should be greater than 0\r\n",
        ),
        (
            &["HEXPIRE", "h", "10", "FIELDS", "2", "a"],
            b"-ERR The `numfields` parameter must match the number of arguments\r\n",
        ),
        (
            &["HTTL", "h", "FIELDS", "0", "a"],
            b"-ERR Number of fields must be a positive integer\r\n",
        ),
        (
            &["HPERSIST", "h", "FIELDS", "2", "a"],
            b"-ERR The `numfields` parameter must match the number of arguments\r\n",
        ),
        (
            &["HTTL", "h", "FIELDS", "1"],
            b"-ERR wrong number of arguments for 'httl' command\r\n",
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(show(&c.cmd(args)), show(expected), "{args:?}");
    }
}

#[test]
fn expired_fields_vanish_lazily_and_actively_and_take_an_emptied_hash_with_them() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["HSET", "lazy", "f1", "v1", "f2", "v2", "keep", "v"]);
    assert_eq!(
        c.cmd(&["HPEXPIRE", "lazy", "20", "FIELDS", "2", "f1", "f2"]),
        b"*2\r\n:1\r\n:1\r\n"
    );
    assert!(eventually(Duration::from_secs(10), || c
        .cmd(&["HGET", "lazy", "f1"])
        == b"$-1\r\n"));
    assert_eq!(c.cmd(&["HGETALL", "lazy"]), b"*2\r\n$4\r\nkeep\r\n$1\r\nv\r\n");
    assert_eq!(c.cmd(&["HLEN", "lazy"]), b":1\r\n");
    // Active expiry: nothing reads the hash, yet it disappears with its last field.
    c.cmd(&["HSET", "active", "f1", "v1", "f2", "v2"]);
    c.cmd(&["HPEXPIRE", "active", "20", "FIELDS", "2", "f1", "f2"]);
    assert!(eventually(Duration::from_secs(10), || c.cmd(&["DBSIZE"]) == b":1\r\n"));
    assert_eq!(c.cmd(&["EXISTS", "active"]), b":0\r\n");
    // HSET clears a field's TTL; HINCRBY keeps it.
    c.cmd(&["HSET", "t", "a", "1", "b", "1"]);
    c.cmd(&["HEXPIRE", "t", "100", "FIELDS", "2", "a", "b"]);
    c.cmd(&["HSET", "t", "a", "2"]);
    c.cmd(&["HINCRBY", "t", "b", "1"]);
    assert_eq!(
        c.cmd(&["HTTL", "t", "FIELDS", "2", "a", "b"]),
        b"*2\r\n:-1\r\n:100\r\n"
    );
    // A key-level EXPIRE still works on the whole hash.
    c.cmd(&["PEXPIRE", "t", "20"]);
    assert!(eventually(Duration::from_secs(10), || c.cmd(&["EXISTS", "t"]) == b":0\r\n"));
}

#[test]
fn a_feast_shaped_round_trip_keeps_values_and_ttls() {
    let server = Server::start();
    let mut con = server.redis();
    let features: Vec<String> = (0..20).map(|i| format!("feature_{i:02}")).collect();
    let value = |e: usize, f: usize| format!("v{e}:{f}:{}", "x".repeat((e + f) % 16));
    for chunk in (0..10_000).collect::<Vec<usize>>().chunks(500) {
        let mut pipe = redis::pipe();
        for &e in chunk {
            let key = format!("project:entity:{e}");
            let mapping: Vec<(&str, String)> = features
                .iter()
                .enumerate()
                .map(|(f, n)| (n.as_str(), value(e, f)))
                .collect();
            pipe.hset_multiple(&key, &mapping).ignore();
            pipe.expire(&key, 3600).ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
    }
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..500 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let e = (x % 10_000) as usize;
        let wanted = [3usize, 7, 19];
        let names: Vec<&str> = wanted.iter().map(|&f| features[f].as_str()).collect();
        let got: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(format!("project:entity:{e}"))
            .arg(&names)
            .query(&mut con)
            .unwrap();
        let expected: Vec<Option<String>> = wanted.iter().map(|&f| Some(value(e, f))).collect();
        assert_eq!(got, expected, "entity {e}");
        let ttl: i64 = con.ttl(format!("project:entity:{e}")).unwrap();
        assert!((3500..=3600).contains(&ttl), "ttl {ttl}");
    }
    let dbsize: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(dbsize, 10_000);
}

#[test]
fn hgetall_is_a_map_and_hrandfield_pairs_nest_in_resp3() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["HSET", "h", "a", "1"]);
    let hello = c.cmd(&["HELLO", "3"]);
    assert!(hello.starts_with(b"%"), "{}", show(&hello));
    assert_eq!(c.cmd(&["HGETALL", "h"]), b"%1\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_eq!(c.cmd(&["HGETALL", "nokey"]), b"%0\r\n");
    assert_eq!(
        c.cmd(&["HRANDFIELD", "h", "1", "WITHVALUES"]),
        b"*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
    assert_eq!(c.cmd(&["HGET", "h", "zz"]), b"_\r\n");
}

#[test]
fn hash_commands_queue_in_multi_and_a_watched_hash_aborts_exec_when_changed() {
    let server = Server::start();
    let mut c = server.raw();
    let mut other = server.raw();
    assert_eq!(c.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["HSET", "h", "a", "1"]), b"+QUEUED\r\n");
    assert_eq!(c.cmd(&["HINCRBY", "h", "a", "2"]), b"+QUEUED\r\n");
    assert_eq!(c.cmd(&["EXEC"]), b"*2\r\n:1\r\n:3\r\n");
    assert_eq!(c.cmd(&["WATCH", "h"]), b"+OK\r\n");
    assert_eq!(other.cmd(&["HSET", "h", "b", "1"]), b":1\r\n");
    c.cmd(&["MULTI"]);
    c.cmd(&["HDEL", "h", "a"]);
    assert_eq!(c.cmd(&["EXEC"]), b"*-1\r\n");
    assert_eq!(c.cmd(&["HGET", "h", "a"]), b"$1\r\n3\r\n");
    // Renaming a watched hash away is a change too.
    assert_eq!(c.cmd(&["WATCH", "h"]), b"+OK\r\n");
    assert_eq!(other.cmd(&["RENAME", "h", "h2"]), b"+OK\r\n");
    c.cmd(&["MULTI"]);
    c.cmd(&["HLEN", "h2"]);
    assert_eq!(c.cmd(&["EXEC"]), b"*-1\r\n");
    assert_eq!(
        c.cmd(&["HGETALL", "h2"]),
        b"*4\r\n$1\r\na\r\n$1\r\n3\r\n$1\r\nb\r\n$1\r\n1\r\n"
    );
}

#[test]
fn move_carries_a_hash_with_its_field_ttls_to_another_database() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["HSET", "h", "a", "1", "b", "2"]);
    c.cmd(&["HEXPIRE", "h", "100", "FIELDS", "1", "a"]);
    assert_eq!(c.cmd(&["MOVE", "h", "1"]), b":1\r\n");
    assert_eq!(c.cmd(&["EXISTS", "h"]), b":0\r\n");
    assert_eq!(c.cmd(&["SELECT", "1"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["TYPE", "h"]), b"+hash\r\n");
    assert_eq!(
        c.cmd(&["HTTL", "h", "FIELDS", "2", "a", "b"]),
        b"*2\r\n:100\r\n:-1\r\n"
    );
    assert_eq!(c.cmd(&["HGET", "h", "b"]), b"$1\r\n2\r\n");
}
