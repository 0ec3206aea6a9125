//! Eviction under `maxmemory`: Redis's eight policies, approximated by
//! sampling as Redis does.
//!
//! Every entry carries a 4-byte `access` word (it fits in what was padding,
//! so the slot did not grow):
//!
//! * **LRU** (every policy except the LFU ones): the low 32 bits of the unix
//!   time in milliseconds of the last access. Idle time is a wrapping
//!   subtraction, so it is exact for idle times under 49 days; a key idle
//!   longer looks younger than it is (Redis's 24-bit seconds clock wraps
//!   after 194 days for the same reason).
//! * **LFU** (`allkeys-lfu`, `volatile-lfu`): Redis's layout — the time of
//!   the last decrement in minutes (16 bits) and a logarithmic counter
//!   (8 bits), incremented with probability `1 / ((counter - 5) ×
//!   lfu-log-factor + 1)` and decremented by one every `lfu-decay-time`
//!   minutes of idleness.
//!
//! The word is updated under the shard lock the access already holds, so
//! tracking costs no extra synchronisation. The mode and the LFU parameters
//! are process-wide atomics (one server per process).
//!
//! To evict, a thread samples `maxmemory-samples` entries of one random
//! shard into its own pool of the best [`POOL_SIZE`] candidates seen so far
//! (Redis's eviction pool, kept per thread so that there is no global lock),
//! then removes the best candidate through the ordinary delete path
//! ([`ShardMap::remove`]). A candidate that was accessed after it was sampled
//! is skipped rather than evicted.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::{now_ms, random_u64, Entry, ShardMap, Store};

/// Candidates kept between evictions (Redis's `EVPOOL_SIZE`).
pub const POOL_SIZE: usize = 16;
/// A new key's LFU counter, so it is not evicted before it had a chance (Redis's `LFU_INIT_VAL`).
pub const LFU_INIT_VAL: u32 = 5;

static LFU_MODE: AtomicBool = AtomicBool::new(false);
static LFU_LOG_FACTOR: AtomicU32 = AtomicU32::new(10);
static LFU_DECAY_TIME: AtomicU32 = AtomicU32::new(1);

/// Redis's `maxmemory-policy` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EvictionPolicy {
    /// Refuse writes that need memory (`-OOM`).
    #[default]
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl EvictionPolicy {
    /// Every policy, in Redis's order (for error messages).
    pub const ALL: [EvictionPolicy; 8] = [
        EvictionPolicy::VolatileLru,
        EvictionPolicy::VolatileLfu,
        EvictionPolicy::VolatileRandom,
        EvictionPolicy::VolatileTtl,
        EvictionPolicy::AllKeysLru,
        EvictionPolicy::AllKeysLfu,
        EvictionPolicy::AllKeysRandom,
        EvictionPolicy::NoEviction,
    ];

    /// The Redis name.
    pub fn as_str(self) -> &'static str {
        match self {
            EvictionPolicy::NoEviction => "noeviction",
            EvictionPolicy::AllKeysLru => "allkeys-lru",
            EvictionPolicy::AllKeysLfu => "allkeys-lfu",
            EvictionPolicy::AllKeysRandom => "allkeys-random",
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::VolatileLfu => "volatile-lfu",
            EvictionPolicy::VolatileRandom => "volatile-random",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
        }
    }

    /// Parses a Redis name, case-insensitively.
    pub fn parse(name: &str) -> Option<EvictionPolicy> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(name))
    }

    /// Only keys with a TTL may be evicted.
    pub fn is_volatile(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru
                | EvictionPolicy::VolatileLfu
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
        )
    }

    /// The access word holds an LFU counter.
    pub fn is_lfu(self) -> bool {
        matches!(self, EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu)
    }

    fn is_random(self) -> bool {
        matches!(
            self,
            EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom
        )
    }

    /// The small-integer form stored in an atomic.
    pub fn to_u8(self) -> u8 {
        Self::ALL.iter().position(|&p| p == self).unwrap_or(7) as u8
    }

    /// Inverse of [`EvictionPolicy::to_u8`].
    pub fn from_u8(v: u8) -> EvictionPolicy {
        Self::ALL.get(v as usize).copied().unwrap_or_default()
    }
}

impl serde::Serialize for EvictionPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EvictionPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        EvictionPolicy::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown maxmemory-policy '{name}' (expected one of {})",
                EvictionPolicy::ALL.map(|p| p.as_str()).join(", ")
            ))
        })
    }
}

/// Switches what new accesses record (LFU counter or LRU clock). Existing
/// words are reinterpreted, as in Redis: it takes a while to adjust.
pub fn set_lfu_mode(lfu: bool) {
    LFU_MODE.store(lfu, Ordering::Relaxed);
}

/// True if accesses record LFU counters.
pub fn lfu_mode() -> bool {
    LFU_MODE.load(Ordering::Relaxed)
}

/// Sets `lfu-log-factor` and `lfu-decay-time`.
pub fn set_lfu_params(log_factor: u32, decay_time: u32) {
    LFU_LOG_FACTOR.store(log_factor, Ordering::Relaxed);
    LFU_DECAY_TIME.store(decay_time, Ordering::Relaxed);
}

fn minutes(now: u64) -> u32 {
    ((now / 60_000) & 0xFFFF) as u32
}

/// The access word of a key created now.
pub fn initial_access() -> u32 {
    let now = now_ms();
    if lfu_mode() {
        minutes(now) << 8 | LFU_INIT_VAL
    } else {
        now as u32
    }
}

thread_local! {
    /// Set while a command of a `CLIENT NO-TOUCH ON` client runs (see
    /// [`without_touching`]).
    static NO_TOUCH: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with access-time updates suppressed on this thread when
/// `suppress` is true: `CLIENT NO-TOUCH ON` (Redis 7.2), whose reads must not
/// make a key look recently used. The flag lives with the access clock so
/// every lookup path honours it without each taking a parameter.
#[inline]
pub fn without_touching<R>(suppress: bool, f: impl FnOnce() -> R) -> R {
    if !suppress {
        return f();
    }
    /// Clears the flag however `f` ends.
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            NO_TOUCH.with(|flag| flag.set(false));
        }
    }
    NO_TOUCH.with(|flag| flag.set(true));
    let _restore = Restore;
    f()
}

/// The access word after an access at `now` (unix ms); unchanged while
/// [`without_touching`] suppresses updates.
#[inline]
pub fn touched(access: u32, now: u64) -> u32 {
    if NO_TOUCH.with(Cell::get) {
        return access;
    }
    if !lfu_mode() {
        return now as u32;
    }
    let counter = log_incr(lfu_counter(access, now));
    minutes(now) << 8 | counter
}

/// Milliseconds since the last access, under LRU.
pub fn idle_ms(access: u32, now: u64) -> u64 {
    u64::from((now as u32).wrapping_sub(access))
}

/// The LFU counter after decay for the minutes elapsed since its last decrement.
pub fn lfu_counter(access: u32, now: u64) -> u32 {
    let last = (access >> 8) & 0xFFFF;
    let counter = access & 0xFF;
    let now_min = minutes(now);
    let elapsed = if now_min >= last {
        now_min - last
    } else {
        65_535 - last + now_min
    };
    let decay = LFU_DECAY_TIME.load(Ordering::Relaxed);
    let periods = elapsed.checked_div(decay).unwrap_or(0);
    counter.saturating_sub(periods)
}

fn log_incr(counter: u32) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * f64::from(LFU_LOG_FACTOR.load(Ordering::Relaxed)) + 1.0);
    let r = (random_u64() >> 11) as f64 / (1u64 << 53) as f64;
    if r < p {
        counter + 1
    } else {
        counter
    }
}

/// How much `slot` deserves eviction under `policy`: higher goes first.
fn score(policy: EvictionPolicy, slot: Entry<'_>, now: u64) -> u64 {
    match policy {
        EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu => {
            255 - u64::from(lfu_counter(slot.access(), now))
        }
        EvictionPolicy::VolatileTtl => u64::MAX - slot.expires_at().unwrap_or(u64::MAX),
        _ => idle_ms(slot.access(), now),
    }
}

/// One eviction candidate.
struct Candidate {
    score: u64,
    key: Vec<u8>,
}

thread_local! {
    static POOL: RefCell<Vec<Candidate>> = const { RefCell::new(Vec::new()) };
}

/// Samples up to `samples` entries of `map` into `pool`, keeping the best [`POOL_SIZE`].
fn populate(pool: &mut Vec<Candidate>, map: &ShardMap, policy: EvictionPolicy, samples: usize, now: u64) {
    for _ in 0..samples {
        let index = if policy.is_volatile() {
            map.random_ttl_slot(random_u64)
        } else {
            map.random_slot(random_u64)
        };
        let Some(slot) = index.and_then(|i| map.slot(i)) else {
            break;
        };
        // The score needs only the slot; the key (another cache line) is read
        // only for a sample that makes it into the pool.
        let score = score(policy, slot, now);
        let worst = pool
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.score)
            .map(|(i, c)| (i, c.score));
        let replace = match worst {
            _ if pool.len() < POOL_SIZE => None,
            Some((i, worst_score)) if score > worst_score => Some(i),
            _ => continue,
        };
        if pool.iter().any(|c| c.key == slot.key()) {
            continue;
        }
        match replace {
            Some(i) => {
                let c = &mut pool[i];
                c.score = score;
                c.key.clear();
                c.key.extend_from_slice(slot.key());
            }
            None => pool.push(Candidate {
                score,
                key: slot.key().to_vec(),
            }),
        }
    }
}

impl Store {
    /// Evicts one key under `policy`, calling `on_evict(key)` while its shard
    /// is still locked (the caller logs the delete to the WAL there, so log
    /// order equals memory order). Returns false if no key can be evicted:
    /// `noeviction`, an empty store, or no key with a TTL for `volatile-*`.
    pub fn evict_one(&self, policy: EvictionPolicy, samples: usize, on_evict: &mut dyn FnMut(&[u8])) -> bool {
        if policy == EvictionPolicy::NoEviction {
            return false;
        }
        let now = now_ms();
        let n = self.shard_count();
        if policy.is_random() {
            let start = random_u64() as usize % n;
            for k in 0..n {
                let mut map = self.lock((start + k) % n);
                let index = if policy.is_volatile() {
                    map.random_ttl_slot(random_u64)
                } else {
                    map.random_slot(random_u64)
                };
                let Some(key) = index.and_then(|i| map.slot(i)).map(|s| s.key().to_vec()) else {
                    continue;
                };
                self.evict_locked(&mut map, &key, on_evict);
                return true;
            }
            return false;
        }
        POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            let samples = samples.max(1);
            // Candidates can vanish (deleted or evicted by another thread) or turn
            // out to have been accessed since they were sampled; a few rounds of
            // fresh samples get past that, the last one accepts a stale choice.
            const ROUNDS: usize = 8;
            for round in 0..ROUNDS {
                // One random shard per eviction, as Redis samples one database;
                // sweep them all only when the pool has nothing to offer.
                let start = random_u64() as usize % n;
                populate(&mut pool, &self.lock(start), policy, samples, now);
                if pool.is_empty() {
                    for k in 1..n {
                        populate(&mut pool, &self.lock((start + k) % n), policy, samples, now);
                    }
                    if pool.is_empty() {
                        return false;
                    }
                }
                while let Some(best) = pool
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, c)| c.score)
                    .map(|(i, _)| i)
                {
                    let candidate = pool.swap_remove(best);
                    let hash = self.hash(&candidate.key);
                    let mut map = self.lock(self.shard_of(hash));
                    let Some(slot) = map.get_raw(hash, &candidate.key) else {
                        continue;
                    };
                    if policy.is_volatile() && slot.expires_at().is_none() {
                        continue;
                    }
                    // Accessed since it was sampled: no longer the best choice.
                    if score(policy, slot, now) < candidate.score && round + 1 < ROUNDS {
                        continue;
                    }
                    self.evict_locked(&mut map, &candidate.key, on_evict);
                    return true;
                }
            }
            false
        })
    }

    fn evict_locked(&self, map: &mut ShardMap, key: &[u8], on_evict: &mut dyn FnMut(&[u8])) {
        map.remove(self.hash(key), key);
        map.evicted += 1;
        on_evict(key);
    }

    /// Keys evicted since start or the last counter reset.
    pub fn evicted(&self) -> u64 {
        // Uncounted: STATS and INFO read this, and must not inflate the lock counter they report.
        (0..self.shard_count())
            .map(|i| self.lock_uncounted(i).evicted)
            .sum()
    }

    /// Zeroes the expired and evicted counters (`CONFIG RESETSTAT`).
    pub fn reset_counters(&self) {
        for i in 0..self.shard_count() {
            let mut map = self.lock(i);
            map.expired = 0;
            map.evicted = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_through_their_names_and_atomics() {
        for p in EvictionPolicy::ALL {
            assert_eq!(EvictionPolicy::parse(p.as_str()), Some(p));
            assert_eq!(EvictionPolicy::from_u8(p.to_u8()), p);
        }
        assert_eq!(
            EvictionPolicy::parse("ALLKEYS-LRU"),
            Some(EvictionPolicy::AllKeysLru)
        );
        assert_eq!(EvictionPolicy::parse("lru"), None);
    }

    #[test]
    fn lfu_counters_grow_logarithmically_and_decay_by_the_minute() {
        let now = 10 * 60_000;
        let mut access = minutes(now) << 8 | LFU_INIT_VAL;
        // `touched` follows the global mode; exercise the LFU arithmetic directly.
        for _ in 0..1000 {
            access = minutes(now) << 8 | log_incr(lfu_counter(access, now));
        }
        let counter = lfu_counter(access, now);
        assert!(counter > LFU_INIT_VAL + 5 && counter < 64, "{counter}");
        // Three idle minutes take three off with lfu-decay-time 1.
        assert_eq!(lfu_counter(access, now + 3 * 60_000), counter - 3);
    }

    #[test]
    fn lru_idle_time_survives_the_32_bit_wrap() {
        let before_wrap = (1u64 << 32) - 10;
        let access = before_wrap as u32;
        assert_eq!(idle_ms(access, before_wrap + 25), 25);
    }

    #[test]
    fn volatile_policies_only_evict_keys_with_a_ttl() {
        let store = Store::new(4);
        for i in 0..50u32 {
            let key = format!("k{i}");
            let hash = store.hash(key.as_bytes());
            let expiry = if i < 5 { u64::MAX / 2 } else { 0 };
            store
                .lock(store.shard_of(hash))
                .set(hash, key.as_bytes(), b"v", expiry);
        }
        let mut evicted = Vec::new();
        for policy in [
            EvictionPolicy::VolatileTtl,
            EvictionPolicy::VolatileRandom,
            EvictionPolicy::VolatileLru,
        ] {
            while store.evict_one(policy, 5, &mut |k| evicted.push(k.to_vec())) {}
        }
        evicted.sort();
        let expected: Vec<Vec<u8>> = (0..5).map(|i| format!("k{i}").into_bytes()).collect();
        assert_eq!(evicted, expected);
        assert_eq!(store.len(), 45);
        assert_eq!(store.evicted(), 5);
        assert!(!store.evict_one(EvictionPolicy::NoEviction, 5, &mut |_| {}));
        while store.evict_one(EvictionPolicy::AllKeysLru, 5, &mut |_| {}) {}
        assert!(store.is_empty());
    }

    #[test]
    fn volatile_ttl_evicts_the_nearest_expiry_first() {
        let store = Store::new(1);
        for i in 1..=20u64 {
            let key = format!("k{i}");
            let hash = store.hash(key.as_bytes());
            store
                .lock(0)
                .set(hash, key.as_bytes(), b"v", now_ms() + i * 1_000_000);
        }
        let mut first = Vec::new();
        for _ in 0..5 {
            store.evict_one(EvictionPolicy::VolatileTtl, 200, &mut |k| first.push(k.to_vec()));
        }
        // With 200 samples of 20 keys, every key is all but surely seen.
        let expected: Vec<Vec<u8>> = (1..=5).map(|i| format!("k{i}").into_bytes()).collect();
        assert_eq!(first, expected);
    }
}
