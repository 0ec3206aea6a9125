//! kill -9 at a random moment while clients write: under `always` nothing acknowledged is lost;
//! under `interval` / `never` each client loses at most a suffix of its writes (no holes), and
//! nothing acknowledged before a successful FLUSH is lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use crate::support::{self, random_sleep, Client, Launch, Reply, Rng, Server};

const WRITERS: usize = 4;

/// The value stored under a writer's `i`-th key: derived from (prefix, t, i) so any mix-up shows.
pub(crate) fn value(prefix: &str, t: usize, i: u64) -> String {
    format!("{prefix}{t}:{i}:{}", "x".repeat((i % 40) as usize))
}

/// Per-writer progress: `acked` = writes answered `+OK`, `sent` = writes sent (acked or in flight).
pub(crate) struct Progress {
    pub acked: AtomicU64,
    pub sent: AtomicU64,
}

/// Spawns writers that SET `{prefix}{t}:{i}` for `i = start[t]..` sequentially (`batch` commands
/// per pipelined write) until their connection breaks. Returns the handles and the shared progress.
pub(crate) fn spawn_writers(
    server: &Server,
    prefix: &'static str,
    start: &[u64],
    batch: u64,
) -> (Vec<thread::JoinHandle<()>>, Arc<Vec<Progress>>) {
    let progress: Arc<Vec<Progress>> = Arc::new(
        start
            .iter()
            .map(|&s| Progress {
                acked: AtomicU64::new(s),
                sent: AtomicU64::new(s),
            })
            .collect(),
    );
    let handles = (0..start.len())
        .map(|t| {
            let port = server.port;
            let progress = Arc::clone(&progress);
            thread::spawn(move || {
                let Ok(mut c) = Client::try_connect(port) else {
                    return;
                };
                let mut i = progress[t].sent.load(Ordering::SeqCst);
                loop {
                    let cmds: Vec<Vec<String>> = (i..i + batch)
                        .map(|j| crate::cmd!["SET", format!("{prefix}{t}:{j}"), value(prefix, t, j)])
                        .collect();
                    progress[t].sent.store(i + batch, Ordering::SeqCst);
                    let replies = match c.try_pipeline(&cmds) {
                        Ok(r) => r,
                        Err(_) => return, // killed under us
                    };
                    for r in &replies {
                        match r {
                            Reply::Simple(s) if s == "OK" => {
                                i += 1;
                                progress[t].acked.store(i, Ordering::SeqCst);
                            }
                            other => panic!("writer {t}: SET {i} got {other:?}"),
                        }
                    }
                }
            })
        })
        .collect();
    (handles, progress)
}

/// Reads `{prefix}{t}:{0..upto}` and returns how many leading keys are present, after checking
/// that every present key has its exact value and that no key is present after the first gap.
pub(crate) fn surviving_prefix(c: &mut Client, prefix: &str, t: usize, upto: u64) -> u64 {
    let keys: Vec<String> = (0..upto).map(|i| format!("{prefix}{t}:{i}")).collect();
    let got = c.mget(&keys);
    let k = got.iter().position(|v| v.is_none()).unwrap_or(got.len()) as u64;
    for (i, v) in got.iter().enumerate() {
        let i = i as u64;
        if i < k {
            assert_eq!(
                v.as_deref(),
                Some(value(prefix, t, i).as_str()),
                "{prefix}{t}:{i} has a corrupted value"
            );
        } else {
            assert!(
                v.is_none(),
                "client {t}: key {i} survived but key {k} did not: a hole in the recovered log"
            );
        }
    }
    k
}

/// What the writers of several kill -9 cycles were told: per writer, the ranges of indexes that
/// were acknowledged (one range per cycle) and the next index to send. An index sent but not
/// acknowledged when the server died may or may not have survived; later cycles start after it.
pub(crate) struct Ledger {
    prefix: &'static str,
    acked: Vec<Vec<std::ops::Range<u64>>>,
    pub next: Vec<u64>,
}

impl Ledger {
    pub fn new(prefix: &'static str, writers: usize) -> Ledger {
        Ledger {
            prefix,
            acked: vec![Vec::new(); writers],
            next: vec![0; writers],
        }
    }

    /// Records a finished cycle that started at `self.next`.
    pub fn record(&mut self, progress: &[Progress]) {
        for (t, p) in progress.iter().enumerate() {
            let acked = p.acked.load(Ordering::SeqCst);
            self.acked[t].push(self.next[t]..acked);
            self.next[t] = p.sent.load(Ordering::SeqCst);
        }
    }

    pub fn total_acked(&self) -> u64 {
        self.acked.iter().flatten().map(|r| r.end - r.start).sum()
    }

    /// Every acknowledged index is present with its exact value; an unacknowledged one, if
    /// present, has its exact value too; nothing past `next` exists. Returns how many are present.
    pub fn check(&self, c: &mut Client, when: &str) -> i64 {
        let mut present = 0;
        for (t, ranges) in self.acked.iter().enumerate() {
            let keys: Vec<String> = (0..=self.next[t])
                .map(|i| format!("{}{t}:{i}", self.prefix))
                .collect();
            for (i, got) in c.mget(&keys).into_iter().enumerate() {
                let i = i as u64;
                let acked = ranges.iter().any(|r| r.contains(&i));
                present += i64::from(got.is_some());
                match got {
                    Some(v) => assert_eq!(
                        v,
                        value(self.prefix, t, i),
                        "{when}: {}{t}:{i} has a corrupted value",
                        self.prefix
                    ),
                    None => assert!(
                        !acked,
                        "{when}: {}{t}:{i} was acknowledged under fsync=always but lost by kill -9",
                        self.prefix
                    ),
                }
                if i == self.next[t] {
                    assert!(!acked);
                }
            }
        }
        present
    }
}

#[test]
fn every_acknowledged_write_survives_kill9_with_fsync_always_over_three_cycles() {
    let mut rng = Rng::new("always_kill9");
    let dir = support::tempdir();
    let launch = Launch::fsync("always");
    let mut ledger = Ledger::new("w", WRITERS);
    for cycle in 0..3 {
        let mut server = support::start(dir.path(), &launch);
        ledger.check(&mut server.client(), &format!("before cycle {cycle}"));
        let (handles, progress) = spawn_writers(&server, "w", &ledger.next, 1);
        random_sleep(&mut rng, 100, 400);
        server.kill9();
        for h in handles {
            h.join().expect("writer thread panicked");
        }
        ledger.record(&progress);
        eprintln!("cycle {cycle}: next {:?}", ledger.next);
    }
    assert!(ledger.total_acked() > 0, "no write was acknowledged at all");
    let mut server = support::start(dir.path(), &launch);
    ledger.check(&mut server.client(), "after the last cycle");
    server.sigterm();
    let (code, report) = support::check_wal(&server.wal_path(), false);
    assert_eq!(code, 0, "check-wal after a clean stop: {report}");
}

/// One run under a buffered policy: writers go, a FLUSH is taken mid-run, kill -9 a bit later.
fn buffered_policy_loses_only_a_suffix(policy: &'static str, test: &str) {
    let mut rng = Rng::new(test);
    let dir = support::tempdir();
    let launch = Launch::fsync(policy);
    let mut server = support::start(dir.path(), &launch);
    let (handles, progress) = spawn_writers(&server, "c", &[0; WRITERS], 8);
    random_sleep(&mut rng, 50, 200);
    // Everything acknowledged before FLUSH was sent must be on disk once FLUSH answers OK.
    let before_flush: Vec<u64> = progress.iter().map(|p| p.acked.load(Ordering::SeqCst)).collect();
    server.client().flush();
    random_sleep(&mut rng, 0, 250);
    server.kill9();
    for h in handles {
        h.join().expect("writer thread panicked");
    }
    let sent: Vec<u64> = progress.iter().map(|p| p.sent.load(Ordering::SeqCst)).collect();
    let acked: Vec<u64> = progress.iter().map(|p| p.acked.load(Ordering::SeqCst)).collect();

    let mut server = support::start(dir.path(), &launch);
    let mut c = server.client();
    let mut survived = Vec::new();
    for t in 0..WRITERS {
        let k = surviving_prefix(&mut c, "c", t, sent[t]);
        assert!(
            k >= before_flush[t],
            "client {t}: {} writes were acknowledged before a successful FLUSH, only {k} survived",
            before_flush[t]
        );
        survived.push(k);
    }
    eprintln!(
        "{policy}: before FLUSH {before_flush:?}, acked {acked:?}, sent {sent:?}, survived {survived:?}"
    );
    drop(c);
    server.sigterm();
}

#[test]
fn kill9_under_fsync_interval_loses_only_a_suffix_per_client_and_nothing_flushed() {
    buffered_policy_loses_only_a_suffix("interval", "interval_kill9");
}

#[test]
fn kill9_under_fsync_never_loses_only_a_suffix_per_client_and_nothing_flushed() {
    buffered_policy_loses_only_a_suffix("never", "never_kill9");
}
