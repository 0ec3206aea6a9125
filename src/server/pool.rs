//! The fixed worker pool and the hand-off from the listener.
//!
//! memcached's shape: the listener thread accepts, picks a worker, pushes the
//! socket onto that worker's `parking_lot::Mutex<VecDeque<TcpStream>>` and
//! wakes it. A worker sleeps in `epoll_wait`, where a `Condvar` cannot reach
//! it, so the wake-up is a [`mio::Waker`] (an eventfd registered in the
//! worker's poller). Kill requests from `CLIENT KILL` travel the same way.
//!
//! Sockets go to the worker with the fewest clients (ties: round robin).
//! `docs/architecture.md` compares this with plain round robin and with a
//! shared queue of ready connections.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use mio::{Poll, Token, Waker};
use parking_lot::Mutex;

use super::worker::Worker;
use crate::state::{KillNotifier, ServerState};

/// The poller token of a worker's waker (connections use slab indices).
pub const WAKER_TOKEN: Token = Token(usize::MAX);

/// Worker thread stack size: handlers neither recurse nor keep big frames.
pub const WORKER_STACK: usize = 2 * 1024 * 1024;

/// What the listener and `CLIENT KILL` leave for a worker.
#[derive(Default)]
pub struct InboxQueue {
    /// Accepted sockets with the client id the listener gave them (ids follow accept order).
    pub sockets: VecDeque<(u64, TcpStream)>,
    pub kills: Vec<u64>,
    /// Blocked clients to run again, and why.
    pub wakes: Vec<(u64, crate::blocking::WakeReason)>,
    pub stopping: bool,
}

/// One worker's mailbox: a queue under a mutex and the waker of its poller.
pub struct Inbox {
    queue: Mutex<InboxQueue>,
    waker: Waker,
    /// Clients this worker serves (for least-loaded placement).
    pub clients: AtomicUsize,
}

impl Inbox {
    /// Takes everything queued for the worker.
    pub fn take(&self, into: &mut InboxQueue) {
        let mut queue = self.queue.lock();
        into.sockets.append(&mut queue.sockets);
        into.kills.append(&mut queue.kills);
        into.wakes.append(&mut queue.wakes);
        into.stopping |= queue.stopping;
    }

    fn push(&self, change: impl FnOnce(&mut InboxQueue)) {
        change(&mut self.queue.lock());
        if let Err(e) = self.waker.wake() {
            tracing::error!("cannot wake a worker: {e}");
        }
    }
}

/// N worker threads, each multiplexing many connections.
pub struct WorkerPool {
    inboxes: Vec<Arc<Inbox>>,
    threads: Vec<JoinHandle<()>>,
    next: AtomicUsize,
}

impl WorkerPool {
    /// Starts `size` workers serving clients against `state`, and installs
    /// their kill notifiers in the client registry.
    pub fn start(size: usize, state: &Arc<ServerState>) -> std::io::Result<WorkerPool> {
        let mut inboxes = Vec::with_capacity(size);
        let mut polls = Vec::with_capacity(size);
        for _ in 0..size {
            let poll = Poll::new()?;
            let waker = Waker::new(poll.registry(), WAKER_TOKEN)?;
            inboxes.push(Arc::new(Inbox {
                queue: Mutex::new(InboxQueue::default()),
                waker,
                clients: AtomicUsize::new(0),
            }));
            polls.push(poll);
        }
        let notifiers: Vec<KillNotifier> = inboxes
            .iter()
            .map(|inbox| {
                let inbox = Arc::clone(inbox);
                Box::new(move |id| inbox.push(|q| q.kills.push(id))) as KillNotifier
            })
            .collect();
        state.clients.set_notifiers(notifiers);
        let wakers: Vec<crate::state::WakeNotifier> = inboxes
            .iter()
            .map(|inbox| {
                let inbox = Arc::clone(inbox);
                Box::new(move |id, reason| inbox.push(|q| q.wakes.push((id, reason))))
                    as crate::state::WakeNotifier
            })
            .collect();
        state.clients.set_wakers(wakers);
        for (index, inbox) in inboxes.iter().enumerate() {
            let inbox = Arc::clone(inbox);
            state.pubsub.mailbox(index).set_wake(Box::new(move || {
                if let Err(e) = inbox.waker.wake() {
                    tracing::error!("cannot wake a worker: {e}");
                }
            }));
        }
        let mut pool = WorkerPool {
            inboxes,
            threads: Vec::with_capacity(size),
            next: AtomicUsize::new(0),
        };
        for (index, poll) in polls.into_iter().enumerate() {
            let worker = Worker::new(index, Arc::clone(state), poll, Arc::clone(&pool.inboxes[index]));
            let spawned = std::thread::Builder::new()
                .name(format!("kv-worker-{index}"))
                .stack_size(WORKER_STACK)
                .spawn(move || worker.run());
            match spawned {
                Ok(thread) => pool.threads.push(thread),
                Err(e) => {
                    // No half-started server: the workers already running stop
                    // before the error is returned.
                    pool.inboxes.truncate(index);
                    pool.stop();
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("cannot start worker thread {} of {size}: {e}", index + 1),
                    ));
                }
            }
        }
        Ok(pool)
    }

    /// Hands client `id`'s `socket` to the worker serving the fewest clients.
    pub fn submit(&self, id: u64, socket: TcpStream) {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.inboxes.len();
        let chosen = (0..n)
            .map(|i| (start + i) % n)
            .min_by_key(|&i| self.inboxes[i].clients.load(Ordering::Relaxed))
            .unwrap_or(0);
        let inbox = &self.inboxes[chosen];
        inbox.clients.fetch_add(1, Ordering::Relaxed);
        inbox.push(|q| q.sockets.push_back((id, socket)));
    }

    /// Asks every worker to finish its pass, close its clients and exit;
    /// waits for them.
    pub fn stop(self) {
        for inbox in &self.inboxes {
            inbox.push(|q| q.stopping = true);
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}
