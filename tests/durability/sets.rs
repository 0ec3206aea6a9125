//! Sets survive kill -9 under `fsync = always` (every acknowledged SADD,
//! SMOVE and SINTERSTORE is there, every acknowledged SREM and SPOP stays
//! done, with pipelined writers running when the kill comes), and a SAVE
//! (compaction) then a restart keeps every set, in every encoding.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::thread;

use crate::support::{self, random_sleep, Client, Launch, Reply, Rng};

const WRITERS: usize = 2;
/// Steps per pipelined write.
const STEPS_PER_WRITE: u64 = 4;

/// Step `i` of writer `t`: add a/b/c to `s`, remove b, move c to `d`, add
/// x/y to `p` and pop one member of `p`, copy `s` into `i` with SINTERSTORE.
fn step(t: usize, i: u64) -> Vec<Vec<String>> {
    vec![
        crate::cmd![
            "SADD",
            format!("s{t}"),
            format!("a{i}"),
            format!("b{i}"),
            format!("c{i}")
        ],
        crate::cmd!["SREM", format!("s{t}"), format!("b{i}")],
        crate::cmd!["SMOVE", format!("s{t}"), format!("d{t}"), format!("c{i}")],
        crate::cmd!["SADD", format!("p{t}"), format!("x{i}"), format!("y{i}")],
        crate::cmd!["SPOP", format!("p{t}")],
        crate::cmd!["SINTERSTORE", format!("i{t}"), format!("s{t}"), format!("s{t}")],
    ]
}

/// What writer `t` knows: steps sent, steps acknowledged, members its
/// acknowledged SPOPs returned.
#[derive(Default)]
struct Progress {
    sent: u64,
    acked: u64,
    popped: BTreeSet<String>,
}

fn spawn_writers(port: u16) -> (Vec<thread::JoinHandle<()>>, Arc<Vec<Mutex<Progress>>>) {
    let progress: Arc<Vec<Mutex<Progress>>> = Arc::new((0..WRITERS).map(|_| Mutex::default()).collect());
    let handles = (0..WRITERS)
        .map(|t| {
            let progress = Arc::clone(&progress);
            thread::spawn(move || {
                let Ok(mut c) = Client::try_connect(port) else {
                    return;
                };
                let mut i = 0;
                loop {
                    let cmds: Vec<Vec<String>> = (i..i + STEPS_PER_WRITE).flat_map(|j| step(t, j)).collect();
                    progress[t].lock().unwrap().sent = i + STEPS_PER_WRITE;
                    let Ok(replies) = c.try_pipeline(&cmds) else {
                        return;
                    };
                    let mut p = progress[t].lock().unwrap();
                    for r in &replies {
                        match r {
                            Reply::Error(e) => panic!("writer {t}: {e}"),
                            Reply::Bulk(Some(m)) => {
                                p.popped.insert(String::from_utf8_lossy(m).into_owned());
                            }
                            _ => {}
                        }
                    }
                    i += STEPS_PER_WRITE;
                    p.acked = i;
                }
            })
        })
        .collect();
    (handles, progress)
}

fn members(c: &mut Client, key: &str) -> BTreeSet<String> {
    match c.cmd(&["SMEMBERS", key]) {
        Reply::Array(Some(items)) => items.iter().filter_map(Reply::bulk_str).collect(),
        other => panic!("SMEMBERS {key}: {other:?}"),
    }
}

/// Every acknowledged effect is present; nothing past what was sent exists.
fn verify(c: &mut Client, progress: &[Mutex<Progress>]) -> u64 {
    let mut total = 0;
    for (t, p) in progress.iter().enumerate() {
        let p = p.lock().unwrap();
        total += p.acked;
        let s = members(c, &format!("s{t}"));
        let d = members(c, &format!("d{t}"));
        let pool = members(c, &format!("p{t}"));
        let copy = members(c, &format!("i{t}"));
        for j in 0..p.acked {
            let (a, b, cc) = (format!("a{j}"), format!("b{j}"), format!("c{j}"));
            assert!(s.contains(&a), "writer {t}: acknowledged {a} lost");
            assert!(!s.contains(&b), "writer {t}: removed {b} is back");
            assert!(!s.contains(&cc), "writer {t}: moved {cc} is back in the source");
            assert!(d.contains(&cc), "writer {t}: moved {cc} lost");
            assert!(copy.contains(&a), "writer {t}: SINTERSTORE copy lacks {a}");
        }
        for m in s.iter().chain(&d).chain(&copy) {
            let n: u64 = m[1..].parse().unwrap();
            assert!(n < p.sent, "writer {t}: {m} was never sent");
        }
        for m in &p.popped {
            assert!(!pool.contains(m), "writer {t}: popped {m} is back");
        }
        // Members of acknowledged steps are in the pool unless popped; pops
        // in flight at the kill (not acknowledged) took at most one each.
        let in_flight = p.sent - p.acked;
        let missing = (0..p.acked)
            .flat_map(|j| [format!("x{j}"), format!("y{j}")])
            .filter(|m| !p.popped.contains(m) && !pool.contains(m))
            .count() as u64;
        assert!(
            missing <= in_flight,
            "writer {t}: {missing} pool members lost, only {in_flight} pops were in flight"
        );
    }
    total
}

#[test]
fn kill_9_under_fsync_always_loses_no_acknowledged_set_effect() {
    let dir = support::tempdir();
    let launch = Launch::fsync("always");
    let mut rng = Rng::new("set-kill");
    let mut server = support::start(dir.path(), &launch);
    let (handles, progress) = spawn_writers(server.port);
    random_sleep(&mut rng, 150, 400);
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
fn save_then_restart_keeps_sets_in_every_encoding() {
    let dir = support::tempdir();
    let launch = Launch::fsync("always");
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    // An intset, a listpack, and a hashtable of more than one snapshot chunk (1 MiB).
    let ints: Vec<String> = (0..300).map(|i| (i * 7 - 500).to_string()).collect();
    let small: Vec<String> = (0..20).map(|i| format!("small{i}")).collect();
    let big: Vec<String> = (0..30_000)
        .map(|i| format!("big-member-{i}-{}", "z".repeat(i % 40)))
        .collect();
    for (key, list) in [("ints", &ints), ("small", &small), ("big", &big)] {
        for chunk in list.chunks(1000) {
            let mut args = vec!["SADD", key];
            args.extend(chunk.iter().map(String::as_str));
            assert_eq!(c.cmd(&args).int(), chunk.len() as i64);
        }
    }
    assert_eq!(c.cmd(&["SREM", "big", "big-member-0-"]).int(), 1);
    assert_eq!(c.cmd(&["SUNIONSTORE", "union", "ints", "small"]).int(), 320);
    let popped = c.cmd(&["SPOP", "small"]).bulk_str().unwrap();
    assert!(c.cmd(&["SAVE"]).is_ok());
    let (code, report) = support::check_wal(&server.wal_path(), false);
    assert_eq!(code, 0, "{report}");
    // Writes after the save are in the log too.
    assert_eq!(c.cmd(&["SADD", "ints", "100000"]).int(), 1);
    assert_eq!(c.cmd(&["SMOVE", "big", "small", "big-member-1-z"]).int(), 1);
    server.kill9();

    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    let check = |c: &mut Client| {
        let mut expected_ints: BTreeSet<String> = ints.iter().cloned().collect();
        expected_ints.insert("100000".into());
        assert_eq!(members(c, "ints"), expected_ints);
        let mut expected_small: BTreeSet<String> = small.iter().cloned().collect();
        expected_small.remove(&popped);
        expected_small.insert("big-member-1-z".into());
        assert_eq!(members(c, "small"), expected_small);
        let mut expected_big: BTreeSet<String> = big.iter().cloned().collect();
        expected_big.remove("big-member-0-");
        expected_big.remove("big-member-1-z");
        assert_eq!(members(c, "big"), expected_big);
        assert_eq!(c.cmd(&["SCARD", "union"]).int(), 320);
        for (key, enc) in [("ints", "intset"), ("small", "listpack"), ("big", "hashtable")] {
            assert_eq!(
                c.cmd(&["OBJECT", "ENCODING", key]).bulk_str().as_deref(),
                Some(enc),
                "{key}"
            );
        }
    };
    check(&mut c);
    // A compaction of the replayed sets, then another restart.
    assert!(c.compact());
    c.wait_compaction_done();
    server.kill9();
    let server = support::start(dir.path(), &launch);
    let mut c = server.client();
    check(&mut c);
}
