//! The worker pool is the client limit: the client beyond it is told so and
//! closed at once; a freed slot is reused.

use std::time::Duration;

use crate::support::*;

#[test]
fn the_client_beyond_the_worker_count_is_rejected() {
    let server = Server::with_args(&["--workers", "4"]);
    let mut clients: Vec<Raw> = (0..4).map(|_| server.raw()).collect();
    for c in &mut clients {
        assert_eq!(show(&c.cmd(&["PING"])), "+PONG\r\n");
    }
    let mut fifth = server.raw();
    assert_eq!(
        show(&fifth.read_to_eof()),
        "-ERR max number of clients reached\r\n"
    );
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(show(&c.cmd(&["SET", &format!("k{i}"), "v"])), "+OK\r\n");
    }

    // Free one slot: a new client is eventually accepted (the worker
    // notices the close asynchronously, so retry a bounded number of times).
    drop(clients.pop());
    let mut accepted = None;
    for _ in 0..100 {
        let mut c = server.raw();
        c.send(&resp(&["PING"]));
        let reply = c.read_reply();
        if reply == b"+PONG\r\n" {
            accepted = Some(c);
            break;
        }
        assert_eq!(show(&reply), "-ERR max number of clients reached\r\n");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut c = accepted.expect("no client accepted after a slot was freed");
    assert_eq!(show(&c.cmd(&["DBSIZE"])), ":4\r\n");
    for c in &mut clients {
        assert_eq!(show(&c.cmd(&["PING"])), "+PONG\r\n");
    }
}

#[test]
fn rejected_client_that_already_sent_a_command_still_sees_the_error() {
    let server = Server::with_args(&["--workers", "1"]);
    let mut first = server.raw();
    assert_eq!(show(&first.cmd(&["PING"])), "+PONG\r\n");
    let mut second = server.raw();
    second.send(&resp(&["SET", "x", "1"]));
    assert_eq!(
        show(&second.read_to_eof()),
        "-ERR max number of clients reached\r\n"
    );
    assert_eq!(show(&first.cmd(&["EXISTS", "x"])), ":0\r\n");
}
