//! Memory accounting: a counting global allocator behind `used_memory`.
//!
//! The `kvserver` binary installs [`CountingAllocator`] as its global
//! allocator (the library does not, so tests and tools may bring their own).
//! Every allocation the process makes then goes through it,
//! which forwards to the system allocator (glibc malloc) and adds the size of
//! the chunk malloc really hands out — the request rounded up to 16 bytes plus
//! malloc's 8-byte header, as `malloc_usable_size` + 8 would say — so that the
//! figure tracks RSS growth rather than the bytes asked for.
//!
//! # Why a counting allocator and not jemalloc
//! Measured with `benches/rss.sh`'s load (1 M SETs of 100-byte values), the
//! same binary used 195.8 B/key of RSS on glibc malloc and 225.1 B/key with
//! jemalloc 5.3 preloaded (`LD_PRELOAD=libjemalloc.so.2`). jemalloc would
//! have given us statistics for free, but it costs more memory for this
//! workload, so we keep glibc and count ourselves.
//!
//! # Why per-thread deltas
//! A single shared counter updated on every malloc and free would bounce one
//! cache line between all cores on the hot path. Each thread instead keeps a
//! signed delta in a thread-local and folds it into the shared total when it
//! passes ±[`FLUSH_BYTES`]; the shared total is therefore exact to within
//! `threads × FLUSH_BYTES` and is touched once per few kilobytes of net
//! allocation, not once per malloc. [`used_precise`] adds the calling thread's
//! own pending delta, which is what the eviction loop wants after it frees.
//! A thread that exits takes its pending delta (< `FLUSH_BYTES`) with it: the
//! thread-local has no destructor, because registering one could allocate
//! inside the allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};

/// A thread's net allocation is folded into the shared total past this many bytes.
pub const FLUSH_BYTES: i64 = 8 * 1024;

/// Net bytes allocated by the process, as flushed by the threads.
static USED: AtomicI64 = AtomicI64::new(0);
/// Highest value `USED` reached (`used_memory_peak`).
static PEAK: AtomicI64 = AtomicI64::new(0);

thread_local! {
    static PENDING: Cell<i64> = const { Cell::new(0) };
}

/// The system allocator, counted. `src/main.rs` installs it as the
/// `#[global_allocator]`.
pub struct CountingAllocator;

/// The bytes malloc really uses for a request of `size` bytes (glibc: an
/// 8-byte header, 16-byte granularity, 32-byte minimum chunk; large requests
/// are page-rounded mappings).
#[inline]
pub fn chunk_size(size: usize) -> usize {
    if size >= 128 * 1024 {
        (size + 16 + 4095) & !4095
    } else {
        ((size + 8 + 15) & !15).max(32)
    }
}

#[inline]
fn account(delta: i64) {
    let flushed = PENDING.try_with(|pending| {
        let v = pending.get() + delta;
        if v.abs() >= FLUSH_BYTES {
            pending.set(0);
            publish(v);
        } else {
            pending.set(v);
        }
    });
    if flushed.is_err() {
        publish(delta);
    }
}

#[inline]
fn publish(delta: i64) {
    let now = USED.fetch_add(delta, Ordering::Relaxed) + delta;
    if delta > 0 && now > PEAK.load(Ordering::Relaxed) {
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments and
// only adds bookkeeping on thread-locals and atomics, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            account(chunk_size(layout.size()) as i64);
        }
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            account(chunk_size(layout.size()) as i64);
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        account(-(chunk_size(layout.size()) as i64));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() {
            account(chunk_size(new_size) as i64 - chunk_size(layout.size()) as i64);
        }
        new
    }
}

/// Bytes allocated by the whole process (`used_memory`), exact to within
/// `threads × FLUSH_BYTES`. Never negative.
pub fn used() -> u64 {
    USED.load(Ordering::Relaxed).max(0) as u64
}

/// [`used`] plus the calling thread's not yet published delta.
pub fn used_precise() -> u64 {
    let own = PENDING.try_with(Cell::get).unwrap_or(0);
    (USED.load(Ordering::Relaxed) + own).max(0) as u64
}

/// Folds the calling thread's pending delta into the shared total, so that
/// [`used`] — what `INFO` reports — is exact for this thread. The eviction
/// loop calls it once it is done: without it, a worker that just freed 7 KB
/// would leave `used_memory` reading 7 KB over the limit it enforced.
pub fn publish_pending() {
    if let Ok(own) = PENDING.try_with(|pending| pending.replace(0)) {
        if own != 0 {
            publish(own);
        }
    }
}

/// The most [`used`] has been since start or the last [`reset_peak`].
pub fn peak() -> u64 {
    PEAK.load(Ordering::Relaxed).max(0) as u64
}

/// Sets the peak to the current figure (`CONFIG RESETSTAT`).
pub fn reset_peak() {
    PEAK.store(USED.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Redis's `*_human` rendering: `1.50M`, `812.00K`, `17B`.
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "K", "M", "G", "T", "P"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{value:.2}{}", units[unit])
    }
}

/// Parses a memory amount with Redis's units (`memtoull`): a plain number of
/// bytes, or a number followed by `k`, `kb`, `m`, `mb`, `g`, `gb` (case
/// insensitive; `k` = 1000, `kb` = 1024, and so on). None if malformed.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let split = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_memory_units_parse_like_memtoull() {
        assert_eq!(parse_bytes("0"), Some(0));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("1k"), Some(1000));
        assert_eq!(parse_bytes("1KB"), Some(1024));
        assert_eq!(parse_bytes("100mb"), Some(100 * 1024 * 1024));
        assert_eq!(parse_bytes("2gb"), Some(2 * 1024 * 1024 * 1024));
        assert_eq!(parse_bytes("3g"), Some(3_000_000_000));
        for bad in ["", "mb", "-1", "1.5mb", "12tb", "1 mb"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn human_bytes_reads_like_redis() {
        assert_eq!(human_bytes(17), "17B");
        assert_eq!(human_bytes(1536), "1.50K");
        assert_eq!(human_bytes(20 * 1024 * 1024), "20.00M");
    }

    #[test]
    fn chunk_sizes_follow_glibc_malloc() {
        assert_eq!(chunk_size(1), 32);
        assert_eq!(chunk_size(24), 32);
        assert_eq!(chunk_size(25), 48);
        assert_eq!(chunk_size(116), 128);
        assert_eq!(chunk_size(120), 128);
        assert_eq!(chunk_size(121), 144);
    }

    #[test]
    fn allocations_through_the_counting_allocator_show_in_the_precise_figure() {
        // The test binary does not install the allocator; call it directly.
        let layout = Layout::from_size_align(64 << 20, 8).unwrap();
        let before = used_precise();
        // SAFETY: a non-zero-size layout; the block is freed with the same layout.
        let block = unsafe { CountingAllocator.alloc(layout) };
        assert!(!block.is_null());
        let during = used_precise();
        assert!(during >= before + (64 << 20), "{before} -> {during}");
        // SAFETY: allocated above with `layout`.
        let grown = unsafe { CountingAllocator.realloc(block, layout, 65 << 20) };
        assert!(used_precise() >= during + (1 << 20));
        // SAFETY: `grown` has size 65 MiB, alignment 8.
        unsafe { CountingAllocator.dealloc(grown, Layout::from_size_align(65 << 20, 8).unwrap()) };
        assert_eq!(used_precise(), before);
    }
}
