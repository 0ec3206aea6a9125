//! A client session: bytes in, replies out, no sockets.
//!
//! The driver (`server::worker`, one readiness loop serving many clients)
//! only does `read → session.run() → [group commit] → write(session.replies())`. Framing,
//! batching, QUIT and protocol-error decisions, and the query-buffer limit
//! all live here, so tests can feed any byte sequence — split anywhere,
//! pipelined, garbage — and check the replies without a socket, and a
//! different I/O driver could reuse the session unchanged.

use std::mem::MaybeUninit;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::command::{self, Args, CommandSpec, ExecScratch, Invocation};
use crate::protocol::{ArgSource, Limits, Parsed, Parser, Protocol, ProtocolError, Replies, Style};
use crate::shared_bytes::SHARE_THRESHOLD;
use crate::state::{BufferUse, ClientNames, ClientState, ServerState};
use crate::wal::{Lsn, WalError};

/// Smallest read: also the initial buffer size.
const READ_CHUNK: usize = 16 * 1024;
/// A bulk argument at least this long is read into a buffer grown to exactly
/// the size that completes it, not by doubling (Redis's `PROTO_MBULK_BIG_ARG`).
const BIG_BULK: usize = 32 * 1024;
/// An idle read buffer larger than this is shrunk back to [`READ_CHUNK`].
const MAX_IDLE_BUFFER: usize = 1024 * 1024;

/// A framed command waiting to run: where its arguments are.
#[derive(Clone, Copy)]
struct Pending {
    /// Offset of the command's first byte in the read buffer (RESP) or of
    /// its unescaped arguments in `inline_bytes` (text).
    base: usize,
    source: ArgSource,
    /// Range of `arg_ranges` holding this command's arguments.
    first_arg: usize,
    arg_count: usize,
    style: Style,
    /// Looked up once here; the executor reuses it.
    spec: Option<&'static CommandSpec>,
    /// Offset in the read buffer just past this command.
    end: usize,
}

/// Per-client protocol state.
pub struct Session {
    /// Bytes read and not yet consumed; its spare capacity is the room the
    /// next read may fill (never zero-filled: the kernel writes it).
    buf: Vec<u8>,
    parser: Parser,
    pending: Vec<Pending>,
    arg_ranges: Vec<(usize, usize)>,
    inline_bytes: Vec<u8>,
    replies: Replies,
    scratch: ExecScratch,
    /// Connection-visible state commands may change (auth, name, QUIT).
    pub client: ClientState,
    closed: bool,
    inline_replies_resp: bool,
    query_buffer_limit: usize,
    worker: usize,
    /// Stop running commands in a pass once this many reply bytes wait to be
    /// sent; the rest stays buffered for the next pass (back-pressure).
    output_budget: usize,
    /// True when the buffer holds complete commands not yet run.
    unrun_input: bool,
    /// The names last published to the client's handle.
    published: ClientNames,
    /// The most reply bytes that waited at once since the driver last called
    /// [`Session::reset_reply_peak`] (CLIENT LIST's `rbp`).
    reply_peak: usize,
}

impl Session {
    /// A session for `client`, run by worker number `worker` (its stats slot).
    pub fn new(state: &ServerState, mut client: ClientState, worker: usize) -> Session {
        let config = &state.config;
        // As in Redis, a client that connects while no password is set stays
        // authenticated if `CONFIG SET requirepass` adds one later.
        client.authenticated |= !state.runtime.requirepass_set();
        Session {
            buf: Vec::new(),
            parser: Parser::new(Limits {
                max_inline: config.proto_inline_max_size,
                max_multibulk: config.proto_max_multibulk_len,
                max_bulk: config.proto_max_bulk_len,
            }),
            pending: Vec::new(),
            arg_ranges: Vec::new(),
            inline_bytes: Vec::new(),
            replies: Replies::default(),
            scratch: ExecScratch::default(),
            client,
            closed: false,
            inline_replies_resp: config.inline_replies == crate::config::InlineReplies::Resp,
            query_buffer_limit: config.client_query_buffer_limit,
            worker,
            output_budget: usize::MAX,
            unrun_input: false,
            published: ClientNames::default(),
            reply_peak: 0,
        }
    }

    /// Lets a driver that serves many clients keep replies bounded: a pass
    /// stops running commands once `bytes` of replies are waiting.
    pub fn set_output_budget(&mut self, bytes: usize) {
        self.output_budget = bytes.max(1);
    }

    /// Under `fsync = always`, leaves the group commit to the driver: it calls
    /// [`Session::pending_commit`] after a pass and [`Session::finish_commit`]
    /// once the WAL is durable up to there, and only then sends the replies.
    pub fn set_deferred_commit(&mut self, deferred: bool) {
        self.scratch.set_deferred_commit(deferred);
    }

    /// The WAL position the replies written so far wait for (deferred commit).
    pub fn pending_commit(&self) -> Option<Lsn> {
        self.scratch.pending_commit()
    }

    /// Ends a deferred commit: on failure, the replies of the writes it
    /// covered become the error (the writes are applied but not durable, so
    /// they must not be acknowledged).
    pub fn finish_commit(&mut self, result: Result<(), &WalError>) {
        self.scratch.finish_commit(&mut self.replies, result);
    }

    /// True when complete commands are buffered but were not run (the output
    /// budget stopped the pass): the driver runs them once output drains.
    pub fn has_unrun_input(&self) -> bool {
        self.unrun_input && self.client.blocked.is_none()
    }

    /// True while a blocking command waits (`crate::blocking`): nothing runs.
    pub fn is_blocked(&self) -> bool {
        self.client.blocked.is_some()
    }

    /// When the blocked command's wait ends (None: not blocked, or forever).
    pub fn block_deadline(&self) -> Option<std::time::Instant> {
        self.client.blocked.and_then(|b| b.deadline)
    }

    /// Ends the wait: the blocked command runs again on the next pass and,
    /// told `reason`, pops, blocks again (keeping its deadline and its
    /// turn), or replies null / `-UNBLOCKED`. The registry entry is already gone.
    pub fn wake(&mut self, reason: crate::blocking::WakeReason) {
        let Some(blocked) = self.client.blocked.take() else {
            return;
        };
        self.client.wake_reason = Some(reason);
        self.client.resumed_deadline = Some(blocked.deadline);
        if let Some(handle) = &self.client.handle {
            handle.blocked.store(false, Ordering::Relaxed);
        }
    }

    /// Appends an out-of-band message (pub/sub message, MONITOR line,
    /// invalidation) after the replies already waiting, in the style the
    /// client subscribed with (a RESP3 push after `HELLO 3`).
    pub fn push_with(&mut self, write: impl FnOnce(&mut Replies)) {
        let style = crate::pubsub::push_style(self.client.push_style, self.client.resp3);
        self.replies.set_style(style);
        write(&mut self.replies);
    }

    /// Gives the session a read buffer to use if it has none (a driver keeps
    /// one spare per thread, so idle clients hold no buffer at all).
    pub fn adopt_read_buffer(&mut self, spare: &mut Vec<u8>) {
        if self.buf.capacity() == 0 && spare.capacity() > 0 {
            spare.clear();
            std::mem::swap(&mut self.buf, spare);
        }
    }

    /// Hands the read buffer back to the driver's spare slot when nothing is
    /// buffered in it.
    pub fn release_read_buffer(&mut self, spare: &mut Vec<u8>) {
        if !self.buf.is_empty() {
            return;
        }
        if spare.capacity() == 0 && self.buf.capacity() <= MAX_IDLE_BUFFER {
            std::mem::swap(&mut self.buf, spare);
        } else if self.buf.capacity() > MAX_IDLE_BUFFER {
            self.buf = Vec::new();
        }
    }

    /// Frees the reply buffer's memory when nothing waits to be sent.
    pub fn shrink_idle_replies(&mut self) {
        if self.replies.is_empty() {
            self.replies.release();
            if let Some(handle) = &self.client.handle {
                handle.reply_buffer_size.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Starts a new window for the reply-buffer peak (`rbp`), which, as in
    /// Redis, covers the last few seconds rather than the connection's life.
    pub fn reset_reply_peak(&mut self) {
        self.reply_peak = self.replies.len();
        if let Some(handle) = &self.client.handle {
            handle.reply_buffer_peak.store(self.reply_peak, Ordering::Relaxed);
        }
    }

    /// Publishes what `CLIENT LIST` shows of this client to its handle: the
    /// last command, its buffers and, only when they changed, its names.
    ///
    /// The driver calls it once per pass, after the commands ran and before
    /// the replies are written: replies only accumulate during a pass, so
    /// that is when the reply buffer is fullest, and sampling the peak there
    /// costs nothing per reply.
    pub fn publish(&mut self, last_command: Option<usize>) {
        let Some(handle) = &self.client.handle else {
            return;
        };
        if let Some(index) = last_command {
            handle.set_last_command(index);
        }
        self.reply_peak = self.reply_peak.max(self.replies.len());
        handle.query_buffer.store(self.buf.len(), Ordering::Relaxed);
        handle
            .query_buffer_free
            .store(self.buf.capacity() - self.buf.len(), Ordering::Relaxed);
        handle
            .reply_buffer_size
            .store(self.replies.capacity(), Ordering::Relaxed);
        handle.reply_buffer_peak.store(self.reply_peak, Ordering::Relaxed);
        handle
            .multi_mem
            .store(self.client.tx.queued_memory(), Ordering::Relaxed);
        let multi = self.client.tx.queued().map_or(-1, |n| n as i64);
        handle.multi.store(multi, Ordering::Relaxed);
        handle.watch.store(self.client.tx.watched(), Ordering::Relaxed);
        handle.db.store(self.client.db, Ordering::Relaxed);
        handle
            .resp
            .store(usize::from(self.client.resp_version()), Ordering::Relaxed);
        handle.no_touch.store(self.client.no_touch, Ordering::Relaxed);
        let client = &self.client;
        if client.name != self.published.name
            || client.lib_name != self.published.lib_name
            || client.lib_ver != self.published.lib_ver
        {
            self.published = ClientNames {
                name: client.name.clone(),
                lib_name: client.lib_name.clone(),
                lib_ver: client.lib_ver.clone(),
            };
            handle.set_names(self.published.clone());
        }
    }

    /// Room to read into, uninitialised (the kernel writes it; nothing is
    /// zero-filled). The buffer grows only when full, by doubling, so a
    /// client claiming a 512 MiB bulk costs memory only as bytes arrive.
    /// While the body of a big bulk argument is awaited, the doubling is
    /// capped at exactly the size that completes it: a 512 MiB value ends in
    /// a 512 MiB buffer, not in a 1 GiB one (growing a buffer that large is
    /// an `mremap`, not a copy).
    pub fn read_space(&mut self) -> &mut [MaybeUninit<u8>] {
        let wanted = self.wanted_capacity();
        if wanted > self.buf.capacity() {
            self.buf.reserve_exact(wanted - self.buf.len());
        }
        self.buf.spare_capacity_mut()
    }

    /// Bytes of memory the session holds for unprocessed input (its read
    /// buffer), so tests and the fuzz targets can check that a client cannot
    /// make it grow beyond what its limits allow.
    pub fn input_buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The capacity the next read should have (see [`Session::read_space`]).
    fn wanted_capacity(&self) -> usize {
        let (len, capacity) = (self.buf.len(), self.buf.capacity());
        if len < capacity {
            return capacity;
        }
        let doubled = (capacity * 2).max(READ_CHUNK);
        // The parser's positions count from the buffer's first byte, where a
        // partial command always starts once a pass is over (unless commands
        // wait unrun: then the driver runs them before it reads).
        match self.parser.awaited_bulk().filter(|_| !self.unrun_input) {
            Some((bulk, end)) if bulk >= BIG_BULK && end > len => doubled.min(end),
            _ => doubled,
        }
    }

    /// Records that `n` bytes were read into [`Session::read_space`].
    ///
    /// # Safety
    /// The first `n` bytes of the slice the last `read_space` returned must
    /// have been written since.
    pub unsafe fn commit_read(&mut self, n: usize) {
        let n = n.min(self.buf.capacity() - self.buf.len());
        // SAFETY: the caller wrote these `n` bytes of spare capacity.
        unsafe { self.buf.set_len(self.buf.len() + n) };
    }

    /// Convenience for tests and other drivers: copy `bytes` in and run,
    /// offering them in the pieces a socket read would (the same buffer sizes).
    pub fn feed(&mut self, state: &ServerState, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.closed {
            let n = self.read_space().len().min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            self.run(state);
        }
    }

    /// Replies ready to be written.
    pub fn replies(&self) -> &[u8] {
        self.replies.bytes()
    }

    /// Forgets replies that were written.
    pub fn clear_replies(&mut self) {
        self.replies.clear();
    }

    /// Forgets the first `n` reply bytes (a partial write).
    pub fn consume_replies(&mut self, n: usize) {
        self.replies.consume(n);
    }

    /// True once the connection must close after its replies are written
    /// (QUIT, SHUTDOWN, a protocol error).
    pub fn should_close(&self) -> bool {
        self.closed
    }

    /// Frames every complete command in the buffer, runs them in order
    /// (batching consecutive keyed commands), and keeps any partial command.
    ///
    /// Before the client authenticates (with `requirepass` set) the parser
    /// applies Redis's pre-authentication limits, and framing stops after any
    /// command that may authenticate (AUTH, HELLO): what follows it is framed
    /// again under the limits that command leaves in force.
    pub fn run(&mut self, state: &ServerState) {
        if self.client.blocked.is_some() {
            // Input keeps arriving (and EOF is noticed) but waits its turn.
            return;
        }
        loop {
            // The live setting (`CONFIG SET requirepass` may add or remove
            // it), as the executor's NOAUTH check reads it.
            let gating = state.runtime.requirepass_set();
            let gated = !self.client.authenticated && gating;
            self.parser.set_unauthenticated(gated);
            if !self.run_once(state, gated, gating) {
                return;
            }
        }
    }

    /// One frame-and-execute round. True when it stopped at a command that
    /// may have changed the authentication state and input remains.
    fn run_once(&mut self, state: &ServerState, gated: bool, gating: bool) -> bool {
        if self.closed {
            return false;
        }
        if self.unrun_input {
            self.parser.reset();
            self.unrun_input = false;
        }
        let (framed, error, stopped_at_auth) = self.frame(gated, gating);
        let shared = self.share_buffer_for_big_argument();
        let held = shared.as_deref().unwrap_or(&self.buf);
        self.client.query_buffer = BufferUse {
            len: held.len(),
            capacity: held.capacity(),
        };
        let (consumed, stopped_early) = self.execute_pending(state, framed, shared.as_ref());
        let consumed = match shared {
            Some(shared) => self.take_buffer_back(shared, consumed),
            None => consumed,
        };
        if stopped_early {
            // Commands after `consumed` are framed but not run: frame them
            // again next pass (the parser restarts at a command boundary).
            self.unrun_input = true;
            self.discard(consumed);
            return false;
        }
        if let Some(error) = error {
            if !self.closed {
                let style = match self.buf.get(consumed) {
                    Some(b'*') | None => Style::Resp,
                    Some(_) => Style::for_request(Protocol::Text { crlf: true }, self.inline_replies_resp),
                };
                self.replies.set_style(style);
                self.replies.error(&error.to_string());
                self.closed = true;
            }
        }
        self.discard(consumed);
        stopped_at_auth && !self.closed && !self.buf.is_empty()
    }

    /// When a framed command carries an argument big enough to be stored
    /// without a copy ([`SHARE_THRESHOLD`], and more than half the buffer, so
    /// a kept value never pins much more than itself), turns the read buffer
    /// into a shared one the command may keep a range of. The buffer was
    /// sized for that argument ([`Session::read_space`]), so the value stays
    /// where the socket put it.
    fn share_buffer_for_big_argument(&mut self) -> Option<Arc<Vec<u8>>> {
        if self.buf.len() < SHARE_THRESHOLD {
            return None;
        }
        let capacity = self.buf.capacity();
        let big = self.pending.iter().any(|p| {
            p.source == ArgSource::Buffer
                && self.arg_ranges[p.first_arg..p.first_arg + p.arg_count]
                    .iter()
                    .any(|&(start, end)| end - start >= SHARE_THRESHOLD && (end - start) * 2 > capacity)
        });
        big.then(|| Arc::new(std::mem::take(&mut self.buf)))
    }

    /// Takes the read buffer back after the commands ran: as it was if no
    /// command kept part of it, otherwise a fresh buffer holding the bytes
    /// from `consumed` on. Returns where the unconsumed bytes now start.
    fn take_buffer_back(&mut self, shared: Arc<Vec<u8>>, consumed: usize) -> usize {
        match Arc::try_unwrap(shared) {
            Ok(buf) => {
                self.buf = buf;
                consumed
            }
            Err(shared) => {
                let rest = &shared[consumed..];
                self.buf = Vec::with_capacity(rest.len().max(READ_CHUNK));
                self.buf.extend_from_slice(rest);
                0
            }
        }
    }

    /// Frames commands from the buffer into `pending`. Returns how many bytes
    /// were consumed, the framing error that stopped it, if any, and whether
    /// it stopped early after a command allowed before authentication
    /// (when `gated`), or after a RESET, which drops the authentication
    /// (when `gating`: the pre-authentication limits exist at all).
    fn frame(&mut self, gated: bool, gating: bool) -> (usize, Option<ProtocolError>, bool) {
        self.pending.clear();
        self.arg_ranges.clear();
        self.inline_bytes.clear();
        let mut pos = 0;
        loop {
            match self.parser.parse(&self.buf[pos..]) {
                Parsed::Command {
                    protocol,
                    source,
                    len,
                } => {
                    let first_arg = self.arg_ranges.len();
                    let base = match source {
                        ArgSource::Buffer => {
                            self.arg_ranges.extend_from_slice(self.parser.args());
                            pos
                        }
                        ArgSource::Scratch => {
                            let shift = self.inline_bytes.len();
                            self.inline_bytes.extend_from_slice(self.parser.scratch());
                            self.arg_ranges
                                .extend(self.parser.args().iter().map(|&(s, e)| (s + shift, e + shift)));
                            0
                        }
                    };
                    let (name_start, name_end) = self.arg_ranges[first_arg];
                    let name = match source {
                        ArgSource::Buffer => &self.buf[pos + name_start..pos + name_end],
                        ArgSource::Scratch => &self.inline_bytes[name_start..name_end],
                    };
                    let spec = command::lookup(name);
                    self.pending.push(Pending {
                        base,
                        source,
                        first_arg,
                        arg_count: self.arg_ranges.len() - first_arg,
                        style: Style::for_request(protocol, self.inline_replies_resp),
                        spec,
                        end: pos + len,
                    });
                    pos += len;
                    if spec
                        .is_some_and(|spec| spec.flags.no_auth && (gated || (gating && spec.name == "reset")))
                    {
                        return (pos, None, true);
                    }
                }
                Parsed::Skip { len } => pos += len,
                Parsed::Incomplete => {
                    if self.buf.len() - pos > self.query_buffer_limit {
                        return (pos, Some(ProtocolError::QueryBufferLimit), false);
                    }
                    return (pos, None, false);
                }
                Parsed::Error(e) => return (pos, Some(e), false),
            }
        }
    }

    /// Runs the framed commands: runs of consecutive keyed commands go to the
    /// executor together (one lock acquisition per shard, one WAL append);
    /// anything else runs alone. Stops after QUIT or SHUTDOWN, and once the
    /// output budget is spent. Returns how far into the buffer the commands
    /// that ran reach (`framed` when all ran) and whether it stopped early.
    fn execute_pending(
        &mut self,
        state: &ServerState,
        framed: usize,
        shared: Option<&Arc<Vec<u8>>>,
    ) -> (usize, bool) {
        let view = ArgsView {
            buf: shared.map_or(&self.buf[..], |shared| &shared[..]),
            shared,
            inline_bytes: &self.inline_bytes,
            arg_ranges: &self.arg_ranges,
        };
        let mut i = 0;
        while i < self.pending.len() && !self.client.close_after_reply {
            if self.replies.len() >= self.output_budget {
                let consumed = if i == 0 { 0 } else { self.pending[i - 1].end };
                return (consumed, true);
            }
            if self.client.tx.in_multi() {
                // Between MULTI and EXEC: one command at a time, queued or run.
                let p = &self.pending[i];
                let cmd = Invocation {
                    args: view.args(p),
                    style: p.style,
                    spec: p.spec,
                };
                command::transaction::in_multi(
                    state,
                    &mut self.client,
                    &mut self.replies,
                    &mut self.scratch,
                    cmd,
                    self.worker,
                );
                i += 1;
                continue;
            }
            if self.pending[i].spec.is_some_and(|spec| spec.flags.script) {
                let p = &self.pending[i];
                let cmd = Invocation {
                    args: view.args(p),
                    style: p.style,
                    spec: p.spec,
                };
                command::scripting::run(
                    state,
                    &mut self.client,
                    &mut self.replies,
                    &mut self.scratch,
                    cmd,
                    self.worker,
                );
                i += 1;
                continue;
            }
            let mut n = 1;
            let batchable = |p: &Pending| command::batchable(p.spec, p.arg_count);
            if batchable(&self.pending[i]) {
                while n < command::MAX_BATCH && i + n < self.pending.len() && batchable(&self.pending[i + n])
                {
                    n += 1;
                }
            }
            let group = self.pending[i..i + n].iter().map(|p| Invocation {
                args: view.args(p),
                style: p.style,
                spec: p.spec,
            });
            i += command::execute(
                state,
                &mut self.client,
                &mut self.replies,
                &mut self.scratch,
                group,
                self.worker,
            );
            if self.client.blocked.is_some() {
                // A blocking command registered its wait: keep it (and what
                // follows) in the buffer, to run again when woken.
                let consumed = if i <= 1 { 0 } else { self.pending[i - 2].end };
                return (consumed, true);
            }
            // A woken command ran to its end (it may not have reached the
            // code that reads these): the next blocking command starts afresh.
            self.client.wake_reason = None;
            self.client.resumed_deadline = None;
        }
        if self.client.close_after_reply {
            self.closed = true;
        }
        (framed, false)
    }

    /// Drops the first `consumed` bytes, keeping a partial command.
    fn discard(&mut self, consumed: usize) {
        self.buf.drain(..consumed);
        if self.buf.capacity() > MAX_IDLE_BUFFER && self.buf.len() < READ_CHUNK {
            self.buf.shrink_to(READ_CHUNK);
        }
    }
}

/// The buffers a [`Pending`] command's arguments point into.
struct ArgsView<'a> {
    buf: &'a [u8],
    /// `buf`'s owner when it was shared for a big argument.
    shared: Option<&'a Arc<Vec<u8>>>,
    inline_bytes: &'a [u8],
    arg_ranges: &'a [(usize, usize)],
}

impl<'a> ArgsView<'a> {
    fn args(&self, p: &Pending) -> Args<'a> {
        let ranges = &self.arg_ranges[p.first_arg..p.first_arg + p.arg_count];
        match p.source {
            ArgSource::Buffer => Args::new(&self.buf[p.base..], ranges).shared_from(self.shared, p.base),
            ArgSource::Scratch => Args::new(self.inline_bytes, ranges),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::{Config, InlineReplies};
    use crate::store::Databases;

    fn state_with(config: Config) -> ServerState {
        let config = Config { wal: false, ..config };
        let dbs = Arc::new(Databases::new(config.databases, config.shards));
        ServerState::new(config, dbs, None, None)
    }

    fn state() -> ServerState {
        state_with(Config::default())
    }

    fn session(state: &ServerState) -> Session {
        Session::new(state, ClientState::default(), 0)
    }

    /// Feeds `input` in one go and returns the replies.
    fn exchange(state: &ServerState, s: &mut Session, input: &[u8]) -> Vec<u8> {
        s.feed(state, input);
        let out = s.replies().to_vec();
        s.clear_replies();
        out
    }

    #[test]
    fn pipelined_commands_in_one_packet_all_run_in_order() {
        let st = state();
        let mut s = session(&st);
        let out = exchange(
            &st,
            &mut s,
            b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\nINCR a\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\nGET a\n",
        );
        assert_eq!(out, b"+OK\r\n(integer) 2\r\n$1\r\n2\r\n2\n");
    }

    #[test]
    fn a_command_split_byte_by_byte_gives_the_same_replies() {
        let st = state();
        let input: &[u8] =
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\nGET k\r\n*0\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        let mut whole = session(&st);
        let expected = exchange(&st, &mut whole, input);
        let mut split = session(&st);
        let mut out = Vec::new();
        for byte in input {
            out.extend(exchange(&st, &mut split, std::slice::from_ref(byte)));
        }
        assert_eq!(out, expected);
        assert_eq!(expected, b"+OK\r\nv\r\n\r\n$3\r\nv\r\n\r\n");
    }

    #[test]
    fn client_info_counts_the_read_buffer_as_it_arrived_inline_or_resp() {
        let st = state();
        let mut s = session(&st);
        // Inline: the 13 bytes as sent, plus the PING read with them.
        let out = exchange(&st, &mut s, b"PING\r\nCLIENT INFO\r\n");
        let out = String::from_utf8_lossy(&out);
        assert!(out.contains(" qbuf=19 "), "{out}");
        assert!(out.contains(" argv-mem=10 "), "{out}");
        assert!(out.contains(" cmd=client|info "), "{out}");
        let out = exchange(&st, &mut s, b"*2\r\n$6\r\nCLIENT\r\n$4\r\nINFO\r\n");
        let out = String::from_utf8_lossy(&out);
        assert!(out.contains(" qbuf=26 "), "{out}");
    }

    #[test]
    fn quit_answers_ok_and_stops_the_pipeline() {
        let st = state();
        let mut s = session(&st);
        let out = exchange(&st, &mut s, b"SET a 1\r\nQUIT\r\nSET b 2\r\n");
        assert_eq!(out, b"OK\r\nOK\r\n");
        assert!(s.should_close());
        let mut other = session(&st);
        assert_eq!(exchange(&st, &mut other, b"EXISTS a b\r\n"), b"(integer) 1\r\n");
    }

    #[test]
    fn a_framing_error_answers_earlier_commands_then_closes() {
        let st = state();
        let mut s = session(&st);
        let out = exchange(&st, &mut s, b"PING\r\n*1\r\n$x\r\nPING\r\n");
        assert_eq!(out, b"PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
        assert!(s.should_close());
    }

    #[test]
    fn a_bad_command_keeps_the_connection() {
        let st = state();
        let mut s = session(&st);
        let out = exchange(
            &st,
            &mut s,
            b"*2\r\n$3\r\nFOO\r\n$1\r\na\r\n*1\r\n$3\r\nGET\r\n*1\r\n$4\r\nPING\r\n",
        );
        assert_eq!(
            out,
            &b"-ERR unknown command 'FOO', with args beginning with: 'a' \r\n-ERR wrong number of arguments for 'get' command\r\n+PONG\r\n"[..]
        );
        assert!(!s.should_close());
    }

    #[test]
    fn inline_replies_resp_gives_text_commands_resp_answers() {
        let st = state_with(Config {
            inline_replies: InlineReplies::Resp,
            ..Config::default()
        });
        let mut s = session(&st);
        assert_eq!(
            exchange(&st, &mut s, b"PING\r\nGET nope\r\n"),
            b"+PONG\r\n$-1\r\n"
        );
    }

    #[test]
    fn a_pipelined_write_batch_takes_far_fewer_lock_acquisitions_than_commands() {
        let st = state();
        let mut s = session(&st);
        let mut input = Vec::new();
        for i in 0..1000 {
            let key = format!("key:{i}");
            input.extend_from_slice(
                format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\nv\r\n", key.len()).as_bytes(),
            );
        }
        let (before, _) = st.dbs.counters();
        let out = exchange(&st, &mut s, &input);
        let (after, _) = st.dbs.counters();
        assert_eq!(out, b"+OK\r\n".repeat(1000));
        assert_eq!(st.dbs.len(), 1000);
        // Batches of up to MAX_BATCH commands (cut also where a read ends),
        // each locking every shard it touches once: ~16 per batch, not 1000.
        let acquisitions = after - before;
        assert!(
            acquisitions * 10 < 1000,
            "{acquisitions} lock acquisitions for 1000 SETs"
        );
    }

    #[test]
    fn requirepass_gates_everything_but_auth_hello_quit() {
        let st = state_with(Config {
            requirepass: Some("secret".into()),
            ..Config::default()
        });
        let mut s = session(&st);
        let out = exchange(&st, &mut s, b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nAUTH\r\n$5\r\nwrong\r\n*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n*1\r\n$4\r\nPING\r\n");
        assert_eq!(
            out,
            &b"-NOAUTH Authentication required.\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n+PONG\r\n"[..]
        );
    }

    #[test]
    fn an_unauthenticated_big_bulk_is_refused_and_closes_the_connection() {
        let st = state_with(Config {
            requirepass: Some("secret".into()),
            ..Config::default()
        });
        let mut s = session(&st);
        let out = exchange(&st, &mut s, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048576\r\nxxxx");
        assert_eq!(out, b"-ERR Protocol error: unauthenticated bulk length\r\n");
        assert!(s.should_close());
        let mut s = session(&st);
        let out = exchange(&st, &mut s, b"*11\r\n");
        assert_eq!(out, b"-ERR Protocol error: unauthenticated multibulk length\r\n");
        assert!(s.should_close());
    }

    #[test]
    fn a_claimed_big_bulk_reserves_only_what_arrives_and_a_sent_one_exactly_its_size() {
        let st = state();
        let mut s = session(&st);
        // A 512 MiB claim and 10 bytes: the buffer stays at its first chunk.
        s.feed(&st, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n0123456789");
        assert_eq!(s.input_buffer_capacity(), READ_CHUNK);
        // A 3 MiB value arriving in pieces ends in a buffer of exactly the
        // command's size, not in the 4 MiB of plain doubling.
        let mut s = session(&st);
        let header = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3145728\r\n";
        s.feed(&st, header);
        let mut largest = 0;
        for _ in 0..3 * 16 {
            s.feed(&st, &[b'v'; 64 * 1024]);
            largest = largest.max(s.input_buffer_capacity());
        }
        assert_eq!(largest, header.len() + 3 * 1024 * 1024 + 2);
        s.feed(&st, b"\r\n");
        assert_eq!(s.replies(), b"+OK\r\n");
    }

    #[test]
    fn a_big_bulk_pipelined_right_after_auth_is_accepted() {
        let st = state_with(Config {
            requirepass: Some("secret".into()),
            ..Config::default()
        });
        let mut s = session(&st);
        let value = vec![b'v'; 100_000];
        let mut input = b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n".to_vec();
        input.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n");
        input.extend_from_slice(&value);
        input.extend_from_slice(b"\r\n*2\r\n$6\r\nSTRLEN\r\n$1\r\nk\r\n");
        let out = exchange(&st, &mut s, &input);
        assert_eq!(out, b"+OK\r\n+OK\r\n:100000\r\n");
        assert!(!s.should_close());
    }

    #[test]
    fn a_wrong_password_keeps_the_pre_authentication_limits() {
        let st = state_with(Config {
            requirepass: Some("secret".into()),
            ..Config::default()
        });
        let mut s = session(&st);
        let out = exchange(
            &st,
            &mut s,
            b"*2\r\n$4\r\nAUTH\r\n$4\r\nnope\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000\r\n",
        );
        assert_eq!(
            out,
            &b"-WRONGPASS invalid username-password pair or user is disabled.\r\n-ERR Protocol error: unauthenticated bulk length\r\n"[..]
        );
    }

    #[test]
    fn a_reset_pipelined_after_auth_brings_back_the_pre_authentication_limits() {
        let st = state_with(Config {
            requirepass: Some("secret".into()),
            ..Config::default()
        });
        let mut s = session(&st);
        let out = exchange(
            &st,
            &mut s,
            b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n*1\r\n$5\r\nRESET\r\n*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000\r\n",
        );
        assert_eq!(
            out,
            &b"+OK\r\n+RESET\r\n-NOAUTH Authentication required.\r\n-ERR Protocol error: unauthenticated bulk length\r\n"[..]
        );
    }
}
