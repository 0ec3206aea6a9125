//! A command's arguments as borrowed slices of the connection's read buffer
//! (RESP) or of the parser's unescape scratch (inline): no copy, no allocation.

/// The arguments of one command; index 0 is the command name.
#[derive(Clone, Copy, Debug)]
pub struct Args<'a> {
    base: &'a [u8],
    ranges: &'a [(usize, usize)],
}

impl<'a> Args<'a> {
    /// Arguments `ranges` of `base`. Every range must lie inside `base`.
    pub fn new(base: &'a [u8], ranges: &'a [(usize, usize)]) -> Args<'a> {
        Args { base, ranges }
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
