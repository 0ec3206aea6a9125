//! Scripts are logged by effect as one transaction frame: kill -9 under
//! `fsync = always` never leaves half of a script's writes and loses no
//! acknowledged script; loaded function libraries survive restarts and
//! compaction (their own `Function` records, and the snapshot).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use crate::support::{self, random_sleep, Client, Launch, Reply, Rng};

/// Moves one unit from `a{t}` to `b{t}` and counts the run in `n{t}`: three
/// writes that must replay all or none (a + b stays 0, n = b).
const MOVE: &str =
    "redis.call('decr', KEYS[1]) redis.call('incr', KEYS[2]) return redis.call('incr', KEYS[3])";

#[test]
fn kill_9_never_leaves_half_a_script_and_loses_no_acknowledged_one() {
    let dir = support::tempdir();
    let launch = Launch::fsync("always");
    let mut rng = Rng::new("script-kill");
    let mut server = support::start(dir.path(), &launch);
    let port = server.port;
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..2).map(|_| AtomicU64::new(0)).collect());
    let writers: Vec<_> = (0..2)
        .map(|t| {
            let acked = Arc::clone(&acked);
            thread::spawn(move || {
                let Ok(mut c) = Client::try_connect(port) else {
                    return;
                };
                let (a, b, n) = (format!("a{t}"), format!("b{t}"), format!("n{t}"));
                // Declared keys for writer 0, undeclared (escalation) for writer 1.
                loop {
                    let reply = if t == 0 {
                        c.try_cmd(&["EVAL", MOVE, "3", &a, &b, &n])
                    } else {
                        let script = MOVE
                            .replace("KEYS[1]", &format!("'{a}'"))
                            .replace("KEYS[2]", &format!("'{b}'"))
                            .replace("KEYS[3]", &format!("'{n}'"));
                        c.try_cmd(&["EVAL", &script, "0"])
                    };
                    match reply {
                        Ok(Reply::Int(i)) => acked[t].store(i as u64, Ordering::SeqCst),
                        Ok(other) => panic!("writer {t}: {other:?}"),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    random_sleep(&mut rng, 150, 400);
    server.kill9();
    for w in writers {
        w.join().unwrap();
    }
    let server = support::start(dir.path(), &launch);
    let mut c = server.client();
    for t in 0..2 {
        let get = |c: &mut Client, k: String| c.get(&k).map_or(0, |v| v.parse::<i64>().unwrap());
        let (a, b, n) = (
            get(&mut c, format!("a{t}")),
            get(&mut c, format!("b{t}")),
            get(&mut c, format!("n{t}")),
        );
        assert_eq!(a + b, 0, "writer {t}: half a script replayed (a={a}, b={b})");
        assert_eq!(b, n, "writer {t}: half a script replayed (b={b}, n={n})");
        let acked = acked[t].load(Ordering::SeqCst) as i64;
        assert!(
            n >= acked,
            "writer {t}: {acked} scripts acknowledged, {n} recovered"
        );
        assert!(
            n <= acked + 1,
            "writer {t}: {n} recovered, only {acked} (+1 in flight) sent"
        );
    }
    assert!(
        acked.iter().any(|a| a.load(Ordering::SeqCst) > 0),
        "no script acknowledged"
    );
}

const LIB: &str =
    "#!lua name=mylib\nredis.register_function('hello', function(keys, args) return 'hello ' .. args[1] end)";
const LIB2: &str = "#!lua name=other\nredis.register_function{function_name='get2', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}";

#[test]
fn loaded_functions_survive_restart_and_compaction() {
    let dir = support::tempdir();
    let launch = Launch::fsync("always");
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    assert_eq!(
        c.cmd(&["FUNCTION", "LOAD", LIB]).bulk_str().as_deref(),
        Some("mylib")
    );
    assert_eq!(
        c.cmd(&["FUNCTION", "LOAD", LIB2]).bulk_str().as_deref(),
        Some("other")
    );
    assert_eq!(
        c.cmd(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=gone\nredis.register_function('g', function() return 1 end)"
        ])
        .bulk_str()
        .as_deref(),
        Some("gone")
    );
    assert!(c.cmd(&["FUNCTION", "DELETE", "gone"]).is_ok());
    assert!(c.cmd(&["SET", "k", "v"]).is_ok());
    server.kill9();

    let check = |c: &mut Client| {
        assert_eq!(
            c.cmd(&["FCALL", "hello", "0", "world"]).bulk_str().as_deref(),
            Some("hello world")
        );
        assert_eq!(
            c.cmd(&["FCALL_RO", "get2", "1", "k"]).bulk_str().as_deref(),
            Some("v")
        );
        assert!(matches!(c.cmd(&["FCALL", "g", "0"]), Reply::Error(e) if e.contains("Function not found")));
    };
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    check(&mut c);
    let (code, report) = support::check_wal(&server.wal_path(), false);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("function"), "{report}");
    // Compaction writes the libraries into the snapshot.
    assert!(c.compact());
    c.wait_compaction_done();
    server.kill9();
    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    check(&mut c);
    // A flush is durable too.
    assert!(c.cmd(&["FUNCTION", "FLUSH"]).is_ok());
    server.kill9();
    let server = support::start(dir.path(), &launch);
    let mut c = server.client();
    assert!(
        matches!(c.cmd(&["FCALL", "hello", "0", "x"]), Reply::Error(e) if e.contains("Function not found"))
    );
}
