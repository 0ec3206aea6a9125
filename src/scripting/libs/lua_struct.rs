//! `struct`: Roberto Ierusalimschy's struct library (as Redis vendors it),
//! packing Lua values into binary strings and back, described by a format.
//!
//! Format options: `>` big endian, `<` little endian, `!n` maximum alignment
//! (default 8), `x` a zero byte, `b B h H l L T` signed/unsigned char, short,
//! long and size_t (1, 2, 8, 8 bytes), `i[n] I[n]` integers of n bytes
//! (default 4, at most 32), `f d` float and double, `c[n]` n bytes of a
//! string (`c0`: the whole string when packing, the size taken from the
//! previous result when unpacking), `s` a NUL-terminated string; spaces are
//! ignored. Sizes and quirks are those of the C library on x86-64 Linux,
//! including its handling of integers wider than 8 bytes (the extra bytes
//! are zeros when packing and ignored when unpacking).

use mlua::{Lua, MultiValue, Table, Value};

use super::{
    arg_fail, c_double_to_i64, c_double_to_u64, check_number, check_string, fail, lib_function, one,
    opt_integer, spread_function, to_number, LibResult, ValueStack, LUA_MAX_C_STACK,
};

/// The widest integer option, in bytes.
const MAX_INT_SIZE: usize = 32;

/// The default (and largest useful) alignment: that of a double.
const MAX_ALIGN: usize = 8;

/// Builds the `struct` table.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", lib_function(lua, pack)?)?;
    t.raw_set("unpack", spread_function(lua, unpack)?)?;
    t.raw_set("size", lib_function(lua, size)?)?;
    Ok(t)
}

/// Byte order and alignment, changed by the control options.
struct Header {
    little: bool,
    align: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            little: cfg!(target_endian = "little"),
            align: 1,
        }
    }
}

/// A format string being read one option at a time.
struct Format<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Format<'_> {
    /// The next option character, if any.
    fn next_option(&mut self) -> Option<u8> {
        let opt = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(opt)
    }

    /// A decimal count following an option, or `default` when there is
    /// none; counts that do not fit a C `int` are an error.
    fn number(&mut self, default: usize) -> LibResult<usize> {
        let mut digits = self.bytes[self.pos..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .peekable();
        if digits.peek().is_none() {
            return Ok(default);
        }
        let mut n: i32 = 0;
        for &c in digits {
            let d = i32::from(c - b'0');
            n = match n.checked_mul(10).and_then(|n| n.checked_add(d)) {
                Some(n) => n,
                None => return fail("integral size overflow"),
            };
            self.pos += 1;
        }
        Ok(n as usize)
    }

    /// The size in bytes of option `opt` (reading its count), 0 for
    /// options that take no room or need no alignment.
    fn size(&mut self, opt: u8) -> LibResult<usize> {
        Ok(match opt {
            b'b' | b'B' | b'x' => 1,
            b'h' | b'H' => 2,
            b'l' | b'L' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.number(1)?,
            b'i' | b'I' => {
                let n = self.number(4)?;
                if n > MAX_INT_SIZE {
                    return fail(format!(
                        "integral size {n} is larger than limit of {MAX_INT_SIZE}"
                    ));
                }
                n
            }
            _ => 0,
        })
    }

    /// Applies a control option (`<`, `>`, `!n`, space); anything else is
    /// not a format option at all.
    fn control(&mut self, opt: u8, h: &mut Header) -> LibResult<()> {
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' => h.little = true,
            b'!' => {
                let a = self.number(MAX_ALIGN)?;
                if !a.is_power_of_two() {
                    return fail(format!("alignment {a} is not a power of 2"));
                }
                h.align = a;
            }
            _ => {
                let c = char::from(opt);
                return arg_fail(1, format!("invalid format option '{c}'"));
            }
        }
        Ok(())
    }
}

/// Padding needed before an item of `size` bytes at offset `len`: items
/// align to their size, capped by the header's alignment; strings never.
/// The arithmetic is C's, so odd sizes give C's odd paddings.
fn padding(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & size.wrapping_sub(1)) & size.wrapping_sub(1)
}

/// Whether `opt` is one of the integer options.
fn is_integer(opt: u8) -> bool {
    matches!(opt, b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I')
}

/// Appends `bytes` (given little-endian) in the header's byte order.
fn put_ordered(out: &mut Vec<u8>, mut bytes: Vec<u8>, little: bool) {
    if !little {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

/// `struct.pack(fmt, ...)`.
fn pack(lua: &Lua, args: MultiValue) -> LibResult<MultiValue> {
    let fmt = check_string(lua, &args, 1)?;
    let fmt = fmt.as_bytes();
    let mut f = Format { bytes: &fmt, pos: 0 };
    let mut h = Header::default();
    let mut out: Vec<u8> = Vec::new();
    let mut arg = 2;
    while let Some(opt) = f.next_option() {
        let mut size = f.size(opt)?;
        out.resize(out.len() + padding(out.len(), &h, opt, size), 0);
        match opt {
            _ if is_integer(opt) => {
                let n = check_number(lua, &args, arg)?;
                arg += 1;
                put_integer(&mut out, n, h.little, size);
            }
            b'x' => out.push(0),
            b'f' => {
                let n = check_number(lua, &args, arg)? as f32;
                arg += 1;
                put_ordered(&mut out, n.to_le_bytes().to_vec(), h.little);
            }
            b'd' => {
                let n = check_number(lua, &args, arg)?;
                arg += 1;
                put_ordered(&mut out, n.to_le_bytes().to_vec(), h.little);
            }
            b'c' | b's' => {
                let s = check_string(lua, &args, arg)?;
                let s = s.as_bytes();
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // struct.c names the argument after the string's.
                    return arg_fail(arg, "string too short");
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => f.control(opt, &mut h)?,
        }
    }
    Ok(one(Value::String(lua.create_string(&out)?)))
}

/// An integer of `size` bytes. The number is converted to 64 bits the way
/// C converts a double (signed when negative, unsigned otherwise); bytes
/// beyond the eighth are zero.
fn put_integer(out: &mut Vec<u8>, n: f64, little: bool, size: usize) {
    let mut value = if n < 0.0 {
        c_double_to_i64(n) as u64
    } else {
        c_double_to_u64(n)
    };
    let mut bytes = vec![0u8; size];
    for b in bytes.iter_mut() {
        *b = value as u8;
        value = value.checked_shr(8).unwrap_or(0);
    }
    put_ordered(out, bytes, little);
}

/// Reads an integer of `size` bytes: only the least significant 8 bytes
/// count, and signed values are sign-extended from the top bit of `size`
/// bytes with C's shift (modulo 64 on x86-64).
fn get_integer(data: &[u8], little: bool, signed: bool, size: usize) -> f64 {
    let mut l: u64 = 0;
    let mut push = |b: u8| l = (l << 8) | u64::from(b);
    if little {
        data[..size].iter().rev().for_each(|&b| push(b));
    } else {
        data[..size].iter().for_each(|&b| push(b));
    }
    if !signed {
        return l as f64;
    }
    let shift = (size as i64 * 8 - 1) as u32;
    let mask = u64::MAX.wrapping_shl(shift);
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

/// `struct.unpack(fmt, data [, pos])`: the values, then the position after
/// them.
fn unpack(lua: &Lua, args: MultiValue) -> LibResult<ValueStack> {
    let fmt = check_string(lua, &args, 1)?;
    let fmt = fmt.as_bytes();
    let data = check_string(lua, &args, 2)?;
    let data = data.as_bytes();
    let ld = data.len();
    // struct.c keeps the position in a size_t: negative ones wrap around.
    let pos = opt_integer(lua, &args, 3, 1)?;
    if pos == 0 {
        return arg_fail(3, "offset must be 1 or greater");
    }
    let mut pos = (pos as usize).wrapping_sub(1);
    let mut f = Format { bytes: &fmt, pos: 0 };
    let mut h = Header::default();
    let mut results = ValueStack::new(lua)?;
    let fits = |pos: usize, size: usize| size <= ld && pos <= ld - size;
    while let Some(opt) = f.next_option() {
        let mut size = f.size(opt)?;
        pos = pos.wrapping_add(padding(pos, &h, opt, size));
        if !fits(pos, size) {
            return arg_fail(2, "data string too short");
        }
        // C needs a slot for this item and one for the final position.
        if args.len() + results.len() as usize + 2 > LUA_MAX_C_STACK {
            return fail("stack overflow (too many results)");
        }
        let item = &data[pos..];
        match opt {
            _ if is_integer(opt) => {
                let signed = opt.is_ascii_lowercase();
                let n = get_integer(item, h.little, signed, size);
                results.push(Value::Number(n))?;
            }
            b'x' => {}
            b'f' => {
                let mut b = [item[0], item[1], item[2], item[3]];
                if !h.little {
                    b.reverse();
                }
                results.push(Value::Number(f32::from_le_bytes(b).into()))?;
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&item[..8]);
                if !h.little {
                    b.reverse();
                }
                results.push(Value::Number(f64::from_le_bytes(b)))?;
            }
            b'c' => {
                if size == 0 {
                    size = previous_size(lua, &mut results)?;
                    if !fits(pos, size) {
                        return arg_fail(2, "data string too short");
                    }
                }
                let s = lua.create_string(&data[pos..pos + size])?;
                results.push(Value::String(s))?;
            }
            b's' => {
                let Some(len) = item.iter().position(|&b| b == 0) else {
                    return fail("unfinished string in data");
                };
                size = len + 1;
                results.push(Value::String(lua.create_string(&item[..len])?))?;
            }
            _ => f.control(opt, &mut h)?,
        }
        pos = pos.wrapping_add(size);
    }
    results.push(Value::Integer(pos.wrapping_add(1) as i64))?;
    Ok(results)
}

/// For `c0` when unpacking: the previous result, which must be a number,
/// is the length, and is consumed.
fn previous_size(lua: &Lua, results: &mut ValueStack) -> LibResult<usize> {
    let previous = results.top()?;
    let Some(n) = to_number(lua, Some(&previous)).filter(|_| results.len() > 0) else {
        return fail("format 'c0' needs a previous size");
    };
    results.pop()?;
    Ok(c_double_to_u64(n) as usize)
}

/// `struct.size(fmt)`: the packed size of a format with no variable-size
/// items. Unknown letters count as nothing here (struct.c only rejects
/// unknown punctuation in `size`).
fn size(lua: &Lua, args: MultiValue) -> LibResult<MultiValue> {
    let fmt = check_string(lua, &args, 1)?;
    let fmt = fmt.as_bytes();
    let mut f = Format { bytes: &fmt, pos: 0 };
    let mut h = Header::default();
    let mut pos: usize = 0;
    while let Some(opt) = f.next_option() {
        let size = f.size(opt)?;
        pos = pos.wrapping_add(padding(pos, &h, opt, size));
        if opt == b's' {
            return arg_fail(1, "option 's' has no fixed size");
        }
        if opt == b'c' && size == 0 {
            return arg_fail(1, "option 'c0' has no fixed size");
        }
        if !opt.is_ascii_alphanumeric() {
            f.control(opt, &mut h)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(one(Value::Integer(pos as i64)))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    /// The bytes of a string result as hex.
    fn hex(lua: &mlua::Lua, code: &str) -> String {
        let s: mlua::String = eval(lua, code);
        s.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn pack_integers_in_both_orders() {
        let lua = lua();
        assert_eq!(hex(&lua, "return struct.pack('>i', 1)"), "00000001");
        assert_eq!(hex(&lua, "return struct.pack('<i', 1)"), "01000000");
        assert_eq!(hex(&lua, "return struct.pack('>h', -2)"), "fffe");
        assert_eq!(
            hex(&lua, "return struct.pack('>bBhHlL', -1, 255, 1, 2, 3, 4)"),
            concat!("ffff", "0001", "0002", "0000000000000003", "0000000000000004")
        );
        assert_eq!(hex(&lua, "return struct.pack('>i3', 0x123456)"), "123456");
        assert_eq!(
            hex(&lua, "return struct.pack('<i10', -1)"),
            "ffffffffffffffff0000"
        );
        assert_eq!(hex(&lua, "return struct.pack('>I2', 65537)"), "0001");
        assert_eq!(hex(&lua, "return struct.pack('i0', 5)"), "");
    }

    #[test]
    fn pack_floats_strings_and_padding() {
        let lua = lua();
        assert_eq!(hex(&lua, "return struct.pack('>d', 1.5)"), "3ff8000000000000");
        assert_eq!(hex(&lua, "return struct.pack('<f', 1.5)"), "0000c03f");
        assert_eq!(hex(&lua, "return struct.pack('s', 'ab')"), "616200");
        assert_eq!(hex(&lua, "return struct.pack('c0', 'abc')"), "616263");
        assert_eq!(hex(&lua, "return struct.pack('c2', 'abc')"), "6162");
        assert_eq!(hex(&lua, "return struct.pack('xbx', 7)"), "000700");
        assert_eq!(hex(&lua, "return struct.pack('!>bi', 1, 2)"), "0100000000000002");
        assert_eq!(hex(&lua, "return struct.pack('!2>bi', 1, 2)"), "010000000002");
        assert_eq!(hex(&lua, "return struct.pack('>bi', 1, 2)"), "0100000002");
        assert_eq!(hex(&lua, "return struct.pack(' > b ', 1)"), "01");
    }

    #[test]
    fn unpack_round_trips_and_returns_next_position() {
        let lua = lua();
        let got: Vec<mlua::Value> = eval(
            &lua,
            "return {struct.unpack('>iHbs c3 d', struct.pack('>iHbs c3 d', -5, 65535, -1, 'hi', 'xyz', 0.25))}",
        );
        let shown: Vec<String> = got.iter().map(|v| format!("{v:?}")).collect();
        assert_eq!(shown.len(), 7);
        let got: String = eval(
            &lua,
            "local a, b, c, d, e, f, pos = struct.unpack('>iHbs c3 d', struct.pack('>iHbs c3 d', -5, 65535, -1, 'hi', 'xyz', 0.25))
             return table.concat({a, b, c, d, e, f, pos}, ' ')",
        );
        assert_eq!(got, "-5 65535 -1 hi xyz 0.25 22");
        let got: String = eval(
            &lua,
            "local s, pos, none = struct.unpack('<i2 c0', struct.pack('<i2 c0', 3, 'abc'))
             local x, pos2 = struct.unpack('b', '\\1\\2\\3', 2)
             return s .. ' ' .. pos .. ' ' .. x .. ' ' .. pos2 .. ' ' .. tostring(none)",
        );
        assert_eq!(got, "abc 6 2 3 nil");
        let got: String = eval(
            &lua,
            "return table.concat({struct.unpack('<I8 >i16 <i9', string.rep('\\255', 8) .. string.rep('\\255', 16) .. string.rep('\\0', 8) .. '\\128')}, ' ')",
        );
        assert_eq!(got, "1.844674407371e+19 -1 0 34");
    }

    #[test]
    fn size_of_formats() {
        let lua = lua();
        let got: Vec<i64> = eval(
            &lua,
            "return {struct.size('i'), struct.size('bhlTd'), struct.size('!bd'), struct.size('!4bd'),
                     struct.size('c10x'), struct.size('i7'), struct.size('zq')}",
        );
        assert_eq!(got, [4, 1 + 2 + 8 + 8 + 8, 16, 12, 11, 7, 0]);
        assert_eq!(
            error_of(&lua, "struct.size('s')"),
            "bad argument #1 to 'size' (option 's' has no fixed size)"
        );
        assert_eq!(
            error_of(&lua, "struct.size('c0')"),
            "bad argument #1 to 'size' (option 'c0' has no fixed size)"
        );
    }

    #[test]
    fn format_and_data_errors() {
        let lua = lua();
        let cases = [
            (
                "struct.pack('z', 1)",
                "bad argument #1 to 'pack' (invalid format option 'z')",
            ),
            (
                "struct.pack('i33', 1)",
                "integral size 33 is larger than limit of 32",
            ),
            ("struct.pack('i99999999999', 1)", "integral size overflow"),
            ("struct.pack('!3i', 1)", "alignment 3 is not a power of 2"),
            (
                "struct.pack('i')",
                "bad argument #2 to 'pack' (number expected, got no value)",
            ),
            (
                "struct.pack('c5', 'ab')",
                "bad argument #3 to 'pack' (string too short)",
            ),
            (
                "struct.unpack('i', 'ab')",
                "bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.unpack('b', 'ab', 0)",
                "bad argument #3 to 'unpack' (offset must be 1 or greater)",
            ),
            (
                "struct.unpack('b', 'ab', -1)",
                "bad argument #2 to 'unpack' (data string too short)",
            ),
            ("struct.unpack('s', 'ab')", "unfinished string in data"),
            ("struct.unpack('c0', 'ab')", "format 'c0' needs a previous size"),
            (
                "struct.unpack('bc0', '\\5ab')",
                "bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.unpack('q', 'ab')",
                "bad argument #1 to 'unpack' (invalid format option 'q')",
            ),
            (
                "struct.unpack(string.rep('x', 9000), string.rep('a', 9000))",
                "stack overflow (too many results)",
            ),
            (
                "struct.unpack(string.rep('b', 9000), string.rep('a', 9000))",
                "stack overflow (too many results)",
            ),
        ];
        for (code, want) in cases {
            if code.contains("rep('x'") {
                // 'x' produces no results, so there is no overflow.
                let _: mlua::MultiValue = eval(&lua, &format!("return {code}"));
                continue;
            }
            assert_eq!(error_of(&lua, code), want, "{code}");
        }
    }

    #[test]
    fn unpack_near_the_result_limit() {
        let lua = lua();
        let n: i64 = eval(
            &lua,
            "return select('#', struct.unpack(string.rep('b', 7995), string.rep('a', 7995)))",
        );
        assert_eq!(n, 7996);
    }
}
