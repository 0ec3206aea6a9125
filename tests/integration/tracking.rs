//! Client-side caching after Redis 7.0's `tests/unit/tracking.tcl`:
//! invalidations under RESP3 and through REDIRECT to a RESP2 subscriber
//! of `__redis__:invalidate`, BCAST with prefixes, OPTIN, NOLOOP,
//! FLUSHALL, the table bound, GETREDIR and TRACKINGINFO.

use crate::support::*;

fn id_of(c: &mut Raw) -> String {
    let reply = show(&c.cmd(&["CLIENT", "ID"]));
    reply.trim_start_matches(':').trim_end().to_string()
}

/// A RESP2 connection subscribed to `__redis__:invalidate`, and its id.
fn redirect_target(server: &Server) -> (Raw, String) {
    let mut target = server.raw();
    let id = id_of(&mut target);
    target.send(&resp(&["SUBSCRIBE", "__redis__:invalidate"]));
    target.read_reply();
    (target, id)
}

fn invalidated_message(key: &str) -> String {
    format!(
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n${}\r\n{key}\r\n",
        key.len()
    )
}

fn invalidated_push(key: &str) -> String {
    format!(">2\r\n$10\r\ninvalidate\r\n*1\r\n${}\r\n{key}\r\n", key.len())
}

#[test]
fn redirected_invalidations_reach_a_resp2_subscriber() {
    let server = Server::with_args(&["--workers", "2"]);
    let (mut target, id) = redirect_target(&server);
    let mut c = server.raw();
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", &id]), b"+OK\r\n");
    assert_eq!(show(&c.cmd(&["CLIENT", "GETREDIR"])), format!(":{id}\r\n"));
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["SET", "b", "1"]);
    c.cmd(&["GET", "a"]);
    c.cmd(&["GET", "b"]);
    // Another client writes a tracked key.
    let mut writer = server.raw();
    writer.cmd(&["INCR", "a"]);
    assert_eq!(show(&target.read_reply()), invalidated_message("a"));
    // Once sent, the key is forgotten until it is read again.
    writer.cmd(&["INCR", "a"]);
    writer.cmd(&["INCR", "b"]);
    assert_eq!(show(&target.read_reply()), invalidated_message("b"));
    let info = show(&writer.cmd(&["INFO", "clients"]));
    assert!(info.contains("tracking_clients:1\r\n"), "{info}");
    let list = show(&writer.cmd(&["CLIENT", "LIST"]));
    assert!(
        list.contains("flags=t ") && list.contains(&format!("redir={id} ")),
        "{list}"
    );
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "off"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["CLIENT", "GETREDIR"]), b":-1\r\n");
}

#[test]
fn resp3_clients_get_invalidate_pushes_and_noloop_skips_their_own_writes() {
    let server = Server::with_args(&["--workers", "2"]);
    let mut c = server.raw();
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "on"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["CLIENT", "GETREDIR"]), b":0\r\n");
    c.cmd(&["GET", "key1"]);
    let mut writer = server.raw();
    writer.cmd(&["SET", "key1", "v"]);
    assert_eq!(show(&c.read_reply()), invalidated_push("key1"));
    // Without NOLOOP, the client's own write invalidates too.
    c.cmd(&["GET", "key1"]);
    assert_eq!(c.cmd(&["SET", "key1", "w"]), b"+OK\r\n");
    assert_eq!(show(&c.read_reply()), invalidated_push("key1"));
    // NOLOOP: own writes are not reported; others' are.
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "on", "NOLOOP"]), b"+OK\r\n");
    c.cmd(&["GET", "key1"]);
    c.cmd(&["GET", "key2"]);
    c.cmd(&["SET", "key1", "x"]);
    writer.cmd(&["SET", "key2", "y"]);
    assert_eq!(show(&c.read_reply()), invalidated_push("key2"));
    // FLUSHALL sends the null invalidation.
    writer.cmd(&["FLUSHALL"]);
    assert_eq!(show(&c.read_reply()), ">2\r\n$10\r\ninvalidate\r\n_\r\n");
}

#[test]
fn bcast_mode_reports_every_key_under_its_prefixes() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["HELLO", "3"]);
    assert_eq!(
        show(&c.cmd(&["CLIENT", "TRACKING", "on", "PREFIX", "a:"])),
        "-ERR PREFIX option requires BCAST mode to be enabled\r\n"
    );
    assert!(
        show(&c.cmd(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a", "PREFIX", "ab"]))
            .contains("overlaps")
    );
    assert_eq!(
        c.cmd(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a:", "PREFIX", "b:"]),
        b"+OK\r\n"
    );
    let mut writer = server.raw();
    writer.cmd(&["SET", "c:1", "x"]);
    writer.cmd(&["SET", "a:1", "x"]);
    writer.cmd(&["SET", "b:1", "x"]);
    assert_eq!(show(&c.read_reply()), invalidated_push("a:1"));
    assert_eq!(show(&c.read_reply()), invalidated_push("b:1"));
    let info = show(&c.cmd(&["CLIENT", "TRACKINGINFO"]));
    assert_eq!(
        info,
        "%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$5\r\nbcast\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*2\r\n$2\r\na:\r\n$2\r\nb:\r\n"
    );
}

#[test]
fn optin_tracks_only_reads_after_caching_yes() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["HELLO", "3"]);
    assert_eq!(
        show(&c.cmd(&["CLIENT", "CACHING", "yes"])),
        "-ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled\r\n"
    );
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "on", "OPTIN"]), b"+OK\r\n");
    assert_eq!(
        show(&c.cmd(&["CLIENT", "CACHING", "no"])),
        "-ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.\r\n"
    );
    c.cmd(&["GET", "untracked"]);
    assert_eq!(c.cmd(&["CLIENT", "CACHING", "yes"]), b"+OK\r\n");
    c.cmd(&["GET", "tracked"]);
    let mut writer = server.raw();
    writer.cmd(&["SET", "untracked", "1"]);
    writer.cmd(&["SET", "tracked", "1"]);
    assert_eq!(show(&c.read_reply()), invalidated_push("tracked"));
    let info = show(&c.cmd(&["CLIENT", "TRACKINGINFO"]));
    assert!(info.contains("$5\r\noptin\r\n"), "{info}");
    assert_eq!(
        show(&c.cmd(&["CLIENT", "TRACKING", "on", "OPTOUT"])),
        "-ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.\r\n"
    );
}

#[test]
fn the_tracking_table_is_bounded_and_evicts_with_invalidations() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["HELLO", "3"]);
    c.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "1"]);
    c.cmd(&["CLIENT", "TRACKING", "on"]);
    c.cmd(&["GET", "k1"]);
    c.cmd(&["GET", "k2"]);
    // One of the two was dropped from the table, with its invalidation.
    let pushed = show(&c.read_reply());
    assert!(
        pushed == invalidated_push("k1") || pushed == invalidated_push("k2"),
        "{pushed}"
    );
    let info = show(&c.cmd(&["INFO", "stats"]));
    assert!(info.contains("tracking_total_keys:1\r\n"), "{info}");
    assert_eq!(
        show(&c.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", "99999"])),
        "-ERR The client ID you want redirect to does not exist\r\n"
    );
}

#[test]
fn a_tracked_key_that_expires_is_invalidated() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["HELLO", "3"]);
    c.cmd(&["CLIENT", "TRACKING", "on"]);
    c.cmd(&["SET", "short", "v", "PX", "50"]);
    c.cmd(&["GET", "short"]);
    // Nobody touches it: the active expiry cycle removes it and tells us.
    assert_eq!(show(&c.read_reply()), invalidated_push("short"));
}

#[test]
fn writes_made_by_a_script_invalidate_tracked_keys_and_send_keyspace_events() {
    // The hooks after a command run for the commands a script calls too.
    let server = Server::with_args(&["--workers", "2"]);
    let (mut target, id) = redirect_target(&server);
    let mut tracker = server.raw();
    assert_eq!(
        tracker.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", &id]),
        b"+OK\r\n"
    );
    tracker.cmd(&["GET", "k"]);
    let mut events = server.raw();
    events.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    events.send(&resp(&["SUBSCRIBE", "__keyevent@0__:set"]));
    events.read_reply();
    let mut writer = server.raw();
    assert_eq!(
        writer.cmd(&["EVAL", "return redis.call('SET', KEYS[1], 'v')", "1", "k"]),
        b"+OK\r\n"
    );
    assert_eq!(show(&target.read_reply()), invalidated_message("k"));
    assert_eq!(
        show(&events.read_reply()),
        show(b"*3\r\n$7\r\nmessage\r\n$18\r\n__keyevent@0__:set\r\n$1\r\nk\r\n")
    );
}
