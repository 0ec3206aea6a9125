//! `APPEND` and `SETRANGE` log a `Patch` record proportional to the change
//! (bytes, offset, resulting length), not the whole value: the WAL grows by
//! kilobytes for edits of a 10 MiB value, and replay and compaction rebuild
//! exactly the value a plain `SET` of the same bytes gives.

use crate::support::{self, check_wal, Launch};

const BIG: usize = 10 * 1024 * 1024;

/// Applies the test's edits to a model of the value.
fn edit(model: &mut Vec<u8>, i: usize) -> Vec<String> {
    let byte = b'a' + (i % 26) as u8;
    if i % 50 == 49 {
        // Now and then a SETRANGE, inside the value and past its end.
        let offset = if i % 100 == 99 { model.len() + 3 } else { i * 1000 };
        if model.len() < offset + 1 {
            model.resize(offset + 1, 0);
        }
        model[offset] = byte;
        vec![
            "SETRANGE".into(),
            "big".into(),
            offset.to_string(),
            (byte as char).to_string(),
        ]
    } else {
        model.push(byte);
        vec!["APPEND".into(), "big".into(), (byte as char).to_string()]
    }
}

#[test]
fn two_hundred_one_byte_appends_to_a_big_value_grow_the_wal_by_kilobytes_and_replay_exactly() {
    let dir = support::tempdir();
    let launch = Launch::fsync("always");
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    let mut model = vec![b'v'; BIG];
    let value = String::from_utf8(model.clone()).unwrap();
    assert!(c.cmd(&["SET", "big", &value]).is_ok());
    assert_eq!(c.cmd(&["EXPIRE", "big", "100000"]).int(), 1);
    let wal = server.wal_path();
    let before = std::fs::metadata(&wal).unwrap().len();
    for i in 0..200 {
        let cmd = edit(&mut model, i);
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        assert_eq!(c.cmd(&args).int(), model.len() as i64, "{cmd:?}");
    }
    let grown = std::fs::metadata(&wal).unwrap().len() - before;
    assert!(
        grown <= 16 * 1024,
        "200 one-byte edits grew the WAL by {grown} bytes"
    );
    // The plain-SET reference: the same bytes written whole.
    let reference = String::from_utf8(model.clone()).unwrap();
    assert!(c.cmd(&["SET", "ref", &reference]).is_ok());
    let ttl = c.cmd(&["TTL", "big"]).int();
    assert!(ttl > 0, "APPEND keeps the TTL, got {ttl}");
    drop(c);
    server.kill9();

    let (code, report) = check_wal(&wal, false);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("patch 200"), "{report}");

    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    assert!(c.get("big") == Some(reference.clone()), "replayed value differs");
    assert!(c.get("ref") == Some(reference.clone()));
    assert!(c.cmd(&["TTL", "big"]).int() > 0, "replay keeps the TTL");
    // Compaction snapshots the value whole; edits made meanwhile replay on top.
    assert!(c.compact());
    for i in 200..260 {
        let cmd = edit(&mut model, i);
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        assert_eq!(c.cmd(&args).int(), model.len() as i64);
    }
    c.wait_compaction_done();
    let expected = String::from_utf8(model).unwrap();
    assert!(c.get("big") == Some(expected.clone()));
    drop(c);
    server.kill9();

    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    assert!(
        c.get("big") == Some(expected),
        "value after compaction and replay differs"
    );
    assert!(c.get("ref") == Some(reference));
    drop(c);
    server.sigterm();
}

#[test]
fn a_patch_replayed_over_a_key_that_has_expired_since_does_not_resurrect_it() {
    let dir = support::tempdir();
    let launch = Launch::fsync("always");
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    assert!(c.cmd(&["SET", "k", "hello", "PX", "300"]).is_ok());
    assert_eq!(c.cmd(&["APPEND", "k", " world"]).int(), 11);
    assert_eq!(c.cmd(&["SETRANGE", "k", "0", "J"]).int(), 11);
    assert_eq!(c.get("k").as_deref(), Some("Jello world"));
    drop(c);
    server.kill9();
    std::thread::sleep(std::time::Duration::from_millis(400));
    let mut server = support::start(dir.path(), &launch);
    assert_eq!(server.client().get("k"), None);
    server.sigterm();
}
