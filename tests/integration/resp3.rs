//! RESP3: `HELLO 2|3`, and every reply kind byte for byte after `HELLO 3`.
//! Redis 7 is the reference for which command answers which RESP3 type.

use std::process::Command;
use std::time::Duration;

use crate::cli::{run_bounded, tool_present};
use crate::support::*;

/// The HELLO map for a connection with `id` speaking `proto`, in RESP3.
fn hello_map(id: &str, proto: u8) -> String {
    format!(
        "%7\r\n$6\r\nserver\r\n$8\r\nkvserver\r\n$7\r\nversion\r\n$5\r\n{}\r\n$5\r\nproto\r\n:{proto}\r\n\
         $2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
         $7\r\nmodules\r\n*0\r\n",
        env!("CARGO_PKG_VERSION")
    )
}

fn client_id(c: &mut Raw) -> String {
    let reply = show(&c.cmd(&["CLIENT", "ID"]));
    reply.trim_start_matches(':').trim_end().to_string()
}

/// A connection that has switched to RESP3.
fn resp3(server: &Server) -> Raw {
    let mut c = server.raw();
    let reply = c.cmd(&["HELLO", "3"]);
    assert!(reply.starts_with(b"%7\r\n"), "{}", show(&reply));
    c
}

#[test]
fn hello_3_switches_the_connection_and_answers_the_server_map() {
    let server = Server::start();
    let mut c = server.raw();
    let id = client_id(&mut c);
    assert_eq!(show(&c.cmd(&["HELLO", "3"])), show(hello_map(&id, 3).as_bytes()));
    assert_eq!(show(&c.cmd(&["GET", "nope"])), "_\r\n");
    // HELLO without a version reports the current protocol and keeps it.
    assert_eq!(show(&c.cmd(&["HELLO"])), show(hello_map(&id, 3).as_bytes()));
}

#[test]
fn hello_2_answers_a_flat_array_and_switches_back_from_resp3() {
    let server = Server::start();
    let mut c = resp3(&server);
    let id = client_id(&mut c);
    let flat = hello_map(&id, 2).replacen("%7", "*14", 1);
    assert_eq!(show(&c.cmd(&["HELLO", "2"])), show(flat.as_bytes()));
    assert_eq!(show(&c.cmd(&["GET", "nope"])), "$-1\r\n");
}

#[test]
fn hello_4_is_noproto_and_leaves_the_protocol_unchanged() {
    let server = Server::start();
    let mut c = resp3(&server);
    for bad in ["4", "1", "0", "-1"] {
        assert_eq!(
            show(&c.cmd(&["HELLO", bad])),
            "-NOPROTO unsupported protocol version\r\n",
            "HELLO {bad}"
        );
    }
    assert_eq!(
        show(&c.cmd(&["HELLO", "three"])),
        "-ERR Protocol version is not an integer or out of range\r\n"
    );
    assert_eq!(show(&c.cmd(&["GET", "nope"])), "_\r\n");
}

#[test]
fn hello_options_are_checked_before_anything_changes() {
    let server = Server::with_args(&["--requirepass", "secret"]);
    let mut c = server.raw();
    assert_eq!(
        show(&c.cmd(&["HELLO", "3", "SETNAME"])),
        "-ERR Syntax error in HELLO option 'SETNAME'\r\n"
    );
    assert!(show(&c.cmd(&["HELLO", "3"])).starts_with("-NOAUTH HELLO must be called"));
    assert_eq!(
        show(&c.cmd(&["HELLO", "3", "AUTH", "default", "wrong", "SETNAME", "app"])),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    // Still RESP2, still unnamed, still unauthenticated.
    assert_eq!(
        show(&c.cmd(&["GET", "k"])),
        "-NOAUTH Authentication required.\r\n"
    );
    let reply = c.cmd(&["HELLO", "3", "AUTH", "default", "secret", "SETNAME", "app"]);
    assert!(reply.starts_with(b"%7\r\n"), "{}", show(&reply));
    assert_eq!(show(&c.cmd(&["CLIENT", "GETNAME"])), "$3\r\napp\r\n");
    assert_eq!(show(&c.cmd(&["GET", "k"])), "_\r\n");
}

#[test]
fn a_command_pipelined_after_hello_3_in_the_same_packet_gets_resp3() {
    let server = Server::start();
    let mut c = server.raw();
    let mut batch = resp(&["HELLO", "3"]);
    batch.extend(resp(&["GET", "nope"]));
    batch.extend(resp(&["HELLO", "2"]));
    batch.extend(resp(&["GET", "nope"]));
    c.send(&batch);
    assert!(c.read_reply().starts_with(b"%7"));
    assert_eq!(show(&c.read_reply()), "_\r\n");
    assert!(c.read_reply().starts_with(b"*14"));
    assert_eq!(show(&c.read_reply()), "$-1\r\n");
}

#[test]
fn resp3_replies_are_byte_exact_for_each_kind() {
    let server = Server::start();
    let mut c = resp3(&server);
    c.cmd(&["SET", "k", "v"]);
    let cases: &[(&[&str], &str)] = &[
        // Simple, integer, bulk and error replies are the same in both protocols.
        (&["PING"], "+PONG\r\n"),
        (&["EXISTS", "k"], ":1\r\n"),
        (&["GET", "k"], "$1\r\nv\r\n"),
        (&["INCR", "k"], "-ERR value is not an integer or out of range\r\n"),
        // Null: one `_` for a missing bulk, inside arrays too.
        (&["GET", "nope"], "_\r\n"),
        (&["MGET", "k", "nope"], "*2\r\n$1\r\nv\r\n_\r\n"),
        (&["SET", "k", "w", "NX"], "_\r\n"),
        (&["GETDEL", "nope"], "_\r\n"),
        (&["CLIENT", "GETNAME"], "_\r\n"),
        // Map: CONFIG GET.
        (
            &["CONFIG", "GET", "timeout"],
            "%1\r\n$7\r\ntimeout\r\n$1\r\n0\r\n",
        ),
        (&["CONFIG", "GET", "no-such-setting"], "%0\r\n"),
        // Set: command flags in COMMAND INFO.
        (
            &["COMMAND", "INFO", "get"],
            "*1\r\n*6\r\n$3\r\nget\r\n:2\r\n~1\r\n+readonly\r\n:1\r\n:1\r\n:1\r\n",
        ),
        // Map of maps: COMMAND DOCS.
        (
            &["COMMAND", "DOCS", "get"],
            "%1\r\n$3\r\nget\r\n%3\r\n$7\r\nsummary\r\n$22\r\nGet the value of a key\r\n\
             $5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n",
        ),
        // INCRBYFLOAT stays a bulk string in RESP3, as in Redis 7.
        (&["SET", "f", "1.5"], "+OK\r\n"),
        (&["INCRBYFLOAT", "f", "1"], "$3\r\n2.5\r\n"),
    ];
    for (args, expected) in cases {
        assert_eq!(show(&c.cmd(args)), show(expected.as_bytes()), "{args:?}");
    }
}

#[test]
fn info_and_client_info_are_verbatim_strings_in_resp3() {
    let server = Server::start();
    let mut c = resp3(&server);
    let info = c.cmd(&["INFO", "server"]);
    let header_end = info.windows(2).position(|w| w == b"\r\n").unwrap();
    let len: usize = std::str::from_utf8(&info[1..header_end])
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(info[0], b'=');
    assert_eq!(info.len(), header_end + 2 + len + 2, "{}", show(&info));
    assert!(
        info[header_end + 2..].starts_with(b"txt:# Server\r\n"),
        "{}",
        show(&info)
    );

    let client = show(&c.cmd(&["CLIENT", "INFO"]));
    assert!(client.starts_with('='), "{client}");
    assert!(client.contains("txt:id="), "{client}");
    assert!(client.contains(" resp=3 "), "{client}");

    // The same commands in RESP2 are plain bulk strings.
    let mut old = server.raw();
    assert!(old.cmd(&["INFO", "server"]).starts_with(b"$"));
    assert!(show(&old.cmd(&["CLIENT", "INFO"])).contains(" resp=2 "));
}

#[test]
fn the_text_protocol_is_unchanged_on_a_resp3_connection() {
    let server = Server::start();
    let mut c = resp3(&server);
    c.send(b"GET nope\r\nCONFIG GET timeout\r\n");
    assert_eq!(show(&c.read_line()), "(nil)\r\n");
    assert_eq!(show(&c.read_line()), "1) timeout\r\n");
    assert_eq!(show(&c.read_line()), "2) 0\r\n");
    // And RESP requests on the same connection still get RESP3.
    assert_eq!(show(&c.cmd(&["GET", "nope"])), "_\r\n");
}

#[test]
fn redis_cli_in_resp3_mode_works() {
    if !tool_present("redis-cli") {
        return;
    }
    let server = Server::start();
    let run = |args: &[&str]| {
        let out = run_bounded(
            Command::new("redis-cli")
                .args(["-3", "-h", "127.0.0.1", "-p", &server.port.to_string()])
                .args(args),
            Duration::from_secs(20),
            None,
        );
        assert!(out.status.success(), "{args:?}: {}", show(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(run(&["SET", "k", "v"]), "OK\n");
    assert_eq!(run(&["GET", "k"]), "v\n");
    assert_eq!(run(&["GET", "nope"]), "\n");
    // redis-cli prints a RESP3 map as one "key value" line per pair.
    assert_eq!(run(&["CONFIG", "GET", "timeout"]), "timeout 0\n");
    assert!(run(&["INFO", "server"]).contains("redis_version:"));
    assert!(run(&["HELLO"]).contains("proto 3\n"), "{}", run(&["HELLO"]));
}
