//! Client limits and the multiplexing workers: `maxclients`, thousands of
//! idle connections on a fixed set of threads, back-pressure on clients that
//! do not read, fairness between a pipeliner and an interactive client, and
//! `timeout` for idle and stalled clients.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::support::*;

const MAX_CLIENTS_ERROR: &str = "-ERR max number of clients reached\r\n";

/// Connects and PINGs, retrying (bounded) while a just-closed client has not
/// been counted out yet (the worker notices a close asynchronously).
fn accepted_client(server: &Server) -> Raw {
    for _ in 0..200 {
        let mut c = server.raw();
        c.send(&resp(&["PING"]));
        let reply = c.read_reply();
        if reply == b"+PONG\r\n" {
            return c;
        }
        assert_eq!(show(&reply), MAX_CLIENTS_ERROR);
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no client accepted within 10 s");
}

/// Threads of the server process, from /proc.
fn threads(server: &Server) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Threads: in /proc/PID/status")
}

#[test]
fn the_client_beyond_maxclients_is_refused_at_once_and_a_freed_slot_is_reused() {
    let server = Server::with_args(&["--maxclients", "5"]);
    let mut clients: Vec<Raw> = (0..5).map(|_| accepted_client(&server)).collect();
    let mut sixth = server.raw();
    assert_eq!(show(&sixth.read_to_eof()), MAX_CLIENTS_ERROR);
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(show(&c.cmd(&["SET", &format!("k{i}"), "v"])), "+OK\r\n");
    }
    drop(clients.pop());
    let mut c = accepted_client(&server);
    assert_eq!(show(&c.cmd(&["DBSIZE"])), ":5\r\n");
    for c in &mut clients {
        assert_eq!(show(&c.cmd(&["PING"])), "+PONG\r\n");
    }
}

#[test]
fn maxclients_changed_with_config_set_applies_to_the_next_connection() {
    let server = Server::start();
    let mut first = accepted_client(&server);
    assert_eq!(show(&first.cmd(&["CONFIG", "SET", "maxclients", "2"])), "+OK\r\n");
    let _second = accepted_client(&server);
    let mut third = server.raw();
    assert_eq!(show(&third.read_to_eof()), MAX_CLIENTS_ERROR);
    assert_eq!(show(&first.cmd(&["CONFIG", "SET", "maxclients", "3"])), "+OK\r\n");
    let mut fourth = accepted_client(&server);
    assert_eq!(show(&fourth.cmd(&["PING"])), "+PONG\r\n");
}

#[test]
fn rejected_client_that_already_sent_a_command_still_sees_the_error() {
    let server = Server::with_args(&["--maxclients", "1"]);
    let mut first = accepted_client(&server);
    let mut second = server.raw();
    second.send(&resp(&["SET", "x", "1"]));
    assert_eq!(show(&second.read_to_eof()), MAX_CLIENTS_ERROR);
    assert_eq!(show(&first.cmd(&["EXISTS", "x"])), ":0\r\n");
}

/// Raises this process's open-files limit to its hard limit; returns it.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a struct we own.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

#[test]
fn ten_thousand_idle_connections_are_served_by_the_same_few_threads() {
    const IDLE: usize = 10_000;
    let limit = raise_fd_limit();
    if limit < IDLE as u64 + 200 {
        eprintln!(
            "SKIPPED: the open-files hard limit is {limit}, below the {IDLE} connections this test needs"
        );
        return;
    }
    let server = Server::with_args(&["--workers", "2", "--maxclients", "10100"]);
    let before = threads(&server);
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        match TcpStream::connect(("127.0.0.1", server.port)) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connection {i} failed: {e}"),
        }
    }
    // Every idle connection is accepted (counted by the server) ...
    assert!(
        eventually(Duration::from_secs(60), || {
            let mut c = server.raw();
            let info = String::from_utf8_lossy(&c.cmd(&["INFO", "clients"])).into_owned();
            info.contains(&format!("connected_clients:{}\r\n", IDLE + 1))
        }),
        "the server did not count {IDLE} idle clients"
    );
    // ... a fresh client is served at once, and no thread was added.
    let mut fresh = server.raw();
    assert_eq!(show(&fresh.cmd(&["PING"])), "+PONG\r\n");
    assert_eq!(threads(&server), before, "threads changed with {IDLE} clients");
    let rss_kib = server.rss_kib();
    eprintln!("server RSS with {IDLE} idle clients: {rss_kib} KiB");
    drop(idle);
}

#[test]
fn a_client_that_pipelines_without_reading_costs_bounded_memory_and_slows_nobody() {
    let server = Server::start();
    let mut setup = server.raw();
    assert_eq!(show(&setup.cmd(&["SET", "big", &"x".repeat(10_000)])), "+OK\r\n");
    let baseline_kib = server.rss_kib();

    // 200 000 GETs of a 10 KB value (2 GB of replies) that are never read.
    let slow = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let writer = {
        let mut slow = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            let batch = resp(&["GET", "big"]).repeat(1000);
            for _ in 0..200 {
                if slow.write_all(&batch).is_err() {
                    return; // closed by the test below
                }
            }
        })
    };
    // Meanwhile another client is served normally.
    let mut other = server.raw();
    for i in 0..200 {
        let key = format!("other:{i}");
        assert_eq!(show(&other.cmd(&["SET", &key, "v"])), "+OK\r\n");
        assert_eq!(show(&other.cmd(&["GET", &key])), "$1\r\nv\r\n");
    }
    std::thread::sleep(Duration::from_millis(500));
    let grown_kib = server.rss_kib().saturating_sub(baseline_kib);
    assert!(
        grown_kib < 200 * 1024,
        "server RSS grew by {grown_kib} KiB for a client that never reads"
    );
    let _ = slow.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    assert_eq!(show(&other.cmd(&["PING"])), "+PONG\r\n");
}

#[test]
fn an_endless_pipeliner_does_not_starve_an_interactive_client_on_the_same_worker() {
    let server = Server::with_args(&["--workers", "1"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pipeliner = {
        let stop = std::sync::Arc::clone(&stop);
        let port = server.port;
        std::thread::spawn(move || {
            let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let mut reader = stream.try_clone().unwrap();
            // Drain replies in the background so the server keeps serving it.
            let drain = std::thread::spawn(move || {
                let mut sink = vec![0u8; 64 * 1024];
                while let Ok(n) = std::io::Read::read(&mut reader, &mut sink) {
                    if n == 0 {
                        break;
                    }
                }
            });
            let batch = resp(&["INCR", "counter"]).repeat(2000);
            let mut w = stream;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if w.write_all(&batch).is_err() {
                    break;
                }
            }
            let _ = w.shutdown(std::net::Shutdown::Both);
            let _ = drain.join();
        })
    };
    // Wait until the pipeliner is really running.
    let mut probe = server.raw();
    assert!(eventually(Duration::from_secs(20), || {
        probe.cmd(&["GET", "counter"]).len() > 5
    }));
    let mut interactive = server.raw();
    for i in 0..300 {
        let key = format!("i:{i}");
        assert_eq!(show(&interactive.cmd(&["SET", &key, "1"])), "+OK\r\n");
        assert_eq!(show(&interactive.cmd(&["INCR", &key])), ":2\r\n");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    pipeliner.join().unwrap();
}

#[test]
fn timeout_closes_idle_clients_and_clients_stalled_inside_a_command() {
    let server = Server::start();
    let mut idle = server.raw();
    // `timeout` is live: set it after the clients connected.
    assert_eq!(show(&idle.cmd(&["CONFIG", "SET", "timeout", "1"])), "+OK\r\n");
    assert_eq!(show(&idle.cmd(&["PING"])), "+PONG\r\n");
    let mut stalled = server.raw();
    stalled.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhal");
    // Both are closed within a few seconds (reads are bounded by IO_TIMEOUT).
    assert_eq!(show(&stalled.read_to_eof()), "");
    assert_eq!(show(&idle.read_to_eof()), "");
    let mut c = server.raw();
    assert_eq!(show(&c.cmd(&["EXISTS", "k"])), ":0\r\n");
}

#[test]
fn a_busy_client_is_not_closed_by_timeout() {
    let server = Server::with_args(&["--timeout", "2"]);
    let mut c = server.raw();
    for _ in 0..30 {
        assert_eq!(show(&c.cmd(&["PING"])), "+PONG\r\n");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn half_closed_clients_still_get_every_reply() {
    // `printf 'SET a 1\r\nGET a\r\n' | nc`: the client shuts its write side
    // right after sending, then reads.
    let server = Server::start();
    let mut c = server.raw();
    let mut input = Vec::new();
    for i in 0..5000 {
        input.extend_from_slice(&resp(&["SET", &format!("k{i}"), &"v".repeat(100)]));
        input.extend_from_slice(&resp(&["GET", &format!("k{i}")]));
    }
    let mut w = c.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        w.write_all(&input).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let out = c.read_to_eof();
    writer.join().unwrap();
    let expected_get = format!("${}\r\n{}\r\n", 100, "v".repeat(100));
    assert_eq!(out.len(), 5000 * (5 + expected_get.len()));
}

#[test]
fn killed_or_reset_connections_are_counted_out() {
    let server = Server::with_args(&["--maxclients", "3"]);
    for _ in 0..20 {
        let mut c = accepted_client(&server);
        c.send(&resp(&["SET", "x", "1"]));
        drop(c);
    }
    let mut c = accepted_client(&server);
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "clients"])).into_owned();
    assert!(info.contains("maxclients:3\r\n"), "{info}");
}
