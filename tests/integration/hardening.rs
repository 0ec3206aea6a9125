//! Hostile input and operator faults: what an unauthenticated client may
//! make the server buffer, and how many log lines a flood of refused
//! connections costs.

use std::io::Write;

use crate::support::*;

/// A memory figure of the server in KiB (`VmHWM`: peak resident, `VmRSS`:
/// resident now), from /proc.
fn status_kib(server: &Server, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} line"))
}

fn peak_rss_kib(server: &Server) -> u64 {
    status_kib(server, "VmHWM")
}

#[test]
fn an_unauthenticated_one_megabyte_bulk_gets_the_protocol_error_and_costs_no_memory() {
    const CLIENTS: usize = 8;
    const BULK: usize = 1024 * 1024;
    let server = Server::with_args(&["--requirepass", "secret"]);
    // Warm up: one authenticated round trip, so the baseline includes a worker's buffers.
    let mut warm = server.raw();
    assert_eq!(show(&warm.cmd(&["AUTH", "secret"])), "+OK\r\n");
    let before = peak_rss_kib(&server);

    let mut clients: Vec<Raw> = (0..CLIENTS).map(|_| server.raw()).collect();
    let writers: Vec<_> = clients
        .iter()
        .map(|c| {
            let mut stream = c.stream.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut wire = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${BULK}\r\n").into_bytes();
                wire.resize(wire.len() + BULK, b'x');
                wire.extend_from_slice(b"\r\n");
                // The server closes early: a failed write is expected.
                let _ = stream.write_all(&wire);
            })
        })
        .collect();
    for c in &mut clients {
        let got = show(&c.read_to_eof());
        assert_eq!(got, "-ERR Protocol error: unauthenticated bulk length\r\n");
    }
    for w in writers {
        w.join().unwrap();
    }
    let grown = peak_rss_kib(&server).saturating_sub(before);
    // Buffering the bulks would cost CLIENTS × 1 MiB at least.
    assert!(
        grown < 2 * 1024,
        "peak RSS grew by {grown} KiB for {CLIENTS} unauthenticated 1 MiB bulks"
    );

    let mut many = server.raw();
    many.send(&resp(&["PING"; 11]));
    assert_eq!(
        show(&many.read_to_eof()),
        "-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
}

#[test]
fn a_password_set_at_runtime_brings_the_pre_authentication_limits_to_new_clients() {
    let server = Server::start();
    let mut admin = server.raw();
    assert_eq!(
        show(&admin.cmd(&["CONFIG", "SET", "requirepass", "secret"])),
        "+OK\r\n"
    );
    // The admin connected before the password: it stays authenticated.
    assert_eq!(show(&admin.cmd(&["PING"])), "+PONG\r\n");
    let mut newcomer = server.raw();
    newcomer.send(&resp(&[&b"SET"[..], b"big", &vec![b'x'; 100_000]]));
    assert_eq!(
        show(&newcomer.read_to_eof()),
        "-ERR Protocol error: unauthenticated bulk length\r\n"
    );
    // Removing it lifts them again.
    assert_eq!(show(&admin.cmd(&["CONFIG", "SET", "requirepass", ""])), "+OK\r\n");
    let mut later = server.raw();
    assert_eq!(
        show(&later.cmd(&["PING"; 11])),
        "-ERR wrong number of arguments for 'ping' command\r\n"
    );
}

#[test]
fn an_authenticated_client_may_still_send_a_big_bulk() {
    let server = Server::with_args(&["--requirepass", "secret"]);
    let mut c = server.raw();
    let value = vec![b'v'; 1024 * 1024];
    // AUTH and the big SET in one write: the SET is framed after AUTH ran.
    let mut wire = resp(&[&b"AUTH"[..], b"secret"]);
    wire.extend(resp(&[&b"SET"[..], b"big", &value]));
    c.send(&wire);
    assert_eq!(show(&c.read_reply()), "+OK\r\n");
    assert_eq!(show(&c.read_reply()), "+OK\r\n");
    assert_eq!(show(&c.cmd(&["STRLEN", "big"])), ":1048576\r\n");
    let many: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    let mut args = vec!["DEL".to_string()];
    args.extend(many);
    assert_eq!(show(&c.cmd(&args)), ":0\r\n");
}

#[test]
fn a_thousand_refused_connections_log_a_bounded_number_of_lines() {
    let server = Server::with_args(&["--maxclients", "1"]);
    let mut first = server.raw();
    assert_eq!(show(&first.cmd(&["PING"])), "+PONG\r\n");
    let started = std::time::Instant::now();
    for _ in 0..1000 {
        let mut refused = server.raw();
        assert_eq!(
            show(&refused.read_to_eof()),
            "-ERR max number of clients reached\r\n"
        );
    }
    let elapsed = started.elapsed().as_secs();
    let count_lines = || {
        server
            .stderr_text()
            .lines()
            .filter(|l| l.contains("rejected a client"))
            .count() as u64
    };
    // Every refusal is counted in INFO; the log has one line per 5 s at most.
    let info = show(&first.cmd(&["INFO", "stats"]));
    assert!(info.contains("rejected_connections:1000"), "{info}");
    assert!(eventually(std::time::Duration::from_secs(10), || count_lines() >= 1));
    let lines = count_lines();
    assert!(
        (1..=2 + elapsed / 5).contains(&lines),
        "{lines} log lines for 1000 refused clients in {elapsed} s"
    );
}

/// A value whose every byte is known, `\r\n` and zero bytes included.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_64_mib_set_costs_the_value_once_not_its_copies() {
    const BIG: usize = 64 * 1024 * 1024;
    let data = tempfile::tempdir().unwrap();
    // With the WAL on: its buffer must not hold a second copy either.
    let server = Server::with_wal(data.path(), &[]);
    let mut c = server.raw();
    assert_eq!(show(&c.cmd(&["PING"])), "+PONG\r\n");
    let value = pattern(BIG);
    let wire = resp(&[&b"SET"[..], b"big", &value]);
    let before = status_kib(&server, "VmRSS");
    c.send(&wire);
    assert_eq!(show(&c.read_reply()), "+OK\r\n");
    let grown = (peak_rss_kib(&server).saturating_sub(before) * 1024) as f64 / BIG as f64;
    // Reading by doubling with zero-fill, then copying into the store and
    // the WAL buffer, cost about 4x; kept without copies it is about 1x.
    assert!(grown < 1.5, "peak RSS grew by {grown:.2}x the value");
    assert_eq!(show(&c.cmd(&["STRLEN", "big"])), format!(":{BIG}\r\n"));
    let tail = c.cmd(&["GETRANGE", "big", "-10", "-1"]);
    let mut expected = b"$10\r\n".to_vec();
    expected.extend_from_slice(&value[BIG - 10..]);
    expected.extend_from_slice(b"\r\n");
    assert_eq!(show(&tail), show(&expected));
}

#[test]
fn big_values_pipelined_back_to_back_each_keep_their_own_bytes() {
    let server = Server::start();
    let mut c = server.raw();
    let (a, b) = (pattern(3 * 1024 * 1024), vec![b'b'; 2 * 1024 * 1024 + 7]);
    let mut wire = resp(&[&b"SET"[..], b"a", &a]);
    wire.extend(resp(&[&b"SET"[..], b"b", &b]));
    wire.extend(resp(&[&b"APPEND"[..], b"a", b"!"]));
    wire.extend(resp(&["STRLEN", "b"]));
    c.send(&wire);
    assert_eq!(show(&c.read_reply()), "+OK\r\n");
    assert_eq!(show(&c.read_reply()), "+OK\r\n");
    assert_eq!(show(&c.read_reply()), format!(":{}\r\n", a.len() + 1));
    assert_eq!(show(&c.read_reply()), format!(":{}\r\n", b.len()));
    let got = c.cmd(&["GET", "a"]);
    let mut expected = format!("${}\r\n", a.len() + 1).into_bytes();
    expected.extend_from_slice(&a);
    expected.extend_from_slice(b"!\r\n");
    assert!(got == expected, "GET a after APPEND differs");
    assert_eq!(
        show(&c.cmd(&["SETRANGE", "b", "0", "X"])),
        format!(":{}\r\n", b.len())
    );
    assert_eq!(show(&c.cmd(&["GETRANGE", "b", "0", "1"])), "$2\r\nXb\r\n");
    assert_eq!(show(&c.cmd(&["RENAME", "b", "c"])), "+OK\r\n");
    assert_eq!(show(&c.cmd(&["STRLEN", "c"])), format!(":{}\r\n", b.len()));
    // RENAME and MOVE of a value still shared with its read buffer.
    c.send(&resp(&[&b"SET"[..], b"d", &b]));
    assert_eq!(show(&c.read_reply()), "+OK\r\n");
    assert_eq!(show(&c.cmd(&["RENAME", "d", "e"])), "+OK\r\n");
    assert_eq!(show(&c.cmd(&["MOVE", "e", "1"])), ":1\r\n");
    assert_eq!(show(&c.cmd(&["SELECT", "1"])), "+OK\r\n");
    let got = c.cmd(&["GET", "e"]);
    let mut expected = format!("${}\r\n", b.len()).into_bytes();
    expected.extend_from_slice(&b);
    expected.extend_from_slice(b"\r\n");
    assert!(got == expected, "GET after RENAME and MOVE differs");
}
