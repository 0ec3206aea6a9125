//! A command's arguments as borrowed slices of the connection's read buffer
//! (RESP) or of the parser's unescape scratch (inline): no copy, no allocation.
//! When the read buffer was handed over for a big argument, a handler that
//! stores that argument can keep it without copying ([`Args::shared`]).

use std::sync::Arc;

use crate::shared_bytes::{SharedBytes, SHARE_THRESHOLD};

/// The arguments of one command; index 0 is the command name.
#[derive(Clone, Copy, Debug)]
pub struct Args<'a> {
    base: &'a [u8],
    ranges: &'a [(usize, usize)],
    /// The shared buffer `base` is part of, and `base`'s offset in it.
    owner: Option<(&'a Arc<Vec<u8>>, usize)>,
}

impl<'a> Args<'a> {
    /// Arguments `ranges` of `base`. Every range must lie inside `base`.
    pub fn new(base: &'a [u8], ranges: &'a [(usize, usize)]) -> Args<'a> {
        Args {
            base,
            ranges,
            owner: None,
        }
    }

    /// Notes that `base` starts at `offset` of the shared buffer `owner`, so
    /// big arguments can be kept without a copy.
    pub fn shared_from(mut self, owner: Option<&'a Arc<Vec<u8>>>, offset: usize) -> Args<'a> {
        self.owner = owner.map(|owner| (owner, offset));
        self
    }

    /// Argument `i` as a range of the shared read buffer, when it is a big
    /// argument ([`SHARE_THRESHOLD`]) of a buffer that was handed over for it.
    /// Handlers that store a value use this first and copy otherwise.
    pub fn shared(&self, i: usize) -> Option<SharedBytes> {
        let (owner, offset) = self.owner?;
        let &(start, end) = self.ranges.get(i)?;
        (end - start >= SHARE_THRESHOLD && (end - start) * 2 > owner.capacity())
            .then(|| SharedBytes::new(owner.clone(), offset + start..offset + end))
    }

    /// Number of arguments including the command name.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// True for an empty command (never executed).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Argument `i`, or an empty slice past the end (arity is checked before
    /// any handler runs, so handlers never see that case).
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        match self.ranges.get(i) {
            Some(&(start, end)) => self.base.get(start..end).unwrap_or(&[]),
            None => &[],
        }
    }

    /// Arguments from `i` on.
    pub fn iter_from(&self, i: usize) -> impl Iterator<Item = &'a [u8]> + '_ {
        (i..self.len()).map(move |k| self.get(k))
    }
}
