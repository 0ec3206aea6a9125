//! RESP2 replies byte for byte, command errors that keep the connection,
//! binary safety, and the `redis` crate as a real client.

use std::collections::{BTreeSet, HashMap};

use crate::support::*;

#[test]
fn resp_replies_are_byte_exact() {
    let server = Server::start();
    let mut c = server.raw();
    let cases: &[(&[&str], &str)] = &[
        (&["PING"], "+PONG\r\n"),
        (&["PING", "hi"], "$2\r\nhi\r\n"),
        (&["ECHO", "hello"], "$5\r\nhello\r\n"),
        (&["GET", "k"], "$-1\r\n"),
        (&["SET", "k", "hello"], "+OK\r\n"),
        (&["GET", "k"], "$5\r\nhello\r\n"),
        (&["SET", "e", ""], "+OK\r\n"),
        (&["GET", "e"], "$0\r\n\r\n"),
        (&["EXISTS", "k", "e", "nope", "k"], ":3\r\n"),
        (&["INCR", "n"], ":1\r\n"),
        (&["INCRBY", "n", "-5"], ":-4\r\n"),
        (&["DECR", "n"], ":-5\r\n"),
        (&["APPEND", "k", "!"], ":6\r\n"),
        (&["STRLEN", "k"], ":6\r\n"),
        (&["MGET", "k", "nope"], "*2\r\n$6\r\nhello!\r\n$-1\r\n"),
        (&["KEYS", "zzz*"], "*0\r\n"),
        (&["SET", "k", "v", "NX"], "$-1\r\n"),
        (&["SET", "k", "v2", "XX", "GET"], "$6\r\nhello!\r\n"),
        (&["GETDEL", "k"], "$2\r\nv2\r\n"),
        (&["DEL", "k", "e", "n"], ":2\r\n"),
        (&["TYPE", "nope"], "+none\r\n"),
        (&["DBSIZE"], ":0\r\n"),
        (&["SELECT", "0"], "+OK\r\n"),
    ];
    for (args, expected) in cases {
        let got = c.cmd(args);
        assert_eq!(show(&got), *expected, "command {args:?}");
    }
}

#[test]
fn command_errors_are_redis_strings_and_keep_the_connection() {
    let server = Server::start();
    let mut c = server.raw();
    let cases: &[(&[&str], &str)] = &[
        (
            &["foo", "a", "b"],
            "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n",
        ),
        (
            &["foo"],
            "-ERR unknown command 'foo', with args beginning with: \r\n",
        ),
        (&["GET"], "-ERR wrong number of arguments for 'get' command\r\n"),
        (
            &["get", "a", "b"],
            "-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (&["SET", "k", "v", "NX", "XX"], "-ERR syntax error\r\n"),
        (&["SET", "k", "v", "BOGUS"], "-ERR syntax error\r\n"),
        (
            &["SET", "k", "v", "EX", "notanumber"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["SET", "k", "v", "EX", "0"],
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            &["SET", "k", "v", "EX", "-1"],
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (
            &["SET", "k", "v", "PX", "0"],
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (&["SET", "s", "abc"], "+OK\r\n"),
        (&["INCR", "s"], "-ERR value is not an integer or out of range\r\n"),
        (
            &["INCRBY", "n", "1.5"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (&["SET", "max", "9223372036854775807"], "+OK\r\n"),
        (&["INCR", "max"], "-ERR increment or decrement would overflow\r\n"),
        (&["SET", "min", "-9223372036854775808"], "+OK\r\n"),
        (&["DECR", "min"], "-ERR increment or decrement would overflow\r\n"),
        (&["GET", "max"], "$19\r\n9223372036854775807\r\n"),
        (&["PING"], "+PONG\r\n"),
    ];
    for (args, expected) in cases {
        let got = c.cmd(args);
        assert_eq!(show(&got), *expected, "command {args:?}");
    }
    // The failed SETs left nothing behind.
    assert_eq!(show(&c.cmd(&["EXISTS", "k"])), ":0\r\n");
}

#[test]
fn binary_keys_and_values_round_trip() {
    let server = Server::start();
    let mut c = server.raw();
    let key: &[u8] = b"k\0\r\n\xff\xfe key";
    let value: Vec<u8> = (0..=255u8).chain(b"\r\n\0\r\n".iter().copied()).collect();
    assert_eq!(c.cmd(&[&b"SET"[..], key, &value]), b"+OK\r\n");
    let mut expected = format!("${}\r\n", value.len()).into_bytes();
    expected.extend_from_slice(&value);
    expected.extend_from_slice(b"\r\n");
    assert_eq!(c.cmd(&[&b"GET"[..], key]), expected);
    // A key differing only after the NUL is a different key.
    assert_eq!(c.cmd(&[&b"GET"[..], b"k\0"]), b"$-1\r\n");
    let mut keys_reply = format!("*1\r\n${}\r\n", key.len()).into_bytes();
    keys_reply.extend_from_slice(key);
    keys_reply.extend_from_slice(b"\r\n");
    assert_eq!(c.cmd(&[&b"KEYS"[..], b"*"]), keys_reply);

    // Through the redis crate too.
    let mut con = server.redis();
    let got: Vec<u8> = redis::cmd("GET").arg(key).query(&mut con).unwrap();
    assert_eq!(got, value);
}

#[test]
fn quit_replies_ok_closes_and_skips_later_pipelined_commands() {
    let server = Server::start();
    let mut c = server.raw();
    let mut wire = resp(&["SET", "a", "1"]);
    wire.extend(resp(&["QUIT"]));
    wire.extend(resp(&["SET", "b", "2"]));
    c.send(&wire);
    assert_eq!(show(&c.read_to_eof()), "+OK\r\n+OK\r\n");

    let mut t = server.raw();
    t.send(b"QUIT\r\nSET c 3\r\n");
    assert_eq!(show(&t.read_to_eof()), "OK\r\n");

    let mut d = server.raw();
    assert_eq!(show(&d.cmd(&["GET", "a"])), "$1\r\n1\r\n");
    assert_eq!(show(&d.cmd(&["EXISTS", "b", "c"])), ":0\r\n");
}

#[test]
fn redis_crate_basic_commands() {
    let server = Server::start();
    let mut con = server.redis();
    let () = redis::cmd("SET").arg("a").arg("1").query(&mut con).unwrap();
    let v: String = redis::cmd("GET").arg("a").query(&mut con).unwrap();
    assert_eq!(v, "1");
    let none: Option<String> = redis::cmd("GET").arg("zz").query(&mut con).unwrap();
    assert_eq!(none, None);
    let n: i64 = redis::cmd("INCR").arg("a").query(&mut con).unwrap();
    assert_eq!(n, 2);
    let () = redis::cmd("MSET")
        .arg("x")
        .arg("1")
        .arg("y")
        .arg("2")
        .query(&mut con)
        .unwrap();
    let vals: Vec<Option<String>> = redis::cmd("MGET")
        .arg("x")
        .arg("nope")
        .arg("y")
        .query(&mut con)
        .unwrap();
    assert_eq!(vals, vec![Some("1".into()), None, Some("2".into())]);
    let set: i64 = redis::cmd("EXPIRE").arg("x").arg(100).query(&mut con).unwrap();
    assert_eq!(set, 1);
    let ttl: i64 = redis::cmd("TTL").arg("x").query(&mut con).unwrap();
    assert!((1..=100).contains(&ttl), "ttl {ttl}");
    let del: i64 = redis::cmd("DEL")
        .arg("x")
        .arg("y")
        .arg("nope")
        .query(&mut con)
        .unwrap();
    assert_eq!(del, 2);
    let err = redis::cmd("INCR")
        .arg("a")
        .arg("extra")
        .query::<i64>(&mut con)
        .unwrap_err();
    assert!(err.to_string().contains("wrong number of arguments"), "{err}");
    // The connection survives the error.
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn scan_iterates_every_key_exactly_as_set() {
    let server = Server::start();
    let mut con = server.redis();
    let mut expected = BTreeSet::new();
    let mut pipe = redis::pipe();
    for i in 0..2000 {
        let k = format!("key:{i}");
        pipe.cmd("SET").arg(&k).arg(i).ignore();
        expected.insert(k);
    }
    let () = pipe.query(&mut con).unwrap();
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, 2000);

    let mut seen = BTreeSet::new();
    let mut cursor: u64 = 0;
    let mut rounds = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(100)
            .query(&mut con)
            .unwrap();
        seen.extend(keys);
        cursor = next;
        rounds += 1;
        assert!(rounds < 100_000, "SCAN does not terminate");
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen, expected);

    // The crate's iterator, with MATCH.
    let matched: BTreeSet<String> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg("key:1?")
        .clone()
        .iter(&mut con)
        .unwrap()
        .collect();
    let want: BTreeSet<String> = (10..20).map(|i| format!("key:{i}")).collect();
    assert_eq!(matched, want);
}

#[test]
fn keys_glob_patterns() {
    let server = Server::start();
    let mut con = server.redis();
    for k in ["hello", "hallo", "hxllo", "hllo", "heeeello", "h[llo", "other"] {
        let () = redis::cmd("SET").arg(k).arg("1").query(&mut con).unwrap();
    }
    let cases: &[(&str, &[&str])] = &[
        ("h?llo", &["h[llo", "hallo", "hello", "hxllo"]),
        ("h*llo", &["h[llo", "hallo", "heeeello", "hello", "hllo", "hxllo"]),
        ("h[ae]llo", &["hallo", "hello"]),
        ("h[^e]llo", &["h[llo", "hallo", "hxllo"]),
        ("h[a-b]llo", &["hallo"]),
        ("h\\[llo", &["h[llo"]),
        (
            "*",
            &["h[llo", "hallo", "heeeello", "hello", "hllo", "hxllo", "other"],
        ),
        ("nothing*", &[]),
    ];
    for (pattern, want) in cases {
        let mut got: Vec<String> = redis::cmd("KEYS").arg(*pattern).query(&mut con).unwrap();
        got.sort();
        assert_eq!(got, *want, "KEYS {pattern}");
    }
}

#[test]
fn config_info_and_stats() {
    let server = Server::with_args(&["--maxclients", "7"]);
    let mut con = server.redis();
    let cfg: HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxclients")
        .query(&mut con)
        .unwrap();
    assert_eq!(cfg.get("maxclients").map(String::as_str), Some("7"));

    let () = redis::cmd("SET").arg("a").arg("1").query(&mut con).unwrap();
    for _ in 0..10 {
        let _: Option<String> = redis::cmd("GET").arg("a").query(&mut con).unwrap();
    }
    let info: String = redis::cmd("INFO").query(&mut con).unwrap();
    assert!(info.contains("# Keyspace"), "{info}");
    assert!(info.contains("db0:keys=1"), "{info}");
    assert!(info.contains("\r\n"), "INFO lines end in CRLF like Redis");

    let stats: String = redis::cmd("STATS").query(&mut con).unwrap();
    let json: serde_json::Value = serde_json::from_str(&stats).expect("STATS is JSON");
    let p99 = &json["commands"]["get"]["p99_us"];
    assert!(p99.is_number(), "commands.get.p99_us missing: {stats}");
}

#[test]
fn auth_with_requirepass() {
    let server = Server::with_args(&["--requirepass", "secret"]);
    let mut c = server.raw();
    assert_eq!(
        show(&c.cmd(&["GET", "a"])),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        show(&c.cmd(&["AUTH", "wrong"])),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        show(&c.cmd(&["SET", "a", "1"])),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(show(&c.cmd(&["AUTH", "secret"])), "+OK\r\n");
    assert_eq!(show(&c.cmd(&["SET", "a", "1"])), "+OK\r\n");
    assert_eq!(show(&c.cmd(&["GET", "a"])), "$1\r\n1\r\n");

    // The redis crate authenticates from the URL.
    let client = redis::Client::open(format!("redis://:secret@127.0.0.1:{}/", server.port)).unwrap();
    let mut con = client.get_connection_with_timeout(IO_TIMEOUT).unwrap();
    let v: String = redis::cmd("GET").arg("a").query(&mut con).unwrap();
    assert_eq!(v, "1");
}

#[test]
fn shutdown_command_exits_zero() {
    let mut server = Server::start();
    let mut c = server.raw();
    c.send(&resp(&["SHUTDOWN"]));
    let _ = c.read_to_eof();
    let status = server
        .wait_exit(std::time::Duration::from_secs(10))
        .expect("server did not exit after SHUTDOWN");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn sigterm_exits_zero() {
    let mut server = Server::start();
    let mut c = server.raw();
    assert_eq!(show(&c.cmd(&["PING"])), "+PONG\r\n");
    drop(c);
    let rc = unsafe { libc::kill(server.pid() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = server
        .wait_exit(std::time::Duration::from_secs(10))
        .expect("server did not exit after SIGTERM");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn sigterm_with_an_idle_client_connected_exits_zero() {
    let mut server = Server::start();
    let mut c = server.raw();
    assert_eq!(show(&c.cmd(&["PING"])), "+PONG\r\n");
    let rc = unsafe { libc::kill(server.pid() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = server
        .wait_exit(std::time::Duration::from_secs(10))
        .expect("server did not exit after SIGTERM while a client was idle");
    assert!(status.success(), "exit status {status}");
    drop(c);
}

#[test]
fn pipelined_auth_applies_from_the_next_command() {
    let server = Server::with_args(&["--requirepass", "secret"]);
    let mut c = server.raw();
    let mut wire = resp(&["GET", "a"]);
    wire.extend(resp(&["SET", "a", "1"]));
    // Arity and unknown-command errors come before the auth check, as in Redis.
    wire.extend(resp(&["GET"]));
    wire.extend(resp(&["AUTH", "secret"]));
    wire.extend(resp(&["SET", "a", "2"]));
    wire.extend(resp(&["GET", "a"]));
    c.send(&wire);
    c.expect(
        b"-NOAUTH Authentication required.\r\n-NOAUTH Authentication required.\r\n\
          -ERR wrong number of arguments for 'get' command\r\n+OK\r\n+OK\r\n$1\r\n2\r\n",
    );
    // A failed AUTH later does not log the client out.
    assert_eq!(
        show(&c.cmd(&["AUTH", "wrong"])),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(show(&c.cmd(&["GET", "a"])), "$1\r\n2\r\n");
    // AUTH default <pass> (Redis 6+ form) works too.
    let mut d = server.raw();
    assert_eq!(show(&d.cmd(&["AUTH", "default", "secret"])), "+OK\r\n");
    assert_eq!(show(&d.cmd(&["GET", "a"])), "$1\r\n2\r\n");
}

#[test]
fn shutdown_exits_zero_with_other_clients_connected() {
    let mut server = Server::start();
    let mut idle = server.raw();
    assert_eq!(show(&idle.cmd(&["PING"])), "+PONG\r\n");
    let mut partial = server.raw();
    partial.send(b"*2\r\n$3\r\nGET\r\n$10\r\nabc");
    let mut c = server.raw();
    c.send(&resp(&["SHUTDOWN"]));
    let _ = c.read_to_eof();
    let status = server
        .wait_exit(std::time::Duration::from_secs(10))
        .expect("server did not exit after SHUTDOWN while other clients were connected");
    assert!(status.success(), "exit status {status}");
    // The other clients are disconnected.
    assert!(idle.is_closed());
}

#[test]
fn set_accepts_a_repeated_ex_like_redis() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(
        show(&c.cmd(&["SET", "k", "v", "EX", "10", "EX", "20"])),
        "+OK\r\n"
    );
    let ttl = c.cmd(&["TTL", "k"]);
    assert!(ttl == b":20\r\n" || ttl == b":19\r\n", "{}", show(&ttl));
}

#[test]
fn decrby_i64_min_error_matches_redis() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(
        show(&c.cmd(&["DECRBY", "k", "-9223372036854775808"])),
        "-ERR decrement would overflow\r\n"
    );
    assert_eq!(show(&c.cmd(&["EXISTS", "k"])), ":0\r\n");
}
