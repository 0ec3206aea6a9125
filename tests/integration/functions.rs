//! FUNCTION and FCALL against the real server, after Redis 7.0's
//! tests/unit/functions.tcl: loading, listing, deleting, flushing, DUMP and
//! RESTORE, read-only calls, flags, registration errors, the load sandbox.

use crate::support::*;

fn q(c: &mut Raw, args: &[&str]) -> String {
    show(&c.cmd(args))
}

const TEST: &str = "#!lua name=test\nredis.register_function('test', function(KEYS, ARGV)\n  return redis.call('ping')\nend)";

#[test]
fn function_load_fcall_and_errors() {
    let server = Server::with_args(&["--workers", "3"]);
    let mut c = server.raw();
    assert_eq!(q(&mut c, &["FUNCTION", "LOAD", TEST]), "$4\r\ntest\r\n");
    // Every worker (new connections land on each) sees it.
    for _ in 0..6 {
        let mut other = server.raw();
        assert_eq!(q(&mut other, &["FCALL", "test", "0"]), "+PONG\r\n");
    }
    assert!(q(&mut c, &["FUNCTION", "LOAD", TEST]).contains("already exists"));
    assert!(q(&mut c, &["FUNCTION", "LOAD", "bad_arg", TEST]).contains("Unknown option given"));
    assert_eq!(
        q(&mut c, &["FUNCTION", "LOAD", "REPLACE", TEST]),
        "$4\r\ntest\r\n"
    );
    let e = q(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "REPLACE",
            "#!lua name=bad\nredis.register_function('test', function() return 1 end)",
        ],
    );
    assert!(e.contains("already exists"), "{e}");
    assert!(q(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=bad-name\nredis.register_function('x', function() end)"
        ]
    )
    .contains("Library names can only contain letters, numbers, or underscores(_)"));
    assert!(q(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "#!bad_engine name=x\nredis.register_function('x', function() end)"
        ]
    )
    .contains("Engine 'bad_engine' not found"));
    assert!(q(&mut c, &["FUNCTION", "LOAD", "#!lua name=x\nbad syntax"]).contains("Error compiling function"));
    assert!(q(&mut c, &["FCALL", "nope", "0"]).contains("Function not found"));
    assert!(q(&mut c, &["FCALL", "test", "10", "key1"])
        .contains("Number of keys can't be greater than number of args"));
    assert!(q(&mut c, &["FCALL", "test", "-1"]).contains("Number of keys can't be negative"));
    assert!(q(&mut c, &["FUNCTION", "DELETE", "nope"]).contains("Library not found"));
    assert!(q(&mut c, &["FUNCTION", "KILL"]).contains("No scripts in execution"));
    assert!(q(&mut c, &["FUNCTION", "BAD_SUBCOMMAND"]).contains("unknown subcommand"));
    assert_eq!(q(&mut c, &["FUNCTION", "DELETE", "test"]), "+OK\r\n");
    assert!(q(&mut c, &["FCALL", "test", "0"]).contains("Function not found"));
}

#[test]
fn functions_get_keys_and_args_and_ro_calls_refuse_writes() {
    let server = Server::start();
    let mut c = server.raw();
    let lib = "#!lua name=lib\n\
        redis.register_function('set', function(keys, args) return redis.call('set', keys[1], args[1]) end)\n\
        redis.register_function{function_name='get', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}\n\
        redis.register_function{function_name='sneaky', callback=function(keys) return redis.call('set', keys[1], 'x') end, flags={'no-writes'}}";
    assert_eq!(q(&mut c, &["FUNCTION", "LOAD", lib]), "$3\r\nlib\r\n");
    assert_eq!(q(&mut c, &["FCALL", "set", "1", "k", "v"]), "+OK\r\n");
    assert_eq!(q(&mut c, &["FCALL_RO", "get", "1", "k"]), "$1\r\nv\r\n");
    assert!(q(&mut c, &["FCALL_RO", "set", "1", "k", "w"])
        .contains("Can not execute a script with write flag using *_ro command"));
    assert!(q(&mut c, &["FCALL", "sneaky", "1", "k"])
        .contains("Write commands are not allowed from read-only scripts"));
    assert_eq!(q(&mut c, &["GET", "k"]), "$1\r\nv\r\n");
    // Errors name the function.
    q(&mut c, &["RPUSH", "l", "x"]);
    let e = q(&mut c, &["FCALL", "set", "1", "l", "v"]);
    assert_eq!(e, "+OK\r\n");
    let bad =
        "#!lua name=bad\nredis.register_function('boom', function() return redis.call('incr', 'l') end)";
    q(&mut c, &["DEL", "l"]);
    q(&mut c, &["RPUSH", "l", "x"]);
    q(&mut c, &["FUNCTION", "LOAD", bad]);
    let e = q(&mut c, &["FCALL", "boom", "0"]);
    assert!(
        e.starts_with("-WRONGTYPE") && e.contains("script: boom, on @user_function:2."),
        "{e}"
    );
}

#[test]
fn function_list_stats_dump_restore_and_flush() {
    let server = Server::start();
    let mut c = server.raw();
    q(&mut c, &["FUNCTION", "LOAD", TEST]);
    assert_eq!(
        q(&mut c, &["FUNCTION", "LIST"]),
        "*1\r\n*6\r\n$12\r\nlibrary_name\r\n$4\r\ntest\r\n$6\r\nengine\r\n$3\r\nLUA\r\n$9\r\nfunctions\r\n*1\r\n*6\r\n$4\r\nname\r\n$4\r\ntest\r\n$11\r\ndescription\r\n$-1\r\n$5\r\nflags\r\n*0\r\n"
    );
    let with_code = q(&mut c, &["FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "te*"]);
    assert!(
        with_code.contains("library_code") && with_code.contains("register_function"),
        "{with_code}"
    );
    assert_eq!(
        q(&mut c, &["FUNCTION", "LIST", "LIBRARYNAME", "nomatch*"]),
        "*0\r\n"
    );
    assert!(q(&mut c, &["FUNCTION", "LIST", "bad_argument"]).contains("Unknown argument bad_argument"));
    assert!(q(&mut c, &["FUNCTION", "LIST", "LIBRARYNAME"]).contains("library name argument was not given"));
    assert!(q(&mut c, &["FUNCTION", "LIST", "WITHCODE", "WITHCODE"]).contains("Unknown argument WITHCODE"));
    assert_eq!(
        q(&mut c, &["FUNCTION", "STATS"]),
        "*4\r\n$14\r\nrunning_script\r\n$-1\r\n$7\r\nengines\r\n*2\r\n$3\r\nLUA\r\n*4\r\n$15\r\nlibraries_count\r\n:1\r\n$15\r\nfunctions_count\r\n:1\r\n"
    );
    let dump = c.cmd(&["FUNCTION", "DUMP"]);
    // The payload, without its bulk header.
    let start = dump.iter().position(|&b| b == b'\n').unwrap() + 1;
    let payload = dump[start..dump.len() - 2].to_vec();
    assert_eq!(q(&mut c, &["FUNCTION", "FLUSH"]), "+OK\r\n");
    assert_eq!(q(&mut c, &["FUNCTION", "LIST"]), "*0\r\n");
    assert_eq!(show(&c.cmd(&[&b"FUNCTION"[..], b"RESTORE", &payload])), "+OK\r\n");
    assert_eq!(q(&mut c, &["FCALL", "test", "0"]), "+PONG\r\n");
    // APPEND (the default) refuses an existing library; REPLACE and FLUSH do not.
    assert!(show(&c.cmd(&[&b"FUNCTION"[..], b"RESTORE", &payload])).contains("already exists"));
    assert_eq!(
        show(&c.cmd(&[&b"FUNCTION"[..], b"RESTORE", &payload, b"REPLACE"])),
        "+OK\r\n"
    );
    assert_eq!(
        show(&c.cmd(&[&b"FUNCTION"[..], b"RESTORE", &payload, b"FLUSH"])),
        "+OK\r\n"
    );
    assert!(show(&c.cmd(&[&b"FUNCTION"[..], b"RESTORE", &payload, b"BAD"])).contains("Wrong restore policy"));
    assert!(
        q(&mut c, &["FUNCTION", "RESTORE", "bad payload"]).contains("payload version or checksum are wrong")
    );
    assert_eq!(q(&mut c, &["FUNCTION", "FLUSH", "ASYNC"]), "+OK\r\n");
    assert!(q(&mut c, &["FUNCTION", "FLUSH", "bad"]).starts_with("-ERR"));
}

#[test]
fn library_registration_errors_and_the_load_sandbox() {
    let server = Server::start();
    let mut c = server.raw();
    let load = |c: &mut Raw, body: &str| {
        q(
            c,
            &["FUNCTION", "LOAD", "REPLACE", &format!("#!lua name=lib2\n{body}")],
        )
    };
    let cases = [
        ("redis.register_function('f1', function() return 1 end)\nredis.register_function('f1', function() return 1 end)", "Function already exists in the library"),
        ("redis.register_function('f1')", "calling redis.register_function with a single argument is only applicable to Lua table"),
        ("redis.register_function()", "wrong number of arguments to redis.register_function"),
        ("redis.register_function(1, function() end)", "first argument to redis.register_function must be a string"),
        ("redis.register_function('a-b', function() end)", "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"),
        ("redis.register_function('', function() end)", "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"),
        ("return math.random()", "attempted to access nonexistent global variable 'math'"),
        ("return redis.call('ping')", "attempted to access nonexistent global variable 'call'"),
        ("return redis.setresp(3)", "attempted to access nonexistent global variable 'setresp'"),
        ("return 1", "No functions registered"),
        ("local a = 1 while 1 do a = a + 1 end", "FUNCTION LOAD timeout"),
        ("a = 1", "Attempt to modify a readonly table"),
        ("mt = getmetatable(_G)", "Script attempted to access nonexistent global variable 'getmetatable'"),
        ("redis.register_function{function_name=function() return 1 end, callback=function() end}", "function_name argument given to redis.register_function must be a string"),
        ("redis.register_function{function_name='f1', callback='x'}", "callback argument given to redis.register_function must be a function"),
        ("redis.register_function{function_name='f1', callback=function() end, description=1}", "description argument given to redis.register_function must be a string"),
        ("redis.register_function{function_name='f1', callback=function() end, some_unknown='x'}", "unknown argument given to redis.register_function"),
        ("redis.register_function{callback=function() end}", "redis.register_function must get a function name argument"),
        ("redis.register_function{function_name='f1'}", "redis.register_function must get a callback argument"),
        ("redis.register_function{function_name='f1', callback=function() end, flags='no-writes'}", "flags argument to redis.register_function must be a table representing function flags"),
        ("redis.register_function{function_name='f1', callback=function() end, flags={'bad-flag'}}", "unknown flag given"),
    ];
    for (body, expected) in cases {
        let e = load(&mut c, body);
        assert!(e.starts_with('-') && e.contains(expected), "{body}: {e}");
    }
    assert!(q(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "#! name=test\nredis.register_function('foo', function() return 1 end)"
        ]
    )
    .contains("Engine '' not found"));
    assert_eq!(
        q(
            &mut c,
            &[
                "FUNCTION",
                "LOAD",
                "#!lua name=test foo=bar\nredis.register_function('foo', function() return 1 end)"
            ]
        ),
        "-ERR Invalid metadata value given: foo=bar\r\n"
    );
    assert_eq!(
        q(
            &mut c,
            &[
                "FUNCTION",
                "LOAD",
                "#!lua\nredis.register_function('foo', function() return 1 end)"
            ]
        ),
        "-ERR Library name was not given\r\n"
    );
    assert_eq!(
        q(
            &mut c,
            &[
                "FUNCTION",
                "LOAD",
                "#!lua name=foo name=bar\nredis.register_function('foo', function() return 1 end)"
            ]
        ),
        "-ERR Invalid metadata value, name argument was given multiple times\r\n"
    );
    assert_eq!(
        q(
            &mut c,
            &[
                "FUNCTION",
                "LOAD",
                "#!lua name=\"foo\"\nredis.register_function('foo', function() return 1 end)"
            ]
        ),
        "$3\r\nfoo\r\n"
    );
    // Registering outside a load, and writing to the library API, both fail.
    let lib = "#!lua name=lib1\nlocal lib = redis\n\
        lib.register_function('f1', function() lib.redis = redis return {ok='OK'} end)\n\
        lib.register_function('f2', function() lib.register_function('f3', function() end) end)\n\
        redis.register_function('f4', function() redis.register_function('f5', function() end) end)";
    assert_eq!(q(&mut c, &["FUNCTION", "LOAD", lib]), "$4\r\nlib1\r\n");
    assert!(q(&mut c, &["FCALL", "f1", "0"]).contains("Attempt to modify a readonly table"));
    assert!(q(&mut c, &["FCALL", "f2", "0"]).contains("can only be called on FUNCTION LOAD command"));
    assert!(
        q(&mut c, &["FCALL", "f4", "0"]).contains("attempt to call field 'register_function' (a nil value)")
    );
    assert_eq!(
        q(&mut c, &["FUNCTION", "LOAD", "#!lua name=named\nredis.register_function{function_name='n1', callback=function() return 'hello' end, description='some desc'}"]),
        "$5\r\nnamed\r\n"
    );
    assert!(q(&mut c, &["FUNCTION", "LIST", "LIBRARYNAME", "named"]).contains("some desc"));
}
