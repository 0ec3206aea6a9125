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
    /// Refused before the handler ran (arity, auth, write gate): Redis's `rejected_calls`.
    pub rejected: u64,
    /// Total time spent in the handler (`usec` of `INFO commandstats`).
    pub total_ns: u64,
    pub latency_ns: Histogram<u64>,
}

impl CommandStats {
    fn new() -> Option<CommandStats> {
        Some(CommandStats {
            calls: 0,
            errors: 0,
            rejected: 0,
            total_ns: 0,
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
    /// Error replies by their first word (`ERR`, `WRONGTYPE`, …).
    pub error_codes: Vec<(String, u64)>,
    pub error_replies: u64,
}

/// Most distinct error codes tracked, as Redis's errorstats (128): beyond
/// it, new codes are only counted in the total.
const MAX_ERROR_CODES: usize = 128;

impl WorkerCounters {
    /// The figures of command `index`, allocated on first use.
    fn command(&mut self, index: usize) -> Option<&mut CommandStats> {
        if self.commands.len() <= index {
            self.commands.resize_with(index + 1, || None);
        }
        let slot = &mut self.commands[index];
        if slot.is_none() {
            *slot = CommandStats::new().map(Box::new);
        }
        slot.as_deref_mut()
    }
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
        if let Some(stats) = counters.command(command) {
            stats.calls += 1;
            stats.errors += u64::from(failed);
            let ns = (elapsed.as_nanos() as u64).clamp(1, MAX_LATENCY_NS);
            stats.total_ns += ns;
            let _ = stats.latency_ns.record(ns);
        }
    }

    /// Records a call refused before its handler ran.
    pub fn rejected(&self, command: usize) {
        if let Some(stats) = self.0.lock().command(command) {
            stats.rejected += 1;
        }
    }

    /// Records an error reply by its code (the first word of `message`).
    pub fn error_reply(&self, message: &str) {
        let code = message.split(' ').next().unwrap_or("ERR");
        let mut counters = self.0.lock();
        counters.error_replies += 1;
        if let Some(entry) = counters.error_codes.iter_mut().find(|(c, _)| c == code) {
            entry.1 += 1;
        } else if counters.error_codes.len() < MAX_ERROR_CODES {
            counters.error_codes.push((code.to_string(), 1));
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
    /// Clients closed for exceeding `client-output-buffer-limit`.
    pub output_limit_disconnections: AtomicU64,
}

/// Merged per-command figures.
pub struct CommandSummary {
    pub calls: u64,
    pub errors: u64,
    pub rejected: u64,
    pub total_ns: u64,
    pub latency_ns: Option<Histogram<u64>>,
}

/// Merged view of all workers.
pub struct Summary {
    pub commands: Vec<CommandSummary>,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub batches: u64,
    pub batched_commands: u64,
    /// Error replies by code, sorted by code.
    pub error_codes: Vec<(String, u64)>,
    pub error_replies: u64,
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
            output_limit_disconnections: AtomicU64::new(0),
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
                    rejected: 0,
                    total_ns: 0,
                    latency_ns: None,
                })
                .collect(),
            keyspace_hits: 0,
            keyspace_misses: 0,
            batches: 0,
            batched_commands: 0,
            error_codes: Vec::new(),
            error_replies: 0,
        };
        for worker in self.workers.iter() {
            let counters = worker.0.lock();
            summary.keyspace_hits += counters.keyspace_hits;
            summary.keyspace_misses += counters.keyspace_misses;
            summary.batches += counters.batches;
            summary.batched_commands += counters.batched_commands;
            summary.error_replies += counters.error_replies;
            for (code, count) in &counters.error_codes {
                match summary.error_codes.iter_mut().find(|(c, _)| c == code) {
                    Some(entry) => entry.1 += count,
                    None => summary.error_codes.push((code.clone(), *count)),
                }
            }
            for (i, stats) in counters.commands.iter().enumerate() {
                let (Some(stats), Some(merged)) = (stats, summary.commands.get_mut(i)) else {
                    continue;
                };
                merged.calls += stats.calls;
                merged.errors += stats.errors;
                merged.rejected += stats.rejected;
                merged.total_ns += stats.total_ns;
                match &mut merged.latency_ns {
                    Some(h) => {
                        let _ = h.add(&stats.latency_ns);
                    }
                    None => merged.latency_ns = Some(stats.latency_ns.clone()),
                }
            }
        }
        summary.error_codes.sort();
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
        self.output_limit_disconnections.store(0, Ordering::Relaxed);
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
