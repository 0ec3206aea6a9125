//! Function libraries: the `#!lua name=<lib>` header, the arguments of
//! `redis.register_function`, and the FUNCTION DUMP payload.
//!
//! The DUMP payload is kvserver's own (Redis's is an RDB fragment): a magic,
//! each library's code length-prefixed, and a CRC32C, so RESTORE refuses a
//! damaged or foreign payload with Redis's message instead of loading junk.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::time::Instant;

use mlua::{Function, Lua, MultiValue, Value};

use super::cache::{FunctionMeta, Running};
use super::ScriptFlags;

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

const BAD_NAME: &str =
    "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// Parses the library header; returns its name and the code with the
/// header line blanked (line numbers stay the same).
pub fn parse_header(code: &[u8]) -> Result<(String, Cow<'_, [u8]>), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let end = code.iter().position(|&b| b == b'\n').unwrap_or(code.len());
    let line = &code[2..end];
    let mut parts = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let engine = if line.first() == Some(&b' ') {
        &b""[..]
    } else {
        parts.next().unwrap_or(b"")
    };
    if engine != b"lua" {
        return Err(format!(
            "ERR Engine '{}' not found",
            String::from_utf8_lossy(engine)
        ));
    }
    let mut name: Option<Vec<u8>> = None;
    for part in parts {
        let Some(value) = part.strip_prefix(b"name=") else {
            return Err(format!(
                "ERR Invalid metadata value given: {}",
                String::from_utf8_lossy(part)
            ));
        };
        if name.is_some() {
            return Err("ERR Invalid metadata value, name argument was given multiple times".into());
        }
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        name = Some(value.to_vec());
    }
    let name = name.ok_or_else(|| "ERR Library name was not given".to_string())?;
    if !valid_name(&name) {
        return Err(BAD_NAME.into());
    }
    Ok((
        String::from_utf8_lossy(&name).into_owned(),
        Cow::Owned(code[end..].to_vec()),
    ))
}

fn flags_from(value: Value) -> Result<ScriptFlags, String> {
    let mut flags = ScriptFlags {
        declared: true,
        ..ScriptFlags::default()
    };
    let Value::Table(t) = value else {
        return Err(
            "ERR flags argument to redis.register_function must be a table representing function flags"
                .into(),
        );
    };
    for v in t.sequence_values::<Value>() {
        match v {
            Ok(Value::String(s)) if flags.set(&s.as_bytes()) => {}
            _ => return Err("ERR unknown flag given".into()),
        }
    }
    Ok(flags)
}

/// The arguments of `redis.register_function`: `(name, callback)` or one
/// table `{function_name=, callback=, flags=, description=}`.
pub fn parse_registration(_lua: &Lua, args: MultiValue) -> Result<(FunctionMeta, Function), String> {
    let args: Vec<Value> = args.into_iter().collect();
    let (name, callback, flags, description) = match args.len() {
        1 => {
            let Value::Table(t) = &args[0] else {
                return Err("ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".into());
            };
            let (mut name, mut callback, mut flags, mut description) = (None, None, None, None);
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| format!("ERR {e}"))?;
                let key = match &k {
                    Value::String(s) => s.as_bytes().to_vec(),
                    _ => {
                        return Err(
                            "ERR named argument key given to redis.register_function is not a string".into(),
                        )
                    }
                };
                match &key[..] {
                    b"function_name" => match v {
                        Value::String(s) => name = Some(s.as_bytes().to_vec()),
                        _ => return Err(
                            "ERR function_name argument given to redis.register_function must be a string"
                                .into(),
                        ),
                    },
                    b"callback" => {
                        match v {
                            Value::Function(f) => callback = Some(f),
                            _ => return Err(
                                "ERR callback argument given to redis.register_function must be a function"
                                    .into(),
                            ),
                        }
                    }
                    b"description" => {
                        match v {
                            Value::String(s) => {
                                description = Some(String::from_utf8_lossy(&s.as_bytes()).into_owned())
                            }
                            _ => return Err(
                                "ERR description argument given to redis.register_function must be a string"
                                    .into(),
                            ),
                        }
                    }
                    b"flags" => flags = Some(flags_from(v)?),
                    _ => return Err("ERR unknown argument given to redis.register_function".into()),
                }
            }
            let name = name.ok_or("ERR redis.register_function must get a function name argument")?;
            let callback = callback.ok_or("ERR redis.register_function must get a callback argument")?;
            (name, callback, flags, description)
        }
        2 => {
            let name = match &args[0] {
                Value::String(s) => s.as_bytes().to_vec(),
                _ => return Err("ERR first argument to redis.register_function must be a string".into()),
            };
            let callback = match &args[1] {
                Value::Function(f) => f.clone(),
                _ => return Err("ERR second argument to redis.register_function must be a function".into()),
            };
            (name, callback, None, None)
        }
        _ => return Err("ERR wrong number of arguments to redis.register_function".into()),
    };
    if !valid_name(&name) {
        return Err(BAD_NAME.into());
    }
    let flags = flags.unwrap_or(ScriptFlags {
        declared: true,
        ..ScriptFlags::default()
    });
    Ok((
        FunctionMeta {
            name: String::from_utf8_lossy(&name).into_owned(),
            description,
            flags,
        },
        callback,
    ))
}

/// A registry entry for a library's top-level code while it loads (only
/// its deadline matters).
pub fn loading_entry() -> Running {
    Running {
        name: String::new(),
        is_eval: false,
        command: Vec::new(),
        started: Instant::now(),
        busy: AtomicBool::new(false),
        kill: AtomicBool::new(false),
        wrote: AtomicBool::new(false),
        physical: AtomicUsize::new(0),
        shards: AtomicU64::new(0),
        every: AtomicBool::new(false),
    }
}

const DUMP_MAGIC: &[u8] = b"KVFN\x01";

/// FUNCTION DUMP: every library's code in one payload.
pub fn dump<'a>(codes: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = DUMP_MAGIC.to_vec();
    for code in codes {
        out.extend_from_slice(&(code.len() as u32).to_le_bytes());
        out.extend_from_slice(code);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// FUNCTION RESTORE: the library codes of a payload made by [`dump`].
pub fn undump(payload: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    const BAD: &str = "ERR payload version or checksum are wrong";
    if payload.len() < DUMP_MAGIC.len() + 4 || !payload.starts_with(DUMP_MAGIC) {
        return Err(BAD.into());
    }
    let (body, crc) = payload.split_at(payload.len() - 4);
    if crc32c::crc32c(body).to_le_bytes() != crc {
        return Err(BAD.into());
    }
    let mut rest = &body[DUMP_MAGIC.len()..];
    let mut codes = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or(BAD)?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > tail.len() {
            return Err(BAD.into());
        }
        codes.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_name_the_library_or_say_what_is_wrong() {
        assert_eq!(parse_header(b"#!lua name=lib\nx").unwrap().0, "lib");
        assert_eq!(parse_header(b"#!lua name=\"foo\"\nx").unwrap().0, "foo");
        assert_eq!(
            parse_header(b"#! name=test\n").unwrap_err(),
            "ERR Engine '' not found"
        );
        assert_eq!(
            parse_header(b"#!lua name=test foo=bar\n").unwrap_err(),
            "ERR Invalid metadata value given: foo=bar"
        );
        assert_eq!(
            parse_header(b"#!lua\n").unwrap_err(),
            "ERR Library name was not given"
        );
        assert!(parse_header(b"#!lua name=a-b\n")
            .unwrap_err()
            .contains("Library names"));
    }

    #[test]
    fn a_dump_restores_and_a_damaged_one_is_refused() {
        let codes: Vec<&[u8]> = vec![b"#!lua name=a\n", b"#!lua name=b\n"];
        let payload = dump(codes.iter().copied());
        assert_eq!(
            undump(&payload).unwrap(),
            vec![codes[0].to_vec(), codes[1].to_vec()]
        );
        let mut bad = payload.clone();
        bad[6] ^= 1;
        assert!(undump(&bad).is_err());
        assert!(undump(b"junk").is_err());
    }
}
