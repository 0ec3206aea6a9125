//! Values of a megabyte and more are stored and logged without copies: the
//! store keeps a range of the buffer the socket filled, and the WAL writes
//! the value from that same buffer. They must survive kill -9, replay and
//! compaction exactly as small values do, whatever was done to them after
//! (edits in place, renames, overwrites, deletes before the flush).

use crate::support::{self, check_wal, Launch};

const MIB: usize = 1024 * 1024;

/// A printable value of `len` bytes that differs from `seed` to seed.
fn value(seed: u8, len: usize) -> String {
    (0..len)
        .map(|i| (b'a' + ((i / 7 + seed as usize) % 26) as u8) as char)
        .collect()
}

fn check_all(c: &mut support::Client, expected: &[(&str, Option<String>)]) {
    for (key, want) in expected {
        let got = c.get(key);
        assert!(
            got == *want,
            "{key}: got {:?} bytes, want {:?} bytes",
            got.as_ref().map(String::len),
            want.as_ref().map(String::len)
        );
    }
}

#[test]
fn big_values_survive_kill_replay_and_compaction_whatever_was_done_to_them() {
    let dir = support::tempdir();
    let launch = Launch::fsync("always");
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    let (a, b, d) = (value(1, 3 * MIB), value(2, 2 * MIB), value(3, MIB + 17));
    assert!(c.cmd(&["SET", "a", &a]).is_ok());
    assert!(c.cmd(&["SET", "b", &b, "EX", "100000"]).is_ok());
    // A rename and a SETEX of a value that is still shared (never edited).
    let f = value(5, MIB + 3);
    assert!(c.cmd(&["SET", "fresh", &f]).is_ok());
    assert!(c.cmd(&["RENAME", "fresh", "renamed"]).is_ok());
    assert!(c.cmd(&["SETEX", "with-ttl", "100000", &f]).is_ok());
    assert!(c.cmd(&["SET", "gone", &d]).is_ok());
    assert_eq!(c.cmd(&["DEL", "gone"]).int(), 1);
    assert!(c.cmd(&["SET", "small-later", &d]).is_ok());
    assert!(c.cmd(&["SET", "small-later", "tiny"]).is_ok());
    // Edits copy the shared value into the store's own allocation first.
    assert_eq!(c.cmd(&["APPEND", "a", "+tail"]).int(), (a.len() + 5) as i64);
    assert_eq!(c.cmd(&["SETRANGE", "b", "10", "XY"]).int(), b.len() as i64);
    assert!(c.cmd(&["RENAME", "b", "b2"]).is_ok());
    // Several big values pipelined in one write.
    let replies = c.pipeline(&[
        vec!["SET".into(), "p1".into(), d.clone()],
        vec!["MSET".into(), "p2".into(), a.clone(), "p3".into(), "small".into()],
        vec!["GET".into(), "p3".into()],
    ]);
    assert!(replies[0].is_ok() && replies[1].is_ok());
    assert_eq!(replies[2].bulk_str().as_deref(), Some("small"));

    let mut a_edited = a.clone();
    a_edited.push_str("+tail");
    let mut b_edited = b.clone();
    b_edited.replace_range(10..12, "XY");
    let expected = [
        ("a", Some(a_edited)),
        ("b", None),
        ("b2", Some(b_edited)),
        ("gone", None),
        ("small-later", Some("tiny".to_string())),
        ("p1", Some(d.clone())),
        ("p2", Some(a.clone())),
        ("p3", Some("small".to_string())),
        ("fresh", None),
        ("renamed", Some(f.clone())),
        ("with-ttl", Some(f)),
    ];
    drop(c);
    server.kill9();
    let (code, report) = check_wal(&server.wal_path(), false);
    assert_eq!(code, 0, "{report}");

    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    check_all(&mut c, &expected);
    assert!(
        c.cmd(&["TTL", "b2"]).int() > 0,
        "RENAME keeps the TTL through replay"
    );
    assert!(
        c.cmd(&["TTL", "with-ttl"]).int() > 0,
        "SETEX of a big value keeps its TTL"
    );
    // A compaction while a new big value is written; both logs must hold it.
    assert!(c.compact());
    let e = value(4, 2 * MIB);
    assert!(c.cmd(&["SET", "during", &e]).is_ok());
    c.wait_compaction_done();
    drop(c);
    server.kill9();

    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    check_all(&mut c, &expected);
    check_all(&mut c, &[("during", Some(e))]);
    drop(c);
    server.sigterm();
}
