//! Lists: byte-exact replies, the cases of Redis 7's `tests/unit/type/list.tcl`
//! that need no DEBUG, both encodings (one node and many), WRONGTYPE both
//! ways, and a check against a model under random operations.

use std::collections::VecDeque;

use crate::support::*;

const WRONGTYPE: &[u8] = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

fn bulk_array(items: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", items.len()).into_bytes();
    for item in items {
        out.extend_from_slice(format!("${}\r\n{item}\r\n", item.len()).as_bytes());
    }
    out
}

#[test]
fn push_pop_and_range_reply_byte_exact() {
    let server = Server::start();
    let mut c = server.raw();
    assert_eq!(c.cmd(&["RPUSH", "l", "a", "b", "c"]), b":3\r\n");
    assert_eq!(c.cmd(&["LPUSH", "l", "y", "z"]), b":5\r\n");
    assert_eq!(
        c.cmd(&["LRANGE", "l", "0", "-1"]),
        bulk_array(&["z", "y", "a", "b", "c"])
    );
    assert_eq!(c.cmd(&["LRANGE", "l", "-2", "100"]), bulk_array(&["b", "c"]));
    assert_eq!(c.cmd(&["LRANGE", "l", "3", "1"]), b"*0\r\n");
    assert_eq!(c.cmd(&["LRANGE", "nokey", "0", "-1"]), b"*0\r\n");
    assert_eq!(c.cmd(&["LLEN", "l"]), b":5\r\n");
    assert_eq!(c.cmd(&["LLEN", "nokey"]), b":0\r\n");
    assert_eq!(c.cmd(&["LINDEX", "l", "0"]), b"$1\r\nz\r\n");
    assert_eq!(c.cmd(&["LINDEX", "l", "-1"]), b"$1\r\nc\r\n");
    assert_eq!(c.cmd(&["LINDEX", "l", "5"]), b"$-1\r\n");
    assert_eq!(c.cmd(&["LPOP", "l"]), b"$1\r\nz\r\n");
    assert_eq!(c.cmd(&["RPOP", "l", "2"]), bulk_array(&["c", "b"]));
    assert_eq!(c.cmd(&["LPOP", "l", "0"]), b"*0\r\n");
    assert_eq!(c.cmd(&["LPOP", "nokey"]), b"$-1\r\n");
    assert_eq!(c.cmd(&["LPOP", "nokey", "2"]), b"*-1\r\n");
    assert_eq!(
        c.cmd(&["LPOP", "l", "-1"]),
        b"-ERR value is out of range, must be positive\r\n"
    );
    assert_eq!(
        c.cmd(&["LPOP", "l", "1", "2"]),
        b"-ERR wrong number of arguments for 'lpop' command\r\n"
    );
    // Popping the last element deletes the key.
    assert_eq!(c.cmd(&["RPOP", "l", "10"]), bulk_array(&["a", "y"]));
    assert_eq!(c.cmd(&["EXISTS", "l"]), b":0\r\n");
    assert_eq!(c.cmd(&["LPUSHX", "l", "a"]), b":0\r\n");
    assert_eq!(c.cmd(&["EXISTS", "l"]), b":0\r\n");
    assert_eq!(c.cmd(&["RPUSH", "l", "a"]), b":1\r\n");
    assert_eq!(c.cmd(&["RPUSHX", "l", "b", "c"]), b":3\r\n");
    assert_eq!(c.cmd(&["TYPE", "l"]), b"+list\r\n");
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "l"]), b"$8\r\nlistpack\r\n");
}

#[test]
fn lset_linsert_lrem_ltrim_and_lpos_follow_list_tcl() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["RPUSH", "l", "a", "b", "c", "b", "a", "b"]);
    assert_eq!(c.cmd(&["LSET", "l", "1", "B"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["LSET", "l", "-1", "END"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["LSET", "l", "10", "x"]), b"-ERR index out of range\r\n");
    assert_eq!(c.cmd(&["LSET", "nokey", "0", "x"]), b"-ERR no such key\r\n");
    assert_eq!(
        c.cmd(&["LRANGE", "l", "0", "-1"]),
        bulk_array(&["a", "B", "c", "b", "a", "END"])
    );
    assert_eq!(c.cmd(&["LINSERT", "l", "BEFORE", "c", "x"]), b":7\r\n");
    assert_eq!(c.cmd(&["LINSERT", "l", "after", "END", "y"]), b":8\r\n");
    assert_eq!(c.cmd(&["LINSERT", "l", "BEFORE", "nothere", "z"]), b":-1\r\n");
    assert_eq!(c.cmd(&["LINSERT", "nokey", "BEFORE", "a", "z"]), b":0\r\n");
    assert_eq!(
        c.cmd(&["LINSERT", "l", "MIDDLE", "a", "z"]),
        b"-ERR syntax error\r\n"
    );
    assert_eq!(
        c.cmd(&["LRANGE", "l", "0", "-1"]),
        bulk_array(&["a", "B", "x", "c", "b", "a", "END", "y"])
    );
    // LPOS: RANK, COUNT, MAXLEN (list.tcl "LPOS basic usage" and friends).
    c.cmd(&["DEL", "p"]);
    c.cmd(&["RPUSH", "p", "a", "b", "c", "1", "2", "3", "c", "c"]);
    assert_eq!(c.cmd(&["LPOS", "p", "a"]), b":0\r\n");
    assert_eq!(c.cmd(&["LPOS", "p", "c"]), b":2\r\n");
    assert_eq!(c.cmd(&["LPOS", "p", "c", "RANK", "2"]), b":6\r\n");
    assert_eq!(c.cmd(&["LPOS", "p", "c", "RANK", "-1"]), b":7\r\n");
    assert_eq!(
        c.cmd(&["LPOS", "p", "c", "COUNT", "0"]),
        b"*3\r\n:2\r\n:6\r\n:7\r\n"
    );
    assert_eq!(
        c.cmd(&["LPOS", "p", "c", "COUNT", "2", "RANK", "-1"]),
        b"*2\r\n:7\r\n:6\r\n"
    );
    assert_eq!(
        c.cmd(&["LPOS", "p", "c", "COUNT", "0", "MAXLEN", "7"]),
        b"*2\r\n:2\r\n:6\r\n"
    );
    assert_eq!(c.cmd(&["LPOS", "p", "x"]), b"$-1\r\n");
    assert_eq!(c.cmd(&["LPOS", "p", "x", "COUNT", "5"]), b"*0\r\n");
    assert!(c
        .cmd(&["LPOS", "p", "c", "RANK", "0"])
        .starts_with(b"-ERR RANK can't be zero: use 1 to start from the first match"));
    assert_eq!(
        c.cmd(&["LPOS", "p", "c", "COUNT", "-1"]),
        b"-ERR COUNT can't be negative\r\n"
    );
    assert_eq!(
        c.cmd(&["LPOS", "p", "c", "MAXLEN", "-1"]),
        b"-ERR MAXLEN can't be negative\r\n"
    );
    assert_eq!(c.cmd(&["LPOS", "p", "c", "BOGUS", "1"]), b"-ERR syntax error\r\n");
    // LREM from the head, from the tail, all.
    c.cmd(&["DEL", "r"]);
    c.cmd(&["RPUSH", "r", "x", "a", "x", "b", "x", "c", "x"]);
    assert_eq!(c.cmd(&["LREM", "r", "2", "x"]), b":2\r\n");
    assert_eq!(
        c.cmd(&["LRANGE", "r", "0", "-1"]),
        bulk_array(&["a", "b", "x", "c", "x"])
    );
    assert_eq!(c.cmd(&["LREM", "r", "-1", "x"]), b":1\r\n");
    assert_eq!(
        c.cmd(&["LRANGE", "r", "0", "-1"]),
        bulk_array(&["a", "b", "x", "c"])
    );
    assert_eq!(c.cmd(&["LREM", "r", "0", "x"]), b":1\r\n");
    assert_eq!(c.cmd(&["LREM", "nokey", "0", "x"]), b":0\r\n");
    // LTRIM, including one that empties the list (and deletes it).
    assert_eq!(c.cmd(&["LTRIM", "r", "1", "-2"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["LRANGE", "r", "0", "-1"]), bulk_array(&["b"]));
    assert_eq!(c.cmd(&["LTRIM", "r", "5", "10"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["EXISTS", "r"]), b":0\r\n");
}

#[test]
fn lmove_rpoplpush_and_lmpop_move_elements_between_lists() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["RPUSH", "src", "a", "b", "c"]);
    assert_eq!(c.cmd(&["RPOPLPUSH", "src", "dst"]), b"$1\r\nc\r\n");
    assert_eq!(c.cmd(&["LMOVE", "src", "dst", "LEFT", "RIGHT"]), b"$1\r\na\r\n");
    assert_eq!(c.cmd(&["LRANGE", "dst", "0", "-1"]), bulk_array(&["c", "a"]));
    // Rotation of one list onto itself.
    c.cmd(&["RPUSH", "rot", "1", "2", "3"]);
    assert_eq!(c.cmd(&["LMOVE", "rot", "rot", "LEFT", "RIGHT"]), b"$1\r\n1\r\n");
    assert_eq!(c.cmd(&["LRANGE", "rot", "0", "-1"]), bulk_array(&["2", "3", "1"]));
    assert_eq!(c.cmd(&["LMOVE", "nokey", "dst", "LEFT", "RIGHT"]), b"$-1\r\n");
    assert_eq!(
        c.cmd(&["LMOVE", "src", "dst", "UP", "RIGHT"]),
        b"-ERR syntax error\r\n"
    );
    // A destination of another type: nothing is popped.
    c.cmd(&["SET", "str", "x"]);
    assert_eq!(c.cmd(&["LMOVE", "src", "str", "LEFT", "LEFT"]), WRONGTYPE);
    assert_eq!(c.cmd(&["LRANGE", "src", "0", "-1"]), bulk_array(&["b"]));
    // LMPOP takes the first non-empty list.
    c.cmd(&["RPUSH", "m2", "x", "y", "z"]);
    assert_eq!(
        c.cmd(&["LMPOP", "3", "nokey", "m2", "src", "RIGHT", "COUNT", "2"]),
        b"*2\r\n$2\r\nm2\r\n*2\r\n$1\r\nz\r\n$1\r\ny\r\n"
    );
    assert_eq!(
        c.cmd(&["LMPOP", "1", "m2", "LEFT"]),
        b"*2\r\n$2\r\nm2\r\n*1\r\n$1\r\nx\r\n"
    );
    assert_eq!(c.cmd(&["LMPOP", "2", "nokey", "m2", "LEFT"]), b"*-1\r\n");
    assert_eq!(
        c.cmd(&["LMPOP", "0", "m2", "LEFT"]),
        b"-ERR numkeys should be greater than 0\r\n"
    );
    assert_eq!(c.cmd(&["LMPOP", "5", "m2", "LEFT"]), b"-ERR syntax error\r\n");
    assert_eq!(
        c.cmd(&["LMPOP", "1", "src", "LEFT", "COUNT", "0"]),
        b"-ERR count should be greater than 0\r\n"
    );
}

#[test]
fn list_commands_answer_wrongtype_and_string_commands_refuse_lists() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["SET", "s", "x"]);
    for cmd in [
        vec!["LPUSH", "s", "a"],
        vec!["RPUSH", "s", "a"],
        vec!["LPOP", "s"],
        vec!["LLEN", "s"],
        vec!["LRANGE", "s", "0", "-1"],
        vec!["LINDEX", "s", "0"],
        vec!["LSET", "s", "0", "a"],
        vec!["LREM", "s", "0", "a"],
        vec!["LTRIM", "s", "0", "1"],
        vec!["LPOS", "s", "a"],
    ] {
        assert_eq!(c.cmd(&cmd), WRONGTYPE, "{cmd:?}");
    }
    c.cmd(&["RPUSH", "l", "a"]);
    assert_eq!(c.cmd(&["GET", "l"]), WRONGTYPE);
    assert_eq!(c.cmd(&["HGET", "l", "f"]), WRONGTYPE);
    assert_eq!(c.cmd(&["APPEND", "l", "x"]), WRONGTYPE);
    // SET replaces a list, as in Redis.
    assert_eq!(c.cmd(&["SET", "l", "now a string"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["TYPE", "l"]), b"+string\r\n");
    // Keys of every type are found by SCAN TYPE and survive RENAME.
    c.cmd(&["RPUSH", "l2", "1", "2"]);
    assert_eq!(
        c.cmd(&["SCAN", "0", "TYPE", "list"]),
        b"*2\r\n$1\r\n0\r\n*1\r\n$2\r\nl2\r\n"
    );
    assert_eq!(c.cmd(&["RENAME", "l2", "l3"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["LRANGE", "l3", "0", "-1"]), bulk_array(&["1", "2"]));
}

#[test]
fn a_long_list_becomes_a_quicklist_and_agrees_with_a_model() {
    let server = Server::start();
    let mut con = server.redis();
    let mut model: VecDeque<String> = VecDeque::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for step in 0..4000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let item = format!("{step}:{}", "v".repeat((seed % 40) as usize));
        match seed % 10 {
            0..=3 => {
                let _: i64 = redis::cmd("RPUSH").arg("q").arg(&item).query(&mut con).unwrap();
                model.push_back(item);
            }
            4..=6 => {
                let _: i64 = redis::cmd("LPUSH").arg("q").arg(&item).query(&mut con).unwrap();
                model.push_front(item);
            }
            7 => {
                let got: Option<String> = redis::cmd("LPOP").arg("q").query(&mut con).unwrap();
                assert_eq!(got, model.pop_front());
            }
            8 => {
                let got: Option<String> = redis::cmd("RPOP").arg("q").query(&mut con).unwrap();
                assert_eq!(got, model.pop_back());
            }
            _ if !model.is_empty() => {
                let at = (seed >> 20) as usize % model.len();
                let _: () = redis::cmd("LSET")
                    .arg("q")
                    .arg(at)
                    .arg(&item)
                    .query(&mut con)
                    .unwrap();
                model[at] = item;
            }
            _ => {}
        }
    }
    let all: Vec<String> = redis::cmd("LRANGE")
        .arg("q")
        .arg(0)
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert_eq!(all, model.iter().cloned().collect::<Vec<_>>());
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("q")
        .query(&mut con)
        .unwrap();
    assert_eq!(encoding, "quicklist");
    let usage: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("q")
        .query(&mut con)
        .unwrap();
    let bytes: usize = model.iter().map(String::len).sum();
    assert!(
        usage as usize > bytes,
        "MEMORY USAGE {usage} for {bytes} bytes of items"
    );
}

#[test]
fn list_writes_inside_multi_are_atomic_and_watch_sees_them() {
    let server = Server::start();
    let mut c = server.raw();
    let mut other = server.raw();
    c.cmd(&["RPUSH", "q", "a"]);
    assert_eq!(c.cmd(&["WATCH", "q"]), b"+OK\r\n");
    other.cmd(&["RPUSH", "q", "b"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["LPOP", "q"]);
    assert_eq!(c.cmd(&["EXEC"]), b"*-1\r\n");
    c.cmd(&["MULTI"]);
    c.cmd(&["LPOP", "q"]);
    c.cmd(&["RPUSH", "done", "a"]);
    assert_eq!(c.cmd(&["EXEC"]), b"*2\r\n$1\r\na\r\n:1\r\n");
}

#[test]
fn copy_duplicates_lists_hashes_and_strings_with_their_ttl() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["RPUSH", "l", "a", "b"]);
    c.cmd(&["EXPIRE", "l", "1000"]);
    assert_eq!(c.cmd(&["COPY", "l", "l2"]), b":1\r\n");
    assert_eq!(c.cmd(&["LRANGE", "l2", "0", "-1"]), bulk_array(&["a", "b"]));
    let ttl = c.cmd(&["TTL", "l2"]);
    assert!(ttl == b":1000\r\n" || ttl.starts_with(b":99"), "{}", show(&ttl));
    // The copy is independent of its source.
    c.cmd(&["RPUSH", "l", "c"]);
    assert_eq!(c.cmd(&["LLEN", "l2"]), b":2\r\n");
    c.cmd(&["HSET", "h", "f", "v"]);
    assert_eq!(c.cmd(&["COPY", "h", "l2"]), b":0\r\n");
    assert_eq!(c.cmd(&["COPY", "h", "l2", "REPLACE"]), b":1\r\n");
    assert_eq!(c.cmd(&["TYPE", "l2"]), b"+hash\r\n");
    assert_eq!(c.cmd(&["TTL", "l2"]), b":-1\r\n");
    c.cmd(&["SET", "s", "v"]);
    assert_eq!(c.cmd(&["COPY", "s", "s2", "DB", "0"]), b":1\r\n");
    assert_eq!(c.cmd(&["GET", "s2"]), b"$1\r\nv\r\n");
    assert_eq!(c.cmd(&["COPY", "nosuch", "x"]), b":0\r\n");
    assert_eq!(
        c.cmd(&["COPY", "s", "s"]),
        b"-ERR source and destination objects are the same\r\n"
    );
    assert_eq!(
        c.cmd(&["COPY", "s", "x", "DB", "99"]),
        b"-ERR DB index is out of range\r\n"
    );
    assert_eq!(c.cmd(&["COPY", "s", "x", "BOGUS"]), b"-ERR syntax error\r\n");
}

/// Redis's sort.tcl basics: numeric and ALPHA order, DESC, LIMIT, BY with
/// `*` and `->field`, GET with `#`, a constant BY (no sort), STORE.
#[test]
fn sort_orders_lists_by_value_or_by_weight_keys_and_stores_the_result() {
    let server = Server::start();
    let mut c = server.raw();
    c.cmd(&["RPUSH", "l", "3", "1", "10", "2"]);
    assert_eq!(c.cmd(&["SORT", "l"]), bulk_array(&["1", "2", "3", "10"]));
    assert_eq!(c.cmd(&["SORT", "l", "DESC"]), bulk_array(&["10", "3", "2", "1"]));
    assert_eq!(c.cmd(&["SORT", "l", "ALPHA"]), bulk_array(&["1", "10", "2", "3"]));
    assert_eq!(c.cmd(&["SORT", "l", "LIMIT", "1", "2"]), bulk_array(&["2", "3"]));
    assert_eq!(
        c.cmd(&["SORT_RO", "l", "LIMIT", "-5", "-1"]),
        bulk_array(&["1", "2", "3", "10"])
    );
    for (id, w) in [("3", "30"), ("1", "50"), ("10", "10"), ("2", "20")] {
        c.cmd(&["SET", &format!("w_{id}"), w]);
        c.cmd(&["HSET", &format!("o_{id}"), "name", &format!("n{id}")]);
    }
    assert_eq!(
        c.cmd(&["SORT", "l", "BY", "w_*"]),
        bulk_array(&["10", "2", "3", "1"])
    );
    assert_eq!(
        c.cmd(&[
            "SORT",
            "l",
            "BY",
            "w_*",
            "GET",
            "#",
            "GET",
            "o_*->name",
            "LIMIT",
            "0",
            "2"
        ]),
        bulk_array(&["10", "n10", "2", "n2"])
    );
    assert_eq!(
        c.cmd(&["SORT", "l", "BY", "nosort"]),
        bulk_array(&["3", "1", "10", "2"])
    );
    assert_eq!(
        c.cmd(&["SORT", "l", "GET", "missing_*"]),
        b"*4\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n"
    );
    assert_eq!(c.cmd(&["SORT", "l", "STORE", "sorted"]), b":4\r\n");
    assert_eq!(
        c.cmd(&["LRANGE", "sorted", "0", "-1"]),
        bulk_array(&["1", "2", "3", "10"])
    );
    assert_eq!(c.cmd(&["SORT", "nosuch", "STORE", "sorted"]), b":0\r\n");
    assert_eq!(c.cmd(&["EXISTS", "sorted"]), b":0\r\n");
    assert_eq!(c.cmd(&["SORT", "nosuch"]), b"*0\r\n");
    c.cmd(&["RPUSH", "words", "b", "a"]);
    assert_eq!(
        c.cmd(&["SORT", "words"]),
        b"-ERR One or more scores can't be converted into double\r\n"
    );
    assert_eq!(
        c.cmd(&["SORT_RO", "words", "STORE", "x"]),
        b"-ERR syntax error\r\n"
    );
    c.cmd(&["SET", "str", "1"]);
    assert_eq!(c.cmd(&["SORT", "str"]), WRONGTYPE);
}
