//! Keyspace notifications (`notify-keyspace-events`): after a command
//! changes a key, a message on `__keyspace@<db>__:<key>` (the event name)
//! and/or `__keyevent@<db>__:<event>` (the key), as Redis's `notify.c`.
//!
//! # One place, after the locks
//! Handlers and the store call [`emit`] where Redis calls
//! `notifyKeyspaceEvent`. `emit` only records the event in a thread-local
//! list; the executor (and the expiry and eviction loops) call [`flush`]
//! once the shard locks are released, which publishes them in order through
//! `crate::pubsub`. So a notification never runs under a shard lock, and
//! code deep in the store (lazy expiry, eviction) can emit without any
//! handle to the server.
//!
//! # Cost
//! With the setting empty, `emit` and `flush` are one relaxed load each.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::state::ServerState;

/// `K`: publish on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: DEL, EXPIRE, RENAME, … (type-independent commands).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands (and hash-field expiry).
pub const HASH: u32 = 1 << 6;
/// `z`: sorted set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: a key expired (lazily or by the active cycle).
pub const EXPIRED: u32 = 1 << 8;
/// `e`: a key was evicted for `maxmemory`.
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands (accepted; kvserver has no streams).
pub const STREAM: u32 = 1 << 10;
/// `m`: a key was looked up and missed.
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module events (accepted; kvserver has no modules).
pub const MODULE: u32 = 1 << 13;
/// `n`: a new key was created.
pub const NEW: u32 = 1 << 14;
/// `A`: every class but `m` and `n`, as Redis.
pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// A parsed `notify-keyspace-events` value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Classes(pub u32);

impl Classes {
    /// Redis's `keyspaceEventsStringToFlags`: None on an unknown letter.
    pub fn parse(text: &str) -> Option<Classes> {
        let mut flags = 0;
        for c in text.chars() {
            flags |= match c {
                'A' => ALL,
                'g' => GENERIC,
                '$' => STRING,
                'l' => LIST,
                's' => SET,
                'h' => HASH,
                'z' => ZSET,
                'x' => EXPIRED,
                'e' => EVICTED,
                'K' => KEYSPACE,
                'E' => KEYEVENT,
                't' => STREAM,
                'm' => KEY_MISS,
                'd' => MODULE,
                'n' => NEW,
                _ => return None,
            };
        }
        Some(Classes(flags))
    }
}

impl std::fmt::Display for Classes {
    /// Redis's `keyspaceEventsFlagsToString` (what CONFIG GET shows).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let flags = self.0;
        let mut out = String::new();
        if flags & ALL == ALL {
            out.push('A');
        } else {
            for (bit, c) in [
                (GENERIC, 'g'),
                (STRING, '$'),
                (LIST, 'l'),
                (SET, 's'),
                (HASH, 'h'),
                (ZSET, 'z'),
                (EXPIRED, 'x'),
                (EVICTED, 'e'),
                (STREAM, 't'),
                (MODULE, 'd'),
            ] {
                if flags & bit != 0 {
                    out.push(c);
                }
            }
        }
        for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm'), (NEW, 'n')] {
            if flags & bit != 0 {
                out.push(c);
            }
        }
        f.write_str(&out)
    }
}

/// The classes in force (a process-wide copy of the live setting, like
/// the LFU parameters of `store::evict`).
static CLASSES: AtomicU32 = AtomicU32::new(0);

/// Installs the live setting (`RuntimeConfig` on start and CONFIG SET).
pub fn set_classes(classes: Classes) {
    // Without K or E nothing is published, whatever the type classes say.
    let effective = if classes.0 & (KEYSPACE | KEYEVENT) == 0 {
        0
    } else {
        classes.0
    };
    CLASSES.store(effective, Ordering::Relaxed);
}

/// True if any notification class is on: one relaxed load per command.
#[inline]
pub fn publishing() -> bool {
    CLASSES.load(Ordering::Relaxed) != 0
}

/// True while some client tracks keys (`crate::tracking`): expired and
/// evicted keys are then recorded too, to be invalidated at the flush, as
/// Redis's `signalModifiedKey` does for them.
static TRACKING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Called by `Tracking` when its first client arrives or its last leaves.
pub fn set_tracking(on: bool) {
    TRACKING.store(on, Ordering::Relaxed);
}

/// True if events of `class` are recorded: one relaxed load (two for
/// expired/evicted events while nobody tracks).
#[inline]
pub fn enabled(class: u32) -> bool {
    CLASSES.load(Ordering::Relaxed) & class != 0
        || (class & (EXPIRED | EVICTED) != 0 && TRACKING.load(Ordering::Relaxed))
}

/// The database of an event recorded where it is not known (inside the
/// store): [`flush`] fills in the database it flushes for.
const HERE: usize = usize::MAX;

/// One recorded event.
struct Event {
    class: u32,
    event: &'static str,
    db: usize,
    key: Vec<u8>,
}

thread_local! {
    static PENDING: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
}

/// Records that `event` (of `class`) happened to `key` in database `db`;
/// published by the next [`flush`] on this thread.
#[inline]
pub fn emit(class: u32, event: &'static str, db: usize, key: &[u8]) {
    if !enabled(class) {
        return;
    }
    PENDING.with(|p| {
        p.borrow_mut().push(Event {
            class,
            event,
            db,
            key: key.to_vec(),
        })
    });
}

/// [`emit`] from inside the store, which does not know which logical
/// database it serves: the flush that follows names it.
#[inline]
pub fn emit_here(class: u32, event: &'static str, key: &[u8]) {
    emit(class, event, HERE, key);
}

/// Publishes the events this thread recorded, in order; events recorded
/// with [`emit_here`] are in database `db`. Call with no shard lock held.
#[inline]
pub fn flush(state: &ServerState, db: usize) {
    if CLASSES.load(Ordering::Relaxed) == 0 && !TRACKING.load(Ordering::Relaxed) {
        return;
    }
    flush_pending(state, db);
}

#[cold]
fn flush_pending(state: &ServerState, db: usize) {
    let events = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let flags = CLASSES.load(Ordering::Relaxed);
    for e in events {
        if e.class & (EXPIRED | EVICTED) != 0 && state.tracking.any() {
            state.tracking.invalidate(state, &e.key, None);
        }
        if flags & e.class == 0 {
            continue;
        }
        let db = if e.db == HERE { db } else { e.db };
        if flags & KEYSPACE != 0 {
            let mut channel = format!("__keyspace@{db}__:").into_bytes();
            channel.extend_from_slice(&e.key);
            state.pubsub.publish(&channel, e.event.as_bytes(), false);
        }
        if flags & KEYEVENT != 0 {
            let channel = format!("__keyevent@{db}__:{}", e.event);
            state.pubsub.publish(channel.as_bytes(), &e.key, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_trip_as_redis_prints_them() {
        for (input, shown) in [
            ("KEA", "AKE"),
            ("Ex", "xE"),
            ("", ""),
            ("Kg$lshzxetd", "AK"),
            ("Knm", "Kmn"),
        ] {
            assert_eq!(Classes::parse(input).unwrap().to_string(), shown, "{input}");
        }
        assert!(Classes::parse("KEQ").is_none());
    }
}
