//! Counters and latency histograms behind `STATS` and `INFO`.
//!
//! Recording must never serialise the workers, so every worker thread owns a
//! [`WorkerStats`] slot: its mutex is taken by that worker alone on the hot
//! path (uncontended, ~20 ns) and by a `STATS` reader only while merging.
//! Latency is recorded per command in an HDR histogram (2 significant
//! digits, 1 ns .. 60 s) allocated the first time a worker runs that command.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;

/// Highest latency a histogram can hold (larger values are clamped).
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// Per-command figures of one worker.
pub struct CommandStats {
    pub calls: u64,
    pub errors: u64,
    pub latency_ns: Histogram<u64>,
}

impl CommandStats {
    fn new() -> Option<CommandStats> {
        Some(CommandStats {
            calls: 0,
            errors: 0,
            latency_ns: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 2).ok()?,
        })
    }
}

/// Everything one worker records, indexed by command table position.
#[derive(Default)]
pub struct WorkerCounters {
    pub commands: Vec<Option<Box<CommandStats>>>,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub batches: u64,
    pub batched_commands: u64,
}

/// One worker's slot.
#[derive(Default)]
pub struct WorkerStats(Mutex<WorkerCounters>);

impl WorkerStats {
    /// Records one command: its table index, latency, whether it failed, and
    /// its keyspace hits and misses — one lock of this worker's slot.
    pub fn record(&self, command: usize, elapsed: Duration, failed: bool, hits: u64, misses: u64) {
        let mut counters = self.0.lock();
        counters.keyspace_hits += hits;
        counters.keyspace_misses += misses;
        if counters.commands.len() <= command {
            counters.commands.resize_with(command + 1, || None);
        }
        let slot = &mut counters.commands[command];
        if slot.is_none() {
            *slot = CommandStats::new().map(Box::new);
        }
        if let Some(stats) = slot {
            stats.calls += 1;
            stats.errors += u64::from(failed);
            let ns = (elapsed.as_nanos() as u64).clamp(1, MAX_LATENCY_NS);
            let _ = stats.latency_ns.record(ns);
        }
    }

    /// Records that `commands` commands ran under one lock acquisition.
    pub fn batch(&self, commands: u64) {
        let mut counters = self.0.lock();
        counters.batches += 1;
        counters.batched_commands += commands;
    }
}

/// Server-wide statistics.
pub struct Stats {
    pub started: Instant,
    workers: Box<[WorkerStats]>,
    pub connected_clients: AtomicUsize,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
}

/// Merged per-command figures.
pub struct CommandSummary {
    pub calls: u64,
    pub errors: u64,
    pub latency_ns: Option<Histogram<u64>>,
}

/// Merged view of all workers.
pub struct Summary {
    pub commands: Vec<CommandSummary>,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub batches: u64,
    pub batched_commands: u64,
}

impl Stats {
    /// Stats with one slot per worker thread.
    pub fn new(workers: usize) -> Stats {
        Stats {
            started: Instant::now(),
            workers: (0..workers.max(1)).map(|_| WorkerStats::default()).collect(),
            connected_clients: AtomicUsize::new(0),
            total_connections: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
        }
    }

    /// The slot of worker `index`.
    pub fn worker(&self, index: usize) -> &WorkerStats {
        &self.workers[index % self.workers.len()]
    }

    /// Merges every worker's counters.
    pub fn summary(&self, command_count: usize) -> Summary {
        let mut summary = Summary {
            commands: (0..command_count)
                .map(|_| CommandSummary {
                    calls: 0,
                    errors: 0,
                    latency_ns: None,
                })
                .collect(),
            keyspace_hits: 0,
            keyspace_misses: 0,
            batches: 0,
            batched_commands: 0,
        };
        for worker in self.workers.iter() {
            let counters = worker.0.lock();
            summary.keyspace_hits += counters.keyspace_hits;
            summary.keyspace_misses += counters.keyspace_misses;
            summary.batches += counters.batches;
            summary.batched_commands += counters.batched_commands;
            for (i, stats) in counters.commands.iter().enumerate() {
                let (Some(stats), Some(merged)) = (stats, summary.commands.get_mut(i)) else {
                    continue;
                };
                merged.calls += stats.calls;
                merged.errors += stats.errors;
                match &mut merged.latency_ns {
                    Some(h) => {
                        let _ = h.add(&stats.latency_ns);
                    }
                    None => merged.latency_ns = Some(stats.latency_ns.clone()),
                }
            }
        }
        summary
    }

    /// Zeroes every counter and histogram except the connected-client count
    /// (`CONFIG RESETSTAT`).
    pub fn reset(&self) {
        for worker in self.workers.iter() {
            *worker.0.lock() = WorkerCounters::default();
        }
        self.total_connections.store(0, Ordering::Relaxed);
        self.rejected_connections.store(0, Ordering::Relaxed);
    }

    /// Seconds since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Counts an accepted client.
    pub fn client_connected(&self) {
        self.connected_clients.fetch_add(1, Ordering::Relaxed);
        self.total_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a client that left.
    pub fn client_disconnected(&self) {
        self.connected_clients.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts a client refused because every worker was busy.
    pub fn client_rejected(&self) {
        self.rejected_connections.fetch_add(1, Ordering::Relaxed);
        self.total_connections.fetch_add(1, Ordering::Relaxed);
    }
}

/// Resident set size of this process in bytes (0 if /proc is unavailable).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map(|pages| pages * page_size())
        .unwrap_or(0)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

/// CPU seconds (user, system) used by this process so far.
pub fn cpu_seconds() -> (f64, f64) {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return (0.0, 0.0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}
