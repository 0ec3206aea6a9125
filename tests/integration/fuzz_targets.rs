//! The fuzz targets of `tests/fuzz` on stable, in-process (no server): every
//! committed seed of `tests/fuzz/corpus/<target>/` through its target, then
//! a bounded number of generated inputs through the same functions
//! (`kvserver::fuzzing`). A crash found by `cargo fuzz` becomes a seed, so it
//! is re-checked here on every `cargo test` (see docs/fuzzing.md).

use std::path::PathBuf;

use kvserver::fuzzing;
use proptest::prelude::*;

/// The committed seeds of one target, by file name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    seeds.sort();
    assert!(
        seeds.len() >= 10,
        "only {} seeds in {}",
        seeds.len(),
        dir.display()
    );
    seeds
}

/// Runs `target` on every seed, naming the seed that fails.
fn run_seeds(target: &str, body: fn(&[u8])) {
    for (name, bytes) in seeds(target) {
        if let Err(panic) = std::panic::catch_unwind(|| body(&bytes)) {
            eprintln!("seed {target}/{name} failed");
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn every_parser_seed_frames_the_same_whole_split_and_byte_by_byte() {
    run_seeds("parser", fuzzing::parser_framing);
}

#[test]
fn every_session_seed_replies_the_same_whole_and_split() {
    run_seeds("session", fuzzing::session_end_to_end);
}

#[test]
fn every_wal_record_seed_decodes_without_panic_and_round_trips() {
    run_seeds("wal_record", fuzzing::wal_record);
}

#[test]
fn the_nondeterminism_filter_spares_plain_commands_only() {
    assert!(fuzzing::is_deterministic(b"SET k v\r\nGET k\r\nSET k v GET\r\n"));
    assert!(!fuzzing::is_deterministic(b"SET k v px 5\r\nGET k\r\n"));
    assert!(!fuzzing::is_deterministic(b"PING\r\nKEYS *\r\n"));
}

#[test]
fn an_unauthenticated_client_streaming_a_megabyte_stays_within_the_bound() {
    // The filler option on its own, from every state a request can leave the
    // parser in: inside a bulk, inside a header line, inside an inline line.
    for stream in [
        &b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16384\r\n"[..],
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16",
        b"*10\r\n",
        b"GET ",
        b"",
    ] {
        let mut input = vec![fuzzing::SESSION_REQUIREPASS | fuzzing::SESSION_FILLER, 0];
        input.extend_from_slice(stream);
        fuzzing::session_end_to_end(&input);
    }
}

/// Pieces a request stream is built from: whole commands (RESP and inline,
/// including AUTH/HELLO/MULTI), protocol punctuation and raw bytes, so
/// generated inputs reach deep states instead of failing at the first byte.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    let names = prop::sample::select(vec![
        "SET", "GET", "INCR", "APPEND", "SETRANGE", "GETRANGE", "DEL", "EXISTS", "MSET", "MGET", "HSET",
        "HGET", "HDEL", "HGETALL", "MULTI", "EXEC", "DISCARD", "WATCH", "SELECT", "SWAPDB", "AUTH", "HELLO",
        "PING", "ECHO", "QUIT", "DBSIZE", "FLUSHDB", "STRLEN", "TYPE", "RENAME", "nosuch",
    ]);
    let arg = prop_oneof![
        Just(b"pw".to_vec()),
        Just(b"3".to_vec()),
        Just(b"k".to_vec()),
        "-?[0-9]{1,3}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..12),
    ];
    let command = (names, proptest::collection::vec(arg, 0..4));
    prop_oneof![
        3 => command.clone().prop_map(|(name, args)| {
            let mut all = vec![name.as_bytes().to_vec()];
            all.extend(args);
            fuzzing::encode_resp(&all)
        }),
        2 => command.prop_map(|(name, args)| {
            let mut line = name.as_bytes().to_vec();
            for a in args {
                line.push(b' ');
                line.extend(a.iter().filter(|b| !b" \r\n\t\"'".contains(b)));
            }
            line.extend_from_slice(b"\r\n");
            line
        }),
        1 => prop::sample::select(vec![
            &b"*"[..], b"$", b"\r\n", b"\n", b"\r", b"*1\r\n", b"$4\r\n", b"*-1\r\n", b"*0\r\n", b"$-1\r\n",
            b"*11\r\n", b"$16385\r\n", b"\"", b"'", b"\\x4", b" ",
        ])
        .prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 0..16),
    ]
}

/// A fuzz input: option flags, cut points, then a stream of fragments.
fn fuzz_input() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        proptest::collection::vec(any::<u16>(), 0..8),
        proptest::collection::vec(fragment(), 0..12),
    )
        .prop_map(|(flags, cuts, fragments)| {
            let mut input = vec![flags, cuts.len() as u8];
            for cut in cuts {
                input.extend_from_slice(&cut.to_le_bytes());
            }
            input.extend(fragments.concat());
            input
        })
}

/// A WAL fuzz input: a kind byte (usually a real one) and a payload built
/// from length-prefixed fields, so most inputs decode.
fn wal_input() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop_oneof![
        4 => prop::sample::select(vec![1u8, 2, 3, 4, 5, 6, 7, 10, 11, 12, 16, 20]),
        1 => any::<u8>(),
    ];
    let field = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(|b| {
            let mut out = (b.len() as u32).to_le_bytes().to_vec();
            out.extend(b);
            out
        }),
        Just(vec![0]),
        any::<u64>().prop_map(|t| {
            let mut out = vec![1];
            out.extend(t.to_le_bytes());
            out
        }),
        any::<u32>().prop_map(|n| n.to_le_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..4),
    ];
    (kind, proptest::collection::vec(field, 0..8)).prop_map(|(kind, fields)| {
        let mut input = vec![kind];
        input.extend(fields.concat());
        input
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_streams_frame_the_same_whole_split_and_byte_by_byte(input in fuzz_input()) {
        fuzzing::parser_framing(&input);
    }

    #[test]
    fn generated_wal_records_decode_without_panic_and_round_trip(input in wal_input()) {
        fuzzing::wal_record(&input);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_sessions_reply_the_same_whole_and_split(input in fuzz_input()) {
        fuzzing::session_end_to_end(&input);
    }
}
