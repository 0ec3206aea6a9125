//! Hashes survive kill -9 under `fsync = always` (no acknowledged field lost,
//! with HSET/HDEL/HINCRBY pipelined), compaction mid-run, and a restart
//! keeps field expiries absolute.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::support::{self, random_sleep, Client, Launch, Reply, Rng};

const WRITERS: usize = 3;
/// HDEL removes the field written this many steps earlier.
const LAG: u64 = 3;

fn value(t: usize, i: u64) -> String {
    format!("v{t}:{i}:{}", "y".repeat((i % 23) as usize))
}

/// Step `i` of writer `t`: HSET field i, HINCRBY the counter, HDEL field i - LAG.
fn step(t: usize, i: u64) -> Vec<Vec<String>> {
    let key = format!("hk{t}");
    let mut cmds = vec![
        crate::cmd!["HSET", key, format!("f{i}"), value(t, i)],
        crate::cmd!["HINCRBY", key, "counter", 1],
    ];
    if i >= LAG {
        cmds.push(crate::cmd!["HDEL", key, format!("f{}", i - LAG)]);
    }
    cmds
}

struct Progress {
    acked: AtomicU64,
    sent: AtomicU64,
}

fn spawn_writers(port: u16) -> (Vec<thread::JoinHandle<()>>, Arc<Vec<Progress>>) {
    let progress: Arc<Vec<Progress>> = Arc::new(
        (0..WRITERS)
            .map(|_| Progress {
                acked: AtomicU64::new(0),
                sent: AtomicU64::new(0),
            })
            .collect(),
    );
    let handles = (0..WRITERS)
        .map(|t| {
            let progress = Arc::clone(&progress);
            thread::spawn(move || {
                let Ok(mut c) = Client::try_connect(port) else {
                    return;
                };
                let mut i = 0;
                loop {
                    // Four steps per pipelined write.
                    let cmds: Vec<Vec<String>> = (i..i + 4).flat_map(|j| step(t, j)).collect();
                    progress[t].sent.store(i + 4, Ordering::SeqCst);
                    let Ok(replies) = c.try_pipeline(&cmds) else {
                        return;
                    };
                    for r in &replies {
                        assert!(!matches!(r, Reply::Error(_)), "writer {t}: {r:?}");
                    }
                    i += 4;
                    progress[t].acked.store(i, Ordering::SeqCst);
                }
            })
        })
        .collect();
    (handles, progress)
}

/// Every acknowledged step's effect is present; nothing past what was sent exists.
fn verify(c: &mut Client, progress: &[Progress]) -> u64 {
    let mut total = 0;
    for (t, p) in progress.iter().enumerate() {
        let (acked, sent) = (p.acked.load(Ordering::SeqCst), p.sent.load(Ordering::SeqCst));
        total += acked;
        let key = format!("hk{t}");
        let counter = match c.cmd(&["HGET", &key, "counter"]) {
            Reply::Bulk(Some(v)) => String::from_utf8(v).unwrap().parse::<u64>().unwrap(),
            Reply::Bulk(None) => 0,
            other => panic!("{other:?}"),
        };
        assert!(
            (acked..=sent).contains(&counter),
            "writer {t}: counter {counter} outside acked {acked} ..= sent {sent}"
        );
        for j in 0..sent + LAG {
            let got = c.cmd(&["HGET", &key, &format!("f{j}")]).bulk_str();
            if let Some(v) = &got {
                assert_eq!(v, &value(t, j), "writer {t}: f{j} has a wrong value");
            }
            if j + LAG < acked {
                assert!(got.is_none(), "writer {t}: f{j} was deleted (acked) but is back");
            } else if j < acked && j + LAG >= sent {
                assert!(got.is_some(), "writer {t}: acknowledged f{j} was lost");
            } else if j >= sent {
                assert!(got.is_none(), "writer {t}: f{j} was never sent but exists");
            }
        }
    }
    total
}

fn kill_during_load(compact_mid_run: bool, test: &str) {
    let dir = support::tempdir();
    let launch = Launch::fsync("always");
    let mut rng = Rng::new(test);
    let mut server = support::start(dir.path(), &launch);
    let (handles, progress) = spawn_writers(server.port);
    random_sleep(&mut rng, 150, 400);
    if compact_mid_run {
        let mut admin = server.client();
        assert!(admin.compact());
        admin.wait_compaction_done();
        random_sleep(&mut rng, 20, 100);
    }
    server.kill9();
    for h in handles {
        h.join().unwrap();
    }
    let server = support::start(dir.path(), &launch);
    let mut c = server.client();
    let total = verify(&mut c, &progress);
    assert!(total > 0, "no step was acknowledged before the kill");
}

#[test]
fn kill_9_under_fsync_always_loses_no_acknowledged_hash_field() {
    kill_during_load(false, "hash-kill");
}

#[test]
fn compaction_mid_run_then_kill_9_loses_no_hash_field() {
    kill_during_load(true, "hash-compact-kill");
}

#[test]
fn field_expiries_stay_absolute_across_restart_and_compaction() {
    let dir = support::tempdir();
    let launch = Launch::fsync("always");
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    c.cmd(&["HSET", "h", "short", "1", "long", "2", "none", "3"]);
    c.cmd(&["HPEXPIRE", "h", "300", "FIELDS", "1", "short"]);
    c.cmd(&["HEXPIREAT", "h", "4000000000", "FIELDS", "1", "long"]);
    c.cmd(&["HSET", "gone", "f", "1"]);
    c.cmd(&["HDEL", "gone", "f"]);
    server.kill9();
    // Past the short TTL while down: replay must not resurrect the field.
    thread::sleep(Duration::from_millis(400));
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    let times = c.cmd(&["HPEXPIRETIME", "h", "FIELDS", "3", "short", "long", "none"]);
    assert_eq!(
        times,
        Reply::Array(Some(vec![
            Reply::Int(-2),
            Reply::Int(4_000_000_000_000),
            Reply::Int(-1)
        ]))
    );
    assert_eq!(c.cmd(&["EXISTS", "gone"]).int(), 0);
    assert!(c.compact());
    c.wait_compaction_done();
    let (code, report) = support::check_wal(&server.wal_path(), false);
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains("hset 1"),
        "one HashSet record per hash after compaction: {report}"
    );
    server.kill9();
    let server = support::start(dir.path(), &launch);
    let mut c = server.client();
    let times = c.cmd(&["HPEXPIRETIME", "h", "FIELDS", "3", "short", "long", "none"]);
    assert_eq!(
        times,
        Reply::Array(Some(vec![
            Reply::Int(-2),
            Reply::Int(4_000_000_000_000),
            Reply::Int(-1)
        ]))
    );
    assert_eq!(c.cmd(&["HGET", "h", "none"]).bulk_str().as_deref(), Some("3"));
}
