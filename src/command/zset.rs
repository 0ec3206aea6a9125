//! Sorted-set commands (Redis 7.2): ZADD & co, ranks, every ZRANGE form,
//! pops, removals by range, ZSCAN, ZRANDMEMBER, ZMPOP and the set algebra
//! (ZUNION, ZINTER, ZDIFF, their `STORE` forms and ZINTERCARD).
//!
//! Every write logs its *effect* as a sorted-set collection record
//! (`store::types::zset`): members with their absolute resulting scores
//! (`OP_ADD`, so ZINCRBY logs the sum, never the increment) or the members
//! removed (`OP_REM`, so a pop logs which members it took). `*STORE`
//! commands log a `Del` of the destination and then the new value as a
//! snapshot, as RENAME does.
//!
//! Error strings and reply shapes follow `t_zset.c`: RESP3 clients get
//! scores as doubles and `WITHSCORES` results as `[member, score]` pairs,
//! RESP2 clients flat arrays with scores as bulk strings.

use super::{int_arg, is, locate, CommandError, CommandResult, Ctx};
use crate::blocking::Serve;
use crate::protocol::reply::format_double;
use crate::protocol::{Replies, Style};
use crate::store::types::zset::{add_payload, parse_score, rem_payload, LexBound, ScoreBound, ZSet, OP_REM};
use crate::store::types::{Collection, OP_ADD, TYPE_ZSET};
use crate::store::{random_u64, Locked, Value, ValueKind};
use crate::wal::Record;

fn nan_error() -> CommandError {
    CommandError::Other("ERR resulting score is not a number (NaN)".into())
}

fn min_max_float_error() -> CommandError {
    CommandError::Other("ERR min or max is not a float".into())
}

fn lex_error() -> CommandError {
    CommandError::Other("ERR min or max not valid string range item".into())
}

fn positive_error() -> CommandError {
    CommandError::Other("ERR value is out of range, must be positive".into())
}

/// Parses a score argument (`ERR value is not a valid float`).
fn score_arg(arg: &[u8]) -> Result<f64, CommandError> {
    parse_score(arg).ok_or(CommandError::NotFloat)
}

/// Reads the live sorted set at `key` (None: missing), counting the hit or miss.
fn read_zset<'m>(
    db: &'m mut Option<&mut Locked<'_>>,
    key: &[u8],
    now: u64,
    hits: &mut u64,
    misses: &mut u64,
) -> Result<Option<&'m ZSet>, CommandError> {
    let (map, hash) = locate(db, key)?;
    let found = map
        .collection_get(hash, key, now, ValueKind::ZSet)?
        .and_then(Collection::as_zset);
    if found.is_some() {
        *hits += 1;
    } else {
        *misses += 1;
    }
    Ok(found)
}

macro_rules! read_zset {
    ($c:expr, $key:expr) => {
        read_zset(&mut $c.db, $key, $c.now, &mut $c.hits, &mut $c.misses)
    };
}

/// Runs `f` on the sorted set at `key` (created empty first if `create`);
/// `Ok(None)` when missing. An emptied set is deleted by the store.
fn update_zset<R>(
    c: &mut Ctx<'_, '_>,
    key: &[u8],
    create: bool,
    f: impl FnOnce(&mut ZSet) -> R,
) -> Result<Option<R>, CommandError> {
    let now = c.now;
    let (map, hash) = locate(&mut c.db, key)?;
    Ok(map
        .collection_update(hash, key, now, ValueKind::ZSet, create, |col| {
            col.as_zset_mut().map(f)
        })?
        .flatten())
}

/// Logs members set to absolute scores.
fn log_add(c: &mut Ctx<'_, '_>, key: &[u8], entries: &[(&[u8], f64)]) {
    if !entries.is_empty() {
        c.log.push(Record::Collection {
            key,
            op: TYPE_ZSET | OP_ADD,
            payload: &add_payload(entries),
        });
        // Clients blocked in BZPOPMIN & co on this key (under its shard lock).
        super::list::signal_ready(c, key, entries.len());
    }
}

/// Logs members removed.
fn log_rem<'a>(c: &mut Ctx<'_, '_>, key: &[u8], members: impl IntoIterator<Item = &'a [u8]>) {
    let payload = rem_payload(members);
    if payload[..4] != [0, 0, 0, 0] {
        c.log.push(Record::Collection {
            key,
            op: TYPE_ZSET | OP_REM,
            payload: &payload,
        });
    }
}

fn is_resp3(out: &Replies) -> bool {
    out.style() == Style::Resp3
}

/// Replies with members, optionally with scores: RESP3 pairs
/// `[[m, s], …]`, elsewhere a flat `[m, s, …]`.
fn reply_members<M: AsRef<[u8]>>(out: &mut Replies, items: &[(M, f64)], withscores: bool) {
    if !withscores {
        out.array(items.len());
        for (m, _) in items {
            out.bulk(m.as_ref());
        }
    } else if is_resp3(out) {
        out.array(items.len());
        for (m, s) in items {
            out.array(2);
            out.bulk(m.as_ref());
            out.double(*s);
        }
    } else {
        out.array(items.len() * 2);
        for (m, s) in items {
            out.bulk(m.as_ref());
            out.double(*s);
        }
    }
}

// ------------------------------------------------------------- ZADD & co

/// ZADD's option flags.
#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What one ZADD/ZINCRBY did: counts for the reply, the changed members
/// for the log, and the last resulting score (for INCR).
struct AddOutcome<'a> {
    added: i64,
    updated: i64,
    processed: i64,
    score: f64,
    changed: Vec<(&'a [u8], f64)>,
}

/// Applies score/member pairs under `flags`. A NaN result stops with an
/// error (only possible with INCR, whose single pair is then unapplied).
fn add_pairs<'a>(
    z: &mut ZSet,
    pairs: &[(f64, &'a [u8])],
    flags: AddFlags,
) -> Result<AddOutcome<'a>, CommandError> {
    let mut out = AddOutcome {
        added: 0,
        updated: 0,
        processed: 0,
        score: 0.0,
        changed: Vec::new(),
    };
    for &(score, member) in pairs {
        match z.score(member) {
            Some(current) => {
                if flags.nx {
                    continue;
                }
                let new = if flags.incr { current + score } else { score };
                if new.is_nan() {
                    return Err(nan_error());
                }
                if (flags.lt && new >= current) || (flags.gt && new <= current) {
                    continue;
                }
                out.processed += 1;
                out.score = new;
                if new != current {
                    z.insert(member, new);
                    out.updated += 1;
                    out.changed.push((member, new));
                }
            }
            None => {
                if flags.xx {
                    continue;
                }
                z.insert(member, score);
                out.added += 1;
                out.processed += 1;
                out.score = score;
                out.changed.push((member, score));
            }
        }
    }
    Ok(out)
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
pub fn zadd(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let key = args.get(1);
    let mut flags = AddFlags::default();
    let mut i = 2;
    while i < args.len() {
        let word = args.get(i);
        if is(word, "nx") {
            flags.nx = true;
        } else if is(word, "xx") {
            flags.xx = true;
        } else if is(word, "gt") {
            flags.gt = true;
        } else if is(word, "lt") {
            flags.lt = true;
        } else if is(word, "ch") {
            flags.ch = true;
        } else if is(word, "incr") {
            flags.incr = true;
        } else {
            break;
        }
        i += 1;
    }
    let elements = args.len() - i;
    if elements == 0 || elements % 2 == 1 {
        return Err(CommandError::Syntax);
    }
    if flags.nx && flags.xx {
        return Err(CommandError::Other(
            "ERR XX and NX options at the same time are not compatible".into(),
        ));
    }
    if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
        return Err(CommandError::Other(
            "ERR GT, LT, and/or NX options at the same time are not compatible".into(),
        ));
    }
    if flags.incr && elements > 2 {
        return Err(CommandError::Other(
            "ERR INCR option supports a single increment-element pair".into(),
        ));
    }
    let mut pairs = Vec::with_capacity(elements / 2);
    for j in (i..args.len()).step_by(2) {
        pairs.push((score_arg(args.get(j))?, args.get(j + 1)));
    }
    let outcome = update_zset(c, key, !flags.xx, |z| add_pairs(z, &pairs, flags))?;
    let outcome = match outcome {
        Some(result) => Some(result?),
        None => None,
    };
    if let Some(o) = &outcome {
        log_add(c, key, &o.changed);
    }
    let o = outcome.unwrap_or(AddOutcome {
        added: 0,
        updated: 0,
        processed: 0,
        score: 0.0,
        changed: Vec::new(),
    });
    if flags.incr {
        if o.processed > 0 {
            c.out.double(o.score);
        } else {
            c.out.nil();
        }
    } else {
        c.out.int(if flags.ch { o.added + o.updated } else { o.added });
    }
    Ok(())
}

/// ZINCRBY key increment member
pub fn zincrby(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let key = args.get(1);
    let pairs = [(score_arg(args.get(2))?, args.get(3))];
    let flags = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    let outcome = update_zset(c, key, true, |z| add_pairs(z, &pairs, flags))?;
    if let Some(result) = outcome {
        let o = result?;
        log_add(c, key, &o.changed);
        c.out.double(o.score);
    }
    Ok(())
}

/// ZREM key member [member ...]
pub fn zrem(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let key = args.get(1);
    let removed = update_zset(c, key, false, |z| {
        args.iter_from(2)
            .filter(|m| z.remove(m).is_some())
            .collect::<Vec<_>>()
    })?
    .unwrap_or_default();
    log_rem(c, key, removed.iter().copied());
    c.out.int(removed.len() as i64);
    Ok(())
}

/// ZCARD key
pub fn zcard(c: &mut Ctx<'_, '_>) -> CommandResult {
    let len = read_zset!(c, c.args.get(1))?.map_or(0, ZSet::len);
    c.out.int(len as i64);
    Ok(())
}

/// ZSCORE key member
pub fn zscore(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    match read_zset!(c, args.get(1))?.and_then(|z| z.score(args.get(2))) {
        Some(s) => c.out.double(s),
        None => c.out.nil(),
    }
    Ok(())
}

/// ZMSCORE key member [member ...]
pub fn zmscore(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let found = read_zset!(c, args.get(1))?;
    let out = &mut *c.out;
    out.array(args.len() - 2);
    for member in args.iter_from(2) {
        match found.and_then(|z| z.score(member)) {
            Some(s) => out.double(s),
            None => out.nil(),
        }
    }
    Ok(())
}

fn rank_generic(c: &mut Ctx<'_, '_>, rev: bool) -> CommandResult {
    let args = c.args;
    let withscore = match args.len() {
        3 => false,
        4 if is(args.get(3), "withscore") => true,
        _ => return Err(CommandError::Syntax),
    };
    let found = read_zset!(c, args.get(1))?;
    let member = args.get(2);
    let hit = found.and_then(|z| {
        let rank = z.rank(member)?;
        let rank = if rev { z.len() - 1 - rank } else { rank };
        Some((rank, z.score(member)?))
    });
    let out = &mut *c.out;
    match (hit, withscore) {
        (Some((rank, _)), false) => out.int(rank as i64),
        (Some((rank, score)), true) => {
            out.array(2);
            out.int(rank as i64);
            out.double(score);
        }
        (None, false) => out.nil(),
        (None, true) => out.null_array(),
    }
    Ok(())
}

/// ZRANK key member [WITHSCORE]
pub fn zrank(c: &mut Ctx<'_, '_>) -> CommandResult {
    rank_generic(c, false)
}

/// ZREVRANK key member [WITHSCORE]
pub fn zrevrank(c: &mut Ctx<'_, '_>) -> CommandResult {
    rank_generic(c, true)
}

// ------------------------------------------------------------------ ranges

/// What a range selects.
#[derive(Clone, Copy)]
enum RangeBy<'a> {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound<'a>, LexBound<'a>),
}

/// A parsed ZRANGE-family request.
struct RangeQuery<'a> {
    by: RangeBy<'a>,
    rev: bool,
    offset: i64,
    /// -1: no limit.
    limit: i64,
    withscores: bool,
}

/// The fixed parts of a range command: its type and direction before options.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Auto,
    Rank,
    Score,
    Lex,
}

/// Parses `min max [options]` starting at `at` (min's index), as
/// `zrangeGenericCommand`: `kind`/`rev` preset by the legacy commands.
fn parse_range<'a>(
    args: super::Args<'a>,
    at: usize,
    store: bool,
    mut kind: Kind,
    preset_rev: Option<bool>,
) -> Result<RangeQuery<'a>, CommandError> {
    let mut rev = preset_rev;
    let (mut offset, mut limit, mut withscores) = (0i64, -1i64, false);
    let mut j = at + 2;
    while j < args.len() {
        let word = args.get(j);
        let left = args.len() - j - 1;
        if !store && is(word, "withscores") {
            withscores = true;
        } else if is(word, "limit") && left >= 2 {
            offset = int_arg(args.get(j + 1))?;
            limit = int_arg(args.get(j + 2))?;
            j += 2;
        } else if rev.is_none() && is(word, "rev") {
            rev = Some(true);
        } else if kind == Kind::Auto && is(word, "bylex") {
            kind = Kind::Lex;
        } else if kind == Kind::Auto && is(word, "byscore") {
            kind = Kind::Score;
        } else {
            return Err(CommandError::Syntax);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if kind == Kind::Auto {
        kind = Kind::Rank;
    }
    if limit != -1 && kind == Kind::Rank {
        return Err(CommandError::Other(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX".into(),
        ));
    }
    if withscores && kind == Kind::Lex {
        return Err(CommandError::Other(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX".into(),
        ));
    }
    let (mut lo, mut hi) = (args.get(at), args.get(at + 1));
    if rev && kind != Kind::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let by = match kind {
        Kind::Score => RangeBy::Score(
            ScoreBound::parse(lo).ok_or_else(min_max_float_error)?,
            ScoreBound::parse(hi).ok_or_else(min_max_float_error)?,
        ),
        Kind::Lex => RangeBy::Lex(
            LexBound::parse(lo).ok_or_else(lex_error)?,
            LexBound::parse(hi).ok_or_else(lex_error)?,
        ),
        _ => RangeBy::Rank(int_arg(lo)?, int_arg(hi)?),
    };
    Ok(RangeQuery {
        by,
        rev,
        offset,
        limit,
        withscores,
    })
}

/// Ascending ranks `start..end` of a ZRANGE-style rank pair (negative
/// indexes count from the end), as `genericZrangebyrankCommand` sanitizes.
fn rank_window(len: usize, start: i64, stop: i64) -> (usize, usize) {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut stop = if stop < 0 { len + stop } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return (0, 0);
    }
    if stop >= len {
        stop = len - 1;
    }
    (start as usize, stop as usize + 1)
}

/// The members a range query selects, in reply order.
fn run_range<'z>(z: &'z ZSet, q: &RangeQuery<'_>) -> Vec<(&'z [u8], f64)> {
    let len = z.len();
    let (start, end) = match q.by {
        RangeBy::Rank(a, b) => {
            let (s, e) = rank_window(len, a, b);
            if q.rev {
                // Reverse ranks count from the top.
                return if s < e {
                    z.range(len - e, len - s, true)
                } else {
                    Vec::new()
                };
            }
            return z.range(s, e, false);
        }
        RangeBy::Score(min, max) => z.score_ranks(min, max),
        RangeBy::Lex(min, max) => z.lex_ranks(min, max),
    };
    if q.offset < 0 || q.limit == 0 {
        return Vec::new();
    }
    let available = end - start;
    let offset = usize::try_from(q.offset).unwrap_or(usize::MAX);
    if offset >= available {
        return Vec::new();
    }
    let take = if q.limit < 0 {
        available - offset
    } else {
        usize::try_from(q.limit)
            .unwrap_or(usize::MAX)
            .min(available - offset)
    };
    if q.rev {
        z.range(end - offset - take, end - offset, true)
    } else {
        z.range(start + offset, start + offset + take, false)
    }
}

fn range_reply(c: &mut Ctx<'_, '_>, kind: Kind, rev: Option<bool>) -> CommandResult {
    let args = c.args;
    let q = parse_range(args, 2, false, kind, rev)?;
    let found = read_zset!(c, args.get(1))?;
    let items = found.map(|z| run_range(z, &q)).unwrap_or_default();
    reply_members(c.out, &items, q.withscores);
    Ok(())
}

/// ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
pub fn zrange(c: &mut Ctx<'_, '_>) -> CommandResult {
    range_reply(c, Kind::Auto, None)
}

/// ZREVRANGE key start stop [WITHSCORES]
pub fn zrevrange(c: &mut Ctx<'_, '_>) -> CommandResult {
    range_reply(c, Kind::Rank, Some(true))
}

/// ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]
pub fn zrangebyscore(c: &mut Ctx<'_, '_>) -> CommandResult {
    range_reply(c, Kind::Score, Some(false))
}

/// ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]
pub fn zrevrangebyscore(c: &mut Ctx<'_, '_>) -> CommandResult {
    range_reply(c, Kind::Score, Some(true))
}

/// ZRANGEBYLEX key min max [LIMIT offset count]
pub fn zrangebylex(c: &mut Ctx<'_, '_>) -> CommandResult {
    range_reply(c, Kind::Lex, Some(false))
}

/// ZREVRANGEBYLEX key max min [LIMIT offset count]
pub fn zrevrangebylex(c: &mut Ctx<'_, '_>) -> CommandResult {
    range_reply(c, Kind::Lex, Some(true))
}

/// Replaces `dst` with a sorted set of `entries` (or deletes it when
/// empty), logging `Del` and the snapshot. Returns the new cardinality.
fn store_result(c: &mut Ctx<'_, '_>, dst: &[u8], entries: &[(Vec<u8>, f64)]) -> Result<usize, CommandError> {
    let (map, hash) = locate(&mut c.db, dst)?;
    let existed = map.remove(hash, dst);
    if entries.is_empty() {
        if existed {
            c.log.push(Record::Del { key: dst });
        }
        return Ok(0);
    }
    let z = ZSet::from_entries(entries.iter().map(|(m, s)| (&m[..], *s)));
    let len = z.len();
    let value = Collection::ZSet(z);
    c.log.push(Record::Del { key: dst });
    value.snapshot(dst, &mut |record| c.log.push(record));
    map.put_value(hash, dst, Value::Collection(value), 0);
    Ok(len)
}

/// Owned (member, score) pairs: a copy taken before another key is touched.
type Entries = Vec<(Vec<u8>, f64)>;

fn owned(items: Vec<(&[u8], f64)>) -> Entries {
    items.into_iter().map(|(m, s)| (m.to_vec(), s)).collect()
}

/// ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
pub fn zrangestore(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let q = parse_range(args, 3, true, Kind::Auto, None)?;
    let found = read_zset!(c, args.get(2))?;
    let items = found.map(|z| owned(run_range(z, &q))).unwrap_or_default();
    let len = store_result(c, args.get(1), &items)?;
    c.out.int(len as i64);
    Ok(())
}

/// ZCOUNT key min max
pub fn zcount(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let min = ScoreBound::parse(args.get(2)).ok_or_else(min_max_float_error)?;
    let max = ScoreBound::parse(args.get(3)).ok_or_else(min_max_float_error)?;
    let n = read_zset!(c, args.get(1))?.map_or(0, |z| {
        let (s, e) = z.score_ranks(min, max);
        e - s
    });
    c.out.int(n as i64);
    Ok(())
}

/// ZLEXCOUNT key min max
pub fn zlexcount(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let min = LexBound::parse(args.get(2)).ok_or_else(lex_error)?;
    let max = LexBound::parse(args.get(3)).ok_or_else(lex_error)?;
    let n = read_zset!(c, args.get(1))?.map_or(0, |z| {
        let (s, e) = z.lex_ranks(min, max);
        e - s
    });
    c.out.int(n as i64);
    Ok(())
}

/// Removes ascending ranks chosen by `window` and logs the members.
fn remove_range(c: &mut Ctx<'_, '_>, window: impl FnOnce(&ZSet) -> (usize, usize)) -> CommandResult {
    let key = c.args.get(1);
    let removed = update_zset(c, key, false, |z| {
        let (s, e) = window(z);
        let members = owned(z.range(s, e, false));
        for (m, _) in &members {
            z.remove(m);
        }
        members
    })?
    .unwrap_or_default();
    log_rem(c, key, removed.iter().map(|(m, _)| &m[..]));
    c.out.int(removed.len() as i64);
    Ok(())
}

/// ZREMRANGEBYRANK key start stop
pub fn zremrangebyrank(c: &mut Ctx<'_, '_>) -> CommandResult {
    let (start, stop) = (int_arg(c.args.get(2))?, int_arg(c.args.get(3))?);
    remove_range(c, |z| rank_window(z.len(), start, stop))
}

/// ZREMRANGEBYSCORE key min max
pub fn zremrangebyscore(c: &mut Ctx<'_, '_>) -> CommandResult {
    let min = ScoreBound::parse(c.args.get(2)).ok_or_else(min_max_float_error)?;
    let max = ScoreBound::parse(c.args.get(3)).ok_or_else(min_max_float_error)?;
    remove_range(c, |z| z.score_ranks(min, max))
}

/// ZREMRANGEBYLEX key min max
pub fn zremrangebylex(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let min = LexBound::parse(args.get(2)).ok_or_else(lex_error)?;
    let max = LexBound::parse(args.get(3)).ok_or_else(lex_error)?;
    remove_range(c, |z| z.lex_ranks(min, max))
}

// -------------------------------------------------------------------- pops

/// Pops up to `count` members from the low (`max` false) or high end.
fn pop(
    c: &mut Ctx<'_, '_>,
    key: &[u8],
    count: usize,
    max: bool,
) -> Result<Vec<(Vec<u8>, f64)>, CommandError> {
    let popped = update_zset(c, key, false, |z| {
        let len = z.len();
        let n = count.min(len);
        let items = if max {
            owned(z.range(len - n, len, true))
        } else {
            owned(z.range(0, n, false))
        };
        for (m, _) in &items {
            z.remove(m);
        }
        items
    })?
    .unwrap_or_default();
    log_rem(c, key, popped.iter().map(|(m, _)| &m[..]));
    Ok(popped)
}

fn pop_generic(c: &mut Ctx<'_, '_>, max: bool) -> CommandResult {
    let args = c.args;
    if args.len() > 3 {
        return Err(CommandError::Syntax);
    }
    let count = if args.len() == 3 {
        let n = int_arg(args.get(2))?;
        if n < 0 {
            return Err(positive_error());
        }
        Some(usize::try_from(n).unwrap_or(usize::MAX))
    } else {
        None
    };
    let key = args.get(1);
    // WRONGTYPE first, even with a count of 0.
    read_zset!(c, key)?;
    let popped = pop(c, key, count.unwrap_or(1), max)?;
    let out = &mut *c.out;
    if count.is_some() && is_resp3(out) {
        reply_members(out, &popped, true);
    } else {
        out.array(popped.len() * 2);
        for (m, s) in &popped {
            out.bulk(m);
            out.double(*s);
        }
    }
    Ok(())
}

/// ZPOPMIN key [count]
pub fn zpopmin(c: &mut Ctx<'_, '_>) -> CommandResult {
    pop_generic(c, false)
}

/// ZPOPMAX key [count]
pub fn zpopmax(c: &mut Ctx<'_, '_>) -> CommandResult {
    pop_generic(c, true)
}

/// Parses a `numkeys` argument at `at`: the count of keys after it.
/// `numkeys` that is not an integer answers `error` too when
/// `custom_parse_error` (ZMPOP: Redis passes its message to the parser),
/// the generic integer error otherwise (ZUNION & co).
fn numkeys_arg(
    args: super::Args<'_>,
    at: usize,
    custom_parse_error: bool,
    error: impl Fn() -> CommandError,
) -> Result<usize, CommandError> {
    let n = match int_arg(args.get(at)) {
        Ok(n) => n,
        Err(_) if custom_parse_error => return Err(error()),
        Err(e) => return Err(e),
    };
    if n < 1 {
        return Err(error());
    }
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n > args.len() - at - 1 {
        return Err(CommandError::Syntax);
    }
    Ok(n)
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
pub fn zmpop(c: &mut Ctx<'_, '_>) -> CommandResult {
    let spec = parse_zmpop(c.args, 1)?;
    if !zmpop_from(c, 1, &spec)? {
        c.out.null_array();
    }
    Ok(())
}

/// The options of ZMPOP and BZMPOP.
struct ZmPop {
    numkeys: usize,
    max: bool,
    count: Option<usize>,
}

/// Parses `numkeys key... MIN|MAX [COUNT n]` with `numkeys` at argument `first`.
fn parse_zmpop(args: super::Args<'_>, first: usize) -> Result<ZmPop, CommandError> {
    let numkeys = numkeys_arg(args, first, true, || {
        CommandError::Other("ERR numkeys should be greater than 0".into())
    })?;
    let where_at = first + 1 + numkeys;
    if where_at >= args.len() {
        return Err(CommandError::Syntax);
    }
    let max = if is(args.get(where_at), "min") {
        false
    } else if is(args.get(where_at), "max") {
        true
    } else {
        return Err(CommandError::Syntax);
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && is(args.get(j), "count") && j + 1 < args.len() {
            let count_error = || CommandError::Other("ERR count should be greater than 0".into());
            let n = int_arg(args.get(j + 1)).map_err(|_| count_error())?;
            if n < 1 {
                return Err(count_error());
            }
            count = Some(usize::try_from(n).unwrap_or(usize::MAX));
            j += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(ZmPop { numkeys, max, count })
}

/// ZMPOP's work with `numkeys` at argument `first`: pops from the first
/// non-empty sorted set and writes `[key, [[member, score] ...]]` (true),
/// or writes nothing (false).
fn zmpop_from(c: &mut Ctx<'_, '_>, first: usize, spec: &ZmPop) -> Result<bool, CommandError> {
    let args = c.args;
    for key in args.iter_from(first + 1).take(spec.numkeys) {
        if read_zset!(c, key)?.is_none() {
            continue;
        }
        let popped = pop(c, key, spec.count.unwrap_or(1), spec.max)?;
        let out = &mut *c.out;
        out.array(2);
        out.bulk(key);
        out.array(popped.len());
        for (m, s) in &popped {
            out.array(2);
            out.bulk(m);
            out.double(*s);
        }
        return Ok(true);
    }
    Ok(false)
}

/// BZPOPMIN/BZPOPMAX key [key ...] timeout: `[key, member, score]` from the
/// first non-empty sorted set, or block (`list::block_on`).
fn blocking_pop(c: &mut Ctx<'_, '_>, max: bool) -> CommandResult {
    if super::list::take_served(c) {
        return Ok(());
    }
    let last = c.args.len() - 1;
    let timeout = super::list::parse_timeout(c.args.get(last))?;
    for k in 1..last {
        let key = c.args.get(k);
        if read_zset!(c, key)?.is_none() {
            continue;
        }
        let popped = pop(c, key, 1, max)?;
        if let Some((member, score)) = popped.first() {
            c.out.array(3);
            c.out.bulk(key);
            c.out.bulk(member);
            c.out.double(*score);
            return Ok(());
        }
    }
    let keys: Vec<&[u8]> = (1..last).map(|k| c.args.get(k)).collect();
    let serve = Serve::ZSet { max, count: None };
    super::list::block_on(c, &keys, timeout, Replies::null_array, Some(serve))
}

/// Pops for a client blocked in BZPOPMIN & co, rendering its reply in
/// `out` (see `list::signal_ready`); the number of members taken, or None
/// if `key` holds no sorted set to pop from.
pub fn serve_blocked(
    c: &mut Ctx<'_, '_>,
    key: &[u8],
    max: bool,
    count: Option<usize>,
    out: &mut Replies,
) -> Option<usize> {
    let popped = pop(c, key, count.unwrap_or(1), max).ok()?;
    let (member, score) = popped.first()?;
    out.array(if count.is_some() { 2 } else { 3 });
    out.bulk(key);
    match count {
        None => {
            out.bulk(member);
            out.double(*score);
        }
        Some(_) => {
            out.array(popped.len());
            for (m, s) in &popped {
                out.array(2);
                out.bulk(m);
                out.double(*s);
            }
        }
    }
    Some(popped.len())
}

/// BZPOPMIN key [key ...] timeout
pub fn bzpopmin(c: &mut Ctx<'_, '_>) -> CommandResult {
    blocking_pop(c, false)
}

/// BZPOPMAX key [key ...] timeout
pub fn bzpopmax(c: &mut Ctx<'_, '_>) -> CommandResult {
    blocking_pop(c, true)
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
pub fn bzmpop(c: &mut Ctx<'_, '_>) -> CommandResult {
    if super::list::take_served(c) {
        return Ok(());
    }
    let timeout = super::list::parse_timeout(c.args.get(1))?;
    let spec = parse_zmpop(c.args, 2)?;
    if zmpop_from(c, 2, &spec)? {
        return Ok(());
    }
    let keys: Vec<&[u8]> = c.args.iter_from(3).take(spec.numkeys).collect();
    let serve = Serve::ZSet {
        max: spec.max,
        count: Some(spec.count.unwrap_or(1)),
    };
    super::list::block_on(c, &keys, timeout, Replies::null_array, Some(serve))
}

// ------------------------------------------------------------ scan, random

/// ZSCAN key cursor [MATCH pattern] [COUNT n]
///
/// A listpack-encoded set is returned whole with cursor 0, as Redis does;
/// a skiplist is walked by rank (the cursor is the next rank), see
/// `docs/types/zset.md` for how that differs from Redis's guarantee.
pub fn zscan(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let cursor = super::scan_cursor(args.get(2))?;
    let super::ScanOptions { pattern, count, .. } = super::scan_options(args, 3, false)?;
    let found = read_zset!(c, args.get(1))?;
    let (next, items) = match found {
        None => (0, Vec::new()),
        Some(z) if z.encoding() == "listpack" => (0, z.entries()),
        Some(z) => {
            let start = usize::try_from(cursor).unwrap_or(usize::MAX).min(z.len());
            let end = start.saturating_add(count).min(z.len());
            let next = if end >= z.len() { 0 } else { end as u64 };
            (next, z.range(start, end, false))
        }
    };
    let items: Vec<_> = items
        .into_iter()
        .filter(|(m, _)| pattern.is_none_or(|p| crate::store::glob_match(p, m)))
        .collect();
    let out = &mut *c.out;
    out.array(2);
    out.bulk(itoa::Buffer::new().format(next).as_bytes());
    out.array(items.len() * 2);
    for (m, s) in items {
        out.bulk(m);
        out.bulk(format_double(s).as_bytes());
    }
    Ok(())
}

/// ZRANDMEMBER key [count [WITHSCORES]]
pub fn zrandmember(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    if args.len() == 2 {
        let found = read_zset!(c, args.get(1))?;
        let pick = found.and_then(|z| {
            let i = (random_u64() % z.len().max(1) as u64) as usize;
            z.range(i, i + 1, false).into_iter().next()
        });
        c.out.bulk_or_nil(pick.map(|(m, _)| m));
        return Ok(());
    }
    let count = int_arg(args.get(2))?;
    if count == i64::MIN {
        return Err(CommandError::Other(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
                .into(),
        ));
    }
    let withscores = match args.len() {
        3 => false,
        4 if is(args.get(3), "withscores") => true,
        _ => return Err(CommandError::Syntax),
    };
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(CommandError::Other("ERR value is out of range".into()));
    }
    super::check_random_repeats(count, "ZRANDMEMBER")?;
    let found = read_zset!(c, args.get(1))?;
    let Some(z) = found.filter(|_| count != 0) else {
        c.out.array(0);
        return Ok(());
    };
    let len = z.len();
    let picks: Vec<usize> = if count < 0 {
        let n = count.unsigned_abs();
        (0..n).map(|_| (random_u64() % len as u64) as usize).collect()
    } else if count as u64 >= len as u64 {
        (0..len).collect()
    } else if (count as u64).saturating_mul(3) < len as u64 {
        // Few picks from a big set: draw ranks until enough are distinct
        // (expected < 1.5 draws each), without an O(len) index vector.
        let n = count as usize;
        let mut seen = std::collections::HashSet::with_capacity(n);
        let mut ranks = Vec::with_capacity(n);
        while ranks.len() < n {
            let r = (random_u64() % len as u64) as usize;
            if seen.insert(r) {
                ranks.push(r);
            }
        }
        ranks
    } else {
        // Partial Fisher–Yates over the ranks: distinct members.
        let n = count as usize;
        let mut ranks: Vec<usize> = (0..len).collect();
        for i in 0..n {
            let j = i + (random_u64() % (len - i) as u64) as usize;
            ranks.swap(i, j);
        }
        ranks.truncate(n);
        ranks
    };
    let items: Vec<(&[u8], f64)> = picks
        .into_iter()
        .filter_map(|i| z.range(i, i + 1, false).into_iter().next())
        .collect();
    reply_members(c.out, &items, withscores);
    Ok(())
}

// ----------------------------------------------------------- set algebra

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Redis's `zunionInterAggregate`: a NaN sum (inf + -inf) becomes 0.
fn aggregate(agg: Aggregate, target: f64, value: f64) -> f64 {
    match agg {
        Aggregate::Sum => {
            let sum = target + value;
            if sum.is_nan() {
                0.0
            } else {
                sum
            }
        }
        Aggregate::Min => target.min(value),
        Aggregate::Max => target.max(value),
    }
}

/// The parsed inputs of ZUNION & co.
struct AlgebraQuery {
    keys: std::ops::Range<usize>,
    weights: Vec<f64>,
    aggregate: Aggregate,
    withscores: bool,
    limit: usize,
}

fn parse_algebra(
    args: super::Args<'_>,
    numkeys_at: usize,
    op: SetOp,
    store: bool,
    card: bool,
    name: &str,
) -> Result<AlgebraQuery, CommandError> {
    let numkeys = numkeys_arg(args, numkeys_at, false, || {
        CommandError::Other(format!("ERR at least 1 input key is needed for '{name}' command"))
    })?;
    let first = numkeys_at + 1;
    let mut q = AlgebraQuery {
        keys: first..first + numkeys,
        weights: vec![1.0; numkeys],
        aggregate: Aggregate::Sum,
        withscores: false,
        limit: 0,
    };
    let mut j = first + numkeys;
    while j < args.len() {
        let remaining = args.len() - j;
        let word = args.get(j);
        if op != SetOp::Diff && !card && remaining > numkeys && is(word, "weights") {
            for (k, w) in q.weights.iter_mut().enumerate() {
                *w = parse_score(args.get(j + 1 + k))
                    .ok_or_else(|| CommandError::Other("ERR weight value is not a float".into()))?;
            }
            j += 1 + numkeys;
        } else if op != SetOp::Diff && !card && remaining >= 2 && is(word, "aggregate") {
            let a = args.get(j + 1);
            q.aggregate = if is(a, "sum") {
                Aggregate::Sum
            } else if is(a, "min") {
                Aggregate::Min
            } else if is(a, "max") {
                Aggregate::Max
            } else {
                return Err(CommandError::Syntax);
            };
            j += 2;
        } else if !store && !card && is(word, "withscores") {
            q.withscores = true;
            j += 1;
        } else if card && remaining >= 2 && is(word, "limit") {
            let limit_error = || CommandError::Other("ERR LIMIT can't be negative".into());
            let n = int_arg(args.get(j + 1)).map_err(|_| limit_error())?;
            if n < 0 {
                return Err(limit_error());
            }
            q.limit = usize::try_from(n).unwrap_or(usize::MAX);
            j += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(q)
}

/// Reads every input (a copy: the inputs may live in different shards),
/// checking types first as Redis does.
fn read_inputs(c: &mut Ctx<'_, '_>, q: &AlgebraQuery) -> Result<Vec<Entries>, CommandError> {
    let args = c.args;
    let mut inputs = Vec::with_capacity(q.keys.len());
    for i in q.keys.clone() {
        let key = args.get(i);
        let now = c.now;
        let (map, hash) = locate(&mut c.db, key)?;
        // As Redis: a plain set is an input whose members all score 1.
        let entries = match map.get_live(hash, key, now).0.map(|e| e.value_ref()) {
            None => {
                c.misses += 1;
                Vec::new()
            }
            Some(crate::store::ValueRef::Collection(Collection::ZSet(z))) => owned(z.entries()),
            Some(crate::store::ValueRef::Collection(Collection::Set(s))) => {
                s.iter().map(|m| (m.to_vec(), 1.0)).collect()
            }
            Some(_) => return Err(CommandError::WrongType),
        };
        if !entries.is_empty() {
            c.hits += 1;
        }
        inputs.push(entries);
    }
    Ok(inputs)
}

/// Computes the result of `op` over the inputs, unordered.
fn compute(op: SetOp, q: &AlgebraQuery, inputs: &[Vec<(Vec<u8>, f64)>]) -> Vec<(Vec<u8>, f64)> {
    use std::collections::HashMap;
    let weighted = |s: f64, w: f64| {
        let v = s * w;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    match op {
        SetOp::Union => {
            let mut acc: HashMap<&[u8], f64> = HashMap::new();
            for (input, &w) in inputs.iter().zip(&q.weights) {
                for (m, s) in input {
                    let v = weighted(*s, w);
                    acc.entry(m)
                        .and_modify(|t| *t = aggregate(q.aggregate, *t, v))
                        .or_insert(v);
                }
            }
            acc.into_iter().map(|(m, s)| (m.to_vec(), s)).collect()
        }
        SetOp::Inter => {
            let maps: Vec<HashMap<&[u8], f64>> = inputs
                .iter()
                .map(|i| i.iter().map(|(m, s)| (&m[..], *s)).collect())
                .collect();
            let Some(first) = inputs.first() else {
                return Vec::new();
            };
            let mut out = Vec::new();
            'members: for (m, s) in first {
                let mut total = weighted(*s, q.weights[0]);
                for (k, map) in maps.iter().enumerate().skip(1) {
                    match map.get(&m[..]) {
                        Some(v) => total = aggregate(q.aggregate, total, weighted(*v, q.weights[k])),
                        None => continue 'members,
                    }
                }
                out.push((m.clone(), total));
            }
            out
        }
        SetOp::Diff => {
            let others: std::collections::HashSet<&[u8]> = inputs
                .iter()
                .skip(1)
                .flat_map(|i| i.iter().map(|(m, _)| &m[..]))
                .collect();
            inputs
                .first()
                .map(|first| {
                    first
                        .iter()
                        .filter(|(m, _)| !others.contains(&m[..]))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        }
    }
}

fn algebra(c: &mut Ctx<'_, '_>, op: SetOp, store: bool, name: &str) -> CommandResult {
    let args = c.args;
    let q = parse_algebra(args, if store { 2 } else { 1 }, op, store, false, name)?;
    let inputs = read_inputs(c, &q)?;
    let result = compute(op, &q, &inputs);
    if store {
        let len = store_result(c, args.get(1), &result)?;
        c.out.int(len as i64);
    } else {
        let z = ZSet::from_entries(result.iter().map(|(m, s)| (&m[..], *s)));
        reply_members(c.out, &z.entries(), q.withscores);
    }
    Ok(())
}

/// ZUNION numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
pub fn zunion(c: &mut Ctx<'_, '_>) -> CommandResult {
    algebra(c, SetOp::Union, false, "zunion")
}

/// ZINTER numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
pub fn zinter(c: &mut Ctx<'_, '_>) -> CommandResult {
    algebra(c, SetOp::Inter, false, "zinter")
}

/// ZDIFF numkeys key [key ...] [WITHSCORES]
pub fn zdiff(c: &mut Ctx<'_, '_>) -> CommandResult {
    algebra(c, SetOp::Diff, false, "zdiff")
}

/// ZUNIONSTORE dst numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]
pub fn zunionstore(c: &mut Ctx<'_, '_>) -> CommandResult {
    algebra(c, SetOp::Union, true, "zunionstore")
}

/// ZINTERSTORE dst numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX]
pub fn zinterstore(c: &mut Ctx<'_, '_>) -> CommandResult {
    algebra(c, SetOp::Inter, true, "zinterstore")
}

/// ZDIFFSTORE dst numkeys key [key ...]
pub fn zdiffstore(c: &mut Ctx<'_, '_>) -> CommandResult {
    algebra(c, SetOp::Diff, true, "zdiffstore")
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn zintercard(c: &mut Ctx<'_, '_>) -> CommandResult {
    let args = c.args;
    let q = parse_algebra(args, 1, SetOp::Inter, false, true, "zintercard")?;
    let inputs = read_inputs(c, &q)?;
    let mut n = compute(SetOp::Inter, &q, &inputs).len();
    if q.limit > 0 {
        n = n.min(q.limit);
    }
    c.out.int(n as i64);
    Ok(())
}
