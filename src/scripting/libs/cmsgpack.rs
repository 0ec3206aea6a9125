//! `cmsgpack`: lua-cmsgpack 0.4.0 as Redis ships it, MessagePack for Lua.
//!
//! Packing picks the smallest encoding: numbers that are whole and fit 64
//! bits are integers, other numbers are a 32-bit float when that loses
//! nothing and a double otherwise; a table is an array when its keys are
//! exactly 1..n and a map otherwise; nil, functions, userdata and threads
//! are nil; tables nested 16 deep are written as nil (which also stops
//! cycles). Unpacking turns every MessagePack value back into a Lua value
//! (integers become numbers; unsigned 64-bit values wrap to signed, as in
//! Redis).
//!
//! Unpacking keeps its own stack of open containers instead of recursing,
//! and counts the Lua stack slots the C code would use, to fail where and
//! how it fails on very deep or very long input.

use mlua::{Lua, MultiValue, Table, Value};

use super::{
    arg_fail, check_integer, check_string, fail, one, opt_integer, set_functions, spread_function, LibResult,
    ValueStack, LUA_MAX_C_STACK,
};

/// Tables nested deeper than this are packed as nil.
const MAX_NESTING: usize = 16;

/// Builds the `cmsgpack` table.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    set_functions(lua, &t, &[("pack", pack)])?;
    t.raw_set("unpack", spread_function(lua, unpack)?)?;
    t.raw_set("unpack_one", spread_function(lua, unpack_one)?)?;
    t.raw_set("unpack_limit", spread_function(lua, unpack_limit)?)?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

// ===== Packing =====

/// `cmsgpack.pack(...)`: every argument encoded, concatenated.
fn pack(lua: &Lua, args: MultiValue) -> LibResult<MultiValue> {
    if args.is_empty() {
        return arg_fail(0, "MessagePack pack needs input.");
    }
    let mut out = Vec::new();
    for v in args.iter() {
        encode(&mut out, v, 0)?;
    }
    Ok(one(Value::String(lua.create_string(&out)?)))
}

/// Encodes one value; `level` is how many tables enclose it.
fn encode(out: &mut Vec<u8>, v: &Value, level: usize) -> LibResult<()> {
    match v {
        Value::String(s) => encode_bytes(out, &s.as_bytes()),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_number(out, *i as f64),
        Value::Number(n) => encode_number(out, *n),
        Value::Table(t) if level < MAX_NESTING => encode_table(out, t, level)?,
        _ => out.push(0xc0),
    }
    Ok(())
}

/// A string: fixstr, str8, str16 or str32 header, then the bytes.
fn encode_bytes(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// A number: an integer when it is whole and within 64 bits, otherwise a
/// float32 when the conversion is exact, otherwise a double.
fn encode_number(out: &mut Vec<u8>, n: f64) {
    let fits_i64 = (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&n);
    if fits_i64 && n.trunc() == n {
        encode_int(out, n as i64);
        return;
    }
    let f = n as f32;
    if f64::from(f) == n {
        out.push(0xca);
        out.extend_from_slice(&f.to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// An integer in the smallest of MessagePack's integer encodings.
fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        match n {
            0..=127 => out.push(n as u8),
            128..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
            0x100..=0xffff => {
                out.push(0xcd);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0xce);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            _ => {
                out.push(0xcf);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A table: an array of its 1..n elements when its keys are exactly 1..n,
/// a map of all its pairs otherwise.
fn encode_table(out: &mut Vec<u8>, t: &Table, level: usize) -> LibResult<()> {
    if is_array(t)? {
        let len = t.raw_len();
        encode_container_header(out, len, 0x90, 0xdc, 0xdd);
        for i in 1..=len {
            // lua-cmsgpack reads elements with lua_gettable (metamethods on).
            let v: Value = t.get(i)?;
            encode(out, &v, level + 1)?;
        }
        return Ok(());
    }
    let mut count = 0usize;
    t.for_each(|_: Value, _: Value| {
        count += 1;
        Ok(())
    })?;
    encode_container_header(out, count, 0x80, 0xde, 0xdf);
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        encode(out, &k, level + 1)?;
        encode(out, &v, level + 1)?;
    }
    Ok(())
}

/// An array or map header: the fix form, 16-bit or 32-bit count.
fn encode_container_header(out: &mut Vec<u8>, n: usize, fix: u8, b16: u8, b32: u8) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// lua-cmsgpack's array test: every key a positive number that is a whole
/// C `int`, and as many keys as the largest one.
fn is_array(t: &Table) -> LibResult<bool> {
    let mut count: i32 = 0;
    let mut max: i32 = 0;
    for pair in t.pairs::<Value, Value>() {
        let n = match pair?.0 {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(false),
        };
        let as_int = super::c_double_to_i32(n);
        if n <= 0.0 || f64::from(as_int) != n {
            return Ok(false);
        }
        max = max.max(as_int);
        count = count.wrapping_add(1);
    }
    Ok(max == count)
}

// ===== Unpacking =====

/// Why decoding stopped, before it is reported.
enum DecodeError {
    /// The input ended inside a value.
    Eof,
    /// A byte that starts no MessagePack value.
    BadFormat,
    /// Anything else, reported as it is.
    Other(super::Failure),
}

impl From<mlua::Error> for DecodeError {
    fn from(e: mlua::Error) -> Self {
        DecodeError::Other(e.into())
    }
}

/// `cmsgpack.unpack(data)`: every value in `data`.
fn unpack(lua: &Lua, args: MultiValue) -> LibResult<ValueStack> {
    unpack_full(lua, &args, 0, 0)
}

/// `cmsgpack.unpack_one(data [, offset])`: the offset after one value (-1
/// at the end) and the value.
fn unpack_one(lua: &Lua, args: MultiValue) -> LibResult<ValueStack> {
    let offset = opt_integer(lua, &args, 2, 0)?;
    unpack_full(lua, &args, 1, offset)
}

/// `cmsgpack.unpack_limit(data, limit [, offset])`: the offset after at
/// most `limit` values (-1 at the end) and the values.
fn unpack_limit(lua: &Lua, args: MultiValue) -> LibResult<ValueStack> {
    let limit = check_integer(lua, &args, 2)?;
    let offset = opt_integer(lua, &args, 3, 0)?;
    unpack_full(lua, &args, limit, offset)
}

/// Decodes up to `limit` values from `offset`. With both zero this decodes
/// everything and returns just the values (even for `unpack_limit(s, 0)`,
/// as in lua-cmsgpack).
fn unpack_full(lua: &Lua, args: &MultiValue, limit: i64, offset: i64) -> LibResult<ValueStack> {
    let data = check_string(lua, args, 1)?;
    let data = data.as_bytes();
    let len = data.len();
    if offset < 0 || limit < 0 {
        // (lua-cmsgpack shows the input length where it means the limit.)
        return fail(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32, len as i32
        ));
    }
    if offset as u64 > len as u64 {
        return fail(format!(
            "Start offset {} greater than input length {}.",
            offset as i32, len as i32
        ));
    }
    let decode_all = limit == 0 && offset == 0;
    let limit = if decode_all { i64::from(i32::MAX) } else { limit };
    let mut results = ValueStack::new(lua)?;
    if !decode_all {
        results.push(Value::Nil)?; // the offset, filled in below
    }
    let mut d = Decoder {
        lua,
        data: &data,
        pos: offset as usize,
        current: None,
        key: Value::Nil,
        parents: ValueStack::new(lua)?,
    };
    let mut count: i64 = 0;
    while d.pos < len && count < limit {
        // The C function's stack holds the input and the values so far.
        let slots = 1 + count as usize;
        match d.value(slots) {
            Ok(v) => results.push(v)?,
            Err(DecodeError::Eof) => return fail("Missing bytes in input."),
            Err(DecodeError::BadFormat) => return fail("Bad data format in input."),
            Err(DecodeError::Other(f)) => return Err(f),
        }
        count += 1;
    }
    if !decode_all {
        if 1 + count as usize + 1 > LUA_MAX_C_STACK {
            return fail("stack overflow (in function mp_unpack_full)");
        }
        let next = if d.pos >= len { -1 } else { d.pos as i64 };
        results.set(1, Value::Integer(next))?;
    }
    Ok(results)
}

/// A container being filled. `slots` is the Lua stack slots in use where
/// the C decoder started it, which decides when `luaL_checkstack` fails.
enum Open {
    Array {
        remaining: usize,
        next: i64,
        slots: usize,
    },
    Map {
        remaining: usize,
        want_key: bool,
        slots: usize,
    },
}

impl Open {
    /// Slots in use when the C decoder reads the next element.
    fn child_slots(&self) -> usize {
        match self {
            // The table and the index pushed before the element.
            Open::Array { slots, .. } => slots + 2,
            // The table, and the key while the value is read.
            Open::Map { slots, want_key, .. } => slots + if *want_key { 1 } else { 2 },
        }
    }
}

/// Decodes MessagePack values. Only the innermost open table (and, for a
/// map, the key waiting for its value) is held in Rust; the enclosing ones
/// wait in `parents` (see [`ValueStack`]).
struct Decoder<'a> {
    lua: &'a Lua,
    data: &'a [u8],
    pos: usize,
    current: Option<Table>,
    key: Value,
    parents: ValueStack,
}

/// What the bytes at the cursor start.
enum Item {
    Value(Value),
    Array(usize),
    Map(usize),
}

impl Decoder<'_> {
    /// `n` bytes from the cursor, consumed, or end of input.
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.data.len() - self.pos < n {
            return Err(DecodeError::Eof);
        }
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    /// A big-endian unsigned number of `n` bytes (at most 8).
    fn uint(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
    }

    /// A string of `n` bytes.
    fn string(&mut self, n: usize) -> Result<Item, DecodeError> {
        let lua = self.lua;
        let bytes = self.take(n)?;
        Ok(Item::Value(Value::String(lua.create_string(bytes)?)))
    }

    /// Reads the item at the cursor: a whole scalar, or a container header.
    /// Headers are consumed only once complete, as in C.
    fn item(&mut self) -> Result<Item, DecodeError> {
        let num = |n: f64| Ok(Item::Value(Value::Number(n)));
        let first = self.data[self.pos];
        let needed = match first {
            0xcc | 0xd0 | 0xd9 => 2,
            0xcd | 0xd1 | 0xda | 0xdc | 0xde => 3,
            0xce | 0xd2 | 0xca | 0xdb | 0xdd | 0xdf => 5,
            0xcf | 0xd3 | 0xcb => 9,
            b if b & 0xe0 == 0xa0 => 1 + usize::from(b & 0x1f),
            _ => 1,
        };
        if self.data.len() - self.pos < needed {
            return Err(DecodeError::Eof);
        }
        self.pos += 1;
        match first {
            0xcc => num(self.uint(1)? as f64),
            0xcd => num(self.uint(2)? as f64),
            0xce => num(self.uint(4)? as f64),
            0xcf => num(self.uint(8)? as i64 as f64),
            0xd0 => num(f64::from(self.uint(1)? as u8 as i8)),
            0xd1 => num(f64::from(self.uint(2)? as u16 as i16)),
            0xd2 => num(f64::from(self.uint(4)? as u32 as i32)),
            0xd3 => num(self.uint(8)? as i64 as f64),
            0xc0 => Ok(Item::Value(Value::Nil)),
            0xc2 => Ok(Item::Value(Value::Boolean(false))),
            0xc3 => Ok(Item::Value(Value::Boolean(true))),
            0xca => num(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => num(f64::from_bits(self.uint(8)?)),
            0xd9 => self.string_after_header(1),
            0xda => self.string_after_header(2),
            0xdb => self.string_after_header(4),
            0xdc => Ok(Item::Array(self.uint(2)? as usize)),
            0xdd => Ok(Item::Array(self.uint(4)? as usize)),
            0xde => Ok(Item::Map(self.uint(2)? as usize)),
            0xdf => Ok(Item::Map(self.uint(4)? as usize)),
            b if b & 0x80 == 0 => num(f64::from(b)),
            b if b & 0xe0 == 0xe0 => num(f64::from(b as i8)),
            b if b & 0xe0 == 0xa0 => self.string(usize::from(b & 0x1f)),
            b if b & 0xf0 == 0x90 => Ok(Item::Array(usize::from(b & 0xf))),
            b if b & 0xf0 == 0x80 => Ok(Item::Map(usize::from(b & 0xf))),
            _ => Err(DecodeError::BadFormat),
        }
    }

    /// A str8/16/32 whose length is the next `width` bytes.
    fn string_after_header(&mut self, width: usize) -> Result<Item, DecodeError> {
        let n = self.uint(width)? as usize;
        self.string(n)
    }

    /// Decodes one complete value. `slots` is the C stack use before it.
    fn value(&mut self, slots: usize) -> Result<Value, DecodeError> {
        let mut stack: Vec<Open> = Vec::new();
        loop {
            let slots = stack.last().map_or(slots, Open::child_slots);
            if self.pos >= self.data.len() {
                return Err(DecodeError::Eof);
            }
            if slots + 1 > LUA_MAX_C_STACK {
                return Err(overflow(
                    "too many return values at once; use unpack_one or unpack_limit instead.",
                ));
            }
            let mut done = match self.item()? {
                Item::Value(v) => v,
                Item::Array(n) => {
                    let table = self.lua.create_table()?;
                    if slots + 2 > LUA_MAX_C_STACK {
                        return Err(overflow("in function mp_decode_to_lua_array"));
                    }
                    if n > 0 {
                        self.enter(table)?;
                        stack.push(Open::Array {
                            remaining: n,
                            next: 1,
                            slots,
                        });
                        continue;
                    }
                    Value::Table(table)
                }
                Item::Map(n) => {
                    let table = self.lua.create_table()?;
                    if n > 0 {
                        self.enter(table)?;
                        stack.push(Open::Map {
                            remaining: n,
                            want_key: true,
                            slots,
                        });
                        continue;
                    }
                    Value::Table(table)
                }
            };
            // Hand the value to its container, closing those it completes.
            loop {
                let Some(top) = stack.last_mut() else {
                    return Ok(done);
                };
                let Some(table) = self.current.as_ref() else {
                    return Ok(done);
                };
                let remaining = match top {
                    Open::Array { remaining, next, .. } => {
                        table.raw_set(*next, done)?;
                        *next += 1;
                        *remaining -= 1;
                        *remaining
                    }
                    Open::Map {
                        remaining, want_key, ..
                    } => {
                        if *want_key {
                            *want_key = false;
                            self.key = done;
                            break;
                        }
                        let key = std::mem::replace(&mut self.key, Value::Nil);
                        check_key(&key)?;
                        table.raw_set(key, done)?;
                        *want_key = true;
                        *remaining -= 1;
                        *remaining
                    }
                };
                if remaining > 0 {
                    break;
                }
                stack.pop();
                done = self.leave()?;
            }
        }
    }

    /// Makes `t` the table being filled, keeping the current one aside.
    fn enter(&mut self, t: Table) -> Result<(), DecodeError> {
        if let Some(parent) = self.current.replace(t) {
            self.parents.push(Value::Table(parent))?;
            let key = std::mem::replace(&mut self.key, Value::Nil);
            self.parents.push(key)?;
        }
        Ok(())
    }

    /// Closes the current table and returns it; its parent becomes current.
    fn leave(&mut self) -> Result<Value, DecodeError> {
        let done = self.current.take().map_or(Value::Nil, Value::Table);
        self.key = self.parents.pop()?;
        if let Value::Table(t) = self.parents.pop()? {
            self.current = Some(t);
        }
        Ok(done)
    }
}

/// `luaL_checkstack`'s error.
fn overflow(what: &str) -> DecodeError {
    DecodeError::Other(super::Failure::Message(format!("stack overflow ({what})")))
}

/// The errors `lua_settable` raises for keys a table cannot have.
fn check_key(key: &Value) -> Result<(), DecodeError> {
    let msg = match key {
        Value::Nil => "table index is nil",
        Value::Number(n) if n.is_nan() => "table index is NaN",
        _ => return Ok(()),
    };
    Err(DecodeError::Other(super::Failure::Message(msg.to_string())))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    /// The packed bytes of `expr` as hex.
    fn packed_hex(lua: &mlua::Lua, expr: &str) -> String {
        let s: mlua::String = eval(lua, &format!("return cmsgpack.pack({expr})"));
        s.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn redis_can_pack_double() {
        let lua = lua();
        assert_eq!(packed_hex(&lua, "0.1"), "cb3fb999999999999a");
    }

    #[test]
    fn redis_can_pack_negative_int64() {
        let lua = lua();
        assert_eq!(packed_hex(&lua, "-1099511627776"), "d3ffffff0000000000");
    }

    #[test]
    fn redis_pack_unpack_smoke_test() {
        let lua = lua();
        let () = eval(
            &lua,
            r#"
                local str_lt_32 = string.rep("x", 30)
                local str_lt_255 = string.rep("x", 250)
                local str_lt_65535 = string.rep("x", 65530)
                local str_long = string.rep("x", 100000)
                local array_lt_15 = {1, 2, 3, 4, 5}
                local array_lt_65535 = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}
                local array_big = {}
                for i=1, 100000 do
                    array_big[i] = i
                end
                local map_lt_15 = {a=1, b=2}
                local map_big = {}
                for i=1, 100000 do
                    map_big[tostring(i)] = i
                end
                local some_map = {
                    s1=str_lt_32,
                    s2=str_lt_255,
                    s3=str_lt_65535,
                    s4=str_long,
                    d1=0.1,
                    i1=1,
                    i2=250,
                    i3=65530,
                    i4=100000,
                    i5=2^40,
                    i6=-1,
                    i7=-120,
                    i8=-32000,
                    i9=-100000,
                    i10=-3147483648,
                    a1=array_lt_15,
                    a2=array_lt_65535,
                    a3=array_big,
                    m1=map_lt_15,
                    m2=map_big,
                    b1=false,
                    b2=true,
                    n=nil
                }
                local encoded = cmsgpack.pack(some_map)
                local decoded = cmsgpack.unpack(encoded)
                assert(table.concat(some_map) == table.concat(decoded))
                local offset, decoded_one = cmsgpack.unpack_one(encoded, 0)
                assert(table.concat(some_map) == table.concat(decoded_one))
                assert(offset == -1)

                local encoded_multiple = cmsgpack.pack(str_lt_32, str_lt_255, str_lt_65535, str_long)
                local offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, 0)
                assert(obj == str_lt_32)
                offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
                assert(obj == str_lt_255)
                offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
                assert(obj == str_lt_65535)
                offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
                assert(obj == str_long)
                assert(offset == -1)

                -- and the values themselves survive
                assert(decoded.a3[100000] == 100000 and #decoded.a3 == 100000)
                assert(decoded.m2["99999"] == 99999)
                assert(decoded.i5 == 2^40 and decoded.i10 == -3147483648 and decoded.d1 == 0.1)
                assert(decoded.s4 == str_long and decoded.b1 == false and decoded.b2 == true)
            "#,
        );
    }

    #[test]
    fn redis_circular_references() {
        let lua = lua();
        let (h, a, b): (String, bool, bool) = eval(
            &lua,
            r#"local a = {x=nil,y=5}
                local b = {x=a}
                a['x'] = b
                local encoded = cmsgpack.pack(a)
                local h = ""
                for i = 1, #encoded do
                    h = h .. string.format("%02x",string.byte(encoded,i))
                end
                local re = cmsgpack.unpack(encoded)
                assert(re)
                assert(re.x)
                assert(re.x.x.y == re.y)
                assert(re.x.x.x.x.y == re.y)
                assert(re.x.x.x.x.x.x.y == re.y)
                assert(re.x.x.x.x.x.x.x.x.x.x.y == re.y)
                assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.y == re.y)
                assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x)
                assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x == nil)
                return h, re.x.x.x.x.x.x.x.x.y == re.y, re.y == 5"#,
        );
        assert_eq!(h, "82a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a178c0");
        assert!(a && b);
    }

    #[test]
    fn packs_with_the_smallest_encoding() {
        let lua = lua();
        let cases = [
            ("0", "00"),
            ("127", "7f"),
            ("128", "cc80"),
            ("256", "cd0100"),
            ("65536", "ce00010000"),
            ("2^32", "cf0000000100000000"),
            ("-1", "ff"),
            ("-32", "e0"),
            ("-33", "d0df"),
            ("-129", "d1ff7f"),
            ("-32769", "d2ffff7fff"),
            ("1.5", "ca3fc00000"),
            ("2^63", "ca5f000000"),
            ("-2^63", "d38000000000000000"),
            ("1/0", "ca7f800000"),
            ("true, false, nil", "c3c2c0"),
            ("'abc'", "a3616263"),
            ("{}", "90"),
            ("{1, 2}", "920102"),
            ("{[1]=1, [3]=3}", "82010103 03".trim_end()),
            ("{a=1}", "81a16101"),
            ("print", "c0"),
        ];
        for (expr, want) in cases {
            let want = want.replace(' ', "");
            let got = packed_hex(&lua, expr);
            if expr.starts_with("{[1]") {
                // Map order is the table's; both orders are fine.
                assert!(got == "8201010303" || got == "8203030101", "{expr}: {got}");
                continue;
            }
            assert_eq!(got, want, "{expr}");
        }
        assert_eq!(packed_hex(&lua, "string.rep('x', 32)").len(), 4 + 64);
        assert!(packed_hex(&lua, "string.rep('x', 32)").starts_with("d920"));
        assert!(packed_hex(&lua, "string.rep('x', 256)").starts_with("da0100"));
        assert!(packed_hex(&lua, "string.rep('x', 65536)").starts_with("db00010000"));
    }

    #[test]
    fn unpack_types() {
        let lua = lua();
        let got: String = eval(
            &lua,
            r#"local vals = {cmsgpack.unpack("\207\255\255\255\255\255\255\255\255\208\128\209\128\000\210\128\000\000\000\202\063\192\000\000\192\195\194\145\001\129\161\097\002")}
               return tostring(vals[1]) .. ' ' .. vals[2] .. ' ' .. vals[3] .. ' ' .. vals[4] .. ' ' ..
                      vals[5] .. ' ' .. tostring(vals[6]) .. ' ' .. tostring(vals[7]) .. ' ' ..
                      tostring(vals[8]) .. ' ' .. vals[9][1] .. ' ' .. vals[10].a"#,
        );
        assert_eq!(got, "-1 -128 -32768 -2147483648 1.5 nil true false 1 2");
    }

    #[test]
    fn unpack_errors_and_limits() {
        let lua = lua();
        let cases = [
            (
                "cmsgpack.pack()",
                "bad argument #0 to 'pack' (MessagePack pack needs input.)",
            ),
            ("cmsgpack.unpack('\\205\\1')", "Missing bytes in input."),
            ("cmsgpack.unpack('\\146\\1')", "Missing bytes in input."),
            ("cmsgpack.unpack('\\193')", "Bad data format in input."),
            ("cmsgpack.unpack('\\129\\192\\1')", "table index is nil"),
            (
                "cmsgpack.unpack_one('\\1', 2)",
                "Start offset 2 greater than input length 1.",
            ),
            (
                "cmsgpack.unpack_limit('\\1', -1)",
                "Invalid request to unpack with offset of 0 and limit of 1.",
            ),
            (
                "cmsgpack.unpack(string.rep('\\1', 8000))",
                "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)",
            ),
            (
                "cmsgpack.unpack(string.rep('\\145', 5000))",
                "stack overflow (in function mp_decode_to_lua_array)",
            ),
            (
                "cmsgpack.unpack({})",
                "bad argument #1 to 'unpack' (string expected, got table)",
            ),
        ];
        for (code, want) in cases {
            assert_eq!(error_of(&lua, code), want, "{code}");
        }
        let n: i64 = eval(
            &lua,
            "return select('#', cmsgpack.unpack(string.rep('\\1', 7999)))",
        );
        assert_eq!(n, 7999);
        let got: String = eval(
            &lua,
            "local s = cmsgpack.pack(1, 2, 3)
             local o1, a, b = cmsgpack.unpack_limit(s, 2)
             local o2, c = cmsgpack.unpack_one(s, o1)
             local all = {cmsgpack.unpack_limit(s, 0)}
             local none = {cmsgpack.unpack_one('')}
             return table.concat({o1, a, b, o2, c, #all, none[1], #none}, ' ')",
        );
        assert_eq!(got, "2 1 2 -1 3 3 -1 1");
        // Deep but within the limits: 3999 nested arrays.
        let depth: i64 = eval(
            &lua,
            "local t = cmsgpack.unpack(string.rep('\\145', 3998) .. '\\144')
             local n = 0
             while t do n = n + 1; t = t[1] end
             return n",
        );
        assert_eq!(depth, 3999);
    }
}
