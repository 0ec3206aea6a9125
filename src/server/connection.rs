//! One client connection inside a worker: a non-blocking socket, the
//! [`Session`] that turns its bytes into replies, and the bookkeeping the
//! worker's loop needs (unsent output, back-pressure, limits).
//!
//! It owns the socket and nothing else: every protocol decision is the
//! session's. Replies stay in the session's buffer until the socket takes
//! them (what a partial write took is dropped from the front).

use std::io::{self, ErrorKind, Write};
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;

use crate::session::Session;
use crate::state::ClientHandle;

/// What one read brought.
pub enum ReadOutcome {
    /// `n` bytes; `filled` when they filled the space offered (more may wait).
    Data { filled: bool },
    /// Nothing to read now.
    Empty,
    /// The peer closed its side, or the socket failed.
    Closed,
}

/// A client served by a worker.
pub struct Connection {
    pub stream: TcpStream,
    pub session: Session,
    pub handle: Arc<ClientHandle>,
    /// In the worker's ready queue.
    pub queued: bool,
    /// In the worker's list of connections to commit and flush this pass.
    pub touched: bool,
    /// Input may be waiting that was not read (the last read filled its
    /// buffer, or the client was paused by back-pressure).
    pub more_input: bool,
    /// The poller reported a hang-up: read until end of file.
    pub peer_closed: bool,
    /// The peer closed its side (or the socket failed): read no more.
    pub eof: bool,
    /// Close once the unsent replies are written (QUIT, EOF, protocol error).
    pub closing: bool,
    /// Since when unsent output has been above the soft limit.
    pub over_soft_limit_since: Option<Instant>,
}

impl Connection {
    /// Wraps an accepted socket.
    pub fn new(stream: TcpStream, session: Session, handle: Arc<ClientHandle>) -> Connection {
        Connection {
            stream,
            session,
            handle,
            queued: false,
            touched: false,
            more_input: true,
            peer_closed: false,
            eof: false,
            closing: false,
            over_soft_limit_since: None,
        }
    }

    /// Reply bytes not yet written to the socket.
    pub fn unsent(&self) -> usize {
        self.session.replies().len()
    }

    /// One read into the session's buffer (borrowing the worker's spare
    /// buffer when the session holds none).
    pub fn read(&mut self, spare: &mut Vec<u8>) -> ReadOutcome {
        self.session.adopt_read_buffer(spare);
        loop {
            let space = self.session.read_space();
            let offered = space.len();
            match read_uninit(&self.stream, space) {
                Ok(0) => return ReadOutcome::Closed,
                Ok(n) => {
                    // SAFETY: `read_uninit` wrote the first `n` bytes of `space`.
                    unsafe { self.session.commit_read(n) };
                    return ReadOutcome::Data { filled: n == offered };
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return ReadOutcome::Empty,
                Err(e) => {
                    tracing::debug!(id = self.handle.id, "read failed: {e}");
                    return ReadOutcome::Closed;
                }
            }
        }
    }

    /// Writes as much unsent output as the socket takes. Returns false if
    /// the socket failed (the connection must close).
    pub fn flush(&mut self) -> bool {
        let mut sent = 0;
        while sent < self.session.replies().len() {
            match self.stream.write(&self.session.replies()[sent..]) {
                Ok(0) => return false,
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(id = self.handle.id, "write failed: {e}");
                    return false;
                }
            }
        }
        if sent > 0 {
            self.session.consume_replies(sent);
        }
        self.handle.output_buffer.store(self.unsent(), Ordering::Relaxed);
        true
    }
}

/// `read(2)` into uninitialised memory: `std::io::Read` wants an initialised
/// slice, which would mean zero-filling every byte of a big value's buffer
/// before the kernel overwrites it. Returns how many bytes were written.
fn read_uninit(stream: &TcpStream, space: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe `space`, which we own mutably;
    // the kernel writes at most `space.len()` bytes into it.
    let n = unsafe { libc::read(stream.as_raw_fd(), space.as_mut_ptr().cast(), space.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
