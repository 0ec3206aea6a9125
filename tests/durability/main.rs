//! Durability and crash tests of kvserver's write-ahead log, run against the real binary.
//!
//! Every test starts its own `kvserver` on 127.0.0.1 (port 0, parsed from the ready line) with a
//! temporary `--dir`, drives it over a raw RESP client, stops it the hard way (SIGKILL, an
//! `abort()` test hook, a file-size limit) or the clean way (SIGTERM), restarts it on the same
//! directory and checks that what recovered is exactly what the durability contract promises
//! (docs/persistence.md). Random choices print their seed (`KVSERVER_TEST_SEED` replays one).
//! Nothing here asserts on timing; every wait is bounded by `support::WAIT`.

mod support;

mod batching;
mod big_values;
mod compaction;
mod crash;
mod daemon;
mod databases;
mod disk_full;
mod hash;
mod lists;
mod ordering;
mod patch_records;
mod power_cut;
mod recovery;
mod save;
mod scripting;
mod sets;
mod transactions;
mod zsets;
