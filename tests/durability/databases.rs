//! Numbered databases survive restarts: the WAL's Select / SwapDb / FlushDb
//! records replay every key into the database clients saw it in, before and
//! after compaction, including SWAPDBs that ran while a compaction did.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::support::{self, Client, Launch, Reply};

/// Every key and value of every database: db → key → value.
type Dump = BTreeMap<usize, BTreeMap<String, String>>;

fn dump(c: &mut Client) -> Dump {
    let mut all = Dump::new();
    for db in 0..16 {
        assert!(c.cmd(&["SELECT", &db.to_string()]).is_ok());
        let keys = match c.cmd(&["KEYS", "*"]) {
            Reply::Array(Some(items)) => items.iter().map(|r| r.bulk_str().unwrap()).collect::<Vec<_>>(),
            other => panic!("KEYS: {other:?}"),
        };
        if keys.is_empty() {
            continue;
        }
        let values = c.mget(&keys);
        let db_map = all.entry(db).or_default();
        for (k, v) in keys.into_iter().zip(values) {
            db_map.insert(k, v.expect("listed key has a value"));
        }
    }
    assert!(c.cmd(&["SELECT", "0"]).is_ok());
    all
}

fn run(c: &mut Client, args: &[&str]) {
    let r = c.cmd(args);
    assert!(!matches!(r, Reply::Error(_)), "{args:?}: {r:?}");
}

#[test]
fn keys_stay_in_their_databases_across_a_restart() {
    let dir = support::tempdir();
    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    run(&mut c, &["SET", "zero", "0"]);
    for db in 1..=4 {
        run(&mut c, &["SELECT", &db.to_string()]);
        run(
            &mut c,
            &["MSET", "name", &format!("db{db}"), &format!("only{db}"), "x"],
        );
    }
    run(&mut c, &["SELECT", "1"]);
    run(&mut c, &["MOVE", "only1", "9"]);
    run(&mut c, &["SWAPDB", "2", "3"]);
    run(&mut c, &["SELECT", "3"]);
    run(&mut c, &["SET", "after-swap", "in-3"]);
    run(&mut c, &["SELECT", "4"]);
    run(&mut c, &["FLUSHDB"]);
    run(&mut c, &["SET", "after-flush", "in-4"]);
    let before = dump(&mut c);
    assert_eq!(before[&2]["name"], "db3");
    assert_eq!(before[&3]["name"], "db2");
    assert_eq!(before[&9]["only1"], "x");
    assert_eq!(before[&4].len(), 1);
    c.flush();
    drop(c);
    server.kill9();

    let (code, report) = support::check_wal(&dir.path().join(support::WAL_FILE), false);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("swapdb 1, flushdb 1"), "{report}");

    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    assert_eq!(dump(&mut c), before);
    // Compaction rewrites every database; the result replays the same.
    assert!(c.compact());
    c.wait_compaction_done();
    drop(c);
    server.sigterm();
    let mut server = support::start(dir.path(), &Launch::default());
    assert_eq!(dump(&mut server.client()), before);
    server.sigterm();
}

#[test]
fn a_compaction_racing_swapdb_and_writes_in_many_databases_loses_nothing() {
    let dir = support::tempdir();
    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    // Enough data that the snapshot takes a while, spread over databases.
    for db in 0..4 {
        run(&mut c, &["SELECT", &db.to_string()]);
        for chunk in 0..20 {
            let mut args = vec!["MSET".to_string()];
            for i in 0..500 {
                args.push(format!("k{chunk}-{i}"));
                args.push(format!("db{db}-{chunk}-{i}"));
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&mut c, &refs);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let port = server.port;
    let churn = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut c = Client::connect(port);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) || i < 50 {
                let (a, b) = ((i % 4).to_string(), ((i + 1) % 4).to_string());
                run(&mut c, &["SWAPDB", &a, &b]);
                run(&mut c, &["SELECT", &a]);
                run(&mut c, &["SET", &format!("churn{i}"), &i.to_string()]);
                i += 1;
            }
        })
    };
    for _ in 0..3 {
        assert!(c.compact());
        c.wait_compaction_done();
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    let before = dump(&mut c);
    drop(c);
    server.sigterm();
    let mut server = support::start(dir.path(), &Launch::default());
    assert_eq!(dump(&mut server.client()), before);
    server.sigterm();
}

#[test]
fn a_single_database_log_holds_no_database_records_even_after_compaction() {
    let dir = support::tempdir();
    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    run(&mut c, &["MSET", "a", "1", "b", "2"]);
    assert!(c.compact());
    c.wait_compaction_done();
    run(&mut c, &["SET", "c", "3"]);
    drop(c);
    server.sigterm();
    let (code, report) = support::check_wal(&dir.path().join(support::WAL_FILE), false);
    assert_eq!(code, 0, "{report}");
    assert!(!report.contains("select"), "{report}");
}

#[test]
fn a_log_with_more_databases_than_configured_refuses_to_start() {
    let dir = support::tempdir();
    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    run(&mut c, &["SELECT", "5"]);
    run(&mut c, &["SET", "k", "v"]);
    drop(c);
    server.sigterm();
    let (status, text) = support::start_refused(dir.path(), &Launch::default().arg("--databases").arg("4"));
    assert!(!status.success());
    assert!(
        text.contains("database 5") && text.contains("databases = 6"),
        "{text}"
    );
}

#[test]
fn a_transaction_across_databases_replays_into_the_same_databases() {
    let dir = support::tempdir();
    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    run(&mut c, &["SELECT", "1"]);
    run(&mut c, &["SET", "one", "1"]);
    run(&mut c, &["MULTI"]);
    for cmd in [
        &["SET", "x", "in-1"][..],
        &["SELECT", "5"],
        &["SET", "y", "in-5"],
        &["MOVE", "y", "6"],
        &["SWAPDB", "1", "2"],
        &["SET", "z", "in-5"],
    ] {
        assert!(matches!(c.cmd(cmd), Reply::Simple(s) if s == "QUEUED"), "{cmd:?}");
    }
    assert!(matches!(c.cmd(&["EXEC"]), Reply::Array(Some(items)) if items.len() == 6));
    // The connection is in database 5 now; the log continues from there.
    run(&mut c, &["SET", "after", "in-5"]);
    let before = dump(&mut c);
    assert_eq!(before[&2]["x"], "in-1");
    assert_eq!(before[&6]["y"], "in-5");
    assert_eq!(before[&5]["after"], "in-5");
    c.flush();
    drop(c);
    server.kill9();
    let mut server = support::start(dir.path(), &Launch::default());
    assert_eq!(dump(&mut server.client()), before);
    server.sigterm();
}
