//! RESET against the real server, after Redis's tests/unit/other.tcl and
//! introspection.tcl cases (`needs:reset`): the connection goes back to the
//! state it had on connect, in RESP2 and RESP3, inside MULTI, with WATCH and
//! with `requirepass`.

use crate::support::*;

fn ok(c: &mut Raw, args: &[&str]) {
    assert_eq!(show(&c.cmd(args)), "+OK\r\n", "{args:?}");
}

fn reset(c: &mut Raw) {
    assert_eq!(show(&c.cmd(&["RESET"])), "+RESET\r\n");
}

fn client_info(c: &mut Raw) -> String {
    show(&c.cmd(&["CLIENT", "INFO"]))
}

#[test]
fn reset_clears_the_name_but_not_the_library_name() {
    // other.tcl "RESET clears client state", introspection.tcl "RESET does
    // NOT clean library name".
    let server = Server::start();
    let mut c = server.raw();
    ok(&mut c, &["CLIENT", "SETNAME", "test-client"]);
    ok(&mut c, &["CLIENT", "SETINFO", "lib-name", "redis.py"]);
    ok(&mut c, &["CLIENT", "SETINFO", "lib-ver", "1.2.3"]);
    reset(&mut c);
    let info = client_info(&mut c);
    assert!(info.contains(" name= "), "{info}");
    assert!(info.contains("lib-name=redis.py lib-ver=1.2.3"), "{info}");
    assert!(info.contains(" flags=N "), "{info}");
    assert_eq!(show(&c.cmd(&["CLIENT", "GETNAME"])), "$-1\r\n");
    // Other clients see the name gone too.
    let mut other = server.raw();
    let list = show(&other.cmd(&["CLIENT", "LIST"]));
    assert!(!list.contains("name=test-client"), "{list}");
}

#[test]
fn reset_inside_multi_runs_at_once_and_discards_the_transaction() {
    // other.tcl "RESET clears and discards MULTI state".
    let server = Server::start();
    let mut c = server.raw();
    ok(&mut c, &["MULTI"]);
    assert_eq!(show(&c.cmd(&["SET", "key-a", "a"])), "+QUEUED\r\n");
    reset(&mut c);
    assert_eq!(show(&c.cmd(&["EXEC"])), "-ERR EXEC without MULTI\r\n");
    assert_eq!(show(&c.cmd(&["GET", "key-a"])), "$-1\r\n");
    // A transaction doomed by a queuing error is discarded as well.
    ok(&mut c, &["MULTI"]);
    assert!(show(&c.cmd(&["NOSUCHCOMMAND"])).starts_with("-ERR unknown command"));
    reset(&mut c);
    ok(&mut c, &["MULTI"]);
    assert_eq!(show(&c.cmd(&["PING"])), "+QUEUED\r\n");
    assert_eq!(show(&c.cmd(&["EXEC"])), "*1\r\n+PONG\r\n");
}

#[test]
fn reset_forgets_every_watched_key_inside_and_outside_multi() {
    let server = Server::start();
    let mut c = server.raw();
    let mut other = server.raw();
    for in_multi in [false, true] {
        ok(&mut c, &["WATCH", "x", "y"]);
        assert!(client_info(&mut c).contains(" watch=2 "));
        if in_multi {
            ok(&mut c, &["MULTI"]);
        }
        reset(&mut c);
        assert!(client_info(&mut c).contains(" watch=0 "), "in_multi={in_multi}");
        ok(&mut other, &["SET", "x", "changed"]);
        ok(&mut c, &["MULTI"]);
        assert_eq!(show(&c.cmd(&["PING"])), "+QUEUED\r\n");
        assert_eq!(show(&c.cmd(&["EXEC"])), "*1\r\n+PONG\r\n", "in_multi={in_multi}");
    }
}

#[test]
fn reset_selects_database_zero() {
    let server = Server::start();
    let mut c = server.raw();
    ok(&mut c, &["SELECT", "3"]);
    ok(&mut c, &["SET", "k", "in-3"]);
    reset(&mut c);
    assert_eq!(show(&c.cmd(&["GET", "k"])), "$-1\r\n");
    assert!(client_info(&mut c).contains(" db=0 "));
}

#[test]
fn reset_turns_client_reply_back_on() {
    let server = Server::start();
    let mut c = server.raw();
    c.send(&resp(&["CLIENT", "REPLY", "OFF"]));
    c.send(&resp(&["SET", "silent", "1"]));
    // The RESET reply is the first thing this connection hears.
    reset(&mut c);
    assert_eq!(show(&c.cmd(&["GET", "silent"])), "$1\r\n1\r\n");
    // A pending CLIENT REPLY SKIP still swallows RESET's own reply (checked
    // against redis-server 7.0): it covers the running command.
    c.send(&resp(&["CLIENT", "REPLY", "SKIP"]));
    c.send(&resp(&["RESET"]));
    assert_eq!(show(&c.cmd(&["PING"])), "+PONG\r\n");
}

#[test]
fn reset_switches_a_resp3_connection_back_to_resp2() {
    let server = Server::start();
    let mut c = server.raw();
    assert!(c.cmd(&["HELLO", "3"]).starts_with(b"%7\r\n"));
    assert_eq!(show(&c.cmd(&["HSET", "h", "f", "v"])), ":1\r\n");
    assert_eq!(show(&c.cmd(&["HGETALL", "h"])), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    // Answered as a simple string in RESP3 too, as Redis does.
    reset(&mut c);
    assert_eq!(show(&c.cmd(&["HGETALL", "h"])), "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    assert_eq!(show(&c.cmd(&["GET", "missing"])), "$-1\r\n");
    assert!(client_info(&mut c).contains(" resp=2 "));
}

#[test]
fn reset_without_requirepass_keeps_the_connection_usable() {
    let server = Server::start();
    let mut c = server.raw();
    reset(&mut c);
    ok(&mut c, &["SET", "k", "v"]);
    assert_eq!(show(&c.cmd(&["GET", "k"])), "$1\r\nv\r\n");
}

#[test]
fn reset_with_requirepass_logs_the_connection_out() {
    // other.tcl "RESET clears authenticated state" (the default user is the
    // only one here, so "not authenticated" is what it comes back to).
    let server = Server::with_args(&["--requirepass", "secret"]);
    let mut c = server.raw();
    // Allowed before AUTH, and changes nothing there.
    reset(&mut c);
    assert_eq!(
        show(&c.cmd(&["GET", "k"])),
        "-NOAUTH Authentication required.\r\n"
    );
    ok(&mut c, &["AUTH", "secret"]);
    ok(&mut c, &["SET", "k", "v"]);
    reset(&mut c);
    assert_eq!(
        show(&c.cmd(&["GET", "k"])),
        "-NOAUTH Authentication required.\r\n"
    );
    // HELLO 3 AUTH switched protocol and authenticated: RESET undoes both.
    assert!(c
        .cmd(&["HELLO", "3", "AUTH", "default", "secret"])
        .starts_with(b"%7\r\n"));
    assert_eq!(show(&c.cmd(&["GET", "nope"])), "_\r\n");
    reset(&mut c);
    assert_eq!(
        show(&c.cmd(&["GET", "k"])),
        "-NOAUTH Authentication required.\r\n"
    );
    ok(&mut c, &["AUTH", "default", "secret"]);
    assert_eq!(show(&c.cmd(&["GET", "nope"])), "$-1\r\n");
}

#[test]
fn after_reset_the_pre_authentication_limits_apply_again() {
    let server = Server::with_args(&["--requirepass", "secret"]);
    let mut c = server.raw();
    ok(&mut c, &["AUTH", "secret"]);
    // Pipelined in one write: what follows RESET is framed unauthenticated.
    let mut batch = resp(&["RESET"]);
    batch.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000\r\n");
    c.send(&batch);
    c.expect(b"+RESET\r\n-ERR Protocol error: unauthenticated bulk length\r\n");
    assert!(c.is_closed());
}

#[test]
fn command_info_and_docs_list_reset() {
    let server = Server::start();
    let mut c = server.raw();
    let info = show(&c.cmd(&["COMMAND", "INFO", "reset"]));
    assert!(info.starts_with("*1\r\n*6\r\n$5\r\nreset\r\n:1\r\n"), "{info}");
    assert!(info.contains("+no_auth\r\n"), "{info}");
    let docs = show(&c.cmd(&["COMMAND", "DOCS", "RESET"]));
    assert!(docs.contains("$5\r\ngroup\r\n$10\r\nconnection\r\n"), "{docs}");
    assert_eq!(
        show(&c.cmd(&["RESET", "extra"])),
        "-ERR wrong number of arguments for 'reset' command\r\n"
    );
}
