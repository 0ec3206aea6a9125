//! Shared helpers: start the real `kvserver` binary on a free loopback port, stop it
//! (SIGKILL, SIGTERM, abort), a tiny raw RESP client with pipelining, WAL file helpers and a
//! seeded pseudo-random generator (the seed is printed so a failure can be replayed).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub const KVSERVER: &str = env!("CARGO_BIN_EXE_kvserver");
/// Name of the log inside `--dir`.
pub const WAL_FILE: &str = "kvserver.wal";
/// Name of the synced watermark inside `--dir` (how far the log was known to be fsynced).
pub const SYNCED_FILE: &str = "kvserver.wal.synced";
/// Name of the compaction temp file inside `--dir`.
pub const COMPACT_TMP_FILE: &str = "kvserver.wal.compact.tmp";
/// Longest any single wait in this crate may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);
/// Size of the WAL file header.
pub const FILE_HEADER_LEN: usize = 16;
/// Size of a frame header (crc + len + kind).
pub const FRAME_HEADER_LEN: usize = 9;

/// How to launch a server.
#[derive(Clone, Default)]
pub struct Launch {
    /// `--fsync` value, if any.
    pub fsync: Option<&'static str>,
    /// `--flush-interval-ms`, if any.
    pub flush_interval_ms: Option<u64>,
    /// Extra CLI arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// RLIMIT_FSIZE soft limit in bytes (hard limit stays unlimited so prlimit can raise it).
    pub fsize_limit: Option<u64>,
}

impl Launch {
    pub fn fsync(policy: &'static str) -> Launch {
        Launch {
            fsync: Some(policy),
            ..Launch::default()
        }
    }

    pub fn arg(mut self, a: &str) -> Launch {
        self.args.push(a.to_string());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Launch {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
}

/// Collected stderr lines of a child, drained by a thread for the child's whole life.
type Lines = Arc<Mutex<Vec<String>>>;

/// A running server; killed (SIGKILL) on drop if still alive.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    stderr: Lines,
    exited: Option<ExitStatus>,
}

/// The result of trying to start a server.
pub enum Started {
    Ready(Server),
    /// The process exited before it was ready: its status and stderr.
    Exited(ExitStatus, String),
}

fn spawn_child(dir: &Path, launch: &Launch) -> (Child, Lines) {
    let mut cmd = Command::new(KVSERVER);
    cmd.args(["--bind", "127.0.0.1", "--port", "0", "--loglevel", "info"])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env_remove("KVSERVER_CRASH_AT")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1");
    if let Some(p) = launch.fsync {
        cmd.args(["--fsync", p]);
    }
    if let Some(ms) = launch.flush_interval_ms {
        cmd.args(["--flush-interval-ms", &ms.to_string()]);
    }
    cmd.args(&launch.args);
    for (k, v) in &launch.env {
        cmd.env(k, v);
    }
    if let Some(limit) = launch.fsize_limit {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe; no allocation happens in the closure.
        unsafe {
            cmd.pre_exec(move || {
                let rl = libc::rlimit {
                    rlim_cur: limit as libc::rlim_t,
                    rlim_max: libc::RLIM_INFINITY,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &rl) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().expect("spawn kvserver");
    let stderr = child.stderr.take().expect("stderr pipe");
    let lines: Lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    thread::spawn(move || {
        let mut r = BufReader::new(stderr);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => sink.lock().unwrap().push(line.trim_end().to_string()),
            }
        }
    });
    (child, lines)
}

fn port_from(lines: &Lines) -> Option<u16> {
    port_after(lines, "ready to accept connections on ")
}

/// The port in the first line containing `NEEDLE ADDR:PORT`.
fn port_after(lines: &Lines, needle: &str) -> Option<u16> {
    let lines = lines.lock().unwrap();
    for l in lines.iter() {
        if let Some(pos) = l.find(needle) {
            let rest = &l[pos + needle.len()..];
            let addr = rest.split_whitespace().next()?;
            let port: String = addr
                .rsplit(':')
                .next()?
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            return port.parse().ok();
        }
    }
    None
}

/// Starts a server on `dir`; returns whether it became ready or exited first.
pub fn try_start(dir: &Path, launch: &Launch) -> Started {
    let (mut child, lines) = spawn_child(dir, launch);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(port) = port_from(&lines) {
            return Started::Ready(Server {
                child,
                port,
                dir: dir.to_path_buf(),
                stderr: lines,
                exited: None,
            });
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            // Give the drain thread a moment to collect the last lines.
            thread::sleep(Duration::from_millis(100));
            let text = lines.lock().unwrap().join("\n");
            return Started::Exited(status, text);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "kvserver did not become ready within {WAIT:?}; stderr:\n{}",
                lines.lock().unwrap().join("\n")
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Starts a server on `dir` and returns as soon as it listens, before its WAL
/// is replayed (it answers -LOADING until it logs that it is ready).
pub fn start_listening(dir: &Path, launch: &Launch) -> Server {
    let (mut child, lines) = spawn_child(dir, launch);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(port) = port_after(&lines, "listening on ") {
            return Server {
                child,
                port,
                dir: dir.to_path_buf(),
                stderr: lines,
                exited: None,
            };
        }
        let exited = child.try_wait().expect("try_wait");
        if exited.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "kvserver did not listen ({exited:?}); stderr:\n{}",
                lines.lock().unwrap().join("\n")
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Starts a server on `dir` and panics if it does not become ready.
pub fn start(dir: &Path, launch: &Launch) -> Server {
    match try_start(dir, launch) {
        Started::Ready(s) => s,
        Started::Exited(status, text) => {
            panic!("kvserver exited before ready ({status}); stderr:\n{text}")
        }
    }
}

/// Starts a server that must refuse to start; returns its status and stderr.
pub fn start_refused(dir: &Path, launch: &Launch) -> (ExitStatus, String) {
    match try_start(dir, launch) {
        Started::Ready(mut s) => {
            let text = s.stderr_text();
            s.kill9();
            panic!("kvserver started but was expected to refuse; stderr:\n{text}")
        }
        Started::Exited(status, text) => (status, text),
    }
}

impl Server {
    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    pub fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    pub fn wal_path(&self) -> PathBuf {
        self.dir.join(WAL_FILE)
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            self.exited = Some(self.child.wait().expect("wait after kill"));
        }
    }

    /// Waits (bounded) for the process to exit by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        if let Some(s) = self.exited {
            return s;
        }
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(s);
                return s;
            }
            if Instant::now() > deadline {
                let text = self.stderr_text();
                self.kill9();
                panic!("kvserver did not exit within {WAIT:?}; stderr:\n{text}");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then wait (bounded); asserts a clean exit 0.
    pub fn sigterm(&mut self) {
        // SAFETY: signalling our own child process by pid.
        let rc = unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
        let status = self.wait_exit();
        assert!(
            status.success(),
            "SIGTERM must give a clean exit 0, got {status}; stderr:\n{}",
            self.stderr_text()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    pub fn is_ok(&self) -> bool {
        matches!(self, Reply::Simple(s) if s == "OK")
    }

    /// The bulk payload as a string (None for nil); panics on other kinds.
    pub fn bulk_str(&self) -> Option<String> {
        match self {
            Reply::Bulk(b) => b.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()),
            other => panic!("expected a bulk reply, got {other:?}"),
        }
    }

    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(n) => *n,
            other => panic!("expected an integer reply, got {other:?}"),
        }
    }
}

/// A minimal blocking RESP client. Errors (I/O) are returned, never panicked, so writer threads
/// can stop cleanly when the server is killed under them.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// Encodes one command as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

impl Client {
    pub fn connect(port: u16) -> Client {
        Client::try_connect(port).expect("connect to kvserver")
    }

    pub fn try_connect(port: u16) -> std::io::Result<Client> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(WAIT))?;
        s.set_write_timeout(Some(WAIT))?;
        s.set_nodelay(true)?;
        Ok(Client {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    /// Sends one command and reads its reply.
    pub fn try_cmd(&mut self, args: &[&str]) -> std::io::Result<Reply> {
        let raw: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let mut buf = Vec::new();
        encode(&raw, &mut buf);
        self.writer.write_all(&buf)?;
        self.read_reply()
    }

    /// Sends one command; panics on I/O error.
    pub fn cmd(&mut self, args: &[&str]) -> Reply {
        self.try_cmd(args)
            .unwrap_or_else(|e| panic!("{args:?}: I/O error {e}"))
    }

    /// Writes every command in one `write`, then reads as many replies.
    pub fn try_pipeline(&mut self, cmds: &[Vec<String>]) -> std::io::Result<Vec<Reply>> {
        let mut buf = Vec::new();
        for c in cmds {
            let raw: Vec<&[u8]> = c.iter().map(|a| a.as_bytes()).collect();
            encode(&raw, &mut buf);
        }
        self.writer.write_all(&buf)?;
        (0..cmds.len()).map(|_| self.read_reply()).collect()
    }

    pub fn pipeline(&mut self, cmds: &[Vec<String>]) -> Vec<Reply> {
        self.try_pipeline(cmds)
            .unwrap_or_else(|e| panic!("pipeline I/O error {e}"))
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        if !line.ends_with("\r\n") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "truncated reply line",
            ));
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn read_reply(&mut self) -> std::io::Result<Reply> {
        let line = self.line()?;
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad RESP");
        let (tag, rest) = line.split_at(1);
        Ok(match tag {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(rest.parse().map_err(|_| bad())?),
            "$" => {
                let n: i64 = rest.parse().map_err(|_| bad())?;
                if n < 0 {
                    Reply::Bulk(None)
                } else {
                    let mut v = vec![0; n as usize + 2];
                    self.reader.read_exact(&mut v)?;
                    v.truncate(n as usize);
                    Reply::Bulk(Some(v))
                }
            }
            "*" => {
                let n: i64 = rest.parse().map_err(|_| bad())?;
                if n < 0 {
                    Reply::Array(None)
                } else {
                    let items = (0..n)
                        .map(|_| self.read_reply())
                        .collect::<std::io::Result<Vec<_>>>()?;
                    Reply::Array(Some(items))
                }
            }
            _ => return Err(bad()),
        })
    }

    pub fn get(&mut self, key: &str) -> Option<String> {
        self.cmd(&["GET", key]).bulk_str()
    }

    /// GET of many keys through MGET in chunks.
    pub fn mget(&mut self, keys: &[String]) -> Vec<Option<String>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(500) {
            let mut args: Vec<&str> = vec!["MGET"];
            args.extend(chunk.iter().map(|s| s.as_str()));
            match self.cmd(&args) {
                Reply::Array(Some(items)) => out.extend(items.iter().map(|r| r.bulk_str())),
                other => panic!("MGET: unexpected reply {other:?}"),
            }
        }
        out
    }

    pub fn dbsize(&mut self) -> i64 {
        self.cmd(&["DBSIZE"]).int()
    }

    pub fn flush(&mut self) {
        let r = self.cmd(&["FLUSH"]);
        assert!(r.is_ok(), "FLUSH failed: {r:?}");
    }

    pub fn stats(&mut self) -> serde_json::Value {
        let text = self.cmd(&["STATS"]).bulk_str().expect("STATS returned nil");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("STATS is not JSON ({e}): {text}"))
    }

    /// `INFO section` as a field map.
    pub fn info(&mut self, section: &str) -> HashMap<String, String> {
        let text = self
            .cmd(&["INFO", section])
            .bulk_str()
            .expect("INFO returned nil");
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    }

    pub fn info_u64(&mut self, section: &str, field: &str) -> u64 {
        let info = self.info(section);
        info.get(field)
            .unwrap_or_else(|| panic!("INFO {section} has no {field}: {info:?}"))
            .parse()
            .unwrap_or_else(|_| panic!("INFO {field} is not a number"))
    }

    /// Polls STATS until no compaction is running (bounded).
    pub fn wait_compaction_done(&mut self) {
        let deadline = Instant::now() + WAIT;
        while self.stats()["wal"]["compacting"] == serde_json::Value::Bool(true) {
            assert!(Instant::now() < deadline, "compaction did not finish");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Issues COMPACT; returns true if it started, false if one was already running.
    pub fn compact(&mut self) -> bool {
        match self.cmd(&["COMPACT"]) {
            Reply::Simple(s) if s.contains("compaction started") => true,
            Reply::Error(e) if e.contains("already") => false,
            other => panic!("COMPACT: unexpected reply {other:?}"),
        }
    }
}

/// Runs `kvserver check-wal path [--repair]`: (exit code, stdout + stderr).
pub fn check_wal(path: &Path, repair: bool) -> (i32, String) {
    let mut cmd = Command::new(KVSERVER);
    cmd.arg("check-wal").arg(path);
    if repair {
        cmd.arg("--repair");
    }
    let out = cmd.output().expect("run check-wal");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Byte offsets of every frame of a well-formed log (walks the length fields only).
pub fn frame_offsets(path: &Path) -> Vec<usize> {
    let bytes = std::fs::read(path).expect("read WAL");
    assert!(bytes.len() >= FILE_HEADER_LEN, "WAL shorter than its header");
    assert_eq!(&bytes[..8], b"KVSWAL\r\n", "WAL magic");
    let mut offsets = Vec::new();
    let mut at = FILE_HEADER_LEN;
    while at + FRAME_HEADER_LEN <= bytes.len() {
        offsets.push(at);
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        at += FRAME_HEADER_LEN + len;
    }
    assert_eq!(at, bytes.len(), "WAL does not end on a frame boundary");
    offsets
}

/// A small xorshift generator; seeded from the clock unless `KVSERVER_TEST_SEED` is set.
pub struct Rng(u64);

impl Rng {
    pub fn new(test: &str) -> Rng {
        let seed = std::env::var("KVSERVER_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{test}: KVSERVER_TEST_SEED={seed}");
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// Sleeps a random duration in `lo_ms..hi_ms`.
pub fn random_sleep(rng: &mut Rng, lo_ms: u64, hi_ms: u64) {
    thread::sleep(Duration::from_millis(rng.range(lo_ms, hi_ms)));
}

/// A fresh temporary data directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("kvserver-dur-")
        .tempdir()
        .expect("tempdir")
}

/// Builds a command from string-ish parts.
#[macro_export]
macro_rules! cmd {
    ($($a:expr),+ $(,)?) => { vec![$($a.to_string()),+] };
}
