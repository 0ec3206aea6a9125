//! Real libraries that are Lua scripts underneath: redis-py's `Lock`
//! (release and extend are EVALSHA scripts) and the `limits` package's
//! moving-window rate limiter (the strategy behind Flask-Limiter). Skipped
//! with a message when python3, `redis` or `limits` is missing (`.ci/run`
//! installs them).

use crate::redis_py::{python_has, run_python};
use crate::support::*;

const LOCK: &str = r#"
import os, redis
r = redis.Redis(port=int(os.environ["PORT"]))
lock = r.lock("resource", timeout=10)
assert lock.acquire(blocking=False)
# A second owner cannot take it.
other = r.lock("resource", timeout=10)
assert not other.acquire(blocking=False)
assert lock.owned()
assert lock.extend(5)
assert r.pttl("resource") > 10000
assert lock.reacquire()
# Releasing someone else's lock fails (the release script checks the token).
try:
    other.release()
    raise SystemExit("released a lock it did not own")
except redis.exceptions.LockError:
    pass
lock.release()
assert r.get("resource") is None
assert other.acquire(blocking=False)
other.release()
# The same through RESP2.
r2 = redis.Redis(port=int(os.environ["PORT"]), protocol=2)
with r2.lock("resource2", timeout=5):
    assert r2.exists("resource2") == 1
assert r2.exists("resource2") == 0
print("lock ok")
"#;

#[test]
fn redis_py_lock_acquires_extends_and_releases_through_scripts() {
    if !python_has("redis") {
        return;
    }
    let server = Server::with_args(&["--workers", "2"]);
    assert!(run_python(&server, LOCK).contains("lock ok"));
}

const LIMITS: &str = r#"
import os
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
storage = storage_from_string("redis://127.0.0.1:%s" % os.environ["PORT"])
limiter = MovingWindowRateLimiter(storage)
five = parse("5/minute")
results = [limiter.hit(five, "user", "1") for _ in range(7)]
assert results == [True] * 5 + [False] * 2, results
assert limiter.test(five, "user", "2")
stats = limiter.get_window_stats(five, "user", "1")
assert stats.remaining == 0, stats
# Another identity has its own window.
assert limiter.hit(five, "user", "2")
storage.reset()
assert limiter.hit(five, "user", "1")
print("limits ok")
"#;

#[test]
fn the_limits_moving_window_limiter_counts_and_refuses_through_scripts() {
    if !python_has("redis") || !python_has("limits") {
        return;
    }
    let server = Server::start();
    assert!(run_python(&server, LIMITS).contains("limits ok"));
}
