//! Fuzz targets, kept in the library so that one body serves two drivers:
//! `cargo fuzz` on nightly (`tests/fuzz/fuzz_targets/*.rs`, each a
//! three-line `fuzz_target!` calling a function here) and the bounded
//! property tests that run on stable in `cargo test`
//! (`tests/integration/fuzz_targets.rs`). Not part of the server's API.
//!
//! Each target takes arbitrary bytes and panics when an invariant is
//! violated, so libFuzzer records the input as a crash and `cargo test`
//! fails with the same message. The first bytes of an input are options
//! (flags, then where to cut the rest into reads); see [`split_input`].
//! Every target accepts every input: there is no "invalid" input, only
//! input that exercises less.
//!
//! See `docs/fuzzing.md` for how to run a long session and how to turn a
//! crash into a committed seed and a regression test.

use std::sync::Arc;

use crate::command;
use crate::config::{Config, InlineReplies};
use crate::protocol::{ArgSource, Limits, Parsed, Parser, Protocol, ProtocolError};
use crate::session::Session;
use crate::state::{ClientState, ServerState};
use crate::store::Databases;
use crate::wal::record::{self, Frame, Record, RecordKind};

/// Most cut points an input can ask for (more would make every input
/// mostly options).
const MAX_CUTS: usize = 16;

/// The password of the fuzzed server when an input sets
/// [`SESSION_REQUIREPASS`] (short, so the fuzzer can find `AUTH pw`).
pub const FUZZ_PASSWORD: &str = "pw";

/// Parser option flag: apply the pre-authentication limits.
pub const PARSER_UNAUTHENTICATED: u8 = 1;
/// Parser option flag: tiny framing limits, so the limit errors are reached
/// by short inputs (see [`TINY_LIMITS`]).
pub const PARSER_TINY_LIMITS: u8 = 2;

/// Limits small enough for a few-byte input to exceed each of them.
pub const TINY_LIMITS: Limits = Limits {
    max_inline: 24,
    max_multibulk: 6,
    max_bulk: 40,
};

/// Session option flag: the server has `requirepass` set to [`FUZZ_PASSWORD`].
pub const SESSION_REQUIREPASS: u8 = 1;
/// Session option flag: `inline-replies resp`.
pub const SESSION_INLINE_RESP: u8 = 2;
/// Session option flag: after the input, stream [`FILLER_BYTES`] more bytes
/// while the client is unauthenticated, to check its memory stays bounded.
pub const SESSION_FILLER: u8 = 4;

/// How much filler [`SESSION_FILLER`] streams: far more than an
/// unauthenticated client may make the server buffer.
pub const FILLER_BYTES: usize = 1024 * 1024;

/// Most read-buffer memory an unauthenticated session may hold. The largest
/// partial request it may buffer is 10 bulks of 16 KiB plus one
/// header or inline line of up to 64 KiB (~230 KiB); the buffer grows by
/// doubling, so 512 KiB is the bound.
pub const UNAUTHENTICATED_BUFFER_BOUND: usize = 512 * 1024;

/// Splits a fuzz input into its option byte, its cut points and the byte
/// stream to feed. Layout: `flags`, `n` (cuts = `n % 17`), then `n` cuts as
/// little-endian `u16` offsets into the stream (taken modulo its length + 1),
/// then the stream. Missing bytes read as zero, so any input is valid.
pub fn split_input(data: &[u8]) -> (u8, Vec<usize>, &[u8]) {
    let flags = data.first().copied().unwrap_or(0);
    let count = usize::from(data.get(1).copied().unwrap_or(0)) % (MAX_CUTS + 1);
    let header = (2 + 2 * count).min(data.len());
    let raw = data.get(2..header).unwrap_or(&[]);
    let stream = &data[header..];
    let mut cuts: Vec<usize> = raw
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (stream.len() + 1))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    (flags, cuts, stream)
}

/// Cuts `stream` at the sorted `cuts` (empty pieces included: a read of
/// nothing must change nothing).
pub fn chunks_at<'a>(stream: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut prev = 0;
    for &cut in cuts {
        out.push(&stream[prev..cut]);
        prev = cut;
    }
    out.push(&stream[prev..]);
    out
}

/// What the parser made of a stream, one event per decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framed {
    /// A command and its arguments, copied out of the buffers.
    Command {
        /// RESP or text (and whether the line ended in CRLF).
        protocol: Protocol,
        /// The arguments, the command name first.
        args: Vec<Vec<u8>>,
        /// Bytes of the stream the command used.
        len: usize,
    },
    /// Bytes skipped (empty line, `*0`, `*-1`).
    Skip(usize),
    /// The framing error that ends the stream.
    Error(ProtocolError),
}

/// Frames `chunks` the way a session does: each chunk is appended to a
/// buffer whose front is the current command's first byte, every complete
/// command is taken out, and a partial one waits for the next chunk.
/// Checks the parser's contract on the way (lengths and ranges in bounds).
/// Returns the events and the bytes left over at the end (a partial
/// command; 0 after an error).
pub fn frame_chunks(limits: Limits, unauthenticated: bool, chunks: &[&[u8]]) -> (Vec<Framed>, usize) {
    let mut parser = Parser::new(limits);
    parser.set_unauthenticated(unauthenticated);
    let mut buf: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match parser.parse(&buf) {
                Parsed::Command {
                    protocol,
                    source,
                    len,
                } => {
                    assert!(
                        len > 0 && len <= buf.len(),
                        "command len {len} of {} buffered",
                        buf.len()
                    );
                    let base: &[u8] = match source {
                        ArgSource::Buffer => &buf[..len],
                        ArgSource::Scratch => parser.scratch(),
                    };
                    assert!(!parser.args().is_empty(), "a command without arguments");
                    let args = parser
                        .args()
                        .iter()
                        .map(|&(s, e)| {
                            assert!(s <= e && e <= base.len(), "range {s}..{e} of {}", base.len());
                            base[s..e].to_vec()
                        })
                        .collect();
                    assert!(!parser.in_progress(), "a framed command left partial state");
                    events.push(Framed::Command { protocol, args, len });
                    buf.drain(..len);
                }
                Parsed::Skip { len } => {
                    assert!(
                        len > 0 && len <= buf.len(),
                        "skip {len} of {} buffered",
                        buf.len()
                    );
                    events.push(Framed::Skip(len));
                    buf.drain(..len);
                }
                Parsed::Incomplete => break,
                Parsed::Error(e) => {
                    // What was buffered when the error struck depends on the
                    // reads, and is thrown away with the connection.
                    events.push(Framed::Error(e));
                    return (events, 0);
                }
            }
        }
    }
    (events, buf.len())
}

/// RESP encoding of one command, the canonical form of its arguments.
pub fn encode_resp(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Target `parser`: the same stream framed whole, split at the input's cut
/// points, and byte by byte gives the same commands, skips and error, and
/// every command re-encoded as RESP frames back to the same arguments.
pub fn parser_framing(data: &[u8]) {
    let (flags, cuts, stream) = split_input(data);
    let unauthenticated = flags & PARSER_UNAUTHENTICATED != 0;
    let limits = if flags & PARSER_TINY_LIMITS != 0 {
        TINY_LIMITS
    } else {
        Limits::default()
    };
    let whole = frame_chunks(limits, unauthenticated, &[stream]);
    let split = frame_chunks(limits, unauthenticated, &chunks_at(stream, &cuts));
    assert_eq!(whole, split, "framing whole vs split at {cuts:?}");
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    let by_byte = frame_chunks(limits, unauthenticated, &bytes);
    assert_eq!(whole, by_byte, "framing whole vs byte by byte");

    let (events, left) = whole;
    let used: usize = events
        .iter()
        .map(|e| match e {
            Framed::Command { len, .. } | Framed::Skip(len) => *len,
            Framed::Error(_) => 0,
        })
        .sum();
    if !matches!(events.last(), Some(Framed::Error(_))) {
        assert_eq!(used + left, stream.len(), "bytes lost between commands");
    }
    for event in &events {
        let Framed::Command { args, .. } = event else {
            continue;
        };
        let wire = encode_resp(args);
        let (again, left) = frame_chunks(Limits::default(), false, &[&wire]);
        let expected = Framed::Command {
            protocol: Protocol::Resp,
            args: args.clone(),
            len: wire.len(),
        };
        assert_eq!((again, left), (vec![expected], 0), "RESP re-encoding of {args:?}");
    }
}

/// What a client saw of a session: every reply byte and whether it closed.
#[derive(Debug, PartialEq, Eq)]
pub struct SessionOutcome {
    /// All replies, in order.
    pub replies: Vec<u8>,
    /// Whether the session asked for the connection to close.
    pub closed: bool,
}

/// A server state with no WAL, no sockets and no threads, as the fuzz
/// targets need: cheap to build fresh for every run.
pub fn fuzz_state(flags: u8) -> ServerState {
    let config = Config {
        wal: false,
        requirepass: (flags & SESSION_REQUIREPASS != 0).then(|| FUZZ_PASSWORD.to_string()),
        inline_replies: if flags & SESSION_INLINE_RESP != 0 {
            InlineReplies::Resp
        } else {
            InlineReplies::Text
        },
        ..Config::default()
    };
    let dbs = Arc::new(Databases::new(config.databases, config.shards));
    ServerState::new(config, dbs, None, None)
}

/// Feeds `chunks` to a fresh session (one read each), checking after every
/// read that an unauthenticated client holds at most
/// [`UNAUTHENTICATED_BUFFER_BOUND`] of input buffer; with `filler`, then
/// streams [`FILLER_BYTES`] of `x` while the client stays unauthenticated.
pub fn run_session(flags: u8, chunks: &[&[u8]]) -> SessionOutcome {
    let state = fuzz_state(flags);
    let mut session = Session::new(&state, ClientState::default(), 0);
    let mut replies = Vec::new();
    let check_bound = |session: &Session| {
        if state.runtime.requirepass_set() && !session.client.authenticated {
            let held = session.input_buffer_capacity();
            assert!(
                held <= UNAUTHENTICATED_BUFFER_BOUND,
                "an unauthenticated session holds {held} bytes of input buffer"
            );
        }
    };
    for chunk in chunks {
        session.feed(&state, chunk);
        replies.extend_from_slice(session.replies());
        session.clear_replies();
        check_bound(&session);
    }
    if flags & SESSION_FILLER != 0 && state.runtime.requirepass_set() {
        let filler = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        while sent < FILLER_BYTES && !session.should_close() && !session.client.authenticated {
            session.feed(&state, &filler);
            session.clear_replies();
            check_bound(&session);
            sent += filler.len();
        }
    }
    SessionOutcome {
        replies,
        closed: session.should_close(),
    }
}

/// Commands whose replies depend on the clock, on randomness, on hash seeds
/// that differ between two fresh servers, or on process-wide statistics:
/// two runs of the same input may differ, so [`session_end_to_end`] only
/// checks them for panics.
const NONDETERMINISTIC: &[&str] = &[
    "client",
    "config",
    "expire",
    "expireat",
    "expiretime",
    "getex",
    "hexpire",
    "hexpireat",
    "hexpiretime",
    "hpexpire",
    "hpexpireat",
    "hpexpiretime",
    "hpttl",
    "hrandfield",
    "hscan",
    "httl",
    "info",
    "keys",
    "memory",
    "object",
    "pexpire",
    "pexpireat",
    "pexpiretime",
    "psetex",
    "pttl",
    "randomkey",
    "scan",
    "setex",
    "stats",
    "time",
    "ttl",
];

/// True when every command of `stream` gives the same replies however and
/// whenever it runs (a `SET` with an expiry counts as time-dependent).
pub fn is_deterministic(stream: &[u8]) -> bool {
    let config = Config::default();
    let limits = Limits {
        max_inline: config.proto_inline_max_size,
        max_multibulk: config.proto_max_multibulk_len,
        max_bulk: config.proto_max_bulk_len,
    };
    let (events, _) = frame_chunks(limits, false, &[stream]);
    events.iter().all(|event| {
        let Framed::Command { args, .. } = event else {
            return true;
        };
        let Some(spec) = command::lookup(&args[0]) else {
            return true;
        };
        if spec.name == "set" {
            let expiring = |a: &Vec<u8>| {
                [&b"ex"[..], b"px", b"exat", b"pxat"]
                    .iter()
                    .any(|option| a.eq_ignore_ascii_case(option))
            };
            return !args.iter().skip(3).any(expiring);
        }
        !NONDETERMINISTIC.contains(&spec.name)
    })
}

/// Target `session`: a fresh session fed the stream in one read and one fed
/// it cut at the input's points never panic, and (for deterministic
/// commands) send the same replies and agree on closing; an unauthenticated
/// client's input buffer stays bounded throughout.
pub fn session_end_to_end(data: &[u8]) {
    let (flags, cuts, stream) = split_input(data);
    let whole = run_session(flags, &[stream]);
    let split = run_session(flags, &chunks_at(stream, &cuts));
    if is_deterministic(stream) {
        assert_eq!(
            whole,
            split,
            "session whole vs split at {cuts:?}:\nwhole: {}\nsplit: {}",
            String::from_utf8_lossy(&whole.replies),
            String::from_utf8_lossy(&split.replies)
        );
    }
}

/// Target `wal_record`: the input, as a kind byte and a payload, is framed
/// with a correct checksum; decoding never panics, and a record (or
/// transaction) that decodes re-encodes to exactly the same bytes. The raw
/// input is also parsed as a frame as it is (wrong checksum and all).
pub fn wal_record(data: &[u8]) {
    let _ = record::parse_frame(data);
    let Some((&kind, payload)) = data.split_first() else {
        return;
    };
    let Ok(payload_len) = u32::try_from(payload.len()) else {
        return;
    };
    let mut frame = vec![0u8; 4];
    frame.extend_from_slice(&payload_len.to_le_bytes());
    frame.push(kind);
    frame.extend_from_slice(payload);
    let crc = crc32c::crc32c(&frame[4..]);
    frame[..4].copy_from_slice(&crc.to_le_bytes());

    match record::parse_frame(&frame) {
        Frame::Complete { record, len } => {
            assert_eq!(len, frame.len(), "a complete frame of the wrong length");
            let mut again = Vec::new();
            record.encode(&mut again);
            assert_eq!(again, frame, "{record:?} re-encodes differently");
        }
        Frame::Transaction { body, len } => {
            assert_eq!(len, frame.len(), "a transaction frame of the wrong length");
            let records: Vec<Record<'_>> = record::transaction_records(body)
                .map(|r| r.expect("a transaction that parsed holds a bad record"))
                .collect();
            let mut frames = Vec::new();
            for r in &records {
                r.encode(&mut frames);
            }
            let mut again = Vec::new();
            if record::encode_transaction(&frames, &mut again) {
                match record::parse_frame(&again) {
                    Frame::Transaction { body, .. } => {
                        let decoded: Vec<Record<'_>> = record::transaction_records(body)
                            .map(|r| r.expect("a re-encoded transaction holds a bad record"))
                            .collect();
                        assert_eq!(decoded, records, "transaction round trip");
                    }
                    other => panic!("a re-encoded transaction parses as {other:?}"),
                }
            } else {
                // A single record is logged bare, never wrapped.
                assert!(
                    records.len() <= 1,
                    "{} records refused as a transaction",
                    records.len()
                );
            }
        }
        Frame::Incomplete { need } => panic!("a whole frame reported incomplete (needs {need})"),
        Frame::Bad(_) => {
            if let Some(kind) = RecordKind::from_byte(kind) {
                // Rejected payloads are rejected by the decoder itself too.
                if kind != RecordKind::Transaction {
                    assert!(record::decode_payload(kind, payload).is_err());
                }
            }
        }
    }
}
