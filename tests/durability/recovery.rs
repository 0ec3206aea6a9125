//! Recovery rules on start: a torn tail is truncated, mid-file corruption is refused (naming the
//! file and offset) unless `--wal-truncate-corrupt`, a foreign file is never touched, `check-wal`
//! reports and repairs, and a missing data directory is created.

use std::path::Path;

use crate::support::{self, check_wal, frame_offsets, Launch, WAL_FILE};

const KEYS: usize = 10;

/// Starts a server on `dir`, writes `key{0..KEYS}` = `value{i}` (one record each), stops cleanly.
fn write_keys_and_stop(dir: &Path) {
    let mut server = support::start(dir, &Launch::default());
    let mut c = server.client();
    for i in 0..KEYS {
        assert!(c.cmd(&["SET", &format!("key{i}"), &format!("value{i}")]).is_ok());
    }
    drop(c);
    server.sigterm();
    assert_eq!(frame_offsets(&dir.join(WAL_FILE)).len(), KEYS);
}

fn present_keys(dir: &Path, launch: &Launch) -> Vec<Option<String>> {
    let mut server = support::start(dir, launch);
    let keys: Vec<String> = (0..KEYS).map(|i| format!("key{i}")).collect();
    let got = server.client().mget(&keys);
    server.sigterm();
    got
}

fn expected_prefix(n: usize) -> Vec<Option<String>> {
    (0..KEYS).map(|i| (i < n).then(|| format!("value{i}"))).collect()
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0xFF;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_torn_tail_is_truncated_and_only_the_last_record_is_lost() {
    let dir = support::tempdir();
    write_keys_and_stop(dir.path());
    let wal = dir.path().join(WAL_FILE);
    let len = std::fs::metadata(&wal).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let (code, report) = check_wal(&wal, false);
    assert_eq!(code, 1, "check-wal on a torn tail: {report}");

    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    let truncated = c.info_u64("persistence", "wal_replay_truncated_bytes");
    assert!(truncated > 0, "wal_replay_truncated_bytes = {truncated}");
    let keys: Vec<String> = (0..KEYS).map(|i| format!("key{i}")).collect();
    assert_eq!(c.mget(&keys), expected_prefix(KEYS - 1));
    // The log keeps working after the truncation.
    assert!(c.cmd(&["SET", "after", "torn"]).is_ok());
    drop(c);
    server.sigterm();
    let (code, report) = check_wal(&wal, false);
    assert_eq!(code, 0, "check-wal after recovery: {report}");
    let mut server = support::start(dir.path(), &Launch::default());
    assert_eq!(server.client().get("after").as_deref(), Some("torn"));
    assert_eq!(
        server.client().get(&format!("key{}", KEYS - 2)).as_deref(),
        Some("value8")
    );
    server.sigterm();
}

#[test]
fn mid_file_corruption_is_refused_naming_the_offset_unless_truncate_corrupt() {
    let dir = support::tempdir();
    write_keys_and_stop(dir.path());
    let wal = dir.path().join(WAL_FILE);
    let offsets = frame_offsets(&wal);
    let bad = offsets[2];
    // A byte inside the third record's payload: its CRC no longer matches, valid records follow.
    flip_byte(&wal, bad + support::FRAME_HEADER_LEN + 2);
    let damaged = std::fs::read(&wal).unwrap();

    let (status, stderr) = support::start_refused(dir.path(), &Launch::default());
    assert!(!status.success(), "exit status {status}");
    assert!(
        stderr.contains(&format!("offset {bad}")),
        "stderr must name the offset {bad}:\n{stderr}"
    );
    assert!(stderr.contains(WAL_FILE), "stderr must name the file:\n{stderr}");
    assert_eq!(
        std::fs::read(&wal).unwrap(),
        damaged,
        "a refused start must not modify the log"
    );

    let (code, report) = check_wal(&wal, false);
    assert_eq!(code, 1, "check-wal on a corrupt log: {report}");
    assert!(
        report.contains(&bad.to_string()),
        "report names the offset: {report}"
    );

    let launch = Launch::default().arg("--wal-truncate-corrupt");
    assert_eq!(present_keys(dir.path(), &launch), expected_prefix(2));
    let (code, report) = check_wal(&wal, false);
    assert_eq!(code, 0, "check-wal after a truncating start: {report}");
    // And the truncated log now starts without the flag.
    assert_eq!(present_keys(dir.path(), &Launch::default()), expected_prefix(2));
}

#[test]
fn check_wal_repair_makes_a_corrupt_log_clean_and_startable() {
    let dir = support::tempdir();
    write_keys_and_stop(dir.path());
    let wal = dir.path().join(WAL_FILE);
    let offsets = frame_offsets(&wal);
    flip_byte(&wal, offsets[4] + 1); // inside the CRC of the fifth record
    let (code, report) = check_wal(&wal, false);
    assert_eq!(code, 1, "{report}");
    let (code, report) = check_wal(&wal, true);
    assert_ne!(code, 2, "--repair could not read the file: {report}");
    let (code, report) = check_wal(&wal, false);
    assert_eq!(code, 0, "check-wal after --repair: {report}");
    assert_eq!(
        std::fs::metadata(&wal).unwrap().len() as usize,
        offsets[4],
        "repair truncates at the first bad record"
    );
    assert_eq!(present_keys(dir.path(), &Launch::default()), expected_prefix(4));
}

#[test]
fn a_file_with_bad_magic_is_refused_and_left_untouched() {
    let dir = support::tempdir();
    let wal = dir.path().join(WAL_FILE);
    let foreign = b"REDIS0011\xfa\tredis-ver\x057.2.4 not a kvserver log at all".to_vec();
    std::fs::write(&wal, &foreign).unwrap();
    let (status, stderr) = support::start_refused(dir.path(), &Launch::default());
    assert!(!status.success());
    assert!(
        stderr.contains("not a kvserver WAL"),
        "stderr should say why:\n{stderr}"
    );
    assert_eq!(std::fs::read(&wal).unwrap(), foreign, "the file was modified");
    let (code, report) = check_wal(&wal, false);
    assert_eq!(code, 2, "check-wal on a foreign file: {report}");
    let (code, _) = check_wal(&wal, true);
    assert_eq!(code, 2);
    assert_eq!(
        std::fs::read(&wal).unwrap(),
        foreign,
        "--repair modified a foreign file"
    );
}

#[test]
fn a_missing_data_directory_is_created() {
    let root = support::tempdir();
    let dir = root.path().join("does/not/exist/yet");
    let mut server = support::start(&dir, &Launch::default());
    assert!(server.client().cmd(&["SET", "k", "v"]).is_ok());
    server.sigterm();
    assert!(dir.join(WAL_FILE).is_file());
    let mut server = support::start(&dir, &Launch::default());
    assert_eq!(server.client().get("k").as_deref(), Some("v"));
    server.sigterm();
}

#[test]
fn every_record_kind_replays_to_the_state_clients_saw() {
    let dir = support::tempdir();
    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    let cmds = vec![
        crate::cmd!["MSET", "a", "1", "b", "2", "c", "3", "gone", "x"],
        crate::cmd!["FLUSHALL"],
        crate::cmd!["MSET", "a", "1", "b", "2", "c", "3"],
        crate::cmd!["INCRBY", "a", "41"],
        crate::cmd!["APPEND", "b", "-more"],
        crate::cmd!["RENAME", "c", "c2"],
        crate::cmd!["SET", "ttl", "t", "EX", "100000"],
        crate::cmd!["SET", "persisted", "p", "EX", "100000"],
        crate::cmd!["PERSIST", "persisted"],
        crate::cmd!["SET", "deleted", "d"],
        crate::cmd!["DEL", "deleted"],
        crate::cmd!["SET", "short", "s", "PX", "1"],
    ];
    for (cmd, r) in cmds.iter().zip(c.pipeline(&cmds)) {
        assert!(!matches!(r, support::Reply::Error(_)), "{cmd:?}: {r:?}");
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    let keys: Vec<String> = [
        "a",
        "b",
        "c",
        "c2",
        "ttl",
        "persisted",
        "deleted",
        "gone",
        "short",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let before = c.mget(&keys);
    assert_eq!(
        before,
        vec![
            Some("42".to_string()),
            Some("2-more".to_string()),
            None,
            Some("3".to_string()),
            Some("t".to_string()),
            Some("p".to_string()),
            None,
            None,
            None
        ]
    );
    c.flush();
    drop(c);
    server.kill9();
    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    assert_eq!(c.mget(&keys), before);
    assert_eq!(c.dbsize(), 5);
    let ttl = c.cmd(&["TTL", "ttl"]).int();
    assert!(ttl > 0 && ttl <= 100_000, "TTL of ttl after replay: {ttl}");
    assert_eq!(c.cmd(&["TTL", "persisted"]).int(), -1, "PERSIST was not replayed");
    drop(c);
    server.sigterm();
}

#[test]
fn an_expiry_is_an_absolute_time_that_keeps_running_while_the_server_is_down() {
    let dir = support::tempdir();
    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    assert!(c.cmd(&["SET", "soon", "v", "PX", "1500"]).is_ok());
    assert!(c.cmd(&["SET", "later", "v"]).is_ok());
    assert_eq!(c.cmd(&["EXPIRE", "later", "100000"]).int(), 1);
    drop(c);
    server.sigterm();
    // Down for longer than `soon`'s TTL: a relative TTL would restart its clock on replay.
    std::thread::sleep(std::time::Duration::from_millis(1600));
    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    assert_eq!(c.get("soon"), None, "an expired key came back after replay");
    let ttl = c.cmd(&["TTL", "later"]).int();
    assert!(ttl > 0 && ttl < 100_000, "TTL of later after 1.6 s down: {ttl}");
    drop(c);
    server.sigterm();
}
