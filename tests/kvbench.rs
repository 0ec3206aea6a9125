//! End-to-end tests of `kvbench` against the real `kvserver` binary.
//!
//! Each test starts its own kvserver on a free loopback port (no WAL, temp
//! dir), waits for PING, runs the kvbench binary and checks its output and
//! exit status, plus server state where it proves exact request counts.
//! Timing is never asserted except "fails within a few seconds".
//!
//! Developer aid: with `KVBENCH_TEST_REDIS=1` the same tests run against
//! `redis-server` instead (used while kvserver was not written yet).

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const KVBENCH: &str = env!("CARGO_BIN_EXE_kvbench");
const KVSERVER: &str = env!("CARGO_BIN_EXE_kvserver");

fn use_redis() -> bool {
    std::env::var_os("KVBENCH_TEST_REDIS").is_some_and(|v| v == "1")
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A server process killed on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let child = if use_redis() {
            Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn redis-server")
        } else {
            Command::new(KVSERVER)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--no-wal"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn kvserver")
        };
        let mut s = Server {
            child,
            port,
            _dir: dir,
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = self.conn() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return;
                }
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("server exited before answering PING: {st}");
            }
            assert!(Instant::now() < deadline, "server did not answer PING");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn conn(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?.get_connection()
    }

    fn query<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut c = self.conn().expect("connect");
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut c).expect("query")
    }
}

/// Run kvbench with a hard deadline so a hang fails the test instead of CI.
fn kvbench(port: u16, args: &[&str]) -> Output {
    run_bounded(
        Command::new(KVBENCH).args(["-p", &port.to_string()]).args(args),
        Duration::from_secs(60),
    )
}

fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kvbench");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kvbench did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_end(&mut stdout).expect("read stdout");
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_end(&mut stderr).expect("read stderr");
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Numeric field `key` of the JSON object of test `label` (no serde_json dep).
fn field(json: &str, label: &str, key: &str) -> f64 {
    let start = json
        .find(&format!("{{\"test\":\"{label}\""))
        .unwrap_or_else(|| panic!("no test {label} in {json}"));
    let obj = &json[start..];
    let k = format!("\"{key}\":");
    let at = obj
        .find(&k)
        .unwrap_or_else(|| panic!("no {key} for {label} in {json}"))
        + k.len();
    let num: String = obj[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    num.parse()
        .unwrap_or_else(|_| panic!("bad number for {key}: {num}"))
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "kvbench failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn exact_request_counts_for_every_test() {
    let s = Server::start();
    let out = kvbench(
        s.port,
        &[
            "-t",
            "ping,set,get,incr,del,mset,mget",
            "-n",
            "600",
            "-c",
            "7",
            "-P",
            "3",
            "--threads",
            "2",
            "--json",
        ],
    );
    assert_ok(&out);
    let json = text(&out.stdout);
    for label in [
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "DEL",
        "MSET (10 keys)",
        "MGET (10 keys)",
    ] {
        assert_eq!(field(&json, label, "requests"), 600.0, "{label}: {json}");
        assert_eq!(field(&json, label, "ok"), 600.0, "{label}: {json}");
        assert_eq!(field(&json, label, "failed"), 0.0, "{label}: {json}");
    }
    // Without -r the placeholder stays literal: one counter, one key.
    let counter: String = s.query(&["GET", "counter:__rand_int__"]);
    assert_eq!(counter, "600");
    let dbsize: i64 = s.query(&["DBSIZE"]);
    assert_eq!(dbsize, 2);
}

#[test]
fn random_keys_use_twelve_digits() {
    let s = Server::start();
    let out = kvbench(s.port, &["-t", "incr", "-n", "1000", "-r", "1", "-q"]);
    assert_ok(&out);
    let counter: String = s.query(&["GET", "counter:000000000000"]);
    assert_eq!(counter, "1000");
    let out = kvbench(
        s.port,
        &["-t", "set", "-n", "1000", "-r", "100000000", "-c", "5", "-q"],
    );
    assert_ok(&out);
    let dbsize: i64 = s.query(&["DBSIZE"]);
    // 1000 draws from 10^8 keys: collisions are possible but rare.
    assert!((990..=1001).contains(&dbsize), "DBSIZE {dbsize}");
}

#[test]
fn zipf_keys_are_skewed_and_get_reports_the_hit_ratio() {
    let s = Server::start();
    // 5000 Zipf(0.99) draws over 10^6 keys hit far fewer distinct keys than
    // 5000 uniform draws would (~5000).
    let out = kvbench(
        s.port,
        &[
            "-t",
            "set",
            "-n",
            "5000",
            "-r",
            "1000000",
            "--key-pattern",
            "zipf:0.99",
            "-q",
        ],
    );
    assert_ok(&out);
    let dbsize: i64 = s.query(&["DBSIZE"]);
    assert!((100..3500).contains(&dbsize), "DBSIZE {dbsize}");
    // GETs of the same distribution often hit the keys the SETs wrote (about
    // half of them here); uniform GETs would hit 0.5 % at most.
    let out = kvbench(
        s.port,
        &[
            "-t",
            "get",
            "-n",
            "5000",
            "-r",
            "1000000",
            "--key-pattern",
            "zipf:0.99",
            "--json",
        ],
    );
    assert_ok(&out);
    let json = text(&out.stdout);
    let ratio = field(&json, "GET", "hit_ratio");
    assert!(ratio > 0.2 && ratio <= 1.0, "{json}");
    let quiet = kvbench(s.port, &["-t", "get", "-n", "100", "-r", "1000000000", "-q"]);
    assert_ok(&quiet);
    assert!(
        text(&quiet.stdout).contains("hit ratio="),
        "{}",
        text(&quiet.stdout)
    );
    let bad = kvbench(s.port, &["-t", "get", "--key-pattern", "zipf:-1"]);
    assert!(!bad.status.success());
}

#[test]
fn text_protocol_counts_exactly() {
    let s = Server::start();
    // redis answers inline commands in RESP, where GET's bulk reply spans two
    // lines; only kvserver has the one-line text replies.
    let tests = if use_redis() {
        "ping,set,incr,del"
    } else {
        "ping,set,get,incr,del,mset,mget"
    };
    let out = kvbench(
        s.port,
        &[
            "--protocol",
            "text",
            "-t",
            tests,
            "-n",
            "500",
            "-c",
            "4",
            "-P",
            "2",
            "--json",
        ],
    );
    assert_ok(&out);
    let json = text(&out.stdout);
    assert_eq!(field(&json, "INCR", "ok"), 500.0, "{json}");
    assert_eq!(field(&json, "SET", "ok"), 500.0, "{json}");
    let counter: String = s.query(&["GET", "counter:__rand_int__"]);
    assert_eq!(counter, "500");
}

#[test]
fn error_replies_are_counted_as_failures() {
    let s = Server::start();
    let _: String = s.query(&["SET", "counter:__rand_int__", "notanumber"]);
    let out = kvbench(s.port, &["-t", "incr", "-n", "50", "-c", "5", "--json"]);
    assert!(!out.status.success(), "must exit non-zero on error replies");
    let json = text(&out.stdout);
    assert_eq!(field(&json, "INCR", "ok"), 0.0, "{json}");
    assert_eq!(field(&json, "INCR", "failed"), 50.0, "{json}");
    assert!(json.contains("\"ERR\":50"), "{json}");
}

#[test]
fn csv_and_quiet_formats_match_redis_benchmark() {
    let s = Server::start();
    let out = kvbench(s.port, &["-t", "set,mset", "-n", "300", "--csv"]);
    assert_ok(&out);
    let csv = text(&out.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\""
    );
    assert!(lines[1].starts_with("\"SET\",\""), "{csv}");
    assert!(lines[2].starts_with("\"MSET (10 keys)\",\""), "{csv}");
    assert_eq!(lines[1].split(',').count(), 8);
    let out = kvbench(s.port, &["-t", "get", "-n", "300", "-q"]);
    assert_ok(&out);
    let q = text(&out.stdout);
    assert!(
        q.starts_with("GET: ") && q.contains(" requests per second, p50="),
        "{q}"
    );
}

#[test]
fn killed_server_gives_clear_error_quickly() {
    let mut s = Server::start();
    let mut child = Command::new(KVBENCH)
        .args(["-p", &s.port.to_string(), "-t", "set", "-c", "10"])
        .args(["--duration", "30s", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kvbench");
    std::thread::sleep(Duration::from_millis(700));
    s.child.kill().expect("kill server");
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kvbench still running 10 s after the server died");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).expect("stderr");
    }
    assert!(!status.success(), "must exit non-zero");
    assert!(
        err.contains("failed") || err.contains("could not connect"),
        "unclear error: {err}"
    );
}

#[test]
fn unreachable_server_fails_fast() {
    let port = free_port(); // nothing listens there any more
    let started = Instant::now();
    let out = run_bounded(
        Command::new(KVBENCH).args(["-p", &port.to_string(), "-n", "10", "-q"]),
        Duration::from_secs(15),
    );
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(6));
    let err = text(&out.stderr);
    assert!(err.contains("could not connect"), "{err}");
}

#[test]
fn compare_prints_ratios() {
    let a = Server::start();
    let b = Server::start();
    let other = format!("127.0.0.1:{}", b.port);
    let plot = tempfile::tempdir().expect("tempdir");
    let svg = plot.path().join("lat.svg");
    let svg_arg = svg.to_string_lossy().into_owned();
    let out = kvbench(
        a.port,
        &[
            "--compare",
            &other,
            "-t",
            "set,get",
            "-n",
            "2000",
            "-c",
            "4",
            "--rounds",
            "2",
            "--plot",
            &svg_arg,
        ],
    );
    assert_ok(&out);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("rps A/B"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("SET ")), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("GET ")), "{stdout}");
    let svg_text = std::fs::read_to_string(Path::new(&svg)).expect("svg written");
    assert!(svg_text.contains("<svg"));
}

#[test]
fn hash_tests_write_twenty_field_hashes_and_read_them_back() {
    let s = Server::start();
    let out = kvbench(
        s.port,
        &[
            "-t",
            "hset,hget,hmget,hgetall",
            "-n",
            "400",
            "-r",
            "50",
            "-c",
            "4",
            "-P",
            "2",
            "--json",
        ],
    );
    assert_ok(&out);
    let json = text(&out.stdout);
    for label in ["HSET (20 fields)", "HGET", "HMGET (5 fields)", "HGETALL"] {
        assert_eq!(field(&json, label, "requests"), 400.0, "{label}: {json}");
    }
    let keys: Vec<String> = s.query(&["KEYS", "hash:*"]);
    assert!(!keys.is_empty());
    let len: i64 = s.query(&["HLEN", &keys[0]]);
    assert_eq!(len, 20);
    // HGETALL's text reply has one line per element: refused in text mode.
    let out = kvbench(s.port, &["-t", "hgetall", "--protocol", "text", "-n", "10"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("hgetall needs --protocol resp"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn multi_test_runs_whole_transactions_and_counts_each_as_one_request() {
    let s = Server::start();
    for protocol in ["resp", "text"] {
        if protocol == "text" && use_redis() {
            continue;
        }
        let out = kvbench(
            s.port,
            &[
                "--protocol",
                protocol,
                "-t",
                "multi",
                "-n",
                "300",
                "-c",
                "3",
                "-P",
                "4",
                "--json",
            ],
        );
        assert_ok(&out);
        let json = text(&out.stdout);
        assert_eq!(field(&json, "MULTI/EXEC (2 INCR)", "ok"), 300.0, "{json}");
        assert_eq!(field(&json, "MULTI/EXEC (2 INCR)", "failed"), 0.0, "{json}");
    }
    // Two INCRs of the literal key per transaction, 300 transactions per protocol.
    let counter: String = s.query(&["GET", "counter:__rand_int__"]);
    assert_eq!(counter, if use_redis() { "600" } else { "1200" });
}
