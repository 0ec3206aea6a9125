//! The human text protocol: inline splitting and redis-cli-like replies that
//! end with the request's own line ending.

use crate::support::*;

#[test]
fn text_scalars_follow_the_request_line_ending() {
    let server = Server::start();
    let mut c = server.raw();
    c.send(b"PING\r\n");
    c.expect(b"PONG\r\n");
    c.send(b"PING\n");
    c.expect(b"PONG\n");
    c.send(b"SET k hello\r\n");
    c.expect(b"OK\r\n");
    c.send(b"GET k\n");
    c.expect(b"hello\n");
    c.send(b"GET missing\r\n");
    c.expect(b"(nil)\r\n");
    c.send(b"INCR n\r\n");
    c.expect(b"(integer) 1\r\n");
    c.send(b"INCRBY n 2\n");
    c.expect(b"(integer) 3\n");
    c.send(b"INCR k\r\n");
    c.expect(b"(error) ERR value is not an integer or out of range\r\n");
    c.send(b"KEYS nomatch*\r\n");
    c.expect(b"(empty array)\r\n");
}

#[test]
fn text_arrays_are_numbered_like_redis_cli() {
    let server = Server::start();
    let mut c = server.raw();
    c.send(b"SET a 25\r\n");
    c.expect(b"OK\r\n");
    c.send(b"MGET a nope\r\n");
    c.expect(b"1) 25\r\n2) (nil)\r\n");
    c.send(b"MGET a nope\n");
    c.expect(b"1) 25\n2) (nil)\n");

    // More than 9 elements: the index is right-aligned.
    c.send(b"MSET k1 v1 k2 v2 k3 v3 k4 v4 k5 v5 k6 v6 k7 v7 k8 v8 k9 v9 k10 v10\r\n");
    c.expect(b"OK\r\n");
    c.send(b"MGET k1 k2 k3 k4 k5 k6 k7 k8 k9 k10 k11\r\n");
    let mut expected = Vec::new();
    for i in 1..=10 {
        expected.extend_from_slice(format!("{i:>2}) v{i}\r\n").as_bytes());
    }
    expected.extend_from_slice(b"11) (nil)\r\n");
    c.expect(&expected);
}

#[test]
fn text_nested_arrays_are_indented() {
    let server = Server::start();
    let mut c = server.raw();
    c.send(b"SET only 1\r\n");
    c.expect(b"OK\r\n");
    // One key: SCAN returns [cursor "0", [only]].
    c.send(b"SCAN 0 COUNT 100\r\n");
    c.expect(b"1) 0\r\n2) 1) only\r\n");

    c.send(b"SET other 2\r\n");
    c.expect(b"OK\r\n");
    c.send(b"SCAN 0 COUNT 100\n");
    let l1 = c.read_line();
    let l2 = c.read_line();
    let l3 = c.read_line();
    assert_eq!(show(&l1), "1) 0\n");
    let mut keys = vec![
        show(l2.strip_prefix(b"2) 1) ").expect("first nested line")),
        show(l3.strip_prefix(b"   2) ").expect("second nested line indented")),
    ];
    keys.sort();
    assert_eq!(keys, vec!["only\n", "other\n"]);

    // Empty nested array.
    c.send(b"FLUSHALL\r\n");
    c.expect(b"OK\r\n");
    c.send(b"SCAN 0\r\n");
    c.expect(b"1) 0\r\n2) (empty array)\r\n");
}

#[test]
fn inline_quoting_and_escapes() {
    let server = Server::start();
    let mut c = server.raw();
    c.send(b"SET \"a key\" \"x\\ty\\x41\\n\"\r\n");
    c.expect(b"OK\r\n");
    let got = c.cmd(&[&b"GET"[..], b"a key"]);
    assert_eq!(show(&got), show(b"$5\r\nx\tyA\n\r\n"));
    c.send(b"SET 'single q' 'it\\'s'\r\n");
    c.expect(b"OK\r\n");
    let got = c.cmd(&[&b"GET"[..], b"single q"]);
    assert_eq!(show(&got), "$4\r\nit's\r\n");
    // Extra blanks between arguments are ignored.
    c.send(b"   SET    spaced    v   \r\n");
    c.expect(b"OK\r\n");
    c.send(b"GET spaced\r\n");
    c.expect(b"v\r\n");
}

#[test]
fn text_errors_keep_the_connection() {
    let server = Server::start();
    let mut c = server.raw();
    c.send(b"FOO a b\r\n");
    c.expect(b"(error) ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n");
    c.send(b"GET\n");
    c.expect(b"(error) ERR wrong number of arguments for 'get' command\n");
    c.send(b"PING\r\n");
    c.expect(b"PONG\r\n");
}

#[test]
fn unbalanced_quotes_reply_in_text_and_close() {
    let server = Server::start();
    let mut c = server.raw();
    c.send(b"SET \"a b\r\n");
    let rest = c.read_to_eof();
    assert_eq!(
        show(&rest),
        "(error) ERR Protocol error: unbalanced quotes in request\r\n"
    );
}

#[test]
fn inline_replies_resp_option_gives_resp_to_text_commands() {
    let server = Server::with_args(&["--inline-replies", "resp"]);
    let mut c = server.raw();
    c.send(b"PING\r\n");
    c.expect(b"+PONG\r\n");
    c.send(b"SET k v\n");
    c.expect(b"+OK\r\n");
    c.send(b"GET k\r\n");
    c.expect(b"$1\r\nv\r\n");
    c.send(b"MGET k x\r\n");
    c.expect(b"*2\r\n$1\r\nv\r\n$-1\r\n");
    c.send(b"GET\r\n");
    c.expect(b"-ERR wrong number of arguments for 'get' command\r\n");
}
