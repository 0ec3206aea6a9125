//! SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE,
//! SUNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB and MONITOR, with Redis 7.0's
//! replies. The delivery machinery is `crate::pubsub`; this file only turns
//! arguments into calls on it and writes the confirmations.
//!
//! Confirmations are pushes (`>3` in RESP3, a 3-element array in RESP2):
//! `subscribe <channel> <count>` where count is channels plus patterns
//! (shard channels alone for SSUBSCRIBE), as Redis 7.0.

use super::{is, CommandError, CommandResult, Ctx};
use crate::protocol::Style;

/// The worker serving the calling client (0 in unit tests).
fn worker(c: &Ctx<'_, '_>) -> usize {
    c.client.handle.as_ref().map_or(0, |h| h.worker)
}

/// Remembers the style pushes to this client use (that of the command
/// that subscribed: a text client gets text messages).
fn remember_style(c: &mut Ctx<'_, '_>) {
    let style = match c.out.style() {
        Style::Resp3 => Style::Resp,
        other => other,
    };
    c.client.push_style = Some(style);
}

/// Updates the subscribed flag and publishes the counts to CLIENT LIST.
fn publish_counts(c: &mut Ctx<'_, '_>) {
    c.client.pubsub_flag = c.client.subs.any();
    if let Some(h) = &c.client.handle {
        use std::sync::atomic::Ordering::Relaxed;
        h.sub.store(c.client.subs.channels.len(), Relaxed);
        h.psub.store(c.client.subs.patterns.len(), Relaxed);
        h.ssub.store(c.client.subs.shard_channels.len(), Relaxed);
    }
}

fn confirm(c: &mut Ctx<'_, '_>, kind: &[u8], name: Option<&[u8]>, count: usize) {
    c.out.push(3);
    c.out.bulk(kind);
    match name {
        Some(name) => c.out.bulk(name),
        None => c.out.nil(),
    }
    c.out.int(count as i64);
}

/// SUBSCRIBE channel [channel ...]
pub fn subscribe(c: &mut Ctx<'_, '_>) -> CommandResult {
    subscribe_generic(c, false)
}

/// SSUBSCRIBE shardchannel [shardchannel ...]
pub fn ssubscribe(c: &mut Ctx<'_, '_>) -> CommandResult {
    subscribe_generic(c, true)
}

fn subscribe_generic(c: &mut Ctx<'_, '_>, shard: bool) -> CommandResult {
    remember_style(c);
    let (worker, id) = (worker(c), c.client.id);
    for i in 1..c.args.len() {
        let channel = c.args.get(i);
        c.state
            .pubsub
            .subscribe(&mut c.client.subs, worker, id, channel, shard);
        let count = if shard {
            c.client.subs.shard_channels.len()
        } else {
            c.client.subs.count()
        };
        confirm(
            c,
            if shard { b"ssubscribe" } else { b"subscribe" },
            Some(channel),
            count,
        );
    }
    publish_counts(c);
    Ok(())
}

/// UNSUBSCRIBE [channel ...]
pub fn unsubscribe(c: &mut Ctx<'_, '_>) -> CommandResult {
    unsubscribe_generic(c, false)
}

/// SUNSUBSCRIBE [shardchannel ...]
pub fn sunsubscribe(c: &mut Ctx<'_, '_>) -> CommandResult {
    unsubscribe_generic(c, true)
}

fn unsubscribe_generic(c: &mut Ctx<'_, '_>, shard: bool) -> CommandResult {
    let (worker, id) = (worker(c), c.client.id);
    let kind: &[u8] = if shard { b"sunsubscribe" } else { b"unsubscribe" };
    let count = |c: &Ctx<'_, '_>| {
        if shard {
            c.client.subs.shard_channels.len()
        } else {
            c.client.subs.count()
        }
    };
    let names: Vec<Vec<u8>> = if c.args.len() > 1 {
        c.args.iter_from(1).map(<[u8]>::to_vec).collect()
    } else if shard {
        c.client.subs.shard_channels.iter().cloned().collect()
    } else {
        c.client.subs.channels.iter().cloned().collect()
    };
    if names.is_empty() {
        let n = count(c);
        confirm(c, kind, None, n);
    }
    for channel in names {
        c.state
            .pubsub
            .unsubscribe(&mut c.client.subs, worker, id, &channel, shard);
        let n = count(c);
        confirm(c, kind, Some(&channel), n);
    }
    publish_counts(c);
    Ok(())
}

/// PSUBSCRIBE pattern [pattern ...]
pub fn psubscribe(c: &mut Ctx<'_, '_>) -> CommandResult {
    remember_style(c);
    let (worker, id) = (worker(c), c.client.id);
    for i in 1..c.args.len() {
        let pattern = c.args.get(i);
        c.state.pubsub.psubscribe(&mut c.client.subs, worker, id, pattern);
        let n = c.client.subs.count();
        confirm(c, b"psubscribe", Some(pattern), n);
    }
    publish_counts(c);
    Ok(())
}

/// PUNSUBSCRIBE [pattern ...]
pub fn punsubscribe(c: &mut Ctx<'_, '_>) -> CommandResult {
    let (worker, id) = (worker(c), c.client.id);
    let names: Vec<Vec<u8>> = if c.args.len() > 1 {
        c.args.iter_from(1).map(<[u8]>::to_vec).collect()
    } else {
        c.client.subs.patterns.iter().cloned().collect()
    };
    if names.is_empty() {
        let n = c.client.subs.count();
        confirm(c, b"punsubscribe", None, n);
    }
    for pattern in names {
        c.state
            .pubsub
            .punsubscribe(&mut c.client.subs, worker, id, &pattern);
        let n = c.client.subs.count();
        confirm(c, b"punsubscribe", Some(&pattern), n);
    }
    publish_counts(c);
    Ok(())
}

/// PUBLISH channel message: the number of receivers.
pub fn publish(c: &mut Ctx<'_, '_>) -> CommandResult {
    let n = c.state.pubsub.publish(c.args.get(1), c.args.get(2), false);
    c.out.int(n as i64);
    Ok(())
}

/// SPUBLISH shardchannel message: the number of shard subscribers.
pub fn spublish(c: &mut Ctx<'_, '_>) -> CommandResult {
    let n = c.state.pubsub.publish(c.args.get(1), c.args.get(2), true);
    c.out.int(n as i64);
    Ok(())
}

fn arity(name: &str) -> CommandError {
    CommandError::Other(format!("ERR wrong number of arguments for '{name}' command"))
}

/// PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT |
/// SHARDCHANNELS [pattern] | SHARDNUMSUB [channel ...] | HELP
pub fn pubsub(c: &mut Ctx<'_, '_>) -> CommandResult {
    let sub = c.args.get(1);
    let argc = c.args.len();
    let registry = &c.state.pubsub.registry;
    let channels = is(sub, "channels");
    if channels || is(sub, "shardchannels") {
        if argc > 3 {
            return Err(arity(if channels {
                "pubsub|channels"
            } else {
                "pubsub|shardchannels"
            }));
        }
        let pattern = (argc == 3).then(|| c.args.get(2));
        let names = registry.channel_names(pattern, !channels);
        c.out.array(names.len());
        for name in names {
            c.out.bulk(&name);
        }
    } else if is(sub, "numsub") || is(sub, "shardnumsub") {
        let shard = is(sub, "shardnumsub");
        c.out.array((argc - 2) * 2);
        for i in 2..argc {
            let channel = c.args.get(i);
            c.out.bulk(channel);
            c.out.int(registry.subscribers(channel, shard) as i64);
        }
    } else if is(sub, "numpat") {
        if argc != 2 {
            return Err(arity("pubsub|numpat"));
        }
        c.out.int(registry.pattern_count() as i64);
    } else if is(sub, "help") && argc == 2 {
        let lines = [
            "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
            "HELP",
            "    Print this help.",
        ];
        c.out.status_lines(&lines);
    } else {
        return Err(CommandError::UnknownSubcommand {
            sub: String::from_utf8_lossy(sub).into_owned(),
            command: "PUBSUB".into(),
        });
    }
    Ok(())
}

/// MONITOR: from now on this connection receives every command run by any
/// client (see `crate::monitor`). A second MONITOR is ignored, as Redis.
pub fn monitor(c: &mut Ctx<'_, '_>) -> CommandResult {
    if c.client.monitor {
        return Ok(());
    }
    remember_style(c);
    c.client.monitor = true;
    let worker = worker(c);
    c.state.pubsub.add_monitor(worker, c.client.id);
    if let Some(h) = &c.client.handle {
        h.monitor.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    c.out.ok();
    Ok(())
}

/// The commands a RESP2 client may send while subscribed (Redis's list).
pub fn allowed_while_subscribed(name: &str) -> bool {
    matches!(
        name,
        "ping"
            | "subscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "quit"
            | "reset"
    )
}

/// Leaves every subscription and monitor mode (RESET; a disconnect does
/// the same through `ServerState`).
pub fn leave_all(c: &mut Ctx<'_, '_>) {
    super::client::disable_tracking(c.state, c.client);
    let (worker, id) = (worker(c), c.client.id);
    c.state.pubsub.unsubscribe_all(&mut c.client.subs, worker, id);
    publish_counts(c);
    if c.client.monitor {
        c.client.monitor = false;
        c.state.pubsub.remove_monitor(worker, id);
        if let Some(h) = &c.client.handle {
            h.monitor.store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// A client disconnected: its subscriptions and monitor mode end (the
/// worker calls this from its close path).
pub fn disconnect(state: &crate::state::ServerState, client: &mut crate::state::ClientState, worker: usize) {
    state.pubsub.unsubscribe_all(&mut client.subs, worker, client.id);
    client.pubsub_flag = false;
    super::client::disable_tracking(state, client);
    if client.monitor {
        client.monitor = false;
        state.pubsub.remove_monitor(worker, client.id);
    }
}

/// Redis's `fullname` of a command for error messages: `client|list` for a
/// container command's subcommand, the name otherwise.
pub fn full_name(spec: &super::CommandSpec, args: &super::Args<'_>) -> String {
    const CONTAINERS: &[&str] = &["client", "config", "pubsub", "object", "memory", "command"];
    if CONTAINERS.contains(&spec.name) && args.len() > 1 {
        format!(
            "{}|{}",
            spec.name,
            String::from_utf8_lossy(args.get(1)).to_ascii_lowercase()
        )
    } else {
        spec.name.to_string()
    }
}
