//! Blocking pops: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP — served across
//! workers, first come first served, timeouts, MULTI, CLIENT UNBLOCK,
//! disconnects, and the `timeout` setting. No assertion depends on how fast
//! the machine is: waits are bounded below, never above.

use std::time::{Duration, Instant};

use crate::support::*;

/// Waits until `blocked_clients` in INFO reaches `n` (the blocking commands
/// were sent on other connections; this is how a test knows they arrived).
fn wait_blocked(c: &mut Raw, n: usize) {
    let want = format!("blocked_clients:{n}\r");
    assert!(
        eventually(Duration::from_secs(10), || {
            let info = c.cmd(&["INFO", "clients"]);
            String::from_utf8_lossy(&info).contains(&want)
        }),
        "blocked_clients never reached {n}"
    );
}

#[test]
fn a_push_on_another_worker_serves_a_blocked_client() {
    let server = Server::with_args(&["--workers", "2"]);
    let mut waiter = server.raw();
    let mut admin = server.raw();
    let mut pusher = server.raw();
    waiter.send(&resp(&["BLPOP", "empty", "jobs", "0"]));
    wait_blocked(&mut admin, 1);
    let list = String::from_utf8(admin.cmd(&["CLIENT", "LIST"])).unwrap();
    assert!(list.contains("flags=b") && list.contains("cmd=blpop"), "{list}");
    assert_eq!(pusher.cmd(&["RPUSH", "jobs", "j1", "j2"]), b":2\r\n");
    assert_eq!(waiter.read_reply(), b"*2\r\n$4\r\njobs\r\n$2\r\nj1\r\n");
    // The popped element is gone; the other stays; the waiter is free again.
    assert_eq!(pusher.cmd(&["LRANGE", "jobs", "0", "-1"]), b"*1\r\n$2\r\nj2\r\n");
    wait_blocked(&mut admin, 0);
    assert_eq!(waiter.cmd(&["PING"]), b"+PONG\r\n");
}

#[test]
fn a_pushed_element_goes_to_the_blocked_client_before_any_later_command_sees_it() {
    // Redis's rule: the push serves the waiters before the next command runs,
    // whichever connection (and here, whichever worker) that command is on.
    let server = Server::with_args(&["--workers", "3"]);
    let mut admin = server.raw();
    let mut list_waiter = server.raw();
    let mut multi_waiter = server.raw();
    let mut zset_waiter = server.raw();
    let mut pusher = server.raw();
    let mut thief = server.raw();
    list_waiter.send(&resp(&["BLPOP", "q", "0"]));
    wait_blocked(&mut admin, 1);
    multi_waiter.send(&resp(&["BLMPOP", "0", "1", "q", "RIGHT", "COUNT", "5"]));
    wait_blocked(&mut admin, 2);
    zset_waiter.send(&resp(&["BZPOPMAX", "z", "0"]));
    wait_blocked(&mut admin, 3);
    for round in 0..50 {
        // One pipelined packet: the push, then a pop by another client right
        // behind it; the second pop must never find the element.
        let a = format!("a{round}");
        let b = format!("b{round}");
        let c = format!("c{round}");
        assert_eq!(pusher.cmd(&["RPUSH", "q", &a, &b, &c]), b":3\r\n");
        assert_eq!(thief.cmd(&["LPOP", "q"]), b"$-1\r\n", "round {round}");
        let expected = format!("*2\r\n$1\r\nq\r\n${}\r\n{a}\r\n", a.len());
        assert_eq!(show(&list_waiter.read_reply()), show(expected.as_bytes()));
        let expected = format!(
            "*2\r\n$1\r\nq\r\n*2\r\n${}\r\n{c}\r\n${}\r\n{b}\r\n",
            c.len(),
            b.len()
        );
        assert_eq!(show(&multi_waiter.read_reply()), show(expected.as_bytes()));
        assert_eq!(pusher.cmd(&["ZADD", "z", "1", "low", "2", "high"]), b":2\r\n");
        assert_eq!(
            show(&thief.cmd(&["ZRANGE", "z", "0", "-1"])),
            show(b"*1\r\n$3\r\nlow\r\n")
        );
        assert_eq!(
            show(&zset_waiter.read_reply()),
            show(b"*3\r\n$1\r\nz\r\n$4\r\nhigh\r\n$1\r\n2\r\n")
        );
        assert_eq!(thief.cmd(&["DEL", "z"]), b":1\r\n");
        // Block again in the same order: the BLPOP first in line.
        list_waiter.send(&resp(&["BLPOP", "q", "0"]));
        wait_blocked(&mut admin, 1);
        multi_waiter.send(&resp(&["BLMPOP", "0", "1", "q", "RIGHT", "COUNT", "5"]));
        wait_blocked(&mut admin, 2);
        zset_waiter.send(&resp(&["BZPOPMAX", "z", "0"]));
        wait_blocked(&mut admin, 3);
    }
}

#[test]
fn three_blocked_clients_are_served_first_come_first_served() {
    let server = Server::with_args(&["--workers", "2"]);
    let mut admin = server.raw();
    let mut waiters: Vec<Raw> = (0..3).map(|_| server.raw()).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        w.send(&resp(&["BRPOP", "q", "0"]));
        wait_blocked(&mut admin, i + 1);
    }
    for (i, w) in waiters.iter_mut().enumerate() {
        let item = format!("item{i}");
        admin.cmd(&["LPUSH", "q", &item]);
        let expected = format!("*2\r\n$1\r\nq\r\n$5\r\n{item}\r\n");
        assert_eq!(show(&w.read_reply()), show(expected.as_bytes()), "waiter {i}");
    }
}

#[test]
fn a_timeout_answers_null_not_before_its_time_and_commands_after_it_run() {
    let server = Server::start();
    let mut c = server.raw();
    let started = Instant::now();
    // Pipelined: the PING waits for the BLPOP, as in Redis.
    c.send(&[resp(&["BLPOP", "nothing", "0.3"]), resp(&["PING"])].concat());
    assert_eq!(c.read_reply(), b"*-1\r\n");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(c.read_reply(), b"+PONG\r\n");
    assert_eq!(
        c.cmd(&["BLMOVE", "nothing", "dst", "LEFT", "RIGHT", "0.05"]),
        b"$-1\r\n"
    );
    assert_eq!(c.cmd(&["BRPOPLPUSH", "nothing", "dst", "0.05"]), b"$-1\r\n");
    assert_eq!(c.cmd(&["BLMPOP", "0.05", "1", "nothing", "LEFT"]), b"*-1\r\n");
    // RESP3 nulls.
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["BLPOP", "nothing", "0.05"]), b"_\r\n");
    assert_eq!(
        c.cmd(&["BLMOVE", "nothing", "dst", "LEFT", "RIGHT", "0.05"]),
        b"_\r\n"
    );
}

#[test]
fn blocking_commands_do_not_block_when_data_is_there_or_inside_multi() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["RPUSH", "a", "1", "2"]);
    assert_eq!(
        c.cmd(&["BRPOP", "nothing", "a", "0"]),
        b"*2\r\n$1\r\na\r\n$1\r\n2\r\n"
    );
    assert_eq!(c.cmd(&["BLMOVE", "a", "b", "LEFT", "LEFT", "0"]), b"$1\r\n1\r\n");
    assert_eq!(c.cmd(&["BRPOPLPUSH", "b", "c", "0"]), b"$1\r\n1\r\n");
    c.cmd(&["RPUSH", "m", "x", "y", "z"]);
    assert_eq!(
        c.cmd(&["BLMPOP", "0", "2", "nothing", "m", "RIGHT", "COUNT", "2"]),
        b"*2\r\n$1\r\nm\r\n*2\r\n$1\r\nz\r\n$1\r\ny\r\n"
    );
    c.cmd(&["MULTI"]);
    c.cmd(&["BLPOP", "nothing", "0"]);
    c.cmd(&["BLMOVE", "nothing", "x", "LEFT", "LEFT", "0"]);
    assert_eq!(c.cmd(&["EXEC"]), b"*2\r\n*-1\r\n$-1\r\n");
    assert_eq!(c.cmd(&["BLPOP", "x", "-1"]), b"-ERR timeout is negative\r\n");
    assert_eq!(
        c.cmd(&["BLPOP", "x", "soon"]),
        b"-ERR timeout is not a float or out of range\r\n"
    );
    c.cmd(&["SET", "str", "v"]);
    assert_eq!(
        c.cmd(&["BLPOP", "str", "0"]),
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
    );
    let info = String::from_utf8(c.cmd(&["COMMAND", "INFO", "blpop"])).unwrap();
    assert!(info.contains("blocking"), "{info}");
}

#[test]
fn client_unblock_ends_a_wait_with_null_or_an_error() {
    let server = Server::start();
    let mut admin = server.raw();
    let mut w = server.raw();
    let id = String::from_utf8(w.cmd(&["CLIENT", "ID"])).unwrap();
    let id = id.trim_start_matches(':').trim().to_string();
    w.send(&resp(&["BLPOP", "q", "0"]));
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id]), b":1\r\n");
    assert_eq!(w.read_reply(), b"*-1\r\n");
    w.send(&resp(&["BLMOVE", "q", "d", "LEFT", "LEFT", "0"]));
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]), b":1\r\n");
    assert_eq!(
        w.read_reply(),
        b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
    );
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id]), b":0\r\n");
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", "999999"]), b":0\r\n");
    assert_eq!(
        admin.cmd(&["CLIENT", "UNBLOCK", &id, "MAYBE"]),
        b"-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"
    );
}

#[test]
fn a_blocked_client_that_disconnects_frees_its_wait_and_idle_timeout_spares_blocked_clients() {
    let server = Server::with_args(&["--timeout", "1"]);
    let mut admin = server.raw();
    {
        let mut gone = server.raw();
        gone.send(&resp(&["BLPOP", "q", "0"]));
        wait_blocked(&mut admin, 1);
    }
    wait_blocked(&mut admin, 0);
    // Nobody waits: the element stays in the list.
    admin.cmd(&["RPUSH", "q", "kept"]);
    assert_eq!(admin.cmd(&["LLEN", "q"]), b":1\r\n");
    admin.cmd(&["DEL", "q"]);
    // `timeout 1` closes idle clients, not blocked ones (as Redis).
    let mut patient = server.raw();
    patient.send(&resp(&["BLPOP", "q", "0"]));
    wait_blocked(&mut admin, 1);
    std::thread::sleep(Duration::from_millis(2500));
    // (`admin` itself was idle long enough to be closed.)
    server.raw().cmd(&["RPUSH", "q", "late"]);
    assert_eq!(patient.read_reply(), b"*2\r\n$1\r\nq\r\n$4\r\nlate\r\n");
}

#[test]
fn bzpopmin_bzpopmax_and_bzmpop_wait_for_a_zadd() {
    let server = Server::with_args(&["--workers", "2"]);
    let mut admin = server.raw();
    let mut w = server.raw();
    w.send(&resp(&["BZPOPMIN", "nothing", "z", "0"]));
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["ZADD", "z", "2", "b", "1", "a"]), b":2\r\n");
    assert_eq!(w.read_reply(), b"*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_eq!(
        w.cmd(&["BZPOPMAX", "z", "0"]),
        b"*3\r\n$1\r\nz\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    w.send(&resp(&["BZMPOP", "0", "2", "y", "z", "MAX", "COUNT", "5"]));
    wait_blocked(&mut admin, 1);
    admin.cmd(&["ZADD", "y", "7", "x"]);
    assert_eq!(
        w.read_reply(),
        b"*2\r\n$1\r\ny\r\n*1\r\n*2\r\n$1\r\nx\r\n$1\r\n7\r\n"
    );
    assert_eq!(w.cmd(&["BZPOPMIN", "z", "0.05"]), b"*-1\r\n");
    assert_eq!(w.cmd(&["BZMPOP", "0.05", "1", "z", "MIN"]), b"*-1\r\n");
    w.cmd(&["HELLO", "3"]);
    w.cmd(&["ZADD", "z", "1.5", "m"]);
    assert_eq!(
        w.cmd(&["BZPOPMIN", "z", "0"]),
        b"*3\r\n$1\r\nz\r\n$1\r\nm\r\n,1.5\r\n"
    );
}
