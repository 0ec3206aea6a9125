//! Sorted sets: byte-exact replies in RESP2 and RESP3, WRONGTYPE both ways,
//! and the cases of Redis 7.2's `tests/unit/type/zset.tcl` that need no
//! DEBUG or CONFIG — each run once on a listpack-encoded set and once on a
//! skiplist-encoded one (forced by growing the set past 128 members and
//! shrinking it back: sets never convert back on their own).

use crate::support::*;

const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
const ENCODINGS: [&str; 2] = ["listpack", "skiplist"];

/// A RESP2 array of bulk strings.
fn bulks(items: &[&str]) -> String {
    let mut out = format!("*{}\r\n", items.len());
    for i in items {
        out.push_str(&format!("${}\r\n{i}\r\n", i.len()));
    }
    out
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

fn err(message: &str) -> String {
    format!("-{message}\r\n")
}

fn cmd(c: &mut Raw, args: &[&str]) -> String {
    show(&c.cmd(args))
}

/// Creates `key` holding `pairs` (score, member, …) in `encoding`.
fn create(c: &mut Raw, encoding: &str, key: &str, pairs: &[&str]) {
    cmd(c, &["DEL", key]);
    let fill: Vec<String> = (0..130).map(|i| format!("__fill{i}")).collect();
    if encoding == "skiplist" {
        let mut args = vec!["ZADD".to_string(), key.to_string()];
        for f in &fill {
            args.push("0".into());
            args.push(f.clone());
        }
        assert_eq!(show(&c.cmd(&args)), ":130\r\n");
    }
    let mut args = vec!["ZADD", key];
    args.extend_from_slice(pairs);
    let added = cmd(c, &args);
    assert_eq!(added, format!(":{}\r\n", pairs.len() / 2), "{args:?}");
    if encoding == "skiplist" {
        let mut args = vec!["ZREM".to_string(), key.to_string()];
        args.extend(fill.iter().cloned());
        assert_eq!(show(&c.cmd(&args)), ":130\r\n");
    }
    assert_eq!(cmd(c, &["OBJECT", "ENCODING", key]), bulk(encoding));
}

/// A connection switched to RESP3.
fn resp3(server: &Server) -> Raw {
    let mut c = server.raw();
    assert!(c.cmd(&["HELLO", "3"]).starts_with(b"%"));
    c
}

#[test]
fn basic_zset_commands_reply_byte_exact_in_both_encodings() {
    let server = Server::start();
    let mut c = server.raw();
    for enc in ENCODINGS {
        create(&mut c, enc, "z", &["1", "a", "2", "b", "3", "c"]);
        assert_eq!(cmd(&mut c, &["TYPE", "z"]), "+zset\r\n");
        assert_eq!(cmd(&mut c, &["ZCARD", "z"]), ":3\r\n");
        assert_eq!(cmd(&mut c, &["ZCARD", "nokey"]), ":0\r\n");
        assert_eq!(cmd(&mut c, &["ZSCORE", "z", "b"]), bulk("2"));
        assert_eq!(cmd(&mut c, &["ZSCORE", "z", "zz"]), "$-1\r\n");
        assert_eq!(cmd(&mut c, &["ZSCORE", "nokey", "a"]), "$-1\r\n");
        assert_eq!(
            cmd(&mut c, &["ZMSCORE", "z", "a", "zz", "c"]),
            "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n"
        );
        assert_eq!(cmd(&mut c, &["ZMSCORE", "nokey", "a"]), "*1\r\n$-1\r\n");
        assert_eq!(cmd(&mut c, &["ZRANK", "z", "a"]), ":0\r\n");
        assert_eq!(cmd(&mut c, &["ZRANK", "z", "c"]), ":2\r\n");
        assert_eq!(cmd(&mut c, &["ZREVRANK", "z", "a"]), ":2\r\n");
        assert_eq!(cmd(&mut c, &["ZRANK", "z", "zz"]), "$-1\r\n");
        assert_eq!(
            cmd(&mut c, &["ZRANK", "z", "b", "WITHSCORE"]),
            "*2\r\n:1\r\n$1\r\n2\r\n"
        );
        assert_eq!(
            cmd(&mut c, &["ZREVRANK", "z", "c", "WITHSCORE"]),
            "*2\r\n:0\r\n$1\r\n3\r\n"
        );
        assert_eq!(cmd(&mut c, &["ZRANK", "z", "zz", "WITHSCORE"]), "*-1\r\n");
        assert_eq!(
            cmd(&mut c, &["ZRANK", "z", "a", "WITHSCORES"]),
            err("ERR syntax error")
        );
        assert_eq!(cmd(&mut c, &["ZINCRBY", "z", "1.5", "a"]), bulk("2.5"));
        assert_eq!(cmd(&mut c, &["ZINCRBY", "z", "-0.1", "a"]), bulk("2.4"));
        assert_eq!(cmd(&mut c, &["ZINCRBY", "z", "5", "new"]), bulk("5"));
        assert_eq!(cmd(&mut c, &["ZREM", "z", "new", "zz", "a"]), ":2\r\n");
        assert_eq!(cmd(&mut c, &["ZREM", "nokey", "a"]), ":0\r\n");
        assert_eq!(cmd(&mut c, &["ZREM", "z", "b", "c"]), ":2\r\n");
        assert_eq!(
            cmd(&mut c, &["EXISTS", "z"]),
            ":0\r\n",
            "an emptied zset is deleted"
        );
    }
}

#[test]
fn zadd_options_follow_redis_in_both_encodings() {
    let server = Server::start();
    let mut c = server.raw();
    for enc in ENCODINGS {
        create(&mut c, enc, "z", &["10", "x"]);
        // XX only updates, NX only adds.
        assert_eq!(cmd(&mut c, &["ZADD", "z", "XX", "20", "x", "5", "y"]), ":0\r\n");
        assert_eq!(cmd(&mut c, &["ZSCORE", "z", "x"]), bulk("20"));
        assert_eq!(cmd(&mut c, &["ZSCORE", "z", "y"]), "$-1\r\n");
        assert_eq!(cmd(&mut c, &["ZADD", "z", "NX", "30", "x", "5", "y"]), ":1\r\n");
        assert_eq!(cmd(&mut c, &["ZSCORE", "z", "x"]), bulk("20"));
        // CH counts changed members too.
        assert_eq!(
            cmd(&mut c, &["ZADD", "z", "CH", "21", "x", "5", "y", "1", "w"]),
            ":2\r\n"
        );
        // GT/LT only move scores one way; new members are still added.
        assert_eq!(
            cmd(&mut c, &["ZADD", "z", "GT", "CH", "1", "x", "100", "y", "7", "v"]),
            ":2\r\n"
        );
        assert_eq!(
            cmd(&mut c, &["ZMSCORE", "z", "x", "y", "v"]),
            "*3\r\n$2\r\n21\r\n$3\r\n100\r\n$1\r\n7\r\n"
        );
        assert_eq!(
            cmd(&mut c, &["ZADD", "z", "LT", "CH", "50", "x", "1", "y"]),
            ":1\r\n"
        );
        assert_eq!(
            cmd(&mut c, &["ZMSCORE", "z", "x", "y"]),
            "*2\r\n$2\r\n21\r\n$1\r\n1\r\n"
        );
        assert_eq!(
            cmd(
                &mut c,
                &["ZADD", "z", "XX", "GT", "CH", "99", "x", "99", "absent"]
            ),
            ":1\r\n"
        );
        assert_eq!(cmd(&mut c, &["ZSCORE", "z", "absent"]), "$-1\r\n");
        // INCR returns the new score, or nil when a flag blocked it.
        assert_eq!(cmd(&mut c, &["ZADD", "z", "INCR", "1", "x"]), bulk("100"));
        assert_eq!(cmd(&mut c, &["ZADD", "z", "NX", "INCR", "1", "x"]), "$-1\r\n");
        assert_eq!(cmd(&mut c, &["ZADD", "z", "XX", "INCR", "1", "nope"]), "$-1\r\n");
        assert_eq!(cmd(&mut c, &["ZADD", "z", "GT", "INCR", "-1", "x"]), "$-1\r\n");
        assert_eq!(cmd(&mut c, &["ZADD", "z", "LT", "INCR", "-1", "x"]), bulk("99"));
        assert_eq!(cmd(&mut c, &["ZADD", "z", "INCR", "3", "fresh"]), bulk("3"));
        // Re-adding the same score is not a change.
        assert_eq!(cmd(&mut c, &["ZADD", "z", "CH", "3", "fresh"]), ":0\r\n");
    }
    // XX on a missing key creates nothing.
    assert_eq!(cmd(&mut c, &["ZADD", "ghost", "XX", "1", "a"]), ":0\r\n");
    assert_eq!(cmd(&mut c, &["EXISTS", "ghost"]), ":0\r\n");
}

#[test]
fn zadd_and_zincrby_errors_match_redis_and_change_nothing() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(cmd(&mut c, &["ZADD", "z", "1", "a"]), ":1\r\n");
    for (args, message) in [
        (&["ZADD", "z", "abc", "b"][..], "ERR value is not a valid float"),
        (&["ZADD", "z", "nan", "b"], "ERR value is not a valid float"),
        (
            &["ZADD", "z", "1", "b", "x", "c"],
            "ERR value is not a valid float",
        ),
        (&["ZADD", "z", "NX", "1"], "ERR syntax error"),
        (&["ZADD", "z", "1", "b", "2"], "ERR syntax error"),
        (
            &["ZADD", "z", "NX", "XX", "1", "b"],
            "ERR XX and NX options at the same time are not compatible",
        ),
        (
            &["ZADD", "z", "NX", "GT", "1", "b"],
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ),
        (
            &["ZADD", "z", "GT", "LT", "1", "b"],
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ),
        (
            &["ZADD", "z", "INCR", "1", "b", "2", "c"],
            "ERR INCR option supports a single increment-element pair",
        ),
        (&["ZINCRBY", "z", "abc", "a"], "ERR value is not a valid float"),
        (&["ZADD", "z"], "ERR wrong number of arguments for 'zadd' command"),
    ] {
        assert_eq!(cmd(&mut c, args), err(message), "{args:?}");
    }
    assert_eq!(
        cmd(&mut c, &["ZCARD", "z"]),
        ":1\r\n",
        "a refused ZADD adds nothing"
    );
    // inf + -inf is NaN: refused, the score is unchanged.
    assert_eq!(cmd(&mut c, &["ZADD", "inf", "+inf", "m"]), ":1\r\n");
    assert_eq!(
        cmd(&mut c, &["ZINCRBY", "inf", "-inf", "m"]),
        err("ERR resulting score is not a number (NaN)")
    );
    assert_eq!(
        cmd(&mut c, &["ZADD", "inf", "INCR", "-inf", "m"]),
        err("ERR resulting score is not a number (NaN)")
    );
    assert_eq!(cmd(&mut c, &["ZSCORE", "inf", "m"]), bulk("inf"));
    assert_eq!(cmd(&mut c, &["ZADD", "inf", "-inf", "n", "-0", "zero"]), ":2\r\n");
    assert_eq!(
        cmd(&mut c, &["ZRANGE", "inf", "0", "-1", "WITHSCORES"]),
        bulks(&["n", "-inf", "zero", "0", "m", "inf"])
    );
}

#[test]
fn wrongtype_is_answered_both_ways() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(cmd(&mut c, &["SET", "s", "v"]), "+OK\r\n");
    for args in [
        &["ZADD", "s", "1", "a"][..],
        &["ZINCRBY", "s", "1", "a"],
        &["ZSCORE", "s", "a"],
        &["ZCARD", "s"],
        &["ZRANGE", "s", "0", "-1"],
        &["ZRANGEBYSCORE", "s", "-inf", "+inf"],
        &["ZPOPMIN", "s"],
        &["ZPOPMIN", "s", "0"],
        &["ZREM", "s", "a"],
        &["ZRANK", "s", "a"],
        &["ZSCAN", "s", "0"],
        &["ZUNION", "1", "s"],
        &["ZMPOP", "1", "s", "MIN"],
        &["ZRANGESTORE", "dst", "s", "0", "-1"],
    ] {
        assert_eq!(cmd(&mut c, args), WRONGTYPE, "{args:?}");
    }
    assert_eq!(cmd(&mut c, &["ZADD", "z", "1", "a"]), ":1\r\n");
    assert_eq!(cmd(&mut c, &["GET", "z"]), WRONGTYPE);
    assert_eq!(cmd(&mut c, &["HSET", "z", "f", "v"]), WRONGTYPE);
}

#[test]
fn zrange_by_rank_score_and_lex_selects_like_redis_in_both_encodings() {
    let server = Server::start();
    let mut c = server.raw();
    for enc in ENCODINGS {
        create(
            &mut c,
            enc,
            "z",
            &["-inf", "n", "1", "a", "2", "b", "3", "c", "3", "d", "+inf", "p"],
        );
        // Ranks, negative indexes, out-of-range ends.
        assert_eq!(
            cmd(&mut c, &["ZRANGE", "z", "0", "-1"]),
            bulks(&["n", "a", "b", "c", "d", "p"])
        );
        assert_eq!(cmd(&mut c, &["ZRANGE", "z", "1", "2"]), bulks(&["a", "b"]));
        assert_eq!(cmd(&mut c, &["ZRANGE", "z", "-2", "100"]), bulks(&["d", "p"]));
        assert_eq!(cmd(&mut c, &["ZRANGE", "z", "4", "2"]), "*0\r\n");
        assert_eq!(cmd(&mut c, &["ZRANGE", "z", "10", "20"]), "*0\r\n");
        assert_eq!(cmd(&mut c, &["ZRANGE", "z", "-100", "0"]), bulks(&["n"]));
        assert_eq!(cmd(&mut c, &["ZRANGE", "z", "0", "1", "REV"]), bulks(&["p", "d"]));
        assert_eq!(
            cmd(&mut c, &["ZREVRANGE", "z", "1", "2", "WITHSCORES"]),
            bulks(&["d", "3", "c", "3"])
        );
        assert_eq!(
            cmd(&mut c, &["ZRANGE", "z", "1", "1", "WITHSCORES"]),
            bulks(&["a", "1"])
        );
        assert_eq!(cmd(&mut c, &["ZRANGE", "nokey", "0", "-1"]), "*0\r\n");
        // Scores: inclusive, exclusive, infinities, reverse, LIMIT.
        assert_eq!(
            cmd(&mut c, &["ZRANGEBYSCORE", "z", "1", "3"]),
            bulks(&["a", "b", "c", "d"])
        );
        assert_eq!(cmd(&mut c, &["ZRANGEBYSCORE", "z", "(1", "(3"]), bulks(&["b"]));
        assert_eq!(cmd(&mut c, &["ZRANGEBYSCORE", "z", "-inf", "(1"]), bulks(&["n"]));
        assert_eq!(cmd(&mut c, &["ZRANGEBYSCORE", "z", "(3", "+inf"]), bulks(&["p"]));
        assert_eq!(cmd(&mut c, &["ZRANGEBYSCORE", "z", "3", "1"]), "*0\r\n");
        assert_eq!(
            cmd(
                &mut c,
                &["ZRANGEBYSCORE", "z", "1", "3", "WITHSCORES", "LIMIT", "1", "2"]
            ),
            bulks(&["b", "2", "c", "3"])
        );
        assert_eq!(
            cmd(&mut c, &["ZRANGEBYSCORE", "z", "1", "3", "LIMIT", "1", "-1"]),
            bulks(&["b", "c", "d"])
        );
        assert_eq!(
            cmd(&mut c, &["ZRANGEBYSCORE", "z", "1", "3", "LIMIT", "-1", "2"]),
            "*0\r\n"
        );
        assert_eq!(
            cmd(&mut c, &["ZRANGEBYSCORE", "z", "1", "3", "LIMIT", "10", "2"]),
            "*0\r\n"
        );
        assert_eq!(
            cmd(&mut c, &["ZRANGEBYSCORE", "z", "1", "3", "LIMIT", "0", "0"]),
            "*0\r\n"
        );
        assert_eq!(
            cmd(&mut c, &["ZREVRANGEBYSCORE", "z", "3", "(1"]),
            bulks(&["d", "c", "b"])
        );
        assert_eq!(
            cmd(
                &mut c,
                &["ZREVRANGEBYSCORE", "z", "+inf", "-inf", "LIMIT", "1", "2"]
            ),
            bulks(&["d", "c"])
        );
        assert_eq!(
            cmd(&mut c, &["ZRANGE", "z", "(3", "2", "BYSCORE", "REV"]),
            bulks(&["b"])
        );
        assert_eq!(
            cmd(
                &mut c,
                &[
                    "ZRANGE",
                    "z",
                    "2",
                    "3",
                    "BYSCORE",
                    "LIMIT",
                    "1",
                    "5",
                    "WITHSCORES"
                ]
            ),
            bulks(&["c", "3", "d", "3"])
        );
    }
}

#[test]
fn lex_ranges_and_counts_follow_redis_in_both_encodings() {
    let server = Server::start();
    let mut c = server.raw();
    for enc in ENCODINGS {
        create(
            &mut c,
            enc,
            "l",
            &[
                "0", "alpha", "0", "bar", "0", "cool", "0", "down", "0", "elephant", "0", "foo",
            ],
        );
        assert_eq!(
            cmd(&mut c, &["ZRANGEBYLEX", "l", "-", "+"]),
            bulks(&["alpha", "bar", "cool", "down", "elephant", "foo"])
        );
        assert_eq!(
            cmd(&mut c, &["ZRANGEBYLEX", "l", "[bar", "(down"]),
            bulks(&["bar", "cool"])
        );
        assert_eq!(
            cmd(&mut c, &["ZRANGEBYLEX", "l", "(bar", "[down"]),
            bulks(&["cool", "down"])
        );
        assert_eq!(
            cmd(&mut c, &["ZRANGEBYLEX", "l", "[b", "[d"]),
            bulks(&["bar", "cool"])
        );
        assert_eq!(cmd(&mut c, &["ZRANGEBYLEX", "l", "+", "-"]), "*0\r\n");
        assert_eq!(
            cmd(&mut c, &["ZRANGEBYLEX", "l", "-", "+", "LIMIT", "2", "2"]),
            bulks(&["cool", "down"])
        );
        assert_eq!(
            cmd(&mut c, &["ZREVRANGEBYLEX", "l", "[down", "-"]),
            bulks(&["down", "cool", "bar", "alpha"])
        );
        assert_eq!(
            cmd(&mut c, &["ZREVRANGEBYLEX", "l", "+", "(cool", "LIMIT", "0", "2"]),
            bulks(&["foo", "elephant"])
        );
        assert_eq!(
            cmd(&mut c, &["ZRANGE", "l", "[e", "(c", "BYLEX", "REV"]),
            bulks(&["down", "cool"])
        );
        assert_eq!(cmd(&mut c, &["ZLEXCOUNT", "l", "(bar", "+"]), ":4\r\n");
        assert_eq!(cmd(&mut c, &["ZLEXCOUNT", "l", "-", "+"]), ":6\r\n");
        assert_eq!(cmd(&mut c, &["ZLEXCOUNT", "nokey", "-", "+"]), ":0\r\n");
        assert_eq!(cmd(&mut c, &["ZCOUNT", "l", "0", "0"]), ":6\r\n");
        assert_eq!(cmd(&mut c, &["ZCOUNT", "l", "(0", "+inf"]), ":0\r\n");
        assert_eq!(cmd(&mut c, &["ZREMRANGEBYLEX", "l", "[bar", "(down"]), ":2\r\n");
        assert_eq!(
            cmd(&mut c, &["ZRANGE", "l", "-", "+", "BYLEX"]),
            bulks(&["alpha", "down", "elephant", "foo"])
        );
    }
}

#[test]
fn range_argument_errors_use_redis_messages() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(cmd(&mut c, &["ZADD", "z", "1", "a"]), ":1\r\n");
    for (args, message) in [
        (
            &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"][..],
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ),
        (
            &["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"],
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ),
        (
            &["ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX"],
            "ERR syntax error",
        ),
        (&["ZRANGE", "z", "0", "-1", "FOO"], "ERR syntax error"),
        (&["ZRANGEBYSCORE", "z", "0", "1", "REV"], "ERR syntax error"),
        (
            &["ZRANGE", "z", "a", "-1"],
            "ERR value is not an integer or out of range",
        ),
        (&["ZRANGEBYSCORE", "z", "x", "1"], "ERR min or max is not a float"),
        (&["ZRANGEBYSCORE", "z", "(", "1"], "ERR min or max is not a float"),
        (
            &["ZRANGEBYSCORE", "z", "nan", "1"],
            "ERR min or max is not a float",
        ),
        (&["ZCOUNT", "z", "0", "x"], "ERR min or max is not a float"),
        (
            &["ZREMRANGEBYSCORE", "z", "x", "1"],
            "ERR min or max is not a float",
        ),
        (
            &["ZRANGEBYLEX", "z", "a", "+"],
            "ERR min or max not valid string range item",
        ),
        (
            &["ZLEXCOUNT", "z", "-", "b"],
            "ERR min or max not valid string range item",
        ),
        (
            &["ZRANGESTORE", "d", "z", "0", "-1", "WITHSCORES"],
            "ERR syntax error",
        ),
    ] {
        assert_eq!(cmd(&mut c, args), err(message), "{args:?}");
    }
}

#[test]
fn pops_take_the_lowest_or_highest_members_in_both_encodings() {
    let server = Server::start();
    let mut c = server.raw();
    for enc in ENCODINGS {
        create(&mut c, enc, "z", &["1", "a", "2", "b", "3", "c", "4", "d"]);
        assert_eq!(cmd(&mut c, &["ZPOPMIN", "z"]), bulks(&["a", "1"]));
        assert_eq!(cmd(&mut c, &["ZPOPMAX", "z"]), bulks(&["d", "4"]));
        assert_eq!(cmd(&mut c, &["ZPOPMIN", "z", "0"]), "*0\r\n");
        assert_eq!(
            cmd(&mut c, &["ZPOPMIN", "z", "-1"]),
            err("ERR value is out of range, must be positive")
        );
        assert_eq!(cmd(&mut c, &["ZPOPMIN", "z", "1", "2"]), err("ERR syntax error"));
        assert_eq!(cmd(&mut c, &["ZPOPMAX", "z", "10"]), bulks(&["c", "3", "b", "2"]));
        assert_eq!(cmd(&mut c, &["EXISTS", "z"]), ":0\r\n");
        assert_eq!(cmd(&mut c, &["ZPOPMIN", "z"]), "*0\r\n");
        assert_eq!(cmd(&mut c, &["ZPOPMIN", "z", "3"]), "*0\r\n");
    }
}

#[test]
fn removals_by_rank_and_score_remove_exactly_the_range_in_both_encodings() {
    let server = Server::start();
    let mut c = server.raw();
    for enc in ENCODINGS {
        let pairs = ["1", "a", "2", "b", "3", "c", "4", "d", "5", "e"];
        create(&mut c, enc, "z", &pairs);
        assert_eq!(cmd(&mut c, &["ZREMRANGEBYSCORE", "z", "(1", "3"]), ":2\r\n");
        assert_eq!(cmd(&mut c, &["ZRANGE", "z", "0", "-1"]), bulks(&["a", "d", "e"]));
        assert_eq!(cmd(&mut c, &["ZREMRANGEBYSCORE", "z", "10", "20"]), ":0\r\n");
        create(&mut c, enc, "z", &pairs);
        assert_eq!(cmd(&mut c, &["ZREMRANGEBYRANK", "z", "1", "-2"]), ":3\r\n");
        assert_eq!(cmd(&mut c, &["ZRANGE", "z", "0", "-1"]), bulks(&["a", "e"]));
        assert_eq!(cmd(&mut c, &["ZREMRANGEBYRANK", "z", "5", "10"]), ":0\r\n");
        assert_eq!(cmd(&mut c, &["ZREMRANGEBYRANK", "z", "0", "-1"]), ":2\r\n");
        assert_eq!(cmd(&mut c, &["EXISTS", "z"]), ":0\r\n");
        assert_eq!(cmd(&mut c, &["ZREMRANGEBYRANK", "nokey", "0", "-1"]), ":0\r\n");
    }
}

#[test]
fn resp3_scores_are_doubles_and_withscores_results_are_pairs() {
    let server = Server::start();
    let mut c = resp3(&server);
    assert_eq!(cmd(&mut c, &["ZADD", "z", "1.5", "a", "2", "b"]), ":2\r\n");
    assert_eq!(cmd(&mut c, &["ZSCORE", "z", "a"]), ",1.5\r\n");
    assert_eq!(cmd(&mut c, &["ZSCORE", "z", "zz"]), "_\r\n");
    assert_eq!(cmd(&mut c, &["ZINCRBY", "z", "1", "b"]), ",3\r\n");
    assert_eq!(cmd(&mut c, &["ZMSCORE", "z", "a", "zz"]), "*2\r\n,1.5\r\n_\r\n");
    assert_eq!(
        cmd(&mut c, &["ZRANK", "z", "b", "WITHSCORE"]),
        "*2\r\n:1\r\n,3\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
        "*2\r\n*2\r\n$1\r\na\r\n,1.5\r\n*2\r\n$1\r\nb\r\n,3\r\n"
    );
    assert_eq!(cmd(&mut c, &["ZRANGE", "z", "0", "-1"]), bulks(&["a", "b"]));
    // ZPOPMIN without a count is flat; with one, pairs.
    assert_eq!(cmd(&mut c, &["ZPOPMIN", "z"]), "*2\r\n$1\r\na\r\n,1.5\r\n");
    assert_eq!(
        cmd(&mut c, &["ZPOPMAX", "z", "5"]),
        "*1\r\n*2\r\n$1\r\nb\r\n,3\r\n"
    );
    assert_eq!(cmd(&mut c, &["ZADD", "z", "1", "a"]), ":1\r\n");
    assert_eq!(
        cmd(&mut c, &["ZMPOP", "1", "z", "MIN"]),
        "*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\na\r\n,1\r\n"
    );
    assert_eq!(cmd(&mut c, &["ZMPOP", "1", "z", "MIN"]), "_\r\n");
    assert_eq!(cmd(&mut c, &["ZADD", "u", "1", "a"]), ":1\r\n");
    let pair = "*2\r\n$1\r\na\r\n,1\r\n";
    assert_eq!(
        cmd(&mut c, &["ZUNION", "1", "u", "WITHSCORES"]),
        format!("*1\r\n{pair}")
    );
    assert_eq!(
        cmd(&mut c, &["ZRANDMEMBER", "u", "1", "WITHSCORES"]),
        format!("*1\r\n{pair}")
    );
    assert_eq!(
        cmd(&mut c, &["ZRANDMEMBER", "u", "-2", "WITHSCORES"]),
        format!("*2\r\n{pair}{pair}")
    );
    assert_eq!(cmd(&mut c, &["ZRANDMEMBER", "nokey"]), "_\r\n");
}

#[test]
fn zscan_returns_every_member_with_its_score_in_both_encodings() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(cmd(&mut c, &["ZSCAN", "nokey", "0"]), "*2\r\n$1\r\n0\r\n*0\r\n");
    assert_eq!(cmd(&mut c, &["ZADD", "small", "1", "a", "2.5", "b"]), ":2\r\n");
    assert_eq!(
        cmd(&mut c, &["ZSCAN", "small", "0"]),
        format!("*2\r\n$1\r\n0\r\n{}", bulks(&["a", "1", "b", "2.5"]))
    );
    assert_eq!(
        cmd(&mut c, &["ZSCAN", "small", "0", "MATCH", "b*"]),
        format!("*2\r\n$1\r\n0\r\n{}", bulks(&["b", "2.5"]))
    );
    let mut client = server.redis();
    for i in 0..500 {
        let _: i64 = redis::cmd("ZADD")
            .arg("big")
            .arg(i)
            .arg(format!("m{i}"))
            .query(&mut client)
            .unwrap();
    }
    let mut seen = std::collections::HashMap::new();
    let mut cursor = 0u64;
    loop {
        let (next, items): (u64, Vec<String>) = redis::cmd("ZSCAN")
            .arg("big")
            .arg(cursor)
            .arg("COUNT")
            .arg(50)
            .query(&mut client)
            .unwrap();
        for pair in items.chunks(2) {
            seen.insert(pair[0].clone(), pair[1].clone());
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 500);
    assert_eq!(seen["m42"], "42");
}

#[test]
fn zrangestore_replaces_the_destination_and_deletes_it_when_empty() {
    let server = Server::start();
    let mut c = server.raw();
    for enc in ENCODINGS {
        create(&mut c, enc, "src", &["1", "a", "2", "b", "3", "c"]);
        assert_eq!(cmd(&mut c, &["SET", "dst", "string"]), "+OK\r\n");
        assert_eq!(cmd(&mut c, &["ZRANGESTORE", "dst", "src", "1", "-1"]), ":2\r\n");
        assert_eq!(
            cmd(&mut c, &["ZRANGE", "dst", "0", "-1", "WITHSCORES"]),
            bulks(&["b", "2", "c", "3"])
        );
        assert_eq!(cmd(&mut c, &["OBJECT", "ENCODING", "dst"]), bulk("listpack"));
        assert_eq!(
            cmd(
                &mut c,
                &[
                    "ZRANGESTORE",
                    "dst",
                    "src",
                    "(1",
                    "+inf",
                    "BYSCORE",
                    "LIMIT",
                    "0",
                    "1"
                ]
            ),
            ":1\r\n"
        );
        assert_eq!(cmd(&mut c, &["ZRANGE", "dst", "0", "-1"]), bulks(&["b"]));
        assert_eq!(
            cmd(&mut c, &["ZRANGESTORE", "dst", "src", "[c", "-", "BYLEX", "REV"]),
            ":3\r\n"
        );
        assert_eq!(cmd(&mut c, &["ZRANGESTORE", "dst", "src", "5", "10"]), ":0\r\n");
        assert_eq!(cmd(&mut c, &["EXISTS", "dst"]), ":0\r\n");
        assert_eq!(cmd(&mut c, &["ZRANGESTORE", "dst", "nokey", "0", "-1"]), ":0\r\n");
    }
}

#[test]
fn union_inter_and_diff_combine_with_weights_and_aggregates() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(
        cmd(&mut c, &["ZADD", "{t}a", "1", "x", "2", "y", "3", "z"]),
        ":3\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["ZADD", "{t}b", "10", "y", "20", "z", "30", "w"]),
        ":3\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["ZUNION", "2", "{t}a", "{t}b", "WITHSCORES"]),
        bulks(&["x", "1", "y", "12", "z", "23", "w", "30"])
    );
    assert_eq!(
        cmd(&mut c, &["ZINTER", "2", "{t}a", "{t}b", "WITHSCORES"]),
        bulks(&["y", "12", "z", "23"])
    );
    assert_eq!(
        cmd(
            &mut c,
            &["ZINTER", "2", "{t}a", "{t}b", "AGGREGATE", "MAX", "WITHSCORES"]
        ),
        bulks(&["y", "10", "z", "20"])
    );
    assert_eq!(
        cmd(
            &mut c,
            &[
                "ZUNION",
                "2",
                "{t}a",
                "{t}b",
                "WEIGHTS",
                "2",
                "0.5",
                "AGGREGATE",
                "MIN"
            ]
        ),
        bulks(&["x", "y", "z", "w"])
    );
    assert_eq!(
        cmd(
            &mut c,
            &[
                "ZUNION",
                "2",
                "{t}a",
                "{t}b",
                "WEIGHTS",
                "2",
                "0.5",
                "AGGREGATE",
                "MIN",
                "WITHSCORES"
            ]
        ),
        bulks(&["x", "2", "y", "4", "z", "6", "w", "15"])
    );
    assert_eq!(
        cmd(&mut c, &["ZDIFF", "2", "{t}a", "{t}b", "WITHSCORES"]),
        bulks(&["x", "1"])
    );
    assert_eq!(cmd(&mut c, &["ZDIFF", "2", "nokey", "{t}b"]), "*0\r\n");
    assert_eq!(cmd(&mut c, &["ZINTER", "2", "{t}a", "nokey"]), "*0\r\n");
    assert_eq!(cmd(&mut c, &["ZINTERCARD", "2", "{t}a", "{t}b"]), ":2\r\n");
    assert_eq!(
        cmd(&mut c, &["ZINTERCARD", "2", "{t}a", "{t}b", "LIMIT", "1"]),
        ":1\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["ZUNIONSTORE", "{t}d", "2", "{t}a", "{t}b"]),
        ":4\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["ZRANGE", "{t}d", "0", "-1", "WITHSCORES"]),
        bulks(&["x", "1", "y", "12", "z", "23", "w", "30"])
    );
    assert_eq!(
        cmd(
            &mut c,
            &["ZINTERSTORE", "{t}d", "2", "{t}a", "{t}b", "WEIGHTS", "1", "0"]
        ),
        ":2\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["ZRANGE", "{t}d", "0", "-1", "WITHSCORES"]),
        bulks(&["y", "2", "z", "3"])
    );
    assert_eq!(
        cmd(&mut c, &["ZDIFFSTORE", "{t}d", "2", "{t}a", "{t}a"]),
        ":0\r\n"
    );
    assert_eq!(cmd(&mut c, &["EXISTS", "{t}d"]), ":0\r\n");
    // inf + -inf aggregates to 0, as Redis.
    assert_eq!(cmd(&mut c, &["ZADD", "{t}p", "inf", "m"]), ":1\r\n");
    assert_eq!(cmd(&mut c, &["ZADD", "{t}n", "-inf", "m"]), ":1\r\n");
    assert_eq!(
        cmd(&mut c, &["ZUNION", "2", "{t}p", "{t}n", "WITHSCORES"]),
        bulks(&["m", "0"])
    );
    for (args, message) in [
        (
            &["ZUNION", "0", "{t}a"][..],
            "ERR at least 1 input key is needed for 'zunion' command",
        ),
        (
            &["ZUNIONSTORE", "{t}d", "0", "{t}a"],
            "ERR at least 1 input key is needed for 'zunionstore' command",
        ),
        (&["ZUNION", "3", "{t}a", "{t}b"], "ERR syntax error"),
        (
            &["ZUNION", "2", "{t}a", "{t}b", "WEIGHTS", "1"],
            "ERR syntax error",
        ),
        (
            &["ZUNION", "2", "{t}a", "{t}b", "WEIGHTS", "1", "x"],
            "ERR weight value is not a float",
        ),
        (
            &["ZUNION", "2", "{t}a", "{t}b", "AGGREGATE", "AVG"],
            "ERR syntax error",
        ),
        (
            &["ZDIFF", "2", "{t}a", "{t}b", "WEIGHTS", "1", "1"],
            "ERR syntax error",
        ),
        (
            &["ZUNIONSTORE", "{t}d", "2", "{t}a", "{t}b", "WITHSCORES"],
            "ERR syntax error",
        ),
        (
            &["ZINTERCARD", "2", "{t}a", "{t}b", "LIMIT", "-1"],
            "ERR LIMIT can't be negative",
        ),
        (
            &["ZINTERCARD", "0", "{t}a"],
            "ERR at least 1 input key is needed for 'zintercard' command",
        ),
    ] {
        assert_eq!(cmd(&mut c, args), err(message), "{args:?}");
    }
}

#[test]
fn zmpop_pops_from_the_first_non_empty_key() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(
        cmd(&mut c, &["ZADD", "b", "1", "x", "2", "y", "3", "z"]),
        ":3\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["ZMPOP", "2", "a", "b", "MAX", "COUNT", "2"]),
        "*2\r\n$1\r\nb\r\n*2\r\n*2\r\n$1\r\nz\r\n$1\r\n3\r\n*2\r\n$1\r\ny\r\n$1\r\n2\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["ZMPOP", "1", "b", "MIN"]),
        "*2\r\n$1\r\nb\r\n*1\r\n*2\r\n$1\r\nx\r\n$1\r\n1\r\n"
    );
    assert_eq!(cmd(&mut c, &["ZMPOP", "2", "a", "b", "MIN"]), "*-1\r\n");
    assert_eq!(
        cmd(&mut c, &["ZMPOP", "0", "b", "MIN"]),
        err("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        cmd(&mut c, &["ZMPOP", "1", "b", "MIDDLE"]),
        err("ERR syntax error")
    );
    assert_eq!(
        cmd(&mut c, &["ZMPOP", "1", "b", "MIN", "COUNT", "0"]),
        err("ERR count should be greater than 0")
    );
    assert_eq!(cmd(&mut c, &["ZMPOP", "5", "b", "MIN"]), err("ERR syntax error"));
    assert_eq!(
        cmd(&mut c, &["ZMPOP", "x", "b", "MIN"]),
        err("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        cmd(&mut c, &["ZMPOP", "1", "b", "MIN", "COUNT", "x"]),
        err("ERR count should be greater than 0")
    );
    assert_eq!(
        cmd(&mut c, &["ZINTERCARD", "1", "b", "LIMIT", "x"]),
        err("ERR LIMIT can't be negative")
    );
    assert_eq!(
        cmd(&mut c, &["ZUNION", "x", "b"]),
        err("ERR value is not an integer or out of range")
    );
}

#[test]
fn zrandmember_picks_distinct_members_or_repeats_for_negative_counts() {
    let server = Server::start();
    let mut c = server.raw();
    let mut client = server.redis();
    for enc in ENCODINGS {
        create(
            &mut c,
            enc,
            "z",
            &["1", "a", "2", "b", "3", "c", "4", "d", "5", "e"],
        );
        let one: String = redis::cmd("ZRANDMEMBER").arg("z").query(&mut client).unwrap();
        assert!(["a", "b", "c", "d", "e"].contains(&one.as_str()));
        let three: Vec<String> = redis::cmd("ZRANDMEMBER")
            .arg("z")
            .arg(3)
            .query(&mut client)
            .unwrap();
        let distinct: std::collections::HashSet<_> = three.iter().collect();
        assert_eq!(distinct.len(), 3);
        let all: Vec<String> = redis::cmd("ZRANDMEMBER")
            .arg("z")
            .arg(10)
            .arg("WITHSCORES")
            .query(&mut client)
            .unwrap();
        assert_eq!(all.len(), 10);
        let pairs: std::collections::HashMap<_, _> =
            all.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
        assert_eq!(pairs["c"], "3");
        let repeated: Vec<String> = redis::cmd("ZRANDMEMBER")
            .arg("z")
            .arg(-20)
            .query(&mut client)
            .unwrap();
        assert_eq!(repeated.len(), 20);
    }
    // A few distinct picks from a big set.
    for i in 0..300 {
        let _: i64 = redis::cmd("ZADD")
            .arg("big")
            .arg(i)
            .arg(format!("m{i}"))
            .query(&mut client)
            .unwrap();
    }
    let ten: Vec<String> = redis::cmd("ZRANDMEMBER")
        .arg("big")
        .arg(10)
        .query(&mut client)
        .unwrap();
    assert_eq!(ten.iter().collect::<std::collections::HashSet<_>>().len(), 10);
    assert_eq!(cmd(&mut c, &["ZRANDMEMBER", "nokey"]), "$-1\r\n");
    assert_eq!(cmd(&mut c, &["ZRANDMEMBER", "nokey", "5"]), "*0\r\n");
    assert_eq!(cmd(&mut c, &["ZRANDMEMBER", "z", "0"]), "*0\r\n");
    assert_eq!(
        cmd(&mut c, &["ZRANDMEMBER", "z", "1", "FOO"]),
        err("ERR syntax error")
    );
}

#[test]
fn a_big_zset_keeps_ranks_and_ranges_consistent_after_many_updates() {
    let server = Server::start();
    let mut client = server.redis();
    for i in 0..1000i64 {
        let _: i64 = redis::cmd("ZADD")
            .arg("big")
            .arg((i * 37) % 1000)
            .arg(format!("m{i:04}"))
            .query(&mut client)
            .unwrap();
    }
    for i in (0..1000i64).step_by(7) {
        let _: f64 = redis::cmd("ZINCRBY")
            .arg("big")
            .arg(0.5)
            .arg(format!("m{i:04}"))
            .query(&mut client)
            .unwrap();
    }
    let all: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg("big")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut client)
        .unwrap();
    assert_eq!(all.len(), 1000);
    for w in all.windows(2) {
        assert!(w[0].1 < w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0), "{w:?}");
    }
    for (rank, (member, _)) in all.iter().enumerate().step_by(97) {
        let r: i64 = redis::cmd("ZRANK")
            .arg("big")
            .arg(member)
            .query(&mut client)
            .unwrap();
        assert_eq!(r as usize, rank);
    }
    let n: i64 = redis::cmd("ZCOUNT")
        .arg("big")
        .arg("(100")
        .arg("200")
        .query(&mut client)
        .unwrap();
    assert_eq!(
        n as usize,
        all.iter().filter(|(_, s)| *s > 100.0 && *s <= 200.0).count()
    );
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("big")
        .query(&mut client)
        .unwrap();
    assert_eq!(encoding, "skiplist");
    let usage: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("big")
        .query(&mut client)
        .unwrap();
    assert!(usage > 1000 * 16, "MEMORY USAGE {usage}");
}

#[test]
fn the_listpack_limits_of_128_entries_and_64_bytes_choose_the_encoding() {
    let server = Server::start();
    let mut c = server.raw();
    let mut args = vec!["ZADD".to_string(), "z".to_string()];
    for i in 0..128 {
        args.push(i.to_string());
        args.push(format!("m{i}"));
    }
    assert_eq!(show(&c.cmd(&args)), ":128\r\n");
    assert_eq!(cmd(&mut c, &["OBJECT", "ENCODING", "z"]), bulk("listpack"));
    assert_eq!(cmd(&mut c, &["ZADD", "z", "200", "one-more"]), ":1\r\n");
    assert_eq!(cmd(&mut c, &["OBJECT", "ENCODING", "z"]), bulk("skiplist"));
    // Shrinking does not convert back.
    assert_eq!(cmd(&mut c, &["ZREMRANGEBYRANK", "z", "0", "-3"]), ":127\r\n");
    assert_eq!(cmd(&mut c, &["OBJECT", "ENCODING", "z"]), bulk("skiplist"));
    // A stored result is encoded by its size.
    assert_eq!(cmd(&mut c, &["ZRANGESTORE", "small", "z", "0", "-1"]), ":2\r\n");
    assert_eq!(cmd(&mut c, &["OBJECT", "ENCODING", "small"]), bulk("listpack"));
    let limit = "x".repeat(64);
    assert_eq!(cmd(&mut c, &["ZADD", "long", "1", &limit]), ":1\r\n");
    assert_eq!(cmd(&mut c, &["OBJECT", "ENCODING", "long"]), bulk("listpack"));
    let over = "x".repeat(65);
    assert_eq!(cmd(&mut c, &["ZADD", "long", "2", &over]), ":1\r\n");
    assert_eq!(cmd(&mut c, &["OBJECT", "ENCODING", "long"]), bulk("skiplist"));
    assert_eq!(
        cmd(&mut c, &["ZRANGE", "long", "0", "-1"]),
        bulks(&[&limit, &over])
    );
}

#[test]
fn zrandmember_and_zincrby_refuse_out_of_range_and_variadic_arguments() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(cmd(&mut c, &["ZADD", "z", "1", "a"]), ":1\r\n");
    assert_eq!(
        cmd(
            &mut c,
            &["ZRANDMEMBER", "z", "-9223372036854770000", "WITHSCORES"]
        ),
        err("ERR value is out of range")
    );
    assert_eq!(
        cmd(&mut c, &["ZRANDMEMBER", "z", "x"]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        cmd(&mut c, &["ZINCRBY", "z", "10", "a", "20", "b"]),
        err("ERR wrong number of arguments for 'zincrby' command")
    );
    assert_eq!(
        cmd(&mut c, &["ZMSCORE", "z"]),
        err("ERR wrong number of arguments for 'zmscore' command")
    );
}

#[test]
fn scores_print_as_redis_7_2_prints_doubles() {
    let server = Server::start();
    let mut c = server.raw();
    for (score, text) in [
        ("1.1", "1.1"),
        ("10", "10"),
        ("1e22", "1e+22"),
        ("0.00000015", "1.5e-7"),
        ("0.00001", "0.00001"),
        ("-2.50", "-2.5"),
        ("0.30000000000000004", "0.30000000000000004"),
    ] {
        cmd(&mut c, &["DEL", "z"]);
        assert_eq!(cmd(&mut c, &["ZADD", "z", score, "m"]), ":1\r\n", "{score}");
        assert_eq!(cmd(&mut c, &["ZSCORE", "z", "m"]), bulk(text), "{score}");
    }
}

/// Redis's zset.tcl "ZUNIONSTORE with a regular set and weights" and
/// friends: a plain set is an input whose members score 1.
#[test]
fn plain_sets_are_inputs_with_score_one_to_the_set_algebra() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["SADD", "s", "a", "b"]);
    c.cmd(&["ZADD", "z", "2", "b", "3", "c"]);
    assert_eq!(
        c.cmd(&["ZUNIONSTORE", "out", "2", "s", "z", "WEIGHTS", "10", "1"]),
        b":3\r\n"
    );
    assert_eq!(
        c.cmd(&["ZRANGE", "out", "0", "-1", "WITHSCORES"]),
        b"*6\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\na\r\n$2\r\n10\r\n$1\r\nb\r\n$2\r\n12\r\n"
    );
    assert_eq!(c.cmd(&["ZINTERCARD", "2", "s", "z"]), b":1\r\n");
    assert_eq!(c.cmd(&["ZDIFF", "2", "s", "z"]), b"*1\r\n$1\r\na\r\n");
    c.cmd(&["SET", "str", "x"]);
    assert_eq!(
        c.cmd(&["ZUNION", "2", "s", "str"]),
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
}

/// A negative count beyond kvserver's cap is an error, as for HRANDFIELD and
/// SRANDMEMBER, never a shorter reply than asked.
#[test]
fn zrandmember_refuses_a_negative_count_beyond_the_cap() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["ZADD", "z", "1", "a"]);
    let reply = c.cmd(&["ZRANDMEMBER", "z", "-16777217"]);
    assert!(
        reply.starts_with(b"-ERR value is out of range (kvserver caps a negative ZRANDMEMBER count"),
        "{}",
        show(&reply)
    );
    assert!(c.cmd(&["ZRANDMEMBER", "z", "-3"]).starts_with(b"*3\r\n"));
}
