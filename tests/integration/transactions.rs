//! MULTI / EXEC / DISCARD / WATCH / UNWATCH against the real server, after
//! Redis's tests/unit/multi.tcl: replies and errors, atomicity under
//! concurrency, and WATCH conflicts for every kind of change.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::support::*;

fn ok(c: &mut Raw, args: &[&str]) {
    assert_eq!(show(&c.cmd(args)), "+OK\r\n", "{args:?}");
}

fn queued(c: &mut Raw, args: &[&str]) {
    assert_eq!(show(&c.cmd(args)), "+QUEUED\r\n", "{args:?}");
}

#[test]
fn multi_exec_queues_then_runs_every_command_in_order() {
    let server = Server::start();
    let mut c = server.raw();
    ok(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "a", "1"]);
    queued(&mut c, &["INCR", "a"]);
    queued(&mut c, &["GET", "a"]);
    queued(&mut c, &["GET", "nope"]);
    // Nothing ran yet.
    let mut other = server.raw();
    assert_eq!(show(&other.cmd(&["EXISTS", "a"])), ":0\r\n");
    assert_eq!(show(&c.cmd(&["EXEC"])), "*4\r\n+OK\r\n:2\r\n$1\r\n2\r\n$-1\r\n");
    assert_eq!(show(&other.cmd(&["GET", "a"])), "$1\r\n2\r\n");
    // An empty transaction is an empty array.
    ok(&mut c, &["MULTI"]);
    assert_eq!(show(&c.cmd(&["EXEC"])), "*0\r\n");
}

#[test]
fn runtime_errors_stay_inside_the_exec_reply() {
    let server = Server::start();
    let mut c = server.raw();
    ok(&mut c, &["SET", "s", "text"]);
    ok(&mut c, &["MULTI"]);
    queued(&mut c, &["INCR", "s"]);
    queued(&mut c, &["SET", "b", "1"]);
    assert_eq!(
        show(&c.cmd(&["EXEC"])),
        "*2\r\n-ERR value is not an integer or out of range\r\n+OK\r\n"
    );
    assert_eq!(show(&c.cmd(&["GET", "b"])), "$1\r\n1\r\n");
}

#[test]
fn a_queueing_error_makes_exec_abort_and_applies_nothing() {
    let server = Server::start();
    let mut c = server.raw();
    ok(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "foo1", "bar1"]);
    assert_eq!(
        show(&c.cmd(&["NON-EXISTING-COMMAND"])),
        "-ERR unknown command 'NON-EXISTING-COMMAND', with args beginning with: \r\n"
    );
    assert_eq!(
        show(&c.cmd(&["GET"])),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    queued(&mut c, &["SET", "foo2", "bar2"]);
    assert_eq!(
        show(&c.cmd(&["EXEC"])),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(show(&c.cmd(&["EXISTS", "foo1", "foo2"])), ":0\r\n");
    // The MULTI state is cleared.
    assert_eq!(show(&c.cmd(&["PING"])), "+PONG\r\n");
    assert_eq!(show(&c.cmd(&["EXEC"])), "-ERR EXEC without MULTI\r\n");
}

#[test]
fn misplaced_transaction_commands_get_redis_errors() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(show(&c.cmd(&["EXEC"])), "-ERR EXEC without MULTI\r\n");
    assert_eq!(show(&c.cmd(&["DISCARD"])), "-ERR DISCARD without MULTI\r\n");
    ok(&mut c, &["MULTI"]);
    assert_eq!(show(&c.cmd(&["MULTI"])), "-ERR MULTI calls can not be nested\r\n");
    assert_eq!(
        show(&c.cmd(&["WATCH", "x"])),
        "-ERR WATCH inside MULTI is not allowed\r\n"
    );
    queued(&mut c, &["SET", "x", "1"]);
    // Neither error dooms the transaction (as in Redis).
    assert_eq!(show(&c.cmd(&["EXEC"])), "*1\r\n+OK\r\n");
}

#[test]
fn discard_forgets_the_queue_and_the_watches() {
    let server = Server::start();
    let mut c = server.raw();
    ok(&mut c, &["SET", "x", "10"]);
    ok(&mut c, &["WATCH", "x"]);
    ok(&mut c, &["SET", "x", "10"]); // dirties the watch
    ok(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "x", "999"]);
    ok(&mut c, &["DISCARD"]);
    assert_eq!(show(&c.cmd(&["GET", "x"])), "$2\r\n10\r\n");
    // DISCARD cleared the dirty watch: the next transaction runs.
    ok(&mut c, &["MULTI"]);
    queued(&mut c, &["INCR", "x"]);
    assert_eq!(show(&c.cmd(&["EXEC"])), "*1\r\n:11\r\n");
}

#[test]
fn pipelined_transactions_answer_every_reply_in_order() {
    let server = Server::start();
    let mut c = server.raw();
    let mut batch = Vec::new();
    for round in 0..3 {
        batch.extend(resp(&["MULTI"]));
        batch.extend(resp(&["INCR", "n"]));
        batch.extend(resp(&["SET", &format!("k{round}"), "v"]));
        batch.extend(resp(&["EXEC"]));
    }
    batch.extend(resp(&["GET", "n"]));
    c.send(&batch);
    for round in 1..=3 {
        assert_eq!(show(&c.read_reply()), "+OK\r\n");
        assert_eq!(show(&c.read_reply()), "+QUEUED\r\n");
        assert_eq!(show(&c.read_reply()), "+QUEUED\r\n");
        assert_eq!(show(&c.read_reply()), format!("*2\r\n:{round}\r\n+OK\r\n"));
    }
    assert_eq!(show(&c.read_reply()), "$1\r\n3\r\n");
}

#[test]
fn exec_after_a_watch_conflict_is_a_null_array_in_resp2_and_resp3() {
    let server = Server::start();
    for (hello, null) in [("2", "*-1\r\n"), ("3", "_\r\n")] {
        let mut c = server.raw();
        c.cmd(&["HELLO", hello]);
        ok(&mut c, &["WATCH", "w"]);
        ok(&mut server.raw(), &["SET", "w", hello]);
        ok(&mut c, &["MULTI"]);
        queued(&mut c, &["SET", "w", "mine"]);
        assert_eq!(show(&c.cmd(&["EXEC"])), null);
        assert_eq!(show(&c.cmd(&["GET", "w"])), format!("$1\r\n{hello}\r\n"));
    }
}

/// A list of commands, each a list of arguments.
type Commands<'a> = &'a [&'a [&'a str]];

/// WATCH `key` on one connection, apply `change` on another, then run a
/// transaction: true if EXEC ran (no conflict detected).
fn exec_runs_after(server: &Server, setup: &[&[&str]], key: &str, change: &[&[&str]]) -> bool {
    let mut other = server.raw();
    for args in setup {
        other.cmd(args);
    }
    let mut c = server.raw();
    ok(&mut c, &["WATCH", key]);
    for args in change {
        let reply = other.cmd(args);
        assert!(!reply.starts_with(b"-"), "{args:?}: {}", show(&reply));
    }
    ok(&mut c, &["MULTI"]);
    queued(&mut c, &["PING"]);
    let reply = show(&c.cmd(&["EXEC"]));
    match reply.as_str() {
        "*1\r\n+PONG\r\n" => true,
        "*-1\r\n" => false,
        other => panic!("unexpected EXEC reply {other:?}"),
    }
}

#[test]
fn watch_detects_every_kind_of_change_by_another_client() {
    let server = Server::start();
    let changes: &[(&str, Commands, Commands)] = &[
        ("set", &[], &[&["SET", "k1", "v"]]),
        ("overwrite", &[&["SET", "k2", "a"]], &[&["SET", "k2", "a"]]),
        ("incr", &[&["SET", "k3", "1"]], &[&["INCR", "k3"]]),
        ("append", &[&["SET", "k4", "a"]], &[&["APPEND", "k4", "b"]]),
        (
            "setrange",
            &[&["SET", "k5", "abc"]],
            &[&["SETRANGE", "k5", "1", "x"]],
        ),
        ("del", &[&["SET", "k6", "a"]], &[&["DEL", "k6"]]),
        ("expire", &[&["SET", "k7", "a"]], &[&["EXPIRE", "k7", "100"]]),
        (
            "persist",
            &[&["SET", "k8", "a", "EX", "100"]],
            &[&["PERSIST", "k8"]],
        ),
        ("rename away", &[&["SET", "k9", "a"]], &[&["RENAME", "k9", "k9b"]]),
        (
            "rename onto",
            &[&["SET", "k10b", "a"]],
            &[&["RENAME", "k10b", "k10"]],
        ),
        ("mset", &[], &[&["MSET", "x", "1", "k11", "2"]]),
        ("getdel", &[&["SET", "k12", "a"]], &[&["GETDEL", "k12"]]),
        ("flushall", &[&["SET", "k13", "a"]], &[&["FLUSHALL"]]),
        ("flushdb", &[&["SET", "k14", "a"]], &[&["FLUSHDB"]]),
    ];
    for (what, setup, change) in changes {
        let key = change
            .iter()
            .flat_map(|c| c.iter())
            .find(|a| a.starts_with('k') && !a.ends_with('b'))
            .copied()
            .unwrap_or_else(|| match *what {
                "flushall" => "k13",
                "flushdb" => "k14",
                _ => unreachable!(),
            });
        assert!(
            !exec_runs_after(&server, setup, key, change),
            "{what}: EXEC ran although {key} changed"
        );
    }
}

#[test]
fn watch_ignores_changes_that_do_not_touch_the_key() {
    let server = Server::start();
    let none: &[&[&str]] = &[];
    assert!(exec_runs_after(&server, none, "u1", none));
    assert!(exec_runs_after(&server, none, "u2", &[&["SET", "other", "v"]]));
    // Deleting or expiring a key that does not exist changes nothing.
    assert!(exec_runs_after(
        &server,
        none,
        "u3",
        &[&["DEL", "u3"], &["EXPIRE", "u3", "1"]]
    ));
    // FLUSHALL does not touch a watched key that did not exist (multi.tcl).
    assert!(exec_runs_after(&server, none, "u4", &[&["FLUSHALL"]]));
    // A key that had already expired when watched is reaped at WATCH: its
    // lazy deletion afterwards is no change ("WATCH stale keys").
    let mut c = server.raw();
    ok(&mut c, &["SET", "stale", "v", "PX", "1"]);
    assert!(eventually(Duration::from_secs(10), || {
        show(&c.cmd(&["PTTL", "stale"])) == ":-2\r\n"
    }));
    ok(&mut c, &["SET", "stale2", "v", "PX", "1"]);
    thread::sleep(Duration::from_millis(5));
    assert!(exec_runs_after(&server, none, "stale2", &[&["EXISTS", "stale2"]]));
}

#[test]
fn watch_detects_expiry_lazy_or_active() {
    let server = Server::start();
    let mut c = server.raw();
    // Expired by the time EXEC runs, whether or not anything reaped it.
    ok(&mut c, &["SET", "e1", "v", "PX", "50"]);
    ok(&mut c, &["WATCH", "e1"]);
    let mut probe = server.raw();
    assert!(eventually(Duration::from_secs(10), || {
        show(&probe.cmd(&["EXISTS", "e1"])) == ":0\r\n"
    }));
    ok(&mut c, &["MULTI"]);
    queued(&mut c, &["PING"]);
    assert_eq!(show(&c.cmd(&["EXEC"])), "*-1\r\n");

    // Reaped by active expiry (nobody touches it): DBSIZE drops to 0 first.
    ok(&mut c, &["FLUSHALL"]);
    ok(&mut c, &["SET", "e2", "v", "PX", "100"]);
    ok(&mut c, &["WATCH", "e2"]);
    assert!(eventually(Duration::from_secs(20), || {
        show(&probe.cmd(&["DBSIZE"])) == ":0\r\n"
    }));
    ok(&mut c, &["MULTI"]);
    queued(&mut c, &["PING"]);
    assert_eq!(show(&c.cmd(&["EXEC"])), "*-1\r\n");
}

#[test]
fn watch_sees_the_clients_own_writes_and_exec_or_unwatch_ends_watching() {
    let server = Server::start();
    let mut c = server.raw();
    ok(&mut c, &["WATCH", "x"]);
    ok(&mut c, &["SET", "x", "1"]);
    ok(&mut c, &["MULTI"]);
    queued(&mut c, &["PING"]);
    assert_eq!(show(&c.cmd(&["EXEC"])), "*-1\r\n");
    // After a failed EXEC the key is no longer watched.
    ok(&mut c, &["SET", "x", "2"]);
    ok(&mut c, &["MULTI"]);
    queued(&mut c, &["PING"]);
    assert_eq!(show(&c.cmd(&["EXEC"])), "*1\r\n+PONG\r\n");
    // UNWATCH forgets the watch.
    ok(&mut c, &["WATCH", "x"]);
    ok(&mut c, &["SET", "x", "3"]);
    ok(&mut c, &["UNWATCH"]);
    ok(&mut c, &["MULTI"]);
    queued(&mut c, &["PING"]);
    assert_eq!(show(&c.cmd(&["EXEC"])), "*1\r\n+PONG\r\n");
    ok(&mut c, &["UNWATCH"]);
    // A watch that survives a disconnect would leak: CLIENT INFO shows none.
    ok(&mut c, &["WATCH", "a", "b", "a"]);
    assert!(show(&c.cmd(&["CLIENT", "INFO"])).contains(" watch=2 "));
}

#[test]
fn a_transaction_is_atomic_for_concurrent_readers() {
    let server = Server::with_args(&["--workers", "4"]);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let port = server.port;
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut c = Raw::connect(port);
                let mut batch = Vec::new();
                batch.extend(resp(&["MULTI"]));
                batch.extend(resp(&["INCR", "a"]));
                batch.extend(resp(&["INCR", "b"]));
                batch.extend(resp(&["EXEC"]));
                let mut rounds = 0;
                while !stop.load(Ordering::Relaxed) && rounds < 20_000 {
                    c.send(&batch);
                    for _ in 0..3 {
                        c.read_reply();
                    }
                    let exec = c.read_reply();
                    assert!(exec.starts_with(b"*2\r\n:"), "{}", show(&exec));
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let port = server.port;
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut c = Raw::connect(port);
                let mut seen = 0;
                while !stop.load(Ordering::Relaxed) {
                    let reply = show(&c.cmd(&["MGET", "a", "b"]));
                    // "*2\r\n" then a's reply then b's (bulks, or two nils before
                    // the first EXEC): equal values make the rest two equal halves.
                    let rest = reply.strip_prefix("*2\r\n").expect("an array of 2");
                    let (first, second) = rest.split_at(rest.len() / 2);
                    assert_eq!(first, second, "MGET saw half a transaction: {reply:?}");
                    seen += 1;
                }
                seen
            })
        })
        .collect();
    let rounds: u32 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    let mut c = server.raw();
    let expected = rounds.to_string();
    assert_eq!(
        show(&c.cmd(&["MGET", "a", "b"])),
        format!("*2\r\n${0}\r\n{1}\r\n${0}\r\n{1}\r\n", expected.len(), expected)
    );
}

#[test]
fn keyless_commands_inside_exec_see_the_whole_transaction_and_do_not_deadlock() {
    let server = Server::start();
    let mut c = server.raw();
    ok(&mut c, &["MULTI"]);
    queued(&mut c, &["SET", "k1", "v"]);
    queued(&mut c, &["SET", "k2", "v"]);
    queued(&mut c, &["DBSIZE"]);
    queued(&mut c, &["KEYS", "k*"]);
    queued(&mut c, &["INFO", "keyspace"]);
    queued(&mut c, &["RANDOMKEY"]);
    queued(&mut c, &["SCAN", "0", "COUNT", "1000"]);
    queued(&mut c, &["FLUSHALL"]);
    queued(&mut c, &["DBSIZE"]);
    let reply = show(&c.cmd(&["EXEC"]));
    assert!(reply.starts_with("*9\r\n+OK\r\n+OK\r\n:2\r\n*2\r\n"), "{reply}");
    assert!(reply.contains("keys=2"), "{reply}");
    assert!(reply.ends_with("+OK\r\n:0\r\n"), "{reply}");
    assert_eq!(show(&c.cmd(&["PING"])), "+PONG\r\n");
}

#[test]
fn exec_on_a_resp3_connection_nests_resp3_replies() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["HELLO", "3"]);
    ok(&mut c, &["MULTI"]);
    queued(&mut c, &["GET", "nope"]);
    queued(&mut c, &["CONFIG", "GET", "timeout"]);
    assert_eq!(
        show(&c.cmd(&["EXEC"])),
        "*2\r\n_\r\n%1\r\n$7\r\ntimeout\r\n$1\r\n0\r\n"
    );
}

/// Runs `MULTI PING EXEC` on `c` and tells whether the EXEC ran.
fn exec_runs(c: &mut Raw) -> bool {
    ok(c, &["MULTI"]);
    queued(c, &["PING"]);
    match show(&c.cmd(&["EXEC"])).as_str() {
        "*1\r\n+PONG\r\n" => true,
        "*-1\r\n" => false,
        other => panic!("unexpected EXEC reply {other:?}"),
    }
}

#[test]
fn swapdb_touches_a_watched_key_that_exists() {
    // multi.tcl "SWAPDB is able to touch the watched keys that exist".
    let server = Server::start();
    let mut c = server.raw();
    ok(&mut c, &["SET", "x", "30"]);
    ok(&mut c, &["WATCH", "x"]);
    ok(&mut c, &["SWAPDB", "0", "1"]);
    assert!(!exec_runs(&mut c));
}

#[test]
fn swapdb_touches_a_watched_key_that_it_brings_in() {
    // multi.tcl "SWAPDB is able to touch the watched keys that do not exist".
    let server = Server::start();
    let mut c = server.raw();
    ok(&mut c, &["SELECT", "1"]);
    ok(&mut c, &["SET", "x", "30"]);
    ok(&mut c, &["SELECT", "0"]);
    ok(&mut c, &["WATCH", "x"]);
    ok(&mut c, &["SWAPDB", "0", "1"]);
    assert!(!exec_runs(&mut c));
}

#[test]
fn swapdb_does_not_touch_a_watched_key_missing_from_both_databases() {
    let server = Server::start();
    let mut c = server.raw();
    ok(&mut c, &["SET", "other", "v"]);
    ok(&mut c, &["WATCH", "x"]);
    ok(&mut c, &["SWAPDB", "0", "1"]);
    assert!(exec_runs(&mut c));
    // Swapping databases nobody watches in changes nothing either.
    ok(&mut c, &["SET", "x", "v"]);
    ok(&mut c, &["WATCH", "x"]);
    ok(&mut c, &["SWAPDB", "2", "3"]);
    assert!(exec_runs(&mut c));
}

#[test]
fn a_watch_stays_with_its_database_across_swapdb() {
    // As Redis, a watch names (database, key), not the data it held: after
    // SWAPDB a change to the key in the watcher's database fails the EXEC,
    // a change in the other database does not.
    let server = Server::start();
    let mut c = server.raw();
    let mut other = server.raw();
    ok(&mut c, &["WATCH", "x"]);
    ok(&mut other, &["SWAPDB", "0", "1"]);
    ok(&mut other, &["SELECT", "1"]);
    ok(&mut other, &["SET", "x", "in-1"]);
    assert!(
        exec_runs(&mut c),
        "a write to database 1 is not a change of 0's x"
    );

    ok(&mut other, &["FLUSHALL"]);
    ok(&mut c, &["WATCH", "x"]);
    ok(&mut other, &["SWAPDB", "0", "1"]);
    ok(&mut other, &["SELECT", "0"]);
    ok(&mut other, &["SET", "x", "in-0"]);
    assert!(!exec_runs(&mut c), "a write to database 0 changes the watched x");

    // A watch in another database (SELECT after WATCH) follows it too.
    ok(&mut other, &["FLUSHALL"]);
    ok(&mut c, &["WATCH", "y"]);
    ok(&mut c, &["SELECT", "5"]);
    ok(&mut other, &["SWAPDB", "0", "7"]);
    ok(&mut other, &["SELECT", "0"]);
    ok(&mut other, &["SET", "y", "v"]);
    assert!(!exec_runs(&mut c));
    ok(&mut c, &["SELECT", "0"]);
}

#[test]
fn swapdb_inside_a_transaction_touches_other_clients_watched_keys() {
    let server = Server::start();
    let mut watcher = server.raw();
    let mut swapper = server.raw();
    ok(&mut watcher, &["SET", "x", "1"]);
    ok(&mut watcher, &["WATCH", "x", "missing"]);
    ok(&mut swapper, &["MULTI"]);
    queued(&mut swapper, &["SWAPDB", "0", "1"]);
    assert_eq!(show(&swapper.cmd(&["EXEC"])), "*1\r\n+OK\r\n");
    assert!(!exec_runs(&mut watcher));

    // And a missing key stays untouched, its watch still in database 0.
    ok(&mut watcher, &["WATCH", "missing"]);
    ok(&mut swapper, &["MULTI"]);
    queued(&mut swapper, &["SWAPDB", "0", "1"]);
    assert_eq!(show(&swapper.cmd(&["EXEC"])), "*1\r\n+OK\r\n");
    assert!(exec_runs(&mut watcher));
}

#[test]
fn watches_execs_and_unwatches_race_swapdb_without_deadlock() {
    // Watchers WATCH, EXEC and UNWATCH while another client swaps the two
    // databases in a loop: UNWATCH must find each entry in whichever store
    // holds it now, and every command answers.
    let server = Server::start();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = Arc::clone(&stop);
        let mut c = server.raw();
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                ok(&mut c, &["SWAPDB", "0", "1"]);
                n += 1;
            }
            n
        })
    };
    let watchers: Vec<_> = (0..2)
        .map(|t| {
            let mut c = server.raw();
            thread::spawn(move || {
                for i in 0..200 {
                    let key = format!("k{t}-{}", i % 5);
                    ok(&mut c, &["WATCH", &key, "shared"]);
                    if i % 3 == 0 {
                        ok(&mut c, &["SET", &key, "v"]);
                    }
                    let _ = exec_runs(&mut c);
                    if i % 7 == 0 {
                        ok(&mut c, &["WATCH", &key]);
                        ok(&mut c, &["UNWATCH"]);
                    }
                }
            })
        })
        .collect();
    for w in watchers {
        w.join().expect("watcher");
    }
    stop.store(true, Ordering::Relaxed);
    assert!(swapper.join().expect("swapper") > 0);
    let mut c = server.raw();
    assert_eq!(show(&c.cmd(&["PING"])), "+PONG\r\n");
}
