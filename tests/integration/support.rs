//! Shared helpers: a kvserver child process on a free loopback port and a
//! raw TCP client that reads whole RESP replies or text lines, every read
//! bounded by a socket timeout.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const KVSERVER: &str = env!("CARGO_BIN_EXE_kvserver");
/// Upper bound for any single blocking read in the tests.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A kvserver child process, killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    stderr: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// A server with default options (`--no-wal`, port 0).
    pub fn start() -> Server {
        Server::with_args(&[])
    }

    /// A server with extra command-line arguments, e.g. `["--workers", "4"]`.
    pub fn with_args(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        Server::spawn(dir, &path, &["--no-wal"], extra)
    }

    /// A server with its WAL in `data` (which outlives it, for restarts).
    pub fn with_wal(data: &std::path::Path, extra: &[&str]) -> Server {
        Server::spawn(tempfile::tempdir().expect("tempdir"), data, &[], extra)
    }

    /// A server (no WAL) with extra arguments, its command adjusted by
    /// `configure` before it starts (e.g. resource limits in a `pre_exec`).
    pub fn with_command(extra: &[&str], configure: impl FnOnce(&mut Command)) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        Server::spawn_configured(dir, &path, &["--no-wal"], extra, configure)
    }

    fn spawn(dir: tempfile::TempDir, data: &std::path::Path, mode: &[&str], extra: &[&str]) -> Server {
        Server::spawn_configured(dir, data, mode, extra, |_| ())
    }

    fn spawn_configured(
        dir: tempfile::TempDir,
        data: &std::path::Path,
        mode: &[&str],
        extra: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Server {
        let mut command = Command::new(KVSERVER);
        command
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(mode)
            .arg("--dir")
            .arg(data)
            .args(extra)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        configure(&mut command);
        let mut child = command.spawn().expect("spawn kvserver");
        let stderr = child.stderr.take().expect("stderr pipe");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(port) = parse_ready_port(&line) {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(port);
                        }
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let mut server = Server {
            child,
            port: 0,
            stderr: lines,
            _dir: dir,
        };
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(port) => server.port = port,
            Err(_) => {
                let status = server.child.try_wait().ok().flatten();
                panic!(
                    "kvserver not ready within 10 s (exit: {status:?}); stderr:\n{}",
                    server.stderr_text()
                );
            }
        }
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A `redis` crate connection with bounded reads.
    pub fn redis(&self) -> redis::Connection {
        let client = redis::Client::open(self.url()).expect("client");
        let con = client
            .get_connection_with_timeout(IO_TIMEOUT)
            .expect("redis connect");
        con.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        con.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        con
    }

    /// A raw client.
    pub fn raw(&self) -> Raw {
        Raw::connect(self.port)
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the server in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line")
    }
}

/// Finds the port in `... ready to accept connections on 127.0.0.1:PORT ...`.
fn parse_ready_port(line: &str) -> Option<u16> {
    const MARKER: &str = "ready to accept connections on ";
    let rest = &line[line.find(MARKER)? + MARKER.len()..];
    let addr: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '\x1b')
        .collect();
    addr.rsplit(':').next()?.parse().ok()
}

/// Polls `f` every 20 ms until it returns true or `limit` passes.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Encodes a command as a RESP2 multibulk.
pub fn resp<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Shows bytes readably in assertion messages.
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A raw TCP client; reads fail the test after [`IO_TIMEOUT`].
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        self.send(&resp(args));
        self.read_reply()
    }

    /// Reads more bytes into the buffer; returns false on EOF.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return false,
                Err(e) => panic!("read failed ({e}); buffered so far: {:?}", show(&self.buf)),
            }
        }
    }

    /// Reads exactly `n` bytes.
    pub fn read_n(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            if !self.fill() {
                panic!("EOF after {} of {n} bytes: {:?}", self.buf.len(), show(&self.buf));
            }
        }
        self.buf.drain(..n).collect()
    }

    /// Reads `expected.len()` bytes and asserts they equal `expected`.
    pub fn expect(&mut self, expected: &[u8]) {
        let got = self.read_n(expected.len());
        assert_eq!(show(&got), show(expected));
    }

    /// Reads one line including its terminator (`\n`).
    pub fn read_line(&mut self) -> Vec<u8> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                return self.buf.drain(..=i).collect();
            }
            if !self.fill() {
                panic!("EOF before end of line: {:?}", show(&self.buf));
            }
        }
    }

    /// Reads one complete RESP2 reply and returns its raw bytes.
    pub fn read_reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(n) = resp_reply_len(&self.buf) {
                return self.buf.drain(..n).collect();
            }
            if !self.fill() {
                panic!("EOF inside a reply: {:?}", show(&self.buf));
            }
        }
    }

    /// Reads everything until the server closes; panics on timeout.
    pub fn read_to_eof(&mut self) -> Vec<u8> {
        while self.fill() {}
        std::mem::take(&mut self.buf)
    }

    /// True if the server closed the connection (after reading any bytes).
    pub fn is_closed(&mut self) -> bool {
        !self.fill()
    }

    /// Bytes received but not consumed.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Length of the complete RESP2 or RESP3 reply at the start of `buf`, if complete.
pub fn resp_reply_len(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let head = &buf[1..line_end];
    let after = line_end + 2;
    match buf.first()? {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'%' => {
            let n: usize = std::str::from_utf8(head).ok()?.parse().ok()?;
            let mut pos = after;
            for _ in 0..2 * n {
                pos += resp_reply_len(&buf[pos..])?;
            }
            Some(pos)
        }
        b'~' | b'>' => {
            let n: usize = std::str::from_utf8(head).ok()?.parse().ok()?;
            let mut pos = after;
            for _ in 0..n {
                pos += resp_reply_len(&buf[pos..])?;
            }
            Some(pos)
        }
        b'$' | b'=' => {
            let n: i64 = std::str::from_utf8(head).ok()?.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' => {
            let n: i64 = std::str::from_utf8(head).ok()?.parse().ok()?;
            let mut pos = after;
            for _ in 0..n.max(0) {
                pos += resp_reply_len(&buf[pos..])?;
            }
            Some(pos)
        }
        other => panic!(
            "not a RESP reply (starts with {:?}): {:?}",
            *other as char,
            show(buf)
        ),
    }
}
