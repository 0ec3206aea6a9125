//! Conversions between replies and Lua values, as Redis 7 documents them.
//!
//! Reply → Lua (what `redis.call` returns): integer → number, bulk/simple
//! string → string (status as `{ok=...}`), error → `{err=...}`, nil bulk and
//! nil array → `false`, array → table; under RESP3 also map → table of
//! pairs (`{map=...}`), set → `{set=...}`, null → nil, double →
//! `{double=n}`, boolean → boolean, big number → `{big_number=s}`,
//! verbatim → `{verbatim_string={format=..., string=...}}`.
//!
//! Lua → reply (what the client gets): string → bulk, number → integer
//! (truncated), `true` → 1 (RESP3: true), `false`/nil → nil (RESP3 false for
//! false), table with `err`/`ok` → error/status, `double`, `map`, `set`,
//! `big_number`, `verbatim_string`, otherwise an array up to the first nil.

use mlua::{Lua, Table, Value};

use crate::protocol::Replies;

/// Deepest nesting converted either way (deeper is refused, never a crash).
const MAX_DEPTH: usize = 1000;

/// Parses one RESP2/RESP3 reply from `bytes` (which the executor wrote)
/// into a Lua value.
pub fn reply_to_lua(lua: &Lua, bytes: &[u8]) -> mlua::Result<Value> {
    let mut pos = 0;
    parse(lua, bytes, &mut pos, 0)
}

fn line<'b>(bytes: &'b [u8], pos: &mut usize) -> mlua::Result<&'b [u8]> {
    let rest = &bytes[*pos..];
    let end = rest
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| mlua::Error::RuntimeError("truncated reply".into()))?;
    *pos += end + 2;
    Ok(&rest[..end])
}

fn number(text: &[u8]) -> mlua::Result<i64> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| mlua::Error::RuntimeError("bad reply length".into()))
}

fn bulk<'b>(bytes: &'b [u8], pos: &mut usize, len: i64) -> mlua::Result<&'b [u8]> {
    let len = usize::try_from(len).map_err(|_| mlua::Error::RuntimeError("bad bulk length".into()))?;
    let body = bytes
        .get(*pos..*pos + len)
        .ok_or_else(|| mlua::Error::RuntimeError("truncated reply".into()))?;
    *pos += len + 2;
    Ok(body)
}

fn single(lua: &Lua, field: &str, value: Value) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, value)?;
    Ok(Value::Table(t))
}

fn parse(lua: &Lua, bytes: &[u8], pos: &mut usize, depth: usize) -> mlua::Result<Value> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::RuntimeError("reply nested too deeply".into()));
    }
    let marker = *bytes
        .get(*pos)
        .ok_or_else(|| mlua::Error::RuntimeError("empty reply".into()))?;
    *pos += 1;
    let head = line(bytes, pos)?;
    Ok(match marker {
        b':' => Value::Number(number(head)? as f64),
        b'+' => single(lua, "ok", Value::String(lua.create_string(head)?))?,
        b'-' => single(lua, "err", Value::String(lua.create_string(head)?))?,
        b'$' => match number(head)? {
            -1 => Value::Boolean(false),
            n => Value::String(lua.create_string(bulk(bytes, pos, n)?)?),
        },
        b'*' | b'~' => match number(head)? {
            -1 => Value::Boolean(false),
            n => {
                let t = lua.create_table()?;
                for i in 0..n {
                    let v = parse(lua, bytes, pos, depth + 1)?;
                    if marker == b'~' {
                        t.raw_set(v, true)?;
                    } else {
                        t.raw_set(i + 1, v)?;
                    }
                }
                if marker == b'~' {
                    single(lua, "set", Value::Table(t))?
                } else {
                    Value::Table(t)
                }
            }
        },
        b'%' => {
            let n = number(head)?;
            let t = lua.create_table()?;
            for _ in 0..n {
                let k = parse(lua, bytes, pos, depth + 1)?;
                let v = parse(lua, bytes, pos, depth + 1)?;
                t.raw_set(k, v)?;
            }
            single(lua, "map", Value::Table(t))?
        }
        b'_' => Value::Nil,
        b'#' => Value::Boolean(head == b"t"),
        b',' => {
            let text = String::from_utf8_lossy(head);
            let d = match &*text {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" => f64::NAN,
                s => s.parse().unwrap_or(0.0),
            };
            single(lua, "double", Value::Number(d))?
        }
        b'(' => single(lua, "big_number", Value::String(lua.create_string(head)?))?,
        b'=' => {
            let body = bulk(bytes, pos, number(head)?)?;
            let (format, text) = if body.len() >= 4 && body[3] == b':' {
                (&body[..3], &body[4..])
            } else {
                (&b"txt"[..], body)
            };
            let inner = lua.create_table()?;
            inner.raw_set("format", lua.create_string(format)?)?;
            inner.raw_set("string", lua.create_string(text)?)?;
            single(lua, "verbatim_string", Value::Table(inner))?
        }
        b'>' => {
            // A push never reaches a script; skip it as an array.
            let n = number(head)?;
            let t = lua.create_table()?;
            for i in 0..n {
                t.raw_set(i + 1, parse(lua, bytes, pos, depth + 1)?)?;
            }
            Value::Table(t)
        }
        _ => return Err(mlua::Error::RuntimeError("unknown reply type".into())),
    })
}

/// Writes the Lua value `value` (a script's result) as a reply to `out`, in
/// `out`'s style. `resp3_script` is the protocol the script chose with
/// `redis.setresp` (booleans are converted by it, as in Redis).
pub fn lua_to_reply(value: &Value, out: &mut Replies, resp3_script: bool) {
    to_reply(value, out, resp3_script, 0)
}

fn table_str(t: &Table, field: &str) -> Option<mlua::String> {
    match t.raw_get::<Value>(field) {
        Ok(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn to_reply(value: &Value, out: &mut Replies, resp3: bool, depth: usize) {
    if depth > MAX_DEPTH {
        out.error("ERR reached lua stack limit");
        return;
    }
    match value {
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Boolean(b) => {
            if resp3 {
                out.boolean(*b);
            } else if *b {
                out.int(1);
            } else {
                out.nil();
            }
        }
        Value::Integer(n) => out.int(*n),
        Value::Number(n) => out.int(*n as i64),
        Value::Table(t) => {
            if let Some(err) = table_str(t, "err") {
                let msg = String::from_utf8_lossy(&err.as_bytes()).into_owned();
                // Redis trims a leading '-'; an error reply always has a code.
                let msg = msg.trim_start_matches('-');
                out.error(msg);
                return;
            }
            if let Some(ok) = table_str(t, "ok") {
                out.simple(&String::from_utf8_lossy(&ok.as_bytes()));
                return;
            }
            if let Ok(Value::Number(d)) = t.raw_get::<Value>("double") {
                out.double(d);
                return;
            }
            if let Ok(Value::Integer(d)) = t.raw_get::<Value>("double") {
                out.double(d as f64);
                return;
            }
            if let Some(n) = table_str(t, "big_number") {
                out.big_number(&String::from_utf8_lossy(&n.as_bytes()));
                return;
            }
            if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string") {
                let text = table_str(&v, "string")
                    .map(|s| s.as_bytes().to_vec())
                    .unwrap_or_default();
                out.verbatim(&text);
                return;
            }
            if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
                let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().filter_map(Result::ok).collect();
                out.map(pairs.len());
                for (k, v) in &pairs {
                    to_reply(k, out, resp3, depth + 1);
                    to_reply(v, out, resp3, depth + 1);
                }
                return;
            }
            if let Ok(Value::Table(s)) = t.raw_get::<Value>("set") {
                let members: Vec<Value> = s
                    .pairs::<Value, Value>()
                    .filter_map(Result::ok)
                    .map(|(k, _)| k)
                    .collect();
                out.set(members.len());
                for k in &members {
                    to_reply(k, out, resp3, depth + 1);
                }
                return;
            }
            let mut items = Vec::new();
            for i in 1.. {
                match t.raw_get::<Value>(i) {
                    Ok(Value::Nil) | Err(_) => break,
                    Ok(v) => items.push(v),
                }
            }
            out.array(items.len());
            for v in &items {
                to_reply(v, out, resp3, depth + 1);
            }
        }
        _ => out.nil(),
    }
}
