//! Server configuration: defaults, `kvserver.toml`, command-line overrides.
//!
//! One name per setting everywhere: the TOML key, the CLI flag (`--key`),
//! `CONFIG GET key` and the INFO field use the same kebab-case word.
//! Precedence: built-in default < config file < command line.
//! Unknown keys and bad values are startup errors that name the key.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::store::EvictionPolicy;
use crate::wal::FsyncPolicy;

/// How replies to text (inline) commands are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum InlineReplies {
    /// Human-readable lines (`OK`, `(integer) 3`, `(nil)`), for `nc` users.
    Text,
    /// RESP2, as Redis does (health checks expecting `+PONG`).
    Resp,
}

/// Most worker threads: each is a real thread with its own poller, and far
/// more threads than cores only adds context switches.
pub const MAX_WORKERS: usize = 1024;

/// Most clients: each costs a file descriptor, and the kernel's per-process
/// limit is rarely above a million.
pub const MAX_CLIENTS: usize = 1_000_000;

/// When a client that does not read its replies is disconnected: above
/// `hard_bytes` of unsent output at once, or above `soft_bytes` for
/// `soft_seconds` in a row (one class of Redis's `client-output-buffer-limit`).
/// 0 disables a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputBufferLimit {
    pub hard_bytes: u64,
    pub soft_bytes: u64,
    pub soft_seconds: u64,
}

impl OutputBufferLimit {
    fn parse_triple(hard: &str, soft: &str, seconds: &str) -> Result<OutputBufferLimit, String> {
        Ok(OutputBufferLimit {
            hard_bytes: memory_size(hard)?,
            soft_bytes: memory_size(soft)?,
            soft_seconds: seconds
                .parse()
                .map_err(|_| format!("'{seconds}' is not a number of seconds"))?,
        })
    }
}

/// Redis's three client classes, each with its own [`OutputBufferLimit`]:
/// `normal` clients, `replica` (kept for the syntax: kvserver has no
/// replicas) and `pubsub` (clients subscribed to a channel or pattern,
/// whose output grows with what *others* publish, not with what they ask).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputBufferLimits {
    pub normal: OutputBufferLimit,
    pub replica: OutputBufferLimit,
    pub pubsub: OutputBufferLimit,
}

impl Default for OutputBufferLimits {
    /// `normal`: 1 GiB hard, 256 MiB for 60 s — far above what back-pressure
    /// lets a pipelining client accumulate (see `server::worker`), so only
    /// replies that are huge by themselves (`KEYS *`, a giant `MGET`) to a
    /// client that stopped reading ever reach it. Redis's `0 0 0` would let
    /// such a client hold any amount. `replica` and `pubsub`: Redis's
    /// defaults (`256mb 64mb 60`, `32mb 8mb 60`).
    fn default() -> Self {
        OutputBufferLimits {
            normal: OutputBufferLimit {
                hard_bytes: 1 << 30,
                soft_bytes: 256 << 20,
                soft_seconds: 60,
            },
            replica: OutputBufferLimit {
                hard_bytes: 256 << 20,
                soft_bytes: 64 << 20,
                soft_seconds: 60,
            },
            pubsub: OutputBufferLimit {
                hard_bytes: 32 << 20,
                soft_bytes: 8 << 20,
                soft_seconds: 60,
            },
        }
    }
}

impl std::fmt::Display for OutputBufferLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, l)) in [
            ("normal", self.normal),
            ("replica", self.replica),
            ("pubsub", self.pubsub),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{name} {} {} {}", l.hard_bytes, l.soft_bytes, l.soft_seconds)?;
        }
        Ok(())
    }
}

impl OutputBufferLimits {
    /// Applies Redis's syntax to `self`: `<class> <hard> <soft> <seconds>`
    /// repeated (classes not named keep their limits; `slave` is `replica`),
    /// or kvserver's older `"hard soft seconds"` for the normal class.
    pub fn update(&mut self, text: &str) -> Result<(), String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        if let [hard, soft, seconds] = parts[..] {
            if hard.parse::<u64>().is_ok() || crate::memory::parse_bytes(hard).is_some() {
                self.normal = OutputBufferLimit::parse_triple(hard, soft, seconds)?;
                return Ok(());
            }
        }
        if parts.is_empty() || parts.len() % 4 != 0 {
            return Err(format!(
                "expected \"<class> <hard> <soft> <seconds>\" (class normal, replica or pubsub) repeated, got '{text}'"
            ));
        }
        let mut next = *self;
        for group in parts.chunks(4) {
            let limit = OutputBufferLimit::parse_triple(group[1], group[2], group[3])?;
            match group[0].to_ascii_lowercase().as_str() {
                "normal" => next.normal = limit,
                "replica" | "slave" => next.replica = limit,
                "pubsub" => next.pubsub = limit,
                other => {
                    return Err(format!(
                        "unknown client class '{other}' (normal, replica or pubsub)"
                    ))
                }
            }
        }
        *self = next;
        Ok(())
    }
}

impl std::str::FromStr for OutputBufferLimits {
    type Err = String;

    /// Classes not named in `text` keep their defaults.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut limits = OutputBufferLimits::default();
        limits.update(text)?;
        Ok(limits)
    }
}

/// A byte count with Redis's units, or an error naming the text.
fn memory_size(text: &str) -> Result<u64, String> {
    crate::memory::parse_bytes(text)
        .ok_or_else(|| format!("'{text}' is not a memory size (e.g. 100, 64mb, 2gb)"))
}

impl serde::Serialize for OutputBufferLimits {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for OutputBufferLimits {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Every setting of the server. See `kvserver.toml` for each key's documentation.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    pub bind: String,
    pub port: u16,
    pub dir: PathBuf,
    /// Worker threads; 0 = one per core.
    pub workers: usize,
    /// Most clients connected at once (Redis's `maxclients`).
    pub maxclients: usize,
    /// Redis's `normal|replica|pubsub hard soft seconds` per class: a client
    /// whose unsent replies exceed `hard` bytes, or stay above `soft` bytes
    /// for `seconds`, is disconnected.
    pub client_output_buffer_limit: OutputBufferLimits,
    pub requirepass: Option<String>,
    pub loglevel: String,
    pub inline_replies: InlineReplies,
    pub shards: usize,
    /// Idle seconds before a client is closed; 0 = never (Redis's `timeout`).
    pub timeout: u64,
    pub proto_max_bulk_len: usize,
    pub proto_inline_max_size: usize,
    pub proto_max_multibulk_len: usize,
    pub client_query_buffer_limit: usize,
    pub wal: bool,
    pub fsync: FsyncPolicy,
    pub flush_interval_ms: u64,
    pub wal_truncate_corrupt: bool,
    pub compact_min_size: u64,
    pub compact_growth_percent: u64,
    /// A hash with more fields than this uses a hashtable instead of a listpack.
    #[serde(alias = "hash-max-ziplist-entries")]
    pub hash_max_listpack_entries: usize,
    /// A hash with a longer field or value than this uses a hashtable.
    #[serde(alias = "hash-max-ziplist-value")]
    pub hash_max_listpack_value: usize,
    /// List node size: negative = bytes (-1 4 KiB … -5 64 KiB), positive = entries per node.
    #[serde(alias = "list-max-ziplist-size")]
    pub list_max_listpack_size: i64,
    /// Accepted for compatibility: list nodes are not compressed.
    pub list_compress_depth: u64,
    /// A set of integers only stays an intset up to this many members.
    pub set_max_intset_entries: usize,
    /// A small set stays a listpack up to this many members…
    pub set_max_listpack_entries: usize,
    /// …each at most this long; beyond either it becomes a hashtable.
    pub set_max_listpack_value: usize,
    /// A sorted set stays a listpack up to this many members…
    #[serde(alias = "zset-max-ziplist-entries")]
    pub zset_max_listpack_entries: usize,
    /// …each at most this long; beyond either it becomes a skiplist.
    #[serde(alias = "zset-max-ziplist-value")]
    pub zset_max_listpack_value: usize,
    /// Number of databases (`SELECT 0..databases-1`), as Redis's `databases`.
    pub databases: usize,
    /// Refuse non-loopback clients while no password is set (Redis's `protected-mode`).
    pub protected_mode: bool,
    /// Write the log to this file (plain text, appended; reopened on SIGHUP) instead of stderr.
    pub logfile: Option<PathBuf>,
    /// Memory limit in bytes (Redis units accepted in the file: `"100mb"`); 0 = none.
    #[serde(deserialize_with = "memory_amount")]
    pub maxmemory: u64,
    /// What to evict when over `maxmemory` (Redis's policy names).
    pub maxmemory_policy: EvictionPolicy,
    /// Keys sampled per eviction (Redis's `maxmemory-samples`).
    pub maxmemory_samples: u32,
    /// How slowly LFU counters saturate (Redis's `lfu-log-factor`).
    pub lfu_log_factor: u32,
    /// Minutes of idleness per LFU counter decrement (Redis's `lfu-decay-time`).
    pub lfu_decay_time: u32,
    /// Milliseconds a script may run before other clients of its shards get
    /// `-BUSY` and SCRIPT KILL may stop it; 0 = never busy (Redis's
    /// `busy-reply-threshold`, alias `lua-time-limit`).
    #[serde(alias = "lua-time-limit")]
    pub busy_reply_threshold: u64,
    /// Keyspace notification classes, Redis's letters (`KEA`, `Ex`…); empty = off.
    pub notify_keyspace_events: String,
    /// Most keys the client-side caching table remembers; 0 = no limit.
    pub tracking_table_max_keys: u64,
    /// The file this configuration was read from (`--config`), for `CONFIG REWRITE`.
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
}

/// Accepts a number of bytes or a string with Redis's units (`"100mb"`).
fn memory_amount<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Amount {
        Bytes(u64),
        Text(String),
    }
    match Amount::deserialize(d)? {
        Amount::Bytes(n) => Ok(n),
        Amount::Text(t) => crate::memory::parse_bytes(&t).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid memory amount '{t}' (use bytes or 100mb, 2gb, ...)"
            ))
        }),
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1".into(),
            port: 6380,
            dir: PathBuf::from("./data"),
            workers: 0,
            maxclients: 10_000,
            client_output_buffer_limit: OutputBufferLimits::default(),
            requirepass: None,
            loglevel: "info".into(),
            inline_replies: InlineReplies::Text,
            shards: 16,
            timeout: 0,
            proto_max_bulk_len: 512 * 1024 * 1024,
            proto_inline_max_size: 64 * 1024,
            proto_max_multibulk_len: 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            wal: true,
            fsync: FsyncPolicy::Interval,
            flush_interval_ms: 100,
            wal_truncate_corrupt: false,
            compact_min_size: 100 * 1000 * 1000,
            compact_growth_percent: 100,
            hash_max_listpack_entries: crate::store::hash::DEFAULT_MAX_LISTPACK_ENTRIES,
            hash_max_listpack_value: crate::store::hash::DEFAULT_MAX_LISTPACK_VALUE,
            list_max_listpack_size: -2,
            list_compress_depth: 0,
            set_max_intset_entries: 512,
            set_max_listpack_entries: 128,
            set_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            databases: crate::store::DEFAULT_DATABASES,
            protected_mode: true,
            logfile: None,
            maxmemory: 0,
            maxmemory_policy: EvictionPolicy::NoEviction,
            maxmemory_samples: 5,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            busy_reply_threshold: 5000,
            notify_keyspace_events: String::new(),
            tracking_table_max_keys: 1_000_000,
            config_file: None,
        }
    }
}

/// Command-line overrides; `None` leaves the file's (or default) value.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Overrides {
    /// Configuration file (TOML). Without it, built-in defaults apply.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1]
    #[arg(long)]
    pub bind: Option<String>,
    /// TCP port [default: 6380]; 0 picks a free port (logged at startup)
    #[arg(long)]
    pub port: Option<u16>,
    /// Data directory holding the WAL [default: ./data]
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Worker threads, each serving many clients; 0 = one per core [default: 0]
    #[arg(long)]
    pub workers: Option<usize>,
    /// Most clients connected at once [default: 10000]
    #[arg(long)]
    pub maxclients: Option<usize>,
    /// Require clients to AUTH with this password
    #[arg(long)]
    pub requirepass: Option<String>,
    /// Log level: error, warn, info, debug, trace (RUST_LOG wins if set) [default: info]
    #[arg(long)]
    pub loglevel: Option<String>,
    /// Reply encoding for text (inline) commands [default: text]
    #[arg(long, value_enum)]
    pub inline_replies: Option<InlineReplies>,
    /// Number of store shards, a power of two up to 64 [default: 16]
    #[arg(long)]
    pub shards: Option<usize>,
    /// Close clients idle for this many seconds; 0 = never [default: 0]
    #[arg(long)]
    pub timeout: Option<u64>,
    /// WAL fsync policy: always, interval, never [default: interval]
    #[arg(long)]
    pub fsync: Option<FsyncPolicy>,
    /// Milliseconds between background WAL flushes [default: 100]
    #[arg(long)]
    pub flush_interval_ms: Option<u64>,
    /// Disable the write-ahead log (pure in-memory cache)
    #[arg(long)]
    pub no_wal: bool,
    /// Start even if the WAL is corrupt mid-file, dropping everything from the corruption on
    #[arg(long)]
    pub wal_truncate_corrupt: bool,
    /// Number of databases, SELECT 0..N-1 [default: 16]
    #[arg(long)]
    pub databases: Option<usize>,
    /// Refuse non-loopback clients while no password is set: yes or no [default: yes]
    #[arg(long, value_name = "yes|no", value_parser = parse_yes_no)]
    pub protected_mode: Option<bool>,
    /// Log to this file (plain text, appended, reopened on SIGHUP) instead of stderr
    #[arg(long, value_name = "PATH")]
    pub logfile: Option<PathBuf>,
    /// Memory limit, in bytes or with Redis's units (100mb, 2gb); 0 = none [default: 0]
    #[arg(long, value_parser = parse_memory_flag)]
    pub maxmemory: Option<u64>,
    /// Eviction policy when over maxmemory: noeviction, allkeys-lru, allkeys-lfu, allkeys-random,
    /// volatile-lru, volatile-lfu, volatile-random, volatile-ttl [default: noeviction]
    #[arg(long, value_parser = parse_policy_flag)]
    pub maxmemory_policy: Option<EvictionPolicy>,
}

/// Redis spells booleans `yes`/`no`; `true`/`false` are accepted too.
fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(format!("expected yes or no, got '{s}'")),
    }
}

fn parse_memory_flag(s: &str) -> Result<u64, String> {
    crate::memory::parse_bytes(s)
        .ok_or_else(|| format!("invalid memory amount '{s}' (use bytes or 100mb, 2gb, ...)"))
}

fn parse_policy_flag(s: &str) -> Result<EvictionPolicy, String> {
    EvictionPolicy::parse(s).ok_or_else(|| format!("invalid maxmemory-policy '{s}'"))
}

impl Config {
    /// Builds the effective configuration from the optional file and overrides.
    pub fn load(overrides: &Overrides) -> anyhow::Result<Config> {
        let mut config = match &overrides.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply(overrides);
        config.config_file = overrides.config.clone();
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML file; unknown keys are errors naming the key.
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    fn apply(&mut self, o: &Overrides) {
        if let Some(v) = &o.bind {
            self.bind = v.clone();
        }
        if let Some(v) = o.port {
            self.port = v;
        }
        if let Some(v) = &o.dir {
            self.dir = v.clone();
        }
        if let Some(v) = o.workers {
            self.workers = v;
        }
        if let Some(v) = o.maxclients {
            self.maxclients = v;
        }
        if let Some(v) = &o.requirepass {
            self.requirepass = Some(v.clone());
        }
        if let Some(v) = &o.loglevel {
            self.loglevel = v.clone();
        }
        if let Some(v) = o.inline_replies {
            self.inline_replies = v;
        }
        if let Some(v) = o.shards {
            self.shards = v;
        }
        if let Some(v) = o.timeout {
            self.timeout = v;
        }
        if let Some(v) = o.fsync {
            self.fsync = v;
        }
        if let Some(v) = o.flush_interval_ms {
            self.flush_interval_ms = v;
        }
        if o.no_wal {
            self.wal = false;
        }
        if o.wal_truncate_corrupt {
            self.wal_truncate_corrupt = true;
        }
        if let Some(v) = o.databases {
            self.databases = v;
        }
        if let Some(v) = o.protected_mode {
            self.protected_mode = v;
        }
        if let Some(v) = &o.logfile {
            self.logfile = Some(v.clone());
        }
        if let Some(v) = o.maxmemory {
            self.maxmemory = v;
        }
        if let Some(v) = o.maxmemory_policy {
            self.maxmemory_policy = v;
        }
    }

    /// The number of worker threads to start: `workers`, or one per core.
    pub fn worker_threads(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// Rejects values the server cannot run with, naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.workers > MAX_WORKERS {
            bail!(
                "workers must be between 0 (one per core) and {MAX_WORKERS} (got {})",
                self.workers
            );
        }
        if self.maxclients == 0 || self.maxclients > MAX_CLIENTS {
            bail!(
                "maxclients must be between 1 and {MAX_CLIENTS} (got {})",
                self.maxclients
            );
        }
        if !self.shards.is_power_of_two() || self.shards > crate::store::MAX_SHARDS {
            bail!(
                "shards must be a power of two between 1 and {} (got {})",
                crate::store::MAX_SHARDS,
                self.shards
            );
        }
        if self.databases == 0 || self.databases > crate::store::MAX_DATABASES {
            bail!(
                "databases must be between 1 and {} (got {})",
                crate::store::MAX_DATABASES,
                self.databases
            );
        }
        if self.flush_interval_ms == 0 || self.flush_interval_ms > 60_000 {
            bail!(
                "flush-interval-ms must be between 1 and 60000 (got {})",
                self.flush_interval_ms
            );
        }
        if crate::notify::Classes::parse(&self.notify_keyspace_events).is_none() {
            bail!(
                "notify-keyspace-events: invalid event class in '{}' (use the letters of 'Ag$lshzxeKEtmdn')",
                self.notify_keyspace_events
            );
        }
        if self.proto_max_bulk_len == 0 {
            bail!("proto-max-bulk-len must be positive");
        }
        if self.proto_inline_max_size < 1024 {
            bail!(
                "proto-inline-max-size must be at least 1024 (got {})",
                self.proto_inline_max_size
            );
        }
        if self.proto_max_multibulk_len == 0 {
            bail!("proto-max-multibulk-len must be positive");
        }
        if self.client_query_buffer_limit < self.proto_inline_max_size {
            bail!("client-query-buffer-limit must be at least proto-inline-max-size");
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.loglevel.as_str()) {
            bail!(
                "loglevel must be one of error, warn, info, debug, trace (got '{}')",
                self.loglevel
            );
        }
        if self.requirepass.as_deref() == Some("") {
            bail!("requirepass must not be empty (omit it to disable authentication)");
        }
        if !(1..=64).contains(&self.maxmemory_samples) {
            bail!(
                "maxmemory-samples must be between 1 and 64 (got {})",
                self.maxmemory_samples
            );
        }
        if self.proto_max_bulk_len > i32::MAX as usize {
            bail!(
                "proto-max-bulk-len must be at most {} (got {})",
                i32::MAX,
                self.proto_max_bulk_len
            );
        }
        Ok(())
    }

    /// The `CONFIG GET` view: (name, value) for every setting, plus the
    /// Redis names redis-benchmark and clients ask for.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("bind", self.bind.clone()),
            ("port", self.port.to_string()),
            ("dir", self.dir.display().to_string()),
            ("workers", self.workers.to_string()),
            ("maxclients", self.maxclients.to_string()),
            (
                "client-output-buffer-limit",
                self.client_output_buffer_limit.to_string(),
            ),
            ("requirepass", self.requirepass.clone().unwrap_or_default()),
            ("notify-keyspace-events", self.notify_keyspace_events.clone()),
            (
                "tracking-table-max-keys",
                self.tracking_table_max_keys.to_string(),
            ),
            ("loglevel", self.loglevel.clone()),
            (
                "inline-replies",
                match self.inline_replies {
                    InlineReplies::Text => "text".into(),
                    InlineReplies::Resp => "resp".into(),
                },
            ),
            ("shards", self.shards.to_string()),
            ("timeout", self.timeout.to_string()),
            ("proto-max-bulk-len", self.proto_max_bulk_len.to_string()),
            ("proto-inline-max-size", self.proto_inline_max_size.to_string()),
            (
                "proto-max-multibulk-len",
                self.proto_max_multibulk_len.to_string(),
            ),
            (
                "client-query-buffer-limit",
                self.client_query_buffer_limit.to_string(),
            ),
            ("wal", if self.wal { "yes" } else { "no" }.into()),
            ("appendonly", if self.wal { "yes" } else { "no" }.into()),
            ("fsync", self.fsync.as_str().into()),
            (
                "appendfsync",
                match self.fsync {
                    FsyncPolicy::Always => "always",
                    FsyncPolicy::Interval => "everysec",
                    FsyncPolicy::Never => "no",
                }
                .into(),
            ),
            ("flush-interval-ms", self.flush_interval_ms.to_string()),
            (
                "wal-truncate-corrupt",
                if self.wal_truncate_corrupt { "yes" } else { "no" }.into(),
            ),
            ("compact-min-size", self.compact_min_size.to_string()),
            ("compact-growth-percent", self.compact_growth_percent.to_string()),
            (
                "hash-max-listpack-entries",
                self.hash_max_listpack_entries.to_string(),
            ),
            (
                "hash-max-listpack-value",
                self.hash_max_listpack_value.to_string(),
            ),
            (
                "hash-max-ziplist-entries",
                self.hash_max_listpack_entries.to_string(),
            ),
            ("hash-max-ziplist-value", self.hash_max_listpack_value.to_string()),
            ("list-max-listpack-size", self.list_max_listpack_size.to_string()),
            ("list-max-ziplist-size", self.list_max_listpack_size.to_string()),
            ("list-compress-depth", self.list_compress_depth.to_string()),
            ("set-max-intset-entries", self.set_max_intset_entries.to_string()),
            (
                "set-max-listpack-entries",
                self.set_max_listpack_entries.to_string(),
            ),
            ("set-max-listpack-value", self.set_max_listpack_value.to_string()),
            (
                "zset-max-listpack-entries",
                self.zset_max_listpack_entries.to_string(),
            ),
            (
                "zset-max-listpack-value",
                self.zset_max_listpack_value.to_string(),
            ),
            (
                "zset-max-ziplist-entries",
                self.zset_max_listpack_entries.to_string(),
            ),
            ("zset-max-ziplist-value", self.zset_max_listpack_value.to_string()),
            ("maxmemory", self.maxmemory.to_string()),
            ("maxmemory-policy", self.maxmemory_policy.as_str().into()),
            ("maxmemory-samples", self.maxmemory_samples.to_string()),
            ("lfu-log-factor", self.lfu_log_factor.to_string()),
            ("lfu-decay-time", self.lfu_decay_time.to_string()),
            ("busy-reply-threshold", self.busy_reply_threshold.to_string()),
            ("lua-time-limit", self.busy_reply_threshold.to_string()),
            ("save", String::new()),
            ("databases", self.databases.to_string()),
            (
                "protected-mode",
                if self.protected_mode { "yes" } else { "no" }.into(),
            ),
            (
                "logfile",
                self.logfile
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = toml::from_str::<Config>("prot = 1").unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
        let err = toml::from_str::<Config>("fsync = \"sometimes\"").unwrap_err();
        assert!(err.to_string().contains("sometimes"), "{err}");
        let config = Config {
            shards: 3,
            ..Config::default()
        };
        assert!(config.validate().unwrap_err().to_string().contains("shards"));
    }

    #[test]
    fn the_repository_kvserver_toml_is_the_defaults() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/kvserver.toml")).unwrap();
        let file: Config = toml::from_str(&text).unwrap();
        assert_eq!(
            format!("{:?}", file.entries()),
            format!("{:?}", Config::default().entries())
        );
    }
}
