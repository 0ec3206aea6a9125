//! The worker pool is the client limit: the client beyond it is told so and
//! closed at once; a freed slot is reused.

use std::time::Duration;

use crate::support::*;

/// Connects and PINGs, retrying (bounded) while the server answers "max
/// number of clients reached". The retry exists because of a server race:
/// "ready" is logged before the workers have registered as idle, so the
/// first clients after startup can be rejected (see
/// `clients_right_after_ready_are_accepted`); a freed slot also returns to
/// the pool only after the worker notices the close.
fn accepted_client(server: &Server) -> Raw {
    for _ in 0..200 {
        let mut c = server.raw();
        c.send(&resp(&["PING"]));
        let reply = c.read_reply();
        if reply == b"+PONG\r\n" {
            return c;
        }
        assert_eq!(show(&reply), "-ERR max number of clients reached\r\n");
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no client accepted within 10 s");
}

#[test]
fn clients_right_after_ready_are_accepted() {
    for _ in 0..10 {
        let server = Server::with_args(&["--workers", "4"]);
        let mut clients: Vec<Raw> = (0..4).map(|_| server.raw()).collect();
        for c in &mut clients {
            assert_eq!(show(&c.cmd(&["PING"])), "+PONG\r\n");
        }
    }
}

#[test]
fn the_client_beyond_the_worker_count_is_rejected() {
    let server = Server::with_args(&["--workers", "4"]);
    let mut clients: Vec<Raw> = (0..4).map(|_| accepted_client(&server)).collect();
    let mut fifth = server.raw();
    assert_eq!(
        show(&fifth.read_to_eof()),
        "-ERR max number of clients reached\r\n"
    );
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(show(&c.cmd(&["SET", &format!("k{i}"), "v"])), "+OK\r\n");
    }

    // Free one slot: a new client is eventually accepted.
    drop(clients.pop());
    let mut c = accepted_client(&server);
    assert_eq!(show(&c.cmd(&["DBSIZE"])), ":4\r\n");
    for c in &mut clients {
        assert_eq!(show(&c.cmd(&["PING"])), "+PONG\r\n");
    }
}

#[test]
fn rejected_client_that_already_sent_a_command_still_sees_the_error() {
    let server = Server::with_args(&["--workers", "1"]);
    let mut first = accepted_client(&server);
    let mut second = server.raw();
    second.send(&resp(&["SET", "x", "1"]));
    assert_eq!(
        show(&second.read_to_eof()),
        "-ERR max number of clients reached\r\n"
    );
    assert_eq!(show(&first.cmd(&["EXISTS", "x"])), ":0\r\n");
}
