//! Client-side caching (`CLIENT TRACKING`): which clients may hold which
//! keys, and the invalidation messages sent when those keys change.
//!
//! This file holds the encoding of an invalidation; see the module-level
//! docs in `docs/protocol.md`.

use crate::protocol::{Replies, Style};

/// The channel RESP2 clients subscribe to for redirected invalidations.
pub const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// Writes one invalidation: under RESP3 the push `invalidate [keys]`, under
/// RESP2 (a redirect target subscribed to [`INVALIDATE_CHANNEL`]) the
/// message `message __redis__:invalidate [keys]`. `None`: every key
/// (FLUSHALL/FLUSHDB), a null instead of the array.
pub fn encode_invalidation(out: &mut Replies, keys: Option<&[Vec<u8>]>) {
    if out.style() == Style::Resp3 {
        out.push(2);
        out.bulk(b"invalidate");
    } else {
        out.push(3);
        out.bulk(b"message");
        out.bulk(INVALIDATE_CHANNEL);
    }
    match keys {
        Some(keys) => {
            out.array(keys.len());
            for key in keys {
                out.bulk(key);
            }
        }
        None => out.nil(),
    }
}

/// The server's tracking table (in `ServerState`).
#[derive(Default)]
pub struct Tracking {
    clients: std::sync::atomic::AtomicUsize,
    keys: std::sync::atomic::AtomicUsize,
}

impl Tracking {
    /// Clients with tracking on (INFO `tracking_clients`).
    pub fn clients(&self) -> usize {
        self.clients.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Keys in the tracking table (INFO `tracking_total_keys`).
    pub fn total_keys(&self) -> usize {
        self.keys.load(std::sync::atomic::Ordering::Relaxed)
    }
}
