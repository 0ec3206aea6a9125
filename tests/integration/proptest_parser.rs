//! Property tests of the request parser, run on the library directly (no
//! server): arbitrary bytes frame the same however they are split (the
//! `parser` fuzz target's body, see `fuzz_targets.rs`), RESP round-trips
//! however it is split, inline tokens round-trip.

use kvserver::fuzzing::{self, Framed};
use kvserver::protocol::Limits;
use proptest::prelude::*;

/// Drives a parser over `chunks` the way the server does (the fuzz targets'
/// driver, which also checks the parser's contract on every call). Returns
/// the commands and whether it ended with an error.
fn drive(chunks: &[Vec<u8>]) -> (Vec<Vec<Vec<u8>>>, bool) {
    let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    let (events, _) = fuzzing::frame_chunks(Limits::default(), false, &chunks);
    let mut commands = Vec::new();
    for event in events {
        match event {
            Framed::Command { args, .. } => commands.push(args),
            Framed::Skip(_) => {}
            Framed::Error(_) => return (commands, true),
        }
    }
    (commands, false)
}

/// Splits `bytes` at the given cut points.
fn split_at_cuts(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut prev = 0;
    for p in points {
        out.push(bytes[prev..p].to_vec());
        prev = p;
    }
    out.push(bytes[prev..].to_vec());
    out
}

fn interesting_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        // Protocol-looking noise: more likely to reach deep parser states.
        proptest::collection::vec(
            prop_oneof![
                Just(b'*'),
                Just(b'$'),
                Just(b'\r'),
                Just(b'\n'),
                Just(b'-'),
                Just(b'"'),
                Just(b'\''),
                Just(b'\\'),
                Just(b' '),
                b'0'..=b'9',
                any::<u8>(),
            ],
            0..200
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_frame_the_same_whole_split_and_byte_by_byte(
        flags in any::<u8>(),
        bytes in interesting_bytes(),
        cuts in proptest::collection::vec(any::<u16>(), 0..8),
    ) {
        // The `parser` fuzz target's body, on protocol-looking noise.
        let mut input = vec![flags, cuts.len() as u8];
        for cut in &cuts {
            input.extend_from_slice(&cut.to_le_bytes());
        }
        input.extend_from_slice(&bytes);
        fuzzing::parser_framing(&input);
    }

    #[test]
    fn resp_args_round_trip_however_split(
        commands in proptest::collection::vec(
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6),
            1..5,
        ),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut wire = Vec::new();
        for c in &commands {
            wire.extend(fuzzing::encode_resp(c));
        }
        let (parsed, error) = drive(&split_at_cuts(&wire, &cuts));
        prop_assert!(!error);
        prop_assert_eq!(parsed, commands);
    }

    #[test]
    fn resp_split_at_every_byte(
        args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..4),
    ) {
        let wire = fuzzing::encode_resp(&args);
        let chunks: Vec<Vec<u8>> = wire.iter().map(|&b| vec![b]).collect();
        let (parsed, error) = drive(&chunks);
        prop_assert!(!error);
        prop_assert_eq!(parsed, vec![args]);
    }

    #[test]
    fn inline_tokens_round_trip(
        lines in proptest::collection::vec(
            proptest::collection::vec("[A-Za-z0-9_:.,;=+/*?!@#%^&()<>{}\\[\\]|~-]{1,12}", 1..6),
            1..4,
        ),
        seps in proptest::collection::vec("[ \t]{1,3}", 6),
        crlf in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        // A line must not start with '*' (that means RESP).
        let lines: Vec<Vec<String>> = lines
            .into_iter()
            .map(|mut l| {
                if l[0].starts_with('*') {
                    l[0].insert(0, 'x');
                }
                l
            })
            .collect();
        let mut wire = Vec::new();
        for line in &lines {
            for (i, tok) in line.iter().enumerate() {
                if i > 0 {
                    wire.extend_from_slice(seps[i % seps.len()].as_bytes());
                }
                wire.extend_from_slice(tok.as_bytes());
            }
            wire.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
        let expected: Vec<Vec<Vec<u8>>> = lines
            .iter()
            .map(|l| l.iter().map(|t| t.as_bytes().to_vec()).collect())
            .collect();
        let (parsed, error) = drive(&split_at_cuts(&wire, &cuts));
        prop_assert!(!error);
        prop_assert_eq!(parsed, expected);
    }

    #[test]
    fn quoted_inline_args_round_trip(
        args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..5),
    ) {
        // Encode each argument as a double-quoted string with \xHH escapes
        // for everything but plain alphanumerics.
        let mut wire = b"CMD".to_vec();
        for a in &args {
            wire.extend_from_slice(b" \"");
            for &b in a {
                if b.is_ascii_alphanumeric() {
                    wire.push(b);
                } else {
                    wire.extend_from_slice(format!("\\x{b:02x}").as_bytes());
                }
            }
            wire.push(b'"');
        }
        wire.extend_from_slice(b"\r\n");
        let (parsed, error) = drive(&[wire]);
        prop_assert!(!error);
        let mut expected = vec![b"CMD".to_vec()];
        expected.extend(args);
        prop_assert_eq!(parsed, vec![expected]);
    }
}
