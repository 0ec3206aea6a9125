//! Introspection of single keys: TOUCH, OBJECT FREQ|IDLETIME|ENCODING|REFCOUNT,
//! MEMORY USAGE. OBJECT and MEMORY never count as an access (Redis's
//! `LOOKUP_NOTOUCH`); TOUCH is nothing else.

use super::{locate, CommandError, CommandResult, Ctx};
use crate::store::{evict, Entry, ShardMap, ValueRef};

/// TOUCH key [key ...]: how many of the keys exist; each one is marked accessed.
pub fn touch(c: &mut Ctx<'_, '_>) -> CommandResult {
    let mut count = 0;
    for key in c.args.iter_from(1) {
        let (map, hash) = locate(&mut c.db, key)?;
        count += i64::from(map.get_live(hash, key, c.now).0.is_some());
    }
    c.out.int(count);
    Ok(())
}

/// The live entry for the key argument at `index`, without touching it.
fn peek<'m>(map: &'m ShardMap, hash: u64, key: &[u8], now: u64) -> Option<Entry<'m>> {
    map.get_raw(hash, key).filter(|s| !s.is_expired(now))
}

fn unknown_subcommand(sub: &[u8], command: &str) -> CommandError {
    CommandError::UnknownSubcommand {
        sub: String::from_utf8_lossy(sub).into_owned(),
        command: command.into(),
    }
}

fn help(c: &mut Ctx<'_, '_>, lines: &[&str]) -> CommandResult {
    c.out.status_lines(lines);
    Ok(())
}

/// Redis's encoding names for a string: `int` for a decimal that round-trips
/// through a 64-bit integer, `embstr` up to 44 bytes, `raw` beyond.
fn string_encoding(value: &[u8]) -> &'static str {
    let is_int = value.len() <= 20
        && crate::protocol::parse_i64(value).is_some_and(|n| {
            let mut digits = itoa::Buffer::new();
            digits.format(n).as_bytes() == value
        });
    if is_int {
        "int"
    } else if value.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

/// OBJECT FREQ|IDLETIME|ENCODING|REFCOUNT key, OBJECT HELP
pub fn object(c: &mut Ctx<'_, '_>) -> CommandResult {
    let sub = c.args.get(1);
    let is = |word: &str| sub.eq_ignore_ascii_case(word.as_bytes());
    if is("help") && c.args.len() == 2 {
        return help(
            c,
            &[
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
                "HELP",
                "    Print this help.",
            ],
        );
    }
    if !["freq", "idletime", "encoding", "refcount"].iter().any(|w| is(w)) {
        return Err(unknown_subcommand(sub, "OBJECT"));
    }
    if c.args.len() != 3 {
        return Err(CommandError::Other(format!(
            "ERR wrong number of arguments for 'object|{}' command",
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        )));
    }
    let key = c.args.get(2);
    let now = c.now;
    let policy = c.state.runtime.policy();
    let (map, hash) = locate(&mut c.db, key)?;
    let Some(slot) = peek(map, hash, key, now) else {
        c.out.nil();
        return Ok(());
    };
    if is("encoding") {
        let encoding = match slot.value_ref() {
            ValueRef::String(value) => string_encoding(value),
            ValueRef::Hash(hash) => hash.encoding(),
            ValueRef::Collection(value) => value.encoding(),
        };
        c.out.bulk(encoding.as_bytes());
    } else if is("refcount") {
        c.out.int(1);
    } else if is("idletime") {
        if policy.is_lfu() {
            return Err(CommandError::Other("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.".into()));
        }
        c.out.int((evict::idle_ms(slot.access(), now) / 1000) as i64);
    } else {
        if !policy.is_lfu() {
            return Err(CommandError::Other("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.".into()));
        }
        c.out.int(i64::from(evict::lfu_counter(slot.access(), now)));
    }
    Ok(())
}

/// MEMORY USAGE key [SAMPLES count], MEMORY HELP
pub fn memory(c: &mut Ctx<'_, '_>) -> CommandResult {
    let sub = c.args.get(1);
    if sub.eq_ignore_ascii_case(b"help") && c.args.len() == 2 {
        return help(
            c,
            &[
                "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "USAGE <key> [SAMPLES <count>]",
                "    Return memory in bytes used by <key> and its value. Nested values are",
                "    sampled up to <count> times (default: 5, 0 means sample all).",
                "HELP",
                "    Print this help.",
            ],
        );
    }
    if !sub.eq_ignore_ascii_case(b"usage") {
        return Err(unknown_subcommand(sub, "MEMORY"));
    }
    match c.args.len() {
        3 => {}
        5 if c.args.get(3).eq_ignore_ascii_case(b"samples") => {
            let samples = super::int_arg(c.args.get(4))?;
            if samples < 0 {
                return Err(CommandError::Syntax);
            }
        }
        2 => {
            return Err(CommandError::Other(
                "ERR wrong number of arguments for 'memory|usage' command".into(),
            ))
        }
        _ => return Err(CommandError::Syntax),
    }
    let key = c.args.get(2);
    let now = c.now;
    let (map, hash) = locate(&mut c.db, key)?;
    match peek(map, hash, key, now) {
        Some(slot) => {
            let bytes = slot.footprint();
            c.out.int(bytes as i64);
        }
        None => c.out.nil(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_encodings_follow_redis() {
        assert_eq!(string_encoding(b"12345"), "int");
        assert_eq!(string_encoding(b"-7"), "int");
        assert_eq!(string_encoding(b"007"), "embstr");
        assert_eq!(string_encoding(b"hello"), "embstr");
        assert_eq!(string_encoding(&[b'x'; 44]), "embstr");
        assert_eq!(string_encoding(&[b'x'; 45]), "raw");
    }
}
