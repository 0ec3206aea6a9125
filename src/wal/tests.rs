//! Unit tests of the WAL: format round trip, recovery rules, group commit, compaction under
//! concurrent writes, crash points, write-failure handling and the checker.
//!
//! Tests that must kill or limit a process (crash hooks, RLIMIT_FSIZE) re-run this test binary
//! as a child with `--exact <child test>` and an environment variable; the child tests do nothing
//! when that variable is absent. They must never leave files outside their temp directory.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use proptest::prelude::*;

use super::record::{file_header, parse_frame, Frame};
use super::*;

/// An owned copy of a record, to compare what was written with what was replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Owned {
    Set(Vec<u8>, Vec<u8>, Option<u64>),
    Del(Vec<u8>),
    Expire(Vec<u8>, Option<u64>),
    FlushAll,
    /// key, offset, bytes, resulting length, expiry.
    Patch(Vec<u8>, u64, Vec<u8>, u64, Option<u64>),
    /// A hash record: kind, key, entry count, encoded entries.
    Hash(RecordKind, Vec<u8>, u32, Vec<u8>),
    Select(u32),
    SwapDb(u32, u32),
    FlushDb,
    /// key, op, payload.
    Collection(Vec<u8>, u8, Vec<u8>),
    /// op, data.
    Function(u8, Vec<u8>),
}

impl Owned {
    fn of(r: Record<'_>) -> Owned {
        match r {
            Record::Set {
                key,
                value,
                expires_at_ms,
            } => Owned::Set(key.to_vec(), value.to_vec(), expires_at_ms),
            Record::Del { key } => Owned::Del(key.to_vec()),
            Record::Expire { key, expires_at_ms } => Owned::Expire(key.to_vec(), expires_at_ms),
            Record::FlushAll => Owned::FlushAll,
            Record::Patch {
                key,
                offset,
                bytes,
                len,
                expires_at_ms,
            } => Owned::Patch(key.to_vec(), offset, bytes.to_vec(), len, expires_at_ms),
            Record::HashSet { key, fields }
            | Record::HashDel { key, fields }
            | Record::HashExpire { key, fields } => Owned::Hash(
                r.kind(),
                key.to_vec(),
                fields.len() as u32,
                fields.bytes().to_vec(),
            ),
            Record::Select { db } => Owned::Select(db),
            Record::SwapDb { a, b } => Owned::SwapDb(a, b),
            Record::FlushDb => Owned::FlushDb,
            Record::Collection { key, op, payload } => Owned::Collection(key.to_vec(), op, payload.to_vec()),
            Record::Function { op, data } => Owned::Function(op, data.to_vec()),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Owned::Set(k, v, e) => Record::Set {
                key: k,
                value: v,
                expires_at_ms: *e,
            }
            .encode(out),
            Owned::Del(k) => Record::Del { key: k }.encode(out),
            Owned::Expire(k, e) => Record::Expire {
                key: k,
                expires_at_ms: *e,
            }
            .encode(out),
            Owned::FlushAll => Record::FlushAll.encode(out),
            Owned::Patch(k, offset, b, len, e) => Record::Patch {
                key: k,
                offset: *offset,
                bytes: b,
                len: *len,
                expires_at_ms: *e,
            }
            .encode(out),
            Owned::Hash(kind, key, count, bytes) => {
                let fields = HashFields::new(*kind, *count, bytes);
                match kind {
                    RecordKind::HashSet => Record::HashSet { key, fields },
                    RecordKind::HashDel => Record::HashDel { key, fields },
                    _ => Record::HashExpire { key, fields },
                }
                .encode(out)
            }
            Owned::Select(db) => Record::Select { db: *db }.encode(out),
            Owned::SwapDb(a, b) => Record::SwapDb { a: *a, b: *b }.encode(out),
            Owned::FlushDb => Record::FlushDb.encode(out),
            Owned::Collection(key, op, payload) => Record::Collection {
                key,
                op: *op,
                payload,
            }
            .encode(out),
            Owned::Function(op, data) => Record::Function { op: *op, data }.encode(out),
        }
    }
}

fn cfg(dir: &Path, fsync: FsyncPolicy) -> WalConfig {
    WalConfig {
        fsync,
        flush_interval: Duration::from_millis(10),
        ..WalConfig::new(dir)
    }
}

fn sample(i: usize) -> Owned {
    match i % 4 {
        0 => Owned::Set(format!("key:{i}").into_bytes(), vec![b'v'; i % 50], None),
        1 => Owned::Set(
            format!("k{i}").into_bytes(),
            b"x".to_vec(),
            Some(1_700_000_000_000 + i as u64),
        ),
        2 => Owned::Del(format!("key:{}", i - 2).into_bytes()),
        _ => Owned::Expire(format!("k{}", i - 2).into_bytes(), None),
    }
}

/// Writes `header + records` straight to `dir/kvserver.wal`; returns each record's end offset.
fn write_log(dir: &Path, recs: &[Owned]) -> Vec<usize> {
    let mut bytes = file_header().to_vec();
    let mut ends = Vec::new();
    for r in recs {
        r.encode(&mut bytes);
        ends.push(bytes.len());
    }
    fs::write(dir.join(WAL_FILE_NAME), &bytes).unwrap();
    ends
}

fn replay(c: WalConfig) -> Result<(Vec<Owned>, ReplayReport), WalError> {
    let mut got = Vec::new();
    let (wal, report) = Wal::open(c, |r| got.push(Owned::of(r)))?;
    wal.shutdown()?;
    Ok((got, report))
}

fn file_len(dir: &Path) -> u64 {
    fs::metadata(dir.join(WAL_FILE_NAME)).unwrap().len()
}

fn owned_strategy() -> impl Strategy<Value = Owned> {
    let bytes = |n| proptest::collection::vec(any::<u8>(), 0..n);
    prop_oneof![
        (bytes(64), bytes(300), any::<Option<u64>>()).prop_map(|(k, v, e)| Owned::Set(k, v, e)),
        bytes(64).prop_map(Owned::Del),
        (bytes(64), any::<Option<u64>>()).prop_map(|(k, e)| Owned::Expire(k, e)),
        Just(Owned::FlushAll),
        (
            bytes(64),
            0..1000u64,
            bytes(300),
            0..1000u64,
            any::<Option<u64>>()
        )
            .prop_map(|(k, offset, b, extra, e)| {
                let len = offset + b.len() as u64 + extra;
                Owned::Patch(k, offset, b, len, e)
            }),
        any::<u32>().prop_map(Owned::Select),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Owned::SwapDb(a, b)),
        Just(Owned::FlushDb),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn encoded_records_decode_to_themselves(recs in proptest::collection::vec(owned_strategy(), 0..20)) {
        let mut buf = Vec::new();
        for r in &recs {
            let before = buf.len();
            r.encode(&mut buf);
            prop_assert_eq!(buf.len() - before, {
                let mut one = Vec::new();
                r.encode(&mut one);
                one.len()
            });
        }
        let mut pos = 0;
        let mut got = Vec::new();
        while pos < buf.len() {
            match parse_frame(&buf[pos..]) {
                Frame::Complete { record, len } => {
                    prop_assert_eq!(record.encoded_len(), len);
                    got.push(Owned::of(record));
                    pos += len;
                }
                other => prop_assert!(false, "unexpected frame {:?} at {}", other, pos),
            }
        }
        prop_assert_eq!(got, recs);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_frame(&bytes);
    }
}

#[test]
fn a_new_directory_gets_a_log_with_a_header_and_replays_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sub/dir");
    let (got, report) = replay(cfg(&dir, FsyncPolicy::Interval)).unwrap();
    assert!(got.is_empty());
    assert_eq!(report.end, ReadEnd::CleanEnd);
    assert_eq!(fs::read(dir.join(WAL_FILE_NAME)).unwrap(), file_header());
}

#[test]
fn appended_records_survive_a_clean_shutdown_in_order() {
    for policy in [FsyncPolicy::Always, FsyncPolicy::Interval, FsyncPolicy::Never] {
        let tmp = tempfile::tempdir().unwrap();
        let recs: Vec<Owned> = (0..100).map(sample).collect();
        let (wal, _) = Wal::open(cfg(tmp.path(), policy), |_| {}).unwrap();
        let mut enc = Vec::new();
        for r in &recs {
            enc.clear();
            r.encode(&mut enc);
            let lsn = wal.append(&enc);
            wal.commit(lsn).unwrap();
        }
        wal.shutdown().unwrap();
        drop(wal);
        let (got, report) = replay(cfg(tmp.path(), policy)).unwrap();
        assert_eq!(got, recs, "policy {policy}");
        assert_eq!(report.records.total(), 100);
        assert_eq!(report.records.set, 50);
    }
}

#[test]
fn the_interval_flusher_writes_without_an_explicit_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(cfg(tmp.path(), FsyncPolicy::Interval), |_| {}).unwrap();
    let mut enc = Vec::new();
    sample(0).encode(&mut enc);
    let lsn = wal.append(&enc);
    wal.commit(lsn).unwrap(); // returns at once under `interval`
    let deadline = Instant::now() + Duration::from_secs(5);
    while wal.stats().durable_lsn < lsn {
        assert!(Instant::now() < deadline, "flusher never wrote");
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(file_len(tmp.path()), (FILE_HEADER_LEN + enc.len()) as u64);
    assert!(wal.stats().fsyncs >= 1);
    assert_eq!(wal.stats().pending_bytes, 0);
}

#[test]
fn a_torn_tail_at_every_byte_of_the_last_record_is_truncated_and_earlier_records_survive() {
    let tmp = tempfile::tempdir().unwrap();
    let recs: Vec<Owned> = (0..5).map(sample).collect();
    let ends = write_log(tmp.path(), &recs);
    let full = fs::read(tmp.path().join(WAL_FILE_NAME)).unwrap();
    let last_start = ends[3];
    for cut in last_start + 1..full.len() {
        fs::write(tmp.path().join(WAL_FILE_NAME), &full[..cut]).unwrap();
        let (got, report) = replay(cfg(tmp.path(), FsyncPolicy::Never)).unwrap();
        assert_eq!(got, recs[..4], "cut at {cut}");
        assert_eq!(report.truncated_bytes, (cut - last_start) as u64);
        assert_eq!(
            report.end,
            ReadEnd::TornTail {
                offset: last_start as u64,
                dropped_bytes: (cut - last_start) as u64
            }
        );
        assert_eq!(file_len(tmp.path()), last_start as u64, "cut at {cut}");
    }
}

#[test]
fn a_zero_filled_tail_is_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let recs: Vec<Owned> = (0..3).map(sample).collect();
    let ends = write_log(tmp.path(), &recs);
    let mut bytes = fs::read(tmp.path().join(WAL_FILE_NAME)).unwrap();
    bytes.extend_from_slice(&[0u8; 4096]);
    fs::write(tmp.path().join(WAL_FILE_NAME), &bytes).unwrap();
    let (got, report) = replay(cfg(tmp.path(), FsyncPolicy::Never)).unwrap();
    assert_eq!(got, recs);
    assert_eq!(report.truncated_bytes, 4096);
    assert_eq!(file_len(tmp.path()), ends[2] as u64);
}

#[test]
fn mid_file_corruption_is_refused_with_its_offset_then_accepted_with_truncate_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let recs: Vec<Owned> = (0..5).map(sample).collect();
    let ends = write_log(tmp.path(), &recs);
    let path = tmp.path().join(WAL_FILE_NAME);
    let mut bytes = fs::read(&path).unwrap();
    bytes[ends[1] + 12] ^= 0xff; // inside the payload of the third record
    fs::write(&path, &bytes).unwrap();

    let err = replay(cfg(tmp.path(), FsyncPolicy::Never)).unwrap_err();
    match &err {
        WalError::Corrupt { offset, .. } => assert_eq!(*offset, ends[1] as u64),
        other => panic!("expected Corrupt, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.starts_with("ERR "), "{msg}");
    assert!(msg.contains(&format!("byte offset {}", ends[1])), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert_eq!(fs::read(&path).unwrap(), bytes, "a refused log is left untouched");

    let mut c = cfg(tmp.path(), FsyncPolicy::Never);
    c.truncate_corrupt = true;
    let (got, report) = replay(c).unwrap();
    assert_eq!(got, recs[..2]);
    assert_eq!(report.truncated_bytes, (bytes.len() - ends[1]) as u64);
    assert_eq!(file_len(tmp.path()), ends[1] as u64);
}

#[test]
fn a_garbage_length_is_corruption_not_an_allocation() {
    let tmp = tempfile::tempdir().unwrap();
    let recs: Vec<Owned> = (0..4).map(sample).collect();
    let ends = write_log(tmp.path(), &recs);
    let path = tmp.path().join(WAL_FILE_NAME);
    let mut bytes = fs::read(&path).unwrap();
    bytes[ends[0] + 4..ends[0] + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    match replay(cfg(tmp.path(), FsyncPolicy::Never)).unwrap_err() {
        WalError::Corrupt { offset, reason, .. } => {
            assert_eq!(offset, ends[0] as u64);
            assert_eq!(reason, "record length out of bounds");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[test]
fn an_unknown_magic_or_version_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(WAL_FILE_NAME);
    fs::write(&path, b"*1\r\n$4\r\nPING\r\n this is not a wal").unwrap();
    let err = replay(cfg(tmp.path(), FsyncPolicy::Never)).unwrap_err();
    assert!(matches!(err, WalError::UnknownFormat { .. }), "{err}");
    assert!(err.to_string().contains("not a kvserver WAL"));
    assert_eq!(
        fs::read(&path).unwrap(),
        b"*1\r\n$4\r\nPING\r\n this is not a wal"
    );

    let mut h = file_header();
    h[8] = 9;
    fs::write(&path, h).unwrap();
    let err = replay(cfg(tmp.path(), FsyncPolicy::Never)).unwrap_err();
    assert!(
        matches!(err, WalError::UnsupportedVersion { version: 9, .. }),
        "{err}"
    );
}

#[test]
fn a_partial_header_from_a_crash_at_creation_is_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(WAL_FILE_NAME), &file_header()[..5]).unwrap();
    let (got, _) = replay(cfg(tmp.path(), FsyncPolicy::Never)).unwrap();
    assert!(got.is_empty());
    assert_eq!(fs::read(tmp.path().join(WAL_FILE_NAME)).unwrap(), file_header());
}

#[test]
fn group_commit_makes_every_acknowledged_record_durable_and_shares_fsyncs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = cfg(tmp.path(), FsyncPolicy::Always);
    c.flush_interval = Duration::from_secs(3600); // only committers write
    let (wal, _) = Wal::open(c, |_| {}).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let wal = Arc::clone(&wal);
            thread::spawn(move || {
                let mut enc = Vec::new();
                for i in 0..100 {
                    enc.clear();
                    let key = format!("t{t}:{i}");
                    Record::Set {
                        key: key.as_bytes(),
                        value: b"v",
                        expires_at_ms: None,
                    }
                    .encode(&mut enc);
                    let lsn = wal.append(&enc);
                    wal.commit(lsn).unwrap();
                    assert!(wal.stats().durable_lsn >= lsn);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = wal.stats();
    assert_eq!(stats.commits, 800);
    assert!(stats.group_commit_batches >= 1 && stats.group_commit_batches <= 800);
    // Everything acknowledged is in the file before any shutdown.
    let report = check(&tmp.path().join(WAL_FILE_NAME), false).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.records.set, 800);
    wal.shutdown().unwrap();
}

type FakeShard = HashMap<Vec<u8>, (Vec<u8>, Option<u64>)>;

/// A stand-in for the store: shards of maps; each write appends while holding its shard lock.
struct FakeStore {
    shards: Vec<Mutex<FakeShard>>,
    snapshot_delay: Duration,
}

impl FakeStore {
    fn new(n: usize, snapshot_delay: Duration) -> Arc<FakeStore> {
        Arc::new(FakeStore {
            shards: (0..n).map(|_| Mutex::new(HashMap::new())).collect(),
            snapshot_delay,
        })
    }

    fn shard_of(&self, key: &[u8]) -> usize {
        key.iter().map(|&b| b as usize).sum::<usize>() % self.shards.len()
    }

    /// Applies a record to memory (replay, and the live write path).
    fn apply(&self, r: Record<'_>) {
        match r {
            Record::Set {
                key,
                value,
                expires_at_ms,
            } => {
                self.shards[self.shard_of(key)]
                    .lock()
                    .insert(key.to_vec(), (value.to_vec(), expires_at_ms));
            }
            Record::Del { key } => {
                self.shards[self.shard_of(key)].lock().remove(key);
            }
            Record::Expire { key, expires_at_ms } => {
                if let Some(e) = self.shards[self.shard_of(key)].lock().get_mut(key) {
                    e.1 = expires_at_ms;
                }
            }
            Record::FlushAll => {
                for s in &self.shards {
                    s.lock().clear();
                }
            }
            Record::Patch {
                key,
                offset,
                bytes,
                len,
                expires_at_ms,
            } => {
                let mut shard = self.shards[self.shard_of(key)].lock();
                let entry = shard.entry(key.to_vec()).or_default();
                entry.0.resize(len as usize, 0);
                entry.0[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes);
                entry.1 = expires_at_ms;
            }
            // The fake store holds strings only; hash records are tested on their own.
            Record::HashSet { .. }
            | Record::HashDel { .. }
            | Record::HashExpire { .. }
            | Record::Collection { .. }
            | Record::Function { .. } => {}
            // The fake store has one database.
            Record::Select { .. } | Record::SwapDb { .. } | Record::FlushDb => {}
        }
    }

    /// A live single-key write: mutate and append under the shard lock, commit after.
    fn write(&self, wal: &Wal, r: Record<'_>, enc: &mut Vec<u8>) {
        let key = match r {
            Record::Set { key, .. }
            | Record::Del { key }
            | Record::Expire { key, .. }
            | Record::HashSet { key, .. }
            | Record::HashDel { key, .. }
            | Record::HashExpire { key, .. } => key,
            _ => unreachable!("single-key writes only"),
        };
        enc.clear();
        r.encode(enc);
        let lsn = {
            let mut shard = self.shards[self.shard_of(key)].lock();
            match r {
                Record::Set {
                    value, expires_at_ms, ..
                } => {
                    shard.insert(key.to_vec(), (value.to_vec(), expires_at_ms));
                }
                Record::Del { .. } => {
                    shard.remove(key);
                }
                Record::Expire { expires_at_ms, .. } => {
                    if let Some(e) = shard.get_mut(key) {
                        e.1 = expires_at_ms;
                    }
                }
                _ => {}
            }
            wal.append(enc)
        };
        wal.commit(lsn).unwrap();
    }

    fn contents(&self) -> FakeShard {
        let mut all = HashMap::new();
        for s in &self.shards {
            all.extend(s.lock().iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        all
    }
}

impl SnapshotSource for FakeStore {
    fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn snapshot_shard(&self, i: usize, emit: &mut dyn FnMut(Record<'_>)) {
        thread::sleep(self.snapshot_delay);
        for (k, (v, e)) in self.shards[i].lock().iter() {
            emit(Record::Set {
                key: k,
                value: v,
                expires_at_ms: *e,
            });
        }
    }
}

/// Deterministic mixed workload: op `i` of writer `w`.
fn workload_op(store: &FakeStore, wal: &Wal, w: usize, i: usize, enc: &mut Vec<u8>) {
    let key = format!("key{}", (i * 7 + w * 13) % 300);
    let value = format!("w{w}:i{i}");
    let r = match i % 5 {
        0..=2 => Record::Set {
            key: key.as_bytes(),
            value: value.as_bytes(),
            expires_at_ms: (i % 3 == 0).then_some(i as u64),
        },
        3 => Record::Del { key: key.as_bytes() },
        _ => Record::Expire {
            key: key.as_bytes(),
            expires_at_ms: Some(99),
        },
    };
    store.write(wal, r, enc);
}

fn replay_into_store(c: WalConfig) -> Arc<FakeStore> {
    let store = FakeStore::new(4, Duration::ZERO);
    let (wal, _) = Wal::open(c, |r| store.apply(r)).unwrap();
    wal.shutdown().unwrap();
    store
}

#[test]
fn compaction_with_concurrent_writes_loses_nothing() {
    for policy in [FsyncPolicy::Interval, FsyncPolicy::Always] {
        let tmp = tempfile::tempdir().unwrap();
        let store = FakeStore::new(4, Duration::from_millis(3));
        let (wal, _) = Wal::open(cfg(tmp.path(), policy), |_| {}).unwrap();
        wal.set_snapshot_source(store.clone());
        // `always` fsyncs per commit: keep its run short.
        let (pre, per_writer) = match policy {
            FsyncPolicy::Always => (300, 300),
            _ => (2000, 1500),
        };
        let mut enc = Vec::new();
        for i in 0..pre {
            workload_op(&store, &wal, 9, i, &mut enc);
        }
        wal.sync_all().unwrap();
        let before = file_len(tmp.path());
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (store, wal) = (store.clone(), wal.clone());
                thread::spawn(move || {
                    let mut enc = Vec::new();
                    for i in 0..per_writer {
                        // Paced so writes land before, during and after each shard's snapshot.
                        if i % 50 == 0 {
                            thread::sleep(Duration::from_millis(1));
                        }
                        workload_op(&store, &wal, w, i, &mut enc);
                    }
                })
            })
            .collect();
        wal.start_compaction().unwrap();
        assert!(wal.is_compacting());
        assert!(matches!(wal.start_compaction(), Err(WalError::AlreadyCompacting)));
        wal.wait_compaction().unwrap();
        for w in writers {
            w.join().unwrap();
        }
        assert!(!wal.is_compacting());
        assert_eq!(wal.stats().compactions, 1);
        // Writes after the switch go to the new file.
        for i in 0..50 {
            workload_op(&store, &wal, 5, i, &mut enc);
        }
        wal.shutdown().unwrap();
        drop(wal);
        assert!(!tmp.path().join(COMPACT_TMP_FILE_NAME).exists());
        assert!(check(&tmp.path().join(WAL_FILE_NAME), false).unwrap().is_clean());
        let replayed = replay_into_store(cfg(tmp.path(), policy));
        assert_eq!(replayed.contents(), store.contents(), "policy {policy}");
        assert!(file_len(tmp.path()) < before + 200_000);
    }
}

#[test]
fn the_flusher_starts_a_compaction_when_the_log_has_grown_enough() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FakeStore::new(2, Duration::ZERO);
    let mut c = cfg(tmp.path(), FsyncPolicy::Never);
    c.compact_min_size = 8 * 1024;
    c.compact_growth_percent = 50;
    let (wal, _) = Wal::open(c.clone(), |_| {}).unwrap();
    wal.set_snapshot_source(store.clone());
    let mut enc = Vec::new();
    for i in 0..2000 {
        // 10 keys overwritten again and again: the compacted log is tiny.
        let key = format!("k{}", i % 10);
        store.write(
            &wal,
            Record::Set {
                key: key.as_bytes(),
                value: &[b'x'; 40],
                expires_at_ms: None,
            },
            &mut enc,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while wal.stats().compactions == 0 {
        assert!(Instant::now() < deadline, "no automatic compaction");
        thread::sleep(Duration::from_millis(5));
    }
    wal.wait_compaction().unwrap();
    wal.shutdown().unwrap();
    drop(wal);
    assert!(file_len(tmp.path()) < 8 * 1024);
    assert_eq!(replay_into_store(c).contents(), store.contents());
}

#[test]
fn compaction_needs_a_snapshot_source() {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(cfg(tmp.path(), FsyncPolicy::Never), |_| {}).unwrap();
    let err = wal.start_compaction().unwrap_err();
    assert!(matches!(err, WalError::NoSnapshotSource));
    assert!(!wal.is_compacting());
}

#[test]
fn a_failed_write_refuses_writes_with_misconf_keeps_the_bytes_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(cfg(tmp.path(), FsyncPolicy::Interval), |_| {}).unwrap();
    wal.faults.fail_writes.store(3, Ordering::SeqCst);
    let recs: Vec<Owned> = (0..10).map(sample).collect();
    let mut enc = Vec::new();
    for r in &recs {
        enc.clear();
        r.encode(&mut enc);
        wal.append(&enc);
    }
    let err = wal.sync_all().unwrap_err();
    assert_eq!(
        err.to_string(),
        "MISCONF Errors writing to the WAL: No space left on device (os error 28)"
    );
    // The partial write is kept: the retries continue after it (each failing one writes half
    // of what is left), so the log ends up whole.
    let len = file_len(tmp.path());
    assert!(len > FILE_HEADER_LEN as u64);
    let deadline = Instant::now() + Duration::from_secs(5);
    while wal.check_writable().is_err() {
        let e = wal.check_writable().unwrap_err().to_string();
        assert!(
            e.starts_with("MISCONF Errors writing to the WAL: No space left"),
            "{e}"
        );
        assert!(Instant::now() < deadline, "never recovered");
        thread::sleep(Duration::from_millis(5));
    }
    let stats = wal.stats();
    assert_eq!(stats.write_errors, 3);
    assert!(!stats.failing);
    assert!(stats.last_error.unwrap().contains("os error 28"));
    wal.shutdown().unwrap();
    drop(wal);
    assert!(check(&tmp.path().join(WAL_FILE_NAME), false).unwrap().is_clean());
    assert_eq!(replay(cfg(tmp.path(), FsyncPolicy::Never)).unwrap().0, recs);
}

#[test]
fn a_failed_fsync_fails_the_commit_and_the_retry_rewrites_the_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = cfg(tmp.path(), FsyncPolicy::Always);
    c.flush_interval = Duration::from_secs(3600);
    let (wal, _) = Wal::open(c, |_| {}).unwrap();
    wal.faults.fail_syncs.store(1, Ordering::SeqCst);
    let mut enc = Vec::new();
    sample(0).encode(&mut enc);
    let lsn = wal.append(&enc);
    let err = wal.commit(lsn).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("MISCONF Errors writing to the WAL: Input/output error"),
        "{err}"
    );
    assert!(wal.check_writable().is_err());
    assert_eq!(
        file_len(tmp.path()),
        FILE_HEADER_LEN as u64,
        "unsynced batch rolled back"
    );
    wal.commit(lsn).unwrap();
    wal.check_writable().unwrap();
    wal.shutdown().unwrap();
    drop(wal);
    assert_eq!(
        replay(cfg(tmp.path(), FsyncPolicy::Never)).unwrap().0,
        vec![sample(0)]
    );
}

const FSIZE_CHILD_ENV: &str = "KVSERVER_TEST_FSIZE_CHILD_DIR";
const CRASH_CHILD_ENV: &str = "KVSERVER_TEST_CRASH_CHILD_DIR";

fn run_child(test: &str, env: &str, dir: &Path, extra: &[(&str, &str)]) -> std::process::ExitStatus {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, dir);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.status().unwrap()
}

fn set_fsize_soft_limit(bytes: Option<u64>) {
    // SAFETY: plain libc calls on this (child) process's own limits and signal disposition.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
        lim.rlim_cur = bytes.unwrap_or(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

/// Child half of `a_real_file_size_limit_gives_misconf_and_recovers_when_lifted`.
#[test]
fn fsize_child() {
    let Some(dir) = std::env::var_os(FSIZE_CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let (wal, _) = Wal::open(cfg(dir, FsyncPolicy::Interval), |_| {}).unwrap();
    set_fsize_soft_limit(Some(64 * 1024));
    let value = vec![b'v'; 1000];
    let mut enc = Vec::new();
    for i in 0..100u32 {
        enc.clear();
        Record::Set {
            key: &i.to_le_bytes(),
            value: &value,
            expires_at_ms: None,
        }
        .encode(&mut enc);
        wal.append(&enc);
    }
    let err = wal.sync_all().unwrap_err();
    assert_eq!(
        err.to_string(),
        "MISCONF Errors writing to the WAL: File too large (os error 27)"
    );
    assert!(wal.check_writable().is_err());
    // Everything that fits was written (partial writes, as Redis): the file is exactly at the
    // limit, its last record cut, which a restart would truncate as a torn tail.
    let on_disk = check(&dir.join(WAL_FILE_NAME), false).unwrap();
    assert_eq!(on_disk.file_len, 64 * 1024, "{on_disk}");
    assert!(
        matches!(on_disk.end, ReadEnd::CleanEnd | ReadEnd::TornTail { .. }),
        "{on_disk}"
    );
    set_fsize_soft_limit(None);
    let deadline = Instant::now() + Duration::from_secs(5);
    while wal.check_writable().is_err() {
        assert!(Instant::now() < deadline, "never recovered");
        thread::sleep(Duration::from_millis(5));
    }
    wal.shutdown().unwrap();
    drop(wal);
    let (got, _) = replay(cfg(dir, FsyncPolicy::Never)).unwrap();
    assert_eq!(got.len(), 100);
}

#[test]
fn a_real_file_size_limit_gives_misconf_and_recovers_when_lifted() {
    let tmp = tempfile::tempdir().unwrap();
    let status = run_child("wal::tests::fsize_child", FSIZE_CHILD_ENV, tmp.path(), &[]);
    assert!(status.success(), "child failed: {status}");
    assert_eq!(replay(cfg(tmp.path(), FsyncPolicy::Never)).unwrap().0.len(), 100);
}

/// Child half of `a_crash_at_any_compaction_step_leaves_a_log_that_recovers`: writes a known
/// workload under `always`, compacts, and is aborted by the crash hook.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_CHILD_ENV) else {
        return;
    };
    let store = FakeStore::new(4, Duration::ZERO);
    let (wal, _) = Wal::open(cfg(Path::new(&dir), FsyncPolicy::Always), |_| {}).unwrap();
    wal.set_snapshot_source(store.clone());
    let mut enc = Vec::new();
    for i in 0..600 {
        workload_op(&store, &wal, 1, i, &mut enc);
    }
    wal.start_compaction().unwrap();
    let _ = wal.wait_compaction();
    std::process::exit(3); // the hook should have aborted us
}

#[test]
fn a_crash_at_any_compaction_step_leaves_a_log_that_recovers() {
    let expected = {
        let tmp = tempfile::tempdir().unwrap();
        let store = FakeStore::new(4, Duration::ZERO);
        let (wal, _) = Wal::open(cfg(tmp.path(), FsyncPolicy::Never), |_| {}).unwrap();
        let mut enc = Vec::new();
        for i in 0..600 {
            workload_op(&store, &wal, 1, i, &mut enc);
        }
        store.contents()
    };
    for point in [
        "compact-before-rename",
        "compact-before-dirsync",
        "compact-after-rename",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let status = run_child(
            "wal::tests::crash_child",
            CRASH_CHILD_ENV,
            tmp.path(),
            &[("KVSERVER_CRASH_AT", point)],
        );
        assert!(
            !status.success() && status.code() != Some(3),
            "{point}: child was not aborted: {status}"
        );
        let replayed = replay_into_store(cfg(tmp.path(), FsyncPolicy::Never));
        assert_eq!(replayed.contents(), expected, "{point}");
        assert!(
            !tmp.path().join(COMPACT_TMP_FILE_NAME).exists(),
            "{point}: temp file left"
        );
    }
}

#[test]
fn check_reports_and_repairs_a_torn_tail_and_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(WAL_FILE_NAME);
    let recs: Vec<Owned> = (0..6).map(sample).collect();
    let ends = write_log(tmp.path(), &recs);

    let clean = check(&path, false).unwrap();
    assert!(clean.is_clean(), "{clean}");
    assert_eq!(clean.records.total(), 6);
    assert!(clean.to_string().contains("status: OK"));

    let full = fs::read(&path).unwrap();
    fs::write(&path, &full[..full.len() - 3]).unwrap();
    let torn = check(&path, false).unwrap();
    assert!(!torn.is_clean());
    assert_eq!(torn.records.total(), 5);
    assert!(matches!(torn.end, ReadEnd::TornTail { offset, .. } if offset == ends[4] as u64));
    assert!(torn.to_string().contains("TORN TAIL"), "{torn}");
    assert_eq!(
        file_len(tmp.path()),
        full.len() as u64 - 3,
        "check without repair is read-only"
    );

    let mut bad = full.clone();
    bad[ends[2] + 2] ^= 0x55; // the crc of the fourth record
    fs::write(&path, &bad).unwrap();
    let corrupt = check(&path, false).unwrap();
    assert!(
        matches!(corrupt.end, ReadEnd::Corrupt { offset, next_valid_offset, .. }
            if offset == ends[2] as u64 && next_valid_offset == ends[3] as u64),
        "{corrupt}"
    );
    assert!(
        corrupt.to_string().contains("CORRUPT at byte offset"),
        "{corrupt}"
    );
    let repaired = check(&path, true).unwrap();
    assert!(repaired.repaired && !repaired.is_clean());
    assert_eq!(file_len(tmp.path()), ends[2] as u64);
    assert!(check(&path, false).unwrap().is_clean());

    fs::write(&path, b"garbage!garbage!garbage!").unwrap();
    assert!(matches!(check(&path, true), Err(WalError::UnknownFormat { .. })));
}

#[test]
fn every_error_line_starts_with_a_redis_error_code() {
    let errs = [
        WalError::Misconf {
            cause: "No space left on device (os error 28)".into(),
        },
        WalError::AlreadyCompacting,
        WalError::NoSnapshotSource,
        WalError::ShutDown,
        WalError::io("opening", Path::new("/x"), std::io::Error::from_raw_os_error(13)),
    ];
    for e in errs {
        let s = e.to_string();
        assert!(s.starts_with("ERR ") || s.starts_with("MISCONF "), "{s}");
        assert!(!s.contains('\n'), "{s}");
    }
}

#[test]
fn the_fsync_policy_reads_from_config_as_lowercase_words() {
    #[derive(serde::Deserialize)]
    struct C {
        fsync: FsyncPolicy,
    }
    let c: C = toml::from_str("fsync = \"always\"").unwrap();
    assert_eq!(c.fsync, FsyncPolicy::Always);
    assert!(toml::from_str::<C>("fsync = \"sometimes\"").is_err());
    assert_eq!("never".parse::<FsyncPolicy>(), Ok(FsyncPolicy::Never));
    assert_eq!(FsyncPolicy::default(), FsyncPolicy::Interval);
}

/// Writes `header + before + one transaction frame of txn`; returns (file bytes, frame start).
fn write_log_with_transaction(dir: &Path, before: &[Owned], txn: &[Owned]) -> (Vec<u8>, usize) {
    let mut bytes = file_header().to_vec();
    for r in before {
        r.encode(&mut bytes);
    }
    let start = bytes.len();
    let mut frames = Vec::new();
    for r in txn {
        r.encode(&mut frames);
    }
    assert!(encode_transaction(&frames, &mut bytes));
    fs::write(dir.join(WAL_FILE_NAME), &bytes).unwrap();
    (bytes, start)
}

#[test]
fn a_transaction_frame_replays_all_its_records_in_order_and_check_counts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let before: Vec<Owned> = (0..2).map(sample).collect();
    let txn: Vec<Owned> = (4..12).map(sample).collect();
    write_log_with_transaction(tmp.path(), &before, &txn);
    let report = check(&tmp.path().join(WAL_FILE_NAME), false).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.records.total(), 10);
    assert_eq!(report.records.transactions, 1);
    assert!(report.to_string().contains("in 1 transactions"), "{report}");
    let (got, _) = replay(cfg(tmp.path(), FsyncPolicy::Never)).unwrap();
    assert_eq!(got, [before, txn].concat());
}

#[test]
fn a_transaction_cut_at_any_byte_is_a_torn_tail_and_none_of_it_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let before: Vec<Owned> = (0..2).map(sample).collect();
    let txn: Vec<Owned> = (4..10).map(sample).collect();
    let (full, start) = write_log_with_transaction(tmp.path(), &before, &txn);
    for cut in start + 1..full.len() {
        fs::write(tmp.path().join(WAL_FILE_NAME), &full[..cut]).unwrap();
        // The inner records carry no valid crc: the cut is a torn tail, not corruption.
        let report = check(&tmp.path().join(WAL_FILE_NAME), false).unwrap();
        assert!(
            matches!(report.end, ReadEnd::TornTail { offset, .. } if offset == start as u64),
            "cut at {cut}: {report}"
        );
        let (got, _) = replay(cfg(tmp.path(), FsyncPolicy::Never)).unwrap();
        assert_eq!(got, before, "cut at {cut}");
        assert_eq!(file_len(tmp.path()), start as u64);
    }
}

#[test]
fn a_single_record_or_an_oversized_batch_is_not_wrapped() {
    let mut one = Vec::new();
    sample(0).encode(&mut one);
    let mut out = Vec::new();
    assert!(!encode_transaction(&one, &mut out));
    assert!(!encode_transaction(&[], &mut out));
    assert!(out.is_empty());
}

#[test]
fn a_damaged_inner_record_makes_the_whole_transaction_bad() {
    let mut frames = Vec::new();
    sample(0).encode(&mut frames);
    sample(1).encode(&mut frames);
    let mut out = Vec::new();
    assert!(encode_transaction(&frames, &mut out));
    assert!(matches!(parse_frame(&out), Frame::Transaction { len, .. } if len == out.len()));
    // Flip one byte of an inner length, then fix the outer crc: still refused as a whole.
    out[FRAME_HEADER_LEN + 4] ^= 0x40;
    let crc = crc32c::crc32c(&out[4..]);
    out[..4].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(parse_frame(&out), Frame::Bad(_)));
}

#[test]
fn a_patch_whose_bytes_overrun_its_length_is_a_bad_frame() {
    let mut out = Vec::new();
    Record::Patch {
        key: b"k",
        offset: 10,
        bytes: b"abc",
        len: 12,
        expires_at_ms: None,
    }
    .encode(&mut out);
    // The CRC matches: the payload itself is inconsistent, and replay must
    // not trust it (it would write past the length it claims).
    assert!(matches!(
        parse_frame(&out),
        Frame::Bad("patch length out of bounds")
    ));
}

#[test]
fn a_log_file_deleted_while_open_fails_writes_until_compaction_writes_a_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = cfg(tmp.path(), FsyncPolicy::Always);
    c.flush_interval = Duration::from_secs(3600);
    let (wal, _) = Wal::open(c, |_| {}).unwrap();
    let mut enc = Vec::new();
    sample(0).encode(&mut enc);
    wal.commit(wal.append(&enc)).unwrap();
    fs::remove_file(tmp.path().join(WAL_FILE_NAME)).unwrap();
    enc.clear();
    sample(1).encode(&mut enc);
    let err = wal.commit(wal.append(&enc)).unwrap_err().to_string();
    assert!(err.contains("link count 0"), "{err}");
    assert!(wal.check_writable().is_err());
    assert!(wal.stats().failing);
}

fn synced_watermark(dir: &Path) -> Option<u64> {
    watermark::Watermark::read(dir).unwrap()
}

#[test]
fn the_synced_watermark_never_states_more_than_the_synced_log_and_follows_a_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FakeStore::new(2, Duration::ZERO);
    // `never`: only FLUSH, shutdown, open and compaction fsync, so the watermark moves only then.
    let (wal, _) = Wal::open(cfg(tmp.path(), FsyncPolicy::Never), |_| {}).unwrap();
    wal.set_snapshot_source(store.clone());
    assert_eq!(synced_watermark(tmp.path()), Some(FILE_HEADER_LEN as u64));
    let mut enc = Vec::new();
    let overwrite = |store: &FakeStore, i: usize, enc: &mut Vec<u8>| {
        let key = format!("k{}", i % 10);
        store.write(
            &wal,
            Record::Set {
                key: key.as_bytes(),
                value: &[b'x'; 40],
                expires_at_ms: None,
            },
            enc,
        );
    };
    for i in 0..500 {
        overwrite(&store, i, &mut enc);
    }
    wal.sync_all().unwrap();
    let flushed = file_len(tmp.path());
    assert_eq!(synced_watermark(tmp.path()), Some(flushed));
    // Written by the flusher but never fsynced: the watermark stays at the FLUSH.
    for i in 0..100 {
        overwrite(&store, i, &mut enc);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while file_len(tmp.path()) == flushed {
        assert!(Instant::now() < deadline, "the flusher wrote nothing");
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(synced_watermark(tmp.path()), Some(flushed));
    // A compaction shrinks the log: the watermark is lowered to the new, fsynced file.
    wal.start_compaction().unwrap();
    wal.wait_compaction().unwrap();
    let compacted = file_len(tmp.path());
    assert!(compacted < flushed);
    assert!(synced_watermark(tmp.path()).unwrap() <= compacted);
    wal.shutdown().unwrap();
    assert_eq!(synced_watermark(tmp.path()), Some(file_len(tmp.path())));
}

#[test]
fn damage_past_the_synced_watermark_is_truncated_and_damage_before_it_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let synced: Vec<Owned> = (0..4).map(sample).collect();
    let unsynced: Vec<Owned> = (4..10).map(sample).collect();
    let ends = write_log(tmp.path(), &synced);
    // Open + shutdown records the whole (synced) log as the watermark.
    let (got, _) = replay(cfg(tmp.path(), FsyncPolicy::Always)).unwrap();
    assert_eq!(got, synced);
    let path = tmp.path().join(WAL_FILE_NAME);
    let clean = fs::read(&path).unwrap();
    let mut tail_ends = Vec::new();
    let mut image = clean.clone();
    for r in &unsynced {
        r.encode(&mut image);
        tail_ends.push(image.len());
    }
    // Unsynced records 6 and 7 never reached the disk; 8 and 9 did.
    let mut torn = image.clone();
    torn[tail_ends[1]..tail_ends[3]].fill(0);
    fs::write(&path, &torn).unwrap();
    let (got, report) = replay(cfg(tmp.path(), FsyncPolicy::Always)).unwrap();
    assert_eq!(got[..synced.len()], synced[..]);
    assert_eq!(got[synced.len()..], unsynced[..2]);
    assert_eq!(report.truncated_bytes, (image.len() - tail_ends[1]) as u64);
    assert_eq!(report.dropped_records, 2);
    assert_eq!(file_len(tmp.path()), tail_ends[1] as u64);

    // The same damage inside the synced records is refused, and the file is left alone.
    let mut corrupt = image.clone();
    let len = tail_ends[3] - tail_ends[1];
    corrupt[ends[0]..ends[0] + len].fill(0);
    fs::write(&path, &corrupt).unwrap();
    // The previous start recorded a shorter synced length; put back the one that describes `image`.
    watermark::Watermark::open(tmp.path()).record(clean.len() as u64);
    match replay(cfg(tmp.path(), FsyncPolicy::Always)) {
        Err(WalError::Corrupt { offset, .. }) => assert_eq!(offset, ends[0] as u64),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(fs::read(&path).unwrap(), corrupt);
}

#[test]
fn a_new_data_directory_and_its_missing_parents_are_created() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/c");
    create_dir_durably(&dir).unwrap();
    assert!(dir.is_dir());
    create_dir_durably(&dir).unwrap();
}
