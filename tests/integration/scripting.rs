//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT against the real server,
//! after Redis 7.0's tests/unit/scripting.tcl: conversions both ways in
//! RESP2 and RESP3, error messages, the sandbox, shebang flags, NOSCRIPT,
//! read-only variants, scripts in MULTI, and atomicity across workers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::support::*;

fn q(c: &mut Raw, args: &[&str]) -> String {
    show(&c.cmd(args))
}

fn eval(c: &mut Raw, script: &str, keys: &[&str], args: &[&str]) -> String {
    let numkeys = keys.len().to_string();
    let mut all = vec!["EVAL", script, numkeys.as_str()];
    all.extend_from_slice(keys);
    all.extend_from_slice(args);
    q(c, &all)
}

#[test]
fn eval_converts_lua_values_to_resp2_replies() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(eval(&mut c, "return 'hello'", &[], &[]), "$5\r\nhello\r\n");
    assert_eq!(eval(&mut c, "return 100.5", &[], &[]), ":100\r\n");
    assert_eq!(eval(&mut c, "return -3.9", &[], &[]), ":-3\r\n");
    assert_eq!(eval(&mut c, "return true", &[], &[]), ":1\r\n");
    assert_eq!(eval(&mut c, "return false", &[], &[]), "$-1\r\n");
    assert_eq!(eval(&mut c, "return nil", &[], &[]), "$-1\r\n");
    assert_eq!(eval(&mut c, "return {ok='fine'}", &[], &[]), "+fine\r\n");
    assert_eq!(eval(&mut c, "return {err='My Error'}", &[], &[]), "-My Error\r\n");
    assert_eq!(
        eval(&mut c, "return {1,2,3,'ciao',{1,2}}", &[], &[]),
        "*5\r\n:1\r\n:2\r\n:3\r\n$4\r\nciao\r\n*2\r\n:1\r\n:2\r\n"
    );
    // An array stops at its first nil.
    assert_eq!(eval(&mut c, "return {1,2,nil,4}", &[], &[]), "*2\r\n:1\r\n:2\r\n");
    assert_eq!(
        eval(
            &mut c,
            "return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}",
            &["a", "b"],
            &["c", "d"]
        ),
        "*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n"
    );
    assert_eq!(
        eval(&mut c, "return redis.status_reply('OKish')", &[], &[]),
        "+OKish\r\n"
    );
    assert_eq!(
        eval(
            &mut c,
            "return redis.error_reply('MY_ERR_CODE custom msg')",
            &[],
            &[]
        ),
        "-MY_ERR_CODE custom msg\r\n"
    );
    assert_eq!(
        eval(&mut c, "return redis.error_reply('oops')", &[], &[]),
        "-ERR oops\r\n"
    );
}

#[test]
fn redis_call_replies_become_lua_values_in_resp2() {
    let server = Server::start();
    let mut c = server.raw();
    q(&mut c, &["SET", "mykey", "myval"]);
    q(&mut c, &["RPUSH", "mylist", "a", "b", "c"]);
    assert_eq!(
        eval(&mut c, "return redis.call('get',KEYS[1])", &["mykey"], &[]),
        "$5\r\nmyval\r\n"
    );
    // A nil bulk is false, which returns as nil.
    assert_eq!(
        eval(&mut c, "return type(redis.call('get','nokey'))", &[], &[]),
        "$7\r\nboolean\r\n"
    );
    assert_eq!(
        eval(&mut c, "return redis.call('incr','counter')", &[], &[]),
        ":1\r\n"
    );
    assert_eq!(
        eval(&mut c, "return type(redis.call('incr','counter'))", &[], &[]),
        "$6\r\nnumber\r\n"
    );
    assert_eq!(
        eval(
            &mut c,
            "return redis.call('lrange',KEYS[1],0,-1)",
            &["mylist"],
            &[]
        ),
        "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
    );
    assert_eq!(
        eval(
            &mut c,
            "local t = redis.call('set','x','1') return t.ok",
            &[],
            &[]
        ),
        "$2\r\nOK\r\n"
    );
    assert_eq!(
        eval(
            &mut c,
            "local e = redis.pcall('incr','mylist') return e.err",
            &[],
            &[]
        ),
        "$65\r\nWRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    // Numbers become arguments as Redis formats them (%.17g).
    assert_eq!(
        eval(&mut c, "redis.call('set','n',3.5) redis.call('set','i',7) return {redis.call('get','n'), redis.call('get','i')}", &[], &[]),
        "*2\r\n$3\r\n3.5\r\n$1\r\n7\r\n"
    );
    assert_eq!(
        eval(
            &mut c,
            "redis.call('set', 'key', '12039611435714932082') return redis.call('get', 'key')",
            &[],
            &[]
        ),
        "$20\r\n12039611435714932082\r\n"
    );
}

#[test]
fn resp3_conversions_follow_redis_setresp_and_the_client_protocol() {
    let server = Server::start();
    let mut c = server.raw();
    q(&mut c, &["HSET", "h", "f", "v"]);
    q(&mut c, &["SADD", "s", "m"]);
    // RESP2 client, script in RESP3: a map is a table {map=...}.
    assert_eq!(
        eval(
            &mut c,
            "redis.setresp(3) local m = redis.call('hgetall','h') return m.map.f",
            &[],
            &[]
        ),
        "$1\r\nv\r\n"
    );
    assert_eq!(
        eval(
            &mut c,
            "redis.setresp(3) local s = redis.call('smembers','s') return tostring(s.set.m)",
            &[],
            &[]
        ),
        "$4\r\ntrue\r\n"
    );
    assert_eq!(
        eval(
            &mut c,
            "redis.setresp(3) return redis.call('get','nokey') == nil",
            &[],
            &[]
        ),
        ":1\r\n"
    );
    // A RESP2 client gets maps flattened and doubles as bulk strings.
    assert_eq!(
        eval(
            &mut c,
            "redis.setresp(3) return redis.call('hgetall','h')",
            &[],
            &[]
        ),
        "*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
    );
    assert_eq!(eval(&mut c, "return {double=3.14}", &[], &[]), "$4\r\n3.14\r\n");
    // A RESP3 client gets RESP3 types.
    q(&mut c, &["HELLO", "3"]);
    assert_eq!(
        eval(
            &mut c,
            "redis.setresp(3) return redis.call('hgetall','h')",
            &[],
            &[]
        ),
        "%1\r\n$1\r\nf\r\n$1\r\nv\r\n"
    );
    assert_eq!(eval(&mut c, "return {double=3.14}", &[], &[]), ",3.14\r\n");
    assert_eq!(
        eval(&mut c, "return {map={a=1}}", &[], &[]),
        "%1\r\n$1\r\na\r\n:1\r\n"
    );
    assert_eq!(
        eval(&mut c, "return {set={a=true}}", &[], &[]),
        "~1\r\n$1\r\na\r\n"
    );
    assert_eq!(eval(&mut c, "redis.setresp(3) return true", &[], &[]), "#t\r\n");
    assert_eq!(eval(&mut c, "redis.setresp(3) return false", &[], &[]), "#f\r\n");
    assert_eq!(
        eval(&mut c, "return {big_number='123456789012345678901234'}", &[], &[]),
        "(123456789012345678901234\r\n"
    );
    assert_eq!(eval(&mut c, "return nil", &[], &[]), "_\r\n");
    assert_eq!(
        eval(
            &mut c,
            "redis.setresp(3) local d = redis.call('zincrby','z',1.5,'m') return d.double * 2",
            &[],
            &[]
        ),
        ":3\r\n"
    );
    assert!(eval(&mut c, "redis.setresp(4)", &[], &[]).starts_with("-ERR RESP version must be 2 or 3."));
}

#[test]
fn script_errors_carry_redis_7_messages() {
    let server = Server::start();
    let mut c = server.raw();
    let sha = |s: &str| hex(sha1_of(s));
    let script = "return redis.call('incr','l')";
    q(&mut c, &["RPUSH", "l", "x"]);
    assert_eq!(
        eval(&mut c, script, &[], &[]),
        format!("-WRONGTYPE Operation against a key holding the wrong kind of value script: {}, on @user_script:1.\r\n", sha(script))
    );
    assert!(eval(&mut c, "return redis.call('nosuchcommand')", &[], &[])
        .starts_with("-ERR Unknown Redis command called from script script: "));
    assert!(eval(&mut c, "redis.call('set','invalid')", &[], &[])
        .starts_with("-ERR Wrong number of args calling Redis command from script"));
    assert!(eval(&mut c, "return redis.call()", &[], &[])
        .starts_with("-ERR Please specify at least one argument for this redis lib call"));
    assert!(eval(&mut c, "return redis.call('set','k',{})", &[], &[])
        .starts_with("-ERR Lua redis lib command arguments must be strings or integers"));
    assert!(eval(&mut c, "redis.sha1hex()", &[], &[]).contains("wrong number"));
    assert!(eval(&mut c, "error('boom')", &[], &[]).starts_with("-ERR user_script:1: boom script: "));
    assert!(eval(&mut c, "error({err='CUSTOM code'})", &[], &[]).starts_with("-CUSTOM code script: "));
    assert!(eval(&mut c, "return 'unterminated", &[], &[])
        .starts_with("-ERR Error compiling script (new function): user_script:1:"));
    assert_eq!(
        eval(
            &mut c,
            "local t = redis.pcall('nosuch') return t['err']",
            &[],
            &[]
        ),
        "$44\r\nERR Unknown Redis command called from script\r\n"
    );
    assert_eq!(
        q(&mut c, &["EVAL", "return 1", "-12"]),
        "-ERR Number of keys can't be negative\r\n"
    );
    assert_eq!(
        q(&mut c, &["EVAL", "return 1", "3", "a"]),
        "-ERR Number of keys can't be greater than number of args\r\n"
    );
    assert_eq!(
        q(&mut c, &["EVAL", "return 1", "x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert!(eval(&mut c, "return redis.call('multi')", &[], &[])
        .starts_with("-ERR This Redis command is not allowed from script"));
    assert!(eval(&mut c, "return redis.call('eval','return 1','0')", &[], &[])
        .starts_with("-ERR This Redis command is not allowed from script"));
}

/// Lowercase hex of a digest.
pub fn hex(bytes: [u8; 20]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA1 of `s`, for expected messages (the same algorithm as redis.sha1hex).
fn sha1_of(s: &str) -> [u8; 20] {
    sha1_smol::Sha1::from(s).digest().bytes()
}

#[test]
fn the_sandbox_protects_globals_and_hides_os_io_and_files() {
    let server = Server::start();
    let mut c = server.raw();
    let e = eval(&mut c, "return a", &[], &[]);
    assert!(
        e.starts_with("-ERR user_script:1: Script attempted to access nonexistent global variable 'a'"),
        "{e}"
    );
    let e = eval(&mut c, "a=10", &[], &[]);
    assert!(e.contains("Attempt to modify a readonly table"), "{e}");
    for name in ["os", "io", "loadfile", "dofile", "require", "package", "debug"] {
        let e = eval(&mut c, &format!("return {name}"), &[], &[]);
        assert!(e.contains("nonexistent global variable"), "{name}: {e}");
    }
    for trick in [
        "redis.call = function() return 1 end",
        "string.len = nil",
        "rawset(_G, 'x', 1)",
        "setmetatable(_G, {})",
    ] {
        let e = eval(&mut c, trick, &[], &[]);
        assert!(e.starts_with('-'), "{trick}: {e}");
    }
    // Locals and library functions work.
    assert_eq!(
        eval(
            &mut c,
            "local x = string.rep('a', 3) return x .. #ARGV",
            &[],
            &["q"]
        ),
        "$4\r\naaa1\r\n"
    );
    assert_eq!(
        eval(&mut c, "return {redis.sha1hex(''), redis.sha1hex('Pizza & Mandolino')}", &[], &[]),
        "*2\r\n$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n$40\r\n74822d82031af7493c20eefa13bd07ec4fada82f\r\n"
    );
    // math.random is seeded the same way for every script.
    let a = eval(&mut c, "return tostring(math.random())", &[], &[]);
    let b = eval(&mut c, "return tostring(math.random()) ", &[], &[]);
    assert_eq!(a, b);
    assert_eq!(eval(&mut c, "return math.random(10) >= 1", &[], &[]), ":1\r\n");
    assert_eq!(
        eval(
            &mut c,
            "redis.log(redis.LOG_WARNING, 'from a script') return 1",
            &[],
            &[]
        ),
        ":1\r\n"
    );
    assert_eq!(
        eval(&mut c, "redis.set_repl(redis.REPL_ALL) return 1", &[], &[]),
        ":1\r\n"
    );
    assert_eq!(
        eval(&mut c, "return type(redis.REDIS_VERSION)", &[], &[]),
        "$6\r\nstring\r\n"
    );
}

#[test]
fn evalsha_script_load_exists_and_flush_share_one_cache_across_workers() {
    let server = Server::with_args(&["--workers", "4"]);
    let mut a = server.raw();
    let sha = q(&mut a, &["SCRIPT", "LOAD", "return 'loaded'"]);
    assert_eq!(sha, "$40\r\nb534286061d4b9e4026607613b95c06c06015ae8\r\n");
    let sha = "b534286061d4b9e4026607613b95c06c06015ae8";
    // Other connections (round-robin over the workers) see it at once.
    for _ in 0..8 {
        let mut b = server.raw();
        assert_eq!(q(&mut b, &["EVALSHA", sha, "0"]), "$6\r\nloaded\r\n");
        assert_eq!(
            q(&mut b, &["EVALSHA", &sha.to_uppercase(), "0"]),
            "$6\r\nloaded\r\n"
        );
    }
    assert_eq!(
        q(
            &mut a,
            &[
                "SCRIPT",
                "EXISTS",
                sha,
                "ffffffffffffffffffffffffffffffffffffffff"
            ]
        ),
        "*2\r\n:1\r\n:0\r\n"
    );
    // EVAL caches what it runs.
    eval(&mut a, "return 'evaled'", &[], &[]);
    let evaled = show(&a.cmd(&[
        "SCRIPT",
        "EXISTS",
        &crate::scripting::hex(sha1_of("return 'evaled'")),
    ]));
    assert_eq!(evaled, "*1\r\n:1\r\n");
    assert_eq!(q(&mut a, &["SCRIPT", "FLUSH"]), "+OK\r\n");
    assert_eq!(q(&mut a, &["SCRIPT", "EXISTS", sha]), "*1\r\n:0\r\n");
    for _ in 0..4 {
        let mut b = server.raw();
        assert_eq!(
            q(&mut b, &["EVALSHA", sha, "0"]),
            "-NOSCRIPT No matching script. Please use EVAL.\r\n"
        );
    }
    assert_eq!(
        q(&mut a, &["EVALSHA", "NotValidShaSUM", "0"]),
        "-NOSCRIPT No matching script. Please use EVAL.\r\n"
    );
    assert_eq!(q(&mut a, &["SCRIPT", "FLUSH", "ASYNC"]), "+OK\r\n");
    assert!(q(&mut a, &["SCRIPT", "FLUSH", "NOW"]).starts_with("-ERR"));
    assert!(q(&mut a, &["SCRIPT", "LOAD", "return 'x"]).starts_with("-ERR Error compiling script"));
    assert_eq!(
        q(&mut a, &["SCRIPT", "KILL"]),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
}

#[test]
fn read_only_scripts_refuse_writes_and_shebang_flags_apply() {
    let server = Server::start();
    let mut c = server.raw();
    q(&mut c, &["SET", "foo", "bar"]);
    assert_eq!(
        q(
            &mut c,
            &["EVAL_RO", "return redis.call('get',KEYS[1])", "1", "foo"]
        ),
        "$3\r\nbar\r\n"
    );
    let e = q(&mut c, &["EVAL_RO", "redis.call('del',KEYS[1])", "1", "foo"]);
    assert!(
        e.starts_with("-ERR Write commands are not allowed from read-only scripts."),
        "{e}"
    );
    let sha = show(&c.cmd(&["SCRIPT", "LOAD", "return redis.call('del',KEYS[1])"]));
    let sha = sha.lines().nth(1).unwrap().to_string();
    let e = q(&mut c, &["EVALSHA_RO", &sha, "1", "foo"]);
    assert!(
        e.starts_with("-ERR Write commands are not allowed from read-only scripts."),
        "{e}"
    );
    assert_eq!(q(&mut c, &["GET", "foo"]), "$3\r\nbar\r\n");
    let e = eval(
        &mut c,
        "#!lua flags=no-writes\nreturn redis.call('set','x','1')",
        &[],
        &[],
    );
    assert!(
        e.starts_with("-ERR Write commands are not allowed from read-only scripts."),
        "{e}"
    );
    assert_eq!(
        eval(
            &mut c,
            "#!lua flags=no-writes\nreturn redis.call('get','foo')",
            &[],
            &[]
        ),
        "$3\r\nbar\r\n"
    );
    let e = q(&mut c, &["EVAL_RO", "#!lua\nreturn 1", "0"]);
    assert!(
        e.contains("Can not execute a script with write flag using *_ro command"),
        "{e}"
    );
    assert!(eval(&mut c, "#!python\nreturn 1", &[], &[]).contains("Unexpected engine in script shebang"));
    assert!(eval(&mut c, "#!lua foo=bar\nreturn 1", &[], &[]).contains("Unknown lua shebang option"));
    assert!(eval(&mut c, "#!lua flags=allow-oom,nope\nreturn 1", &[], &[])
        .contains("Unexpected flag in script shebang"));
    // The shebang keeps line numbers.
    assert!(eval(&mut c, "#!lua\nreturn a", &[], &[]).contains("on @user_script:2."));
}

#[test]
fn blocking_commands_in_scripts_answer_at_once_and_select_stays_inside_the_script() {
    let server = Server::start();
    let mut c = server.raw();
    // Redis 7.0 refuses these in scripts; kvserver runs them without
    // blocking, as inside EXEC (docs/protocol.md): nil at once.
    for script in [
        "return redis.pcall('blpop','x',0)",
        "return redis.pcall('brpop','empty_list',0)",
        "return redis.pcall('blmove','l1','l2','LEFT','LEFT',0)",
        "return redis.pcall('bzpopmin','empty_zset',0)",
    ] {
        assert_eq!(eval(&mut c, script, &[], &[]), "$-1\r\n", "{script}");
    }
    q(&mut c, &["RPUSH", "x", "v"]);
    assert_eq!(
        eval(&mut c, "return redis.call('blpop','x',0)", &["x"], &[]),
        "*2\r\n$1\r\nx\r\n$1\r\nv\r\n"
    );
    q(&mut c, &["SET", "here", "0"]);
    assert_eq!(
        eval(
            &mut c,
            "redis.call('select', 9) redis.call('set','there','9') return redis.call('get','there')",
            &[],
            &[]
        ),
        "$1\r\n9\r\n"
    );
    // The client stays in its database.
    assert_eq!(q(&mut c, &["GET", "here"]), "$1\r\n0\r\n");
    assert_eq!(q(&mut c, &["GET", "there"]), "$-1\r\n");
    q(&mut c, &["SELECT", "9"]);
    assert_eq!(q(&mut c, &["GET", "there"]), "$1\r\n9\r\n");
}

#[test]
fn undeclared_and_keyless_commands_work_from_scripts() {
    let server = Server::with_args(&["--workers", "2"]);
    let mut c = server.raw();
    for i in 0..40 {
        q(&mut c, &["SET", &format!("k{i}"), &i.to_string()]);
    }
    // No key declared: every access is undeclared.
    assert_eq!(
        eval(
            &mut c,
            "local s = 0 for i = 0, 39 do s = s + tonumber(redis.call('get','k'..i)) end return s",
            &[],
            &[]
        ),
        ":780\r\n"
    );
    assert_eq!(
        eval(&mut c, "return redis.call('dbsize')", &["k1"], &[]),
        ":40\r\n"
    );
    assert_eq!(
        eval(&mut c, "return #redis.call('keys','k*')", &[], &[]),
        ":40\r\n"
    );
    // A keyless command after a write cannot take every shard any more: a
    // clear error (the write stays), and the script's next runs start with
    // every shard held.
    let script = "redis.call('set', KEYS[1], 'x') return redis.call('dbsize')";
    let e = eval(&mut c, script, &["new"], &[]);
    assert!(e.starts_with("-ERR a command that needs every shard"), "{e}");
    assert_eq!(q(&mut c, &["GET", "new"]), "$1\r\nx\r\n");
    assert_eq!(eval(&mut c, script, &["new2"], &[]), ":42\r\n");
    assert_eq!(eval(&mut c, "return redis.call('ping')", &[], &[]), "+PONG\r\n");
}

#[test]
fn eval_inside_multi_runs_with_the_transaction() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(q(&mut c, &["MULTI"]), "+OK\r\n");
    assert_eq!(q(&mut c, &["SET", "a", "1"]), "+QUEUED\r\n");
    assert_eq!(
        q(&mut c, &["EVAL", "return redis.call('incr', KEYS[1])", "1", "a"]),
        "+QUEUED\r\n"
    );
    assert_eq!(
        q(&mut c, &["EVAL", "return redis.call('get', 'a')", "0"]),
        "+QUEUED\r\n"
    );
    assert_eq!(q(&mut c, &["EXEC"]), "*3\r\n+OK\r\n:2\r\n$1\r\n2\r\n");
}

#[test]
fn commandstats_count_commands_called_from_scripts() {
    let server = Server::start();
    let mut c = server.raw();
    eval(
        &mut c,
        "redis.call('set','x','1') redis.call('set','x','2') return 1",
        &[],
        &[],
    );
    let info = q(&mut c, &["INFO", "commandstats"]);
    assert!(info.contains("cmdstat_set:calls=2"), "{info}");
    assert!(info.contains("cmdstat_eval:calls=1"), "{info}");
    let info = q(&mut c, &["INFO", "memory"]);
    assert!(info.contains("used_memory_lua:"), "{info}");
    assert!(info.contains("number_of_cached_scripts:1"), "{info}");
}

/// Scripts move a unit between two keys; readers on other workers must
/// always see the sum unchanged (never the state between the two calls).
#[test]
fn scripts_are_atomic_for_readers_on_other_workers() {
    let server = Server::with_args(&["--workers", "4"]);
    let mut c = server.raw();
    q(&mut c, &["MSET", "a", "1000000", "b", "0"]);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut r = server.raw();
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let reply = show(&r.cmd(&["MGET", "a", "b"]));
                    let nums: Vec<i64> = reply
                        .lines()
                        .filter(|l| !l.starts_with('*') && !l.starts_with('$'))
                        .map(|l| l.parse().unwrap())
                        .collect();
                    assert_eq!(nums.iter().sum::<i64>(), 1_000_000, "{reply}");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    // One writer declares its keys, the other declares none (escalation).
    let writers: Vec<_> = [true, false]
        .into_iter()
        .map(|declared| {
            let mut w = server.raw();
            thread::spawn(move || {
                let script = "redis.call('decr', 'a') redis.call('incr', 'b') return 1";
                for _ in 0..10_000 {
                    let reply = if declared {
                        w.cmd(&["EVAL", script, "2", "a", "b"])
                    } else {
                        w.cmd(&["EVAL", script, "0"])
                    };
                    assert_eq!(show(&reply), ":1\r\n");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
    assert_eq!(
        q(&mut c, &["MGET", "a", "b"]),
        "*2\r\n$6\r\n980000\r\n$5\r\n20000\r\n"
    );
}

/// A script past `busy-reply-threshold`: clients of its shard get -BUSY,
/// clients of other shards are served, SCRIPT KILL stops it; after a write
/// it is UNKILLABLE and only SHUTDOWN NOSAVE stops the server.
#[test]
fn a_busy_script_answers_busy_to_its_shard_only_and_can_be_killed() {
    let mut server = Server::with_args(&["--workers", "4"]);
    let mut c = server.raw();
    assert_eq!(
        q(&mut c, &["CONFIG", "SET", "busy-reply-threshold", "50"]),
        "+OK\r\n"
    );
    assert_eq!(
        q(&mut c, &["CONFIG", "GET", "lua-time-limit"]),
        "*2\r\n$14\r\nlua-time-limit\r\n$2\r\n50\r\n"
    );
    let mut runner = server.raw();
    runner.send(&resp(&["EVAL", "while true do end", "1", "a"]));
    let mut other = server.raw();
    assert!(
        eventually(Duration::from_secs(20), || q(&mut other, &["GET", "a"])
            .starts_with("-BUSY")),
        "never BUSY"
    );
    // Some key lives in another shard and is served.
    let served = (0..64).any(|i| q(&mut other, &["GET", &format!("key{i}")]) == "$-1\r\n");
    assert!(served, "no key of another shard was served");
    assert_eq!(q(&mut other, &["PING"]), "+PONG\r\n");
    assert!(q(&mut other, &["FUNCTION", "KILL"]).starts_with("-BUSY"));
    assert_eq!(q(&mut other, &["SCRIPT", "KILL"]), "+OK\r\n");
    let killed = show(&runner.read_reply());
    assert!(
        killed.starts_with("-ERR Script killed by user with SCRIPT KILL..."),
        "{killed}"
    );
    assert_eq!(q(&mut other, &["GET", "a"]), "$-1\r\n");

    runner.send(&resp(&[
        "EVAL",
        "redis.call('set', KEYS[1], 'v') while true do end",
        "1",
        "a",
    ]));
    assert!(eventually(Duration::from_secs(20), || q(
        &mut other,
        &["GET", "a"]
    )
    .starts_with("-BUSY")));
    assert!(q(&mut other, &["SCRIPT", "KILL"]).starts_with("-UNKILLABLE"));
    assert!(q(&mut other, &["SHUTDOWN"]).starts_with("-BUSY"));
    other.send(&resp(&["SHUTDOWN", "NOSAVE"]));
    assert!(
        server.wait_exit(Duration::from_secs(20)).is_some(),
        "SHUTDOWN NOSAVE did not stop the server"
    );
}
