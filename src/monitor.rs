//! MONITOR: every command any client runs, as one line per command in
//! Redis's format, sent to every client in monitor mode on any worker.
//!
//! ```text
//! +1339518083.107412 [0 127.0.0.1:60866] "keys" "*"
//! ```
//! The executor calls [`feed`] after a command ran, but only once
//! `PubSub::monitoring` (one relaxed load) says someone listens, so the
//! cost without monitors is that load. Arguments are quoted as Redis's
//! `sdscatrepr` does; AUTH's and HELLO's secrets are shown as `(redacted)`,
//! as Redis 7 does. Administrative commands (CONFIG, SHUTDOWN, …) are not
//! shown, as in Redis.

use crate::command::{Args, CommandSpec};
use crate::state::ServerState;

/// Formats and mails one command to the monitors (`addr` is the client's
/// `ip:port`, `db` its database).
pub fn feed(state: &ServerState, spec: &CommandSpec, args: &Args<'_>, db: usize, addr: &str) {
    if spec.flags.admin {
        return;
    }
    state
        .pubsub
        .feed_monitors(line(spec, args, db, addr, std::time::SystemTime::now()));
}

/// The line without its leading `+` (the reply encoder adds it).
pub fn line(
    spec: &CommandSpec,
    args: &Args<'_>,
    db: usize,
    addr: &str,
    at: std::time::SystemTime,
) -> Vec<u8> {
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut out = format!(
        "{}.{:06} [{} {}]",
        since.as_secs(),
        since.subsec_micros(),
        db,
        addr
    )
    .into_bytes();
    let redacted = redacted_from(spec, args);
    for i in 0..args.len() {
        out.push(b' ');
        if redacted.as_ref().is_some_and(|r| r(i)) {
            out.extend_from_slice(b"\"(redacted)\"");
        } else {
            quote(&mut out, args.get(i));
        }
    }
    out
}

/// Which arguments hide a secret: all of AUTH's, and the two after
/// HELLO's `AUTH` option.
fn redacted_from(spec: &CommandSpec, args: &Args<'_>) -> Option<Box<dyn Fn(usize) -> bool>> {
    match spec.name {
        "auth" => Some(Box::new(|i| i >= 1)),
        "hello" => {
            let at = (2..args.len()).find(|&i| args.get(i).eq_ignore_ascii_case(b"auth"))?;
            Some(Box::new(move |i| i == at + 1 || i == at + 2))
        }
        _ => None,
    }
}

/// Redis's `sdscatrepr`: a double-quoted string with `\\`, `\"`, `\n`,
/// `\r`, `\t`, `\a`, `\b` escaped and other non-printables as `\xHH`.
pub fn quote(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b'"');
    for &b in arg {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_as_sdscatrepr() {
        let mut out = Vec::new();
        quote(&mut out, b"a\"b\\c\n\x01 ok");
        assert_eq!(out, b"\"a\\\"b\\\\c\\n\\x01 ok\"");
    }
}
