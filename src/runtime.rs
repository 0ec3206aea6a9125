//! The settings that can change while the server runs (`CONFIG SET`).
//!
//! [`RuntimeConfig`] holds the effective [`Config`] (what `CONFIG GET` and
//! `CONFIG REWRITE` show) behind a small `RwLock` that only `CONFIG`
//! commands take, plus an atomic copy of every value a request reads on its
//! hot path (`maxmemory`, the policy, whether a password is set, `timeout`,
//! `maxclients`), so no request ever takes that lock except `AUTH`.
//!
//! Changes with effects elsewhere are pushed there by [`RuntimeConfig::apply`]:
//! the WAL's live tuning, the LFU mode and parameters of `store::evict`, and
//! the log filter through the reloader `main` installs.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::RwLock;

use crate::config::Config;
use crate::store::evict;
use crate::store::EvictionPolicy;
use crate::wal::Wal;

/// Changes the log filter to a level name; installed once by the binary.
pub type LogReloader = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

static LOG_RELOADER: OnceLock<LogReloader> = OnceLock::new();

/// Installs the function `CONFIG SET loglevel` calls (the binary's tracing
/// reload handle). Without one, the level is recorded but logging is unchanged.
pub fn install_log_reloader(reloader: LogReloader) {
    let _ = LOG_RELOADER.set(reloader);
}

/// Live settings; see the module doc.
pub struct RuntimeConfig {
    effective: RwLock<Config>,
    maxmemory: AtomicU64,
    policy: AtomicU8,
    samples: AtomicU32,
    timeout: AtomicU64,
    maxclients: AtomicUsize,
    requirepass_set: AtomicBool,
    busy_reply_threshold: AtomicU64,
    /// `client-output-buffer-limit`, normal then pubsub class: hard, soft, seconds.
    output_limits: [AtomicU64; 6],
}

impl RuntimeConfig {
    /// Starts from the configuration the server was started with.
    pub fn new(config: &Config) -> RuntimeConfig {
        let runtime = RuntimeConfig {
            effective: RwLock::new(config.clone()),
            maxmemory: AtomicU64::new(0),
            policy: AtomicU8::new(0),
            samples: AtomicU32::new(5),
            timeout: AtomicU64::new(0),
            maxclients: AtomicUsize::new(0),
            requirepass_set: AtomicBool::new(false),
            busy_reply_threshold: AtomicU64::new(5000),
            output_limits: Default::default(),
        };
        runtime.publish(config);
        runtime
    }

    /// A copy of the effective configuration (`CONFIG GET`, `CONFIG REWRITE`).
    pub fn snapshot(&self) -> Config {
        self.effective.read().clone()
    }

    /// Replaces the effective configuration with `next` (already validated)
    /// and pushes every change to where it takes effect. The WAL, when there
    /// is one, gets the new fsync policy, flush interval and thresholds.
    pub fn apply(&self, next: Config, wal: Option<&Wal>) {
        let mut effective = self.effective.write();
        if next.loglevel != effective.loglevel {
            if let Some(reload) = LOG_RELOADER.get() {
                if let Err(e) = reload(&next.loglevel) {
                    tracing::warn!("cannot change the log level: {e}");
                }
            }
        }
        if let Some(wal) = wal {
            wal.set_fsync(next.fsync);
            wal.set_flush_interval(Duration::from_millis(next.flush_interval_ms));
            wal.set_compaction_thresholds(next.compact_min_size, next.compact_growth_percent);
        }
        self.publish(&next);
        *effective = next;
    }

    fn publish(&self, config: &Config) {
        self.maxmemory.store(config.maxmemory, Ordering::Relaxed);
        self.policy
            .store(config.maxmemory_policy.to_u8(), Ordering::Relaxed);
        self.samples.store(config.maxmemory_samples, Ordering::Relaxed);
        self.timeout.store(config.timeout, Ordering::Relaxed);
        self.busy_reply_threshold
            .store(config.busy_reply_threshold, Ordering::Relaxed);
        self.maxclients.store(config.maxclients, Ordering::Relaxed);
        self.requirepass_set
            .store(config.requirepass.is_some(), Ordering::Release);
        let limits = &config.client_output_buffer_limit;
        for (i, l) in [limits.normal, limits.pubsub].into_iter().enumerate() {
            self.output_limits[3 * i].store(l.hard_bytes, Ordering::Relaxed);
            self.output_limits[3 * i + 1].store(l.soft_bytes, Ordering::Relaxed);
            self.output_limits[3 * i + 2].store(l.soft_seconds, Ordering::Relaxed);
        }
        crate::notify::set_classes(
            crate::notify::Classes::parse(&config.notify_keyspace_events).unwrap_or_default(),
        );
        crate::tracking::set_max_keys(config.tracking_table_max_keys);
        evict::set_lfu_mode(config.maxmemory_policy.is_lfu());
        evict::set_lfu_params(config.lfu_log_factor, config.lfu_decay_time);
    }

    /// `busy-reply-threshold` in milliseconds; 0 = scripts are never busy.
    pub fn busy_reply_threshold_ms(&self) -> u64 {
        self.busy_reply_threshold.load(Ordering::Relaxed)
    }

    /// `maxmemory` in bytes; 0 = no limit.
    #[inline]
    pub fn maxmemory(&self) -> u64 {
        self.maxmemory.load(Ordering::Relaxed)
    }

    /// `maxmemory-policy`.
    #[inline]
    pub fn policy(&self) -> EvictionPolicy {
        EvictionPolicy::from_u8(self.policy.load(Ordering::Relaxed))
    }

    /// `maxmemory-samples`.
    pub fn samples(&self) -> usize {
        self.samples.load(Ordering::Relaxed) as usize
    }

    /// `timeout`: idle seconds before a client is closed; 0 = never.
    pub fn timeout(&self) -> u64 {
        self.timeout.load(Ordering::Relaxed)
    }

    /// The `client-output-buffer-limit` of a client's class: `pubsub` for
    /// a subscribed client, `normal` otherwise (three relaxed loads).
    pub fn output_limit(&self, pubsub: bool) -> crate::config::OutputBufferLimit {
        let base = if pubsub { 3 } else { 0 };
        crate::config::OutputBufferLimit {
            hard_bytes: self.output_limits[base].load(Ordering::Relaxed),
            soft_bytes: self.output_limits[base + 1].load(Ordering::Relaxed),
            soft_seconds: self.output_limits[base + 2].load(Ordering::Relaxed),
        }
    }

    /// `maxclients`: most clients connected at once.
    pub fn maxclients(&self) -> usize {
        self.maxclients.load(Ordering::Relaxed)
    }

    /// True if clients must authenticate (`requirepass` is set).
    #[inline]
    pub fn requirepass_set(&self) -> bool {
        self.requirepass_set.load(Ordering::Acquire)
    }

    /// The password in force, if any (AUTH compares against it).
    pub fn requirepass(&self) -> Option<String> {
        self.effective.read().requirepass.clone()
    }
}
