//! Per-key order: many clients racing on a handful of keys; whatever order the server applied
//! them in memory (what a GET sees) must be the order replay rebuilds after a restart.

use std::thread;

use crate::support::{self, Client, Launch, Reply, Rng, Server};

const CLIENTS: usize = 8;
const OPS_PER_CLIENT: u64 = 400;
const STRING_KEYS: u64 = 4;
const COUNTERS: u64 = 2;

/// Every key the hammer touches.
fn all_keys() -> Vec<String> {
    (0..STRING_KEYS)
        .map(|k| format!("k{k}"))
        .chain((0..COUNTERS).map(|n| format!("n{n}")))
        .collect()
}

/// 8 clients race SET/APPEND on 4 string keys and INCR on 2 counters; half of them pipeline.
/// Returns the number of INCRs acknowledged per counter.
fn hammer(server: &Server, seed: u64) -> Vec<i64> {
    let handles: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let port = server.port;
            thread::spawn(move || {
                let mut rng_state = seed ^ ((t as u64 + 1) * 0x9E37_79B9_7F4A_7C15) | 1;
                let mut next = move || {
                    rng_state ^= rng_state << 13;
                    rng_state ^= rng_state >> 7;
                    rng_state ^= rng_state << 17;
                    rng_state
                };
                let mut c = Client::connect(port);
                let mut incrs = vec![0i64; COUNTERS as usize];
                let batch = if t % 2 == 0 { 1 } else { 16 };
                let mut seq = 0;
                while seq < OPS_PER_CLIENT {
                    let mut cmds = Vec::new();
                    for _ in 0..batch {
                        let r = next();
                        let cmd = match r % 10 {
                            0..=6 => {
                                crate::cmd!["SET", format!("k{}", r / 10 % STRING_KEYS), format!("{t}:{seq}")]
                            }
                            7 | 8 => crate::cmd![
                                "APPEND",
                                format!("k{}", r / 10 % STRING_KEYS),
                                format!("+{t}:{seq}")
                            ],
                            _ => {
                                incrs[(r / 10 % COUNTERS) as usize] += 1;
                                crate::cmd!["INCR", format!("n{}", r / 10 % COUNTERS)]
                            }
                        };
                        cmds.push(cmd);
                        seq += 1;
                    }
                    for (cmd, reply) in cmds.iter().zip(c.pipeline(&cmds)) {
                        match (cmd[0].as_str(), &reply) {
                            ("SET", Reply::Simple(s)) if s == "OK" => {}
                            ("APPEND" | "INCR", Reply::Int(n)) if *n > 0 => {}
                            _ => panic!("client {t}: {cmd:?} got {reply:?}"),
                        }
                    }
                }
                incrs
            })
        })
        .collect();
    let mut totals = vec![0i64; COUNTERS as usize];
    for h in handles {
        for (tot, n) in totals.iter_mut().zip(h.join().expect("client panicked")) {
            *tot += n;
        }
    }
    totals
}

/// Hammers, reads every key ("the last value seen"), stops the server with `stop`, restarts it
/// and checks every key still holds exactly that value.
fn order_survives(launch: Launch, test: &str, stop: impl FnOnce(&mut Server)) {
    let seed = Rng::new(test).next();
    let dir = support::tempdir();
    let mut server = support::start(dir.path(), &launch);
    let incrs = hammer(&server, seed);
    let keys = all_keys();
    let seen = server.client().mget(&keys);
    for (n, total) in incrs.iter().enumerate() {
        assert_eq!(
            seen[STRING_KEYS as usize + n].as_deref(),
            Some(total.to_string().as_str()),
            "counter n{n} lost INCRs before any restart"
        );
    }
    stop(&mut server);
    let mut server = support::start(dir.path(), &launch);
    let recovered = server.client().mget(&keys);
    for ((key, before), after) in keys.iter().zip(&seen).zip(&recovered) {
        assert_eq!(
            after, before,
            "{key}: value after restart differs from the last value seen before it"
        );
    }
    server.sigterm();
}

#[test]
fn racing_writes_to_few_keys_recover_to_the_last_value_seen_after_sigterm() {
    order_survives(Launch::default(), "order_sigterm", |s| s.sigterm());
}

#[test]
fn racing_writes_to_few_keys_recover_to_the_last_value_seen_after_flush_and_kill9() {
    order_survives(Launch::default(), "order_flush_kill9", |s| {
        s.client().flush();
        s.kill9();
    });
}

#[test]
fn racing_writes_to_few_keys_recover_to_the_last_value_seen_after_kill9_with_fsync_always() {
    order_survives(Launch::fsync("always"), "order_always_kill9", |s| s.kill9());
}
