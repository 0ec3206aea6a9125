//! The load-generating event loop.
//!
//! Like redis-benchmark, each client thread drives many non-blocking
//! connections from one `epoll` instance instead of one OS thread per
//! connection: on a 2-core machine shared with the server, context switches
//! and per-thread stacks would otherwise distort the measurement. Each
//! thread owns its HDR histogram and error counters (merged after the run),
//! so the hot path takes no lock; the only shared state is two relaxed
//! atomics touched once per pipeline batch / read event.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;
use indicatif::ProgressBar;

use crate::cli::Protocol;
use crate::command::{write_digits, Rng, Template};
use crate::keys::{KeyGen, KeyPattern};
use crate::reply::{scan_resp, scan_resp_n, scan_text, Scan};

/// Error kind for requests lost because the server closed/reset the connection.
pub const DROPPED: &str = "connection_dropped";
/// Error kind for requests with no reply within `--timeout`.
pub const TIMEOUT: &str = "timeout";
/// Error kind for replies that could not be parsed (connection then closed).
pub const PROTOCOL: &str = "protocol_error";

/// Highest latency the histograms track (microseconds); larger values saturate.
const MAX_LATENCY_US: u64 = 60_000_000;
/// Initial per-connection read buffer; grows if a single reply is larger.
const READ_BUF: usize = 64 * 1024;

/// Everything one test run needs. Built once per test (and per server when
/// comparing) so the event loop itself never formats anything.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Server to load, as given by the user (resolved at connect time).
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Number of connections.
    pub clients: usize,
    /// Client threads sharing those connections.
    pub threads: usize,
    /// Requests per round trip.
    pub pipeline: usize,
    /// Total requests (ignored when `duration` is set).
    pub requests: u64,
    /// Run for this long instead of a request count.
    pub duration: Option<Duration>,
    /// Precomputed request bytes.
    pub template: Template,
    /// Keyspace for random keys (`-r`), if any.
    pub keyspace: Option<u64>,
    /// How random keys are distributed over the keyspace.
    pub key_pattern: KeyPattern,
    /// Wire protocol.
    pub protocol: Protocol,
    /// Lines per reply in text protocol.
    pub text_lines: usize,
    /// RESP replies that make up one request's answer (4 for a transaction).
    pub replies_per_request: usize,
    /// AUTH password.
    pub password: Option<String>,
    /// Connect and reply timeout.
    pub timeout: Duration,
}

/// Merged result of one run of one test against one server.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Requests answered with a non-error reply.
    pub ok: u64,
    /// Of those, nil replies (a GET miss).
    pub nil: u64,
    /// Failed requests by kind (`ERR`, `WRONGTYPE`, `connection_dropped`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Requests of `-n` never sent because every connection died.
    pub unsent: u64,
    /// Wall time from first send to last reply.
    pub elapsed: Duration,
    /// Latencies of successful requests, microseconds.
    pub hist: Histogram<u64>,
    /// CPU (user+system) this process spent during the run.
    pub cpu: Duration,
    /// First low-level connection error, to explain drops to the user.
    pub first_io_error: Option<String>,
}

impl Outcome {
    /// Total failed requests.
    pub fn failed(&self) -> u64 {
        self.errors.values().sum::<u64>() + self.unsent
    }

    /// Successful requests per second.
    pub fn rps(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.ok as f64 / s
        } else {
            0.0
        }
    }
}

/// Process CPU time (user + system) via getrusage; used to report the
/// client's own cost per request.
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage struct.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Resolve `host:port` once, with a message that names the target.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}:{port}"))?
        .next()
        .ok_or_else(|| anyhow!("cannot resolve {host}:{port}"))
}

/// Open one connection with connect/read timeouts, AUTH if needed, then
/// switch it to non-blocking for the event loop.
fn connect_one(addr: SocketAddr, cfg: &RunConfig) -> Result<TcpStream> {
    let mut s = TcpStream::connect_timeout(&addr, cfg.timeout)
        .with_context(|| format!("could not connect to {addr}"))?;
    s.set_nodelay(true).context("TCP_NODELAY")?;
    if let Some(pass) = &cfg.password {
        s.set_read_timeout(Some(cfg.timeout)).context("set timeout")?;
        let req = match cfg.protocol {
            Protocol::Resp => format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{pass}\r\n", pass.len()),
            Protocol::Text => format!("AUTH {pass}\r\n"),
        };
        s.write_all(req.as_bytes()).context("sending AUTH")?;
        let mut buf = vec![0u8; 4096];
        let mut len = 0;
        loop {
            let n = s
                .read(&mut buf[len..])
                .with_context(|| format!("no AUTH reply from {addr}"))?;
            if n == 0 {
                bail!("{addr} closed the connection during AUTH");
            }
            len += n;
            let scan = match cfg.protocol {
                Protocol::Resp => scan_resp(&buf[..len]),
                Protocol::Text => scan_text(&buf[..len], 1),
            };
            match scan {
                Scan::Incomplete if len < buf.len() => continue,
                Scan::Reply { error: None, .. } => break,
                _ => bail!("AUTH failed: {}", String::from_utf8_lossy(&buf[..len]).trim_end()),
            }
        }
    }
    s.set_nonblocking(true).context("set non-blocking")?;
    Ok(s)
}

struct Shared {
    issued: AtomicU64,
    done: AtomicU64,
    limit: u64,
    deadline: Option<Instant>,
}

#[derive(PartialEq, Eq)]
enum State {
    Active,
    Done,
    Dead,
}

struct Conn {
    stream: TcpStream,
    wbuf: Vec<u8>,
    wlen: usize,
    wpos: usize,
    inflight: usize,
    rbuf: Vec<u8>,
    rlen: usize,
    start: Instant,
    last_io: Instant,
    state: State,
    want_out: bool,
}

/// Minimal safe wrapper over an epoll fd.
struct Epoll(RawFd);

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall, result checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll(fd))
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        let rc = unsafe { libc::epoll_ctl(self.0, op, fd, &mut ev) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait(&self, evs: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
        // SAFETY: the buffer is valid for `evs.len()` entries.
        let n = unsafe { libc::epoll_wait(self.0, evs.as_mut_ptr(), evs.len() as i32, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(n as usize)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own this fd.
        unsafe { libc::close(self.0) };
    }
}

struct ThreadResult {
    ok: u64,
    nil: u64,
    errors: HashMap<String, u64>,
    hist: Histogram<u64>,
    end: Instant,
    first_io_error: Option<String>,
}

struct Worker<'a> {
    cfg: &'a RunConfig,
    shared: &'a Shared,
    ep: Epoll,
    conns: Vec<Conn>,
    rng: Rng,
    keys: Option<KeyGen>,
    hist: Histogram<u64>,
    errors: HashMap<String, u64>,
    ok: u64,
    nil: u64,
    active: usize,
    first_io_error: Option<String>,
}

impl Worker<'_> {
    fn count_error(&mut self, kind: &str, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(c) = self.errors.get_mut(kind) {
            *c += n;
        } else {
            self.errors.insert(kind.to_string(), n);
        }
    }

    fn kill(&mut self, i: usize, kind: &str, why: Option<String>) {
        let c = &mut self.conns[i];
        if c.state == State::Dead {
            return;
        }
        let lost = c.inflight as u64;
        c.inflight = 0;
        if c.state == State::Active {
            self.active -= 1;
        }
        c.state = State::Dead;
        let fd = c.stream.as_raw_fd();
        let _ = c.stream.shutdown(std::net::Shutdown::Both);
        let _ = self.ep.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
        self.count_error(kind, lost);
        if self.first_io_error.is_none() {
            self.first_io_error = why;
        }
    }

    fn claim(&self, want: usize) -> usize {
        if let Some(d) = self.shared.deadline {
            return if Instant::now() >= d { 0 } else { want };
        }
        let prev = self.shared.issued.fetch_add(want as u64, Ordering::Relaxed);
        if prev >= self.shared.limit {
            0
        } else {
            want.min((self.shared.limit - prev) as usize)
        }
    }

    fn start_batch(&mut self, i: usize) {
        let k = self.claim(self.cfg.pipeline);
        if k == 0 {
            self.conns[i].state = State::Done;
            self.active -= 1;
            return;
        }
        let t = &self.cfg.template;
        let c = &mut self.conns[i];
        if let Some(keys) = &self.keys {
            for &off in &t.rand_offsets[..k * t.rand_per_request] {
                write_digits(&mut c.wbuf, off, keys.next(&mut self.rng));
            }
        }
        c.wlen = k * t.one_len;
        c.wpos = 0;
        c.inflight = k;
        c.start = Instant::now();
        c.last_io = c.start;
        self.flush(i);
    }

    fn flush(&mut self, i: usize) {
        loop {
            let c = &mut self.conns[i];
            if c.wpos == c.wlen {
                if c.want_out {
                    c.want_out = false;
                    let fd = c.stream.as_raw_fd();
                    if let Err(e) = self.ep.ctl(libc::EPOLL_CTL_MOD, fd, EV_IN, i as u64) {
                        self.kill(i, DROPPED, Some(e.to_string()));
                    }
                }
                return;
            }
            match c.stream.write(&c.wbuf[c.wpos..c.wlen]) {
                Ok(0) => return self.kill(i, DROPPED, Some("write returned 0".into())),
                Ok(n) => {
                    c.wpos += n;
                    c.last_io = Instant::now();
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if !c.want_out {
                        c.want_out = true;
                        let fd = c.stream.as_raw_fd();
                        let ev = EV_IN | libc::EPOLLOUT as u32;
                        if let Err(e) = self.ep.ctl(libc::EPOLL_CTL_MOD, fd, ev, i as u64) {
                            self.kill(i, DROPPED, Some(e.to_string()));
                        }
                    }
                    return;
                }
                Err(e) => return self.kill(i, DROPPED, Some(e.to_string())),
            }
        }
    }

    fn readable(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if c.rlen == c.rbuf.len() {
            let grown = c.rbuf.len() * 2;
            c.rbuf.resize(grown, 0);
        }
        match c.stream.read(&mut c.rbuf[c.rlen..]) {
            Ok(0) => {
                return self.kill(i, DROPPED, Some("server closed the connection".into()));
            }
            Ok(n) => {
                c.rlen += n;
                c.last_io = Instant::now();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => return,
            Err(e) => return self.kill(i, DROPPED, Some(e.to_string())),
        }
        let mut pos = 0;
        let mut good = 0u64;
        let mut invalid = false;
        let text_lines = self.cfg.text_lines;
        while pos < c.rlen {
            let buf = &c.rbuf[pos..c.rlen];
            let scan = match self.cfg.protocol {
                Protocol::Resp => scan_resp_n(buf, self.cfg.replies_per_request),
                Protocol::Text => scan_text(buf, text_lines),
            };
            match scan {
                Scan::Incomplete => break,
                Scan::Invalid => {
                    invalid = true;
                    break;
                }
                Scan::Reply { len, error } => {
                    if c.inflight == 0 {
                        invalid = true;
                        break;
                    }
                    c.inflight -= 1;
                    match error {
                        None => {
                            good += 1;
                            // A nil reply: RESP2 `$-1`, RESP3 `_`, text `(nil)`.
                            if buf.starts_with(b"$-1\r\n")
                                || buf.starts_with(b"_\r\n")
                                || buf.starts_with(b"(nil)")
                            {
                                self.nil += 1;
                            }
                        }
                        Some((s, e)) => {
                            let kind = String::from_utf8_lossy(&buf[s..e]).into_owned();
                            // Errors are rare; allocation here is fine.
                            if let Some(n) = self.errors.get_mut(&kind) {
                                *n += 1;
                            } else {
                                self.errors.insert(kind, 1);
                            }
                            self.shared.done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    pos += len;
                }
            }
        }
        if pos > 0 {
            c.rbuf.copy_within(pos..c.rlen, 0);
            c.rlen -= pos;
        }
        if good > 0 {
            let us = (c.last_io - c.start).as_micros() as u64;
            self.hist.saturating_record_n(us.clamp(1, MAX_LATENCY_US), good);
            self.ok += good;
            self.shared.done.fetch_add(good, Ordering::Relaxed);
        }
        if invalid {
            return self.kill(i, PROTOCOL, Some("unparseable reply from server".into()));
        }
        let c = &self.conns[i];
        if c.inflight == 0 && c.wpos == c.wlen && c.state == State::Active {
            self.start_batch(i);
        }
    }

    fn run(mut self) -> Result<ThreadResult> {
        for i in 0..self.conns.len() {
            let fd = self.conns[i].stream.as_raw_fd();
            self.ep
                .ctl(libc::EPOLL_CTL_ADD, fd, EV_IN, i as u64)
                .context("epoll_ctl ADD")?;
        }
        for i in 0..self.conns.len() {
            self.start_batch(i);
        }
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        let mut last_scan = Instant::now();
        while self.active > 0 {
            let n = self.ep.wait(&mut events, 100).context("epoll_wait")?;
            for ev in &events[..n] {
                let flags = ev.events;
                let i = ev.u64 as usize;
                if self.conns[i].state != State::Active {
                    continue;
                }
                if flags & libc::EPOLLOUT as u32 != 0 {
                    self.flush(i);
                }
                if flags & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0
                    && self.conns[i].state == State::Active
                {
                    self.readable(i);
                }
            }
            let now = Instant::now();
            if now - last_scan >= Duration::from_millis(100) {
                last_scan = now;
                for i in 0..self.conns.len() {
                    let c = &self.conns[i];
                    if c.state == State::Active
                        && (c.inflight > 0 || c.wpos < c.wlen)
                        && now - c.last_io > self.cfg.timeout
                    {
                        let msg = format!("no reply within {:?}", self.cfg.timeout);
                        self.kill(i, TIMEOUT, Some(msg));
                    }
                }
            }
        }
        Ok(ThreadResult {
            ok: self.ok,
            nil: self.nil,
            errors: self.errors,
            hist: self.hist,
            end: Instant::now(),
            first_io_error: self.first_io_error,
        })
    }
}

const EV_IN: u32 = libc::EPOLLIN as u32;

/// Run one test against one server and return the merged outcome.
///
/// Connections are opened up front (sequentially, each bounded by the
/// timeout) so that connection setup is not part of the timed window and an
/// unreachable server fails before any load starts.
pub fn run(cfg: &RunConfig, progress: Option<&ProgressBar>) -> Result<Outcome> {
    let addr = resolve(&cfg.host, cfg.port)?;
    let clients = cfg.clients.max(1);
    let threads = cfg.threads.clamp(1, clients);
    let mut per_thread: Vec<Vec<TcpStream>> = (0..threads).map(|_| Vec::new()).collect();
    for i in 0..clients {
        per_thread[i % threads].push(connect_one(addr, cfg)?);
    }
    let cpu0 = process_cpu();
    let start = Instant::now();
    let shared = Shared {
        issued: AtomicU64::new(0),
        done: AtomicU64::new(0),
        limit: cfg.requests,
        deadline: cfg.duration.map(|d| start + d),
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ (u64::from(std::process::id()) << 32);
    let results: Vec<Result<ThreadResult>> = std::thread::scope(|scope| {
        let handles: Vec<_> = per_thread
            .into_iter()
            .enumerate()
            .map(|(t, streams)| {
                let shared = &shared;
                let now = Instant::now();
                let active = streams.len();
                let conns = streams
                    .into_iter()
                    .map(|stream| Conn {
                        stream,
                        wbuf: cfg.template.bytes.clone(),
                        wlen: 0,
                        wpos: 0,
                        inflight: 0,
                        rbuf: vec![0; READ_BUF],
                        rlen: 0,
                        start: now,
                        last_io: now,
                        state: State::Active,
                        want_out: false,
                    })
                    .collect();
                scope.spawn(move || -> Result<ThreadResult> {
                    let hist = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                        .map_err(|e| anyhow!("histogram: {e}"))?;
                    let w = Worker {
                        cfg,
                        shared,
                        ep: Epoll::new().context("epoll_create1")?,
                        conns,
                        rng: Rng::new(seed.wrapping_add((t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))),
                        keys: cfg.keyspace.map(|space| KeyGen::new(cfg.key_pattern, space)),
                        hist,
                        errors: HashMap::new(),
                        ok: 0,
                        nil: 0,
                        active,
                        first_io_error: None,
                    };
                    w.run()
                })
            })
            .collect();
        if let Some(pb) = progress {
            while !handles.iter().all(|h| h.is_finished()) {
                std::thread::sleep(Duration::from_millis(100));
                match cfg.duration {
                    Some(d) => pb.set_position(start.elapsed().min(d).as_millis() as u64),
                    None => pb.set_position(shared.done.load(Ordering::Relaxed)),
                }
                let secs = start.elapsed().as_secs_f64().max(1e-9);
                pb.set_message(format!(
                    "{:.0} req/s",
                    shared.done.load(Ordering::Relaxed) as f64 / secs
                ));
            }
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("client thread panicked")))
            })
            .collect()
    });
    let cpu = process_cpu().saturating_sub(cpu0);
    let mut hist = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).map_err(|e| anyhow!("histogram: {e}"))?;
    let mut ok = 0;
    let mut nil = 0;
    let mut errors = BTreeMap::new();
    let mut end = start;
    let mut first_io_error = None;
    for r in results {
        let r = r?;
        ok += r.ok;
        nil += r.nil;
        hist.add(&r.hist).map_err(|e| anyhow!("histogram merge: {e}"))?;
        for (k, v) in r.errors {
            *errors.entry(k).or_insert(0) += v;
        }
        end = end.max(r.end);
        if first_io_error.is_none() {
            first_io_error = r.first_io_error;
        }
    }
    let failed: u64 = errors.values().sum();
    let unsent = if cfg.duration.is_none() {
        cfg.requests.saturating_sub(ok + failed)
    } else {
        0
    };
    Ok(Outcome {
        ok,
        nil,
        errors,
        unsent,
        elapsed: end - start,
        hist,
        cpu,
        first_io_error,
    })
}
