//! Pipelined writes are batched: one lock acquisition per shard per batch, not per command.

use crate::support::{self, Launch};

#[test]
fn a_1000_set_pipeline_in_one_write_takes_far_fewer_shard_locks_than_commands() {
    let dir = support::tempdir();
    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    let before = c.stats();
    let cmds: Vec<Vec<String>> = (0..1000)
        .map(|i| crate::cmd!["SET", format!("batch:{i}"), format!("v{i}")])
        .collect();
    let replies = c.pipeline(&cmds);
    assert!(replies.iter().all(|r| r.is_ok()), "a pipelined SET failed");
    let after = c.stats();
    let num = |v: &serde_json::Value, f: &str| {
        v["batching"][f]
            .as_u64()
            .unwrap_or_else(|| panic!("STATS batching.{f} missing: {v}"))
    };
    let batches = num(&after, "batches") - num(&before, "batches");
    let locks = num(&after, "shard_lock_acquisitions") - num(&before, "shard_lock_acquisitions");
    eprintln!(
        "1000 SETs: {batches} batches, {locks} shard lock acquisitions, mean batch size {}",
        after["batching"]["mean_batch_size"]
    );
    assert!(batches >= 1, "batching.batches did not grow");
    assert!(
        locks * 4 < 1000,
        "{locks} shard lock acquisitions for 1000 pipelined SETs"
    );
    let keys: Vec<String> = (0..1000).map(|i| format!("batch:{i}")).collect();
    let values = c.mget(&keys);
    for (i, v) in values.iter().enumerate() {
        assert_eq!(v.as_deref(), Some(format!("v{i}").as_str()));
    }
    drop(c);
    server.sigterm();
    // And the batch was logged: every key is back after a restart.
    let mut server = support::start(dir.path(), &Launch::default());
    assert_eq!(server.client().mget(&keys), values);
    server.sigterm();
}
