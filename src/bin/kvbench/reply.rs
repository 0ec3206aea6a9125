//! Allocation-free reply counting.
//!
//! The benchmark does not need reply values, only "how many complete replies
//! are in the buffer and which of them are errors". Parsing therefore walks
//! the bytes, skips bulk payloads by length and never allocates; an
//! incomplete tail is left in the buffer for the next read.

/// Result of scanning the front of a read buffer for one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// Not enough bytes yet for a full reply.
    Incomplete,
    /// A complete reply of `len` bytes; `error` holds the byte range of the
    /// error's first word (e.g. `ERR`, `WRONGTYPE`) when it is an error.
    Reply {
        /// Bytes consumed by this reply.
        len: usize,
        /// Range of the error kind word within the buffer, if an error.
        error: Option<(usize, usize)>,
    },
    /// The bytes are not valid RESP: the connection is out of sync.
    Invalid,
}

#[inline]
fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    // Position of '\r' of the terminating "\r\n".
    let mut i = from;
    while i + 1 < buf.len() {
        if buf[i] == b'\r' && buf[i + 1] == b'\n' {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[inline]
fn parse_int(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(c - b'0');
    }
    Some(if neg { -n } else { n })
}

/// Returns the end offset of the RESP value starting at `pos`, `Ok(None)` if
/// incomplete, `Err(())` if malformed.
fn skip_value(buf: &[u8], pos: usize, depth: u32) -> Result<Option<usize>, ()> {
    if depth > 64 {
        return Err(());
    }
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(eol) = line_end(buf, pos + 1) else {
        return Ok(None);
    };
    let after = eol + 2;
    match kind {
        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => Ok(Some(after)),
        b'$' | b'=' | b'!' => {
            let n = parse_int(&buf[pos + 1..eol]).ok_or(())?;
            if n < 0 {
                return Ok(Some(after));
            }
            let end = after + n as usize + 2;
            if end > buf.len() {
                Ok(None)
            } else {
                Ok(Some(end))
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = parse_int(&buf[pos + 1..eol]).ok_or(())?;
            if n < 0 {
                return Ok(Some(after));
            }
            let items = if kind == b'%' || kind == b'|' { 2 * n } else { n };
            let mut p = after;
            for _ in 0..items {
                match skip_value(buf, p, depth + 1)? {
                    Some(next) => p = next,
                    None => return Ok(None),
                }
            }
            Ok(Some(p))
        }
        _ => Err(()),
    }
}

/// Scan one RESP reply at the front of `buf`.
pub fn scan_resp(buf: &[u8]) -> Scan {
    match skip_value(buf, 0, 0) {
        Err(()) => Scan::Invalid,
        Ok(None) => Scan::Incomplete,
        Ok(Some(len)) => {
            let error = match buf[0] {
                b'-' => Some(first_word(buf, 1)),
                b'!' => {
                    // Blob error: "!<len>\r\n<KIND msg>\r\n".
                    let body = line_end(buf, 1).map_or(1, |e| e + 2);
                    Some(first_word(buf, body))
                }
                _ => None,
            };
            Scan::Reply { len, error }
        }
    }
}

/// Scan `n` consecutive RESP replies as one (a transaction's `+OK`,
/// `+QUEUED`s and `EXEC` array); the first error among them is the error.
pub fn scan_resp_n(buf: &[u8], n: usize) -> Scan {
    let mut len = 0;
    let mut first_error = None;
    for _ in 0..n.max(1) {
        match scan_resp(&buf[len..]) {
            Scan::Reply { len: l, error } => {
                if first_error.is_none() {
                    first_error = error.map(|(s, e)| (s + len, e + len));
                }
                len += l;
            }
            other => return other,
        }
    }
    Scan::Reply {
        len,
        error: first_error,
    }
}

/// Scan one text-protocol reply of `lines` lines at the front of `buf`.
///
/// kvserver's text protocol renders errors as `(error) KIND message`; a
/// line starting with `-` (RESP error from a server answering inline
/// commands in RESP, like redis) is also treated as an error.
pub fn scan_text(buf: &[u8], lines: usize) -> Scan {
    let mut p = 0;
    for _ in 0..lines {
        match buf[p..].iter().position(|&b| b == b'\n') {
            Some(i) => p += i + 1,
            None => return Scan::Incomplete,
        }
    }
    let error = if buf.starts_with(b"(error) ") {
        Some(first_word(buf, 8))
    } else if buf.starts_with(b"-") {
        Some(first_word(buf, 1))
    } else {
        None
    };
    Scan::Reply { len: p, error }
}

fn first_word(buf: &[u8], from: usize) -> (usize, usize) {
    let mut end = from;
    while end < buf.len() && !matches!(buf[end], b' ' | b'\r' | b'\n') {
        end += 1;
    }
    (from, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(len: usize) -> Scan {
        Scan::Reply { len, error: None }
    }

    #[test]
    fn simple_and_bulk() {
        assert_eq!(scan_resp(b"+OK\r\n+OK"), reply(5));
        assert_eq!(scan_resp(b"$3\r\nabc\r\n"), reply(9));
        assert_eq!(scan_resp(b"$3\r\nab"), Scan::Incomplete);
        assert_eq!(scan_resp(b"$-1\r\n"), reply(5));
        assert_eq!(scan_resp(b":12"), Scan::Incomplete);
        assert_eq!(scan_resp(b"?x\r\n"), Scan::Invalid);
    }

    #[test]
    fn arrays() {
        let a = b"*3\r\n$1\r\na\r\n$-1\r\n:5\r\n";
        assert_eq!(scan_resp(a), reply(a.len()));
        assert_eq!(scan_resp(&a[..a.len() - 1]), Scan::Incomplete);
        assert_eq!(scan_resp(b"*0\r\n"), reply(4));
    }

    #[test]
    fn errors_by_kind() {
        let b = b"-WRONGTYPE Operation against a key\r\n";
        match scan_resp(b) {
            Scan::Reply {
                len,
                error: Some((s, e)),
            } => {
                assert_eq!(len, b.len());
                assert_eq!(&b[s..e], b"WRONGTYPE");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn text_lines() {
        assert_eq!(scan_text(b"OK\r\nPONG\r\n", 1), reply(4));
        assert_eq!(scan_text(b"1) a\r\n2) (nil)\r\n", 2), reply(16));
        assert_eq!(scan_text(b"1) a\r\n2) (n", 2), Scan::Incomplete);
        match scan_text(b"(error) ERR bad\r\n", 1) {
            Scan::Reply {
                error: Some((s, e)), ..
            } => assert_eq!((s, e), (8, 11)),
            other => panic!("{other:?}"),
        }
    }
}
