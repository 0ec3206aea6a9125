#!/usr/bin/env python3
"""Writes the committed seed corpus (tests/fuzz/corpus/<target>/). Re-run after
changing it; libFuzzer then mutates from these. Input layout of the parser and
session targets (kvserver::fuzzing::split_input): a flags byte, a cut count,
that many little-endian u16 cut offsets, then the byte stream."""
import os, struct

HERE = os.path.dirname(os.path.abspath(__file__))


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def framed(flags, stream, cuts=()):
    assert len(cuts) <= 16, "at most 16 cuts"
    return bytes([flags, len(cuts)]) + b"".join(struct.pack("<H", c) for c in cuts) + stream


STREAMS = {
    "ping_inline": b"PING\r\n",
    "pipeline_resp": resp("SET", "a", "1") + resp("INCR", "a") + resp("GET", "a"),
    "pipeline_mixed": resp("SET", "a", "1") + b"INCR a\r\n" + resp("GET", "a") + b"GET a\n",
    "empty_lines_and_zero_counts": b"\r\n\n   \r\n*0\r\n*-1\r\nPING\r\n",
    "inline_quoting": b'SET "a b" \'c d\'\r\nGET "a b"\r\nECHO "\\x41\\n\\t\\"q\\""\r\n',
    "unbalanced_quotes": b'SET "a b\r\n',
    "binary_value": resp(b"SET", b"k", bytes(range(256))) + resp("STRLEN", "k") + resp("GET", "k"),
    "bogus_multibulk_length": b"*abc\r\n",
    "negative_bulk_length": b"*1\r\n$-1\r\n",
    "huge_bulk_length": b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870913\r\n",
    "claimed_bulk_not_sent": b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\nabc",
    "expected_dollar": b"*2\r\n$3\r\nGET\r\n:1\r\n",
    "bulk_without_crlf": b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n",
    "cr_without_lf": b"*1\r$4\r\nPING\r\n",
    "too_many_args": b"*2000000\r\n",
    "hello_auth": resp("HELLO", "3", "AUTH", "default", "pw") + resp("HSET", "h", "f", "v") + resp("HGETALL", "h"),
    "auth_then_big_bulk": resp("AUTH", "pw") + resp("SET", "k", "v" * 17000) + resp("STRLEN", "k"),
    "wrong_auth_then_big_bulk": resp("AUTH", "nope") + b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000\r\n",
    "unauthenticated_long_multibulk": b"*11\r\n",
    "noauth_commands": resp("PING") + resp("GET", "k") + b"AUTH pw\r\nPING\r\n",
    "multi_exec": resp("MULTI") + resp("SET", "a", "1") + resp("INCR", "a") + resp("EXEC") + resp("GET", "a"),
    "multi_error_discard": b"MULTI\r\nSET a\r\nINCR a\r\nEXEC\r\nMULTI\r\nPING\r\nDISCARD\r\n",
    "watch": b"WATCH a\r\nSET a 1\r\nMULTI\r\nINCR a\r\nEXEC\r\nUNWATCH\r\n",
    "quit_stops_pipeline": b"SET a 1\r\nQUIT\r\nSET b 2\r\n",
    "unknown_and_arity": resp("FOO", "a") + resp("GET") + resp("PING"),
    "strings": b"APPEND s abc\r\nSETRANGE s 10 xyz\r\nGETRANGE s 0 -1\r\nINCRBYFLOAT f 1.5\r\nDECRBY n 7\r\nMSET a 1 b 2\r\nMGET a b c\r\nGETDEL a\r\nGETSET b 3\r\nSETNX b 4\r\n",
    "keys_and_dbs": b"SET a 1\r\nSELECT 1\r\nSET b 2\r\nMOVE b 0\r\nSWAPDB 0 1\r\nDBSIZE\r\nEXISTS a b\r\nTYPE a\r\nRENAME a c\r\nDEL c\r\nFLUSHDB\r\nFLUSHALL\r\n",
    "hashes": b"HSET h a 1 b 2\r\nHINCRBY h a 5\r\nHMGET h a b c\r\nHDEL h a\r\nHLEN h\r\nHSTRLEN h b\r\nHEXISTS h b\r\nHSETNX h c 3\r\nHKEYS h\r\nHVALS h\r\n",
    "expiry": b"SET k v EX 100\r\nTTL k\r\nPEXPIRE k 1\r\nPERSIST k\r\nSET k v PX 1\r\nGET k\r\n",
    "resp3_hello": b"HELLO 3\r\n" + resp("HGETALL", "nope") + resp("GET", "nope") + resp("COMMAND", "COUNT"),
    "wrongtype": b"HSET h f v\r\nGET h\r\nINCR h\r\nAPPEND h x\r\n",
    "integer_edges": b"SET n 9223372036854775807\r\nINCR n\r\nINCRBY n -9223372036854775808\r\nSET n 01\r\nINCR n\r\n",
    "inline_crlf_mix": b"PING\nPING\r\nECHO a\nECHO b\r\n",
    "nul_and_high_bytes": b"SET \x00\xff \x80\x01\r\nGET \x00\xff\r\n",
}

# One seed per stream and target; the flags and cuts vary with the position,
# so every option is covered by several seeds (parser: 1 = unauthenticated,
# 2 = tiny limits; session: 1 = requirepass, 2 = inline-replies resp,
# 4 = memory-bound filler).
CUTS = [(), (3,), (1, 5, 9), (2, 7, 7, 30)]
PARSER = {name: (i % 4, CUTS[i % 4]) for i, name in enumerate(STREAMS)}
SESSION = {name: ((0, 1, 5, 3)[i % 4], CUTS[(i + 1) % 4]) for i, name in enumerate(STREAMS)}
# The pre-authentication seeds run with requirepass (and the unauthenticated
# parser), some cut right after the AUTH/HELLO that authenticates, where
# framing must restart under the new limits: whole and split must agree.
AUTH = len(resp("AUTH", "pw"))
HELLO = len(resp("HELLO", "3", "AUTH", "default", "pw"))
for name, cuts in [
    ("hello_auth", (HELLO,)),
    ("auth_then_big_bulk", (AUTH,)),
    ("wrong_auth_then_big_bulk", (AUTH + 2,)),
    ("noauth_commands", (5, 30)),
    ("unauthenticated_long_multibulk", ()),
]:
    SESSION[name] = (1, cuts)
    PARSER[name] = (1, cuts)
# A bulk above the session's 32 KiB "big argument" size, whose read buffer
# grows to exactly the size that completes it, pipelined between commands.
STREAMS["big_bulk_pipelined"] = resp("SET", "k", "b" * 40000) + resp("STRLEN", "k") + resp("GETRANGE", "k", "39998", "-1")
SESSION["big_bulk_pipelined"] = (0, (9, 20000, 40000))
SESSION["auth_then_big_bulk_whole"] = (5, ())
SESSION["auth_then_big_bulk_in_bytes"] = (1, (3, 10, AUTH - 1, AUTH, AUTH + 4, AUTH + 11, AUTH + 20))
STREAMS["auth_then_big_bulk_whole"] = STREAMS["auth_then_big_bulk"]
STREAMS["auth_then_big_bulk_in_bytes"] = resp("AUTH", "pw") + b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16385\r\n"


def wal_payload(kind, *parts):
    return bytes([kind]) + b"".join(parts)


def b(x):
    return struct.pack("<I", len(x)) + x


def exp(t=None):
    return b"\x00" if t is None else b"\x01" + struct.pack("<Q", t)


def frame(kind, payload):
    # Records inside a transaction carry a zero CRC (the transaction's covers them).
    return struct.pack("<I", 0) + struct.pack("<I", len(payload)) + bytes([kind]) + payload


WAL = {
    "set": wal_payload(1, b(b"k"), b(b"v"), exp()),
    "set_expiring": wal_payload(1, b(b"k"), b(b"value"), exp(1_700_000_000_000)),
    "del": wal_payload(2, b(b"k")),
    "expire": wal_payload(3, b(b"k"), exp(5)),
    "persist": wal_payload(3, b(b"k"), exp()),
    "flushall": wal_payload(4),
    "patch": wal_payload(20, b(b"k"), struct.pack("<Q", 3), b(b"abc"), struct.pack("<Q", 10), exp()),
    "patch_out_of_bounds": wal_payload(20, b(b"k"), struct.pack("<Q", 9), b(b"abc"), struct.pack("<Q", 10), exp()),
    "hash_set": wal_payload(5, b(b"h"), struct.pack("<I", 2), b(b"f1"), b(b"v1"), exp(), b(b"f2"), b(b"v2"), exp(9)),
    "hash_del": wal_payload(6, b(b"h"), struct.pack("<I", 1), b(b"f1")),
    "hash_expire": wal_payload(7, b(b"h"), struct.pack("<I", 1), b(b"f1"), exp(7)),
    "hash_no_entries": wal_payload(5, b(b"h"), struct.pack("<I", 0)),
    "select": wal_payload(10, struct.pack("<I", 3)),
    "swapdb": wal_payload(11, struct.pack("<II", 0, 1)),
    "flushdb": wal_payload(12),
    "transaction": bytes([16]) + frame(1, b(b"a") + b(b"1") + exp()) + frame(2, b(b"b")) + frame(10, struct.pack("<I", 1)),
    "transaction_nested": bytes([16]) + frame(16, b""),
    "transaction_cut_short": bytes([16]) + frame(1, b(b"a") + b(b"1") + exp())[:-3],
    "trailing_bytes": wal_payload(2, b(b"k"), b"zz"),
    "length_overrun": wal_payload(1, struct.pack("<I", 0xFFFFFFF0), b"k"),
    "unknown_kind": wal_payload(99, b"whatever"),
}


def write(target, files):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


write("parser", {n: framed(fl, STREAMS[n], cuts) for n, (fl, cuts) in PARSER.items()})
write("session", {n: framed(fl, STREAMS[n], cuts) for n, (fl, cuts) in SESSION.items()})
write("wal_record", WAL)
