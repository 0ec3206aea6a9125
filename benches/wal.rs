//! WAL benchmarks: append throughput (the cost a writer pays under its shard lock), replay speed
//! of 1 M small SET records (startup time), and `always` group-commit throughput with 8 writers.
//!
//! Run: `cargo bench --bench wal`. Files live in a temp directory; nothing else is touched.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kvserver::wal::{FsyncPolicy, Record, Wal, WalConfig};

const REPLAY_RECORDS: u64 = 1_000_000;

fn config(dir: &std::path::Path, fsync: FsyncPolicy) -> WalConfig {
    WalConfig {
        fsync,
        flush_interval: Duration::from_millis(100),
        ..WalConfig::new(dir)
    }
}

fn append(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (wal, _) = Wal::open(config(tmp.path(), FsyncPolicy::Never), |_| {}).expect("open");
    let mut g = c.benchmark_group("wal_append");
    let mut enc = Vec::with_capacity(256);
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_and_append_small_set", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            enc.clear();
            let key = i.to_le_bytes();
            Record::Set {
                key: &key,
                value: b"0123456789abcdef0123456789abcdef",
                expires_at_ms: None,
            }
            .encode(&mut enc);
            wal.append(&enc)
        })
    });
    // A pipelined batch of 100 records appended at once.
    let mut batch = Vec::new();
    for i in 0..100u64 {
        Record::Set {
            key: &i.to_le_bytes(),
            value: b"0123456789abcdef0123456789abcdef",
            expires_at_ms: None,
        }
        .encode(&mut batch);
    }
    g.throughput(Throughput::Elements(100));
    g.bench_function("append_batch_of_100_small_sets", |b| {
        b.iter(|| wal.append(&batch))
    });
    g.finish();
    wal.shutdown().expect("shutdown");
}

fn replay(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    {
        let (wal, _) = Wal::open(config(tmp.path(), FsyncPolicy::Never), |_| {}).expect("open");
        let mut enc = Vec::with_capacity(64 * 1024);
        for i in 0..REPLAY_RECORDS {
            let key = format!("key:{i:08}");
            Record::Set {
                key: key.as_bytes(),
                value: b"value-0123456789",
                expires_at_ms: None,
            }
            .encode(&mut enc);
            if enc.len() > 60 * 1024 {
                wal.append(&enc);
                enc.clear();
            }
        }
        wal.append(&enc);
        wal.shutdown().expect("shutdown");
    }
    let mut g = c.benchmark_group("wal_replay");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(REPLAY_RECORDS));
    g.bench_function("replay_1m_small_sets", |b| {
        b.iter_batched(
            || (),
            |()| {
                let mut bytes = 0usize;
                let (wal, report) = Wal::open(config(tmp.path(), FsyncPolicy::Never), |r| {
                    if let Record::Set { key, value, .. } = r {
                        bytes += key.len() + value.len();
                    }
                })
                .expect("open");
                assert_eq!(report.records.total(), REPLAY_RECORDS);
                wal.shutdown().expect("shutdown");
                bytes
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let (wal, report) = Wal::open(config(tmp.path(), FsyncPolicy::Never), |_| {}).expect("open");
    println!("replay report: {report}");
    wal.shutdown().expect("shutdown");
}

fn group_commit(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (wal, _) = Wal::open(config(tmp.path(), FsyncPolicy::Always), |_| {}).expect("open");
    let mut g = c.benchmark_group("wal_always");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 100;
    g.throughput(Throughput::Elements(THREADS * PER_THREAD));
    g.bench_function("group_commit_8_writers", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let workers: Vec<_> = (0..THREADS)
                    .map(|t| {
                        let wal = Arc::clone(&wal);
                        thread::spawn(move || {
                            let mut enc = Vec::new();
                            for i in 0..PER_THREAD {
                                enc.clear();
                                Record::Set {
                                    key: &(t * 1_000_000 + i).to_le_bytes(),
                                    value: b"v",
                                    expires_at_ms: None,
                                }
                                .encode(&mut enc);
                                let lsn = wal.append(&enc);
                                wal.commit(lsn).expect("commit");
                            }
                        })
                    })
                    .collect();
                for w in workers {
                    w.join().expect("writer");
                }
            }
            start.elapsed()
        })
    });
    g.finish();
    let s = wal.stats();
    println!(
        "group commit: {} commits in {} fsync batches ({:.1} commits per fsync)",
        s.commits,
        s.group_commit_batches,
        s.commits as f64 / s.group_commit_batches.max(1) as f64
    );
    wal.shutdown().expect("shutdown");
}

criterion_group!(benches, append, replay, group_commit);
criterion_main!(benches);
