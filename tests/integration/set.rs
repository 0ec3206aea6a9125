//! Sets: byte-exact replies in RESP2 and RESP3, WRONGTYPE, encodings and
//! their conversions, and the cases of Redis 7.2's `tests/unit/type/set.tcl`
//! that do not need DEBUG.

use std::collections::{BTreeSet, HashMap};

use redis::{Connection, RedisResult, Value};

use crate::support::*;

const WRONGTYPE: &[u8] = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

/// Runs a command through the `redis` crate.
fn q<T: redis::FromRedisValue>(con: &mut Connection, args: &[&str]) -> RedisResult<T> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con)
}

fn int(con: &mut Connection, args: &[&str]) -> i64 {
    q(con, args).unwrap()
}

fn sorted(con: &mut Connection, args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = q(con, args).unwrap();
    v.sort();
    v
}

fn err(con: &mut Connection, args: &[&str]) -> String {
    match q::<Value>(con, args) {
        Err(e) => {
            let code = e.code().unwrap_or("");
            format!("{code} {}", e.detail().unwrap_or("")).trim().to_string()
        }
        Ok(v) => panic!("{args:?} should fail, got {v:?}"),
    }
}

fn encoding(con: &mut Connection, key: &str) -> String {
    q(con, &["OBJECT", "ENCODING", key]).unwrap()
}

fn strs(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn sadd_all(con: &mut Connection, key: &str, members: &[String]) {
    let mut args = vec!["SADD", key];
    args.extend(members.iter().map(String::as_str));
    let _: i64 = q(con, &args).unwrap();
}

#[test]
fn set_commands_reply_byte_exact_in_resp2_and_resp3() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(c.cmd(&["SADD", "s", "3", "1", "2", "1"]), b":3\r\n");
    assert_eq!(
        c.cmd(&["SMEMBERS", "s"]),
        b"*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
    );
    assert_eq!(c.cmd(&["SMEMBERS", "nokey"]), b"*0\r\n");
    assert_eq!(c.cmd(&["SISMEMBER", "s", "2"]), b":1\r\n");
    assert_eq!(c.cmd(&["SISMEMBER", "s", "02"]), b":0\r\n");
    assert_eq!(c.cmd(&["SMISMEMBER", "s", "1", "x"]), b"*2\r\n:1\r\n:0\r\n");
    assert_eq!(c.cmd(&["SCARD", "s"]), b":3\r\n");
    assert_eq!(c.cmd(&["SCARD", "nokey"]), b":0\r\n");
    assert_eq!(c.cmd(&["SPOP", "nokey"]), b"$-1\r\n");
    assert_eq!(c.cmd(&["SPOP", "nokey", "3"]), b"*0\r\n");
    assert_eq!(c.cmd(&["SRANDMEMBER", "nokey"]), b"$-1\r\n");
    assert_eq!(c.cmd(&["SRANDMEMBER", "nokey", "3"]), b"*0\r\n");
    assert_eq!(c.cmd(&["SRANDMEMBER", "s", "0"]), b"*0\r\n");
    assert_eq!(c.cmd(&["SINTER", "s", "nokey"]), b"*0\r\n");
    assert_eq!(c.cmd(&["SSCAN", "nokey", "0"]), b"*2\r\n$1\r\n0\r\n*0\r\n");
    assert_eq!(
        c.cmd(&["SSCAN", "s", "0", "MATCH", "[12]"]),
        b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n"
    );
    assert_eq!(c.cmd(&["TYPE", "s"]), b"+set\r\n");
    // RESP3: the set-valued commands answer with `~`, the others as before.
    c.cmd(&["HELLO", "3"]);
    assert_eq!(
        c.cmd(&["SMEMBERS", "s"]),
        b"~3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
    );
    assert_eq!(c.cmd(&["SMEMBERS", "nokey"]), b"~0\r\n");
    assert_eq!(
        c.cmd(&["SINTER", "s", "s"]),
        b"~3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
    );
    assert_eq!(
        c.cmd(&["SUNION", "s", "nokey"]),
        b"~3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"
    );
    assert_eq!(c.cmd(&["SDIFF", "s", "s"]), b"~0\r\n");
    assert_eq!(c.cmd(&["SPOP", "nokey", "2"]), b"~0\r\n");
    assert_eq!(c.cmd(&["SPOP", "nokey"]), b"_\r\n");
    assert_eq!(c.cmd(&["SRANDMEMBER", "s", "0"]), b"*0\r\n");
    assert_eq!(c.cmd(&["SMISMEMBER", "s", "3"]), b"*1\r\n:1\r\n");
}

#[test]
fn sadd_srem_and_membership_follow_redis() {
    let server = Server::start();
    let mut con = server.redis();
    assert_eq!(int(&mut con, &["SADD", "myset", "foo"]), 1);
    assert_eq!(int(&mut con, &["SADD", "myset", "bar"]), 1);
    assert_eq!(int(&mut con, &["SADD", "myset", "bar"]), 0);
    assert_eq!(int(&mut con, &["SCARD", "myset"]), 2);
    assert_eq!(
        q::<Vec<i64>>(&mut con, &["SMISMEMBER", "myset", "foo", "bla", "bar"]).unwrap(),
        vec![1, 0, 1]
    );
    assert_eq!(sorted(&mut con, &["SMEMBERS", "myset"]), strs(&["bar", "foo"]));
    // Variadic SADD counts only new members.
    assert_eq!(int(&mut con, &["SADD", "myset", "a", "b", "c", "a", "foo"]), 3);
    // SREM with multiple arguments, some absent.
    assert_eq!(int(&mut con, &["SREM", "myset", "k", "k", "k", "a", "b"]), 2);
    assert_eq!(int(&mut con, &["SREM", "nokey", "a"]), 0);
    // Removing the last member deletes the key, even with more args left.
    let _: i64 = q(&mut con, &["DEL", "small"]).unwrap();
    assert_eq!(int(&mut con, &["SADD", "small", "1", "2", "3"]), 3);
    assert_eq!(int(&mut con, &["SREM", "small", "1", "2", "3", "4", "5"]), 3);
    assert_eq!(int(&mut con, &["EXISTS", "small"]), 0);
    // Integers wider than 64 bits are strings.
    assert_eq!(int(&mut con, &["SADD", "big", "213244124402402314402033402"]), 1);
    assert_eq!(encoding(&mut con, "big"), "listpack");
    assert_eq!(
        int(&mut con, &["SISMEMBER", "big", "213244124402402314402033402"]),
        1
    );
    assert!(err(&mut con, &["SMISMEMBER", "myset"]).contains("wrong number of arguments for 'smismember'"));
}

#[test]
fn set_commands_against_another_type_answer_wrongtype() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(c.cmd(&["SET", "str", "x"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["SADD", "s", "a", "b"]), b":2\r\n");
    for cmd in [
        &["SADD", "str", "a"][..],
        &["SREM", "str", "a"],
        &["SMEMBERS", "str"],
        &["SISMEMBER", "str", "a"],
        &["SMISMEMBER", "str", "a"],
        &["SCARD", "str"],
        &["SPOP", "str"],
        &["SPOP", "str", "2"],
        &["SRANDMEMBER", "str"],
        &["SRANDMEMBER", "str", "2"],
        &["SSCAN", "str", "0"],
        &["SINTER", "s", "str"],
        &["SINTER", "nokey", "str"],
        &["SINTERCARD", "2", "str", "nokey"],
        &["SUNION", "s", "str"],
        &["SDIFF", "nokey", "str"],
        &["SDIFF", "s", "str"],
        &["SINTERSTORE", "dst", "s", "str"],
        &["SUNIONSTORE", "dst", "s", "str"],
        &["SDIFFSTORE", "dst", "s", "str"],
        &["SMOVE", "str", "s", "a"],
        &["SMOVE", "s", "str", "a"],
    ] {
        assert_eq!(show(&c.cmd(cmd)), show(WRONGTYPE), "{cmd:?}");
    }
    // A set answers WRONGTYPE to the other types' commands.
    assert_eq!(show(&c.cmd(&["GET", "s"])), show(WRONGTYPE));
    assert_eq!(show(&c.cmd(&["HGET", "s", "a"])), show(WRONGTYPE));
    // Nothing changed on either side.
    assert_eq!(c.cmd(&["SCARD", "s"]), b":2\r\n");
    assert_eq!(c.cmd(&["GET", "str"]), b"$1\r\nx\r\n");
    assert_eq!(c.cmd(&["EXISTS", "dst"]), b":0\r\n");
}

#[test]
fn encodings_convert_up_at_redis_thresholds_and_never_back() {
    let server = Server::start();
    let mut con = server.redis();
    // A non-integer turns a small intset into a listpack...
    assert_eq!(int(&mut con, &["SADD", "a", "1", "2", "3"]), 3);
    assert_eq!(encoding(&mut con, "a"), "intset");
    assert_eq!(int(&mut con, &["SADD", "a", "x"]), 1);
    assert_eq!(encoding(&mut con, "a"), "listpack");
    // ...and an intset over the listpack entry limit into a hashtable.
    let ints: Vec<String> = (0..130).map(|i| i.to_string()).collect();
    sadd_all(&mut con, "b", &ints);
    assert_eq!(encoding(&mut con, "b"), "intset");
    assert_eq!(int(&mut con, &["SADD", "b", "a"]), 1);
    assert_eq!(encoding(&mut con, "b"), "hashtable");
    // 512 integers stay an intset (one SADD or many); the 513th converts.
    for (key, one_command) in [("c1", true), ("c2", false)] {
        let ints: Vec<String> = (0..512).map(|i| i.to_string()).collect();
        if one_command {
            sadd_all(&mut con, key, &ints);
        } else {
            for i in &ints {
                let _: i64 = q(&mut con, &["SADD", key, i]).unwrap();
            }
        }
        assert_eq!(encoding(&mut con, key), "intset");
        assert_eq!(int(&mut con, &["SCARD", key]), 512);
        assert_eq!(int(&mut con, &["SADD", key, "512"]), 1);
        assert_eq!(encoding(&mut con, key), "hashtable");
    }
    // 128 short strings stay a listpack; the 129th converts.
    let mut members = vec!["a".to_string()];
    members.extend((0..127).map(|i| i.to_string()));
    sadd_all(&mut con, "d", &members);
    assert_eq!(encoding(&mut con, "d"), "listpack");
    assert_eq!(int(&mut con, &["SCARD", "d"]), 128);
    assert_eq!(int(&mut con, &["SADD", "d", "b"]), 1);
    assert_eq!(encoding(&mut con, "d"), "hashtable");
    // A member over 64 bytes converts at once.
    assert_eq!(int(&mut con, &["SADD", "e", "x"]), 1);
    assert_eq!(int(&mut con, &["SADD", "e", &"y".repeat(65)]), 1);
    assert_eq!(encoding(&mut con, "e"), "hashtable");
    // Removals never convert back.
    let _: i64 = q(&mut con, &["SREM", "e", &"y".repeat(65)]).unwrap();
    assert_eq!(encoding(&mut con, "e"), "hashtable");
    assert_eq!(sorted(&mut con, &["SMEMBERS", "e"]), strs(&["x"]));
    // Memory usage follows the representation.
    let usage = |con: &mut Connection, key: &str| -> i64 { q(con, &["MEMORY", "USAGE", key]).unwrap() };
    assert!(usage(&mut con, "c1") > usage(&mut con, "a"));
}

#[test]
fn intersections_unions_and_differences_treat_missing_keys_as_empty() {
    let server = Server::start();
    let mut con = server.redis();
    for (key, members) in [
        ("s1", &["a", "b", "c", "1", "2"][..]),
        ("s2", &["b", "c", "d", "2", "3"]),
        ("s3", &["c", "2", "z"]),
    ] {
        let mut args = vec!["SADD", key];
        args.extend(members);
        let _: i64 = q(&mut con, &args).unwrap();
    }
    assert_eq!(sorted(&mut con, &["SINTER", "s1", "s2"]), strs(&["2", "b", "c"]));
    assert_eq!(sorted(&mut con, &["SINTER", "s1", "s2", "s3"]), strs(&["2", "c"]));
    assert_eq!(sorted(&mut con, &["SINTER", "s1", "nokey"]), strs(&[]));
    assert_eq!(
        sorted(&mut con, &["SINTER", "s1", "s1", "s1"]),
        sorted(&mut con, &["SMEMBERS", "s1"])
    );
    assert_eq!(
        sorted(&mut con, &["SUNION", "s1", "nokey", "s3"]),
        strs(&["1", "2", "a", "b", "c", "z"])
    );
    assert_eq!(
        sorted(&mut con, &["SDIFF", "s1", "s2", "nokey"]),
        strs(&["1", "a"])
    );
    assert_eq!(sorted(&mut con, &["SDIFF", "s1", "s2", "s3"]), strs(&["1", "a"]));
    assert_eq!(sorted(&mut con, &["SDIFF", "nokey", "s1"]), strs(&[]));
    assert_eq!(sorted(&mut con, &["SDIFF", "s1", "s1"]), strs(&[]));
    // Same integers in different encodings intersect.
    let _: i64 = q(&mut con, &["SADD", "i1", "1", "2", "3"]).unwrap();
    let _: i64 = q(&mut con, &["SADD", "i2", "1", "2", "3", "a"]).unwrap();
    let _: i64 = q(&mut con, &["SREM", "i2", "a"]).unwrap();
    assert_eq!(encoding(&mut con, "i1"), "intset");
    assert_eq!(encoding(&mut con, "i2"), "listpack");
    assert_eq!(sorted(&mut con, &["SINTER", "i1", "i2"]), strs(&["1", "2", "3"]));
}

#[test]
fn sdiff_matches_a_model_on_random_sets() {
    let server = Server::start();
    let mut con = server.redis();
    let mut seed = 42u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    for round in 0..20 {
        let mut model: Vec<BTreeSet<String>> = Vec::new();
        for k in 0..3 {
            let key = format!("f{k}");
            let _: i64 = q(&mut con, &["DEL", &key]).unwrap();
            let n = next() % 200;
            let members: BTreeSet<String> = (0..n)
                .map(|_| {
                    if round % 2 == 0 {
                        (next() % 300).to_string()
                    } else {
                        format!("m{}", next() % 300)
                    }
                })
                .collect();
            if !members.is_empty() {
                sadd_all(&mut con, &key, &members.iter().cloned().collect::<Vec<_>>());
            }
            model.push(members);
        }
        let expected: Vec<String> = model[0]
            .iter()
            .filter(|m| !model[1].contains(*m) && !model[2].contains(*m))
            .cloned()
            .collect();
        assert_eq!(
            sorted(&mut con, &["SDIFF", "f0", "f1", "f2"]),
            expected,
            "round {round}"
        );
        let inter: Vec<String> = model[0]
            .iter()
            .filter(|m| model[1].contains(*m) && model[2].contains(*m))
            .cloned()
            .collect();
        assert_eq!(
            sorted(&mut con, &["SINTER", "f0", "f1", "f2"]),
            inter,
            "round {round}"
        );
        assert_eq!(
            int(&mut con, &["SINTERCARD", "3", "f0", "f1", "f2"]),
            inter.len() as i64
        );
    }
}

#[test]
fn store_commands_overwrite_the_destination_and_delete_it_when_empty() {
    let server = Server::start();
    let mut con = server.redis();
    let _: i64 = q(&mut con, &["SADD", "s1", "a", "b", "c", "1", "3", "6", "x"]).unwrap();
    let _: i64 = q(&mut con, &["SADD", "s2", "e", "f", "1", "2", "3", "a"]).unwrap();
    // The destination may hold anything, with a TTL: it is replaced.
    let _: () = q(&mut con, &["SET", "dst", "string", "EX", "100"]).unwrap();
    assert_eq!(int(&mut con, &["SINTERSTORE", "dst", "s1", "s2"]), 3);
    assert_eq!(sorted(&mut con, &["SMEMBERS", "dst"]), strs(&["1", "3", "a"]));
    assert_eq!(int(&mut con, &["TTL", "dst"]), -1);
    assert_eq!(int(&mut con, &["SUNIONSTORE", "dst", "s1", "s2"]), 10);
    assert_eq!(int(&mut con, &["SCARD", "dst"]), 10);
    assert_eq!(encoding(&mut con, "dst"), "listpack");
    assert_eq!(int(&mut con, &["SDIFFSTORE", "dst", "s1", "s2"]), 4);
    assert_eq!(
        sorted(&mut con, &["SMEMBERS", "dst"]),
        strs(&["6", "b", "c", "x"])
    );
    // The destination may be one of the sources.
    assert_eq!(int(&mut con, &["SINTERSTORE", "s1", "s1", "s2"]), 3);
    assert_eq!(sorted(&mut con, &["SMEMBERS", "s1"]), strs(&["1", "3", "a"]));
    // An empty result deletes the destination.
    for cmd in [
        &["SINTERSTORE", "dst", "s1", "nokey"][..],
        &["SUNIONSTORE", "dst", "nokey", "nokey2"],
        &["SDIFFSTORE", "dst", "nokey", "s1"],
        &["SDIFFSTORE", "dst", "s1", "s1"],
    ] {
        let _: i64 = q(&mut con, &["SADD", "dst", "old"]).unwrap();
        assert_eq!(int(&mut con, cmd), 0, "{cmd:?}");
        assert_eq!(int(&mut con, &["EXISTS", "dst"]), 0, "{cmd:?}");
    }
    // An intersection of listpacks or hashtables holding only integers is an intset.
    let _: i64 = q(&mut con, &["DEL", "h1", "h2"]).unwrap();
    let _: i64 = q(&mut con, &["SADD", "h1", "a", "b", "c", "444"]).unwrap();
    let _: i64 = q(&mut con, &["SADD", "h2", "e", "f", "g", "111"]).unwrap();
    let ints: Vec<String> = (1..130).map(|i| i.to_string()).collect();
    sadd_all(&mut con, "h1", &ints);
    sadd_all(&mut con, "h2", &ints);
    assert_eq!(encoding(&mut con, "h1"), "hashtable");
    assert_eq!(int(&mut con, &["SINTERSTORE", "res", "h1", "h2"]), 129);
    assert_eq!(encoding(&mut con, "res"), "intset");
}

#[test]
fn sintercard_counts_with_a_limit_and_rejects_bad_arguments() {
    let server = Server::start();
    let mut con = server.redis();
    let _: i64 = q(&mut con, &["SADD", "a", "1", "2", "3", "x", "y"]).unwrap();
    let _: i64 = q(&mut con, &["SADD", "b", "1", "2", "3", "x", "z"]).unwrap();
    assert_eq!(int(&mut con, &["SINTERCARD", "2", "a", "b"]), 4);
    assert_eq!(int(&mut con, &["SINTERCARD", "2", "a", "b", "LIMIT", "0"]), 4);
    assert_eq!(int(&mut con, &["SINTERCARD", "2", "a", "b", "limit", "2"]), 2);
    assert_eq!(int(&mut con, &["SINTERCARD", "2", "a", "b", "LIMIT", "10"]), 4);
    assert_eq!(int(&mut con, &["SINTERCARD", "1", "nokey", "LIMIT", "10"]), 0);
    assert_eq!(int(&mut con, &["SINTERCARD", "2", "a", "nokey"]), 0);
    // Big sets (past the 1024-candidate chunks the limit is checked at).
    let common: Vec<String> = (0..3000).map(|i| format!("m{i}")).collect();
    sadd_all(&mut con, "big1", &common);
    sadd_all(&mut con, "big2", &common);
    let _: i64 = q(&mut con, &["SADD", "big2", "only-here"]).unwrap();
    assert_eq!(int(&mut con, &["SINTERCARD", "2", "big1", "big2"]), 3000);
    assert_eq!(
        int(&mut con, &["SINTERCARD", "2", "big1", "big2", "LIMIT", "5"]),
        5
    );
    assert_eq!(
        int(&mut con, &["SINTERCARD", "2", "big1", "big2", "LIMIT", "2500"]),
        2500
    );
    assert_eq!(
        int(&mut con, &["SINTERCARD", "2", "big1", "big2", "LIMIT", "5000"]),
        3000
    );
    assert_eq!(
        err(&mut con, &["SINTERCARD", "1"]),
        "ERR wrong number of arguments for 'sintercard' command"
    );
    assert_eq!(
        err(&mut con, &["SINTERCARD", "0", "a"]),
        "ERR numkeys should be greater than 0"
    );
    assert_eq!(
        err(&mut con, &["SINTERCARD", "x", "a"]),
        "ERR numkeys should be greater than 0"
    );
    assert_eq!(
        err(&mut con, &["SINTERCARD", "2", "a"]),
        "ERR Number of keys can't be greater than number of args"
    );
    assert_eq!(err(&mut con, &["SINTERCARD", "1", "a", "b"]), "ERR syntax error");
    assert_eq!(
        err(&mut con, &["SINTERCARD", "1", "a", "LIMIT"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut con, &["SINTERCARD", "1", "a", "LIMIT", "-1"]),
        "ERR LIMIT can't be negative"
    );
    assert_eq!(
        err(&mut con, &["SINTERCARD", "1", "a", "LIMIT", "a"]),
        "ERR LIMIT can't be negative"
    );
}

#[test]
fn spop_removes_what_it_returns_in_every_encoding() {
    let server = Server::start();
    let mut con = server.redis();
    let cases: [(&str, Vec<String>); 3] = [
        ("ints", (0..100).map(|i| i.to_string()).collect()),
        ("pack", (0..100).map(|i| format!("m{i}")).collect()),
        ("table", (0..1000).map(|i| format!("m{i}")).collect()),
    ];
    for (key, members) in &cases {
        sadd_all(&mut con, key, members);
        let all: BTreeSet<String> = members.iter().cloned().collect();
        let mut popped = BTreeSet::new();
        // One at a time, then with counts, then the rest at once.
        let one: String = q(&mut con, &["SPOP", key]).unwrap();
        assert!(popped.insert(one));
        let some: Vec<String> = q(&mut con, &["SPOP", key, "1"]).unwrap();
        assert_eq!(some.len(), 1);
        popped.extend(some);
        let ten: Vec<String> = q(&mut con, &["SPOP", key, "10"]).unwrap();
        assert_eq!(ten.len(), 10);
        popped.extend(ten);
        assert_eq!(popped.len(), 12);
        let none: Vec<String> = q(&mut con, &["SPOP", key, "0"]).unwrap();
        assert!(none.is_empty());
        assert_eq!(int(&mut con, &["SCARD", key]), members.len() as i64 - 12);
        let rest: Vec<String> = q(&mut con, &["SPOP", key, &(members.len() + 5).to_string()]).unwrap();
        assert_eq!(rest.len(), members.len() - 12);
        popped.extend(rest);
        assert_eq!(popped, all, "{key}");
        assert_eq!(int(&mut con, &["EXISTS", key]), 0);
    }
    let _: i64 = q(&mut con, &["SADD", "x", "a"]).unwrap();
    assert_eq!(
        err(&mut con, &["SPOP", "x", "-1"]),
        "ERR value is out of range, must be positive"
    );
    assert_eq!(
        err(&mut con, &["SPOP", "x", "a"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(err(&mut con, &["SPOP", "x", "1", "2"]), "ERR syntax error");
}

#[test]
fn srandmember_counts_give_distinct_members_or_repeats() {
    let server = Server::start();
    let mut con = server.redis();
    let cases: [(&str, Vec<String>); 3] = [
        ("ints", (0..50).map(|i| i.to_string()).collect()),
        ("pack", (0..50).map(|i| format!("m{i}")).collect()),
        ("table", (0..500).map(|i| format!("m{i}")).collect()),
    ];
    for (key, members) in &cases {
        sadd_all(&mut con, key, members);
        let all: BTreeSet<String> = members.iter().cloned().collect();
        let one: String = q(&mut con, &["SRANDMEMBER", key]).unwrap();
        assert!(all.contains(&one));
        // Positive: distinct, at most the set.
        for n in [1usize, 5, members.len() - 1, members.len(), members.len() + 10] {
            let got: Vec<String> = q(&mut con, &["SRANDMEMBER", key, &n.to_string()]).unwrap();
            let distinct: BTreeSet<String> = got.iter().cloned().collect();
            assert_eq!(got.len(), n.min(members.len()));
            assert_eq!(distinct.len(), got.len());
            assert!(distinct.is_subset(&all));
        }
        // Negative: exactly |count|, repeats allowed (and expected here).
        let got: Vec<String> = q(&mut con, &["SRANDMEMBER", key, "-2000"]).unwrap();
        assert_eq!(got.len(), 2000);
        let mut histogram: HashMap<&str, usize> = HashMap::new();
        for m in &got {
            assert!(all.contains(m));
            *histogram.entry(m).or_default() += 1;
        }
        assert!(histogram.values().any(|&n| n > 1));
        // Reading changes nothing.
        assert_eq!(int(&mut con, &["SCARD", key]), members.len() as i64);
    }
    assert!(err(&mut con, &["SRANDMEMBER", "ints", "-9223372036854775808"]).contains("value is out of range"));
    assert_eq!(
        err(&mut con, &["SRANDMEMBER", "ints", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut con, &["SRANDMEMBER", "ints", "1", "2"]),
        "ERR syntax error"
    );
}

#[test]
fn smove_moves_one_member_and_handles_edge_cases() {
    let server = Server::start();
    let mut con = server.redis();
    let _: i64 = q(&mut con, &["SADD", "src", "a", "b", "c"]).unwrap();
    let _: i64 = q(&mut con, &["SADD", "ints", "1", "2", "3"]).unwrap();
    // From a listpack into an intset: the destination converts.
    assert_eq!(int(&mut con, &["SMOVE", "src", "ints", "a"]), 1);
    assert_eq!(sorted(&mut con, &["SMEMBERS", "src"]), strs(&["b", "c"]));
    assert_eq!(
        sorted(&mut con, &["SMEMBERS", "ints"]),
        strs(&["1", "2", "3", "a"])
    );
    assert_eq!(encoding(&mut con, "ints"), "listpack");
    // A member missing from the source, or a missing source: 0, nothing changes.
    assert_eq!(int(&mut con, &["SMOVE", "src", "ints", "zz"]), 0);
    assert_eq!(int(&mut con, &["SMOVE", "nokey", "ints", "b"]), 0);
    assert_eq!(int(&mut con, &["EXISTS", "nokey"]), 0);
    // Into a missing destination: created with the member's encoding.
    let _: i64 = q(&mut con, &["SADD", "src", "7"]).unwrap();
    assert_eq!(int(&mut con, &["SMOVE", "src", "fresh", "7"]), 1);
    assert_eq!(encoding(&mut con, "fresh"), "intset");
    assert_eq!(int(&mut con, &["SMOVE", "src", "fresh2", "b"]), 1);
    assert_eq!(encoding(&mut con, "fresh2"), "listpack");
    // Already in the destination: removed from the source, still 1.
    let _: i64 = q(&mut con, &["SADD", "fresh2", "c"]).unwrap();
    assert_eq!(int(&mut con, &["SMOVE", "src", "fresh2", "c"]), 1);
    // The source emptied is deleted.
    assert_eq!(int(&mut con, &["EXISTS", "src"]), 0);
    // Identical source and destination: membership, no change.
    assert_eq!(int(&mut con, &["SMOVE", "ints", "ints", "a"]), 1);
    assert_eq!(int(&mut con, &["SMOVE", "ints", "ints", "zz"]), 0);
    assert_eq!(int(&mut con, &["SCARD", "ints"]), 4);
    // Wrong types: the source missing wins over a wrong destination.
    let _: () = q(&mut con, &["SET", "str", "x"]).unwrap();
    assert_eq!(int(&mut con, &["SMOVE", "nokey", "str", "a"]), 0);
    assert!(err(&mut con, &["SMOVE", "ints", "str", "zz"]).starts_with("WRONGTYPE"));
    assert!(err(&mut con, &["SMOVE", "str", "ints", "a"]).starts_with("WRONGTYPE"));
    assert_eq!(int(&mut con, &["SCARD", "ints"]), 4);
}

#[test]
fn sscan_returns_every_member_across_cursors_with_match_and_count() {
    let server = Server::start();
    let mut con = server.redis();
    let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    sadd_all(&mut con, "big", &members);
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let (next, batch): (String, Vec<String>) =
            q(&mut con, &["SSCAN", "big", &cursor, "COUNT", "20"]).unwrap();
        seen.extend(batch);
        calls += 1;
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert!(calls > 10);
    assert_eq!(seen.len(), 1000);
    // MATCH filters what is returned.
    let mut matched = BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, batch): (String, Vec<String>) =
            q(&mut con, &["SSCAN", "big", &cursor, "MATCH", "m1?"]).unwrap();
        matched.extend(batch);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(
        matched,
        (10..20).map(|i| format!("m{i}")).collect::<BTreeSet<String>>()
    );
    // A small set comes back whole, integers included.
    let _: i64 = q(&mut con, &["SADD", "ints", "1", "2", "3", "10"]).unwrap();
    let (next, batch): (String, Vec<String>) = q(&mut con, &["SSCAN", "ints", "0", "MATCH", "1*"]).unwrap();
    assert_eq!(
        (next.as_str(), batch),
        ("0", vec!["1".to_string(), "10".to_string()])
    );
    assert_eq!(err(&mut con, &["SSCAN", "big", "x"]), "ERR invalid cursor");
    assert_eq!(
        err(&mut con, &["SSCAN", "big", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut con, &["SSCAN", "big", "0", "NOVALUES"]),
        "ERR syntax error"
    );
}

#[test]
fn renamed_and_moved_sets_keep_their_members_and_encoding() {
    let server = Server::start();
    let mut con = server.redis();
    let big: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    sadd_all(&mut con, "big", &big);
    let _: i64 = q(&mut con, &["SADD", "ints", "1", "2", "3"]).unwrap();
    let _: i64 = q(&mut con, &["EXPIRE", "ints", "1000"]).unwrap();
    let _: () = q(&mut con, &["RENAME", "big", "big2"]).unwrap();
    assert_eq!(int(&mut con, &["EXISTS", "big"]), 0);
    assert_eq!(int(&mut con, &["SCARD", "big2"]), 300);
    assert_eq!(encoding(&mut con, "big2"), "hashtable");
    let _: () = q(&mut con, &["RENAME", "ints", "ints2"]).unwrap();
    assert_eq!(encoding(&mut con, "ints2"), "intset");
    assert!(int(&mut con, &["TTL", "ints2"]) > 900);
    assert_eq!(int(&mut con, &["MOVE", "ints2", "1"]), 1);
    let _: () = q(&mut con, &["SELECT", "1"]).unwrap();
    assert_eq!(sorted(&mut con, &["SMEMBERS", "ints2"]), strs(&["1", "2", "3"]));
    assert_eq!(q::<String>(&mut con, &["TYPE", "ints2"]).unwrap(), "set");
}

/// A tiny deterministic generator for the model test.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn random_set_writes_match_a_model_and_replay_from_the_wal_identically() {
    let data = tempfile::tempdir().unwrap();
    let keys = ["k0", "k1", "k2", "k3"];
    let mut model: HashMap<&str, BTreeSet<String>> = HashMap::new();
    let mut rng = Lcg(17);
    {
        let server = Server::with_wal(data.path(), &["--fsync", "always"]);
        let mut con = server.redis();
        for step in 0..3000 {
            let key = keys[rng.below(4) as usize];
            let other = keys[rng.below(4) as usize];
            // Members: small integers, short strings and long strings, so
            // every encoding and conversion shows up.
            let member = match rng.below(3) {
                0 => rng.below(700).to_string(),
                1 => format!("s{}", rng.below(200)),
                _ => format!("{}{}", "long".repeat(20), rng.below(50)),
            };
            match rng.below(10) {
                0..=3 => {
                    let added = int(&mut con, &["SADD", key, &member]);
                    assert_eq!(
                        added == 1,
                        model.entry(key).or_default().insert(member),
                        "step {step}"
                    );
                }
                4 | 5 => {
                    let removed = int(&mut con, &["SREM", key, &member]);
                    let was = model.get_mut(key).is_some_and(|s| s.remove(&member));
                    assert_eq!(removed == 1, was, "step {step}");
                }
                6 => {
                    let n = rng.below(4).to_string();
                    let popped: Vec<String> = q(&mut con, &["SPOP", key, &n]).unwrap();
                    for m in &popped {
                        assert!(
                            model.get_mut(key).is_some_and(|s| s.remove(m)),
                            "step {step}: popped {m}"
                        );
                    }
                }
                7 => {
                    let moved = int(&mut con, &["SMOVE", key, other, &member]);
                    let in_src = model.get(key).is_some_and(|s| s.contains(&member));
                    assert_eq!(moved == 1, in_src, "step {step}");
                    if in_src && key != other {
                        model.get_mut(key).map(|s| s.remove(&member));
                        model.entry(other).or_default().insert(member);
                    }
                }
                _ => {
                    let (a, b) = (keys[rng.below(4) as usize], keys[rng.below(4) as usize]);
                    let empty = BTreeSet::new();
                    let (sa, sb) = (model.get(a).unwrap_or(&empty), model.get(b).unwrap_or(&empty));
                    let (cmd, result): (&str, BTreeSet<String>) = match rng.below(3) {
                        0 => ("SINTERSTORE", sa.intersection(sb).cloned().collect()),
                        1 => ("SUNIONSTORE", sa.union(sb).cloned().collect()),
                        _ => ("SDIFFSTORE", sa.difference(sb).cloned().collect()),
                    };
                    assert_eq!(
                        int(&mut con, &[cmd, key, a, b]),
                        result.len() as i64,
                        "step {step}"
                    );
                    model.insert(key, result);
                }
            }
            model.retain(|_, s| !s.is_empty());
        }
        for key in keys {
            let expected: Vec<String> = model
                .get(key)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            assert_eq!(sorted(&mut con, &["SMEMBERS", key]), expected, "{key}");
        }
    }
    // The server was killed on drop; the log alone rebuilds every set.
    let server = Server::with_wal(data.path(), &["--fsync", "always"]);
    let mut con = server.redis();
    for key in keys {
        let expected: Vec<String> = model
            .get(key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        assert_eq!(
            sorted(&mut con, &["SMEMBERS", key]),
            expected,
            "{key} after replay"
        );
    }
}

#[test]
fn concurrent_smoves_between_two_sets_never_lose_or_duplicate_a_member() {
    let server = Server::with_args(&["--workers", "4"]);
    let mut con = server.redis();
    let members: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    sadd_all(&mut con, "left", &members);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let mut con = server.redis();
            std::thread::spawn(move || {
                let mut rng = Lcg(t + 1);
                for _ in 0..500 {
                    let m = format!("m{}", rng.below(100));
                    let (src, dst) = if rng.below(2) == 0 {
                        ("left", "right")
                    } else {
                        ("right", "left")
                    };
                    let moved = int(&mut con, &["SMOVE", src, dst, &m]);
                    assert!(moved == 0 || moved == 1);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let left = sorted(&mut con, &["SMEMBERS", "left"]);
    let right = sorted(&mut con, &["SMEMBERS", "right"]);
    assert_eq!(left.len() + right.len(), 100);
    let union: BTreeSet<String> = left.into_iter().chain(right).collect();
    assert_eq!(union.len(), 100);
    assert_eq!(int(&mut con, &["SINTERCARD", "2", "left", "right"]), 0);
}
