//! The two read-outs of the server's state: `INFO` (Redis's text format,
//! so tools that scrape Redis can scrape us) and `STATS` (one JSON object
//! with latency percentiles). Both are assembled on demand from the merged
//! per-worker counters; nothing here runs on the request path.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use serde_json::{json, Map, Value};

use crate::command::COMMANDS;
use crate::state::ServerState;
use crate::stats::{cpu_seconds, rss_bytes, Summary};

/// Sections shown by plain `INFO` and `INFO default`: Redis 7's default set
/// less the ones kvserver has nothing for (`module_list`, `cluster`). As in
/// Redis, `commandstats` and `latencystats` are left out because they grow
/// with the number of commands used; `errorstats` stays (Redis 7.0–7.2 list
/// it in their defaults).
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "errorstats",
    "keyspace",
];

/// Renders the requested INFO sections, each at most once and in Redis's
/// order whatever the order asked. `wanted` holds lower-cased names:
/// nothing or `default` means [`DEFAULT_SECTIONS`], `all` and `everything`
/// every section (the same here: Redis's difference is module sections),
/// and any other name that section; unknown names add nothing.
pub fn render(state: &ServerState, wanted: &[String]) -> String {
    // Read before INFO allocates anything of its own (the latency summary
    // merges histograms: hundreds of KB for a moment), so `used_memory` is the
    // figure eviction sees, not one inflated by this command.
    let used = crate::memory::used();
    let everything = wanted.iter().any(|w| w == "all" || w == "everything");
    let default = wanted.is_empty() || wanted.iter().any(|w| w == "default");
    let want = |name: &str| {
        everything || (default && DEFAULT_SECTIONS.contains(&name)) || wanted.iter().any(|w| w == name)
    };
    let mut out = String::new();
    let summary = state.stats.summary(COMMANDS.len());
    let config = &state.config;
    if want("server") {
        section(&mut out, "Server");
        field(&mut out, "redis_version", "7.0.0");
        field(&mut out, "kvserver_version", env!("CARGO_PKG_VERSION"));
        field(&mut out, "redis_mode", "standalone");
        field(&mut out, "os", std::env::consts::OS);
        field(&mut out, "arch_bits", usize::BITS);
        field(&mut out, "multiplexing_api", "epoll");
        field(&mut out, "process_id", std::process::id());
        field(&mut out, "tcp_port", config.port);
        field(&mut out, "uptime_in_seconds", state.stats.uptime().as_secs());
        field(
            &mut out,
            "uptime_in_days",
            state.stats.uptime().as_secs() / 86_400,
        );
        field(
            &mut out,
            "executable",
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        );
        field(&mut out, "io_threads_active", 0);
        field(&mut out, "workers", config.worker_threads());
        field(&mut out, "shards", state.dbs.shard_count());
        field(&mut out, "databases", state.dbs.count());
    }
    if want("clients") {
        section(&mut out, "Clients");
        field(
            &mut out,
            "connected_clients",
            state.stats.connected_clients.load(Ordering::Relaxed),
        );
        field(&mut out, "cluster_connections", 0);
        field(&mut out, "maxclients", state.runtime.maxclients());
        field(&mut out, "blocked_clients", state.blocking.blocked_clients());
        field(&mut out, "tracking_clients", state.tracking.clients());
        field(&mut out, "clients_in_timeout_table", 0);
    }
    if want("memory") {
        section(&mut out, "Memory");
        let rss = rss_bytes();
        let peak = crate::memory::peak().max(used);
        let maxmemory = state.runtime.maxmemory();
        field(&mut out, "used_memory", used);
        field(&mut out, "used_memory_human", human_bytes(used));
        field(&mut out, "used_memory_rss", rss);
        field(&mut out, "used_memory_rss_human", human_bytes(rss));
        field(&mut out, "used_memory_peak", peak);
        field(&mut out, "used_memory_peak_human", human_bytes(peak));
        // Lua: every worker's state, and the shared script cache.
        let lua = crate::scripting::cache::LUA_MEMORY.load(std::sync::atomic::Ordering::Relaxed);
        let (scripts, script_bytes) = crate::scripting::cache::script_stats();
        field(&mut out, "used_memory_lua", lua);
        field(&mut out, "used_memory_lua_human", human_bytes(lua as u64));
        field(&mut out, "used_memory_scripts", script_bytes);
        field(
            &mut out,
            "used_memory_scripts_human",
            human_bytes(script_bytes as u64),
        );
        field(&mut out, "number_of_cached_scripts", scripts);
        field(&mut out, "maxmemory", maxmemory);
        field(&mut out, "maxmemory_human", human_bytes(maxmemory));
        field(&mut out, "maxmemory_policy", state.runtime.policy().as_str());
        field(
            &mut out,
            "mem_fragmentation_ratio",
            format!("{:.2}", rss as f64 / used.max(1) as f64),
        );
        field(&mut out, "mem_allocator", "libc");
    }
    if want("persistence") {
        section(&mut out, "Persistence");
        field(&mut out, "loading", u8::from(state.is_loading()));
        field(&mut out, "async_loading", 0);
        persistence_fields(&mut out, state);
        let live = state.runtime.snapshot();
        field(&mut out, "fsync", live.fsync.as_str());
        field(&mut out, "flush_interval_ms", live.flush_interval_ms);
        if let Some(wal) = state.wal() {
            for (name, value) in flatten(&wal_json(wal)) {
                field(&mut out, &format!("wal_{name}"), value);
            }
        }
        if let Some(replay) = state.replay() {
            field(&mut out, "wal_replay_records", replay.records.total());
            field(&mut out, "wal_replay_bytes", replay.bytes);
            field(
                &mut out,
                "wal_replay_seconds",
                format!("{:.3}", replay.elapsed.as_secs_f64()),
            );
            field(
                &mut out,
                "wal_replay_records_per_sec",
                format!("{:.0}", replay.records_per_sec),
            );
            field(&mut out, "wal_replay_truncated_bytes", replay.truncated_bytes);
        }
    }
    if want("stats") {
        section(&mut out, "Stats");
        let total: u64 = summary.commands.iter().map(|c| c.calls).sum();
        let (lock_acquisitions, expired) = state.dbs.counters();
        field(
            &mut out,
            "total_connections_received",
            state.stats.total_connections.load(Ordering::Relaxed),
        );
        field(&mut out, "total_commands_processed", total);
        field(
            &mut out,
            "rejected_connections",
            state.stats.rejected_connections.load(Ordering::Relaxed),
        );
        field(&mut out, "expired_keys", expired);
        field(
            &mut out,
            "client_output_buffer_limit_disconnections",
            state.stats.output_limit_disconnections.load(Ordering::Relaxed),
        );
        field(&mut out, "pubsub_channels", state.pubsub.registry.channel_count());
        field(&mut out, "pubsub_patterns", state.pubsub.registry.pattern_count());
        field(
            &mut out,
            "pubsubshard_channels",
            state.pubsub.registry.shard_channel_count(),
        );
        field(&mut out, "tracking_total_keys", state.tracking.total_keys());
        field(&mut out, "evicted_keys", state.dbs.evicted());
        field(&mut out, "keyspace_hits", summary.keyspace_hits);
        field(&mut out, "keyspace_misses", summary.keyspace_misses);
        field(&mut out, "batches", summary.batches);
        field(&mut out, "batched_commands", summary.batched_commands);
        field(&mut out, "shard_lock_acquisitions", lock_acquisitions);
        field(&mut out, "total_error_replies", summary.error_replies);
    }
    if want("replication") {
        section(&mut out, "Replication");
        field(&mut out, "role", "master");
        field(&mut out, "connected_slaves", 0);
        field(&mut out, "master_failover_state", "no-failover");
        field(&mut out, "master_replid", replication_id());
        field(&mut out, "master_replid2", "0".repeat(40));
        let offset = state.wal().map_or(0, |w| w.stats().appended_lsn);
        field(&mut out, "master_repl_offset", offset);
        field(&mut out, "second_repl_offset", -1);
        field(&mut out, "repl_backlog_active", 0);
        field(&mut out, "repl_backlog_size", 1_048_576);
        field(&mut out, "repl_backlog_first_byte_offset", 0);
        field(&mut out, "repl_backlog_histlen", 0);
    }
    if want("cpu") {
        section(&mut out, "CPU");
        let (user, sys) = cpu_seconds();
        field(&mut out, "used_cpu_sys", format!("{sys:.6}"));
        field(&mut out, "used_cpu_user", format!("{user:.6}"));
    }
    if want("commandstats") {
        section(&mut out, "Commandstats");
        for (spec, stats) in COMMANDS.iter().zip(&summary.commands) {
            if stats.calls == 0 && stats.rejected == 0 {
                continue;
            }
            let usec = stats.total_ns / 1000;
            let per_call = stats.total_ns as f64 / 1000.0 / stats.calls.max(1) as f64;
            field(
                &mut out,
                &format!("cmdstat_{}", spec.name),
                format!(
                    "calls={},usec={usec},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}",
                    stats.calls, stats.rejected, stats.errors
                ),
            );
        }
    }
    if want("errorstats") {
        section(&mut out, "Errorstats");
        for (code, count) in &summary.error_codes {
            field(&mut out, &format!("errorstat_{code}"), format!("count={count}"));
        }
    }
    if want("latencystats") {
        section(&mut out, "Latencystats");
        for (spec, stats) in COMMANDS.iter().zip(&summary.commands) {
            if let Some(h) = stats.latency_ns.as_ref().filter(|_| stats.calls > 0) {
                field(
                    &mut out,
                    &format!("latency_percentiles_usec_{}", spec.name),
                    latency_percentiles(h),
                );
            }
        }
    }
    if want("keyspace") {
        section(&mut out, "Keyspace");
        // One line per non-empty database, as Redis.
        for db in 0..state.dbs.count() {
            let store = state.dbs.store(db);
            let keys = store.len();
            if keys > 0 {
                field(
                    &mut out,
                    &format!("db{db}"),
                    format!("keys={keys},expires={},avg_ttl=0", store.ttl_len()),
                );
            }
        }
    }
    out
}

/// Redis's `latency-tracking-info-percentiles` default (50, 99, 99.9), in
/// its format: `p50=1.003,p99=2.007,p99.9=3.007`, microseconds with three
/// decimals, from the command's histogram of nanoseconds.
fn latency_percentiles(h: &hdrhistogram::Histogram<u64>) -> String {
    const PERCENTILES: [(&str, f64); 3] = [("50", 50.0), ("99", 99.0), ("99.9", 99.9)];
    PERCENTILES
        .iter()
        .map(|(name, p)| format!("p{name}={:.3}", h.value_at_percentile(*p) as f64 / 1000.0))
        .collect::<Vec<_>>()
        .join(",")
}

/// A replication id for `INFO replication`: 40 hex digits, fixed for the
/// life of the process (there are no replicas; tools only check its shape).
fn replication_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let seed = ahash::RandomState::new();
        (0..5u64)
            .map(|i| format!("{:08x}", seed.hash_one(i) as u32))
            .collect()
    })
}

fn section(out: &mut String, name: &str) {
    if !out.is_empty() {
        out.push_str("\r\n");
    }
    let _ = write!(out, "# {name}\r\n");
}

fn field(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = write!(out, "{name}:{value}\r\n");
}

use crate::memory::human_bytes;

/// Flattens a JSON object one level deep into (name, value) pairs for INFO.
fn flatten(value: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Value::Object(map) = value {
        for (k, v) in map {
            match v {
                Value::String(s) => out.push((k.clone(), s.replace(['\r', '\n'], " "))),
                Value::Null => out.push((k.clone(), String::new())),
                other => out.push((k.clone(), other.to_string())),
            }
        }
    }
    out
}

/// The WAL's figures as a JSON object.
/// Redis's `rdb_*` and `aof_*` fields, which exporters and Sentinel read.
/// kvserver has one persistence mechanism, the WAL, and its compaction is
/// both its "save" (SAVE, BGSAVE) and its "AOF rewrite" (BGREWRITEAOF), so
/// both families describe compaction; see docs/persistence.md.
fn persistence_fields(out: &mut String, state: &ServerState) {
    let wal = state.wal().map(|w| w.stats());
    let status = |ok: bool| if ok { "ok" } else { "err" };
    let compacting = wal.as_ref().is_some_and(|s| s.compacting);
    let last_secs = |s: &crate::wal::WalStats| {
        if s.compactions == 0 {
            -1
        } else {
            (s.last_compaction_ms / 1000) as i64
        }
    };
    let current_secs = |s: &crate::wal::WalStats| s.compaction_running_secs.map_or(-1, |t| t as i64);
    let last_save = wal
        .as_ref()
        .map_or_else(|| lastsave_without_wal(state), |s| s.last_save_unix);
    field(
        out,
        "rdb_changes_since_last_save",
        wal.as_ref().map_or(0, |s| s.changes_since_last_save),
    );
    field(out, "rdb_bgsave_in_progress", u8::from(compacting));
    field(out, "rdb_last_save_time", last_save);
    field(
        out,
        "rdb_last_bgsave_status",
        status(wal.as_ref().is_none_or(|s| s.last_compaction_ok)),
    );
    field(
        out,
        "rdb_last_bgsave_time_sec",
        wal.as_ref().map_or(-1, last_secs),
    );
    field(
        out,
        "rdb_current_bgsave_time_sec",
        wal.as_ref().map_or(-1, current_secs),
    );
    field(out, "rdb_saves", wal.as_ref().map_or(0, |s| s.compactions));
    field(out, "rdb_last_cow_size", 0);
    field(out, "aof_enabled", u8::from(wal.is_some()));
    field(out, "aof_rewrite_in_progress", u8::from(compacting));
    field(
        out,
        "aof_rewrite_scheduled",
        u8::from(state.wal().is_some_and(|w| w.compaction_scheduled())),
    );
    field(
        out,
        "aof_last_rewrite_time_sec",
        wal.as_ref().map_or(-1, last_secs),
    );
    field(
        out,
        "aof_current_rewrite_time_sec",
        wal.as_ref().map_or(-1, current_secs),
    );
    field(
        out,
        "aof_last_bgrewrite_status",
        status(wal.as_ref().is_none_or(|s| s.last_compaction_ok)),
    );
    field(out, "aof_rewrites", wal.as_ref().map_or(0, |s| s.compactions));
    field(out, "aof_rewrites_consecutive_failures", 0);
    field(
        out,
        "aof_last_write_status",
        status(wal.as_ref().is_none_or(|s| !s.failing)),
    );
    field(out, "aof_last_cow_size", 0);
    field(out, "module_fork_in_progress", 0);
    field(out, "module_fork_last_cow_size", 0);
    if let Some(s) = &wal {
        field(out, "aof_current_size", s.file_size);
        field(out, "aof_base_size", s.base_size);
        field(out, "aof_pending_rewrite", 0);
        field(out, "aof_buffer_length", s.pending_bytes);
        field(out, "aof_pending_bio_fsync", 0);
        field(out, "aof_delayed_fsync", 0);
    }
}

/// `LASTSAVE` and `rdb_last_save_time` of a server without a WAL: its start
/// time, as Redis reports before its first save.
pub fn lastsave_without_wal(state: &ServerState) -> u64 {
    (crate::store::now_ms() / 1000).saturating_sub(state.stats.uptime().as_secs())
}

fn wal_json(wal: &crate::wal::Wal) -> Value {
    let s = wal.stats();
    json!({
        "fsync": s.policy.as_str(),
        "bytes_appended": s.bytes_appended,
        "bytes_written": s.bytes_written,
        "file_size": s.file_size,
        "pending_bytes": s.pending_bytes,
        "appended_lsn": s.appended_lsn,
        "durable_lsn": s.durable_lsn,
        "flushes": s.flushes,
        "fsyncs": s.fsyncs,
        "last_flush_us": s.last_flush_duration.as_micros() as u64,
        "write_errors": s.write_errors,
        "failing": s.failing,
        "last_error": s.last_error,
        "compactions": s.compactions,
        "compaction_failures": s.compaction_failures,
        "last_compaction_ms": s.last_compaction_ms,
        "compacting": s.compacting,
        "group_commit_batches": s.group_commit_batches,
        "commits": s.commits,
    })
}

/// Latency percentiles of one command, in microseconds.
fn percentiles(h: &hdrhistogram::Histogram<u64>) -> Value {
    let us = |q: f64| (h.value_at_quantile(q) as f64 / 1000.0 * 1000.0).round() / 1000.0;
    json!({
        "p50_us": us(0.50),
        "p95_us": us(0.95),
        "p99_us": us(0.99),
        "p999_us": us(0.999),
        "max_us": (h.max() as f64 / 1000.0 * 1000.0).round() / 1000.0,
        "mean_us": (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
    })
}

/// The STATS object: uptime, clients, commands with latency percentiles,
/// keyspace figures, batching and WAL figures.
pub fn stats_json(state: &ServerState) -> String {
    let summary: Summary = state.stats.summary(COMMANDS.len());
    let mut commands = Map::new();
    let mut total_calls = 0;
    for (spec, stats) in COMMANDS.iter().zip(&summary.commands) {
        if stats.calls == 0 {
            continue;
        }
        total_calls += stats.calls;
        let mut entry = json!({ "calls": stats.calls, "errors": stats.errors });
        if let (Some(h), Value::Object(map)) = (&stats.latency_ns, &mut entry) {
            if let Value::Object(p) = percentiles(h) {
                map.extend(p);
            }
        }
        commands.insert(spec.name.to_string(), entry);
    }
    let lookups = summary.keyspace_hits + summary.keyspace_misses;
    let (lock_acquisitions, expired) = state.dbs.counters();
    let value = json!({
        "uptime_seconds": state.stats.uptime().as_secs_f64(),
        "connected_clients": state.stats.connected_clients.load(Ordering::Relaxed),
        "total_connections": state.stats.total_connections.load(Ordering::Relaxed),
        "rejected_clients": state.stats.rejected_connections.load(Ordering::Relaxed),
        "total_commands": total_calls,
        "commands": commands,
        "keyspace": {
            "keys": state.dbs.len(),
            "keys_with_ttl": state.dbs.ttl_len(),
            "expired_keys": expired,
            "evicted_keys": state.dbs.evicted(),
            "hits": summary.keyspace_hits,
            "misses": summary.keyspace_misses,
            "hit_rate": if lookups == 0 { 0.0 } else { summary.keyspace_hits as f64 / lookups as f64 },
        },
        "batching": {
            "batches": summary.batches,
            "batched_commands": summary.batched_commands,
            "mean_batch_size": if summary.batches == 0 { 0.0 } else { summary.batched_commands as f64 / summary.batches as f64 },
            "shard_lock_acquisitions": lock_acquisitions,
        },
        "wal": state.wal().map_or(Value::Null, |w| wal_json(w)),
        "memory": {
            "rss_bytes": rss_bytes(),
            "used_memory": crate::memory::used(),
            "used_memory_peak": crate::memory::peak().max(crate::memory::used()),
            "maxmemory": state.runtime.maxmemory(),
            "maxmemory_policy": state.runtime.policy().as_str(),
        },
    });
    value.to_string()
}
