//! Lua scripting: `EVAL` scripts and `FUNCTION` libraries, Redis 7's API.
//!
//! * [`engine`] owns one Lua 5.1 state per worker thread (no global
//!   interpreter lock), builds its sandbox and runs scripts with a hook that
//!   watches the busy threshold and `SCRIPT KILL`.
//! * [`cache`] holds what every worker shares: the script bodies by SHA1,
//!   the function libraries' code, the generation counters that tell a worker
//!   to drop what it compiled, and the registry of running (busy) scripts.
//! * [`convert`] turns reply bytes into Lua values and Lua values into replies.
//! * [`functions`] parses `#!lua name=...` libraries and the DUMP format.
//! * [`libs`] are the libraries Redis bundles for scripts: `cjson`,
//!   `cmsgpack`, `bit` and `struct`, in Rust on mlua.
//!
//! The commands (and the lock handling that makes a script atomic across
//! threads) live in `command::scripting`; this module never touches a shard.

pub mod cache;
pub mod convert;
pub mod engine;
pub mod functions;
pub mod libs;

/// What a script or function may do, from its shebang or its registration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    /// Declared flags at all (a `#!lua` shebang, or any function): Redis
    /// then applies them instead of the legacy EVAL behaviour.
    pub declared: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
    pub no_cluster: bool,
    pub allow_cross_slot_keys: bool,
}

impl ScriptFlags {
    /// Parses one flag name; false if unknown.
    pub fn set(&mut self, name: &[u8]) -> bool {
        match name {
            b"no-writes" => self.no_writes = true,
            b"allow-oom" => self.allow_oom = true,
            b"allow-stale" => self.allow_stale = true,
            b"no-cluster" => self.no_cluster = true,
            b"allow-cross-slot-keys" => self.allow_cross_slot_keys = true,
            _ => return false,
        }
        true
    }

    /// The flag names, for FUNCTION LIST.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.no_writes {
            v.push("no-writes");
        }
        if self.allow_oom {
            v.push("allow-oom");
        }
        if self.allow_stale {
            v.push("allow-stale");
        }
        if self.no_cluster {
            v.push("no-cluster");
        }
        if self.allow_cross_slot_keys {
            v.push("allow-cross-slot-keys");
        }
        v
    }
}

/// The lowercase hex SHA1 of `body` (script cache keys, `redis.sha1hex`).
pub fn sha1hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// Parses an EVAL script's `#!lua flags=a,b` shebang. Returns the flags and
/// the body with the shebang line blanked (line numbers stay the same).
pub fn parse_shebang(body: &[u8]) -> Result<(ScriptFlags, std::borrow::Cow<'_, [u8]>), String> {
    if !body.starts_with(b"#!") {
        return Ok((ScriptFlags::default(), std::borrow::Cow::Borrowed(body)));
    }
    let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
    let line = &body[2..end];
    let mut parts = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
    if parts.next() != Some(b"lua") {
        return Err("ERR Unexpected engine in script shebang".into());
    }
    let mut flags = ScriptFlags {
        declared: true,
        ..ScriptFlags::default()
    };
    for part in parts {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(format!(
                "ERR Unknown lua shebang option: {}",
                String::from_utf8_lossy(part)
            ));
        };
        for flag in list.split(|&b| b == b',').filter(|f| !f.is_empty()) {
            if !flags.set(flag) {
                return Err(format!(
                    "ERR Unexpected flag in script shebang: {}",
                    String::from_utf8_lossy(flag)
                ));
            }
        }
    }
    Ok((flags, std::borrow::Cow::Owned(body[end..].to_vec())))
}

/// Loads library `code` on this thread's Lua state to learn its name and
/// functions (FUNCTION LOAD, RESTORE and WAL replay).
pub fn library_from_code(code: &[u8]) -> Result<cache::Library, String> {
    let (name, functions) = engine::with_engine(|e| {
        let (name, fns) = e.load_library(code)?;
        Ok((name, fns.into_iter().map(|(meta, _)| meta).collect()))
    })?;
    Ok(cache::Library {
        name,
        code: code.into(),
        functions,
    })
}

/// Applies a `Function` WAL record (replay): 1 = load (replacing), 2 =
/// delete, 3 = flush. A record that no longer applies is logged and skipped.
pub fn replay_function_record(op: u8, data: &[u8]) {
    let result = match op {
        1 => library_from_code(data).and_then(|lib| {
            cache::change_libraries(|libs| {
                let clashing: Vec<String> = lib
                    .functions
                    .iter()
                    .filter_map(|f| libs.functions.get(&f.name).cloned())
                    .filter(|owner| *owner != lib.name)
                    .collect();
                for name in clashing {
                    libs.remove(&name);
                }
                libs.add(lib, true)
            })
        }),
        2 => cache::change_libraries(|libs| {
            libs.remove(&String::from_utf8_lossy(data));
            Ok(())
        }),
        3 => cache::change_libraries(|libs| {
            *libs = cache::Libraries::default();
            Ok(())
        }),
        _ => Err(format!("unknown function record op {op}")),
    };
    if let Err(e) = result {
        tracing::warn!("WAL replay: a function record was skipped: {e}");
    }
}

/// Installs the bundled libraries (`cjson`, `cmsgpack`, `bit`, `struct`)
/// into a fresh state, before the sandbox locks globals.
pub(crate) fn register_libs(lua: &mlua::Lua) -> mlua::Result<()> {
    libs::register(lua)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1hex_matches_redis() {
        assert_eq!(sha1hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            sha1hex(b"Pizza & Mandolino"),
            "74822d82031af7493c20eefa13bd07ec4fada82f"
        );
    }

    #[test]
    fn shebang_flags_are_parsed_and_the_line_blanked() {
        let (flags, body) = parse_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
        assert!(flags.declared && flags.no_writes && flags.allow_oom);
        assert_eq!(&*body, b"\nreturn 1");
        assert!(parse_shebang(b"#!python\n").is_err());
        assert!(parse_shebang(b"#!lua foo=bar\n").is_err());
        assert!(parse_shebang(b"#!lua flags=nope\n").is_err());
    }
}
