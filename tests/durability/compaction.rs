//! Compaction loses nothing written while it runs, and a crash at any moment of it (random
//! kill -9, or an `abort()` at each step of the swap via `KVSERVER_CRASH_AT`) leaves a log that
//! recovers to exactly what was acknowledged.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use crate::crash::{spawn_writers, Ledger};
use crate::support::{self, random_sleep, Client, Launch, Reply, Rng, Server, COMPACT_TMP_FILE};

/// Expected state of some keys: `None` = must be absent.
type Model = HashMap<String, Option<String>>;

fn preload_value(i: u64) -> String {
    format!("pre{i}:{}", "p".repeat(150))
}

/// Writes `pre:{0..n}` in pipelined chunks so compactions have a real snapshot to take.
fn preload(c: &mut Client, n: u64) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let cmds: Vec<Vec<String>> = chunk
            .iter()
            .map(|&i| crate::cmd!["SET", format!("pre:{i}"), preload_value(i)])
            .collect();
        assert!(c.pipeline(&cmds).iter().all(|r| r.is_ok()));
    }
}

fn check_preload(c: &mut Client, n: u64) {
    let keys: Vec<String> = (0..n).map(|i| format!("pre:{i}")).collect();
    for (i, v) in c.mget(&keys).into_iter().enumerate() {
        assert_eq!(
            v,
            Some(preload_value(i as u64)),
            "pre:{i} lost or changed after recovery"
        );
    }
}

fn check_model(c: &mut Client, model: &Model) {
    let keys: Vec<String> = model.keys().cloned().collect();
    for (key, got) in keys.iter().zip(c.mget(&keys)) {
        assert_eq!(&got, &model[key], "{key}: recovered value differs");
    }
}

/// Writers over a small per-thread key space (SET/DEL/APPEND/INCR, overwrites on purpose), each
/// keeping a model updated from acknowledged replies only, until `stop` is set.
fn spawn_model_writers(
    server: &Server,
    threads: usize,
    seed: u64,
    stop: &Arc<AtomicBool>,
) -> Vec<thread::JoinHandle<Model>> {
    (0..threads)
        .map(|t| {
            let port = server.port;
            let stop = Arc::clone(stop);
            thread::spawn(move || {
                let mut rng = seed ^ ((t as u64 + 1) * 0x9E37_79B9_7F4A_7C15) | 1;
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut c = Client::connect(port);
                let mut model = Model::new();
                let ctr = format!("t{t}:ctr");
                let mut seq = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    seq += 1;
                    let r = next();
                    let key = format!("t{t}:k{}", r / 10 % 50);
                    match r % 10 {
                        0..=6 => {
                            let v = format!("{t}:{seq}");
                            assert!(c.cmd(&["SET", &key, &v]).is_ok());
                            model.insert(key, Some(v));
                        }
                        7 => {
                            c.cmd(&["DEL", &key]).int();
                            model.insert(key, None);
                        }
                        8 => {
                            let add = format!("+{seq}");
                            c.cmd(&["APPEND", &key, &add]).int();
                            let cur = model.get(&key).cloned().flatten().unwrap_or_default();
                            model.insert(key, Some(cur + &add));
                        }
                        _ => {
                            let n = c.cmd(&["INCR", &ctr]).int();
                            model.insert(ctr.clone(), Some(n.to_string()));
                        }
                    }
                }
                model
            })
        })
        .collect()
}

/// Writers run while COMPACT is issued several times; then the server is stopped with `stop`
/// and restarted: every acknowledged write must be there with its final value.
fn compactions_during_writes_lose_nothing(launch: Launch, test: &str, stop_server: impl FnOnce(&mut Server)) {
    const PRELOAD: u64 = 20_000;
    const COMPACTIONS: u64 = 5;
    let mut rng = Rng::new(test);
    let dir = support::tempdir();
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    preload(&mut c, PRELOAD);
    let stop = Arc::new(AtomicBool::new(false));
    let writers = spawn_model_writers(&server, 4, rng.next(), &stop);
    let mut started = 0;
    while started < COMPACTIONS {
        random_sleep(&mut rng, 5, 40);
        if c.compact() {
            started += 1;
        }
        // A second request while the first runs is either refused ("already") or starts anew.
        if rng.range(0, 2) == 0 && c.compact() {
            started += 1;
        }
    }
    c.wait_compaction_done();
    random_sleep(&mut rng, 5, 40);
    stop.store(true, Ordering::SeqCst);
    let mut model = Model::new();
    for w in writers {
        model.extend(w.join().expect("writer panicked"));
    }
    let wal = c.stats()["wal"].clone();
    assert!(
        wal["compactions"].as_u64().unwrap() >= COMPACTIONS,
        "STATS wal: {wal}"
    );
    assert_eq!(wal["compaction_failures"].as_u64(), Some(0), "STATS wal: {wal}");
    drop(c);
    stop_server(&mut server);

    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    check_preload(&mut c, PRELOAD);
    check_model(&mut c, &model);
    let present = model.values().filter(|v| v.is_some()).count() as i64;
    assert_eq!(c.dbsize(), PRELOAD as i64 + present, "unexpected extra keys");
    drop(c);
    server.sigterm();
    let (code, report) = support::check_wal(&server.wal_path(), false);
    assert_eq!(code, 0, "check-wal after a clean stop: {report}");
}

#[test]
fn compactions_during_writes_lose_nothing_acknowledged_with_fsync_always_and_kill9() {
    compactions_during_writes_lose_nothing(Launch::fsync("always"), "compact_always", |s| s.kill9());
}

#[test]
fn compactions_during_writes_lose_nothing_with_fsync_interval_and_sigterm() {
    compactions_during_writes_lose_nothing(Launch::fsync("interval"), "compact_interval", |s| s.sigterm());
}

#[test]
fn kill9_at_a_random_moment_of_a_compaction_loses_nothing_acknowledged() {
    const PRELOAD: u64 = 30_000;
    let mut rng = Rng::new("kill9_during_compaction");
    let dir = support::tempdir();
    let launch = Launch::fsync("always");
    let mut ledger = Ledger::new("kc", 3);
    for cycle in 0..3 {
        let mut server = support::start(dir.path(), &launch);
        assert!(
            !dir.path().join(COMPACT_TMP_FILE).exists(),
            "a leftover compaction temp file survived a restart"
        );
        let mut c = server.client();
        if cycle == 0 {
            preload(&mut c, PRELOAD);
        } else {
            check_preload(&mut c, PRELOAD);
        }
        ledger.check(&mut c, &format!("before cycle {cycle}"));
        let (handles, progress) = spawn_writers(&server, "kc", &ledger.next, 1);
        random_sleep(&mut rng, 20, 80);
        assert!(c.compact(), "no compaction should be running yet");
        random_sleep(&mut rng, 0, 40);
        server.kill9();
        for h in handles {
            h.join().expect("writer panicked");
        }
        ledger.record(&progress);
        eprintln!(
            "cycle {cycle}: next {:?}; temp file present at kill: {}",
            ledger.next,
            dir.path().join(COMPACT_TMP_FILE).exists()
        );
    }
    let mut server = support::start(dir.path(), &launch);
    assert!(!dir.path().join(COMPACT_TMP_FILE).exists());
    let mut c = server.client();
    check_preload(&mut c, PRELOAD);
    ledger.check(&mut c, "after the last cycle");
    drop(c);
    server.sigterm();
    let (code, report) = support::check_wal(&server.wal_path(), false);
    assert_eq!(code, 0, "check-wal after a clean stop: {report}");
}

/// Writes a known state (sets, overwrites, deletes, INCR, APPEND, a TTL), FLUSHes, issues
/// COMPACT with the crash hook set so the process aborts at `point`, then restarts without it.
fn crash_at_compaction_step(point: &str) {
    const PRELOAD: u64 = 20_000;
    let dir = support::tempdir();
    let launch = Launch::fsync("always");
    let mut server = support::start(dir.path(), &launch.clone().env("KVSERVER_CRASH_AT", point));
    let mut c = server.client();
    preload(&mut c, PRELOAD);
    let mut model = Model::new();
    let mut cmds = Vec::new();
    for i in 0..500 {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        cmds.push(crate::cmd!["SET", k, v]);
        model.insert(k, Some(v));
    }
    for i in (0..500).step_by(5) {
        let (k, v) = (format!("k{i}"), format!("new{i}"));
        cmds.push(crate::cmd!["SET", k, v]);
        model.insert(k, Some(v));
    }
    for i in (0..500).step_by(7) {
        let k = format!("k{i}");
        cmds.push(crate::cmd!["DEL", k]);
        model.insert(k, None);
    }
    for _ in 0..10 {
        cmds.push(crate::cmd!["INCR", "ctr"]);
    }
    model.insert("ctr".into(), Some("10".into()));
    cmds.push(crate::cmd!["APPEND", "k1", "-app"]);
    model.insert("k1".into(), Some("v1-app".into()));
    cmds.push(crate::cmd!["EXPIRE", "k2", "100000"]);
    for r in c.pipeline(&cmds) {
        assert!(!matches!(r, Reply::Error(_)), "setup command failed: {r:?}");
    }
    c.flush();
    // Writers keep going (fsync=always, so every OK is durable) while the compaction runs.
    let mut ledger = Ledger::new("cw", 3);
    let (handles, progress) = spawn_writers(&server, "cw", &ledger.next, 1);
    thread::sleep(std::time::Duration::from_millis(20));
    // The reply may or may not arrive before the abort.
    let _ = c.try_cmd(&["COMPACT"]);
    let status = server.wait_exit();
    for h in handles {
        h.join().expect("writer panicked");
    }
    ledger.record(&progress);
    eprintln!("{point}: writers reached {:?}", ledger.next);
    assert_eq!(
        status.signal(),
        Some(libc::SIGABRT),
        "{point}: expected an abort, got {status}; stderr:\n{}",
        server.stderr_text()
    );
    let tmp = dir.path().join(COMPACT_TMP_FILE);
    assert_eq!(
        tmp.exists(),
        point == "compact-before-rename",
        "{point}: temp file presence after the crash"
    );
    let (code, report) = support::check_wal(&server.wal_path(), false);
    assert_eq!(
        code, 0,
        "{point}: the log must be clean right after the crash: {report}"
    );

    let mut server = support::start(dir.path(), &launch);
    assert!(!tmp.exists(), "{point}: leftover temp file after restart");
    let mut c = server.client();
    check_preload(&mut c, PRELOAD);
    check_model(&mut c, &model);
    let written = ledger.check(&mut c, point);
    let present = model.values().filter(|v| v.is_some()).count() as i64;
    assert_eq!(
        c.dbsize(),
        PRELOAD as i64 + present + written,
        "{point}: unexpected extra keys"
    );
    let ttl = c.cmd(&["TTL", "k2"]).int();
    assert!(ttl > 0 && ttl <= 100_000, "{point}: TTL of k2 is {ttl}");
    // The recovered server keeps working and compacting.
    assert!(c.cmd(&["SET", "after", "crash"]).is_ok());
    assert!(c.compact());
    c.wait_compaction_done();
    drop(c);
    server.sigterm();
    assert!(!tmp.exists());
    let (code, report) = support::check_wal(&server.wal_path(), false);
    assert_eq!(
        code, 0,
        "{point}: check-wal after restart and clean stop: {report}"
    );
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    model.insert("after".into(), Some("crash".into()));
    check_model(&mut c, &model);
    ledger.check(&mut c, point);
    drop(c);
    server.sigterm();
}

#[test]
fn crash_before_the_compaction_rename_recovers_the_exact_state() {
    crash_at_compaction_step("compact-before-rename");
}

#[test]
fn crash_before_the_compaction_directory_fsync_recovers_the_exact_state() {
    crash_at_compaction_step("compact-before-dirsync");
}

#[test]
fn crash_after_the_compaction_rename_recovers_the_exact_state() {
    crash_at_compaction_step("compact-after-rename");
}
