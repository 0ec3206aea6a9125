//! Staying under `maxmemory`: before every `denyoom` command runs, evict
//! until `used_memory` is at most the limit, or refuse — as Redis does in
//! `performEvictions` before each such command.
//!
//! A pipelined batch holds its shards' locks while it runs, and eviction locks
//! shards one at a time, so eviction cannot happen in the middle of a batch.
//! Instead the executor checks [`over_limit`] before each `denyoom` command
//! of a batch and, when it is over, ends the batch there; the next batch
//! starts with [`make_room`]. A batch therefore overshoots by at most one
//! command's growth, never by a whole pipeline's.
//!
//! Each eviction is a delete through the store's ordinary delete path,
//! logged to the WAL as a `Del` record while the key's shard is locked (so a
//! restart never brings an evicted key back, and per-key log order stays
//! memory order). The check itself is one relaxed atomic load when no limit
//! is set, and two when under it.

use super::CommandError;
use crate::memory;
use crate::state::ServerState;
use crate::store::EvictionPolicy;
use crate::wal::Record;

/// Most keys one call evicts: a bound on the latency one command can add.
/// Past it the command runs anyway if something was freed (the next one
/// continues), as Redis's eviction time limit does.
const MAX_EVICTIONS_PER_CALL: usize = 10_000;

/// Evicts until memory use is within `maxmemory` (at most
/// [`MAX_EVICTIONS_PER_CALL`] keys); `Err(OutOfMemory)` if the policy is
/// `noeviction` or nothing evictable is left while still over.
pub fn make_room(state: &ServerState) -> Result<(), CommandError> {
    make_room_within(state, MAX_EVICTIONS_PER_CALL)
}

/// [`make_room`] without the bound: `CONFIG SET maxmemory` lower than the
/// data evicts down to the new limit before it replies.
pub fn make_room_fully(state: &ServerState) -> Result<(), CommandError> {
    make_room_within(state, usize::MAX)
}

/// True when a limit is set and this thread's view of `used_memory` is over
/// it: one relaxed load when no limit is set, a thread-local and one more
/// relaxed load otherwise.
#[inline]
pub fn over_limit(state: &ServerState) -> bool {
    let limit = state.runtime.maxmemory();
    limit != 0 && memory::used_precise() > limit
}

fn make_room_within(state: &ServerState, max_evictions: usize) -> Result<(), CommandError> {
    if !over_limit(state) {
        return Ok(());
    }
    let limit = state.runtime.maxmemory();
    let policy = state.runtime.policy();
    if policy == EvictionPolicy::NoEviction {
        return Err(CommandError::OutOfMemory);
    }
    let samples = state.runtime.samples();
    let mut record = Vec::with_capacity(64);
    let mut on_evict = |physical: usize, key: &[u8]| {
        crate::notify::emit(
            crate::notify::EVICTED,
            "evicted",
            state.dbs.logical_of(physical),
            key,
        );
        if let Some(wal) = state.wal() {
            record.clear();
            Record::Del { key }.encode(&mut record);
            // Under the key's shard lock: the store's database is stable.
            wal.append_in(state.dbs.logical_of(physical) as u32, &record);
        }
    };
    let mut evicted = 0;
    let outcome = loop {
        if memory::used_precise() <= limit || evicted >= max_evictions {
            break Ok(());
        }
        if !state.dbs.evict_one(policy, samples, &mut on_evict) {
            break Err(CommandError::OutOfMemory);
        }
        evicted += 1;
    };
    // What this thread freed shows in `used_memory` at once.
    memory::publish_pending();
    outcome
}
