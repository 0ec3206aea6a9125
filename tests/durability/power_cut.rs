//! Power-cut images built from a real log: after a power cut the log is cut back to its length at
//! the last completed fsync, and the bytes written after it come back in any state — here, the
//! worst one out-of-order writeback leaves: a zeroed range with valid frames after it. Damage
//! there (past the synced watermark, `kvserver.wal.synced`) is a torn tail: the server truncates
//! it and starts with every acknowledged write. The same damage inside the synced part is real
//! corruption and is still refused.

use std::path::Path;

use crate::support::{self, frame_offsets, Launch, FILE_HEADER_LEN, SYNCED_FILE, WAL_FILE};

const ACKED: usize = 20;
const IN_FLIGHT: usize = 10;

fn acked_keys() -> Vec<String> {
    (0..ACKED).map(|i| format!("acked{i}")).collect()
}

fn acked_values() -> Vec<Option<String>> {
    (0..ACKED).map(|i| Some(format!("value{i}"))).collect()
}

/// A log whose every record was acknowledged under `always` and covered by the watermark
/// (`FLUSH` records it), left by a SIGKILL: `dir` holds the log and its watermark.
fn acknowledged_log(dir: &Path) {
    let mut server = support::start(dir, &Launch::fsync("always"));
    let mut c = server.client();
    for (i, key) in acked_keys().iter().enumerate() {
        assert!(c.cmd(&["SET", key, &format!("value{i}")]).is_ok());
    }
    c.flush();
    drop(c);
    server.kill9();
}

/// The frames of a batch that was being written when the power went: `IN_FLIGHT` records no
/// client was answered for (taken from another server's log).
fn in_flight_frames() -> Vec<u8> {
    let dir = support::tempdir();
    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    for i in 0..IN_FLIGHT {
        assert!(c
            .cmd(&["SET", &format!("inflight{i}"), "never-acknowledged"])
            .is_ok());
    }
    drop(c);
    server.sigterm();
    let bytes = std::fs::read(dir.path().join(WAL_FILE)).unwrap();
    bytes[FILE_HEADER_LEN..].to_vec()
}

/// Copies the data directory's files (log, watermark) into a fresh directory.
fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = support::tempdir();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
    }
    to
}

/// Zeroes `range` of the log in `dir`.
fn zero(dir: &Path, range: std::ops::Range<usize>) {
    let path = dir.join(WAL_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[range].fill(0);
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn a_zeroed_range_after_the_last_fsync_is_a_torn_tail_and_a_zeroed_synced_range_is_refused() {
    let base = support::tempdir();
    acknowledged_log(base.path());
    let synced = frame_offsets(&base.path().join(WAL_FILE));
    let synced_len = std::fs::metadata(base.path().join(WAL_FILE)).unwrap().len() as usize;
    let tail = in_flight_frames();

    // Power cut during the in-flight batch: the log is its synced part, then the batch with
    // frames 2..5 never written back (zeros) and frames 5.. written back intact.
    let torn = copy_dir(base.path());
    let mut bytes = std::fs::read(torn.path().join(WAL_FILE)).unwrap();
    bytes.extend_from_slice(&tail);
    std::fs::write(torn.path().join(WAL_FILE), &bytes).unwrap();
    let frames = frame_offsets(&torn.path().join(WAL_FILE));
    let first_tail_frame = synced.len();
    let damage = frames[first_tail_frame + 2]..frames[first_tail_frame + 5];
    assert!(damage.start >= synced_len);
    zero(torn.path(), damage.clone());

    let mut server = support::start(torn.path(), &Launch::fsync("always"));
    let mut c = server.client();
    assert_eq!(
        c.mget(&acked_keys()),
        acked_values(),
        "an acknowledged write was lost"
    );
    let truncated = c.info_u64("persistence", "wal_replay_truncated_bytes");
    assert_eq!(truncated as usize, bytes.len() - damage.start);
    for i in 5..IN_FLIGHT {
        assert_eq!(
            c.get(&format!("inflight{i}")),
            None,
            "a record after the damage replayed"
        );
    }
    drop(c);
    let stderr = server.stderr_text();
    assert!(
        stderr.contains(&format!(
            "truncating {truncated} bytes holding {} later records",
            IN_FLIGHT - 5
        )),
        "the warning names the bytes and records dropped:\n{stderr}"
    );
    server.sigterm();
    assert_eq!(
        std::fs::metadata(torn.path().join(WAL_FILE)).unwrap().len() as usize,
        damage.start,
        "the log is cut at the damage"
    );

    // The same range of bytes zeroed inside the synced part: corruption, refused as before.
    let corrupt = copy_dir(base.path());
    let mut bytes = std::fs::read(corrupt.path().join(WAL_FILE)).unwrap();
    bytes.extend_from_slice(&tail);
    std::fs::write(corrupt.path().join(WAL_FILE), &bytes).unwrap();
    let start = synced[5];
    let inside = start..start + damage.len();
    assert!(inside.end < synced_len, "the range must lie in the synced part");
    zero(corrupt.path(), inside.clone());
    let damaged = std::fs::read(corrupt.path().join(WAL_FILE)).unwrap();
    let (status, stderr) = support::start_refused(corrupt.path(), &Launch::fsync("always"));
    assert!(!status.success(), "exit status {status}");
    assert!(
        stderr.contains(&format!("corrupt at byte offset {start}")) && stderr.contains("refusing to start"),
        "the refusal names the offset:\n{stderr}"
    );
    assert_eq!(
        std::fs::read(corrupt.path().join(WAL_FILE)).unwrap(),
        damaged,
        "a refused start must not modify the log"
    );
}

#[test]
fn a_log_without_a_watermark_refuses_damage_anywhere_as_before() {
    let base = support::tempdir();
    acknowledged_log(base.path());
    let dir = copy_dir(base.path());
    std::fs::remove_file(dir.path().join(SYNCED_FILE)).unwrap();
    let synced_len = std::fs::metadata(dir.path().join(WAL_FILE)).unwrap().len() as usize;
    let mut bytes = std::fs::read(dir.path().join(WAL_FILE)).unwrap();
    bytes.extend_from_slice(&in_flight_frames());
    std::fs::write(dir.path().join(WAL_FILE), &bytes).unwrap();
    let frames = frame_offsets(&dir.path().join(WAL_FILE));
    let first_tail_frame = frames.iter().position(|&f| f >= synced_len).unwrap();
    zero(
        dir.path(),
        frames[first_tail_frame + 2]..frames[first_tail_frame + 5],
    );
    let (status, stderr) = support::start_refused(dir.path(), &Launch::fsync("always"));
    assert!(!status.success(), "exit status {status}");
    assert!(stderr.contains("refusing to start"), "{stderr}");
}
