//! CONFIG GET | SET | RESETSTAT | REWRITE | HELP, with Redis 7's replies and
//! errors.
//!
//! `CONFIG SET name value [name value ...]` is all or nothing: every pair is
//! parsed into a copy of the effective configuration first, and only if all
//! of them are valid is the copy applied (see `runtime::RuntimeConfig`).
//! Settings the running server cannot change (the port, the number of
//! shards, the WAL on/off switch, protocol limits…) are refused with Redis's
//! "can't set immutable config".

use std::fmt::Write as _;

use super::{is, CommandError, CommandResult, Ctx};
use crate::config::Config;
use crate::memory::parse_bytes;
use crate::store::{glob_match, EvictionPolicy};
use crate::wal::FsyncPolicy;

/// Settings `CONFIG SET` can change while the server runs.
pub const MUTABLE: &[&str] = &[
    "maxmemory",
    "maxmemory-policy",
    "maxmemory-samples",
    "lfu-log-factor",
    "lfu-decay-time",
    "timeout",
    "loglevel",
    "requirepass",
    "fsync",
    "appendfsync",
    "flush-interval-ms",
    "compact-min-size",
    "compact-growth-percent",
    "maxclients",
    "hash-max-listpack-entries",
    "hash-max-listpack-value",
    "hash-max-ziplist-entries",
    "hash-max-ziplist-value",
    "list-max-listpack-size",
    "list-max-ziplist-size",
    "list-compress-depth",
    "set-max-intset-entries",
    "set-max-listpack-entries",
    "set-max-listpack-value",
    "zset-max-listpack-entries",
    "zset-max-listpack-value",
    "zset-max-ziplist-entries",
    "zset-max-ziplist-value",
    "save",
    "busy-reply-threshold",
    "lua-time-limit",
    "client-output-buffer-limit",
    "notify-keyspace-events",
    "tracking-table-max-keys",
];

/// CONFIG subcommands.
pub fn config(c: &mut Ctx<'_, '_>) -> CommandResult {
    let sub = c.args.get(1);
    let argc = c.args.len();
    if is(sub, "get") {
        if argc < 3 {
            return Err(arity("config|get"));
        }
        get(c)
    } else if is(sub, "set") {
        if argc < 4 || argc % 2 != 0 {
            return Err(arity("config|set"));
        }
        set(c)
    } else if is(sub, "resetstat") {
        if argc != 2 {
            return Err(arity("config|resetstat"));
        }
        c.state.stats.reset();
        c.state.dbs.reset_counters();
        crate::memory::reset_peak();
        c.out.ok();
        Ok(())
    } else if is(sub, "rewrite") {
        if argc != 2 {
            return Err(arity("config|rewrite"));
        }
        rewrite(c)
    } else if is(sub, "help") && argc == 2 {
        let lines = [
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern> [<pattern> ...]",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value> [<directive> <value> ...]",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
            "HELP",
            "    Print this help.",
        ];
        c.out.status_lines(&lines);
        Ok(())
    } else {
        Err(CommandError::UnknownSubcommand {
            sub: String::from_utf8_lossy(sub).into_owned(),
            command: "CONFIG".into(),
        })
    }
}

fn arity(name: &str) -> CommandError {
    CommandError::Other(format!("ERR wrong number of arguments for '{name}' command"))
}

/// CONFIG GET pattern [pattern ...]: every setting matching any glob, once.
fn get(c: &mut Ctx<'_, '_>) -> CommandResult {
    let entries = c.state.runtime.snapshot().entries();
    let patterns: Vec<Vec<u8>> = c.args.iter_from(2).map(|p| p.to_ascii_lowercase()).collect();
    let matched: Vec<_> = entries
        .iter()
        .filter(|(name, _)| patterns.iter().any(|p| glob_match(p, name.as_bytes())))
        .collect();
    c.out.map(matched.len());
    for (name, value) in matched {
        c.out.bulk(name.as_bytes());
        c.out.bulk(value.as_bytes());
    }
    Ok(())
}

/// CONFIG SET name value [name value ...]
fn set(c: &mut Ctx<'_, '_>) -> CommandResult {
    let known: Vec<&'static str> = Config::default().entries().iter().map(|(n, _)| *n).collect();
    let mut next = c.state.runtime.snapshot();
    let mut seen: Vec<String> = Vec::new();
    let failed = |name: &str, reason: &str| {
        CommandError::Other(format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
        ))
    };
    // Unknown names are reported before anything else, as Redis does.
    for i in (2..c.args.len()).step_by(2) {
        let name = String::from_utf8_lossy(c.args.get(i)).to_ascii_lowercase();
        if !known.contains(&name.as_str()) {
            return Err(CommandError::Other(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                String::from_utf8_lossy(c.args.get(i))
            )));
        }
    }
    for i in (2..c.args.len()).step_by(2) {
        let name = String::from_utf8_lossy(c.args.get(i)).to_ascii_lowercase();
        let value = String::from_utf8_lossy(c.args.get(i + 1)).into_owned();
        if !MUTABLE.contains(&name.as_str()) {
            return Err(failed(&name, "can't set immutable config"));
        }
        // `fsync` and `appendfsync` are one setting under two spellings, as
        // are the hash thresholds under their listpack and ziplist names.
        let canonical = match name.as_str() {
            "appendfsync" => "fsync",
            "hash-max-ziplist-entries" => "hash-max-listpack-entries",
            "hash-max-ziplist-value" => "hash-max-listpack-value",
            "list-max-ziplist-size" => "list-max-listpack-size",
            "zset-max-ziplist-entries" => "zset-max-listpack-entries",
            "zset-max-ziplist-value" => "zset-max-listpack-value",
            "lua-time-limit" => "busy-reply-threshold",
            other => other,
        };
        if seen.iter().any(|s| s == canonical) {
            return Err(failed(&name, "duplicate parameter"));
        }
        seen.push(canonical.to_string());
        set_one(&mut next, &name, &value).map_err(|reason| failed(&name, &reason))?;
    }
    // A higher maxclients needs the descriptors for it, as Redis checks.
    if next.maxclients > c.state.runtime.maxclients() {
        let workers = c.state.config.worker_threads();
        if let Err(possible) = crate::server::fd_limit::fit_at_run_time(next.maxclients, workers) {
            return Err(failed(
                "maxclients",
                &format!(
                    "The operating system is not able to handle the specified number of clients, try with {possible}"
                ),
            ));
        }
    }
    // Hash thresholds are read on every hash write.
    let limits = crate::store::hash::limits();
    limits.set_max_entries(next.hash_max_listpack_entries);
    limits.set_max_value(next.hash_max_listpack_value);
    crate::store::types::apply_limits(&next);
    c.state.runtime.apply(next, c.state.wal().map(|w| &**w));
    if seen.iter().any(|s| s == "requirepass") {
        // The client that set the password keeps its access, as in Redis.
        c.client.authenticated = true;
    }
    c.out.ok();
    // A lower limit takes effect now, not at the next write.
    if seen.iter().any(|s| s.starts_with("maxmemory")) {
        let _ = super::maxmemory::make_room_fully(c.state);
    }
    Ok(())
}

fn int_in(value: &str, min: i64, max: i64) -> Result<i64, String> {
    let n: i64 = value
        .parse()
        .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
    if n < min || n > max {
        return Err(format!("argument must be between {min} and {max} inclusive"));
    }
    Ok(n)
}

fn memory_value(value: &str) -> Result<u64, String> {
    parse_bytes(value).ok_or_else(|| "argument must be a memory value".to_string())
}

/// Parses `value` for the mutable setting `name` into `config`.
fn set_one(config: &mut Config, name: &str, value: &str) -> Result<(), String> {
    const INT_MAX: i64 = i32::MAX as i64;
    match name {
        "maxmemory" => config.maxmemory = memory_value(value)?,
        "maxmemory-policy" => {
            config.maxmemory_policy = EvictionPolicy::parse(value).ok_or_else(|| {
                let names: Vec<&str> = EvictionPolicy::ALL.iter().map(|p| p.as_str()).collect();
                format!("argument(s) must be one of the following: {}", names.join(", "))
            })?
        }
        "maxmemory-samples" => config.maxmemory_samples = int_in(value, 1, 64)? as u32,
        "lfu-log-factor" => config.lfu_log_factor = int_in(value, 0, INT_MAX)? as u32,
        "lfu-decay-time" => config.lfu_decay_time = int_in(value, 0, INT_MAX)? as u32,
        "busy-reply-threshold" | "lua-time-limit" => {
            config.busy_reply_threshold = int_in(value, 0, i64::MAX)? as u64
        }
        "timeout" => config.timeout = int_in(value, 0, INT_MAX)? as u64,
        "maxclients" => config.maxclients = int_in(value, 1, crate::config::MAX_CLIENTS as i64)? as usize,
        "hash-max-listpack-entries" | "hash-max-ziplist-entries" => {
            config.hash_max_listpack_entries = int_in(value, 0, i64::MAX)? as usize
        }
        "hash-max-listpack-value" | "hash-max-ziplist-value" => {
            config.hash_max_listpack_value = int_in(value, 0, i64::MAX)? as usize
        }
        "list-max-listpack-size" | "list-max-ziplist-size" => {
            config.list_max_listpack_size = int_in(value, -5, INT_MAX)?;
            if config.list_max_listpack_size == 0 {
                return Err("argument must be between -5 and 2147483647 inclusive, and not 0".into());
            }
        }
        "list-compress-depth" => config.list_compress_depth = int_in(value, 0, INT_MAX)? as u64,
        "set-max-intset-entries" => config.set_max_intset_entries = int_in(value, 0, i64::MAX)? as usize,
        "set-max-listpack-entries" => config.set_max_listpack_entries = int_in(value, 0, i64::MAX)? as usize,
        "set-max-listpack-value" => config.set_max_listpack_value = int_in(value, 0, i64::MAX)? as usize,
        "zset-max-listpack-entries" | "zset-max-ziplist-entries" => {
            config.zset_max_listpack_entries = int_in(value, 0, i64::MAX)? as usize
        }
        "zset-max-listpack-value" | "zset-max-ziplist-value" => {
            config.zset_max_listpack_value = int_in(value, 0, i64::MAX)? as usize
        }
        "flush-interval-ms" => config.flush_interval_ms = int_in(value, 1, 60_000)? as u64,
        "compact-min-size" => config.compact_min_size = memory_value(value)?,
        "compact-growth-percent" => config.compact_growth_percent = int_in(value, 0, INT_MAX)? as u64,
        "client-output-buffer-limit" => config.client_output_buffer_limit.update(value)?,
        "notify-keyspace-events" => {
            config.notify_keyspace_events = crate::notify::Classes::parse(value)
                .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string())?
                .to_string()
        }
        "tracking-table-max-keys" => config.tracking_table_max_keys = int_in(value, 0, i64::MAX)? as u64,
        "requirepass" => config.requirepass = (!value.is_empty()).then(|| value.to_string()),
        // There are no RDB snapshots to schedule; clients that turn them off
        // (`CONFIG SET save ""`, common in test setups) get OK.
        "save" if value.is_empty() => {}
        "save" => {
            return Err(
                "kvserver takes no snapshots (the WAL is its persistence); only \"\" is accepted".into(),
            )
        }
        "loglevel" => {
            // Ours, plus Redis's names mapped onto them.
            config.loglevel = match value.to_ascii_lowercase().as_str() {
                l @ ("error" | "warn" | "info" | "debug" | "trace") => l.to_string(),
                "warning" => "warn".into(),
                "nothing" => "error".into(),
                "notice" => "info".into(),
                "verbose" => "debug".into(),
                _ => {
                    return Err("argument(s) must be one of the following: error, warn, info, debug, trace, warning, notice, verbose, nothing".into())
                }
            }
        }
        "fsync" => {
            config.fsync = value.to_ascii_lowercase().parse::<FsyncPolicy>().map_err(|_| {
                "argument(s) must be one of the following: always, interval, never".to_string()
            })?
        }
        "appendfsync" => {
            config.fsync = match value.to_ascii_lowercase().as_str() {
                "always" => FsyncPolicy::Always,
                "everysec" => FsyncPolicy::Interval,
                "no" => FsyncPolicy::Never,
                _ => return Err("argument(s) must be one of the following: always, everysec, no".into()),
            }
        }
        _ => return Err("can't set immutable config".into()),
    }
    Ok(())
}

/// CONFIG REWRITE: writes the running settings back to the `--config` file,
/// keeping its comments and layout (toml_edit). A key already in the file is
/// updated in place; a setting that differs from its default is added; a
/// key whose setting is now unset (`requirepass ""`) is removed. The new
/// file replaces the old one atomically (write, fsync, rename).
fn rewrite(c: &mut Ctx<'_, '_>) -> CommandResult {
    let Some(path) = c.state.config.config_file.clone() else {
        return Err(CommandError::Other(
            "ERR The server is running without a config file".into(),
        ));
    };
    let io_error = |what: &str, e: &dyn std::fmt::Display| {
        CommandError::Other(format!("ERR Rewriting config file: {what}: {e}"))
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_error("reading", &e)),
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| io_error("parsing", &e))?;
    let current = toml::Value::try_from(c.state.runtime.snapshot()).map_err(|e| io_error("encoding", &e))?;
    let defaults = toml::Value::try_from(Config::default()).map_err(|e| io_error("encoding", &e))?;
    let (Some(current), Some(defaults)) = (current.as_table(), defaults.as_table()) else {
        return Err(io_error("encoding", &"not a table"));
    };
    for (key, value) in current {
        if doc.contains_key(key) || defaults.get(key) != Some(value) {
            let rendered: toml_edit::Value =
                value.to_string().parse().map_err(|e| io_error("encoding", &e))?;
            match doc.get_mut(key).and_then(|item| item.as_value_mut()) {
                // Keep the comment decorations around an existing value.
                Some(existing) => {
                    let decor = existing.decor().clone();
                    *existing = rendered;
                    *existing.decor_mut() = decor;
                }
                None => doc[key.as_str()] = toml_edit::value(rendered),
            }
        }
    }
    let stale: Vec<String> = doc
        .iter()
        .map(|(k, _)| k.to_string())
        .filter(|k| !current.contains_key(k) && (defaults.contains_key(k) || k == "requirepass"))
        .collect();
    for key in stale {
        doc.remove(&key);
    }
    let mut out = doc.to_string();
    if !out.ends_with('\n') {
        let _ = writeln!(out);
    }
    let tmp = path.with_extension("rewrite.tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(out.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| io_error("writing", &e))?;
    c.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mutable_setting_is_a_known_setting() {
        let known: Vec<&str> = Config::default().entries().iter().map(|(n, _)| *n).collect();
        for name in MUTABLE {
            assert!(known.contains(name), "{name}");
        }
    }

    #[test]
    fn values_are_checked_with_redis_reasons() {
        let mut config = Config::default();
        set_one(&mut config, "maxmemory", "100mb").unwrap();
        assert_eq!(config.maxmemory, 100 * 1024 * 1024);
        assert_eq!(
            set_one(&mut config, "maxmemory", "lots").unwrap_err(),
            "argument must be a memory value"
        );
        assert!(set_one(&mut config, "maxmemory-policy", "lru")
            .unwrap_err()
            .contains("allkeys-lru"));
        assert_eq!(
            set_one(&mut config, "maxmemory-samples", "0").unwrap_err(),
            "argument must be between 1 and 64 inclusive"
        );
        set_one(&mut config, "appendfsync", "everysec").unwrap();
        assert_eq!(config.fsync, FsyncPolicy::Interval);
        set_one(&mut config, "loglevel", "notice").unwrap();
        assert_eq!(config.loglevel, "info");
        set_one(&mut config, "loglevel", "nothing").unwrap();
        assert_eq!(config.loglevel, "error");
        set_one(&mut config, "requirepass", "").unwrap();
        assert_eq!(config.requirepass, None);
    }
}
