//! Key expiry: lazy (on access) and active (never-read keys are reclaimed),
//! TTL/PTTL ranges, EXPIRE options, PERSIST. Polls are bounded; no timing
//! thresholds are asserted beyond "eventually, within seconds".

use std::time::Duration;

use crate::support::*;

fn int(reply: &[u8]) -> i64 {
    let s = std::str::from_utf8(reply).expect("utf8");
    s.strip_prefix(':')
        .and_then(|s| s.strip_suffix("\r\n"))
        .unwrap_or_else(|| panic!("not an integer reply: {s:?}"))
        .parse()
        .unwrap()
}

#[test]
fn px_key_disappears() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(show(&c.cmd(&["SET", "k", "v", "PX", "100"])), "+OK\r\n");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        eventually(Duration::from_secs(5), || c.cmd(&["GET", "k"]) == b"$-1\r\n"),
        "key with PX 100 still readable"
    );
    assert_eq!(show(&c.cmd(&["EXISTS", "k"])), ":0\r\n");
    assert_eq!(show(&c.cmd(&["TTL", "k"])), ":-2\r\n");
}

#[test]
fn ttl_and_pttl_ranges() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(show(&c.cmd(&["TTL", "missing"])), ":-2\r\n");
    assert_eq!(show(&c.cmd(&["PTTL", "missing"])), ":-2\r\n");
    c.cmd(&["SET", "plain", "v"]);
    assert_eq!(show(&c.cmd(&["TTL", "plain"])), ":-1\r\n");
    assert_eq!(show(&c.cmd(&["PTTL", "plain"])), ":-1\r\n");
    c.cmd(&["SET", "ex", "v", "EX", "100"]);
    let ttl = int(&c.cmd(&["TTL", "ex"]));
    assert!((90..=100).contains(&ttl), "TTL {ttl}");
    let pttl = int(&c.cmd(&["PTTL", "ex"]));
    assert!((90_000..=100_000).contains(&pttl), "PTTL {pttl}");
    c.cmd(&["SETEX", "sx", "50", "v"]);
    let ttl = int(&c.cmd(&["TTL", "sx"]));
    assert!((40..=50).contains(&ttl), "TTL {ttl}");
    // SET without KEEPTTL clears the TTL; with KEEPTTL keeps it.
    c.cmd(&["SET", "ex", "v2", "KEEPTTL"]);
    assert!(int(&c.cmd(&["TTL", "ex"])) > 0);
    c.cmd(&["SET", "ex", "v3"]);
    assert_eq!(show(&c.cmd(&["TTL", "ex"])), ":-1\r\n");
    // EXPIRETIME is an absolute unix time.
    c.cmd(&["EXPIRE", "sx", "1000"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = int(&c.cmd(&["EXPIRETIME", "sx"]));
    assert!(
        (now + 990..=now + 1010).contains(&at),
        "EXPIRETIME {at} now {now}"
    );
    assert_eq!(show(&c.cmd(&["EXPIRETIME", "plain"])), ":-1\r\n");
    assert_eq!(show(&c.cmd(&["EXPIRETIME", "missing"])), ":-2\r\n");
}

#[test]
fn expire_options_nx_xx_gt_lt() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["SET", "k", "v"]);
    assert_eq!(show(&c.cmd(&["EXPIRE", "missing", "100"])), ":0\r\n");
    // XX on a key without TTL: no.
    assert_eq!(show(&c.cmd(&["EXPIRE", "k", "100", "XX"])), ":0\r\n");
    // GT on a key without TTL (infinite): no. LT: yes.
    assert_eq!(show(&c.cmd(&["EXPIRE", "k", "100", "GT"])), ":0\r\n");
    assert_eq!(show(&c.cmd(&["TTL", "k"])), ":-1\r\n");
    assert_eq!(show(&c.cmd(&["EXPIRE", "k", "100", "NX"])), ":1\r\n");
    assert_eq!(show(&c.cmd(&["EXPIRE", "k", "200", "NX"])), ":0\r\n");
    assert_eq!(show(&c.cmd(&["EXPIRE", "k", "200", "XX"])), ":1\r\n");
    assert_eq!(show(&c.cmd(&["EXPIRE", "k", "100", "GT"])), ":0\r\n");
    assert_eq!(show(&c.cmd(&["EXPIRE", "k", "300", "GT"])), ":1\r\n");
    assert_eq!(show(&c.cmd(&["EXPIRE", "k", "400", "LT"])), ":0\r\n");
    assert_eq!(show(&c.cmd(&["EXPIRE", "k", "50", "LT"])), ":1\r\n");
    let ttl = int(&c.cmd(&["TTL", "k"]));
    assert!((40..=50).contains(&ttl), "TTL {ttl}");
    assert_eq!(
        show(&c.cmd(&["EXPIRE", "k", "10", "NX", "XX"])),
        "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
    );
    assert_eq!(
        show(&c.cmd(&["EXPIRE", "k", "10", "GT", "LT"])),
        "-ERR GT and LT options at the same time are not compatible\r\n"
    );
    assert_eq!(
        show(&c.cmd(&["EXPIRE", "k", "ten"])),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        show(&c.cmd(&["EXPIRE", "k", "10", "SOON"])),
        "-ERR Unsupported option SOON\r\n"
    );
    // A non-positive TTL deletes the key.
    assert_eq!(show(&c.cmd(&["EXPIRE", "k", "0"])), ":1\r\n");
    assert_eq!(show(&c.cmd(&["EXISTS", "k"])), ":0\r\n");
    c.cmd(&["SET", "k2", "v"]);
    assert_eq!(show(&c.cmd(&["PEXPIRE", "k2", "-5"])), ":1\r\n");
    assert_eq!(show(&c.cmd(&["GET", "k2"])), "$-1\r\n");
}

#[test]
fn persist_removes_the_ttl() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["SET", "k", "v", "EX", "100"]);
    assert_eq!(show(&c.cmd(&["PERSIST", "k"])), ":1\r\n");
    assert_eq!(show(&c.cmd(&["TTL", "k"])), ":-1\r\n");
    assert_eq!(show(&c.cmd(&["PERSIST", "k"])), ":0\r\n");
    assert_eq!(show(&c.cmd(&["PERSIST", "missing"])), ":0\r\n");
    // A persisted short TTL does not expire.
    c.cmd(&["SET", "short", "v", "PX", "200"]);
    assert_eq!(show(&c.cmd(&["PERSIST", "short"])), ":1\r\n");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(show(&c.cmd(&["GET", "short"])), "$1\r\nv\r\n");
}

#[test]
fn active_expiry_reclaims_keys_never_read() {
    let server = Server::start();
    let mut c = server.raw();
    let mut wire = Vec::new();
    for i in 0..1000 {
        wire.extend(resp(&["SET", &format!("tmp:{i}"), "v", "PX", "50"]));
    }
    wire.extend(resp(&["SET", "keep", "v"]));
    c.send(&wire);
    c.read_n(1001 * 5);
    let mut last = -1;
    let reclaimed = eventually(Duration::from_secs(5), || {
        last = int(&c.cmd(&["DBSIZE"]));
        last == 1
    });
    assert!(reclaimed, "DBSIZE still {last} (1 persistent key)");
    assert_eq!(show(&c.cmd(&["GET", "keep"])), "$1\r\nv\r\n");
}

#[test]
fn expired_keys_are_invisible_to_keys_scan_and_mget() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["SET", "live", "1"]);
    c.cmd(&["SET", "dead", "1", "PX", "30"]);
    std::thread::sleep(Duration::from_millis(150));
    // Whether or not the active cycle has run, expired keys are not visible.
    assert_eq!(show(&c.cmd(&["KEYS", "*"])), "*1\r\n$4\r\nlive\r\n");
    assert_eq!(
        show(&c.cmd(&["MGET", "dead", "live"])),
        "*2\r\n$-1\r\n$1\r\n1\r\n"
    );
    assert_eq!(show(&c.cmd(&["EXISTS", "dead"])), ":0\r\n");
}
