//! Parser throughput: a pipelined buffer of 1000 commands framed by the
//! incremental parser, in RESP and in inline text, reported as bytes/s and
//! commands/s (two groups over the same work).
//!
//! Run: `cargo bench --bench protocol`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kvserver::protocol::{Limits, Parsed, Parser};

const COMMANDS: usize = 1000;

fn resp_buffer() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..COMMANDS {
        let key = format!("key:{i:012}");
        if i % 2 == 0 {
            out.extend_from_slice(
                format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$3\r\nxyz\r\n", key.len()).as_bytes(),
            );
        } else {
            out.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).as_bytes());
        }
    }
    out
}

fn text_buffer() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..COMMANDS {
        if i % 2 == 0 {
            out.extend_from_slice(format!("SET key:{i:012} xyz\r\n").as_bytes());
        } else {
            out.extend_from_slice(format!("GET key:{i:012}\r\n").as_bytes());
        }
    }
    out
}

/// Frames every command in `buf`; returns how many were found.
fn frame_all(parser: &mut Parser, buf: &[u8]) -> usize {
    let mut pos = 0;
    let mut count = 0;
    loop {
        match parser.parse(&buf[pos..]) {
            Parsed::Command { len, .. } => {
                count += 1;
                pos += len;
            }
            Parsed::Skip { len } => pos += len,
            Parsed::Incomplete | Parsed::Error(_) => return count,
        }
    }
}

fn parse(c: &mut Criterion) {
    let buffers = [("resp", resp_buffer()), ("text", text_buffer())];
    for (unit, throughput) in [
        ("bytes", None),
        ("commands", Some(Throughput::Elements(COMMANDS as u64))),
    ] {
        let mut g = c.benchmark_group(format!("parse_pipelined_1000_{unit}"));
        for (name, buf) in &buffers {
            g.throughput(throughput.clone().unwrap_or(Throughput::Bytes(buf.len() as u64)));
            let mut parser = Parser::new(Limits::default());
            g.bench_function(*name, |b| {
                b.iter(|| assert_eq!(frame_all(&mut parser, std::hint::black_box(buf)), COMMANDS))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, parse);
criterion_main!(benches);
