//! Disk full, simulated with a file-size limit (RLIMIT_FSIZE) on the server process: WAL writes
//! fail with EFBIG, writes are refused with MISCONF while reads keep working, nothing
//! acknowledged is lost, and raising the limit (prlimit) lets the server recover by itself.

use std::thread;
use std::time::{Duration, Instant};

use crate::support::{self, Client, Launch, Reply, WAIT};

const LIMIT: u64 = 64 * 1024;

fn value(i: usize) -> String {
    format!("{i}:{}", "d".repeat(1000))
}

/// Sets `df:{i}` for increasing `i` until a write is refused with MISCONF (bounded).
/// Returns the acknowledged indexes and the MISCONF text.
fn write_until_misconf(c: &mut Client) -> (Vec<usize>, String) {
    let mut acked = Vec::new();
    let deadline = Instant::now() + WAIT;
    for i in 0.. {
        assert!(
            Instant::now() < deadline && i < 20_000,
            "no MISCONF after {i} writes of 1 KB with a {LIMIT}-byte file-size limit"
        );
        match c.cmd(&["SET", &format!("df:{i}"), &value(i)]) {
            Reply::Simple(s) if s == "OK" => acked.push(i),
            Reply::Error(e) if e.starts_with("MISCONF") => return (acked, e),
            other => panic!("SET df:{i}: unexpected reply {other:?}"),
        }
        // Let the interval flusher notice the failure.
        thread::sleep(Duration::from_millis(1));
    }
    unreachable!()
}

fn raise_fsize_limit(pid: libc::pid_t) {
    set_fsize_limit(pid, libc::RLIM_INFINITY);
}

fn set_fsize_limit(pid: libc::pid_t, soft: libc::rlim_t) {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit on our own child with a valid rlimit struct; old limit not requested.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

fn check_acked(c: &mut Client, acked: &[usize]) {
    let keys: Vec<String> = acked.iter().map(|i| format!("df:{i}")).collect();
    for (i, v) in acked.iter().zip(c.mget(&keys)) {
        assert_eq!(v, Some(value(*i)), "acknowledged df:{i} unreadable");
    }
}

fn disk_full_refuses_writes_keeps_reads_and_recovers(policy: &'static str) {
    let dir = support::tempdir();
    let launch = Launch {
        fsize_limit: Some(LIMIT),
        ..Launch::fsync(policy)
    };
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    let (mut acked, err) = write_until_misconf(&mut c);
    let refused = format!("df:{}", acked.len());
    eprintln!(
        "{policy}: {} writes acknowledged, then: {err}; the refused {refused} reads as {:?}",
        acked.len(),
        c.get(&refused).map(|v| v.len())
    );
    assert!(!acked.is_empty(), "the first write already failed");

    // While failing: writes refused, reads fine, STATS says why.
    let r = c.cmd(&["SET", "refused", "x"]);
    assert!(
        matches!(&r, Reply::Error(e) if e.starts_with("MISCONF")),
        "a write while failing got {r:?}"
    );
    check_acked(&mut c, &acked);
    assert!(c.dbsize() >= acked.len() as i64);
    let wal = c.stats()["wal"].clone();
    assert_eq!(wal["failing"], serde_json::Value::Bool(true), "STATS wal: {wal}");
    assert!(
        wal["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "STATS wal.last_error: {wal}"
    );

    // Space comes back: the retries succeed and writes are accepted again.
    raise_fsize_limit(server.pid());
    let deadline = Instant::now() + WAIT;
    loop {
        match c.cmd(&["SET", "recovered", "yes"]) {
            Reply::Simple(s) if s == "OK" => break,
            Reply::Error(e) if e.starts_with("MISCONF") => {}
            other => panic!("SET after raising the limit: {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "writes still refused {WAIT:?} after the limit was raised"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let wal = c.stats()["wal"].clone();
    assert_eq!(wal["failing"], serde_json::Value::Bool(false), "STATS wal: {wal}");
    // The outage is logged once when it starts and once, with its count of
    // failed attempts, when it ends: never once per retry. (The recovery line
    // is written just after writes are accepted again, and read from the
    // server's stderr pipe by another thread: wait for it.)
    let deadline = Instant::now() + WAIT;
    while !server.stderr_text().contains("WAL writes succeed again") && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let log = server.stderr_text();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("refusing writes (MISCONF)"), 1, "{log}");
    let recovered: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WAL writes succeed again"))
        .collect();
    assert_eq!(recovered.len(), 1, "{log}");
    assert!(recovered[0].contains("failed attempts over"), "{}", recovered[0]);
    let more = acked.last().unwrap() + 1_000_000;
    for i in more..more + 100 {
        assert!(c.cmd(&["SET", &format!("df:{i}"), &value(i)]).is_ok());
        acked.push(i);
    }
    drop(c);
    server.sigterm();

    let mut server = support::start(dir.path(), &Launch::fsync(policy));
    let mut c = server.client();
    check_acked(&mut c, &acked);
    assert_eq!(c.get("recovered").as_deref(), Some("yes"));
    drop(c);
    server.sigterm();
    let (code, report) = support::check_wal(&dir.path().join(support::WAL_FILE), false);
    assert_eq!(code, 0, "check-wal after recovery from EFBIG: {report}");
}

#[test]
fn a_full_disk_refuses_writes_with_misconf_keeps_reads_and_recovers_under_interval() {
    disk_full_refuses_writes_keeps_reads_and_recovers("interval");
}

#[test]
fn a_full_disk_refuses_writes_with_misconf_keeps_reads_and_recovers_under_always() {
    disk_full_refuses_writes_keeps_reads_and_recovers("always");
}

#[test]

fn a_compaction_while_the_log_is_failing_loses_nothing_acknowledged() {
    let dir = support::tempdir();
    let launch = Launch {
        fsize_limit: Some(LIMIT),
        ..Launch::fsync("interval")
    };
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    // Overwrites of a few keys: the log outgrows the limit while a snapshot stays small.
    let mut last = std::collections::HashMap::new();
    let deadline = Instant::now() + WAIT;
    for i in 0.. {
        assert!(Instant::now() < deadline && i < 20_000, "no MISCONF");
        let key = format!("ow:{}", i % 4);
        match c.cmd(&["SET", &key, &value(i)]) {
            Reply::Simple(s) if s == "OK" => {
                last.insert(key, value(i));
            }
            Reply::Error(e) if e.starts_with("MISCONF") => break,
            other => panic!("SET {key}: {other:?}"),
        }
        thread::sleep(Duration::from_millis(1));
    }
    // COMPACT is the way out of a full disk (the rewrite is smaller than the log), as
    // BGREWRITEAOF is under Redis's MISCONF; docs/persistence.md: "A successful compaction also
    // clears it". Whatever the compaction's outcome, it must not lose an acknowledged write.
    match c.cmd(&["COMPACT"]) {
        Reply::Simple(s) if s.contains("compaction started") => {}
        other => panic!("COMPACT while the WAL is failing must start a rewrite, got {other:?}"),
    }
    c.wait_compaction_done();
    let wal = c.stats()["wal"].clone();
    eprintln!("compaction while failing: STATS wal = {wal}");
    let compacted = wal["compactions"].as_u64() == Some(1);
    if compacted {
        assert_eq!(
            wal["failing"],
            serde_json::Value::Bool(false),
            "a successful compaction must clear the failure: {wal}"
        );
        assert!(c.cmd(&["SET", "ow:after", "x"]).is_ok());
        last.insert("ow:after".to_string(), "x".to_string());
        // The outage's end is logged once, by the compaction, with its count.
        let ended = "WAL rewritten by compaction after";
        let deadline = Instant::now() + WAIT;
        while !server.stderr_text().contains(ended) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let log = server.stderr_text();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(ended)).collect();
        assert_eq!(lines.len(), 1, "{log}");
        assert!(lines[0].contains("failed attempts over"), "{}", lines[0]);
    }
    let keys: Vec<String> = last.keys().cloned().collect();
    let before: Vec<Option<String>> = keys.iter().map(|k| last.get(k).cloned()).collect();
    assert_eq!(c.mget(&keys), before);
    drop(c);
    if !compacted {
        raise_fsize_limit(server.pid());
    }
    server.sigterm();
    let mut server = support::start(dir.path(), &Launch::default());
    assert_eq!(server.client().mget(&keys), before, "acknowledged writes lost");
    server.sigterm();
}

#[test]
fn a_little_freed_space_is_used_at_once_and_nothing_acknowledged_is_lost_across_kill_9() {
    const STEP: u64 = 300;
    let dir = support::tempdir();
    let launch = Launch {
        fsize_limit: Some(LIMIT),
        ..Launch::fsync("interval")
    };
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    let (mut acked, _) = write_until_misconf(&mut c);
    let wal = server.wal_path();
    let size = || std::fs::metadata(&wal).unwrap().len();
    // What fitted was written, up to the limit: partial writes, as Redis.
    assert_eq!(size(), LIMIT);

    // A few hundred bytes free: the WAL uses them at once, without waiting for the whole batch.
    set_fsize_limit(server.pid(), LIMIT + STEP);
    let deadline = Instant::now() + WAIT;
    while size() == LIMIT {
        assert!(Instant::now() < deadline, "the WAL never used the freed space");
        thread::sleep(Duration::from_millis(10));
    }
    assert!(size() <= LIMIT + STEP);

    raise_fsize_limit(server.pid());
    let deadline = Instant::now() + WAIT;
    while !c.cmd(&["SET", "recovered", "yes"]).is_ok() {
        assert!(
            Instant::now() < deadline,
            "writes still refused after the limit was lifted"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let more = acked.last().unwrap() + 1_000_000;
    for i in more..more + 50 {
        assert!(c.cmd(&["SET", &format!("df:{i}"), &value(i)]).is_ok());
        acked.push(i);
    }
    // Make the acknowledged writes durable before the kill (interval acknowledges earlier).
    let deadline = Instant::now() + WAIT;
    while c.stats()["wal"]["pending_bytes"].as_u64().unwrap_or(0) > 0 {
        assert!(Instant::now() < deadline, "the WAL never caught up");
        thread::sleep(Duration::from_millis(10));
    }
    drop(c);
    server.kill9();

    let mut server = support::start(dir.path(), &Launch::fsync("interval"));
    let mut c = server.client();
    check_acked(&mut c, &acked);
    drop(c);
    server.sigterm();
}

#[test]
fn a_wal_file_deleted_while_running_refuses_writes_once_logged_until_compact_rewrites_it() {
    let dir = support::tempdir();
    let launch = Launch::fsync("always");
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    for i in 0..100 {
        assert!(c.cmd(&["SET", &format!("k{i}"), "v"]).is_ok());
    }
    std::fs::remove_file(server.wal_path()).unwrap();
    for _ in 0..20 {
        let r = c.cmd(&["SET", "after", "x"]);
        assert!(
            matches!(&r, Reply::Error(e) if e.starts_with("MISCONF") && e.contains("link count 0")),
            "a write to a deleted WAL got {r:?}"
        );
    }
    assert_eq!(c.stats()["wal"]["failing"], serde_json::Value::Bool(true));
    let logged = server
        .stderr_text()
        .lines()
        .filter(|l| l.contains("error writing the WAL") && l.contains("link count 0"))
        .count();
    assert_eq!(logged, 1, "{}", server.stderr_text());
    // The data is still in memory: COMPACT writes a new log from it.
    assert!(c.compact());
    c.wait_compaction_done();
    assert!(c.cmd(&["SET", "after", "compact"]).is_ok());
    drop(c);
    server.kill9();

    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    assert_eq!(c.dbsize(), 101);
    assert_eq!(c.get("after").as_deref(), Some("compact"));
    drop(c);
    server.sigterm();
}
