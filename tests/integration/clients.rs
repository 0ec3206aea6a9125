//! CLIENT LIST / INFO / KILL / REPLY and the INFO sections that need the
//! client registry and per-command statistics.

use std::time::Duration;

use crate::support::*;

fn bulk_text(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(reply).into_owned();
    let body = text.split_once("\r\n").map_or("", |(_, b)| b);
    body.strip_suffix("\r\n").unwrap_or(body).to_string()
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
}

#[test]
fn client_list_shows_every_connection_with_redis_fields() {
    let server = Server::start();
    let mut a = server.raw();
    let mut b = server.raw();
    assert_eq!(show(&a.cmd(&["CLIENT", "SETNAME", "alpha"])), "+OK\r\n");
    assert_eq!(show(&b.cmd(&["CLIENT", "SETNAME", "beta"])), "+OK\r\n");
    assert_eq!(show(&b.cmd(&["GET", "x"])), "$-1\r\n");
    let list = bulk_text(&a.cmd(&["CLIENT", "LIST"]));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert_eq!(field(lines[0], "name"), "alpha");
    assert_eq!(field(lines[0], "cmd"), "client|list");
    assert_eq!(field(lines[1], "name"), "beta");
    assert_eq!(field(lines[1], "cmd"), "get");
    for name in [
        "id", "addr", "laddr", "fd", "age", "idle", "flags", "db", "multi", "omem", "resp", "user",
    ] {
        field(lines[0], name);
    }
    assert!(lines[0].starts_with("id="), "{}", lines[0]);
    let info = bulk_text(&a.cmd(&["CLIENT", "INFO"]));
    assert_eq!(field(&info, "name"), "alpha");
    assert_eq!(field(&info, "id"), field(lines[0], "id"));
    let b_id = field(lines[1], "id").to_string();
    let only_b = bulk_text(&a.cmd(&["CLIENT", "LIST", "ID", &b_id]));
    assert_eq!(only_b.lines().count(), 1);
    assert_eq!(bulk_text(&a.cmd(&["CLIENT", "LIST", "TYPE", "pubsub"])), "");
    assert_eq!(
        show(&a.cmd(&["CLIENT", "LIST", "TYPE", "bogus"])),
        "-ERR Unknown client type 'bogus'\r\n"
    );
}

#[test]
fn client_kill_by_id_and_by_address_closes_the_connection() {
    let server = Server::start();
    let mut killer = server.raw();
    let mut victim = server.raw();
    let id = String::from_utf8_lossy(&victim.cmd(&["CLIENT", "ID"]))
        .trim_start_matches(':')
        .trim()
        .to_string();
    assert_eq!(show(&killer.cmd(&["CLIENT", "KILL", "ID", &id])), ":1\r\n");
    assert!(victim.is_closed(), "the killed client is still connected");
    assert_eq!(show(&killer.cmd(&["CLIENT", "KILL", "ID", &id])), ":0\r\n");

    let mut second = server.raw();
    let info = bulk_text(&second.cmd(&["CLIENT", "INFO"]));
    let addr = field(&info, "addr").to_string();
    assert_eq!(show(&killer.cmd(&["CLIENT", "KILL", &addr])), "+OK\r\n");
    assert!(second.is_closed());
    assert_eq!(
        show(&killer.cmd(&["CLIENT", "KILL", &addr])),
        "-ERR No such client\r\n"
    );
    // The registry forgets closed clients.
    assert!(eventually(Duration::from_secs(10), || {
        bulk_text(&killer.cmd(&["CLIENT", "LIST"])).lines().count() == 1
    }));
}

#[test]
fn client_kill_skips_the_caller_unless_skipme_no() {
    let server = Server::start();
    let mut me = server.raw();
    let info = bulk_text(&me.cmd(&["CLIENT", "INFO"]));
    let addr = field(&info, "addr").to_string();
    assert_eq!(show(&me.cmd(&["CLIENT", "KILL", "ADDR", &addr])), ":0\r\n");
    assert_eq!(
        show(&me.cmd(&["CLIENT", "KILL", "ADDR", &addr, "SKIPME", "no"])),
        ":1\r\n"
    );
    assert!(me.is_closed());
    let mut other = server.raw();
    assert_eq!(
        show(&other.cmd(&["CLIENT", "KILL", "ID", "0"])),
        "-ERR client-id should be greater than 0\r\n"
    );
    assert_eq!(
        show(&other.cmd(&["CLIENT", "KILL", "SKIPME", "maybe"])),
        "-ERR syntax error\r\n"
    );
}

#[test]
fn client_reply_off_skip_and_on() {
    let server = Server::start();
    let mut c = server.raw();
    c.send(&resp(&["CLIENT", "REPLY", "OFF"]));
    c.send(&resp(&["SET", "a", "1"]));
    c.send(&resp(&["GET", "a"]));
    c.send(&resp(&["NOSUCHCOMMAND"]));
    assert_eq!(show(&c.cmd(&["CLIENT", "REPLY", "ON"])), "+OK\r\n");
    c.send(&resp(&["CLIENT", "REPLY", "SKIP"]));
    c.send(&resp(&["INCR", "a"]));
    assert_eq!(show(&c.cmd(&["GET", "a"])), "$1\r\n2\r\n");
    assert_eq!(
        show(&c.cmd(&["CLIENT", "REPLY", "MAYBE"])),
        "-ERR syntax error\r\n"
    );
    assert_eq!(show(&c.cmd(&["CLIENT", "NO-EVICT", "on"])), "+OK\r\n");
}

#[test]
fn info_has_commandstats_errorstats_clients_and_replication() {
    let server = Server::with_args(&["--maxclients", "123"]);
    let mut c = server.raw();
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["GET", "a"]);
    c.cmd(&["GET"]);
    c.cmd(&["INCR", "nope", "extra"]);
    c.cmd(&["SET", "s", "x"]);
    c.cmd(&["INCR", "s"]);
    c.cmd(&["BOGUS"]);
    let info = bulk_text(&c.cmd(&["INFO", "commandstats"]));
    let get = info.lines().find(|l| l.starts_with("cmdstat_get:")).expect(&info);
    assert!(
        get.contains("calls=1,") && get.contains("rejected_calls=1,failed_calls=0"),
        "{get}"
    );
    let incr = info
        .lines()
        .find(|l| l.starts_with("cmdstat_incr:"))
        .expect(&info);
    assert!(
        incr.contains("calls=1,") && incr.contains("rejected_calls=1,failed_calls=1"),
        "{incr}"
    );
    assert!(get.contains("usec=") && get.contains("usec_per_call="), "{get}");
    let info = bulk_text(&c.cmd(&["INFO"]));
    assert!(info.contains("errorstat_ERR:count=4\r\n"), "{info}");
    assert!(info.contains("total_error_replies:4\r\n"), "{info}");
    assert!(info.contains("connected_clients:1\r\n"), "{info}");
    assert!(info.contains("maxclients:123\r\n"), "{info}");
    assert!(info.contains("blocked_clients:0\r\n"), "{info}");
    assert!(info.contains("role:master\r\n"), "{info}");
    assert!(info.contains("master_repl_offset:"), "{info}");
    assert!(info.contains("multiplexing_api:epoll\r\n"), "{info}");
}
