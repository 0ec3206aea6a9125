//! `bit`: LuaBitOp 1.0.2, bitwise operations on 32-bit integers.
//!
//! Lua 5.1 numbers are doubles, so every argument is first normalised to 32
//! bits the way LuaBitOp does it: add 2^52 + 2^51 and keep the low 32 bits
//! of the double's representation. That rounds fractions to nearest-even and
//! wraps anything outside the 32-bit range modulo 2^32, so `bit.tobit(2^32 +
//! 1) == 1`; results are always returned as signed 32-bit numbers.

use mlua::{Lua, MultiValue, Table, Value};

use super::{arg_fail, arg_type_name, one, set_functions, to_number, LibFn, LibResult};

/// Builds the `bit` table.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let functions: [(&str, LibFn); 12] = [
        ("tobit", tobit),
        ("bnot", bnot),
        ("band", band),
        ("bor", bor),
        ("bxor", bxor),
        ("lshift", lshift),
        ("rshift", rshift),
        ("arshift", arshift),
        ("rol", rol),
        ("ror", ror),
        ("bswap", bswap),
        ("tohex", tohex),
    ];
    set_functions(lua, &t, &functions)?;
    Ok(t)
}

/// The 32 bits LuaBitOp takes from a double: those of `n + 2^52 + 2^51`,
/// whose low word is then the (rounded) integer part of `n` modulo 2^32.
fn normalise(n: f64) -> u32 {
    (n + 6_755_399_441_055_744.0).to_bits() as u32
}

/// Argument `narg` as 32 bits. Like LuaBitOp on Lua 5.1 this converts with
/// `lua_tonumber` (numeric strings are accepted) and complains only when
/// the result is zero and the argument was not a number.
fn bit_arg(lua: &Lua, args: &MultiValue, narg: usize) -> LibResult<u32> {
    match to_number(lua, args.get(narg - 1)) {
        Some(n) => Ok(normalise(n)),
        None => arg_fail(
            narg,
            format!("number expected, got {}", arg_type_name(args, narg)),
        ),
    }
}

/// A result: the 32 bits read as a signed integer.
fn ret(b: u32) -> LibResult<MultiValue> {
    Ok(one(Value::Number(f64::from(b as i32))))
}

fn tobit(lua: &Lua, args: MultiValue) -> LibResult<MultiValue> {
    ret(bit_arg(lua, &args, 1)?)
}

fn bnot(lua: &Lua, args: MultiValue) -> LibResult<MultiValue> {
    ret(!bit_arg(lua, &args, 1)?)
}

/// Folds every argument into the first with `op`. Like the C loop, the
/// arguments after the first are read from the last one down, which decides
/// which bad argument gets reported.
fn fold(lua: &Lua, args: &MultiValue, op: fn(u32, u32) -> u32) -> LibResult<MultiValue> {
    let mut b = bit_arg(lua, args, 1)?;
    for narg in (2..=args.len()).rev() {
        b = op(b, bit_arg(lua, args, narg)?);
    }
    ret(b)
}

fn band(lua: &Lua, args: MultiValue) -> LibResult<MultiValue> {
    fold(lua, &args, |a, b| a & b)
}

fn bor(lua: &Lua, args: MultiValue) -> LibResult<MultiValue> {
    fold(lua, &args, |a, b| a | b)
}

fn bxor(lua: &Lua, args: MultiValue) -> LibResult<MultiValue> {
    fold(lua, &args, |a, b| a ^ b)
}

/// Shifts and rotations: the count is taken modulo 32, as LuaBitOp does.
fn shift(lua: &Lua, args: &MultiValue, op: fn(u32, u32) -> u32) -> LibResult<MultiValue> {
    let b = bit_arg(lua, args, 1)?;
    let n = bit_arg(lua, args, 2)? & 31;
    ret(op(b, n))
}

fn lshift(lua: &Lua, args: MultiValue) -> LibResult<MultiValue> {
    shift(lua, &args, |b, n| b << n)
}

fn rshift(lua: &Lua, args: MultiValue) -> LibResult<MultiValue> {
    shift(lua, &args, |b, n| b >> n)
}

fn arshift(lua: &Lua, args: MultiValue) -> LibResult<MultiValue> {
    shift(lua, &args, |b, n| ((b as i32) >> n) as u32)
}

fn rol(lua: &Lua, args: MultiValue) -> LibResult<MultiValue> {
    shift(lua, &args, u32::rotate_left)
}

fn ror(lua: &Lua, args: MultiValue) -> LibResult<MultiValue> {
    shift(lua, &args, u32::rotate_right)
}

fn bswap(lua: &Lua, args: MultiValue) -> LibResult<MultiValue> {
    ret(bit_arg(lua, &args, 1)?.swap_bytes())
}

/// `bit.tohex(x [, n])`: the low `|n|` hex digits of `x` (8 by default, at
/// most 8), upper case when `n` is negative. `n` is only defaulted when
/// absent: an explicit nil is a bad argument, as in C.
fn tohex(lua: &Lua, args: MultiValue) -> LibResult<MultiValue> {
    let mut b = bit_arg(lua, &args, 1)?;
    let n = if args.len() < 2 {
        8
    } else {
        bit_arg(lua, &args, 2)? as i32
    };
    // -i32::MIN does not exist; LuaBitOp nudges it to -i32::MAX.
    let n = n.max(-i32::MAX);
    let digits: &[u8; 16] = if n < 0 {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let len = n.unsigned_abs().min(8) as usize;
    let mut buf = [0u8; 8];
    for slot in buf[..len].iter_mut().rev() {
        *slot = digits[(b & 15) as usize];
        b >>= 4;
    }
    Ok(one(Value::String(lua.create_string(&buf[..len])?)))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn redis_minimal_bitop_functionality() {
        let lua = lua();
        let () = eval(
            &lua,
            "assert(bit.tobit(1) == 1);
             assert(bit.band(1) == 1);
             assert(bit.bxor(1,2) == 3);
             assert(bit.bor(1,2,4,8,16,32,64,128) == 255)",
        );
    }

    #[test]
    fn redis_tohex_bug() {
        let lua = lua();
        let s: String = eval(&lua, "return bit.tohex(65535, -2147483648)");
        assert_eq!(s, "0000FFFF");
    }

    #[test]
    fn tohex_widths_and_case() {
        let lua = lua();
        let got: Vec<String> = eval(
            &lua,
            "return {bit.tohex(1), bit.tohex(-1), bit.tohex(0xff, 2), bit.tohex(65535, -4),
                     bit.tohex(0x12345678, 0), bit.tohex(0x12345678, 100), bit.tohex('255', '-3')}",
        );
        assert_eq!(got, ["00000001", "ffffffff", "ff", "FFFF", "", "12345678", "0FF"]);
        assert_eq!(
            error_of(&lua, "bit.tohex(1, nil)"),
            "bad argument #2 to 'tohex' (number expected, got nil)"
        );
    }

    #[test]
    fn normalisation_wraps_and_rounds() {
        let lua = lua();
        let got: Vec<f64> = eval(
            &lua,
            "return {bit.tobit(0xffffffff), bit.tobit(2^32 + 1), bit.tobit(-1),
                     bit.tobit(1.5), bit.tobit(2.5), bit.tobit(-0.5), bit.tobit(2^31),
                     bit.tobit('12')}",
        );
        assert_eq!(got, [-1.0, 1.0, -1.0, 2.0, 2.0, 0.0, -2147483648.0, 12.0]);
    }

    #[test]
    fn operations_match_luabitop() {
        let lua = lua();
        let got: Vec<f64> = eval(
            &lua,
            "return {bit.bnot(0), bit.band(0x12345678, 0xff), bit.bor(1, 2, 4),
                     bit.bxor(0xa5a5a5a5, 0xffffffff), bit.lshift(1, 0), bit.lshift(1, 8),
                     bit.lshift(1, 40), bit.rshift(256, 8), bit.rshift(-256, 8),
                     bit.arshift(-256, 8), bit.lshift(1, 31), bit.rol(0x12345678, 12),
                     bit.ror(0x12345678, 12), bit.rol(7, 0), bit.ror(7, 32),
                     bit.bswap(0x12345678), bit.bswap(0x56781234), bit.arshift(256, -1)}",
        );
        assert_eq!(
            got,
            [
                -1.0,
                120.0,
                7.0,
                1515870810.0,
                1.0,
                256.0,
                256.0,
                1.0,
                16777215.0,
                -1.0,
                -2147483648.0,
                1164411171.0,
                1736516421.0,
                7.0,
                7.0,
                2018915346.0,
                873625686.0,
                0.0,
            ]
        );
    }

    #[test]
    fn bad_arguments() {
        let lua = lua();
        assert_eq!(
            error_of(&lua, "bit.band(1, 'x', {})"),
            "bad argument #3 to 'band' (number expected, got table)"
        );
        assert_eq!(
            error_of(&lua, "bit.lshift(1)"),
            "bad argument #2 to 'lshift' (number expected, got no value)"
        );
        assert_eq!(
            error_of(&lua, "bit.tobit('abc')"),
            "bad argument #1 to 'tobit' (number expected, got string)"
        );
    }
}
