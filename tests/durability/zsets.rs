//! Sorted sets survive a crash: every acknowledged ZADD/ZINCRBY/ZREM/ZPOPMIN
//! under `--fsync always` is replayed from its logged effect (absolute
//! scores, removed members), before and after a SAVE/COMPACT snapshot, in
//! both encodings.

use crate::support::{self, Launch, Reply};

fn bulks(reply: &Reply) -> Vec<String> {
    match reply {
        Reply::Array(Some(items)) => items.iter().map(|r| r.bulk_str().unwrap_or_default()).collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

/// Writes a small (listpack) and a big (skiplist) sorted set, mutating both.
fn write_zsets(c: &mut support::Client) {
    assert_eq!(c.cmd(&["ZADD", "small", "1", "a", "2", "b", "3", "c"]).int(), 3);
    assert_eq!(
        c.cmd(&["ZINCRBY", "small", "0.5", "a"]).bulk_str().as_deref(),
        Some("1.5")
    );
    assert_eq!(c.cmd(&["ZREM", "small", "b"]).int(), 1);
    let popped = bulks(&c.cmd(&["ZPOPMIN", "small"]));
    assert_eq!(popped, ["a", "1.5"]);
    for i in 0..300 {
        let (score, member) = (i.to_string(), format!("m{i}"));
        assert_eq!(c.cmd(&["ZADD", "big", &score, &member]).int(), 1);
    }
    assert_eq!(
        c.cmd(&["ZINCRBY", "big", "1000", "m5"]).bulk_str().as_deref(),
        Some("1005")
    );
    assert_eq!(
        bulks(&c.cmd(&["ZPOPMIN", "big", "3"])),
        ["m0", "0", "m1", "1", "m2", "2"]
    );
    // *STORE results replace the destination (here a string) as Del + snapshot.
    assert!(c.cmd(&["SET", "stored", "string"]).is_ok());
    assert_eq!(c.cmd(&["ZRANGESTORE", "stored", "big", "0", "1"]).int(), 2);
    assert_eq!(c.cmd(&["ZUNIONSTORE", "union", "2", "small", "big"]).int(), 298);
    assert_eq!(c.cmd(&["ZADD", "emptied", "1", "x"]).int(), 1);
    assert_eq!(c.cmd(&["ZDIFFSTORE", "emptied", "2", "small", "small"]).int(), 0);
}

fn check_zsets(c: &mut support::Client) {
    assert_eq!(
        bulks(&c.cmd(&["ZRANGE", "small", "0", "-1", "WITHSCORES"])),
        ["c", "3"]
    );
    assert_eq!(c.cmd(&["ZCARD", "big"]).int(), 297);
    assert_eq!(
        c.cmd(&["ZSCORE", "big", "m5"]).bulk_str().as_deref(),
        Some("1005")
    );
    assert_eq!(
        c.cmd(&["ZSCORE", "big", "m0"]).bulk_str(),
        None,
        "popped members stay gone"
    );
    assert_eq!(c.cmd(&["ZSCORE", "big", "m2"]).bulk_str(), None);
    assert_eq!(c.cmd(&["ZRANK", "big", "m3"]).int(), 0);
    assert_eq!(c.cmd(&["ZREVRANK", "big", "m5"]).int(), 0);
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "big"]).bulk_str().as_deref(),
        Some("skiplist")
    );
    assert_eq!(
        c.cmd(&["OBJECT", "ENCODING", "small"]).bulk_str().as_deref(),
        Some("listpack")
    );
}

#[test]
fn acknowledged_zset_writes_survive_kill_9_under_fsync_always() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = support::start(dir.path(), &Launch::fsync("always"));
    let mut c = server.client();
    write_zsets(&mut c);
    server.kill9();
    let server = support::start(dir.path(), &Launch::fsync("always"));
    check_zsets(&mut server.client());
}

#[test]
fn zsets_survive_save_and_compaction_then_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = support::start(dir.path(), &Launch::fsync("always"));
    let mut c = server.client();
    write_zsets(&mut c);
    assert!(c.cmd(&["SAVE"]).is_ok());
    // A write after the snapshot lands in the log tail.
    assert_eq!(c.cmd(&["ZADD", "after", "7", "x"]).int(), 1);
    assert!(c.compact());
    c.wait_compaction_done();
    assert_eq!(c.cmd(&["ZREM", "after", "x"]).int(), 1);
    assert_eq!(c.cmd(&["ZADD", "after", "8", "y"]).int(), 1);
    server.kill9();
    let server = support::start(dir.path(), &Launch::fsync("always"));
    let mut c = server.client();
    check_zsets(&mut c);
    assert_eq!(
        bulks(&c.cmd(&["ZRANGE", "after", "0", "-1", "WITHSCORES"])),
        ["y", "8"]
    );
}
