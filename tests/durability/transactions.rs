//! A transaction (`EXEC`) is one unit in the WAL: after a crash — SIGKILL while large
//! transactions are being logged, or a log cut in the middle of one — replay applies each
//! transaction entirely or not at all, and `check-wal` reports the framing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use crate::support::{self, check_wal, frame_offsets, random_sleep, Client, Launch, Reply, Rng};

/// Keys written by every transaction.
const KEYS: usize = 400;

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("tx:{i}")).collect()
}

/// One transaction setting every key to a value naming `round`: MULTI, KEYS SETs, EXEC.
fn transaction(round: u64) -> Vec<Vec<String>> {
    let mut cmds = vec![crate::cmd!["MULTI"]];
    for (i, key) in keys().iter().enumerate() {
        cmds.push(crate::cmd![
            "SET",
            key,
            format!("round{round}:{i}:{}", "x".repeat(64))
        ]);
    }
    cmds.push(crate::cmd!["EXEC"]);
    cmds
}

/// The round every key names, asserting they all name the same one (None: no key exists).
fn single_round(c: &mut Client) -> Option<u64> {
    let values = c.mget(&keys());
    let rounds: Vec<Option<u64>> = values
        .iter()
        .map(|v| {
            v.as_ref().map(|v| {
                v.trim_start_matches("round")
                    .split(':')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
        })
        .collect();
    assert!(
        rounds.iter().all(|r| *r == rounds[0]),
        "half a transaction survived: rounds {:?}",
        rounds.iter().collect::<std::collections::BTreeSet<_>>()
    );
    rounds[0]
}

#[test]
fn kill_9_while_large_transactions_are_logged_never_leaves_half_of_one() {
    let mut rng = Rng::new("kill_9_while_large_transactions_are_logged_never_leaves_half_of_one");
    for policy in ["always", "never"] {
        let dir = support::tempdir();
        let mut server = support::start(dir.path(), &Launch::fsync(policy));
        let port = server.port;
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let Ok(mut c) = Client::try_connect(port) else {
                    return 0;
                };
                let mut acked = 0;
                for round in 1.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match c.try_pipeline(&transaction(round)) {
                        Ok(replies) if matches!(replies.last(), Some(Reply::Array(Some(_)))) => acked = round,
                        _ => break,
                    }
                }
                acked
            })
        };
        random_sleep(&mut rng, 150, 600);
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        let acked = writer.join().unwrap();

        let mut server = support::start(dir.path(), &Launch::fsync(policy));
        let round = single_round(&mut server.client());
        if policy == "always" {
            // Everything acknowledged is there; at most the one in flight on top.
            let round = round.expect("acknowledged transactions lost");
            assert!(
                round == acked || round == acked + 1,
                "round {round}, acked {acked}"
            );
        }
        server.sigterm();
    }
}

#[test]
fn a_log_cut_inside_a_transaction_replays_none_of_it_and_check_wal_reports_it() {
    let dir = support::tempdir();
    let mut server = support::start(dir.path(), &Launch::fsync("always"));
    let mut c = server.client();
    assert!(c.cmd(&["SET", "before", "1"]).is_ok());
    let replies = c.pipeline(&transaction(1));
    assert!(matches!(replies.last(), Some(Reply::Array(Some(r))) if r.len() == KEYS));
    drop(c);
    server.sigterm();

    let wal = dir.path().join(support::WAL_FILE);
    let frames = frame_offsets(&wal);
    assert_eq!(frames.len(), 2, "one SET record and one transaction frame");
    let (code, report) = check_wal(&wal, false);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains(&format!("set {}", KEYS + 1)), "{report}");
    assert!(report.contains("in 1 transactions"), "{report}");

    // Cut the log in the middle of the transaction frame: a torn tail.
    let bytes = std::fs::read(&wal).unwrap();
    let cut = frames[1] + (bytes.len() - frames[1]) / 2;
    std::fs::write(&wal, &bytes[..cut]).unwrap();
    let (code, report) = check_wal(&wal, false);
    assert_ne!(code, 0);
    assert!(report.contains("TORN TAIL"), "{report}");

    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    assert_eq!(c.get("before").as_deref(), Some("1"));
    assert_eq!(single_round(&mut c), None);
    assert_eq!(c.dbsize(), 1);
    drop(c);
    server.sigterm();
}
