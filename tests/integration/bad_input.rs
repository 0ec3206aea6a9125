//! Framing errors (reply, then close), commands before a bad frame still
//! run, half-sent commands and huge claimed bulks harm nobody else.

use std::time::Duration;

use crate::support::*;

/// Sends `wire` on a fresh connection and returns everything until EOF.
fn until_close(server: &Server, wire: &[u8]) -> Vec<u8> {
    let mut c = server.raw();
    c.send(wire);
    c.read_to_eof()
}

#[test]
fn framing_errors_reply_and_close() {
    let server = Server::start();
    let cases: &[(&[u8], &str)] = &[
        (b"*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n"),
        (
            b"*99999999999\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (b"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\n$abc\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
        (
            b"*1\r\n$999999999999\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (b"*1\r\nfoo\r\n", "-ERR Protocol error: expected '$', got 'f'\r\n"),
        (
            b"SET \"a b\r\n",
            "(error) ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    for (wire, expected) in cases {
        assert_eq!(
            show(&until_close(&server, wire)),
            *expected,
            "wire {:?}",
            show(wire)
        );
    }
    // The server is fine afterwards.
    assert_eq!(show(&server.raw().cmd(&["PING"])), "+PONG\r\n");
}

#[test]
fn commands_before_a_bad_frame_run_first() {
    let server = Server::start();
    let mut wire = resp(&["SET", "before", "1"]);
    wire.extend_from_slice(b"GET before\r\n");
    wire.extend_from_slice(b"*1\r\n$abc\r\n");
    wire.extend(resp(&["SET", "after", "1"]));
    assert_eq!(
        show(&until_close(&server, &wire)),
        "+OK\r\n1\r\n-ERR Protocol error: invalid bulk length\r\n"
    );
    let mut c = server.raw();
    assert_eq!(show(&c.cmd(&["GET", "before"])), "$1\r\n1\r\n");
    assert_eq!(show(&c.cmd(&["EXISTS", "after"])), ":0\r\n");
}

#[test]
fn too_big_inline_request_closes() {
    let server = Server::start();
    let junk = vec![b'a'; 70 * 1024];
    let mut c = server.raw();
    // The server may close before reading it all; ignore write errors.
    let _ = std::io::Write::write_all(&mut c.stream, &junk);
    assert_eq!(
        show(&c.read_to_eof()),
        "(error) ERR Protocol error: too big inline request\r\n"
    );
    assert_eq!(show(&server.raw().cmd(&["PING"])), "+PONG\r\n");
}

#[test]
fn too_big_inline_request_after_good_commands() {
    let server = Server::start();
    let mut wire = b"SET x 1\r\n".to_vec();
    wire.extend(vec![b'a'; 70 * 1024]);
    let mut c = server.raw();
    let _ = std::io::Write::write_all(&mut c.stream, &wire);
    assert_eq!(
        show(&c.read_to_eof()),
        "OK\r\n(error) ERR Protocol error: too big inline request\r\n"
    );
}

#[test]
fn half_a_command_then_disconnect_harms_nobody() {
    let server = Server::start();
    let mut other = server.raw();
    assert_eq!(show(&other.cmd(&["SET", "k", "v"])), "+OK\r\n");
    for partial in [
        &b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhel"[..],
        b"*2\r\n$3\r\nGET",
        b"SET k half-an-inline",
        b"*",
    ] {
        let mut c = server.raw();
        c.send(partial);
        drop(c);
    }
    let mut c = server.raw();
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhel");
    c.shutdown_write();
    assert!(c.is_closed(), "server should close after the client's EOF");
    assert_eq!(show(&other.cmd(&["GET", "k"])), "$1\r\nv\r\n");
    assert_eq!(show(&server.raw().cmd(&["DBSIZE"])), ":1\r\n");
}

#[test]
fn a_claimed_512mib_bulk_neither_blocks_others_nor_reserves_memory() {
    let server = Server::start();
    let before = server.rss_kib();
    let mut greedy = server.raw();
    greedy.send(b"*2\r\n$3\r\nGET\r\n$536870912\r\n0123456789");
    let mut greedy2 = server.raw();
    greedy2.send(b"*1\r\n$536870912\r\nxx");
    std::thread::sleep(Duration::from_millis(300));
    let mut other = server.raw();
    assert_eq!(show(&other.cmd(&["PING"])), "+PONG\r\n");
    assert_eq!(show(&other.cmd(&["SET", "a", "b"])), "+OK\r\n");
    let after = server.rss_kib();
    let growth_mib = after.saturating_sub(before) / 1024;
    assert!(
        growth_mib < 100,
        "RSS grew by {growth_mib} MiB ({before} KiB -> {after} KiB)"
    );
    drop(greedy);
    drop(greedy2);
    assert_eq!(show(&other.cmd(&["GET", "a"])), "$1\r\nb\r\n");
}

#[test]
fn a_large_bulk_arriving_slowly_is_assembled() {
    let server = Server::start();
    let value: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let wire = resp(&[&b"SET"[..], b"big", &value]);
    let mut c = server.raw();
    for part in wire.chunks(64 * 1024 + 3) {
        c.send(part);
    }
    assert_eq!(show(&c.read_reply()), "+OK\r\n");
    let got = c.cmd(&["GET", "big"]);
    let mut expected = format!("${}\r\n", value.len()).into_bytes();
    expected.extend_from_slice(&value);
    expected.extend_from_slice(b"\r\n");
    assert!(got == expected, "GET big returned a different value");
    assert_eq!(show(&c.cmd(&["STRLEN", "big"])), ":3145728\r\n");
}

#[test]
fn endless_header_lines_are_rejected() {
    let server = Server::start();
    let mut wire = b"*".to_vec();
    wire.extend(vec![b'1'; 70 * 1024]);
    let mut c = server.raw();
    let _ = std::io::Write::write_all(&mut c.stream, &wire);
    assert_eq!(
        show(&c.read_to_eof()),
        "-ERR Protocol error: too big mbulk count string\r\n"
    );

    let mut wire = b"*1\r\n$".to_vec();
    wire.extend(vec![b'1'; 70 * 1024]);
    let mut c = server.raw();
    let _ = std::io::Write::write_all(&mut c.stream, &wire);
    assert_eq!(
        show(&c.read_to_eof()),
        "-ERR Protocol error: too big bulk count string\r\n"
    );
}

#[test]
fn strict_header_numbers() {
    // Redis's string2ll: no '+', no leading zeros, no spaces.
    let server = Server::start();
    for wire in [
        &b"*+1\r\n$4\r\nPING\r\n"[..],
        b"*01\r\n$4\r\nPING\r\n",
        b"* 1\r\n$4\r\nPING\r\n",
    ] {
        assert_eq!(
            show(&until_close(&server, wire)),
            "-ERR Protocol error: invalid multibulk length\r\n",
            "{:?}",
            show(wire)
        );
    }
    for wire in [&b"*1\r\n$+4\r\nPING\r\n"[..], b"*1\r\n$04\r\nPING\r\n"] {
        assert_eq!(
            show(&until_close(&server, wire)),
            "-ERR Protocol error: invalid bulk length\r\n",
            "{:?}",
            show(wire)
        );
    }
}

#[test]
fn bulk_terminator_is_skipped_unchecked_like_redis() {
    // Redis skips the two bytes after a bulk body without looking at them.
    let server = Server::start();
    let mut c = server.raw();
    c.send(b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n");
    c.expect(b"+PONG\r\n+PONG\r\n");
}
