//! Lists through kill -9, restart and compaction: every acknowledged push
//! is there, every acknowledged pop stays gone, and the order is the order
//! the clients saw.

use crate::support::{self, Launch, Reply};

fn lrange(c: &mut support::Client, key: &str) -> Vec<String> {
    match c.cmd(&["LRANGE", key, "0", "-1"]) {
        Reply::Array(Some(items)) => items.iter().map(|r| r.bulk_str().unwrap_or_default()).collect(),
        other => panic!("LRANGE {key}: {other:?}"),
    }
}

#[test]
fn acknowledged_pushes_and_pops_survive_kill_9_under_fsync_always() {
    let dir = tempfile::tempdir().unwrap();
    let launch = Launch::fsync("always");
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    let mut model = std::collections::VecDeque::new();
    for round in 0..200 {
        let cmds: Vec<Vec<String>> = (0..8)
            .map(|i| crate::cmd!["RPUSH", "q", format!("job-{round}-{i}")])
            .chain(std::iter::once(crate::cmd!["LPOP", "q", "3"]))
            .collect();
        let replies = c.pipeline(&cmds);
        for (i, reply) in replies[..8].iter().enumerate() {
            assert_eq!(*reply, Reply::Int((model.len() + 1) as i64));
            model.push_back(format!("job-{round}-{i}"));
        }
        match &replies[8] {
            Reply::Array(Some(popped)) => {
                for p in popped {
                    assert_eq!(p.bulk_str(), model.pop_front());
                }
            }
            other => panic!("LPOP: {other:?}"),
        }
        if round % 50 == 0 {
            // Mid-list edits replay by position.
            assert!(c.cmd(&["LSET", "q", "1", &format!("set-{round}")]).is_ok());
            model[1] = format!("set-{round}");
            assert_eq!(c.cmd(&["LREM", "q", "1", &model[0].clone()]), Reply::Int(1));
            model.pop_front();
        }
    }
    assert!(c.cmd(&["RPUSH", "moved", "x"]).int() == 1);
    assert_eq!(
        c.cmd(&["LMOVE", "moved", "q", "LEFT", "LEFT"])
            .bulk_str()
            .as_deref(),
        Some("x")
    );
    model.push_front("x".to_string());
    server.kill9();
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    assert_eq!(lrange(&mut c, "q"), model.iter().cloned().collect::<Vec<_>>());
    assert_eq!(
        c.cmd(&["EXISTS", "moved"]),
        Reply::Int(0),
        "an emptied list stays deleted"
    );
    // Compaction writes each list as one record (plus chunks) and loses nothing.
    assert!(c.cmd(&["SAVE"]).is_ok());
    assert!(c.cmd(&["RPUSH", "q", "after-save"]).int() > 0);
    model.push_back("after-save".to_string());
    server.kill9();
    let server = support::start(dir.path(), &launch);
    let mut c = server.client();
    assert_eq!(lrange(&mut c, "q"), model.iter().cloned().collect::<Vec<_>>());
    assert_eq!(c.cmd(&["TYPE", "q"]), Reply::Simple("list".into()));
}

#[test]
fn a_list_bigger_than_a_snapshot_chunk_survives_compaction_and_keeps_its_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    let item = "i".repeat(1000);
    for chunk in 0..30 {
        let cmds: Vec<Vec<String>> = (0..100)
            .map(|i| crate::cmd!["RPUSH", "big", format!("{chunk}-{i}-{item}")])
            .collect();
        assert!(c.pipeline(&cmds).iter().all(|r| matches!(r, Reply::Int(_))));
    }
    assert_eq!(c.cmd(&["EXPIRE", "big", "1000"]), Reply::Int(1));
    assert!(c.cmd(&["SAVE"]).is_ok());
    let (code, report) = support::check_wal(&server.wal_path(), false);
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains("collection"),
        "check-wal counts the collection records: {report}"
    );
    c.flush();
    server.kill9();
    let server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    assert_eq!(c.cmd(&["LLEN", "big"]), Reply::Int(3000));
    assert_eq!(
        c.cmd(&["LINDEX", "big", "1234"]).bulk_str(),
        Some(format!("12-34-{item}"))
    );
    assert!(c.cmd(&["TTL", "big"]).int() > 900);
}

/// A consumer moving jobs with BLMOVE while a producer pushes, under
/// `fsync = always`, killed at a random moment: after restart every
/// acknowledged job is in exactly one of the two lists.
#[test]
fn blmove_never_loses_or_duplicates_a_job_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let launch = Launch::fsync("always");
    let mut server = support::start(dir.path(), &launch);
    let port = server.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumer = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut c = support::Client::connect(port);
            let mut moved = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match c.try_cmd(&["BLMOVE", "pending", "done", "RIGHT", "LEFT", "0.1"]) {
                    Ok(Reply::Bulk(Some(job))) => moved.push(String::from_utf8_lossy(&job).into_owned()),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            moved
        })
    };
    let mut c = server.client();
    let mut pushed = Vec::new();
    for i in 0..400 {
        let job = format!("job-{i}");
        if c.try_cmd(&["LPUSH", "pending", &job]).is_ok() {
            pushed.push(job);
        }
        if i == 300 {
            server.kill9();
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let moved = consumer.join().unwrap();
    let server = support::start(dir.path(), &launch);
    let mut c = server.client();
    let mut all = lrange(&mut c, "pending");
    let done = lrange(&mut c, "done");
    // Every move the consumer saw acknowledged is in `done`.
    for job in &moved {
        assert!(
            done.contains(job),
            "{job} was moved (acknowledged) but is not in done"
        );
    }
    all.extend(done);
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), all.len(), "a job is in both lists or twice");
    for job in &pushed {
        assert!(all.contains(job), "{job} was acknowledged but is lost");
    }
}
