//! The libraries Redis bundles for scripts — `cjson`, `cmsgpack`, `bit`,
//! `struct` — reached through EVAL on the real server: the cases of Redis
//! 7.0's `tests/unit/scripting.tcl` that use them, and their protection as
//! read-only tables. (Their edge cases are unit-tested in
//! `src/scripting/libs/`.)

use crate::support::*;

fn eval(c: &mut Raw, script: &str) -> String {
    show(&c.cmd(&["EVAL", script, "0"]))
}

#[test]
fn cjson_encodes_and_decodes_as_redis() {
    let server = Server::start();
    let mut c = server.raw();
    // scripting.tcl "EVAL - JSON numeric decoding" / "string decoding".
    assert_eq!(
        eval(
            &mut c,
            "return table.concat(cjson.decode('[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]'), ' ')"
        ),
        show(b"$26\r\n0 -5000 -1 0.0003 1023.2 0\r\n")
    );
    assert_eq!(
        eval(
            &mut c,
            "local decoded = cjson.decode('{\"keya\": \"a\", \"keyb\": \"b\"}')\n\
             return {decoded.keya, decoded.keyb}"
        ),
        show(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n")
    );
    // "EVAL - JSON smoke test": encode, decode, encode again.
    let script = "local some_map = {s1=\"Some string\", n1=100, a1={\"Some\",\"String\",\"Array\"}, nil1=nil, b1=true, b2=false}\n\
                  local encoded = cjson.encode(some_map)\n\
                  local decoded = cjson.decode(encoded)\n\
                  assert(table.concat(some_map) == table.concat(decoded))\n\
                  cjson.encode_keep_buffer(false)\n\
                  encoded = cjson.encode(some_map)\n\
                  decoded = cjson.decode(encoded)\n\
                  assert(table.concat(some_map) == table.concat(decoded))\n\
                  return 'OK'";
    assert_eq!(eval(&mut c, script), show(b"$2\r\nOK\r\n"));
    assert_eq!(
        eval(&mut c, "return cjson.encode({1,2,3,'sss',{foo='bar'}})"),
        show(b"$27\r\n[1,2,3,\"sss\",{\"foo\":\"bar\"}]\r\n")
    );
    assert_eq!(
        eval(&mut c, "return cjson.decode('{\"a\":null}').a == cjson.null"),
        show(b":1\r\n")
    );
    let bad = eval(&mut c, "return cjson.decode('[1,')");
    assert!(
        bad.starts_with("-ERR") && bad.contains("Expected value but found"),
        "{bad}"
    );
}

#[test]
fn cmsgpack_packs_as_redis() {
    let server = Server::start();
    let mut c = server.raw();
    let hex = "local h = '' for i = 1, #encoded do h = h .. string.format('%02x', string.byte(encoded, i)) end return h";
    // scripting.tcl "EVAL - cmsgpack can pack double?" / "negative int64?".
    assert_eq!(
        eval(&mut c, &format!("local encoded = cmsgpack.pack(0.1) {hex}")),
        show(b"$18\r\ncb3fb999999999999a\r\n")
    );
    assert_eq!(
        eval(
            &mut c,
            &format!("local encoded = cmsgpack.pack(-1099511627776) {hex}")
        ),
        show(b"$18\r\nd3ffffff0000000000\r\n")
    );
    // A round trip of nested tables and unpack_one's offsets.
    let script = "local t = {1, 'two', {a = 3}, 4.5}\n\
                  local back = cmsgpack.unpack(cmsgpack.pack(t))\n\
                  assert(back[1] == 1 and back[2] == 'two' and back[3].a == 3 and back[4] == 4.5)\n\
                  local packed = cmsgpack.pack(1, 2)\n\
                  local offset, first = cmsgpack.unpack_one(packed)\n\
                  local last_offset, second = cmsgpack.unpack_one(packed, offset)\n\
                  return {offset, first, last_offset, second}";
    assert_eq!(eval(&mut c, script), show(b"*4\r\n:1\r\n:1\r\n:-1\r\n:2\r\n"));
}

#[test]
fn bit_and_struct_work_as_redis() {
    let server = Server::start();
    let mut c = server.raw();
    // scripting.tcl "EVAL - Able to parse trailing comments" needs none of
    // these; "bit.tohex bug" and the minimal bitop test do.
    assert_eq!(
        eval(&mut c, "return bit.tohex(65535, -4)"),
        show(b"$4\r\nFFFF\r\n")
    );
    assert_eq!(
        eval(&mut c, "return {bit.band(0xff, 0x0f), bit.bor(1, 2), bit.bxor(3, 1), bit.lshift(1, 4), bit.tobit(2^32 + 5)}"),
        show(b"*5\r\n:15\r\n:3\r\n:2\r\n:16\r\n:5\r\n")
    );
    assert_eq!(
        eval(&mut c, "local s = struct.pack('>HB', 258, 7) local a, b, nxt = struct.unpack('>HB', s) return {#s, a, b, nxt, struct.size('>HB')}"),
        show(b"*5\r\n:3\r\n:258\r\n:7\r\n:4\r\n:3\r\n")
    );
}

#[test]
fn the_libraries_are_read_only() {
    let server = Server::start();
    let mut c = server.raw();
    for script in [
        "cjson.encode = nil",
        "bit.band = nil",
        "struct.pack = nil",
        "cmsgpack.pack = nil",
    ] {
        let reply = eval(&mut c, script);
        assert!(
            reply.contains("Attempt to modify a readonly table"),
            "{script}: {reply}"
        );
    }
}
