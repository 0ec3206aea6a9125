//! Many commands in one write, the same stream split into single bytes, and
//! RESP and text commands interleaved on one connection. Expected replies
//! come from a tiny in-test model of the string commands.

use std::collections::HashMap;
use std::io::Write;

use crate::support::*;

/// A deterministic pseudo-random sequence (xorshift), no external seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn bulk(v: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", v.len()).into_bytes();
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
    out
}

/// Builds `n` mixed commands over a small key set; returns the wire bytes
/// and the exact RESP replies Redis would send.
fn workload(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng(seed);
    let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut wire = Vec::new();
    let mut replies = Vec::new();
    for _ in 0..n {
        let key = format!("k{}", rng.below(50)).into_bytes();
        let key2 = format!("k{}", rng.below(50)).into_bytes();
        match rng.below(8) {
            0 | 1 => {
                let value = if rng.below(2) == 0 {
                    rng.below(1000).to_string().into_bytes()
                } else {
                    format!("v{}\r\n{}", rng.next(), rng.below(10)).into_bytes()
                };
                wire.extend(resp(&[&b"SET"[..], &key, &value]));
                model.insert(key, value);
                replies.extend_from_slice(b"+OK\r\n");
            }
            2 | 3 => {
                wire.extend(resp(&[&b"GET"[..], &key]));
                match model.get(&key) {
                    Some(v) => replies.extend(bulk(v)),
                    None => replies.extend_from_slice(b"$-1\r\n"),
                }
            }
            4 => {
                wire.extend(resp(&[&b"INCR"[..], &key]));
                let current = model.get(&key).cloned().unwrap_or_else(|| b"0".to_vec());
                let parsed = std::str::from_utf8(&current)
                    .ok()
                    .filter(|s| !s.starts_with('+') && (s.len() == 1 || !s.starts_with('0')))
                    .and_then(|s| s.parse::<i64>().ok());
                match parsed.and_then(|n| n.checked_add(1)) {
                    Some(n) => {
                        model.insert(key, n.to_string().into_bytes());
                        replies.extend(format!(":{n}\r\n").into_bytes());
                    }
                    None => replies.extend_from_slice(b"-ERR value is not an integer or out of range\r\n"),
                }
            }
            5 => {
                wire.extend(resp(&[&b"DEL"[..], &key, &key2]));
                let mut n = 0;
                if model.remove(&key).is_some() {
                    n += 1;
                }
                if model.remove(&key2).is_some() {
                    n += 1;
                }
                replies.extend(format!(":{n}\r\n").into_bytes());
            }
            6 => {
                wire.extend(resp(&[&b"MGET"[..], &key, &key2]));
                replies.extend_from_slice(b"*2\r\n");
                for k in [&key, &key2] {
                    match model.get(k) {
                        Some(v) => replies.extend(bulk(v)),
                        None => replies.extend_from_slice(b"$-1\r\n"),
                    }
                }
            }
            _ => {
                wire.extend(resp(&[&b"APPEND"[..], &key, b"xy"]));
                let v = model.entry(key).or_default();
                v.extend_from_slice(b"xy");
                replies.extend(format!(":{}\r\n", v.len()).into_bytes());
            }
        }
    }
    (wire, replies)
}

/// Sends `wire` from a second thread (so neither side can deadlock on full
/// socket buffers) and reads `expected.len()` bytes of replies.
fn run_pipelined(server: &Server, wire: Vec<u8>, expected_len: usize, chunk: usize) -> Vec<u8> {
    let mut c = server.raw();
    let mut writer = c.stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        for part in wire.chunks(chunk) {
            writer.write_all(part).expect("write");
        }
    });
    let got = c.read_n(expected_len);
    sender.join().expect("writer thread");
    // Nothing beyond the expected replies.
    assert_eq!(show(&c.cmd(&["PING"])), "+PONG\r\n");
    got
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    let i = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = i.saturating_sub(40);
    format!(
        "first difference at byte {i}: got {:?} expected {:?}",
        show(&a[from..(i + 40).min(a.len())]),
        show(&b[from..(i + 40).min(b.len())])
    )
}

#[test]
fn ten_thousand_commands_in_one_write() {
    let server = Server::start();
    let (wire, expected) = workload(10_000, 0x9e37_79b9_7f4a_7c15);
    let got = run_pipelined(&server, wire.clone(), expected.len(), wire.len());
    assert!(got == expected, "{}", first_difference(&got, &expected));
}

#[test]
fn the_same_stream_byte_by_byte_gives_identical_replies() {
    let server = Server::start();
    let (wire, expected) = workload(200, 42);
    let got = run_pipelined(&server, wire, expected.len(), 1);
    assert!(got == expected, "{}", first_difference(&got, &expected));
}

#[test]
fn odd_sized_chunks_give_identical_replies() {
    let server = Server::start();
    let (wire, expected) = workload(2000, 7);
    let got = run_pipelined(&server, wire, expected.len(), 997);
    assert!(got == expected, "{}", first_difference(&got, &expected));
}

#[test]
fn mixed_resp_and_text_on_one_connection() {
    let server = Server::start();
    let mut c = server.raw();
    let mut wire = Vec::new();
    wire.extend(resp(&["SET", "a", "1"]));
    wire.extend_from_slice(b"GET a\r\n");
    wire.extend(resp(&["INCR", "a"]));
    wire.extend_from_slice(b"INCR a\n");
    wire.extend_from_slice(b"\r\n");
    wire.extend(resp(&["MGET", "a", "b"]));
    wire.extend_from_slice(b"MGET a b\r\n");
    wire.extend_from_slice(b"*0\r\n");
    wire.extend(resp(&["GET", "a"]));
    c.send(&wire);
    c.expect(b"+OK\r\n1\r\n:2\r\n(integer) 3\n*2\r\n$1\r\n3\r\n$-1\r\n1) 3\r\n2) (nil)\r\n$1\r\n3\r\n");
}

#[test]
fn skipped_frames_produce_no_reply() {
    let server = Server::start();
    let mut c = server.raw();
    c.send(b"*0\r\n*-10\r\n\r\n\n   \r\n*-1\r\n");
    c.send(&resp(&["PING"]));
    c.expect(b"+PONG\r\n");
    c.send(b"\r\n");
    c.send(b"PING\r\n");
    c.expect(b"PONG\r\n");
}
