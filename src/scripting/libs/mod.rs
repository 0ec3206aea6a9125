//! The four Lua libraries Redis 7 gives every script: `cjson` (lua-cjson
//! 2.1.0 with Redis's patches), `cmsgpack` (lua-cmsgpack 0.4.0), `bit`
//! (LuaBitOp 1.0.2) and `struct` (Roberto Ierusalimschy's struct.c),
//! written in Rust on top of mlua with the C versions' observable behaviour:
//! the same results, the same choices of encoding and the same error
//! messages.
//!
//! Errors are raised as plain Lua strings, as the C libraries raise them, so
//! that `pcall(cjson.decode, s)` in a script gets the familiar message and
//! not an mlua error object. An mlua callback can only raise its own
//! userdata errors, so every library function is a Rust callback that
//! reports failure in-band, behind a two-line Lua wrapper ([`WRAPPER`]) that
//! turns the failure into `error(message, 0)`. Argument errors name the
//! function the way `luaL_argerror` does: by how the caller called it
//! (`bad argument #1 to 'tohex' (number expected, got nil)`).

use mlua::{Function, Lua, MultiValue, Table, Value};

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod lua_struct;

/// Installs the globals `cjson`, `cmsgpack`, `bit` and `struct` into `lua`.
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    globals.set("cjson", cjson::module(lua)?)?;
    globals.set("cmsgpack", cmsgpack::module(lua)?)?;
    globals.set("bit", bit::module(lua)?)?;
    globals.set("struct", lua_struct::module(lua)?)?;
    Ok(())
}

/// Lua 5.1's `LUAI_MAXCSTACK`: how many stack slots one C function may use.
/// The C libraries hit it (through `lua_checkstack`) on very deep nesting
/// or very many results, and the Rust versions count the slots the C code
/// would have used to fail at the same place with the same message.
pub(crate) const LUA_MAX_C_STACK: usize = 8000;

/// Why a library call failed, before it is turned into a Lua error string.
#[derive(Debug)]
pub(crate) enum Failure {
    /// `luaL_error`: the message as it is.
    Message(String),
    /// `luaL_argerror(narg, extramsg)`: the message gets the argument's
    /// number and the function's name as the caller spelled it.
    Argument(usize, String),
    /// An error of mlua itself (out of memory and the like), passed on.
    Lua(mlua::Error),
}

impl From<mlua::Error> for Failure {
    fn from(e: mlua::Error) -> Self {
        Failure::Lua(e)
    }
}

/// The result of a library function's body.
pub(crate) type LibResult<T> = Result<T, Failure>;

/// Shorthand for a `luaL_error`-style failure.
pub(crate) fn fail<T>(msg: impl Into<String>) -> LibResult<T> {
    Err(Failure::Message(msg.into()))
}

/// Shorthand for a `luaL_argerror`-style failure.
pub(crate) fn arg_fail<T>(narg: usize, msg: impl Into<String>) -> LibResult<T> {
    Err(Failure::Argument(narg, msg.into()))
}

/// Turns a Rust callback's outcome into what [`WRAPPER`] expects: `true`
/// followed by the results, or `false` and the error message.
const WRAPPER: &str = r#"
local f = ...
local error = error
local function finish(ok, ...)
  if ok then return ... end
  error((...), 0)
end
return function(...) return finish(f(...)) end
"#;

/// Like [`WRAPPER`], for functions with any number of results: the Rust side
/// hands back a table and a count (values held in Rust each take a slot of
/// mlua's limited reference stack). `unpack` takes its three arguments from
/// the C stack limit, so the last few of a near-limit result list are
/// returned by recursion instead.
const SPREAD_WRAPPER: &str = r#"
local f = ...
local error, unpack = error, unpack
local function spread(r, i, n)
  if i > n then return end
  return r[i], spread(r, i + 1, n)
end
local function finish(ok, r, n)
  if not ok then error(r, 0) end
  if n <= 7990 then return unpack(r, 1, n) end
  return spread(r, 1, n)
end
return function(...) return finish(f(...)) end
"#;

/// Makes a library function returning the values of a [`ValueStack`].
pub(crate) fn spread_function<F>(lua: &Lua, body: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, MultiValue) -> LibResult<ValueStack> + 'static,
{
    let inner = lua.create_function(move |lua, args: MultiValue| match body(lua, args) {
        Ok(results) => {
            let (table, n) = results.into_table();
            Ok(MultiValue::from_vec(vec![
                Value::Boolean(true),
                Value::Table(table),
                Value::Integer(n),
            ]))
        }
        Err(Failure::Lua(e)) => Err(e),
        Err(failure) => {
            let msg = failure_message(lua, failure);
            let msg = Value::String(lua.create_string(msg)?);
            Ok(MultiValue::from_vec(vec![Value::Boolean(false), msg]))
        }
    })?;
    let wrap: Function = lua.load(SPREAD_WRAPPER).set_name("=libwrap").into_function()?;
    wrap.call(inner)
}

/// Makes a library function from a Rust body: the body gets the Lua state
/// and the arguments exactly as passed (so "no value" and `nil` differ, as
/// `lua_gettop` tells them apart in C).
pub(crate) fn lib_function<F>(lua: &Lua, body: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, MultiValue) -> LibResult<MultiValue> + 'static,
{
    let inner = lua.create_function(move |lua, args: MultiValue| match body(lua, args) {
        Ok(mut results) => {
            results.push_front(Value::Boolean(true));
            Ok(results)
        }
        Err(Failure::Lua(e)) => Err(e),
        Err(failure) => {
            let msg = failure_message(lua, failure);
            let msg = Value::String(lua.create_string(msg)?);
            Ok(MultiValue::from_vec(vec![Value::Boolean(false), msg]))
        }
    })?;
    let wrap: Function = lua.load(WRAPPER).set_name("=libwrap").into_function()?;
    wrap.call(inner)
}

/// A stateless library function's body.
pub(crate) type LibFn = fn(&Lua, MultiValue) -> LibResult<MultiValue>;

/// Fills a table with stateless library functions.
pub(crate) fn set_functions(lua: &Lua, table: &Table, entries: &[(&str, LibFn)]) -> mlua::Result<()> {
    for &(name, body) in entries {
        table.raw_set(name, lib_function(lua, body)?)?;
    }
    Ok(())
}

/// The text of a failure, with `luaL_argerror`'s wording for argument
/// errors. The function's name comes from the caller's call site (level 1
/// is the Lua wrapper, which stands where the C function stood); `?` when
/// Lua cannot tell, as in C.
fn failure_message(lua: &Lua, failure: Failure) -> String {
    match failure {
        Failure::Message(m) => m,
        Failure::Lua(e) => e.to_string(),
        Failure::Argument(narg, extra) => {
            let (name, what) = lua
                .inspect_stack(1, |d| {
                    let n = d.names();
                    (n.name.map(|s| s.into_owned()), n.name_what)
                })
                .unwrap_or((None, None));
            let name = name.unwrap_or_else(|| "?".to_string());
            if what == Some("method") && narg > 0 {
                if narg == 1 {
                    return format!("calling '{name}' on bad self ({extra})");
                }
                return format!("bad argument #{} to '{name}' ({extra})", narg - 1);
            }
            format!("bad argument #{narg} to '{name}' ({extra})")
        }
    }
}

/// `lua_typename` of a value: light userdata is plain "userdata" there.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// `luaL_typename` of argument `narg` (1-based): "no value" past the end.
pub(crate) fn arg_type_name(args: &MultiValue, narg: usize) -> &'static str {
    args.get(narg - 1).map_or("no value", type_name)
}

/// `luaL_typerror`: "X expected, got Y".
pub(crate) fn type_fail<T>(args: &MultiValue, narg: usize, expected: &str) -> LibResult<T> {
    arg_fail(
        narg,
        format!("{expected} expected, got {}", arg_type_name(args, narg)),
    )
}

/// `lua_tonumber`: a number, or a string Lua converts to one.
pub(crate) fn to_number(lua: &Lua, v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        s @ Value::String(_) => lua.coerce_number(s.clone()).ok().flatten(),
        _ => None,
    }
}

/// `luaL_checknumber`.
pub(crate) fn check_number(lua: &Lua, args: &MultiValue, narg: usize) -> LibResult<f64> {
    match to_number(lua, args.get(narg - 1)) {
        Some(n) => Ok(n),
        None => type_fail(args, narg, "number"),
    }
}

/// `luaL_checkinteger` on 64-bit Lua 5.1: the number truncated toward zero
/// the way x86-64 does it (out of range and NaN give `i64::MIN`).
pub(crate) fn check_integer(lua: &Lua, args: &MultiValue, narg: usize) -> LibResult<i64> {
    check_number(lua, args, narg).map(c_double_to_i64)
}

/// `luaL_optinteger`: the default when the argument is absent or nil.
pub(crate) fn opt_integer(lua: &Lua, args: &MultiValue, narg: usize, default: i64) -> LibResult<i64> {
    match args.get(narg - 1) {
        None | Some(Value::Nil) => Ok(default),
        Some(_) => check_integer(lua, args, narg),
    }
}

/// `luaL_checklstring`: a string, or a number converted to one.
pub(crate) fn check_string(lua: &Lua, args: &MultiValue, narg: usize) -> LibResult<mlua::String> {
    match args.get(narg - 1) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => match lua.coerce_string(v.clone())? {
            Some(s) => Ok(s),
            None => type_fail(args, narg, "string"),
        },
        _ => type_fail(args, narg, "string"),
    }
}

/// C's `(int64_t)d` as x86-64 computes it: truncation, with `i64::MIN` for
/// NaN and anything out of range.
pub(crate) fn c_double_to_i64(d: f64) -> i64 {
    if d > -9_223_372_036_854_775_809.0 && d < 9_223_372_036_854_775_808.0 {
        d as i64
    } else {
        i64::MIN
    }
}

/// C's `(uint64_t)d` as x86-64 code from gcc computes it: exact in range,
/// negative values wrapped as `(int64_t)d` would be, 0 from 2^64 up.
pub(crate) fn c_double_to_u64(d: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if d >= TWO_63 {
        (c_double_to_i64(d - TWO_63) as u64) ^ (1 << 63)
    } else {
        c_double_to_i64(d) as u64
    }
}

/// C's `(int)d` as x86-64 computes it: truncation, with `i32::MIN` for NaN
/// and anything out of range.
pub(crate) fn c_double_to_i32(d: f64) -> i32 {
    if d > -2_147_483_649.0 && d < 2_147_483_648.0 {
        d as i32
    } else {
        i32::MIN
    }
}

/// A stack of Lua values kept in a Lua table. mlua keeps every value Rust
/// holds in one auxiliary Lua stack of at most [`LUA_MAX_C_STACK`] slots
/// (and panics past it), so code that walks deep or large structures keeps
/// the containers it is not working on here: one reference whatever the
/// depth.
pub(crate) struct ValueStack {
    table: Table,
    len: i64,
}

impl ValueStack {
    pub(crate) fn new(lua: &Lua) -> mlua::Result<Self> {
        Ok(ValueStack {
            table: lua.create_table()?,
            len: 0,
        })
    }

    /// How many values are on the stack.
    pub(crate) fn len(&self) -> i64 {
        self.len
    }

    /// Replaces the value at `i` (1-based).
    pub(crate) fn set(&mut self, i: i64, v: Value) -> mlua::Result<()> {
        self.table.raw_set(i, v)
    }

    /// The top value, left in place (nil when empty).
    pub(crate) fn top(&self) -> mlua::Result<Value> {
        self.table.raw_get(self.len)
    }

    pub(crate) fn push(&mut self, v: Value) -> mlua::Result<()> {
        self.len += 1;
        self.table.raw_set(self.len, v)
    }

    /// The top value (nil when empty), removed.
    pub(crate) fn pop(&mut self) -> mlua::Result<Value> {
        if self.len == 0 {
            return Ok(Value::Nil);
        }
        let v = self.table.raw_get(self.len)?;
        self.table.raw_set(self.len, Value::Nil)?;
        self.len -= 1;
        Ok(v)
    }

    /// The table's items, 1..=len, for results that are spread by the Lua
    /// wrapper.
    pub(crate) fn into_table(self) -> (Table, i64) {
        (self.table, self.len)
    }
}

/// Results helper: one value.
pub(crate) fn one(v: Value) -> MultiValue {
    MultiValue::from_vec(vec![v])
}

/// Test helper shared by the libraries' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use mlua::{FromLuaMulti, Lua};

    /// A fresh Lua state with the libraries registered.
    pub fn lua() -> Lua {
        let lua = Lua::new();
        super::register(&lua).expect("register");
        lua
    }

    /// Runs a chunk and converts its results.
    pub fn eval<R: FromLuaMulti>(lua: &Lua, code: &str) -> R {
        lua.load(code).eval().unwrap_or_else(|e| panic!("{code}: {e}"))
    }

    /// Runs a chunk that must fail and returns the error value as a string
    /// (checking that it is a plain Lua string, as the C libraries raise).
    pub fn error_of(lua: &Lua, code: &str) -> String {
        let wrapped = format!(
            "local ok, e = pcall(function() {code} end)\n\
             assert(not ok, 'expected an error')\n\
             assert(type(e) == 'string', 'error is a ' .. type(e))\n\
             return e"
        );
        eval(lua, &wrapped)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;

    #[test]
    fn registers_all_four_globals() {
        let lua = lua();
        let kinds: Vec<String> = eval(
            &lua,
            "return {type(cjson), type(cmsgpack), type(bit), type(struct)}",
        );
        assert_eq!(kinds, ["table"; 4]);
    }

    #[test]
    fn argument_errors_name_the_function_as_called() {
        let lua = lua();
        assert_eq!(
            error_of(&lua, "bit.tohex()"),
            "bad argument #1 to 'tohex' (number expected, got no value)"
        );
        assert_eq!(
            error_of(&lua, "local f = bit.band; f(1, {})"),
            "bad argument #2 to 'f' (number expected, got table)"
        );
        assert_eq!(
            error_of(&lua, "local ok, e = pcall(bit.bnot); error(e, 0)"),
            "bad argument #1 to '?' (number expected, got no value)"
        );
    }
}

#[cfg(test)]
mod robustness {
    use super::testing::*;

    /// Random and truncated inputs give results or Lua errors, never a
    /// panic; very many arguments are handled too.
    #[test]
    fn random_inputs_never_panic() {
        let lua = lua();
        let () = eval(
            &lua,
            r#"
            local seed = 12345
            local function rnd(n)
              seed = (seed * 1103515245 + 12345) % 2147483648
              return seed % n
            end
            local sample = cmsgpack.pack({1, 2.5, "x", {a = {b = {true}}}, -70000, 2^40})
            local json = cjson.encode({a = {1, 2, {b = "c\n"}}, d = 1.5})
            for i = 1, 3000 do
              local len = rnd(24)
              local bytes = {}
              for j = 1, len do bytes[j] = string.char(rnd(256)) end
              local s = table.concat(bytes)
              pcall(cmsgpack.unpack, s)
              pcall(cmsgpack.unpack_limit, s, rnd(3), rnd(4))
              pcall(cjson.decode, s)
              pcall(struct.unpack, s, s)
              pcall(struct.pack, s, 1, 2, "abc")
              pcall(struct.size, s)
              pcall(cmsgpack.unpack, sample:sub(1, rnd(#sample + 1)))
              pcall(cjson.decode, json:sub(1, rnd(#json + 1)))
            end
            local many = {}
            for i = 1, 7990 do many[i] = i end
            assert(bit.bor(unpack(many)) == 8191)
            assert(#cmsgpack.pack(unpack(many)) > 7000)
            "#,
        );
    }
}
