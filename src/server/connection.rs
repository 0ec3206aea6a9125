//! The blocking driver around a [`Session`]: read, run, write, repeat.
//!
//! It owns the socket and nothing else: every protocol decision is the
//! session's. All replies produced by one read are written with one
//! `write_all`, so a pipelined burst costs one system call each way.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::session::Session;
use crate::state::{ClientState, ServerState};

/// How long a client that does not read its replies may block a worker
/// before it is disconnected (Redis's answer is its output-buffer limit).
pub const SLOW_CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves one client until it disconnects, QUITs, errs or the server stops.
pub fn serve(state: &ServerState, mut stream: TcpStream, worker: usize) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(SLOW_CLIENT_WRITE_TIMEOUT));
    let timeout = state.runtime.timeout();
    if timeout > 0 {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(timeout)));
    }
    let id = state.next_client_id();
    let addr = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    if let Ok(clone) = stream.try_clone() {
        state.clients.add(id, clone);
    }
    state.stats.client_connected();
    tracing::debug!(id, %addr, worker, "client connected");
    let client = ClientState {
        id,
        addr,
        ..ClientState::default()
    };
    let mut session = Session::new(state, client, worker);
    while !state.shutdown.is_requested() {
        let n = match stream.read(session.read_buf()) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                    tracing::debug!(id, "closing idle client (timeout)");
                }
                break;
            }
        };
        session.commit_read(n);
        session.run(state);
        if !session.replies().is_empty() {
            if let Err(e) = stream.write_all(session.replies()) {
                tracing::debug!(id, "write failed: {e}");
                break;
            }
            session.clear_replies();
        }
        if session.should_close() {
            break;
        }
    }
    state.clients.remove(id);
    state.stats.client_disconnected();
    tracing::debug!(id, "client disconnected");
}
