//! Keyspace notifications after Redis 7.0's `pubsub.tcl` ("Keyspace
//! notifications: …"): set, del, expire, expired (lazy and active),
//! evicted, hash-field expiry, masks and CONFIG GET/SET of the classes.

use std::time::Duration;

use crate::support::*;

/// `pmessage <pattern> <channel> <message>` as "channel message".
fn next_event(c: &mut Raw) -> String {
    let reply = show(&c.read_reply());
    let parts: Vec<&str> = reply.split("\r\n").collect();
    // *4 $8 pmessage $1 * $N channel $M message
    assert_eq!(parts.get(2), Some(&"pmessage"), "{reply}");
    format!("{} {}", parts[6], parts[8])
}

fn listener(server: &Server, classes: &str) -> (Raw, Raw) {
    let mut admin = server.raw();
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "notify-keyspace-events", classes]),
        b"+OK\r\n"
    );
    let mut sub = server.raw();
    sub.send(&resp(&["PSUBSCRIBE", "*"]));
    sub.read_reply();
    (admin, sub)
}

#[test]
fn keyspace_and_keyevent_notifications_for_set_and_del() {
    let server = Server::start();
    let (mut c, mut sub) = listener(&server, "KEA");
    assert_eq!(
        show(&c.cmd(&["CONFIG", "GET", "notify-keyspace-events"])),
        "*2\r\n$22\r\nnotify-keyspace-events\r\n$3\r\nAKE\r\n"
    );
    c.cmd(&["SET", "foo", "bar"]);
    assert_eq!(next_event(&mut sub), "__keyspace@0__:foo set");
    assert_eq!(next_event(&mut sub), "__keyevent@0__:set foo");
    c.cmd(&["DEL", "foo", "missing"]);
    assert_eq!(next_event(&mut sub), "__keyspace@0__:foo del");
    assert_eq!(next_event(&mut sub), "__keyevent@0__:del foo");
    // Other databases name theirs.
    c.cmd(&["SELECT", "9"]);
    c.cmd(&["SET", "k", "v"]);
    assert_eq!(next_event(&mut sub), "__keyspace@9__:k set");
}

#[test]
fn masks_select_the_classes_and_the_channels() {
    let server = Server::start();
    let (mut c, mut sub) = listener(&server, "El");
    assert_eq!(
        show(&c.cmd(&["CONFIG", "GET", "notify-keyspace-events"])),
        "*2\r\n$22\r\nnotify-keyspace-events\r\n$2\r\nlE\r\n"
    );
    c.cmd(&["SET", "foo", "bar"]);
    c.cmd(&["LPUSH", "mylist", "a"]);
    c.cmd(&["RPUSH", "mylist", "b"]);
    c.cmd(&["RPOP", "mylist"]);
    c.cmd(&["RPOP", "mylist"]);
    assert_eq!(next_event(&mut sub), "__keyevent@0__:lpush mylist");
    assert_eq!(next_event(&mut sub), "__keyevent@0__:rpush mylist");
    assert_eq!(next_event(&mut sub), "__keyevent@0__:rpop mylist");
    assert_eq!(next_event(&mut sub), "__keyevent@0__:rpop mylist");
    // `del` is generic: masked out here.
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Eg"]);
    c.cmd(&["SET", "foo", "bar"]);
    c.cmd(&["EXPIRE", "foo", "100"]);
    c.cmd(&["PERSIST", "foo"]);
    c.cmd(&["DEL", "foo"]);
    assert_eq!(next_event(&mut sub), "__keyevent@0__:expire foo");
    assert_eq!(next_event(&mut sub), "__keyevent@0__:persist foo");
    assert_eq!(next_event(&mut sub), "__keyevent@0__:del foo");
    assert!(show(&c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KQ"]))
        .starts_with("-ERR CONFIG SET failed"));
}

#[test]
fn type_events_use_redis_names() {
    let server = Server::start();
    let (mut c, mut sub) = listener(&server, "Ehszg$");
    c.cmd(&["HSET", "h", "f", "1"]);
    c.cmd(&["HINCRBY", "h", "f", "2"]);
    c.cmd(&["SADD", "s", "a"]);
    c.cmd(&["SADD", "s", "a"]); // no change: no event
    c.cmd(&["SREM", "s", "a"]);
    c.cmd(&["ZADD", "z", "1", "a"]);
    c.cmd(&["ZINCRBY", "z", "1", "a"]);
    c.cmd(&["INCRBY", "n", "5"]);
    c.cmd(&["APPEND", "n", "0"]);
    for expected in [
        "hset h",
        "hincrby h",
        "sadd s",
        "srem s",
        "del s",
        "zadd z",
        "zincr z",
        "incrby n",
        "append n",
    ] {
        assert_eq!(next_event(&mut sub), format!("__keyevent@0__:{expected}"));
    }
}

#[test]
fn expired_events_come_from_lazy_and_active_expiry() {
    let server = Server::start();
    let (mut c, mut sub) = listener(&server, "Ex");
    // Lazy: the key is read after its expiry.
    c.cmd(&["SET", "lazy", "v", "PX", "1"]);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(c.cmd(&["GET", "lazy"]), b"$-1\r\n");
    assert_eq!(next_event(&mut sub), "__keyevent@0__:expired lazy");
    // Active: nobody touches the key; the expiry cycle finds it.
    c.cmd(&["SET", "active", "v", "PX", "50"]);
    assert_eq!(next_event(&mut sub), "__keyevent@0__:expired active");
}

#[test]
fn hash_field_expiry_sends_hexpired() {
    let server = Server::start();
    let (mut c, mut sub) = listener(&server, "Egh");
    c.cmd(&["HSET", "h", "f", "v", "g", "w"]);
    assert_eq!(next_event(&mut sub), "__keyevent@0__:hset h");
    c.cmd(&["HPEXPIRE", "h", "30", "FIELDS", "1", "f"]);
    assert_eq!(next_event(&mut sub), "__keyevent@0__:hexpire h");
    assert_eq!(next_event(&mut sub), "__keyevent@0__:hexpired h");
}

#[test]
fn evicted_events_name_the_evicted_keys() {
    let server = Server::start();
    let (mut c, mut sub) = listener(&server, "Ee");
    c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
    c.cmd(&["SET", "foo", "bar"]);
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "1"]), b"+OK\r\n");
    assert_eq!(next_event(&mut sub), "__keyevent@0__:evicted foo");
    c.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
}
