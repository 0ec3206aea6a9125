//! redis-py, with its default options (RESP3 since redis-py 8: every connection
//! starts with `HELLO 3`), against the real server: strings, a pipeline, a
//! transaction and an optimistic-locking retry with WATCH. Skipped with a
//! message when python3 or the `redis` package is missing (`.ci/run` installs it).

use std::process::Command;
use std::time::Duration;

use crate::cli::run_bounded;
use crate::support::*;

/// True if `python3 -c "import <module>"` works; prints why the test
/// skips otherwise. Shared by every test that drives a Python library.
pub(crate) fn python_has(module: &str) -> bool {
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("python3 with the `{module}` package not found; skipping (pip install {module})");
    }
    found
}

/// True if redis-py is importable (see [`python_has`]).
pub(crate) fn redis_py_present() -> bool {
    python_has("redis")
}

/// Runs `script` with `PORT` set; panics with its output unless it exits 0.
pub(crate) fn run_python(server: &Server, script: &str) -> String {
    run_python_in(server, None, script)
}

/// [`run_python`] in working directory `dir` (where a script's own modules
/// live), bounded at two minutes.
pub(crate) fn run_python_in(server: &Server, dir: Option<&std::path::Path>, script: &str) -> String {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]).env("PORT", server.port.to_string());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = run_bounded(&mut cmd, Duration::from_secs(120), None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "python failed:\n{text}");
    text
}

const SCRIPT: &str = r#"
import os, threading, redis

r = redis.Redis(port=int(os.environ["PORT"]))  # library defaults: RESP3
assert r.ping() is True
hello = r.execute_command("HELLO")
assert hello[b"proto"] == 3, hello

# strings
assert r.set("k", "v") is True
assert r.get("k") == b"v"
assert r.get("missing") is None
assert r.set("k", "w", nx=True) is None
assert r.incr("n") == 1 and r.incrby("n", 5) == 6 and r.decr("n") == 5
assert r.incrbyfloat("f", 1.5) == 1.5
assert r.append("k", "x") == 2 and r.strlen("k") == 2
assert r.mset({"a": "1", "b": "2"}) is True
assert r.mget("a", "b", "missing") == [b"1", b"2", None]
assert r.getrange("k", 0, 0) == b"v"
assert r.set("t", "v", ex=100) is True and 0 < r.ttl("t") <= 100
assert r.exists("a", "b", "missing") == 2
assert r.delete("a") == 1
assert r.config_get("timeout") == {"timeout": "0"}, r.config_get("timeout")
assert "redis_version" in r.info("server")

# a plain pipeline
p = r.pipeline(transaction=False)
p.set("p1", 1).incr("p1").get("p1").get("missing")
assert p.execute() == [True, 2, b"2", None]

# a transaction (redis-py's default pipeline is MULTI/EXEC)
with r.pipeline() as p:
    p.set("t1", "a").set("t2", "b").mget("t1", "t2")
    assert p.execute() == [True, True, [b"a", b"b"]]

# a queueing error aborts the whole transaction
p = r.pipeline()
p.set("never", 1).execute_command("NOSUCHCOMMAND")
try:
    p.execute()
    raise AssertionError("EXECABORT expected")
except redis.exceptions.ResponseError as e:
    assert "NOSUCHCOMMAND" in str(e) or "EXECABORT" in str(e), e
assert r.exists("never") == 0

# optimistic locking: concurrent increments through WATCH never lose one
r.set("counter", 0)
failures = []
def increment(p):
    value = int(p.get("counter"))  # immediate mode: runs now, while watching
    p.multi()
    p.set("counter", value + 1)
def bump(times):
    try:
        c = redis.Redis(port=int(os.environ["PORT"]))
        for _ in range(times):
            c.transaction(increment, "counter")
    except Exception as e:
        failures.append(e)
threads = [threading.Thread(target=bump, args=(200,)) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
assert not failures, failures
assert r.get("counter") == b"800", r.get("counter")

# a conflicting write makes EXEC fail with WatchError
with r.pipeline() as p:
    p.watch("w")
    redis.Redis(port=int(os.environ["PORT"])).set("w", "other")
    p.multi()
    p.set("w", "mine")
    try:
        p.execute()
        raise AssertionError("WatchError expected")
    except redis.exceptions.WatchError:
        pass
assert r.get("w") == b"other"
print("redis-py ok", redis.__version__)
"#;

#[test]
fn redis_py_with_default_options_runs_strings_pipelines_and_transactions() {
    if !redis_py_present() {
        return;
    }
    let server = Server::with_args(&["--workers", "4"]);
    let out = run_python(&server, SCRIPT);
    assert!(out.contains("redis-py ok"), "{out}");
}
