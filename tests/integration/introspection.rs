//! Cases ported from Redis's own `tests/unit/introspection.tcl` (CLIENT
//! LIST/INFO/KILL/SETNAME/SETINFO), `tests/unit/info.tcl` (errorstats,
//! commandstats, latencystats) and `tests/unit/info-command.tcl` (which INFO
//! sections `default`, `all`, `everything` and several names select). Those
//! Tcl suites are tagged `external:skip` or need `DEBUG`/`ACL`/`MONITOR`, so
//! they cannot run against another server as they are; the cases that apply
//! to kvserver are kept here with the same expectations (Tcl glob patterns
//! become `glob`), plus checks that the CLIENT LIST figures Redis's patterns
//! leave as `*` hold kvserver's documented values (docs/protocol.md).

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

/// One CLIENT LIST/INFO line's `name=value` fields.
fn fields(line: &str) -> std::collections::HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A numeric field of a CLIENT LIST/INFO line.
fn number(fields: &std::collections::HashMap<String, String>, name: &str) -> u64 {
    fields
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no numeric {name}= in {fields:?}"))
}

/// The line of the client whose `name=` is `name`, if listed.
fn line_named(list: &str, name: &str) -> Option<String> {
    let wanted = format!("name={name} ");
    list.lines().find(|l| l.contains(&wanted)).map(str::to_string)
}

#[test]
fn client_list_sent_as_redis_cli_sends_it_shows_qbuf_26_and_its_own_arguments() {
    let server = Server::start();
    let mut r = server.raw();
    // Byte for byte what redis-cli sends for `CLIENT LIST`: 26 bytes.
    let request = b"*2\r\n$6\r\nCLIENT\r\n$4\r\nLIST\r\n";
    assert_eq!(request.len(), 26);
    r.send(request);
    let list = text(&r.read_reply());
    assert_glob(
        "id=* addr=*:* laddr=*:* fd=* name=* age=* idle=* flags=N db=* sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=26 qbuf-free=* argv-mem=* multi-mem=0 rbs=* rbp=* obl=0 oll=0 omem=0 tot-mem=* events=r cmd=client|list user=* redir=-1 resp=*",
        &list,
    );
    let f = fields(&list);
    assert_eq!(f["user"], "default");
    assert_eq!(f["resp"], "2");
    // "CLIENT" and "LIST": the running command's argument bytes.
    assert_eq!(number(&f, "argv-mem"), 10);
    // The read buffer holds the command, and tot-mem counts the buffers held.
    assert!(number(&f, "qbuf") + number(&f, "qbuf-free") <= number(&f, "tot-mem"));
    assert!(number(&f, "qbuf-free") > 0, "{list}");
}

#[test]
fn qbuf_counts_commands_run_earlier_from_the_same_read_as_redis_7_does() {
    // Redis 7 reports sdslen(querybuf), which it trims only after the last
    // command of a read: a pipelined PING (14 bytes) is still counted, and
    // its +PONG waits in the reply buffer (obl) while CLIENT INFO runs.
    let server = Server::start();
    let mut r = server.raw();
    r.send(b"*1\r\n$4\r\nPING\r\n*2\r\n$6\r\nCLIENT\r\n$4\r\nINFO\r\n");
    assert_eq!(show(&r.read_reply()), "+PONG\r\n");
    let f = fields(&text(&r.read_reply()));
    assert_eq!(number(&f, "qbuf"), 40);
    assert_eq!(number(&f, "obl"), "+PONG\r\n".len() as u64);
    assert_eq!(number(&f, "omem"), "+PONG\r\n".len() as u64);
    assert_eq!(number(&f, "oll"), 0);
    assert!(number(&f, "rbs") >= 7 && number(&f, "rbp") >= 7, "{f:?}");
    assert_eq!(f["cmd"], "client|info");
}

#[test]
fn another_clients_line_shows_its_partial_command_and_its_queued_transaction() {
    let server = Server::start();
    let mut r = server.raw();
    let mut other = server.raw();
    assert_eq!(show(&other.cmd(&["client", "setname", "other"])), "+OK\r\n");
    assert_eq!(show(&other.cmd(&["select", "2"])), "+OK\r\n");
    assert_eq!(show(&other.cmd(&["watch", "key"])), "+OK\r\n");
    assert_eq!(show(&other.cmd(&["multi"])), "+OK\r\n");
    assert_eq!(show(&other.cmd(&["set", "key", "value"])), "+QUEUED\r\n");
    // Half of a command: it waits in the read buffer.
    let partial = b"*3\r\n$3\r\nSET\r\n$3\r\nkey";
    other.send(partial);
    let mut line = String::new();
    assert!(eventually(Duration::from_secs(10), || {
        line = line_named(&text(&r.cmd(&["client", "list"])), "other").unwrap_or_default();
        line.contains(&format!(" qbuf={} ", partial.len()))
    }));
    let f = fields(&line);
    assert_eq!(f["flags"], "x");
    assert_eq!(f["multi"], "1");
    assert_eq!(f["watch"], "1");
    assert_eq!(f["db"], "2");
    // SET, key, value: 11 bytes plus 16 bytes of bookkeeping per argument.
    assert_eq!(number(&f, "multi-mem"), 11 + 3 * 16);
    assert_eq!(number(&f, "argv-mem"), 0);
    assert_eq!(number(&f, "omem"), 0);
    assert_eq!(f["events"], "r");
    assert!(number(&f, "tot-mem") >= number(&f, "qbuf") + number(&f, "multi-mem"));
}

#[test]
fn a_client_that_stops_reading_shows_its_backlog_in_omem_and_is_no_longer_read() {
    let server = Server::start();
    let mut r = server.raw();
    let value = "v".repeat(1 << 20);
    assert_eq!(show(&r.cmd(&["set", "big", &value])), "+OK\r\n");
    let mut slow = server.raw();
    assert_eq!(show(&slow.cmd(&["client", "setname", "slow"])), "+OK\r\n");
    // 32 MiB of replies that the client never reads: far more than the
    // socket buffers take, so most of it waits in the server.
    let mut pipeline = Vec::new();
    for _ in 0..32 {
        pipeline.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
    }
    slow.send(&pipeline);
    let mut line = String::new();
    assert!(eventually(Duration::from_secs(10), || {
        line = line_named(&text(&r.cmd(&["client", "list"])), "slow").unwrap_or_default();
        line.contains(" events=w ")
    }));
    let f = fields(&line);
    let omem = number(&f, "omem");
    assert!(omem > 0, "{line}");
    assert_eq!(number(&f, "obl"), omem);
    assert_eq!(number(&f, "oll"), 0);
    assert!(number(&f, "rbs") >= omem, "{line}");
    assert!(number(&f, "rbp") >= omem, "{line}");
    assert!(number(&f, "tot-mem") >= number(&f, "rbs"), "{line}");
    assert_eq!(f["cmd"], "get");
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

// INFO section selection, ported from Redis's tests/unit/info-command.tcl
// (plus latencystats from tests/unit/info.tcl).

fn info(r: &mut Raw, sections: &[&str]) -> String {
    let mut args = vec!["INFO"];
    args.extend_from_slice(sections);
    text(&r.cmd(&args))
}

#[test]
fn info_with_at_most_one_section_argument_shows_commandstats_only_for_all_and_everything() {
    let server = Server::start();
    let mut r = server.raw();
    assert_eq!(show(&r.cmd(&["PING"])), "+PONG\r\n");
    for arg in ["", "all", "default", "everything"] {
        let info = if arg.is_empty() {
            info(&mut r, &[])
        } else {
            info(&mut r, &[arg])
        };
        assert_glob("*redis_version*", &info);
        assert_glob("*used_cpu_user*", &info);
        assert!(!info.contains("sentinel_tilt"), "INFO {arg}");
        assert_glob("*used_memory*", &info);
        let every = arg == "all" || arg == "everything";
        assert_eq!(info.contains("rejected_calls"), every, "INFO {arg}");
        assert_eq!(info.contains("# Commandstats"), every, "INFO {arg}");
        assert_eq!(info.contains("# Latencystats"), every, "INFO {arg}");
        assert_eq!(
            info.contains("latency_percentiles_usec_ping:"),
            every,
            "INFO {arg}"
        );
        // Redis 7.0-7.2 list errorstats among the default sections.
        assert!(info.contains("# Errorstats"), "INFO {arg}");
    }
}

#[test]
fn info_with_one_section_shows_only_that_section_whatever_its_case() {
    let server = Server::start();
    let mut r = server.raw();
    assert_eq!(show(&r.cmd(&["PING"])), "+PONG\r\n");
    let cpu = info(&mut r, &["cpu"]);
    assert_glob("*used_cpu_user*", &cpu);
    assert!(!cpu.contains("sentinel_tilt") && !cpu.contains("used_memory"));
    let sentinel = info(&mut r, &["sentinel"]);
    assert!(!sentinel.contains("sentinel_tilt") && !sentinel.contains("used_memory"));
    let commandstats = info(&mut r, &["commandSTATS"]);
    assert!(!commandstats.contains("used_memory"));
    assert_glob("*rejected_calls*", &commandstats);
    let upper = info(&mut r, &["CPU"]);
    assert!(upper.starts_with("# CPU\r\n") && upper.contains("used_cpu_user:"));
    assert!(!upper.contains("used_memory"));
}

#[test]
fn info_with_several_sections_shows_each_once_in_one_reply() {
    let server = Server::start();
    let mut r = server.raw();
    assert_eq!(show(&r.cmd(&["PING"])), "+PONG\r\n");
    let cpu_sentinel = info(&mut r, &["cpu", "sentinel"]);
    assert_glob("*used_cpu_user*", &cpu_sentinel);
    assert!(!cpu_sentinel.contains("sentinel_tilt"));
    assert!(!cpu_sentinel.contains("master_repl_offset"));

    let cpu_all = info(&mut r, &["cpu", "all"]);
    for wanted in [
        "used_cpu_user",
        "used_memory",
        "master_repl_offset",
        "rejected_calls",
    ] {
        assert!(cpu_all.contains(wanted), "INFO cpu all lacks {wanted}");
    }
    assert!(!cpu_all.contains("sentinel_tilt"));
    assert_eq!(cpu_all.matches("used_cpu_user:").count(), 1, "{cpu_all}");

    let cpu_default = info(&mut r, &["cpu", "default"]);
    for wanted in ["used_cpu_user", "used_memory", "master_repl_offset"] {
        assert!(cpu_default.contains(wanted), "INFO cpu default lacks {wanted}");
    }
    assert!(!cpu_default.contains("rejected_calls"));
    assert!(!cpu_default.contains("sentinel_tilt"));
    assert_eq!(cpu_default.matches("used_cpu_user:").count(), 1, "{cpu_default}");

    // Sections come in Redis's order, whatever the order asked.
    let two = info(&mut r, &["keyspace", "Server", "server"]);
    assert!(two.starts_with("# Server\r\n"), "{two}");
    assert_eq!(two.matches("# Server").count(), 1);
    assert!(two.contains("# Keyspace"));
    assert!(!two.contains("# CPU"));
}

#[test]
fn info_with_only_unknown_sections_is_empty() {
    let server = Server::start();
    let mut r = server.raw();
    assert_eq!(show(&r.cmd(&["INFO", "nosuchsection"])), "$0\r\n\r\n");
    assert_eq!(info(&mut r, &["nosuchsection", "sentinel"]), "");
}

#[test]
fn latencystats_give_p50_p99_and_p99_9_per_command_as_redis() {
    // tests/unit/info.tcl: "latencystats: measure latency".
    let server = Server::start();
    let mut r = server.raw();
    assert_eq!(show(&r.cmd(&["SET", "foo", "bar"])), "+OK\r\n");
    assert_eq!(show(&r.cmd(&["GET", "foo"])), "$3\r\nbar\r\n");
    for cmd in ["set", "get"] {
        let value = info_field(&mut r, "latencystats", &format!("latency_percentiles_usec_{cmd}"))
            .unwrap_or_default();
        assert_glob("p50=*,p99=*,p99.9=*", &value);
        let numbers: Vec<f64> = value
            .split(',')
            .filter_map(|p| p.split_once('=')?.1.parse().ok())
            .collect();
        assert_eq!(numbers.len(), 3, "{value}");
        assert!(
            numbers[0] > 0.0 && numbers[0] <= numbers[1] && numbers[1] <= numbers[2],
            "{value}"
        );
    }
    assert_eq!(
        info_field(&mut r, "latencystats", "latency_percentiles_usec_del"),
        None
    );
}
