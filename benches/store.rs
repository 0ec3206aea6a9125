//! Store benchmarks, reproducing the seed's progression on this machine:
//! one global lock (`shards = 1`, the seed's phase 1) against 16 shards,
//! with 1 and 2 threads doing a 50/50 GET/SET mix; and batched execution
//! (a pipelined burst through one `Session`, one lock per shard per batch)
//! against one-by-one execution of the same commands.
//!
//! Run: `cargo bench --bench store`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kvserver::config::Config;
use kvserver::session::Session;
use kvserver::state::{ClientState, ServerState};
use kvserver::store::{now_ms, Databases, Store};

const KEYS: u64 = 10_000;
const OPS_PER_THREAD: u64 = 100_000;

fn key(i: u64) -> [u8; 16] {
    let mut k = *b"key:000000000000";
    let digits = format!("{:012}", i % KEYS);
    k[4..].copy_from_slice(digits.as_bytes());
    k
}

/// `threads` threads each doing `OPS_PER_THREAD` mixed GET/SET on `store`.
fn mixed(store: &Arc<Store>, threads: u64) -> Duration {
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let store = Arc::clone(store);
            s.spawn(move || {
                let now = now_ms();
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                for _ in 0..OPS_PER_THREAD {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = key(x);
                    let hash = store.hash(&k);
                    let mut map = store.lock(store.shard_of(hash));
                    if x & 1 == 0 {
                        map.set(hash, &k, b"value", 0);
                    } else {
                        std::hint::black_box(map.get_live(hash, &k, now).0.map(|s| s.value().len()));
                    }
                }
            });
        }
    });
    started.elapsed()
}

fn shards(c: &mut Criterion) {
    let mut g = c.benchmark_group("store_mixed_get_set");
    g.sample_size(10);
    for shards in [1usize, 16] {
        for threads in [1u64, 2] {
            let store = Arc::new(Store::new(shards));
            mixed(&store, 1); // populate
            g.throughput(Throughput::Elements(OPS_PER_THREAD * threads));
            g.bench_function(format!("{shards}_shards_{threads}_threads"), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| mixed(&store, threads)).sum())
            });
        }
    }
    g.finish();
}

fn resp_set(i: u64) -> Vec<u8> {
    let k = key(i);
    let mut out = b"*3\r\n$3\r\nSET\r\n$16\r\n".to_vec();
    out.extend_from_slice(&k);
    out.extend_from_slice(b"\r\n$5\r\nvalue\r\n");
    out
}

fn batching(c: &mut Criterion) {
    let config = Config {
        wal: false,
        ..Config::default()
    };
    let state = ServerState::new(config, Arc::new(Databases::new(1, 16)), None, None);
    let commands: Vec<Vec<u8>> = (0..256).map(resp_set).collect();
    let burst: Vec<u8> = commands.concat();
    let mut g = c.benchmark_group("execute_256_sets");
    g.throughput(Throughput::Elements(256));
    g.bench_function("batched_pipeline", |b| {
        let mut session = Session::new(&state, ClientState::default(), 0);
        b.iter(|| {
            session.feed(&state, &burst);
            session.clear_replies();
        })
    });
    g.bench_function("one_by_one", |b| {
        let mut session = Session::new(&state, ClientState::default(), 0);
        b.iter(|| {
            for cmd in &commands {
                session.feed(&state, cmd);
            }
            session.clear_replies();
        })
    });
    g.finish();
}

criterion_group!(benches, shards, batching);
criterion_main!(benches);
