//! Staying under `maxmemory`: before a batch containing a `denyoom` command
//! runs, evict until `used_memory` is at most the limit, or refuse.
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

fn make_room_within(state: &ServerState, max_evictions: usize) -> Result<(), CommandError> {
    let limit = state.runtime.maxmemory();
    if limit == 0 || memory::used() <= limit {
        return Ok(());
    }
    let policy = state.runtime.policy();
    if policy == EvictionPolicy::NoEviction {
        return Err(CommandError::OutOfMemory);
    }
    let samples = state.runtime.samples();
    let mut record = Vec::with_capacity(64);
    let mut on_evict = |physical: usize, key: &[u8]| {
        if let Some(wal) = state.wal() {
            record.clear();
            Record::Del { key }.encode(&mut record);
            // Under the key's shard lock: the store's database is stable.
            wal.append_in(state.dbs.logical_of(physical) as u32, &record);
        }
    };
    let mut evicted = 0;
    while memory::used_precise() > limit {
        if evicted >= max_evictions {
            return Ok(());
        }
        if !state.dbs.evict_one(policy, samples, &mut on_evict) {
            return Err(CommandError::OutOfMemory);
        }
        evicted += 1;
    }
    Ok(())
}
