//! The fixed worker pool: a `parking_lot::Mutex<VecDeque<TcpStream>>` plus a
//! `Condvar`, written out rather than borrowed from an executor crate.
//!
//! A worker owns one client for as long as it stays connected, so the pool
//! size is the client limit. [`ThreadPool::try_submit`] therefore never
//! queues behind busy workers: it hands the socket over only if a worker is
//! idle (idle workers outnumber queued sockets) and otherwise gives it back,
//! so the accept loop can answer `-ERR max number of clients reached` at
//! once instead of letting the client hang.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

/// What a worker does with a socket: `(worker index, socket)`.
pub type Handler = Arc<dyn Fn(usize, TcpStream) + Send + Sync>;

struct Queue {
    sockets: VecDeque<TcpStream>,
    idle: usize,
    stopping: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    available: Condvar,
}

/// N threads serving sockets handed over by the accept loop.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl ThreadPool {
    /// Starts `size` workers with `stack_size`-byte stacks running `handler`.
    pub fn new(size: usize, stack_size: usize, handler: Handler) -> std::io::Result<ThreadPool> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                sockets: VecDeque::with_capacity(size),
                // Every worker counts as idle from the start, so a client that
                // connects right after "ready" is never refused while threads
                // are still starting up (they will pick the socket up).
                idle: size,
                stopping: false,
            }),
            available: Condvar::new(),
        });
        let mut workers = Vec::with_capacity(size);
        for index in 0..size {
            let shared = Arc::clone(&shared);
            let handler = Arc::clone(&handler);
            let worker = std::thread::Builder::new()
                .name(format!("kv-worker-{index}"))
                .stack_size(stack_size)
                .spawn(move || worker_loop(index, &shared, &*handler))?;
            workers.push(worker);
        }
        Ok(ThreadPool { shared, workers })
    }

    /// Hands `socket` to an idle worker, or returns it if all are busy.
    pub fn try_submit(&self, socket: TcpStream) -> Result<(), TcpStream> {
        let mut queue = self.shared.queue.lock();
        if queue.stopping || queue.idle <= queue.sockets.len() {
            return Err(socket);
        }
        queue.sockets.push_back(socket);
        drop(queue);
        self.shared.available.notify_one();
        Ok(())
    }

    /// Stops idle workers and waits for busy ones to finish their client.
    pub fn join(self) {
        self.shared.queue.lock().stopping = true;
        self.shared.available.notify_all();
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

fn worker_loop(index: usize, shared: &Shared, handler: &(dyn Fn(usize, TcpStream) + Send + Sync)) {
    let mut served_one = false;
    loop {
        let socket = {
            let mut queue = shared.queue.lock();
            if served_one {
                queue.idle += 1;
            }
            served_one = true;
            loop {
                if let Some(socket) = queue.sockets.pop_front() {
                    queue.idle -= 1;
                    break socket;
                }
                if queue.stopping {
                    queue.idle -= 1;
                    return;
                }
                shared.available.wait(&mut queue);
            }
        };
        handler(index, socket);
    }
}
