//! `--subscribers N`: connections subscribed to the `publish` test's
//! channel, each on its own thread, counting the messages delivered, so a
//! fan-out benchmark reports deliveries per second next to publishes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::command::PUBLISH_CHANNEL;

/// The marker each delivered message carries (`$7\r\nmessage\r\n`).
const MARKER: &[u8] = b"$7\r\nmessage\r\n";

/// Running subscribers and their shared delivery count.
pub struct Subscribers {
    delivered: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Subscribers {
    /// Connects `n` subscribers and waits for each subscription's confirmation.
    pub fn start(host: &str, port: u16, n: usize, password: Option<&str>) -> Result<Subscribers> {
        let delivered = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(n);
        for _ in 0..n {
            let mut stream = TcpStream::connect((host, port))
                .with_context(|| format!("subscriber cannot connect to {host}:{port}"))?;
            stream.set_read_timeout(Some(Duration::from_millis(200)))?;
            if let Some(pw) = password {
                stream.write_all(&encode(&["AUTH", pw]))?;
            }
            stream.write_all(&encode(&["SUBSCRIBE", PUBLISH_CHANNEL]))?;
            // Wait for the confirmation so the test starts with every receiver.
            let mut seen = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(5);
            while !contains(&seen, b"subscribe\r\n") {
                if Instant::now() > deadline {
                    bail!("subscriber got no SUBSCRIBE confirmation");
                }
                let mut buf = [0u8; 1024];
                match stream.read(&mut buf) {
                    Ok(0) => bail!("subscriber connection closed"),
                    Ok(k) => seen.extend_from_slice(&buf[..k]),
                    Err(_) => {}
                }
            }
            let delivered = Arc::clone(&delivered);
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || count(stream, &delivered, &stop)));
        }
        Ok(Subscribers {
            delivered,
            stop,
            threads,
        })
    }

    /// Messages delivered so far (all subscribers).
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Waits until deliveries stop growing (at most `limit`), then stops the
    /// subscribers; returns the total.
    pub fn finish(self, limit: Duration) -> u64 {
        let deadline = Instant::now() + limit;
        let mut last = self.delivered();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
            let now = self.delivered();
            if now == last {
                break;
            }
            last = now;
        }
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        self.delivered.load(Ordering::Relaxed)
    }
}

/// Reads until stopped, counting message markers (a marker split across
/// two reads is found through the kept tail).
fn count(mut stream: TcpStream, delivered: &AtomicU64, stop: &AtomicBool) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                let mut found = 0;
                let mut at = 0;
                while let Some(i) = find(&tail[at..], MARKER) {
                    found += 1;
                    at += i + MARKER.len();
                }
                delivered.fetch_add(found, Ordering::Relaxed);
                let keep = (MARKER.len() - 1).min(tail.len() - at);
                tail.drain(..tail.len() - keep);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}
