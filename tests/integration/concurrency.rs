//! Many clients at once: no lost updates, no torn multi-key operations.

use std::sync::Arc;
use std::thread;

use crate::support::*;

#[test]
fn twenty_clients_incr_one_counter_exactly() {
    let server = Arc::new(Server::start());
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                let mut con = server.redis();
                for _ in 0..500 {
                    let _: i64 = redis::cmd("INCR").arg("counter").query(&mut con).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread");
    }
    let mut con = server.redis();
    let n: i64 = redis::cmd("GET").arg("counter").query(&mut con).unwrap();
    assert_eq!(n, 10_000);
}

#[test]
fn sixteen_threads_on_overlapping_keys() {
    let server = Arc::new(Server::start());
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                let mut con = server.redis();
                for i in 0..500 {
                    let shared = format!("shared:{}", i % 32);
                    let own = format!("own:{t}:{}", i % 50);
                    match i % 5 {
                        0 => {
                            let () = redis::cmd("SET").arg(&own).arg(i).query(&mut con).unwrap();
                            let v: i64 = redis::cmd("GET").arg(&own).query(&mut con).unwrap();
                            assert_eq!(v, i, "own key read back");
                        }
                        1 => {
                            let _: i64 = redis::cmd("INCRBY").arg(&shared).arg(2).query(&mut con).unwrap();
                        }
                        2 => {
                            let _: Option<i64> = redis::cmd("GET").arg(&shared).query(&mut con).unwrap();
                        }
                        3 => {
                            let _: i64 = redis::cmd("APPEND")
                                .arg(format!("log:{}", i % 7))
                                .arg("ab")
                                .query(&mut con)
                                .unwrap();
                        }
                        _ => {
                            let _: i64 = redis::cmd("DEL")
                                .arg(format!("tmp:{}", i % 3))
                                .query(&mut con)
                                .unwrap();
                            let () = redis::cmd("SET")
                                .arg(format!("tmp:{}", i % 3))
                                .arg("x")
                                .query(&mut con)
                                .unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread");
    }
    let mut con = server.redis();
    // Every INCRBY 2 landed: 16 threads × 100 INCRBY, spread over shared:*.
    let mut total = 0i64;
    for k in 0..32 {
        let v: Option<i64> = redis::cmd("GET")
            .arg(format!("shared:{k}"))
            .query(&mut con)
            .unwrap();
        total += v.unwrap_or(0);
    }
    assert_eq!(total, 16 * 100 * 2);
    // Every APPEND landed: 16 × 100 appends of 2 bytes over log:0..6.
    let mut bytes = 0i64;
    for k in 0..7 {
        let n: i64 = redis::cmd("STRLEN")
            .arg(format!("log:{k}"))
            .query(&mut con)
            .unwrap();
        bytes += n;
    }
    assert_eq!(bytes, 16 * 100 * 2);
}

#[test]
fn mset_is_never_seen_half_applied_by_mget() {
    let server = Arc::new(Server::start());
    const KEYS: usize = 16;
    let keys: Vec<String> = (0..KEYS).map(|i| format!("m{i}:{}", i * 7919)).collect();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let server = Arc::clone(&server);
            let keys = keys.clone();
            thread::spawn(move || {
                let mut con = server.redis();
                for round in 0..300 {
                    let value = format!("w{w}r{round}");
                    let mut cmd = redis::cmd("MSET");
                    for k in &keys {
                        cmd.arg(k).arg(&value);
                    }
                    let () = cmd.query(&mut con).unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let server = Arc::clone(&server);
            let keys = keys.clone();
            thread::spawn(move || {
                let mut con = server.redis();
                for _ in 0..300 {
                    let vals: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query(&mut con).unwrap();
                    let first = &vals[0];
                    assert!(
                        vals.iter().all(|v| v == first),
                        "MGET saw a partial MSET: {vals:?}"
                    );
                }
            })
        })
        .collect();
    for h in writers.into_iter().chain(readers) {
        h.join().expect("thread");
    }
}

#[test]
fn pipelined_clients_in_parallel_keep_their_own_order() {
    let server = Arc::new(Server::start());
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                let mut c = server.raw();
                let mut wire = Vec::new();
                let mut expected = Vec::new();
                for i in 0..1000 {
                    wire.extend(resp(&["INCR", &format!("c{t}")]));
                    expected.extend(format!(":{}\r\n", i + 1).into_bytes());
                }
                c.send(&wire);
                let got = c.read_n(expected.len());
                assert!(got == expected, "client {t} replies out of order");
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread");
    }
}
