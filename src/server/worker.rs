//! A worker thread: one readiness loop (epoll through `mio`) serving many
//! connections, so a client costs a thread's time only when it has bytes to
//! read or replies to take.
//!
//! One pass of the loop:
//! 1. `poll` once; readable connections join the `ready` queue, writable ones
//!    the `touched` list; the waker's event brings new sockets and kills.
//! 2. Every connection that was in `ready` when the pass began gets **one**
//!    read (at most its buffer's free space) and runs the commands it
//!    brought, stopping early once [`OUTPUT_HIGH_WATER`] bytes of replies
//!    wait. A connection that may have more input goes to the back of the
//!    queue for the next pass, so an endless pipeliner gets a bounded slice
//!    and never starves the others.
//! 3. Under `fsync = always`, **one** group commit covers every write of the
//!    pass before any reply leaves (Redis's "before sleep" fsync).
//! 4. Each touched connection writes what its socket takes. The rest stays
//!    in its buffer and goes out on the next writable event; while more than
//!    [`OUTPUT_HIGH_WATER`] bytes wait, the worker does not read from that
//!    client (back-pressure).
//!
//! Sockets are registered edge-triggered for both directions once, so the
//! loop never re-registers: a connection that stops reading early is
//! remembered (`more_input`) instead.
//!
//! Once a second the worker sweeps its connections: `timeout`, the output
//! soft limit, freeing the reply buffers of idle clients, and (every five
//! seconds) restarting their reply-buffer peaks.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::connection::{Connection, ReadOutcome};
use super::pool::{Inbox, InboxQueue, WAKER_TOKEN};
use crate::log_limit::{LogLimiter, DEFAULT_INTERVAL};
use crate::session::Session;
use crate::state::{ClientHandle, ClientState, ServerState};

/// Unsent reply bytes above which the worker stops reading from a client
/// and stops running its buffered commands (back-pressure).
pub const OUTPUT_HIGH_WATER: usize = 64 * 1024;

/// Events taken from the poller per pass.
const EVENTS_PER_POLL: usize = 1024;

/// How often the worker sweeps for idle clients and output limits.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// How long a client's reply-buffer peak (`CLIENT LIST`'s `rbp`) covers
/// before it starts again: Redis's window for its `buf_peak`.
const REPLY_PEAK_WINDOW: Duration = Duration::from_secs(5);

/// Read buffer lent to whichever session reads next (sessions with nothing
/// buffered hold none).
const SPARE_READ_BUFFER: usize = 16 * 1024;

/// Per-event warnings a flood of clients (or a failing disk) can repeat:
/// one line per interval, with a count, shared by all workers.
static POLL_FAILED_LOG: LogLimiter = LogLimiter::new(DEFAULT_INTERVAL);
static REGISTER_FAILED_LOG: LogLimiter = LogLimiter::new(DEFAULT_INTERVAL);
static OUTPUT_LIMIT_LOG: LogLimiter = LogLimiter::new(DEFAULT_INTERVAL);

/// One worker thread's state.
pub struct Worker {
    index: usize,
    state: Arc<ServerState>,
    poll: Poll,
    inbox: Arc<Inbox>,
    conns: Slab<Connection>,
    /// Connections to read from (or run buffered commands of) next pass.
    ready: VecDeque<usize>,
    /// Connections to commit and flush at the end of this pass.
    touched: Vec<usize>,
    spare_read: Vec<u8>,
    mail: InboxQueue,
    last_sweep: Instant,
    /// When the reply-buffer peaks of this worker's clients last restarted.
    last_peak_reset: Instant,
    /// Connections blocked in BLPOP & co, checked each pass for their deadline.
    blocked: Vec<usize>,
    /// Slab key of each client id: a wake-up or kill names a client by id,
    /// and a scan of every connection per wake-up would cost O(clients).
    keys_by_id: std::collections::HashMap<u64, usize>,
    /// Pub/sub messages, MONITOR lines and invalidations taken from this
    /// worker's mailbox (reused between passes).
    pubsub_mail: Vec<crate::pubsub::deliver::Mail>,
}

impl Worker {
    /// A worker around its poller (whose waker the pool holds) and inbox.
    pub fn new(index: usize, state: Arc<ServerState>, poll: Poll, inbox: Arc<Inbox>) -> Worker {
        Worker {
            index,
            state,
            poll,
            inbox,
            conns: Slab::new(),
            ready: VecDeque::new(),
            touched: Vec::new(),
            spare_read: Vec::with_capacity(SPARE_READ_BUFFER),
            mail: InboxQueue::default(),
            last_sweep: Instant::now(),
            last_peak_reset: Instant::now(),
            blocked: Vec::new(),
            keys_by_id: std::collections::HashMap::new(),
            pubsub_mail: Vec::new(),
        }
    }

    /// Runs passes until the pool stops the worker, then closes every client.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        // One clock read per pass; the poll timeout uses the previous pass's
        // reading (a sweep may run late by one pass, which is harmless).
        let mut now = Instant::now();
        loop {
            let timeout = if self.ready.is_empty() {
                let sweep = SWEEP_INTERVAL.saturating_sub(now.saturating_duration_since(self.last_sweep));
                match self.next_block_deadline() {
                    Some(deadline) => sweep.min(deadline.saturating_duration_since(Instant::now())),
                    None => sweep,
                }
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != ErrorKind::Interrupted {
                    crate::error_limited!(POLL_FAILED_LOG, worker = self.index, "poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            let mut woken = false;
            for event in events.iter() {
                if event.token() == WAKER_TOKEN {
                    woken = true;
                    continue;
                }
                let key = event.token().0;
                let Some(conn) = self.conns.get_mut(key) else {
                    continue;
                };
                if event.is_read_closed() || event.is_error() {
                    // Edge-triggered: the hang-up is reported once, maybe with
                    // the last data; keep reading until the read returns 0.
                    conn.peer_closed = true;
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    conn.more_input = true;
                    if !conn.queued {
                        conn.queued = true;
                        self.ready.push_back(key);
                    }
                }
                if event.is_writable() && !conn.touched {
                    conn.touched = true;
                    self.touched.push(key);
                }
            }
            if woken && self.take_mail() {
                break;
            }
            self.deliver_mail();
            now = Instant::now();
            self.expire_blocked(now);
            self.pass(now);
            if now.saturating_duration_since(self.last_sweep) >= SWEEP_INTERVAL {
                self.sweep(now);
            }
        }
        self.close_all();
    }

    /// Registers new sockets and closes killed clients. True when the pool
    /// asked the worker to stop.
    fn take_mail(&mut self) -> bool {
        self.inbox.take(&mut self.mail);
        for (id, socket) in std::mem::take(&mut self.mail.sockets) {
            self.accept(id, socket);
        }
        for (id, reason) in std::mem::take(&mut self.mail.wakes) {
            let found = self.keys_by_id.get(&id).copied();
            if let Some(key) = found {
                self.wake(key, reason);
            }
        }
        for id in std::mem::take(&mut self.mail.kills) {
            let found = self.keys_by_id.get(&id).copied();
            if let Some(key) = found {
                tracing::debug!(id, "client killed");
                self.close(key);
            }
        }
        self.mail.stopping
    }

    fn accept(&mut self, id: u64, socket: std::net::TcpStream) {
        let state = &self.state;
        let addr = socket.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let laddr = socket.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let _ = socket.set_nodelay(true);
        let mut stream = mio::net::TcpStream::from_std(socket);
        let handle = Arc::new(ClientHandle::new(
            id,
            addr.clone(),
            laddr,
            stream.as_raw_fd(),
            self.index,
        ));
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut stream, Token(key), Interest::READABLE | Interest::WRITABLE)
        {
            crate::warn_limited!(
                REGISTER_FAILED_LOG,
                "cannot register a client with the poller: {e}"
            );
            self.inbox.clients.fetch_sub(1, Ordering::Relaxed);
            state.stats.client_disconnected();
            return;
        }
        state.clients.add(Arc::clone(&handle));
        let client = ClientState {
            id,
            addr,
            handle: Some(Arc::clone(&handle)),
            ..ClientState::default()
        };
        let mut session = Session::new(state, client, self.index);
        session.set_output_budget(OUTPUT_HIGH_WATER);
        session.set_deferred_commit(true);
        tracing::debug!(id, worker = self.index, "client connected");
        let mut conn = Connection::new(stream, session, handle);
        // Input may have arrived before registration: look once.
        conn.queued = true;
        entry.insert(conn);
        self.keys_by_id.insert(id, key);
        self.ready.push_back(key);
    }

    /// Delivers what other workers (or this one) mailed: each message to
    /// this worker's subscribers of its channel and of every matching
    /// pattern, MONITOR lines to its monitors, invalidations to their
    /// client. One atomic load when the mailbox is empty. Runs before the
    /// pass, so no reply of the pass is waiting for a group commit.
    fn deliver_mail(&mut self) {
        use crate::pubsub::deliver::Mail;
        let state = Arc::clone(&self.state);
        if !state.pubsub.mailbox(self.index).take(&mut self.pubsub_mail) {
            return;
        }
        let mut mail = std::mem::take(&mut self.pubsub_mail);
        {
            let local = state.pubsub.local(self.index).lock();
            for item in &mail {
                match item {
                    Mail::Message(message) => {
                        let map = if message.shard {
                            &local.shard_channels
                        } else {
                            &local.channels
                        };
                        for &id in map.get(&message.channel).into_iter().flatten() {
                            self.push_to(id, |out| crate::pubsub::encode_message(out, message, None));
                        }
                        if message.shard {
                            continue;
                        }
                        for (pattern, ids) in &local.patterns {
                            if crate::store::glob_match(pattern, &message.channel) {
                                for &id in ids {
                                    self.push_to(id, |out| {
                                        crate::pubsub::encode_message(out, message, Some(pattern))
                                    });
                                }
                            }
                        }
                    }
                    Mail::Monitor(line) => {
                        for &id in &local.monitors {
                            self.push_to(id, |out| out.simple_bytes(line));
                        }
                    }
                    Mail::Invalidate { client, keys } => {
                        // A RESP2 client can only take one as a message of
                        // `__redis__:invalidate`, which it must be subscribed to.
                        let reachable = self
                            .keys_by_id
                            .get(client)
                            .and_then(|&key| self.conns.get(key))
                            .is_some_and(|conn| conn.session.client.resp3 || conn.session.client.pubsub_flag);
                        if reachable {
                            let keys = keys.as_deref().map(|k| &k[..]);
                            self.push_to(*client, |out| crate::tracking::encode_invalidation(out, keys));
                        }
                    }
                }
            }
        }
        mail.clear();
        self.pubsub_mail = mail;
    }

    /// Appends a pushed message to client `id`'s output and queues it to be
    /// written (and its output limit checked) at the end of the pass.
    fn push_to(&mut self, id: u64, write: impl FnOnce(&mut crate::protocol::Replies)) {
        let Some(&key) = self.keys_by_id.get(&id) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.closing {
            return;
        }
        conn.session.push_with(write);
        if !conn.touched {
            conn.touched = true;
            self.touched.push(key);
        }
    }

    /// Ends a blocked connection's wait and queues it to run its command again.
    fn wake(&mut self, key: usize, reason: crate::blocking::WakeReason) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.session.wake(reason);
        if !conn.queued {
            conn.queued = true;
            self.ready.push_back(key);
        }
    }

    /// The earliest deadline of this worker's blocked clients.
    fn next_block_deadline(&self) -> Option<Instant> {
        self.blocked
            .iter()
            .filter_map(|&key| self.conns.get(key)?.session.block_deadline())
            .min()
    }

    /// Times out blocked clients whose deadline passed (a null reply), and
    /// forgets connections that are no longer blocked.
    fn expire_blocked(&mut self, now: Instant) {
        if self.blocked.is_empty() {
            return;
        }
        let mut expired = Vec::new();
        self.blocked.retain(|&key| {
            let Some(conn) = self.conns.get(key) else {
                return false;
            };
            if !conn.session.is_blocked() {
                return false;
            }
            if conn.session.block_deadline().is_some_and(|d| d <= now) {
                expired.push((key, conn.handle.id));
                return false;
            }
            true
        });
        for (key, id) in expired {
            // None: a push already took it out of the registry and its
            // retry is on the way; that retry decides.
            if self.state.blocking.unblock(id).is_some() {
                self.wake(key, crate::blocking::WakeReason::Timeout);
            }
        }
    }

    /// Steps 2–4 of the module doc: read and run, group commit, write.
    fn pass(&mut self, now: Instant) {
        for _ in 0..self.ready.len() {
            let Some(key) = self.ready.pop_front() else {
                break;
            };
            self.serve_input(key, now);
        }
        self.group_commit();
        for key in std::mem::take(&mut self.touched) {
            self.finish(key, now);
        }
    }

    /// One read (or one run of already-buffered commands) for a connection.
    fn serve_input(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.queued = false;
        if conn.closing || conn.unsent() >= OUTPUT_HIGH_WATER {
            // Paused: `finish` queues it again once its output drains.
            return;
        }
        if conn.session.has_unrun_input() {
            conn.session.run(&self.state);
        } else if !conn.eof {
            conn.more_input = false;
            match conn.read(&mut self.spare_read) {
                ReadOutcome::Data { filled } => {
                    conn.more_input = filled || conn.peer_closed;
                    conn.handle.touch(now);
                    conn.session.run(&self.state);
                }
                ReadOutcome::Empty => {}
                ReadOutcome::Closed => conn.eof = true,
            }
            conn.session.release_read_buffer(&mut self.spare_read);
        }
        // After end of input, commands already buffered still run (and their
        // replies still go out: the client may only have shut its write side).
        // A blocked client that hung up is closed (its wait freed) at once.
        if conn.session.should_close() || (conn.eof && !conn.session.has_unrun_input()) {
            conn.closing = true;
        } else if conn.session.is_blocked() && !self.blocked.contains(&key) {
            self.blocked.push(key);
        }
        if !conn.touched {
            conn.touched = true;
            self.touched.push(key);
        }
    }

    /// One WAL commit for every write of the pass (`fsync = always` only;
    /// under other policies sessions have nothing pending).
    fn group_commit(&mut self) {
        let Some(wal) = self.state.wal() else {
            return;
        };
        let target = self
            .touched
            .iter()
            .filter_map(|&key| self.conns.get(key)?.session.pending_commit())
            .max();
        let Some(target) = target else {
            return;
        };
        let result = wal.commit(target);
        if let Err(e) = &result {
            crate::error_limited!(crate::wal::COMMIT_FAILED_LOG, "WAL commit failed: {e}");
        }
        for &key in &self.touched {
            if let Some(conn) = self.conns.get_mut(key) {
                if conn.session.pending_commit().is_some() {
                    conn.session.finish_commit(result.as_ref().map(|_| ()));
                }
            }
        }
    }

    /// Writes a touched connection's output, applies limits, and decides
    /// whether it closes or reads again next pass.
    fn finish(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.touched = false;
        // Publish before the reply leaves: a client that reads it and asks
        // CLIENT LIST on another connection sees this command.
        let last = conn.session.client.last_command;
        conn.session.publish(last);
        let before = conn.unsent();
        if !conn.flush() {
            self.close(key);
            return;
        }
        if conn.unsent() < before {
            conn.handle.touch(now);
        }
        // What `serve_input` will do next pass (CLIENT LIST's `events=r`).
        let reading = !conn.closing && conn.unsent() < OUTPUT_HIGH_WATER;
        conn.handle.reading.store(reading, Ordering::Relaxed);
        let unsent = conn.unsent() as u64;
        let limit = self.state.runtime.output_limit(conn.session.client.pubsub_flag);
        if limit.hard_bytes > 0 && unsent > limit.hard_bytes {
            self.state
                .stats
                .output_limit_disconnections
                .fetch_add(1, Ordering::Relaxed);
            crate::warn_limited!(
                OUTPUT_LIMIT_LOG,
                id = conn.handle.id,
                unsent,
                "closing client: output buffer over the hard limit"
            );
            self.close(key);
            return;
        }
        if conn.closing {
            if conn.unsent() == 0 {
                self.close(key);
            }
            return;
        }
        if conn.unsent() < OUTPUT_HIGH_WATER
            && (conn.more_input || conn.session.has_unrun_input())
            && !conn.queued
        {
            conn.queued = true;
            self.ready.push_back(key);
        }
    }

    /// Once a second: idle timeout, output soft limit, idle buffer release,
    /// and every [`REPLY_PEAK_WINDOW`] a new window for reply-buffer peaks.
    fn sweep(&mut self, now: Instant) {
        self.last_sweep = now;
        let timeout = self.state.runtime.timeout();
        let runtime = &self.state.runtime;
        let mut doomed = Vec::new();
        let reset_peaks = now.saturating_duration_since(self.last_peak_reset) >= REPLY_PEAK_WINDOW;
        if reset_peaks {
            self.last_peak_reset = now;
        }
        for (key, conn) in self.conns.iter_mut() {
            if reset_peaks {
                conn.session.reset_reply_peak();
            }
            let idle = conn.handle.idle(now);
            if timeout > 0 && idle >= Duration::from_secs(timeout) && !conn.session.is_blocked() {
                tracing::debug!(id = conn.handle.id, "closing idle client (timeout)");
                doomed.push(key);
                continue;
            }
            let unsent = conn.unsent() as u64;
            let limit = runtime.output_limit(conn.session.client.pubsub_flag);
            if limit.soft_bytes > 0 && unsent > limit.soft_bytes {
                let since = *conn.over_soft_limit_since.get_or_insert(now);
                if now.duration_since(since) >= Duration::from_secs(limit.soft_seconds) {
                    crate::warn_limited!(
                        OUTPUT_LIMIT_LOG,
                        id = conn.handle.id,
                        unsent,
                        "closing client: output buffer over the soft limit for too long"
                    );
                    self.state
                        .stats
                        .output_limit_disconnections
                        .fetch_add(1, Ordering::Relaxed);
                    doomed.push(key);
                    continue;
                }
            } else {
                conn.over_soft_limit_since = None;
            }
            if unsent == 0 && idle >= SWEEP_INTERVAL {
                conn.session.shrink_idle_replies();
            }
        }
        for key in doomed {
            self.close(key);
        }
    }

    /// Deregisters and drops a connection.
    fn close(&mut self, key: usize) {
        if !self.conns.contains(key) {
            return;
        }
        let mut conn = self.conns.remove(key);
        self.keys_by_id.remove(&conn.handle.id);
        if conn.session.is_blocked() {
            self.state.blocking.unblock(conn.handle.id);
        }
        crate::command::pubsub::disconnect(&self.state, &mut conn.session.client, self.index);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.state.clients.remove(conn.handle.id);
        self.state.stats.client_disconnected();
        self.inbox.clients.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(id = conn.handle.id, "client disconnected");
        // A key may still sit in `ready`/`touched`; the slab lookup skips it.
    }

    /// Shutdown: the pass in hand is done; send what the sockets take, close.
    fn close_all(&mut self) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if let Some(conn) = self.conns.get_mut(key) {
                let _ = conn.flush();
                let _ = conn.stream.shutdown(std::net::Shutdown::Both);
            }
            self.close(key);
        }
        // Sockets handed over but never registered.
        self.inbox.take(&mut self.mail);
        for _socket in self.mail.sockets.drain(..) {
            self.state.stats.client_disconnected();
        }
    }
}
