//! Real Redis tools against kvserver: redis-cli and redis-benchmark.
//! Skipped with a message when the tools are not installed (CI has them).

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

pub(crate) fn tool_present(name: &str) -> bool {
    let found = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        eprintln!("{name} not installed; skipping");
    }
    found
}

/// Runs a command with a deadline; a hang fails the test.
pub(crate) fn run_bounded(cmd: &mut Command, limit: Duration, stdin: Option<&[u8]>) -> Output {
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(input) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).unwrap();
    }
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} did not finish within {limit:?}; stdout {:?}",
                show(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn cli(server: &Server, args: &[&str]) -> String {
    let out = run_bounded(
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
            .args(args),
        Duration::from_secs(20),
        None,
    );
    let stdout = show(&out.stdout);
    // redis-cli exits non-zero when the reply is an error.
    if !stdout.starts_with("(error)") {
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    }
    stdout
}

#[test]
fn redis_cli_session() {
    if !tool_present("redis-cli") {
        return;
    }
    let server = Server::start();
    assert_eq!(cli(&server, &["set", "a", "b"]), "OK\n");
    assert_eq!(cli(&server, &["get", "a"]), "b\n");
    assert_eq!(cli(&server, &["--no-raw", "get", "a"]), "\"b\"\n");
    assert_eq!(cli(&server, &["--no-raw", "get", "nope"]), "(nil)\n");
    assert_eq!(cli(&server, &["--no-raw", "incr", "n"]), "(integer) 1\n");
    assert_eq!(
        cli(&server, &["--no-raw", "mget", "a", "nope"]),
        "1) \"b\"\n2) (nil)\n"
    );
    assert_eq!(
        cli(&server, &["--no-raw", "get"]),
        "(error) ERR wrong number of arguments for 'get' command\n"
    );
    assert_eq!(cli(&server, &["ping"]), "PONG\n");
    assert_eq!(cli(&server, &["dbsize"]), "2\n");

    // Commands from stdin, one per line.
    let out = run_bounded(
        Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", &server.port.to_string()]),
        Duration::from_secs(20),
        Some(b"set x 1\nincr x\nget x\n"),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(show(&out.stdout), "OK\n2\n2\n");
}

#[test]
fn redis_cli_with_password() {
    if !tool_present("redis-cli") {
        return;
    }
    let server = Server::with_args(&["--requirepass", "secret"]);
    assert_eq!(
        cli(&server, &["--no-raw", "get", "a"]),
        "(error) NOAUTH Authentication required.\n"
    );
    assert_eq!(
        cli(&server, &["-a", "secret", "--no-auth-warning", "set", "a", "1"]),
        "OK\n"
    );
}

#[test]
fn redis_benchmark_runs_clean() {
    if !tool_present("redis-benchmark") {
        return;
    }
    let server = Server::start();
    let out = run_bounded(
        Command::new("redis-benchmark").args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-t",
            "set,get",
            "-n",
            "2000",
            "-q",
        ]),
        Duration::from_secs(60),
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = show(&out.stdout);
    assert!(stdout.contains("SET"), "{stdout}");
    assert!(stdout.contains("GET"), "{stdout}");
    // The server survived and holds the benchmark key.
    let mut c = server.raw();
    assert_eq!(show(&c.cmd(&["EXISTS", "key:__rand_int__"])), ":1\r\n");
}
