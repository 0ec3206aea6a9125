//! MONITOR: every command from every worker in Redis's format, secrets
//! redacted, and RESET/QUIT leaving monitor mode; redis-cli MONITOR.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// Arguments appear as the client sent them (Redis shows `argv` as is).
/// The line of a `+<ts> [db addr] "args"` status, without `+`, ts and CRLF.
fn monitored(c: &mut Raw) -> String {
    let line = show(&c.read_line());
    assert!(line.starts_with('+'), "{line}");
    let (ts, rest) = line[1..].split_once(' ').expect("timestamp");
    let (secs, micros) = ts.split_once('.').expect("seconds.micros");
    assert!(secs.parse::<u64>().is_ok() && micros.len() == 6, "{line}");
    rest.trim_end().to_string()
}

#[test]
fn monitor_shows_commands_of_every_worker_with_secrets_redacted() {
    let server = Server::with_args(&["--workers", "4"]);
    let mut mon = server.raw();
    assert_eq!(mon.cmd(&["MONITOR"]), b"+OK\r\n");
    let clients: Vec<Raw> = (0..4).map(|_| server.raw()).collect();
    for (i, mut c) in clients.into_iter().enumerate() {
        let addr = c.stream.local_addr().unwrap().to_string();
        c.cmd(&["SET", &format!("k{i}"), "v \"q\"\n"]);
        assert_eq!(
            monitored(&mut mon),
            format!("[0 {addr}] \"SET\" \"k{i}\" \"v \\\"q\\\"\\n\"")
        );
        c.cmd(&["AUTH", "user", "secret"]);
        assert_eq!(
            monitored(&mut mon),
            format!("[0 {addr}] \"AUTH\" \"(redacted)\" \"(redacted)\"")
        );
        c.cmd(&["HELLO", "2", "AUTH", "default", "pw"]);
        assert_eq!(
            monitored(&mut mon),
            format!("[0 {addr}] \"HELLO\" \"2\" \"AUTH\" \"(redacted)\" \"(redacted)\"")
        );
        c.cmd(&["SELECT", "3"]);
        assert_eq!(monitored(&mut mon), format!("[3 {addr}] \"SELECT\" \"3\""));
    }
    let info = show(&server.raw().cmd(&["CLIENT", "LIST"]));
    assert!(info.lines().any(|l| l.contains("flags=O ")), "{info}");
    assert!(monitored(&mut mon).ends_with("\"CLIENT\" \"LIST\""));
    // RESET leaves monitor mode: what runs after it is not shown.
    assert_eq!(mon.cmd(&["RESET"]), b"+RESET\r\n");
    server.raw().cmd(&["SET", "after", "reset"]);
    assert_eq!(mon.cmd(&["PING"]), b"+PONG\r\n");
}

#[test]
fn monitor_shows_a_script_and_then_the_commands_it_calls_as_lua() {
    let server = Server::with_args(&["--workers", "2"]);
    let mut mon = server.raw();
    assert_eq!(mon.cmd(&["MONITOR"]), b"+OK\r\n");
    let mut c = server.raw();
    let addr = c.stream.local_addr().unwrap().to_string();
    let script = "redis.call('SET', KEYS[1], 'v') return redis.call('GET', KEYS[1])";
    assert_eq!(c.cmd(&["EVAL", script, "1", "k"]), b"$1\r\nv\r\n");
    assert_eq!(
        monitored(&mut mon),
        format!("[0 {addr}] \"EVAL\" \"{script}\" \"1\" \"k\"")
    );
    assert_eq!(monitored(&mut mon), "[0 lua] \"SET\" \"k\" \"v\"");
    assert_eq!(monitored(&mut mon), "[0 lua] \"GET\" \"k\"");
}

#[test]
fn redis_cli_monitor_prints_the_commands() {
    if !crate::cli::tool_present("redis-cli") {
        return;
    }
    let server = Server::start();
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "MONITOR"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-cli");
    let mut c = server.raw();
    // Once the monitor is registered, a command shows up in its output.
    assert!(eventually(Duration::from_secs(10), || {
        show(&c.cmd(&["CLIENT", "LIST"])).contains("flags=O ")
    }));
    c.cmd(&["SET", "watched", "value"]);
    c.cmd(&["QUIT"]);
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    let text = show(&out.stdout);
    assert!(text.starts_with("OK\n"), "{text}");
    assert!(text.contains("] \"SET\" \"watched\" \"value\""), "{text}");
}
