//! `cjson`: lua-cjson 2.1.0 as Redis 7 ships it.
//!
//! Encoding turns Lua values into JSON text: a table is an array when all
//! its keys are positive integers (holes become `null`) unless it is
//! "excessively sparse", otherwise an object whose keys must be strings or
//! numbers; numbers are printed with `%.14g`; `/` is escaped as `\/`. An
//! empty table is `{}`. Decoding maps JSON `null` to `cjson.null` (a NULL
//! light userdata) and every number to a Lua number.
//!
//! Both directions keep their own stack of open containers instead of
//! recursing, so no nesting depth can overflow the Rust stack; the depth
//! limits and the Lua stack limit C reaches on deep input are counted and
//! reported with lua-cjson's messages.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, LightUserData, Lua, MultiValue, Table, Value};

use super::{
    arg_fail, c_double_to_i32, c_double_to_i64, check_number, check_string, fail, lib_function, one,
    type_name, LibResult, ValueStack, LUA_MAX_C_STACK,
};

/// lua-cjson's settings; each `cjson` table (and each `cjson.new()`) has
/// its own.
#[derive(Debug, Clone)]
struct Config {
    sparse_convert: bool,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    /// 0 = refuse NaN and Inf, 1 = write them (`nan`, `inf`), 2 = `null`.
    encode_invalid_numbers: u8,
    encode_number_precision: i32,
    /// Kept only to be reported back: Rust has no shared buffer to keep.
    encode_keep_buffer: bool,
    decode_invalid_numbers: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            encode_number_precision: 14,
            encode_keep_buffer: true,
            decode_invalid_numbers: true,
        }
    }
}

/// What the functions of one `cjson` table share: their settings, and Lua's
/// raw `next` as it was when the table was made (scripts cannot swap it).
struct Module {
    cfg: RefCell<Config>,
    next: Function,
}

type Shared = Rc<Module>;

/// Builds a `cjson` table with a fresh configuration.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let cfg: Shared = Rc::new(Module {
        cfg: RefCell::default(),
        next: lua.globals().raw_get("next")?,
    });
    let t = lua.create_table()?;
    let add = |name: &str, f: fn(&Lua, &Shared, MultiValue) -> LibResult<MultiValue>| {
        let cfg = cfg.clone();
        let func = lib_function(lua, move |lua, args| f(lua, &cfg, args))?;
        t.raw_set(name, func)
    };
    add("encode", encode)?;
    add("decode", decode)?;
    add("encode_sparse_array", cfg_encode_sparse_array)?;
    add("encode_max_depth", cfg_encode_max_depth)?;
    add("decode_max_depth", cfg_decode_max_depth)?;
    add("encode_number_precision", cfg_encode_number_precision)?;
    add("encode_keep_buffer", cfg_encode_keep_buffer)?;
    add("encode_invalid_numbers", cfg_encode_invalid_numbers)?;
    add("decode_invalid_numbers", cfg_decode_invalid_numbers)?;
    add("new", new)?;
    t.raw_set("null", null())?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}

/// `cjson.null`: a NULL light userdata, what JSON `null` decodes to.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// `cjson.new()`: an independent module table with default settings.
fn new(lua: &Lua, _cfg: &Shared, _args: MultiValue) -> LibResult<MultiValue> {
    Ok(one(Value::Table(module(lua)?)))
}

// ===== Configuration functions =====

/// The configuration functions take at most `max` arguments; missing ones
/// mean "leave as is".
fn check_arg_count(args: &MultiValue, max: usize) -> LibResult<()> {
    if args.len() > max {
        return arg_fail(max + 1, "found too many arguments");
    }
    Ok(())
}

/// Whether argument `idx` (1-based) was given a non-nil value.
fn given(args: &MultiValue, idx: usize) -> bool {
    !matches!(args.get(idx - 1), None | Some(Value::Nil))
}

/// An integer setting in `min..=max`, updated when given, and reported.
/// As in lua-cjson, the range error always names argument #1 and the
/// number is truncated to a C `int` first.
fn integer_option(
    lua: &Lua,
    args: &MultiValue,
    idx: usize,
    setting: &mut i32,
    (min, max): (i32, i32),
) -> LibResult<Value> {
    if given(args, idx) {
        let n = check_number(lua, args, idx)?;
        let value = c_double_to_i64(n) as i32;
        if value < min || value > max {
            return arg_fail(1, format!("expected integer between {min} and {max}"));
        }
        *setting = value;
    }
    Ok(Value::Integer((*setting).into()))
}

/// An enumerated setting given as a boolean or one of `options`, updated
/// when given, and reported as a boolean for the first two choices (off and
/// on) and as its name otherwise.
fn enum_option(
    lua: &Lua,
    args: &MultiValue,
    idx: usize,
    setting: &mut u8,
    options: &[&str],
) -> LibResult<Value> {
    match args.get(idx - 1) {
        None | Some(Value::Nil) => {}
        Some(Value::Boolean(b)) => *setting = u8::from(*b),
        Some(_) => {
            let name = check_string(lua, args, idx)?;
            let name = name.as_bytes();
            match options.iter().position(|o| o.as_bytes() == &name[..]) {
                Some(i) => *setting = i as u8,
                None => {
                    let shown = String::from_utf8_lossy(&name);
                    return arg_fail(idx, format!("invalid option '{shown}'"));
                }
            }
        }
    }
    Ok(match *setting {
        0 => Value::Boolean(false),
        1 => Value::Boolean(true),
        n => Value::String(lua.create_string(options[n as usize])?),
    })
}

/// A boolean (`"off"`/`"on"`) setting.
fn bool_option(lua: &Lua, args: &MultiValue, idx: usize, setting: &mut bool) -> LibResult<Value> {
    let mut v = u8::from(*setting);
    let shown = enum_option(lua, args, idx, &mut v, &["off", "on"])?;
    *setting = v != 0;
    Ok(shown)
}

/// `cjson.encode_sparse_array([convert [, ratio [, safe]]])`.
fn cfg_encode_sparse_array(lua: &Lua, cfg: &Shared, args: MultiValue) -> LibResult<MultiValue> {
    check_arg_count(&args, 3)?;
    let mut c = cfg.cfg.borrow_mut();
    let convert = bool_option(lua, &args, 1, &mut c.sparse_convert)?;
    let ratio = integer_option(lua, &args, 2, &mut c.sparse_ratio, (0, i32::MAX))?;
    let safe = integer_option(lua, &args, 3, &mut c.sparse_safe, (0, i32::MAX))?;
    Ok(MultiValue::from_vec(vec![convert, ratio, safe]))
}

/// A one-integer setting: reports it, and sets it when given (in `range`).
fn integer_setting(
    lua: &Lua,
    cfg: &Shared,
    args: MultiValue,
    field: fn(&mut Config) -> &mut i32,
    range: (i32, i32),
) -> LibResult<MultiValue> {
    check_arg_count(&args, 1)?;
    let mut c = cfg.cfg.borrow_mut();
    Ok(one(integer_option(lua, &args, 1, field(&mut c), range)?))
}

/// `cjson.encode_max_depth([depth])`.
fn cfg_encode_max_depth(lua: &Lua, cfg: &Shared, args: MultiValue) -> LibResult<MultiValue> {
    integer_setting(lua, cfg, args, |c| &mut c.encode_max_depth, (1, i32::MAX))
}

/// `cjson.decode_max_depth([depth])`.
fn cfg_decode_max_depth(lua: &Lua, cfg: &Shared, args: MultiValue) -> LibResult<MultiValue> {
    integer_setting(lua, cfg, args, |c| &mut c.decode_max_depth, (1, i32::MAX))
}

/// `cjson.encode_number_precision([digits])`: 1 to 14 significant digits.
fn cfg_encode_number_precision(lua: &Lua, cfg: &Shared, args: MultiValue) -> LibResult<MultiValue> {
    integer_setting(lua, cfg, args, |c| &mut c.encode_number_precision, (1, 14))
}

/// `cjson.encode_keep_buffer([keep])`: accepted and reported; there is no
/// buffer to keep between calls here.
fn cfg_encode_keep_buffer(lua: &Lua, cfg: &Shared, args: MultiValue) -> LibResult<MultiValue> {
    check_arg_count(&args, 1)?;
    let mut c = cfg.cfg.borrow_mut();
    Ok(one(bool_option(lua, &args, 1, &mut c.encode_keep_buffer)?))
}

/// `cjson.encode_invalid_numbers([setting])`: off, on or "null".
fn cfg_encode_invalid_numbers(lua: &Lua, cfg: &Shared, args: MultiValue) -> LibResult<MultiValue> {
    check_arg_count(&args, 1)?;
    let mut c = cfg.cfg.borrow_mut();
    let options = ["off", "on", "null"];
    Ok(one(enum_option(
        lua,
        &args,
        1,
        &mut c.encode_invalid_numbers,
        &options,
    )?))
}

/// `cjson.decode_invalid_numbers([allow])`.
fn cfg_decode_invalid_numbers(lua: &Lua, cfg: &Shared, args: MultiValue) -> LibResult<MultiValue> {
    check_arg_count(&args, 1)?;
    let mut c = cfg.cfg.borrow_mut();
    Ok(one(bool_option(lua, &args, 1, &mut c.decode_invalid_numbers)?))
}

// ===== Encoding =====

/// `cjson.encode(value)`.
fn encode(lua: &Lua, cfg: &Shared, args: MultiValue) -> LibResult<MultiValue> {
    if args.len() != 1 {
        return arg_fail(1, "expected 1 argument");
    }
    let mut enc = Encoder {
        cfg: cfg.cfg.borrow().clone(),
        out: Vec::new(),
        next: cfg.next.clone(),
        current: None,
        key: Value::Nil,
        parents: ValueStack::new(lua)?,
    };
    enc.run(args[0].clone())?;
    Ok(one(Value::String(lua.create_string(&enc.out)?)))
}

/// A table being written. `slots` is how many Lua stack slots the C encoder
/// would be using for the elements of this table (it pushes one per array
/// element and a key and a value per object entry), which decides when
/// `lua_checkstack` would have failed.
enum OpenTable {
    Array { len: i32, next: i32, slots: usize },
    Object { first: bool, slots: usize },
}

/// Writes JSON into `out`. Only the innermost open table and its last key
/// are held in Rust; the enclosing ones wait in `parents` (see
/// [`ValueStack`]), and objects are walked with Lua's raw `next` so that no
/// iterator has to stay alive per level.
struct Encoder {
    cfg: Config,
    out: Vec<u8>,
    next: Function,
    current: Option<Table>,
    key: Value,
    parents: ValueStack,
}

impl Encoder {
    /// Writes `root`, then the contents of every table it opens, depth first
    /// in the order lua-cjson visits them (so the first error is the same).
    fn run(&mut self, root: Value) -> LibResult<()> {
        let mut stack: Vec<OpenTable> = Vec::new();
        // The argument itself is the one slot in use at the top level.
        if let Some(open) = self.value(root, 0, 1)? {
            stack.push(open);
        }
        loop {
            let depth = stack.len();
            let Some(top) = stack.last_mut() else {
                break;
            };
            let Some(table) = self.current.clone() else {
                break;
            };
            let child = match top {
                OpenTable::Array { len, next, slots } => {
                    if *next > *len {
                        self.out.push(b']');
                        stack.pop();
                        self.leave()?;
                        continue;
                    }
                    if *next > 1 {
                        self.out.push(b',');
                    }
                    let v: Value = table.raw_get(*next)?;
                    *next += 1;
                    let slots = *slots;
                    self.value(v, depth, slots)?
                }
                OpenTable::Object { first, slots } => {
                    let key = std::mem::replace(&mut self.key, Value::Nil);
                    let (k, v): (Value, Value) = self.next.call((table, key))?;
                    if k.is_nil() {
                        self.out.push(b'}');
                        stack.pop();
                        self.leave()?;
                        continue;
                    }
                    if !*first {
                        self.out.push(b',');
                    }
                    *first = false;
                    let slots = *slots;
                    self.key(&k)?;
                    self.key = k;
                    self.value(v, depth, slots)?
                }
            };
            if let Some(open) = child {
                stack.push(open);
            }
        }
        Ok(())
    }

    /// Makes `t` the table being written, keeping the current one aside.
    fn enter(&mut self, t: Table) -> LibResult<()> {
        if let Some(parent) = self.current.replace(t) {
            self.parents.push(Value::Table(parent))?;
            let key = std::mem::replace(&mut self.key, Value::Nil);
            self.parents.push(key)?;
        }
        Ok(())
    }

    /// Goes back to the enclosing table and its place in the iteration.
    fn leave(&mut self) -> LibResult<()> {
        self.key = self.parents.pop()?;
        self.current = match self.parents.pop()? {
            Value::Table(t) => Some(t),
            _ => None,
        };
        Ok(())
    }

    /// Writes a scalar, or the opening bracket of a table and returns it to
    /// be filled. `depth` is how many tables enclose `v`; `slots` the Lua
    /// stack slots in use with `v` pushed.
    fn value(&mut self, v: Value, depth: usize, slots: usize) -> LibResult<Option<OpenTable>> {
        match v {
            Value::String(s) => self.string(&s.as_bytes()),
            Value::Integer(i) => self.number(i as f64, &v)?,
            Value::Number(n) => self.number(n, &v)?,
            Value::Boolean(true) => self.out.extend_from_slice(b"true"),
            Value::Boolean(false) => self.out.extend_from_slice(b"false"),
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            Value::Table(t) => return self.open_table(t, depth + 1, slots).map(Some),
            other => {
                return fail(format!(
                    "Cannot serialise {}: type not supported",
                    type_name(&other)
                ))
            }
        }
        Ok(None)
    }

    /// Checks the depth, decides array or object, and writes the bracket.
    fn open_table(&mut self, t: Table, depth: usize, slots: usize) -> LibResult<OpenTable> {
        // lua-cjson also needs 3 free stack slots to walk the table.
        if depth > self.cfg.encode_max_depth as usize || slots + 3 > LUA_MAX_C_STACK {
            return fail(format!("Cannot serialise, excessive nesting ({depth})"));
        }
        let len = self.array_length(&t)?;
        self.enter(t)?;
        if len > 0 {
            self.out.push(b'[');
            return Ok(OpenTable::Array {
                len,
                next: 1,
                slots: slots + 1,
            });
        }
        self.out.push(b'{');
        Ok(OpenTable::Object {
            first: true,
            slots: slots + 2,
        })
    }

    /// lua-cjson's array test: the largest key when every key is a positive
    /// integer and the table is not excessively sparse, otherwise -1 (object).
    /// It keeps C's `int` arithmetic, so a key beyond `INT_MAX` makes the
    /// maximum negative and the table an object, as in Redis.
    fn array_length(&self, t: &Table) -> LibResult<i32> {
        let mut max: i32 = 0;
        let mut items: i32 = 0;
        for pair in t.pairs::<Value, Value>() {
            let k = match pair?.0 {
                Value::Integer(i) => i as f64,
                Value::Number(n) => n,
                _ => return Ok(-1),
            };
            if k == 0.0 || k.floor() != k || k < 1.0 {
                return Ok(-1);
            }
            if k > f64::from(max) {
                max = c_double_to_i32(k);
            }
            items = items.wrapping_add(1);
        }
        let c = &self.cfg;
        if c.sparse_ratio > 0 && max > items.wrapping_mul(c.sparse_ratio) && max > c.sparse_safe {
            if !c.sparse_convert {
                return fail("Cannot serialise table: excessively sparse array");
            }
            return Ok(-1);
        }
        Ok(max)
    }

    /// An object key: strings as they are, numbers quoted.
    fn key(&mut self, k: &Value) -> LibResult<()> {
        match k {
            Value::String(s) => {
                self.string(&s.as_bytes());
                self.out.push(b':');
            }
            Value::Integer(_) | Value::Number(_) => {
                let n = match k {
                    Value::Integer(i) => *i as f64,
                    Value::Number(n) => *n,
                    _ => unreachable!("matched a number"),
                };
                self.out.push(b'"');
                self.number(n, k)?;
                self.out.extend_from_slice(b"\":");
            }
            other => {
                return fail(format!(
                    "Cannot serialise {}: table key must be a number or string",
                    type_name(other)
                ))
            }
        }
        Ok(())
    }

    /// A number with the configured precision; NaN and infinities as the
    /// `encode_invalid_numbers` setting says.
    fn number(&mut self, n: f64, v: &Value) -> LibResult<()> {
        if !n.is_finite() {
            match self.cfg.encode_invalid_numbers {
                0 => {
                    let t = type_name(v);
                    return fail(format!("Cannot serialise {t}: must not be NaN or Inf"));
                }
                1 if n.is_nan() => {
                    self.out.extend_from_slice(b"nan");
                    return Ok(());
                }
                1 => {}
                _ => {
                    self.out.extend_from_slice(b"null");
                    return Ok(());
                }
            }
        }
        let precision = self.cfg.encode_number_precision as usize;
        self.out.extend_from_slice(format_g(n, precision).as_bytes());
        Ok(())
    }

    /// A quoted string, escaped as lua-cjson does: control characters, `"`,
    /// `\`, `/` and DEL. Other bytes, UTF-8 or not, pass through.
    fn string(&mut self, s: &[u8]) {
        self.out.reserve(s.len() + 2);
        self.out.push(b'"');
        for &c in s {
            match c {
                b'"' => self.out.extend_from_slice(b"\\\""),
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                b'/' => self.out.extend_from_slice(b"\\/"),
                0x08 => self.out.extend_from_slice(b"\\b"),
                b'\t' => self.out.extend_from_slice(b"\\t"),
                b'\n' => self.out.extend_from_slice(b"\\n"),
                0x0c => self.out.extend_from_slice(b"\\f"),
                b'\r' => self.out.extend_from_slice(b"\\r"),
                0..=0x1f | 0x7f => {
                    self.out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
                }
                _ => self.out.push(c),
            }
        }
        self.out.push(b'"');
    }
}

/// C's `printf("%.<precision>g", x)`: the shortest of fixed and exponent
/// notation for `precision` significant digits, trailing zeros removed;
/// `inf`, `-inf`, `nan` and `-nan` as glibc writes them.
pub(crate) fn format_g(x: f64, precision: usize) -> String {
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let p = precision.max(1);
    // The exponent after rounding to `p` digits decides the notation.
    let sci = format!("{:.*e}", p - 1, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!(
            "{}e{sign}{:02}",
            trim_fraction_zeros(mantissa),
            exp.unsigned_abs()
        )
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_fraction_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

/// Drops trailing zeros after a decimal point, and the point if bare.
fn trim_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

// ===== Decoding =====

/// `cjson.decode(text)`.
fn decode(lua: &Lua, cfg: &Shared, args: MultiValue) -> LibResult<MultiValue> {
    if args.len() != 1 {
        return arg_fail(1, "expected 1 argument");
    }
    let text = check_string(lua, &args, 1)?;
    let text = text.as_bytes();
    // JSON text starts with an ASCII character; a NUL in the first two bytes
    // means UTF-16 or UTF-32.
    if text.len() >= 2 && (text[0] == 0 || text[1] == 0) {
        return fail("JSON parser does not support UTF-16 or UTF-32");
    }
    let cfg = cfg.cfg.borrow().clone();
    let mut parser = Parser {
        lua,
        data: &text,
        pos: 0,
        depth: 0,
        cfg,
        current: None,
        key: Value::Nil,
        parents: ValueStack::new(lua)?,
    };
    Ok(one(parser.document()?))
}

/// What a token is; the names are those lua-cjson puts in its errors.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Number(f64),
    Boolean(bool),
    Null,
    Colon,
    Comma,
    End,
    /// A lexical error, with its description.
    Error(&'static str),
}

impl Kind {
    /// The name lua-cjson gives the token in "Expected X but found Y".
    fn describe(&self) -> &'static str {
        match self {
            Kind::ObjBegin => "T_OBJ_BEGIN",
            Kind::ObjEnd => "T_OBJ_END",
            Kind::ArrBegin => "T_ARR_BEGIN",
            Kind::ArrEnd => "T_ARR_END",
            Kind::Str(_) => "T_STRING",
            Kind::Number(_) => "T_NUMBER",
            Kind::Boolean(_) => "T_BOOLEAN",
            Kind::Null => "T_NULL",
            Kind::Colon => "T_COLON",
            Kind::Comma => "T_COMMA",
            Kind::End => "T_END",
            Kind::Error(e) => e,
        }
    }
}

/// A token and the byte offset it was found at (for lexical errors, where
/// the error is).
struct Token {
    kind: Kind,
    index: usize,
}

/// A container being filled. `slots` is the Lua stack slots the C parser
/// would be using for its elements: the table, and the key for objects.
/// The tables themselves are in the parser (see [`Parser::enter`]).
enum Open {
    Array { next: i64, slots: usize },
    Object { slots: usize },
}

impl Open {
    fn slots(&self) -> usize {
        match self {
            Open::Array { slots, .. } | Open::Object { slots } => *slots,
        }
    }
}

/// What the parser makes of the tokens that start a value.
enum Start {
    /// A complete value (a scalar or an empty container).
    Done(Value),
    /// A non-empty container, and the token its first element starts with.
    Opened(Open, Token),
}

/// The JSON parser. Like lua-cjson, which reads a C string, it treats a NUL
/// byte as the end of the text. Only the innermost open container (and the
/// key its next value goes to) is held in Rust; the enclosing ones wait in
/// `parents` (see [`ValueStack`]).
struct Parser<'a> {
    lua: &'a Lua,
    data: &'a [u8],
    pos: usize,
    depth: i32,
    cfg: Config,
    current: Option<Table>,
    key: Value,
    parents: ValueStack,
}

impl Parser<'_> {
    /// The byte at `i`, NUL past the end.
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    /// Parses one value and checks that nothing but whitespace follows.
    fn document(&mut self) -> LibResult<Value> {
        let tok = self.next_token();
        let value = self.value(tok)?;
        let tok = self.next_token();
        if tok.kind != Kind::End {
            return self.parse_error("the end", &tok);
        }
        Ok(value)
    }

    /// Makes `t` the container being filled, keeping the current one aside.
    fn enter(&mut self, t: Table) -> LibResult<()> {
        if let Some(parent) = self.current.replace(t) {
            self.parents.push(Value::Table(parent))?;
            let key = std::mem::replace(&mut self.key, Value::Nil);
            self.parents.push(key)?;
        }
        Ok(())
    }

    /// Closes the current container and returns it; its parent (if any)
    /// becomes current again.
    fn leave(&mut self) -> LibResult<Value> {
        self.depth -= 1;
        let done = self.current.take().map_or(Value::Nil, Value::Table);
        self.key = self.parents.pop()?;
        if let Value::Table(t) = self.parents.pop()? {
            self.current = Some(t);
        }
        Ok(done)
    }

    /// Parses the value starting with `tok`, keeping track of the open
    /// containers in an explicit stack.
    fn value(&mut self, mut tok: Token) -> LibResult<Value> {
        let mut stack: Vec<Open> = Vec::new();
        loop {
            let slots = stack.last().map_or(1, Open::slots);
            let mut done = match self.start(tok, slots)? {
                Start::Done(v) => v,
                Start::Opened(open, first) => {
                    stack.push(open);
                    tok = first;
                    continue;
                }
            };
            // Hand the finished value to its container, closing every
            // container that ends with it.
            loop {
                let Some(top) = stack.last_mut() else {
                    return Ok(done);
                };
                let Some(table) = self.current.as_ref() else {
                    return Ok(done);
                };
                let (end, end_name) = match top {
                    Open::Array { next, .. } => {
                        table.raw_set(*next, done)?;
                        *next += 1;
                        (Kind::ArrEnd, "comma or array end")
                    }
                    Open::Object { .. } => {
                        table.raw_set(self.key.clone(), done)?;
                        (Kind::ObjEnd, "comma or object end")
                    }
                };
                let after = self.next_token();
                if after.kind == end {
                    stack.pop();
                    done = self.leave()?;
                    continue;
                }
                if after.kind != Kind::Comma {
                    return self.parse_error(end_name, &after);
                }
                if let Some(Open::Object { .. }) = stack.last() {
                    let first = self.next_token();
                    self.key = self.member_key(first)?;
                }
                tok = self.next_token();
                break;
            }
        }
    }

    /// Starts the value at `tok`: a scalar, an empty container, or an open
    /// container whose first element comes next. `slots` are the Lua stack
    /// slots in use around it.
    fn start(&mut self, tok: Token, slots: usize) -> LibResult<Start> {
        let scalar = match tok.kind {
            Kind::Str(s) => Value::String(self.lua.create_string(&s)?),
            Kind::Number(n) => Value::Number(n),
            Kind::Boolean(b) => Value::Boolean(b),
            Kind::Null => null(),
            Kind::ArrBegin => {
                self.descend(slots, 2)?;
                let table = self.lua.create_table()?;
                let first = self.next_token();
                if first.kind == Kind::ArrEnd {
                    self.depth -= 1;
                    return Ok(Start::Done(Value::Table(table)));
                }
                self.enter(table)?;
                let open = Open::Array {
                    next: 1,
                    slots: slots + 1,
                };
                return Ok(Start::Opened(open, first));
            }
            Kind::ObjBegin => {
                self.descend(slots, 3)?;
                let table = self.lua.create_table()?;
                let first = self.next_token();
                if first.kind == Kind::ObjEnd {
                    self.depth -= 1;
                    return Ok(Start::Done(Value::Table(table)));
                }
                self.enter(table)?;
                self.key = self.member_key(first)?;
                let open = Open::Object { slots: slots + 2 };
                return Ok(Start::Opened(open, self.next_token()));
            }
            _ => return self.parse_error("value", &tok),
        };
        Ok(Start::Done(scalar))
    }

    /// An object member's key and its colon.
    fn member_key(&mut self, tok: Token) -> LibResult<Value> {
        let Kind::Str(ref s) = tok.kind else {
            return self.parse_error("object key string", &tok);
        };
        let key = self.lua.create_string(s)?;
        let colon = self.next_token();
        if colon.kind != Kind::Colon {
            return self.parse_error("colon", &colon);
        }
        Ok(Value::String(key))
    }

    /// Enters a container, failing past the depth limit or where C's
    /// `lua_checkstack(slots)` would fail.
    fn descend(&mut self, used: usize, needed: usize) -> LibResult<()> {
        self.depth += 1;
        if self.depth <= self.cfg.decode_max_depth && used + needed <= LUA_MAX_C_STACK {
            return Ok(());
        }
        fail(format!(
            "Found too many nested data structures ({}) at character {}",
            self.depth, self.pos
        ))
    }

    /// "Expected X but found Y at character N" (N counted from 1).
    fn parse_error<T>(&self, expected: &str, tok: &Token) -> LibResult<T> {
        fail(format!(
            "Expected {expected} but found {} at character {}",
            tok.kind.describe(),
            tok.index + 1
        ))
    }

    /// Reads the next token, skipping JSON whitespace.
    fn next_token(&mut self) -> Token {
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let index = self.pos;
        let simple = match self.at(index) {
            b'{' => Some(Kind::ObjBegin),
            b'}' => Some(Kind::ObjEnd),
            b'[' => Some(Kind::ArrBegin),
            b']' => Some(Kind::ArrEnd),
            b',' => Some(Kind::Comma),
            b':' => Some(Kind::Colon),
            _ => None,
        };
        let kind = match (simple, self.at(index)) {
            (Some(kind), _) => {
                self.pos += 1;
                kind
            }
            (None, 0) => Kind::End,
            (None, b'"') => self.string_token(),
            (None, b'-' | b'0'..=b'9') => {
                if !self.cfg.decode_invalid_numbers && self.is_invalid_number() {
                    Kind::Error("invalid number")
                } else {
                    self.number_token()
                }
            }
            (None, b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+') => self.word_token(),
            _ => Kind::Error("invalid token"),
        };
        // A lexical error is reported where the lexer stopped.
        let index = if matches!(kind, Kind::Error(_)) {
            self.pos
        } else {
            index
        };
        Token { kind, index }
    }

    /// `true`, `false`, `null`, or (when allowed) a non-JSON number such as
    /// `+1`, `inf` or `nan`.
    fn word_token(&mut self) -> Kind {
        let rest = &self.data[self.pos..];
        for (word, kind) in [
            (&b"true"[..], Kind::Boolean(true)),
            (b"false", Kind::Boolean(false)),
            (b"null", Kind::Null),
        ] {
            if rest.starts_with(word) {
                self.pos += word.len();
                return kind;
            }
        }
        if self.cfg.decode_invalid_numbers && self.is_invalid_number() {
            return self.number_token();
        }
        Kind::Error("invalid token")
    }

    /// Whether the number here is one `strtod` takes but JSON does not:
    /// a leading `+`, hexadecimal, leading zeros, `inf` or `nan`.
    fn is_invalid_number(&self) -> bool {
        let mut p = self.pos;
        match self.at(p) {
            b'+' => return true,
            b'-' => p += 1,
            _ => {}
        }
        let c = self.at(p);
        if c == b'0' {
            let c2 = self.at(p + 1);
            return c2 | 0x20 == b'x' || c2.is_ascii_digit();
        }
        if c <= b'9' {
            return false;
        }
        let word = [self.at(p), self.at(p + 1), self.at(p + 2)].to_ascii_lowercase();
        word == *b"inf" || word == *b"nan"
    }

    /// A number as `strtod` reads it.
    fn number_token(&mut self) -> Kind {
        match strtod(self.data, self.pos) {
            Some((n, end)) => {
                self.pos = end;
                Kind::Number(n)
            }
            None => Kind::Error("invalid number"),
        }
    }

    /// A string, unescaped. Bytes other than `"` and `\` are taken as they
    /// are (control characters and invalid UTF-8 included).
    fn string_token(&mut self) -> Kind {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let c = self.at(self.pos);
            match c {
                b'"' => break,
                0 => return Kind::Error("unexpected end of string"),
                b'\\' => {
                    let plain = match self.at(self.pos + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b't' => b'\t',
                        b'n' => b'\n',
                        b'f' => 0x0c,
                        b'r' => b'\r',
                        b'u' => {
                            if !self.unicode_escape(&mut out) {
                                return Kind::Error("invalid unicode escape code");
                            }
                            continue;
                        }
                        _ => return Kind::Error("invalid escape code"),
                    };
                    out.push(plain);
                    self.pos += 2;
                }
                _ => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        self.pos += 1;
        Kind::Str(out)
    }

    /// Four hex digits at `i`, or None.
    fn hex4(&self, i: usize) -> Option<u32> {
        (i..i + 4).try_fold(0u32, |acc, j| {
            let d = (self.at(j) as char).to_digit(16)?;
            Some(acc << 4 | d)
        })
    }

    /// `\uXXXX` (or a `\uD8xx\uDCxx` surrogate pair) at `pos`, appended as
    /// UTF-8. A lone or reversed surrogate is an error, as in lua-cjson.
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(mut cp) = self.hex4(self.pos + 2) else {
            return false;
        };
        let mut len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 {
                return false;
            }
            if self.at(self.pos + 6) != b'\\' || self.at(self.pos + 7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.pos + 8) else {
                return false;
            };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        let Some(ch) = char::from_u32(cp) else {
            return false;
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        self.pos += len;
        true
    }
}

/// glibc's `strtod` on the text at `start` (a NUL or the end stops it):
/// optional sign, then `inf`/`infinity`, `nan`/`nan(...)`, a hexadecimal
/// float or a decimal one. Returns the value and where it ended, or None
/// when no number starts there.
pub(crate) fn strtod(s: &[u8], start: usize) -> Option<(f64, usize)> {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let starts_ci = |i: usize, word: &[u8]| {
        word.iter()
            .enumerate()
            .all(|(k, w)| at(i + k).to_ascii_lowercase() == *w)
    };
    let mut i = start;
    let negative = match at(i) {
        b'-' => {
            i += 1;
            true
        }
        b'+' => {
            i += 1;
            false
        }
        _ => false,
    };
    let sign = |x: f64| if negative { -x } else { x };
    if starts_ci(i, b"inf") {
        let end = if starts_ci(i, b"infinity") { i + 8 } else { i + 3 };
        return Some((sign(f64::INFINITY), end));
    }
    if starts_ci(i, b"nan") {
        let mut end = i + 3;
        if at(end) == b'(' {
            let mut j = end + 1;
            while at(j).is_ascii_alphanumeric() || at(j) == b'_' {
                j += 1;
            }
            if at(j) == b')' {
                end = j + 1;
            }
        }
        return Some((sign(f64::NAN), end));
    }
    if at(i) == b'0' && at(i + 1) | 0x20 == b'x' {
        if let Some((v, end)) = hex_float(s, i + 2) {
            return Some((sign(v), end));
        }
    }
    let (v, end) = decimal_float(s, i)?;
    Some((sign(v), end))
}

/// An unsigned decimal float at `i`: digits with an optional fraction, and
/// an exponent only when digits follow the `e`.
fn decimal_float(s: &[u8], start: usize) -> Option<(f64, usize)> {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let mut i = start;
    let mut digits = 0;
    while at(i).is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    let mut end_mantissa = i;
    if at(i) == b'.' {
        i += 1;
        while at(i).is_ascii_digit() {
            i += 1;
            digits += 1;
        }
        end_mantissa = i;
    }
    if digits == 0 {
        return None;
    }
    let mut end = end_mantissa;
    if at(end) | 0x20 == b'e' {
        let mut j = end + 1;
        if matches!(at(j), b'+' | b'-') {
            j += 1;
        }
        if at(j).is_ascii_digit() {
            while at(j).is_ascii_digit() {
                j += 1;
            }
            end = j;
        }
    }
    // The slice is ASCII digits, '.', 'e' and signs, in a form Rust's
    // parser accepts too ("1.", ".5", "1.e5").
    let text = std::str::from_utf8(&s[start..end]).ok()?;
    text.parse::<f64>().ok().map(|v| (v, end))
}

/// The digits of a hexadecimal float after `0x`: hex digits with an
/// optional fraction and an optional binary exponent `p[+-]digits`. None
/// when no hex digit follows (then `strtod` reads just the `0`).
fn hex_float(s: &[u8], start: usize) -> Option<(f64, usize)> {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let hex = |c: u8| (c as char).to_digit(16);
    let mut i = start;
    let mut mantissa: u64 = 0;
    let mut exp: i64 = 0;
    let mut digits = 0;
    let mut take = |d: u32, exp: &mut i64, fraction: bool| {
        if mantissa >> 56 == 0 {
            mantissa = mantissa << 4 | u64::from(d);
            if fraction {
                *exp -= 4;
            }
        } else if !fraction {
            *exp += 4;
        }
    };
    while let Some(d) = hex(at(i)) {
        take(d, &mut exp, false);
        i += 1;
        digits += 1;
    }
    if at(i) == b'.' {
        let mut j = i + 1;
        while let Some(d) = hex(at(j)) {
            take(d, &mut exp, true);
            j += 1;
            digits += 1;
        }
        if digits > 0 {
            i = j;
        }
    }
    if digits == 0 {
        return None;
    }
    if at(i) | 0x20 == b'p' {
        let mut j = i + 1;
        let negative = match at(j) {
            b'-' => {
                j += 1;
                true
            }
            b'+' => {
                j += 1;
                false
            }
            _ => false,
        };
        if at(j).is_ascii_digit() {
            let mut e: i64 = 0;
            while at(j).is_ascii_digit() {
                e = (e * 10 + i64::from(at(j) - b'0')).min(100_000);
                j += 1;
            }
            exp += if negative { -e } else { e };
            i = j;
        }
    }
    Some((scale_by_power_of_two(mantissa as f64, exp), i))
}

/// `x * 2^exp` without overflowing the intermediate power.
fn scale_by_power_of_two(mut x: f64, mut exp: i64) -> f64 {
    while exp > 1000 {
        x *= 2f64.powi(1000);
        exp -= 1000;
    }
    while exp < -1000 {
        x *= 2f64.powi(-1000);
        exp += 1000;
    }
    x * 2f64.powi(exp as i32)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::{format_g, strtod};

    #[test]
    fn redis_json_numeric_decoding() {
        let lua = lua();
        let s: String = eval(
            &lua,
            r#"return table.concat(cjson.decode("[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]"), " ")"#,
        );
        assert_eq!(s, "0 -5000 -1 0.0003 1023.2 0");
    }

    #[test]
    fn redis_json_string_decoding() {
        let lua = lua();
        let got: Vec<String> = eval(
            &lua,
            r#"local decoded = cjson.decode('{"keya": "a", "keyb": "b"}')
               return {decoded.keya, decoded.keyb}"#,
        );
        assert_eq!(got, ["a", "b"]);
    }

    #[test]
    fn redis_json_smoke_test() {
        let lua = lua();
        let () = eval(
            &lua,
            r#"
            local some_map = {
                s1="Some string",
                n1=100,
                a1={"Some","String","Array"},
                nil1=nil,
                b1=true,
                b2=false}
            local encoded = cjson.encode(some_map)
            local decoded = cjson.decode(encoded)
            assert(table.concat(some_map) == table.concat(decoded))

            cjson.encode_keep_buffer(false)
            encoded = cjson.encode(some_map)
            decoded = cjson.decode(encoded)
            assert(table.concat(some_map) == table.concat(decoded))

            -- Table with numeric keys
            local table1 = {one="one", [1]="one"}
            encoded = cjson.encode(table1)
            decoded = cjson.decode(encoded)
            assert(decoded["one"] == table1["one"])
            assert(decoded["1"] == table1[1])

            -- Array
            local array1 = {[1]="one", [2]="two"}
            encoded = cjson.encode(array1)
            decoded = cjson.decode(encoded)
            assert(table.concat(array1) == table.concat(decoded))

            -- Invalid keys
            local invalid_map = {}
            invalid_map[false] = "false"
            local ok, encoded = pcall(cjson.encode, invalid_map)
            assert(ok == false)

            -- Max depth
            cjson.encode_max_depth(1)
            ok, encoded = pcall(cjson.encode, some_map)
            assert(ok == false)

            cjson.decode_max_depth(1)
            ok, decoded = pcall(cjson.decode, '{"obj": {"array": [1,2,3,4]}}')
            assert(ok == false)

            -- Invalid numbers
            ok, encoded = pcall(cjson.encode, {num1=0/0})
            assert(ok == false)
            cjson.encode_invalid_numbers(true)
            ok, encoded = pcall(cjson.encode, {num1=0/0})
            assert(ok == true)

            -- Restore defaults
            cjson.decode_max_depth(1000)
            cjson.encode_max_depth(1000)
            cjson.encode_invalid_numbers(false)
            "#,
        );
    }

    #[test]
    fn decode_mixed_array_from_the_brief() {
        let lua = lua();
        let s: String = eval(
            &lua,
            r#"local t = cjson.decode('[1,2,3,"sss",{"foo":"bar"}]')
               return t[1] .. t[2] .. t[3] .. t[4] .. t[5].foo .. #t"#,
        );
        assert_eq!(s, "123sssbar5");
    }

    #[test]
    fn encode_scalars_and_escapes() {
        let lua = lua();
        let got: Vec<String> = eval(
            &lua,
            r#"return {cjson.encode(1), cjson.encode(-1.5), cjson.encode(0.1), cjson.encode(1/3),
                       cjson.encode(1e100), cjson.encode(123456789012345), cjson.encode(2^53),
                       cjson.encode(true), cjson.encode(nil), cjson.encode(cjson.null),
                       cjson.encode("a/b\"c\\d\n\t\r\b\f\1\127é"), cjson.encode({}),
                       cjson.encode(-0), cjson.encode(1e-5), cjson.encode(0.0001)}"#,
        );
        assert_eq!(
            got,
            [
                "1",
                "-1.5",
                "0.1",
                "0.33333333333333",
                "1e+100",
                "1.2345678901234e+14",
                "9.007199254741e+15",
                "true",
                "null",
                "null",
                "\"a\\/b\\\"c\\\\d\\n\\t\\r\\b\\f\\u0001\\u007fé\"",
                "{}",
                "-0",
                "1e-05",
                "0.0001",
            ]
        );
    }

    #[test]
    fn encode_arrays_objects_and_sparse_rules() {
        let lua = lua();
        let got: Vec<String> = eval(
            &lua,
            r#"return {cjson.encode({1, 2, 3}), cjson.encode({[1]=1, [3]=3}),
                       cjson.encode({[2]="x"}), cjson.encode({[10]=1}), cjson.encode({a={b={}}}),
                       cjson.encode({[1.5]=1}), cjson.encode({[-1]=1}), cjson.encode({[2^40]=1}),
                       cjson.encode({{1,{2}}, "x"})}"#,
        );
        assert_eq!(
            got,
            [
                "[1,2,3]",
                "[1,null,3]",
                "[null,\"x\"]",
                "[null,null,null,null,null,null,null,null,null,1]",
                "{\"a\":{\"b\":{}}}",
                "{\"1.5\":1}",
                "{\"-1\":1}",
                "{\"1099511627776\":1}",
                "[[1,[2]],\"x\"]",
            ]
        );
        assert_eq!(
            error_of(&lua, "cjson.encode({[11]=1})"),
            "Cannot serialise table: excessively sparse array"
        );
        let converted: Vec<String> = eval(
            &lua,
            r#"local a, b, c = cjson.encode_sparse_array(true)
               local s = cjson.encode({[11]=1})
               local x, y, z = cjson.encode_sparse_array(false, 0, 5)
               return {tostring(a), tostring(b), tostring(c), s, tostring(x), tostring(y),
                       tostring(z), cjson.encode({[20]=1}):sub(1, 10)}"#,
        );
        assert_eq!(
            converted,
            ["true", "2", "10", "{\"11\":1}", "false", "0", "5", "[null,null"]
        );
    }

    #[test]
    fn encode_errors_use_lua_cjson_messages() {
        let lua = lua();
        assert_eq!(
            error_of(&lua, "cjson.encode(function() end)"),
            "Cannot serialise function: type not supported"
        );
        assert_eq!(
            error_of(&lua, "cjson.encode({f = coroutine.create(function() end)})"),
            "Cannot serialise thread: type not supported"
        );
        assert_eq!(
            error_of(&lua, "cjson.encode({[true] = 1})"),
            "Cannot serialise boolean: table key must be a number or string"
        );
        assert_eq!(
            error_of(&lua, "cjson.encode(0/0)"),
            "Cannot serialise number: must not be NaN or Inf"
        );
        assert_eq!(
            error_of(&lua, "cjson.encode()"),
            "bad argument #1 to 'encode' (expected 1 argument)"
        );
        assert_eq!(
            error_of(&lua, "cjson.encode(1, 2)"),
            "bad argument #1 to 'encode' (expected 1 argument)"
        );
    }

    #[test]
    fn encode_invalid_numbers_settings() {
        let lua = lua();
        let got: Vec<String> = eval(
            &lua,
            r#"local r = {}
               r[1] = tostring(cjson.encode_invalid_numbers(true))
               r[2] = cjson.encode({1/0, -1/0, 0/0})
               r[3] = tostring(cjson.encode_invalid_numbers("null"))
               r[4] = cjson.encode({1/0, 0/0})
               r[5] = tostring(cjson.encode_invalid_numbers("off"))
               return r"#,
        );
        assert_eq!(got, ["true", "[inf,-inf,nan]", "null", "[null,null]", "false"]);
        assert_eq!(
            error_of(&lua, "cjson.encode_invalid_numbers('maybe')"),
            "bad argument #1 to 'encode_invalid_numbers' (invalid option 'maybe')"
        );
    }

    #[test]
    fn encode_depth_limits_and_cycles() {
        let lua = lua();
        assert_eq!(
            error_of(&lua, "local t = {}; t[1] = t; cjson.encode(t)"),
            "Cannot serialise, excessive nesting (1001)"
        );
        assert_eq!(
            error_of(&lua, "local t = {}; t.x = t; cjson.encode(t)"),
            "Cannot serialise, excessive nesting (1001)"
        );
        // With the configured limit out of the way, C runs out of Lua stack
        // slots first (3 needed per check, 2 used per object level).
        assert_eq!(
            error_of(
                &lua,
                "cjson.encode_max_depth(100000); local t = {}; t.x = t; cjson.encode(t)"
            ),
            "Cannot serialise, excessive nesting (4000)"
        );
        let s: String = eval(
            &lua,
            "cjson.encode_max_depth(3); local s = cjson.encode({{{}}}); cjson.encode_max_depth(1000); return s",
        );
        assert_eq!(s, "[[{}]]");
        assert_eq!(
            error_of(&lua, "cjson.encode_max_depth(2); cjson.encode({{{}}})"),
            "Cannot serialise, excessive nesting (3)"
        );
        assert_eq!(
            error_of(&lua, "cjson.encode_max_depth(0)"),
            "bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)"
        );
        assert_eq!(
            error_of(&lua, "cjson.encode_max_depth(1, 2)"),
            "bad argument #2 to 'encode_max_depth' (found too many arguments)"
        );
    }

    #[test]
    fn number_precision() {
        let lua = lua();
        let got: Vec<String> = eval(
            &lua,
            r#"local old = cjson.encode_number_precision(3)
               local s = cjson.encode({math.pi, 1234567})
               cjson.encode_number_precision(14)
               return {tostring(old), s, cjson.encode(math.pi)}"#,
        );
        assert_eq!(got, ["3", "[3.14,1.23e+06]", "3.1415926535898"]);
        assert_eq!(
            error_of(&lua, "cjson.encode_number_precision(15)"),
            "bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)"
        );
    }

    #[test]
    fn decode_values() {
        let lua = lua();
        let got: Vec<String> = eval(
            &lua,
            r#"local t = cjson.decode([[ {"a" : [true, false, null, "x\u00e9\ud834\udd1e\/\"\\"], "b": {}} ]])
               return {tostring(t.a[1]), tostring(t.a[2]), tostring(t.a[3] == cjson.null),
                       t.a[4], tostring(#t.a), tostring(next(t.b)),
                       tostring(cjson.decode([["\u0000"]]):byte(1)),
                       tostring(cjson.decode('123')), tostring(cjson.decode(123)),
                       tostring(cjson.decode('[01, +1, 0x10, -Infinity, 1.5]')[3]),
                       cjson._NAME, cjson._VERSION}"#,
        );
        assert_eq!(
            got,
            [
                "true",
                "false",
                "true",
                "xé𝄞/\"\\",
                "4",
                "nil",
                "0",
                "123",
                "123",
                "16",
                "cjson",
                "2.1.0",
            ]
        );
    }

    #[test]
    fn decode_errors_use_lua_cjson_messages() {
        let lua = lua();
        let cases = [
            ("", "Expected value but found T_END at character 1"),
            ("x", "Expected value but found invalid token at character 1"),
            ("[1,]", "Expected value but found T_ARR_END at character 4"),
            (
                "[1 2]",
                "Expected comma or array end but found T_NUMBER at character 4",
            ),
            (
                "{1:2}",
                "Expected object key string but found T_NUMBER at character 2",
            ),
            ("{\"a\" 2}", "Expected colon but found T_NUMBER at character 6"),
            (
                "{\"a\":1 ]",
                "Expected comma or object end but found T_ARR_END at character 8",
            ),
            ("[1] x", "Expected the end but found invalid token at character 5"),
            (
                "\"abc",
                "Expected value but found unexpected end of string at character 5",
            ),
            (
                "\"a\\qb\"",
                "Expected value but found invalid escape code at character 3",
            ),
            (
                "\"\\u12\"",
                "Expected value but found invalid unicode escape code at character 2",
            ),
            (
                "\"\\udc00\"",
                "Expected value but found invalid unicode escape code at character 2",
            ),
            ("[-]", "Expected value but found invalid number at character 2"),
            ("nul", "Expected value but found invalid token at character 1"),
            ("\u{0}1", "JSON parser does not support UTF-16 or UTF-32"),
        ];
        for (json, want) in cases {
            lua.globals().set("input", json).unwrap();
            assert_eq!(error_of(&lua, "cjson.decode(input)"), want, "{json:?}");
        }
        assert_eq!(
            error_of(&lua, "cjson.decode()"),
            "bad argument #1 to 'decode' (expected 1 argument)"
        );
        assert_eq!(
            error_of(&lua, "cjson.decode({})"),
            "bad argument #1 to 'decode' (string expected, got table)"
        );
    }

    #[test]
    fn decode_nul_ends_the_text() {
        let lua = lua();
        let n: f64 = eval(&lua, "return #cjson.decode('[1,2]\\0garbage')");
        assert_eq!(n, 2.0);
    }

    #[test]
    fn decode_strict_numbers_when_invalid_numbers_are_off() {
        let lua = lua();
        let got: String = eval(
            &lua,
            "local old = cjson.decode_invalid_numbers(false)
             local ok, e = pcall(cjson.decode, '[01]')
             cjson.decode_invalid_numbers(true)
             return tostring(old) .. ' ' .. e",
        );
        assert_eq!(
            got,
            "false Expected value but found invalid number at character 2"
        );
        let got: String = eval(
            &lua,
            "cjson.decode_invalid_numbers(false)
             local ok, e = pcall(cjson.decode, 'nan')
             cjson.decode_invalid_numbers(true)
             local n = cjson.decode('nan')
             return e .. ' ' .. tostring(n ~= n)",
        );
        assert_eq!(got, "Expected value but found invalid token at character 1 true");
    }

    #[test]
    fn decode_depth_limits() {
        let lua = lua();
        assert_eq!(
            error_of(&lua, "cjson.decode(string.rep('[', 1001))"),
            "Found too many nested data structures (1001) at character 1001"
        );
        assert_eq!(
            error_of(
                &lua,
                "cjson.decode_max_depth(1); cjson.decode('{\"obj\": {\"array\": [1,2,3,4]}}')"
            ),
            "Found too many nested data structures (2) at character 9"
        );
        // Past the configured limit, C's Lua stack runs out: one slot per
        // array level, checked two at a time.
        assert_eq!(
            error_of(
                &lua,
                "cjson.decode_max_depth(1000000); cjson.decode(string.rep('[', 100000))"
            ),
            "Found too many nested data structures (7999) at character 7999"
        );
        let n: f64 = eval(
            &lua,
            "local t = cjson.decode(string.rep('[', 5000) .. string.rep(']', 5000))
             local n = 0
             while t do n = n + 1; t = t[1] end
             return n",
        );
        assert_eq!(n, 5000.0);
    }

    #[test]
    fn new_gives_independent_settings() {
        let lua = lua();
        let got: Vec<f64> = eval(
            &lua,
            "local other = cjson.new()
             other.encode_max_depth(5)
             return {cjson.encode_max_depth(), other.encode_max_depth()}",
        );
        assert_eq!(got, [1000.0, 5.0]);
    }

    #[test]
    fn format_g_matches_printf() {
        let cases = [
            (0.1, "0.1"),
            (100.0, "100"),
            (1e14, "1e+14"),
            (99999999999999.0, "99999999999999"),
            (999999999999999.0, "1e+15"),
            (0.00001234, "1.234e-05"),
            (-2.5, "-2.5"),
            (1e-300, "1e-300"),
            (123456.789, "123456.789"),
        ];
        for (x, want) in cases {
            assert_eq!(format_g(x, 14), want, "{x}");
        }
        assert_eq!(format_g(0.5, 1), "0.5");
        assert_eq!(format_g(2.5, 1), "2");
        assert_eq!(format_g(1234.0, 2), "1.2e+03");
    }

    #[test]
    fn strtod_matches_glibc() {
        let cases: [(&str, f64, usize); 9] = [
            ("1.5x", 1.5, 3),
            ("1.", 1.0, 2),
            (".5", 0.5, 2),
            ("1e", 1.0, 1),
            ("1e+3", 1000.0, 4),
            ("0x1f", 31.0, 4),
            ("0x", 0.0, 1),
            ("0x1p4", 16.0, 5),
            ("-infinity", f64::NEG_INFINITY, 9),
        ];
        for (s, v, end) in cases {
            assert_eq!(strtod(s.as_bytes(), 0), Some((v, end)), "{s}");
        }
        assert_eq!(strtod(b"-", 0), None);
        assert_eq!(strtod(b".", 0), None);
        let (nan, end) = strtod(b"nan(abc)", 0).unwrap();
        assert!(nan.is_nan());
        assert_eq!(end, 8);
    }
}
