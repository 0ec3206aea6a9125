//! SAVE, BGSAVE and LASTSAVE: Redis's persistence commands mapped onto WAL
//! compaction, and the `rdb_*`/`aof_*` INFO fields exporters read.

use crate::support::{self, Launch, Reply};

fn simple(reply: &Reply) -> &str {
    match reply {
        Reply::Simple(s) => s,
        other => panic!("expected a simple string, got {other:?}"),
    }
}

#[test]
fn save_compacts_the_log_and_a_restart_after_it_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    let before = c.cmd(&["LASTSAVE"]).int();
    for round in 0..20 {
        for i in 0..50 {
            assert!(c.cmd(&["SET", &format!("k{i}"), &format!("v{round}")]).is_ok());
        }
    }
    assert!(c.cmd(&["SET", "ttl", "x", "EX", "1000"]).is_ok());
    assert_eq!(c.cmd(&["DEL", "k0"]).int(), 1);
    c.flush();
    let grown = std::fs::metadata(server.wal_path()).unwrap().len();
    assert!(c.info_u64("persistence", "rdb_changes_since_last_save") >= 1002);

    assert!(
        c.cmd(&["SAVE"]).is_ok(),
        "SAVE answers OK once the compaction is done"
    );
    let compacted = std::fs::metadata(server.wal_path()).unwrap().len();
    assert!(
        compacted < grown / 4,
        "log {grown} -> {compacted} bytes after SAVE"
    );
    assert_eq!(c.info_u64("persistence", "rdb_changes_since_last_save"), 0);
    assert_eq!(c.info_u64("persistence", "rdb_saves"), 1);
    let info = c.info("persistence");
    assert_eq!(info["rdb_last_bgsave_status"], "ok");
    assert_eq!(info["rdb_bgsave_in_progress"], "0");
    assert_eq!(info["aof_current_size"], compacted.to_string());
    let after = c.cmd(&["LASTSAVE"]).int();
    assert!(after >= before, "LASTSAVE {before} -> {after}");
    assert_eq!(info["rdb_last_save_time"], after.to_string());

    // Writes after the save are in the log too.
    assert!(c.cmd(&["SET", "after", "save"]).is_ok());
    assert_eq!(c.info_u64("persistence", "rdb_changes_since_last_save"), 1);
    c.flush();
    server.kill9();
    let server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    assert_eq!(c.get("k0"), None);
    for i in 1..50 {
        assert_eq!(c.get(&format!("k{i}")).as_deref(), Some("v19"), "k{i}");
    }
    assert_eq!(c.get("after").as_deref(), Some("save"));
    assert!(c.cmd(&["TTL", "ttl"]).int() > 900);
}

#[test]
fn bgsave_starts_a_background_compaction_and_lastsave_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    assert!(c.cmd(&["SET", "k", "v"]).is_ok());
    assert_eq!(simple(&c.cmd(&["BGSAVE"])), "Background saving started");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while c.info_u64("persistence", "rdb_saves") < 1 {
        assert!(std::time::Instant::now() < deadline, "BGSAVE never completed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let info = c.info("persistence");
    assert_eq!(info["rdb_last_bgsave_status"], "ok");
    assert_eq!(info["rdb_changes_since_last_save"], "0");
    assert_eq!(info["aof_rewrites"], "1");
    assert_ne!(info["rdb_last_bgsave_time_sec"], "-1");
    assert_eq!(info["rdb_current_bgsave_time_sec"], "-1");
    assert_eq!(info["rdb_last_save_time"], c.cmd(&["LASTSAVE"]).int().to_string());
    // SCHEDULE with nothing running starts one at once.
    let scheduled = c.cmd(&["BGSAVE", "SCHEDULE"]);
    assert!(
        ["Background saving started", "Background saving scheduled"].contains(&simple(&scheduled)),
        "{scheduled:?}"
    );
    match c.cmd(&["BGSAVE", "NOW"]) {
        Reply::Error(e) => assert!(e.contains("syntax error"), "{e}"),
        other => panic!("BGSAVE NOW: {other:?}"),
    }
    match c.cmd(&["LASTSAVE", "x"]) {
        Reply::Error(e) => assert!(e.contains("wrong number of arguments for 'lastsave'"), "{e}"),
        other => panic!("LASTSAVE x: {other:?}"),
    }
}

/// Redis's multi.tcl "MULTI with SAVE" / "MULTI with SHUTDOWN": refused while
/// queuing, which aborts the transaction; nothing of it runs.
#[test]
fn save_and_shutdown_inside_multi_are_refused_and_abort_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    for command in ["SAVE", "SHUTDOWN"] {
        assert!(c.cmd(&["MULTI"]).is_ok());
        assert_eq!(simple(&c.cmd(&["SET", "foo", "bar"])), "QUEUED");
        match c.cmd(&[command]) {
            Reply::Error(e) => assert_eq!(e, "ERR Command not allowed inside a transaction"),
            other => panic!("{command} in MULTI: {other:?}"),
        }
        match c.cmd(&["EXEC"]) {
            Reply::Error(e) => assert!(e.starts_with("EXECABORT"), "{e}"),
            other => panic!("EXEC after {command}: {other:?}"),
        }
        assert_eq!(c.get("foo"), None);
    }
    // BGSAVE and COMPACT are not no-multi: inside EXEC (which holds what a
    // snapshot needs) they are scheduled, as Redis's BGREWRITEAOF is, and run after it.
    assert!(c.cmd(&["MULTI"]).is_ok());
    assert_eq!(simple(&c.cmd(&["SET", "foo", "bar"])), "QUEUED");
    assert_eq!(simple(&c.cmd(&["BGSAVE"])), "QUEUED");
    assert_eq!(simple(&c.cmd(&["COMPACT"])), "QUEUED");
    match c.cmd(&["EXEC"]) {
        Reply::Array(Some(replies)) => {
            assert_eq!(simple(&replies[1]), "Background saving scheduled");
            assert_eq!(simple(&replies[2]), "Background WAL compaction scheduled");
        }
        other => panic!("EXEC with BGSAVE: {other:?}"),
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while c.info_u64("persistence", "rdb_saves") < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduled compaction never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(c.get("foo").as_deref(), Some("bar"));
}
