//! Numbered databases: SELECT, SWAPDB, MOVE, FLUSHDB/FLUSHALL and the
//! per-database views (DBSIZE, KEYS, SCAN, RANDOMKEY, INFO keyspace, CLIENT INFO).

use crate::support::{Raw, Server};

fn ok(raw: &mut Raw, args: &[&str]) {
    assert_eq!(raw.cmd(args), b"+OK\r\n", "{args:?}");
}

#[test]
fn each_database_is_a_separate_keyspace() {
    let server = Server::start();
    let mut a = server.raw();
    let mut b = server.raw();
    ok(&mut a, &["SET", "k", "zero"]);
    ok(&mut b, &["SELECT", "1"]);
    assert_eq!(b.cmd(&["GET", "k"]), b"$-1\r\n");
    ok(&mut b, &["SET", "k", "one"]);
    ok(&mut b, &["MSET", "x", "1", "y", "2"]);
    assert_eq!(a.cmd(&["GET", "k"]), b"$4\r\nzero\r\n");
    assert_eq!(b.cmd(&["GET", "k"]), b"$3\r\none\r\n");
    assert_eq!(a.cmd(&["DBSIZE"]), b":1\r\n");
    assert_eq!(b.cmd(&["DBSIZE"]), b":3\r\n");
    assert_eq!(a.cmd(&["KEYS", "*"]), b"*1\r\n$1\r\nk\r\n");
    assert_eq!(a.cmd(&["SCAN", "0"]), b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n");
    assert_eq!(a.cmd(&["RANDOMKEY"]), b"$1\r\nk\r\n");
    assert_eq!(a.cmd(&["EXISTS", "x"]), b":0\r\n");
    // Each connection keeps its own selection.
    ok(&mut a, &["SELECT", "1"]);
    assert_eq!(a.cmd(&["GET", "x"]), b"$1\r\n1\r\n");
    ok(&mut a, &["SELECT", "15"]);
    assert_eq!(a.cmd(&["DBSIZE"]), b":0\r\n");
    assert_eq!(a.cmd(&["RANDOMKEY"]), b"$-1\r\n");
}

#[test]
fn select_rejects_what_redis_rejects() {
    let server = Server::start();
    let mut raw = server.raw();
    assert_eq!(raw.cmd(&["SELECT", "16"]), b"-ERR DB index is out of range\r\n");
    assert_eq!(raw.cmd(&["SELECT", "-1"]), b"-ERR DB index is out of range\r\n");
    assert_eq!(
        raw.cmd(&["SELECT", "one"]),
        b"-ERR value is not an integer or out of range\r\n"
    );
    let small = Server::with_args(&["--databases", "2"]);
    let mut raw = small.raw();
    ok(&mut raw, &["SELECT", "1"]);
    assert_eq!(raw.cmd(&["SELECT", "2"]), b"-ERR DB index is out of range\r\n");
    assert_eq!(
        raw.cmd(&["CONFIG", "GET", "databases"]),
        b"*2\r\n$9\r\ndatabases\r\n$1\r\n2\r\n"
    );
}

#[test]
fn swapdb_exchanges_contents_for_every_connected_client() {
    let server = Server::start();
    let mut zero = server.raw();
    let mut two = server.raw();
    ok(&mut two, &["SELECT", "2"]);
    ok(&mut zero, &["SET", "who", "was-zero"]);
    ok(&mut two, &["SET", "who", "was-two"]);
    ok(&mut two, &["SET", "only-two", "x"]);
    ok(&mut zero, &["SWAPDB", "0", "2"]);
    assert_eq!(zero.cmd(&["GET", "who"]), b"$7\r\nwas-two\r\n");
    assert_eq!(zero.cmd(&["DBSIZE"]), b":2\r\n");
    assert_eq!(two.cmd(&["GET", "who"]), b"$8\r\nwas-zero\r\n");
    // Writes after the swap go to the swapped database.
    ok(&mut two, &["SET", "after", "1"]);
    assert_eq!(two.cmd(&["DBSIZE"]), b":2\r\n");
    ok(&mut zero, &["SWAPDB", "1", "1"]);
    assert_eq!(
        zero.cmd(&["SWAPDB", "0", "16"]),
        b"-ERR DB index is out of range\r\n"
    );
    assert_eq!(
        zero.cmd(&["SWAPDB", "a", "1"]),
        b"-ERR invalid first DB index\r\n"
    );
    assert_eq!(
        zero.cmd(&["SWAPDB", "1", "b"]),
        b"-ERR invalid second DB index\r\n"
    );
}

#[test]
fn move_transfers_value_and_ttl_unless_the_target_has_the_key() {
    let server = Server::start();
    let mut raw = server.raw();
    ok(&mut raw, &["SET", "k", "v", "EX", "1000"]);
    ok(&mut raw, &["SET", "taken", "here"]);
    assert_eq!(raw.cmd(&["MOVE", "k", "3"]), b":1\r\n");
    assert_eq!(raw.cmd(&["EXISTS", "k"]), b":0\r\n");
    assert_eq!(raw.cmd(&["MOVE", "missing", "3"]), b":0\r\n");
    ok(&mut raw, &["SELECT", "3"]);
    assert_eq!(raw.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
    let ttl = String::from_utf8(raw.cmd(&["TTL", "k"])).unwrap();
    let ttl: i64 = ttl.trim_start_matches(':').trim().parse().unwrap();
    assert!((990..=1000).contains(&ttl), "{ttl}");
    ok(&mut raw, &["SET", "taken", "there"]);
    ok(&mut raw, &["SELECT", "0"]);
    assert_eq!(raw.cmd(&["MOVE", "taken", "3"]), b":0\r\n");
    assert_eq!(raw.cmd(&["GET", "taken"]), b"$4\r\nhere\r\n");
    assert_eq!(
        raw.cmd(&["MOVE", "taken", "0"]),
        b"-ERR source and destination objects are the same\r\n"
    );
    assert_eq!(
        raw.cmd(&["MOVE", "taken", "99"]),
        b"-ERR DB index is out of range\r\n"
    );
    assert_eq!(
        raw.cmd(&["MOVE", "taken", "x"]),
        b"-ERR value is not an integer or out of range\r\n"
    );
}

#[test]
fn flushdb_empties_one_database_and_flushall_every_one() {
    let server = Server::start();
    let mut raw = server.raw();
    ok(&mut raw, &["SET", "a", "1"]);
    ok(&mut raw, &["SELECT", "5"]);
    ok(&mut raw, &["SET", "b", "2"]);
    ok(&mut raw, &["SELECT", "6"]);
    ok(&mut raw, &["SET", "c", "3"]);
    ok(&mut raw, &["FLUSHDB"]);
    assert_eq!(raw.cmd(&["DBSIZE"]), b":0\r\n");
    ok(&mut raw, &["SELECT", "5"]);
    assert_eq!(raw.cmd(&["DBSIZE"]), b":1\r\n");
    ok(&mut raw, &["FLUSHALL"]);
    assert_eq!(raw.cmd(&["DBSIZE"]), b":0\r\n");
    ok(&mut raw, &["SELECT", "0"]);
    assert_eq!(raw.cmd(&["DBSIZE"]), b":0\r\n");
}

#[test]
fn info_keyspace_has_one_line_per_non_empty_database_and_client_info_shows_db() {
    let server = Server::start();
    let mut raw = server.raw();
    ok(&mut raw, &["SET", "a", "1"]);
    ok(&mut raw, &["SELECT", "7"]);
    ok(&mut raw, &["SET", "b", "2", "EX", "100"]);
    ok(&mut raw, &["SET", "c", "3"]);
    let info = String::from_utf8(raw.cmd(&["INFO", "keyspace"])).unwrap();
    assert!(info.contains("db0:keys=1,expires=0,avg_ttl=0\r\n"), "{info}");
    assert!(info.contains("db7:keys=2,expires=1,avg_ttl=0\r\n"), "{info}");
    assert_eq!(info.matches(":keys=").count(), 2, "{info}");
    let client = String::from_utf8(raw.cmd(&["CLIENT", "INFO"])).unwrap();
    assert!(client.contains(" db=7 "), "{client}");
}

#[test]
fn a_redis_url_with_a_database_number_selects_it() {
    let server = Server::start();
    let one = redis::Client::open(format!("redis://127.0.0.1:{}/1", server.port)).unwrap();
    let mut one = one.get_connection().unwrap();
    redis::cmd("SET").arg("k").arg("in-one").exec(&mut one).unwrap();
    let mut zero = server.redis();
    let missing: Option<String> = redis::cmd("GET").arg("k").query(&mut zero).unwrap();
    assert_eq!(missing, None);
    let mut raw = server.raw();
    ok(&mut raw, &["SELECT", "1"]);
    assert_eq!(raw.cmd(&["GET", "k"]), b"$6\r\nin-one\r\n");
}

#[test]
fn redis_cli_dash_n_talks_to_that_database() {
    let Ok(output) = std::process::Command::new("redis-cli").arg("--version").output() else {
        eprintln!("redis-cli not installed: skipping");
        return;
    };
    assert!(output.status.success());
    let server = Server::start();
    let port = server.port.to_string();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &port])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(cli(&["-n", "4", "SET", "k", "four"]), "OK");
    assert_eq!(cli(&["-n", "4", "GET", "k"]), "four");
    assert_eq!(cli(&["GET", "k"]), "");
}

#[test]
fn a_transaction_may_select_move_swap_and_flush_databases() {
    let server = Server::start();
    let mut raw = server.raw();
    ok(&mut raw, &["SET", "a", "0"]);
    ok(&mut raw, &["MULTI"]);
    for cmd in [
        &["SELECT", "2"][..],
        &["SET", "b", "2"],
        &["MOVE", "b", "3"],
        &["SWAPDB", "3", "4"],
        &["SELECT", "4"],
        &["GET", "b"],
        &["DBSIZE"],
    ] {
        assert_eq!(raw.cmd(cmd), b"+QUEUED\r\n", "{cmd:?}");
    }
    assert_eq!(
        raw.cmd(&["EXEC"]),
        b"*7\r\n+OK\r\n+OK\r\n:1\r\n+OK\r\n+OK\r\n$1\r\n2\r\n:1\r\n"
    );
    // The SELECT inside the transaction stays in effect, as in Redis.
    assert_eq!(raw.cmd(&["GET", "b"]), b"$1\r\n2\r\n");
    ok(&mut raw, &["SELECT", "0"]);
    assert_eq!(raw.cmd(&["GET", "a"]), b"$1\r\n0\r\n");
    // A watched key in another database is still checked.
    ok(&mut raw, &["WATCH", "a"]);
    ok(&mut raw, &["SELECT", "4"]);
    let mut other = server.raw();
    ok(&mut other, &["SET", "a", "changed"]);
    ok(&mut raw, &["MULTI"]);
    assert_eq!(raw.cmd(&["FLUSHALL"]), b"+QUEUED\r\n");
    assert_eq!(raw.cmd(&["EXEC"]), b"*-1\r\n");
    assert_eq!(raw.cmd(&["DBSIZE"]), b":1\r\n");
    ok(&mut raw, &["MULTI"]);
    assert_eq!(raw.cmd(&["FLUSHALL"]), b"+QUEUED\r\n");
    assert_eq!(raw.cmd(&["EXEC"]), b"*1\r\n+OK\r\n");
    assert_eq!(raw.cmd(&["DBSIZE"]), b":0\r\n");
    ok(&mut raw, &["SELECT", "0"]);
    assert_eq!(raw.cmd(&["DBSIZE"]), b":0\r\n");
}
