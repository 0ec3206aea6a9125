//! Daemon safety: SIGHUP, the data-directory lock, binding before replay,
//! `-LOADING` during replay, log files and protected mode.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{self, Client, Launch, Reply, KVSERVER, WAIT};

/// Writes `n` keys `k0..` in pipelined chunks; every reply must be OK.
fn write_keys(c: &mut Client, from: usize, n: usize) {
    for chunk in (from..from + n).collect::<Vec<_>>().chunks(500) {
        let cmds: Vec<Vec<String>> = chunk
            .iter()
            .map(|i| crate::cmd!["SET", format!("k{i}"), format!("v{i}")])
            .collect();
        for r in c.pipeline(&cmds) {
            assert!(r.is_ok(), "{r:?}");
        }
    }
}

fn assert_keys(c: &mut Client, n: usize) {
    let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
    let values = c.mget(&keys);
    for (i, v) in values.iter().enumerate() {
        assert_eq!(v.as_deref(), Some(format!("v{i}").as_str()), "k{i}");
    }
}

fn signal(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: signalling our own child process by pid.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

/// Polls `f` until it is true or `WAIT` passes.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn sighup_leaves_the_server_running_and_loses_no_acknowledged_write() {
    let dir = support::tempdir();
    let mut server = support::start(dir.path(), &Launch::default());
    let mut c = server.client();
    write_keys(&mut c, 0, 5_000);
    for _ in 0..3 {
        signal(server.pid(), libc::SIGHUP);
    }
    write_keys(&mut c, 5_000, 5_000);
    assert!(matches!(c.cmd(&["PING"]), Reply::Simple(s) if s == "PONG"));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "SIGHUP stopped the server"
    );
    assert!(
        eventually(|| server.stderr_text().contains("SIGHUP")),
        "SIGHUP was not logged:\n{}",
        server.stderr_text()
    );
    drop(c);
    server.sigterm();
    let mut server = support::start(dir.path(), &Launch::default());
    assert_keys(&mut server.client(), 10_000);
    server.sigterm();
}

#[test]
fn a_second_server_on_the_same_directory_exits_at_once_and_the_first_keeps_serving() {
    let dir = support::tempdir();
    let mut first = support::start(dir.path(), &Launch::default());
    let mut c = first.client();
    write_keys(&mut c, 0, 100);
    let (status, text) = support::start_refused(dir.path(), &Launch::default());
    assert!(!status.success());
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
    assert!(text.contains(&format!("pid {}", first.pid())), "{text}");
    assert!(
        !text.contains("recovered from WAL"),
        "the second server read the WAL:\n{text}"
    );
    write_keys(&mut c, 100, 100);
    assert_keys(&mut c, 200);
    drop(c);
    first.sigterm();
    // The lock dies with its holder: the directory is usable again.
    let mut again = support::start(dir.path(), &Launch::default());
    assert_keys(&mut again.client(), 200);
    again.sigterm();
}

#[test]
fn a_busy_port_is_reported_before_the_wal_is_replayed() {
    let dir = support::tempdir();
    let mut server = support::start(dir.path(), &Launch::default());
    write_keys(&mut server.client(), 0, 1_000);
    server.sigterm();
    let busy = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let launch = Launch::default().arg("--port").arg(&port);
    let (status, text) = support::start_refused(dir.path(), &launch);
    assert!(!status.success());
    assert!(text.contains("cannot listen") && text.contains(&port), "{text}");
    assert!(
        !text.contains("recovered from WAL"),
        "replayed before binding:\n{text}"
    );
}

#[test]
fn every_command_gets_loading_until_the_replay_is_done() {
    let dir = support::tempdir();
    let mut server = support::start(dir.path(), &Launch::default());
    write_keys(&mut server.client(), 0, 2_000);
    server.sigterm();
    // The hold file keeps the loader waiting after its replay, so the test
    // sees the loading state however fast the replay is.
    let hold = dir.path().join("hold-loading");
    std::fs::write(&hold, b"").unwrap();
    let launch = Launch::default().env("KVSERVER_TEST_HOLD_LOADING", hold.to_str().unwrap());
    let mut server = support::start_listening(dir.path(), &launch);
    let mut c = server.client();
    let loading = "LOADING kvserver is loading the dataset in memory";
    for cmd in [&["PING"][..], &["GET", "k1"], &["SET", "x", "y"], &["DBSIZE"]] {
        match c.cmd(cmd) {
            Reply::Error(e) => assert_eq!(e, loading, "{cmd:?}"),
            other => panic!("{cmd:?} while loading: {other:?}"),
        }
    }
    assert_eq!(c.info("persistence")["loading"], "1");
    // RESET is allowed while loading, as in Redis.
    assert!(matches!(c.cmd(&["RESET"]), Reply::Simple(s) if s == "RESET"));
    std::fs::remove_file(&hold).unwrap();
    assert!(eventually(
        || matches!(c.cmd(&["PING"]), Reply::Simple(s) if s == "PONG")
    ));
    assert_eq!(c.info("persistence")["loading"], "0");
    assert_keys(&mut c, 2_000);
    assert!(
        !server.stderr_text().contains('\u{1b}'),
        "colour codes on a non-terminal stderr"
    );
    drop(c);
    server.sigterm();
}

#[test]
fn logfile_gets_plain_text_and_is_reopened_on_sighup() {
    let dir = support::tempdir();
    let log = dir.path().join("kvserver.log");
    let mut child = Command::new(KVSERVER)
        .args(["--bind", "127.0.0.1", "--port", "0", "--no-wal", "--logfile"])
        .arg(&log)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let ready = eventually(|| read(&log).contains("ready to accept connections on"));
    let text = read(&log);
    if !ready {
        let _ = child.kill();
        panic!("no ready line in the log file:\n{text}");
    }
    assert!(!text.contains('\u{1b}'), "colour codes in the log file:\n{text}");
    let rotated = dir.path().join("kvserver.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    signal(child.id() as libc::pid_t, libc::SIGHUP);
    assert!(
        eventually(|| read(&log).contains("log file reopened")),
        "{}",
        read(&rotated)
    );
    assert!(child.try_wait().unwrap().is_none(), "SIGHUP stopped the server");
    signal(child.id() as libc::pid_t, libc::SIGTERM);
    assert!(child.wait().unwrap().success());
    assert!(read(&log).contains("bye"));
}

/// A non-loopback IPv4 address of this machine (from /proc/net/fib_trie's
/// `/32 host LOCAL` entries), if it has one.
fn local_non_loopback_ipv4() -> Option<Ipv4Addr> {
    let trie = std::fs::read_to_string("/proc/net/fib_trie").ok()?;
    let lines: Vec<&str> = trie.lines().collect();
    lines.windows(2).find_map(|w| {
        let addr: Ipv4Addr = w[0].trim().trim_start_matches("|-- ").parse().ok()?;
        (w[1].contains("/32 host LOCAL") && !addr.is_loopback()).then_some(addr)
    })
}

#[test]
fn protected_mode_denies_remote_clients_of_a_server_without_a_password() {
    let Some(addr) = local_non_loopback_ipv4() else {
        eprintln!("no non-loopback address in this network namespace: covered by daemon::tests");
        return;
    };
    let dir = support::tempdir();
    let open_bind = Launch::default().arg("--bind").arg("0.0.0.0");
    let mut server = support::start(dir.path(), &open_bind);
    assert!(
        server.stderr_text().contains("protected mode is on"),
        "{}",
        server.stderr_text()
    );
    let mut remote = TcpStream::connect((addr, server.port)).unwrap();
    remote.set_read_timeout(Some(WAIT)).unwrap();
    let _ = remote.write_all(b"PING\r\n");
    let mut reply = String::new();
    let _ = remote.read_to_string(&mut reply);
    assert!(
        reply.starts_with("-DENIED kvserver is running in protected mode"),
        "{reply:?}"
    );
    // Loopback clients are served.
    assert!(matches!(server.client().cmd(&["PING"]), Reply::Simple(s) if s == "PONG"));
    server.sigterm();

    for off in [
        Launch::default()
            .arg("--bind")
            .arg("0.0.0.0")
            .arg("--protected-mode")
            .arg("no"),
        Launch::default()
            .arg("--bind")
            .arg("0.0.0.0")
            .arg("--requirepass")
            .arg("pw"),
    ] {
        let mut server = support::start(dir.path(), &off);
        let mut stream = TcpStream::connect((addr, server.port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).unwrap();
        let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(reply == "+PONG\r\n" || reply.starts_with("-NOAUTH"), "{reply:?}");
        server.sigterm();
    }
}
