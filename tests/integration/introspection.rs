//! Cases ported from Redis's own `tests/unit/introspection.tcl` (CLIENT
//! LIST/INFO/KILL/SETNAME/SETINFO) and `tests/unit/info.tcl` (errorstats,
//! commandstats). Those Tcl suites are tagged `external:skip` or need
//! `DEBUG`/`ACL`/`MONITOR`, so they cannot run against another server as they
//! are; the cases that apply to kvserver are kept here with the same
//! expectations (Tcl glob patterns become `glob_match`).

use std::time::Duration;

use crate::support::*;

/// The text of a bulk (or verbatim) reply.
fn text(reply: &[u8]) -> String {
    let s = String::from_utf8_lossy(reply).into_owned();
    let body = s.split_once("\r\n").map_or("", |(_, b)| b);
    body.strip_suffix("\r\n").unwrap_or(body).to_string()
}

/// Tcl's `string match`: `*` any run, `?` one character.
fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn assert_glob(pattern: &str, s: &str) {
    assert!(glob(pattern, s.trim_end()), "{s:?} does not match {pattern:?}");
}

fn assert_error(pattern: &str, reply: &[u8]) {
    let s = String::from_utf8_lossy(reply);
    assert!(
        s.starts_with('-') && glob(pattern, s[1..].trim_end()),
        "{s:?} is not an error matching {pattern:?}"
    );
}

#[test]
fn client_list_and_info_have_redis_7_fields() {
    let server = Server::start();
    let mut r = server.raw();
    assert_glob(
        "id=* addr=*:* laddr=*:* fd=* name=* age=* idle=* flags=N db=* sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=26 qbuf-free=* argv-mem=* multi-mem=0 rbs=* rbp=* obl=0 oll=0 omem=0 tot-mem=* events=r cmd=client|list user=* redir=-1 resp=*",
        &text(&r.cmd(&["client", "list"])),
    );
    assert_glob(
        "id=* addr=*:* laddr=*:* fd=* name=* age=* idle=* flags=N db=* sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=26 qbuf-free=* argv-mem=* multi-mem=0 rbs=* rbp=* obl=0 oll=0 omem=0 tot-mem=* events=r cmd=client|info user=* redir=-1 resp=*",
        &text(&r.cmd(&["client", "info"])),
    );
    let id = String::from_utf8_lossy(&r.cmd(&["client", "id"]))
        .trim_start_matches(':')
        .trim()
        .to_string();
    let list = text(&r.cmd(&["client", "list", "id", &id]));
    assert_glob(
        &format!("id={id} * cmd=client|list *"),
        list.lines().next().unwrap(),
    );
}

#[test]
fn client_kill_with_illegal_arguments() {
    let server = Server::start();
    let mut r = server.raw();
    assert_error(
        "ERR wrong number of arguments for 'client|kill' command",
        &r.cmd(&["client", "kill"]),
    );
    assert_error(
        "ERR syntax error*",
        &r.cmd(&["client", "kill", "id", "10", "wrong_arg"]),
    );
    assert_error("ERR *greater than 0*", &r.cmd(&["client", "kill", "id", "str"]));
    assert_error("ERR *greater than 0*", &r.cmd(&["client", "kill", "id", "-1"]));
    assert_error("ERR *greater than 0*", &r.cmd(&["client", "kill", "id", "0"]));
    assert_error(
        "ERR Unknown client type*",
        &r.cmd(&["client", "kill", "type", "wrong_type"]),
    );
    assert_error(
        "ERR No such user*",
        &r.cmd(&["client", "kill", "user", "wrong_user"]),
    );
    assert_error(
        "ERR syntax error*",
        &r.cmd(&["client", "kill", "skipme", "yes_or_no"]),
    );
    assert_error(
        "ERR *not an integer or out of range*",
        &r.cmd(&["client", "kill", "maxage", "str"]),
    );
    assert_error(
        "ERR *not an integer or out of range*",
        &r.cmd(&["client", "kill", "maxage", "9999999999999999999"]),
    );
    assert_error(
        "ERR *greater than 0*",
        &r.cmd(&["client", "kill", "maxage", "-1"]),
    );
}

#[test]
fn client_kill_skipme_yes_and_no_kill_all_clients() {
    let server = Server::start();
    let mut r = server.raw();
    let mut others: Vec<Raw> = (0..2).map(|_| server.raw()).collect();
    for o in &mut others {
        assert_eq!(show(&o.cmd(&["PING"])), "+PONG\r\n");
    }
    assert_eq!(show(&r.cmd(&["client", "kill", "skipme", "yes"])), ":2\r\n");
    for o in &mut others {
        assert!(o.is_closed());
    }
    // Wait until the killed clients are gone, then kill everyone including me.
    assert!(eventually(Duration::from_secs(10), || {
        text(&r.cmd(&["client", "list"])).lines().count() == 1
    }));
    let mut more: Vec<Raw> = (0..2).map(|_| server.raw()).collect();
    for o in &mut more {
        assert_eq!(show(&o.cmd(&["PING"])), "+PONG\r\n");
    }
    assert_eq!(show(&r.cmd(&["client", "kill", "skipme", "no"])), ":3\r\n");
    assert!(r.is_closed());
    for o in &mut more {
        assert!(o.is_closed());
    }
}

#[test]
fn client_command_unhappy_paths() {
    let server = Server::start();
    let mut r = server.raw();
    assert_error("ERR*syntax*", &r.cmd(&["client", "no-evict", "wrongInput"]));
    assert_error("ERR*syntax*", &r.cmd(&["client", "reply", "wrongInput"]));
    assert_error(
        "ERR*wrong number of arguments*",
        &r.cmd(&["client", "setinfo", "lib-name"]),
    );
}

#[test]
fn client_setname_getname_and_list() {
    let server = Server::start();
    let mut r = server.raw();
    assert_eq!(show(&r.cmd(&["client", "getname"])), "$-1\r\n");
    assert_eq!(show(&r.cmd(&["client", "setname", "testName"])), "+OK\r\n");
    assert_eq!(text(&r.cmd(&["client", "getName"])), "testName");
    assert_eq!(show(&r.cmd(&["client", "setname", ""])), "+OK\r\n");
    assert_glob("*name= *", &text(&r.cmd(&["client", "list"])));
    assert_error("ERR*", &r.cmd(&["client", "setname", "foo bar"]));
    assert_eq!(show(&r.cmd(&["client", "setname", "myname"])), "+OK\r\n");
    assert_glob("*name=myname*", &text(&r.cmd(&["client", "list"])));
    assert_eq!(show(&r.cmd(&["client", "setname", "someothername"])), "+OK\r\n");
    assert_glob("*name=someothername*", &text(&r.cmd(&["client", "list"])));

    // After CLIENT SETNAME, the connection can still be closed, and leaves the list.
    let mut rd = server.raw();
    assert_eq!(show(&rd.cmd(&["client", "setname", "foobar"])), "+OK\r\n");
    assert_glob("*foobar*", &text(&r.cmd(&["client", "list"])));
    drop(rd);
    assert!(eventually(Duration::from_secs(10), || {
        !text(&r.cmd(&["client", "list"])).contains("foobar")
    }));
}

#[test]
fn client_setinfo_sets_and_clears_the_library_name() {
    let server = Server::start();
    let mut r = server.raw();
    assert_eq!(
        show(&r.cmd(&["CLIENT", "SETINFO", "lib-name", "redis.py"])),
        "+OK\r\n"
    );
    assert_eq!(
        show(&r.cmd(&["CLIENT", "SETINFO", "lib-ver", "1.2.3"])),
        "+OK\r\n"
    );
    assert_glob(
        "*lib-name=redis.py lib-ver=1.2.3*",
        &text(&r.cmd(&["client", "info"])),
    );
    assert_error(
        "*cannot contain spaces*",
        &r.cmd(&["CLIENT", "SETINFO", "lib-name", "redis py"]),
    );
    assert_error(
        "*newlines*",
        &r.cmd(&["CLIENT", "SETINFO", "lib-name", "redis.py\n"]),
    );
    assert_error(
        "*Unrecognized*",
        &r.cmd(&["CLIENT", "SETINFO", "badger", "hamster"]),
    );
    assert_glob(
        "*lib-name=redis.py lib-ver=1.2.3*",
        &text(&r.cmd(&["client", "info"])),
    );
    assert_eq!(show(&r.cmd(&["CLIENT", "SETINFO", "lib-name", ""])), "+OK\r\n");
    assert_glob("*lib-name= *", &text(&r.cmd(&["client", "info"])));
}

fn info_field(r: &mut Raw, section: &str, name: &str) -> Option<String> {
    let info = text(&r.cmd(&["INFO", section]));
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_string))
}

#[test]
fn errorstats_count_rejected_calls_as_redis_does() {
    // tests/unit/info.tcl: "errorstats: rejected call unknown command" and
    // "errorstats: rejected call due to wrong arity".
    let server = Server::start();
    let mut r = server.raw();
    assert_error("ERR unknown command*", &r.cmd(&["asdf"]));
    assert_glob(
        "count=1",
        &info_field(&mut r, "errorstats", "errorstat_ERR").unwrap(),
    );
    assert_error(
        "ERR wrong number of arguments for 'set' command",
        &r.cmd(&["set", "k"]),
    );
    assert_glob(
        "count=2",
        &info_field(&mut r, "errorstats", "errorstat_ERR").unwrap(),
    );
    assert_glob(
        "*calls=0,*,rejected_calls=1,failed_calls=0",
        &info_field(&mut r, "commandstats", "cmdstat_set").unwrap(),
    );
    // A failed call (the handler's error) is failed_calls, not rejected_calls.
    assert_eq!(show(&r.cmd(&["set", "s", "x"])), "+OK\r\n");
    assert_error("ERR value is not an integer*", &r.cmd(&["incr", "s"]));
    assert_glob(
        "*calls=1,*,rejected_calls=0,failed_calls=1",
        &info_field(&mut r, "commandstats", "cmdstat_incr").unwrap(),
    );
    assert_eq!(
        info_field(&mut r, "stats", "total_error_replies").as_deref(),
        Some("3")
    );
}
