//! SORT and SORT_RO: the elements of a list, set or sorted set, sorted
//! numerically or (ALPHA) by bytes, optionally by weights from other keys
//! (`BY pattern`, `*` replaced by the element, `->field` for a hash field),
//! projected through `GET` patterns, limited, and stored as a list.
//!
//! BY and GET may name any key, so SORT locks every shard of its database
//! (its key spec is "all"), as EXEC does for keyless commands. A STORE logs
//! the destination's new value as one list replace record (plus a `Del`),
//! never the SORT command.

use super::{int_arg, is, locate, CommandError, CommandResult, Ctx};
use crate::store::types::list::SpliceLog;
use crate::store::types::{Collection, List, OP_REPLACE, TYPE_LIST};
use crate::store::{Value, ValueRef};
use crate::wal::Record;

/// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE destination]
pub fn sort(c: &mut Ctx<'_, '_>) -> CommandResult {
    run(c, false)
}

/// SORT_RO: SORT without STORE.
pub fn sort_ro(c: &mut Ctx<'_, '_>) -> CommandResult {
    run(c, true)
}

/// A pattern's value for `element`: `#` is the element itself; otherwise the
/// first `*` is replaced by it and the key read (a string, or a hash field
/// after `->`). None when there is no `*`, no key, or the wrong type.
fn lookup(c: &mut Ctx<'_, '_>, pattern: &[u8], element: &[u8]) -> Result<Option<Vec<u8>>, CommandError> {
    if pattern == b"#" {
        return Ok(Some(element.to_vec()));
    }
    let Some(star) = pattern.iter().position(|&b| b == b'*') else {
        return Ok(None);
    };
    let arrow = pattern[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|p| p + star + 1)
        .filter(|&p| p + 2 < pattern.len());
    let (key_pattern, field) = match arrow {
        Some(p) => (&pattern[..p], Some(&pattern[p + 2..])),
        None => (pattern, None),
    };
    let mut key = Vec::with_capacity(key_pattern.len() + element.len());
    key.extend_from_slice(&key_pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(&key_pattern[star + 1..]);
    let now = c.now;
    let (map, hash) = locate(&mut c.db, &key)?;
    let Some(entry) = map.get_live(hash, &key, now).0 else {
        return Ok(None);
    };
    Ok(match (entry.value_ref(), field) {
        (ValueRef::String(v), None) => Some(v.to_vec()),
        (ValueRef::Hash(h), Some(field)) => h.get(field).map(<[u8]>::to_vec),
        _ => None,
    })
}

fn run(c: &mut Ctx<'_, '_>, readonly: bool) -> CommandResult {
    let key = c.args.get(1);
    let (mut desc, mut alpha, mut dont_sort) = (false, false, false);
    let mut limit: Option<(i64, i64)> = None;
    let mut store: Option<&[u8]> = None;
    let mut by: Option<&[u8]> = None;
    let mut gets: Vec<&[u8]> = Vec::new();
    let mut i = 2;
    while i < c.args.len() {
        let word = c.args.get(i);
        let left = c.args.len() - i - 1;
        if is(word, "asc") {
            desc = false;
        } else if is(word, "desc") {
            desc = true;
        } else if is(word, "alpha") {
            alpha = true;
        } else if is(word, "limit") && left >= 2 {
            limit = Some((int_arg(c.args.get(i + 1))?, int_arg(c.args.get(i + 2))?));
            i += 2;
        } else if !readonly && is(word, "store") && left >= 1 {
            store = Some(c.args.get(i + 1));
            i += 1;
        } else if is(word, "by") && left >= 1 {
            let pattern = c.args.get(i + 1);
            dont_sort = !pattern.contains(&b'*');
            by = Some(pattern);
            i += 1;
        } else if is(word, "get") && left >= 1 {
            gets.push(c.args.get(i + 1));
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    let now = c.now;
    let (elements, is_set) = {
        let (map, hash) = locate(&mut c.db, key)?;
        match map.get_live(hash, key, now).0.map(|e| e.value_ref()) {
            None => (Vec::new(), false),
            Some(ValueRef::Collection(value)) => (value.members(), matches!(value, Collection::Set(_))),
            Some(_) => return Err(CommandError::WrongType),
        }
    };
    // A set has no order of its own: stored results are sorted, as Redis does.
    if dont_sort && is_set && store.is_some() {
        dont_sort = false;
        alpha = true;
        by = None;
    }
    let mut rows: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(elements.len());
    for element in elements {
        let weight = match by {
            Some(pattern) if !dont_sort => lookup(c, pattern, &element)?,
            _ => None,
        };
        rows.push((element, weight));
    }
    if !dont_sort {
        if alpha {
            // Missing weights sort first, as Redis's NULL; ties by element.
            rows.sort_by(|a, b| match by {
                Some(_) => a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)),
                None => a.0.cmp(&b.0),
            });
        } else {
            let mut scored = Vec::with_capacity(rows.len());
            for (element, weight) in rows {
                let source = if by.is_some() {
                    weight.clone()
                } else {
                    Some(element.clone())
                };
                let score = match source {
                    None => 0.0,
                    Some(bytes) => std::str::from_utf8(&bytes)
                        .ok()
                        .map(str::trim)
                        .and_then(|s| s.parse::<f64>().ok())
                        .filter(|v| !v.is_nan())
                        .ok_or_else(|| {
                            CommandError::Other(
                                "ERR One or more scores can't be converted into double".into(),
                            )
                        })?,
                };
                scored.push((score, element, weight));
            }
            scored.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            rows = scored.into_iter().map(|(_, e, w)| (e, w)).collect();
        }
        if desc {
            rows.reverse();
        }
    }
    let (start, count) = match limit {
        None => (0, rows.len()),
        Some((start, count)) => {
            let start = start.max(0) as usize;
            let count = if count < 0 { rows.len() } else { count as usize };
            (start.min(rows.len()), count)
        }
    };
    let rows: Vec<Vec<u8>> = rows.into_iter().skip(start).take(count).map(|(e, _)| e).collect();
    let mut output: Vec<Option<Vec<u8>>> = Vec::with_capacity(rows.len() * gets.len().max(1));
    for element in rows {
        if gets.is_empty() {
            output.push(Some(element));
        } else {
            for pattern in &gets {
                output.push(lookup(c, pattern, &element)?);
            }
        }
    }
    match store {
        None => {
            c.out.array(output.len());
            for value in &output {
                c.out.bulk_or_nil(value.as_deref());
            }
        }
        Some(dst) => {
            let (map, hash) = locate(&mut c.db, dst)?;
            c.log.push(Record::Del { key: dst });
            if output.is_empty() {
                map.remove(hash, dst);
            } else {
                let items: Vec<Vec<u8>> = output.into_iter().map(Option::unwrap_or_default).collect();
                let mut list = List::new();
                for item in &items {
                    list.push_back(item);
                }
                let len = list.len();
                map.put_value(hash, dst, Value::Collection(Collection::List(Box::new(list))), 0);
                let mut splices = SpliceLog::default();
                splices.push_owned(0, 0, &items);
                c.log.push(Record::Collection {
                    key: dst,
                    op: TYPE_LIST | OP_REPLACE,
                    payload: splices.payload(),
                });
                c.out.int(len as i64);
                return Ok(());
            }
            c.out.int(0);
        }
    }
    Ok(())
}
