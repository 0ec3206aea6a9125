//! Pub/Sub after Redis 7.0's `tests/unit/pubsub.tcl` and
//! `pubsubshard.tcl`, RESP2 and RESP3, plus delivery across workers and
//! the output limit of slow subscribers.

use std::time::Duration;

use crate::support::*;

/// A RESP2 push or array of bulk strings/integers, as Redis's test client
/// prints it: `subscribe chan1 1`.
fn words(reply: &[u8]) -> String {
    let text = show(reply);
    let mut out = Vec::new();
    let mut lines = text.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        match line.as_bytes().first() {
            Some(b'*' | b'>') => {}
            Some(b'$') if line == "$-1" => out.push("{}".to_string()),
            Some(b'$') => out.push(lines.next().unwrap_or("").to_string()),
            Some(b':' | b'+' | b'-') => out.push(line[1..].to_string()),
            Some(b'_') => out.push("{}".to_string()),
            _ => {}
        }
    }
    out.join(" ")
}

fn read_words(c: &mut Raw) -> String {
    words(&c.read_reply())
}

fn publish(c: &mut Raw, channel: &str, message: &str) -> String {
    show(&c.cmd(&["PUBLISH", channel, message]))
}

#[test]
fn publish_subscribe_basics() {
    let server = Server::start();
    let mut publisher = server.raw();
    let mut sub = server.raw();
    sub.send(&resp(&["SUBSCRIBE", "chan1", "chan2"]));
    assert_eq!(read_words(&mut sub), "subscribe chan1 1");
    assert_eq!(read_words(&mut sub), "subscribe chan2 2");
    assert_eq!(publish(&mut publisher, "chan1", "hello"), ":1\r\n");
    assert_eq!(publish(&mut publisher, "chan2", "world"), ":1\r\n");
    assert_eq!(read_words(&mut sub), "message chan1 hello");
    assert_eq!(read_words(&mut sub), "message chan2 world");
    sub.send(&resp(&["UNSUBSCRIBE", "chan1"]));
    assert_eq!(read_words(&mut sub), "unsubscribe chan1 1");
    assert_eq!(publish(&mut publisher, "chan1", "hello"), ":0\r\n");
    assert_eq!(publish(&mut publisher, "chan2", "world"), ":1\r\n");
    assert_eq!(read_words(&mut sub), "message chan2 world");
    sub.send(&resp(&["UNSUBSCRIBE", "chan2"]));
    assert_eq!(read_words(&mut sub), "unsubscribe chan2 0");
    assert_eq!(publish(&mut publisher, "chan2", "world"), ":0\r\n");
    // Out of the subscribed context: every command again.
    assert_eq!(sub.cmd(&["GET", "x"]), b"$-1\r\n");
}

#[test]
fn unsubscribe_without_arguments_leaves_every_channel() {
    let server = Server::start();
    let mut publisher = server.raw();
    let mut sub = server.raw();
    sub.send(&resp(&["SUBSCRIBE", "chan1", "chan2", "chan3"]));
    for i in 1..=3 {
        assert_eq!(read_words(&mut sub), format!("subscribe chan{i} {i}"));
    }
    sub.send(&resp(&["UNSUBSCRIBE"]));
    let mut left: Vec<String> = (0..3).map(|_| read_words(&mut sub)).collect();
    left.sort();
    assert_eq!(left.len(), 3);
    assert!(left.iter().all(|w| w.starts_with("unsubscribe chan")), "{left:?}");
    for ch in ["chan1", "chan2", "chan3"] {
        assert_eq!(publish(&mut publisher, ch, "hello"), ":0\r\n");
    }
}

#[test]
fn subscribing_twice_and_unsubscribing_strangers_keep_the_counts() {
    let server = Server::start();
    let mut publisher = server.raw();
    let mut sub = server.raw();
    sub.send(&resp(&["SUBSCRIBE", "chan1", "chan1", "chan1"]));
    for _ in 0..3 {
        assert_eq!(read_words(&mut sub), "subscribe chan1 1");
    }
    assert_eq!(publish(&mut publisher, "chan1", "hello"), ":1\r\n");
    assert_eq!(read_words(&mut sub), "message chan1 hello");
    let mut other = server.raw();
    other.send(&resp(&["UNSUBSCRIBE", "foo", "bar", "quux"]));
    assert_eq!(read_words(&mut other), "unsubscribe foo 0");
    assert_eq!(read_words(&mut other), "unsubscribe bar 0");
    assert_eq!(read_words(&mut other), "unsubscribe quux 0");
    // PUNSUBSCRIBE and UNSUBSCRIBE always reply, even with nothing to leave.
    assert_eq!(words(&other.cmd(&["PUNSUBSCRIBE"])), "punsubscribe {} 0");
    assert_eq!(words(&other.cmd(&["UNSUBSCRIBE"])), "unsubscribe {} 0");
    assert_eq!(words(&other.cmd(&["SUNSUBSCRIBE"])), "sunsubscribe {} 0");
}

#[test]
fn psubscribe_basics_and_mixing_with_subscribe() {
    let server = Server::start();
    let mut publisher = server.raw();
    let mut sub = server.raw();
    sub.send(&resp(&["PSUBSCRIBE", "foo.*", "bar.*"]));
    assert_eq!(read_words(&mut sub), "psubscribe foo.* 1");
    assert_eq!(read_words(&mut sub), "psubscribe bar.* 2");
    assert_eq!(publish(&mut publisher, "foo.1", "hello"), ":1\r\n");
    assert_eq!(publish(&mut publisher, "bar.1", "hello"), ":1\r\n");
    assert_eq!(publish(&mut publisher, "foo1", "hello"), ":0\r\n");
    assert_eq!(publish(&mut publisher, "barfoo.1", "hello"), ":0\r\n");
    assert_eq!(publish(&mut publisher, "qux.1", "hello"), ":0\r\n");
    assert_eq!(read_words(&mut sub), "pmessage foo.* foo.1 hello");
    assert_eq!(read_words(&mut sub), "pmessage bar.* bar.1 hello");
    assert_eq!(publisher.cmd(&["PUBSUB", "NUMPAT"]), b":2\r\n");
    sub.send(&resp(&["PUNSUBSCRIBE", "foo.*"]));
    assert_eq!(read_words(&mut sub), "punsubscribe foo.* 1");
    assert_eq!(publish(&mut publisher, "foo.1", "hello"), ":0\r\n");
    // Mix: a channel and a matching pattern both deliver, and both count.
    sub.send(&resp(&["SUBSCRIBE", "bar.x"]));
    assert_eq!(read_words(&mut sub), "subscribe bar.x 2");
    assert_eq!(publish(&mut publisher, "bar.x", "both"), ":2\r\n");
    let mut got = [read_words(&mut sub), read_words(&mut sub)];
    got.sort();
    assert_eq!(
        got,
        [
            "message bar.x both".to_string(),
            "pmessage bar.* bar.x both".to_string()
        ]
    );
    sub.send(&resp(&["PUNSUBSCRIBE"]));
    assert_eq!(read_words(&mut sub), "punsubscribe bar.* 1");
    assert_eq!(publisher.cmd(&["PUBSUB", "NUMPAT"]), b":0\r\n");
}

#[test]
fn pubsub_numsub_numpat_and_channels() {
    let server = Server::start();
    let mut c = server.raw();
    let mut a = server.raw();
    let mut b = server.raw();
    a.send(&resp(&["SUBSCRIBE", "abc", "def"]));
    read_words(&mut a);
    read_words(&mut a);
    b.send(&resp(&["SUBSCRIBE", "abc"]));
    read_words(&mut b);
    b.send(&resp(&["PSUBSCRIBE", "a*", "a*", "b*"]));
    for _ in 0..3 {
        read_words(&mut b);
    }
    // NUMSUB returns numbers, not strings; patterns do not count.
    assert_eq!(
        show(&c.cmd(&["PUBSUB", "NUMSUB", "abc", "def", "ghi"])),
        "*6\r\n$3\r\nabc\r\n:2\r\n$3\r\ndef\r\n:1\r\n$3\r\nghi\r\n:0\r\n"
    );
    assert_eq!(c.cmd(&["PUBSUB", "NUMPAT"]), b":2\r\n");
    let mut channels: Vec<String> = words(&c.cmd(&["PUBSUB", "CHANNELS"]))
        .split(' ')
        .map(str::to_string)
        .collect();
    channels.sort();
    assert_eq!(channels, ["abc", "def"]);
    assert_eq!(words(&c.cmd(&["PUBSUB", "CHANNELS", "d*"])), "def");
    assert_eq!(c.cmd(&["PUBSUB", "NUMSUB"]), b"*0\r\n");
    assert_eq!(
        show(&c.cmd(&["PUBSUB", "NOPE"])),
        "-ERR unknown subcommand 'NOPE'. Try PUBSUB HELP.\r\n"
    );
    assert_eq!(
        show(&c.cmd(&["PUBSUB", "NUMPAT", "x"])),
        "-ERR wrong number of arguments for 'pubsub|numpat' command\r\n"
    );
    let info = show(&c.cmd(&["INFO", "stats"]));
    assert!(info.contains("pubsub_channels:2\r\n"), "{info}");
    assert!(info.contains("pubsub_patterns:2\r\n"), "{info}");
    let list = show(&c.cmd(&["CLIENT", "LIST"]));
    assert!(list.contains("flags=P db=0 sub=1 psub=2 ssub=0"), "{list}");
}

#[test]
fn a_subscribed_resp2_client_may_only_send_pubsub_commands_ping_quit_reset() {
    let server = Server::start();
    let mut sub = server.raw();
    sub.send(&resp(&["SUBSCRIBE", "ch"]));
    read_words(&mut sub);
    assert_eq!(
        show(&sub.cmd(&["GET", "k"])),
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
    );
    assert_eq!(
        show(&sub.cmd(&["CLIENT", "ID"])),
        "-ERR Can't execute 'client|id': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
    );
    assert_eq!(
        show(&sub.cmd(&["HELLO", "3"])),
        "-ERR Can't execute 'hello': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
    );
    // PING is answered as a `pong` message.
    assert_eq!(sub.cmd(&["PING"]), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert_eq!(sub.cmd(&["PING", "hi"]), b"*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");
    // RESET leaves every subscription and answers +RESET.
    assert_eq!(sub.cmd(&["RESET"]), b"+RESET\r\n");
    assert_eq!(sub.cmd(&["PING"]), b"+PONG\r\n");
    let mut other = server.raw();
    assert_eq!(publish(&mut other, "ch", "x"), ":0\r\n");
    // QUIT is allowed while subscribed.
    sub.send(&resp(&["SUBSCRIBE", "ch"]));
    read_words(&mut sub);
    assert_eq!(sub.cmd(&["QUIT"]), b"+OK\r\n");
    assert!(sub.is_closed());
    assert!(eventually(Duration::from_secs(5), || {
        other.cmd(&["PUBSUB", "NUMSUB", "ch"]).ends_with(b":0\r\n")
    }));
}

#[test]
fn resp3_subscribers_get_push_frames_and_may_send_any_command() {
    let server = Server::start();
    let mut sub = server.raw();
    sub.cmd(&["HELLO", "3"]);
    sub.send(&resp(&["SUBSCRIBE", "ch"]));
    assert_eq!(
        show(&sub.read_reply()),
        ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
    );
    assert_eq!(sub.cmd(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(sub.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    assert_eq!(sub.cmd(&["PING"]), b"+PONG\r\n");
    let mut other = server.raw();
    assert_eq!(publish(&mut other, "ch", "hi"), ":1\r\n");
    assert_eq!(
        show(&sub.read_reply()),
        ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
    );
    sub.send(&resp(&["PSUBSCRIBE", "c*"]));
    assert_eq!(
        show(&sub.read_reply()),
        ">3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:2\r\n"
    );
    assert_eq!(publish(&mut other, "cx", "p"), ":1\r\n");
    assert_eq!(
        show(&sub.read_reply()),
        ">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\ncx\r\n$1\r\np\r\n"
    );
    // HELLO 2 turns the subscribed client back into a restricted RESP2 one.
    sub.cmd(&["HELLO", "2"]);
    assert!(show(&sub.cmd(&["GET", "k"])).starts_with("-ERR Can't execute 'get'"));
}

#[test]
fn publish_to_self_inside_multi_arrives_after_the_exec_reply() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["HELLO", "3"]);
    c.send(&resp(&["SUBSCRIBE", "foo"]));
    c.read_reply();
    assert_eq!(c.cmd(&["MULTI"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["PING", "abc"]), b"+QUEUED\r\n");
    assert_eq!(c.cmd(&["PUBLISH", "foo", "bar"]), b"+QUEUED\r\n");
    assert_eq!(c.cmd(&["PUBLISH", "foo", "vaz"]), b"+QUEUED\r\n");
    assert_eq!(c.cmd(&["PING", "def"]), b"+QUEUED\r\n");
    assert_eq!(words(&c.cmd(&["EXEC"])), "abc 1 1 def");
    assert_eq!(words(&c.read_reply()), "message foo bar");
    assert_eq!(words(&c.read_reply()), "message foo vaz");
}

#[test]
fn shard_channels_are_their_own_namespace() {
    let server = Server::start();
    let mut publisher = server.raw();
    let mut sub = server.raw();
    sub.send(&resp(&["SSUBSCRIBE", "chan1", "chan2"]));
    assert_eq!(read_words(&mut sub), "ssubscribe chan1 1");
    assert_eq!(read_words(&mut sub), "ssubscribe chan2 2");
    assert_eq!(show(&publisher.cmd(&["SPUBLISH", "chan1", "hello"])), ":1\r\n");
    assert_eq!(read_words(&mut sub), "smessage chan1 hello");
    // A plain PUBLISH does not reach shard subscribers, nor SPUBLISH plain ones.
    assert_eq!(publish(&mut publisher, "chan1", "x"), ":0\r\n");
    let mut plain = server.raw();
    plain.send(&resp(&["SUBSCRIBE", "chan3"]));
    read_words(&mut plain);
    assert_eq!(publisher.cmd(&["SPUBLISH", "chan3", "x"]), b":0\r\n");
    assert_eq!(
        words(&publisher.cmd(&["PUBSUB", "SHARDCHANNELS", "chan1"])),
        "chan1"
    );
    assert_eq!(
        show(&publisher.cmd(&["PUBSUB", "SHARDNUMSUB", "chan1", "chan3"])),
        "*4\r\n$5\r\nchan1\r\n:1\r\n$5\r\nchan3\r\n:0\r\n"
    );
    // The shard count is separate from channels and patterns.
    sub.send(&resp(&["SUBSCRIBE", "plain"]));
    assert_eq!(read_words(&mut sub), "subscribe plain 1");
    sub.send(&resp(&["SUNSUBSCRIBE", "chan1"]));
    assert_eq!(read_words(&mut sub), "sunsubscribe chan1 1");
    sub.send(&resp(&["SUNSUBSCRIBE"]));
    assert_eq!(read_words(&mut sub), "sunsubscribe chan2 0");
    assert_eq!(publisher.cmd(&["SPUBLISH", "chan2", "x"]), b":0\r\n");
    let info = show(&publisher.cmd(&["INFO", "stats"]));
    assert!(info.contains("pubsubshard_channels:0\r\n"), "{info}");
}

#[test]
fn a_text_subscriber_reads_messages_as_lines() {
    let server = Server::start();
    let mut sub = server.raw();
    sub.send(b"SUBSCRIBE news\r\n");
    assert_eq!(show(&sub.read_line()), "1) subscribe\r\n");
    assert_eq!(show(&sub.read_line()), "2) news\r\n");
    assert_eq!(show(&sub.read_line()), "3) (integer) 1\r\n");
    let mut other = server.raw();
    assert_eq!(publish(&mut other, "news", "hello world"), ":1\r\n");
    assert_eq!(show(&sub.read_line()), "1) message\r\n");
    assert_eq!(show(&sub.read_line()), "2) news\r\n");
    assert_eq!(show(&sub.read_line()), "3) hello world\r\n");
}

/// 4 publishers × 10 000 messages, 20 subscribers spread over 4 workers:
/// every subscriber gets every message once, each publisher's in order.
#[test]
fn messages_cross_workers_once_each_and_in_publish_order_per_publisher() {
    const PUBLISHERS: usize = 4;
    const MESSAGES: usize = 10_000;
    const SUBSCRIBERS: usize = 20;
    let server = Server::with_args(&["--workers", "4"]);
    let mut subs: Vec<Raw> = (0..SUBSCRIBERS)
        .map(|_| {
            let mut s = server.raw();
            s.send(&resp(&["SUBSCRIBE", "load"]));
            assert_eq!(read_words(&mut s), "subscribe load 1");
            s
        })
        .collect();
    // Least-loaded placement spreads the subscribers over every worker.
    let list = show(&server.raw().cmd(&["CLIENT", "LIST"]));
    assert!(
        list.lines().filter(|l| l.contains(" sub=1 ")).count() == SUBSCRIBERS,
        "{list}"
    );
    let readers: Vec<_> = subs
        .drain(..)
        .map(|mut s| {
            std::thread::spawn(move || {
                let mut next = [0usize; PUBLISHERS];
                for _ in 0..PUBLISHERS * MESSAGES {
                    let reply = s.read_reply();
                    let text = show(&reply);
                    let payload = text.rsplit("\r\n").nth(1).expect("payload").to_string();
                    let (p, seq) = payload.split_once(':').expect("p:seq");
                    let (p, seq): (usize, usize) = (p.parse().unwrap(), seq.parse().unwrap());
                    assert_eq!(seq, next[p], "publisher {p}: got {seq}, expected {}", next[p]);
                    next[p] += 1;
                }
                next
            })
        })
        .collect();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let mut c = server.raw();
            std::thread::spawn(move || {
                for chunk in 0..MESSAGES / 500 {
                    let mut batch = Vec::new();
                    for i in chunk * 500..(chunk + 1) * 500 {
                        batch.extend(resp(&["PUBLISH", "load", &format!("{p}:{i}")]));
                    }
                    c.send(&batch);
                    for _ in 0..500 {
                        assert_eq!(show(&c.read_reply()), format!(":{SUBSCRIBERS}\r\n"));
                    }
                }
            })
        })
        .collect();
    for p in publishers {
        p.join().expect("publisher");
    }
    for r in readers {
        assert_eq!(r.join().expect("subscriber"), [MESSAGES; PUBLISHERS]);
    }
}

/// A subscriber that never reads is disconnected at the pubsub class's
/// limit; the publisher and other clients are served meanwhile.
#[test]
fn a_subscriber_that_never_reads_is_disconnected_at_the_pubsub_limit() {
    let server = Server::with_args(&["--workers", "2"]);
    let mut admin = server.raw();
    assert_eq!(
        admin.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 1mb 512kb 60"
        ]),
        b"+OK\r\n"
    );
    let limits = show(&admin.cmd(&["CONFIG", "GET", "client-output-buffer-limit"]));
    assert!(limits.contains("pubsub 1048576 524288 60"), "{limits}");
    let rss_before = server.rss_kib();
    let mut lazy = server.raw();
    lazy.send(&resp(&["SUBSCRIBE", "flood"]));
    let mut publisher = server.raw();
    assert!(eventually(Duration::from_secs(10), || {
        publisher.cmd(&["PUBSUB", "NUMSUB", "flood"]).ends_with(b":1\r\n")
    }));
    let mut pinger = server.raw();
    let payload = "x".repeat(16 * 1024);
    let mut disconnected = false;
    // The kernel's socket buffers take some megabytes first; 256 MiB of
    // messages is far beyond them.
    for round in 0..16_384 {
        let receivers = show(&publisher.cmd(&["PUBLISH", "flood", &payload]));
        if receivers == ":0\r\n" {
            disconnected = true;
            break;
        }
        if round % 256 == 0 {
            assert_eq!(pinger.cmd(&["PING"]), b"+PONG\r\n");
        }
    }
    assert!(disconnected, "the subscriber was never disconnected");
    assert_eq!(pinger.cmd(&["PING"]), b"+PONG\r\n");
    let info = show(&admin.cmd(&["INFO", "stats"]));
    assert!(
        info.contains("client_output_buffer_limit_disconnections:1\r\n"),
        "{info}"
    );
    let growth_kib = server.rss_kib().saturating_sub(rss_before);
    assert!(growth_kib < 64 * 1024, "RSS grew by {growth_kib} KiB");
}

#[test]
fn redis_py_pubsub_listen_and_get_message() {
    if !crate::redis_py::redis_py_present() {
        return;
    }
    let server = Server::with_args(&["--workers", "2"]);
    crate::redis_py::run_python(
        &server,
        r#"
import os, threading, time, redis
port = int(os.environ["PORT"])
for protocol in (2, 3):
    r = redis.Redis(port=port, protocol=protocol)
    p = r.pubsub()
    p.subscribe("news")
    p.psubscribe("n*")
    msg = p.get_message(timeout=5)
    assert msg["type"] == "subscribe" and msg["channel"] == b"news", msg
    msg = p.get_message(timeout=5)
    assert msg["type"] == "psubscribe", msg
    other = redis.Redis(port=port, protocol=protocol)
    assert other.publish("news", "hello") == 2
    got = []
    for m in p.listen():
        if m["type"] in ("message", "pmessage"):
            got.append((m["type"], m["channel"], m["data"]))
        if len(got) == 2:
            break
    assert sorted(got) == [("message", b"news", b"hello"), ("pmessage", b"news", b"hello")], got
    assert r.pubsub_numsub("news") == [(b"news", 1)]
    assert r.pubsub_numpat() == 1
    p.unsubscribe()
    p.punsubscribe()
    p.close()
    print("ok", protocol)
"#,
    );
}
