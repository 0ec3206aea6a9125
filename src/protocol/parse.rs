//! Incremental request framing: bytes in, one complete command's arguments out.
//!
//! The parser never touches a socket and never copies a RESP argument: it
//! records each argument as a byte range of the caller's buffer, relative to
//! the start of the command, so the session can move the unparsed tail to the
//! front of its buffer between reads without invalidating anything. Inline
//! (text) commands need unescaping (`"a\nb"`), so their arguments are written
//! into a scratch buffer owned by the parser instead.
//!
//! Partial state survives between calls: a multibulk whose header and first
//! arguments have arrived is not re-scanned when the next read brings more, so
//! a command split into many small reads costs linear, not quadratic, time.
//!
//! Limits and error strings follow Redis 7 (`networking.c`): an inline line
//! longer than 64 KiB, a multibulk count that is not a number or is too big,
//! a bulk length that is negative, not a number or above `proto-max-bulk-len`,
//! and an argument not introduced by `$` are framing errors. After one of
//! those the byte stream cannot be resynchronised, so the connection closes.

use std::fmt;

use super::inline::split_inline;

/// Which protocol a command arrived in; replies are encoded to match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// RESP2 multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`).
    Resp,
    /// A text line as typed into `nc`/`telnet`. `crlf` remembers whether the
    /// line ended in `\r\n` so replies can end the same way.
    Text { crlf: bool },
}

/// Framing limits, all configurable, defaults as in Redis.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest inline line, and longest `*`/`$` header line (Redis's `PROTO_INLINE_MAX_SIZE`).
    pub max_inline: usize,
    /// Most arguments in one multibulk (Redis allows up to `INT_MAX`; we default lower).
    pub max_multibulk: usize,
    /// Longest single bulk argument (Redis's `proto-max-bulk-len`, 512 MiB).
    pub max_bulk: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_inline: 64 * 1024,
            max_multibulk: 1024 * 1024,
            max_bulk: 512 * 1024 * 1024,
        }
    }
}

/// A framing error. Its `Display` is the Redis error line without the `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    TooBigInline,
    TooBigMultibulkCount,
    TooBigBulkCount,
    InvalidMultibulkLength,
    InvalidBulkLength,
    ExpectedDollar(u8),
    UnbalancedQuotes,
    /// An incomplete command outgrew `client-query-buffer-limit`.
    QueryBufferLimit,
    /// A client that has not authenticated announced more than
    /// [`UNAUTHENTICATED_MAX_ARGS`] arguments.
    UnauthenticatedMultibulkLength,
    /// A client that has not authenticated announced a bulk longer than
    /// [`UNAUTHENTICATED_MAX_BULK`].
    UnauthenticatedBulkLength,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::TooBigInline => f.write_str("ERR Protocol error: too big inline request"),
            ProtocolError::TooBigMultibulkCount => {
                f.write_str("ERR Protocol error: too big mbulk count string")
            }
            ProtocolError::TooBigBulkCount => f.write_str("ERR Protocol error: too big bulk count string"),
            ProtocolError::InvalidMultibulkLength => {
                f.write_str("ERR Protocol error: invalid multibulk length")
            }
            ProtocolError::InvalidBulkLength => f.write_str("ERR Protocol error: invalid bulk length"),
            ProtocolError::ExpectedDollar(got) => {
                write!(f, "ERR Protocol error: expected '$', got '{}'", char::from(*got))
            }
            ProtocolError::UnbalancedQuotes => {
                f.write_str("ERR Protocol error: unbalanced quotes in request")
            }
            ProtocolError::QueryBufferLimit => {
                f.write_str("ERR Protocol error: query buffer limit exceeded (client-query-buffer-limit)")
            }
            ProtocolError::UnauthenticatedMultibulkLength => {
                f.write_str("ERR Protocol error: unauthenticated multibulk length")
            }
            ProtocolError::UnauthenticatedBulkLength => {
                f.write_str("ERR Protocol error: unauthenticated bulk length")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Where a parsed command's arguments live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgSource {
    /// Ranges index the caller's buffer, starting at the command's first byte.
    Buffer,
    /// Ranges index the parser's scratch buffer (unescaped inline arguments).
    Scratch,
}

/// Outcome of one [`Parser::parse`] call.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole command: its arguments are `parser.args()`, it used `len` bytes.
    Command {
        protocol: Protocol,
        source: ArgSource,
        len: usize,
    },
    /// `len` bytes carried nothing to run (an empty line, `*0`, `*-1`): Redis skips them silently.
    Skip { len: usize },
    /// More bytes are needed; everything seen so far is remembered.
    Incomplete,
    /// The stream is broken; reply with the error and close.
    Error(ProtocolError),
}

/// Resumable state of a multibulk whose arguments have not all arrived.
#[derive(Clone, Copy, Debug)]
struct Partial {
    /// Arguments still expected.
    remaining: usize,
    /// Offset (from the command start) of the next unparsed byte.
    cursor: usize,
    /// Length of the bulk whose `$len` header was read but whose body is pending.
    pending_bulk: Option<usize>,
}

/// Most arguments a client may send before it authenticates (Redis's
/// `authRequired` check in `processMultibulkBuffer`): enough for
/// `HELLO 3 AUTH user pass SETNAME name`, too few to make the server buffer much.
pub const UNAUTHENTICATED_MAX_ARGS: usize = 10;

/// Longest bulk a client may send before it authenticates (Redis: 16 KB), so
/// an unauthenticated client costs kilobytes, never a 512 MiB query buffer.
pub const UNAUTHENTICATED_MAX_BULK: usize = 16 * 1024;

/// An incremental RESP2 + inline parser. One per connection.
#[derive(Debug, Default)]
pub struct Parser {
    limits: Limits,
    /// Applies the much smaller pre-authentication limits.
    unauthenticated: bool,
    partial: Option<Partial>,
    /// How far (from the command's first byte) the incomplete line being
    /// waited for — an inline command, or a `*`/`$` header — was already
    /// searched for its end: a line that arrives a byte at a time is scanned
    /// once, not once per read (quadratic up to the 64 KiB line limit).
    line_scanned: usize,
    args: Vec<(usize, usize)>,
    scratch: Vec<u8>,
}

/// Largest number of arguments we reserve room for up front; beyond it the
/// vector grows as arguments actually arrive, so a claimed `*1000000` costs nothing.
const MAX_PREALLOCATED_ARGS: usize = 1024;

impl Parser {
    /// A parser enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Parser {
            limits,
            ..Parser::default()
        }
    }

    /// The argument ranges of the last [`Parsed::Command`].
    pub fn args(&self) -> &[(usize, usize)] {
        &self.args
    }

    /// The scratch buffer that [`ArgSource::Scratch`] ranges index.
    pub fn scratch(&self) -> &[u8] {
        &self.scratch
    }

    /// Forgets a partly parsed command, so the next [`Parser::parse`] starts
    /// afresh at a command boundary (used when the session re-frames input it
    /// had framed but not yet run).
    pub fn reset(&mut self) {
        self.partial = None;
        self.line_scanned = 0;
    }

    /// Switches the pre-authentication limits on or off ([`UNAUTHENTICATED_MAX_ARGS`],
    /// [`UNAUTHENTICATED_MAX_BULK`]). The session sets it before framing, and
    /// frames nothing past a command that may authenticate.
    pub fn set_unauthenticated(&mut self, unauthenticated: bool) {
        self.unauthenticated = unauthenticated;
    }

    /// True while a multibulk is partly parsed (its bytes must stay buffered).
    pub fn in_progress(&self) -> bool {
        self.partial.is_some()
    }

    /// While the body of a bulk argument is awaited: its length, and how many
    /// bytes from the start of the command must be buffered to complete it
    /// (its `\r\n` included). Lets the session size its buffer for a big
    /// argument exactly instead of growing it by doubling.
    pub fn awaited_bulk(&self) -> Option<(usize, usize)> {
        let partial = self.partial?;
        let len = partial.pending_bulk?;
        Some((len, partial.cursor + len + 2))
    }

    /// Tries to frame one command from `buf`, which must begin at the first
    /// byte of a command (or of the partial command seen by earlier calls).
    pub fn parse(&mut self, buf: &[u8]) -> Parsed {
        let parsed = match (self.partial.is_none(), buf.first()) {
            (true, None) => Parsed::Incomplete,
            (true, Some(&first)) if first != b'*' => self.parse_inline(buf),
            _ => self.parse_multibulk(buf),
        };
        if parsed != Parsed::Incomplete {
            self.line_scanned = 0;
        }
        parsed
    }

    fn parse_inline(&mut self, buf: &[u8]) -> Parsed {
        let from = self.line_scanned.min(buf.len());
        let Some(newline) = memchr(b'\n', &buf[from..]).map(|i| from + i) else {
            if buf.len() > self.limits.max_inline {
                return Parsed::Error(ProtocolError::TooBigInline);
            }
            self.line_scanned = buf.len();
            return Parsed::Incomplete;
        };
        if newline > self.limits.max_inline {
            return Parsed::Error(ProtocolError::TooBigInline);
        }
        let crlf = newline > 0 && buf[newline - 1] == b'\r';
        let line = &buf[..if crlf { newline - 1 } else { newline }];
        self.args.clear();
        self.scratch.clear();
        if split_inline(line, &mut self.scratch, &mut self.args).is_err() {
            return Parsed::Error(ProtocolError::UnbalancedQuotes);
        }
        if self.args.is_empty() {
            return Parsed::Skip { len: newline + 1 };
        }
        Parsed::Command {
            protocol: Protocol::Text { crlf },
            source: ArgSource::Scratch,
            len: newline + 1,
        }
    }

    fn parse_multibulk(&mut self, buf: &[u8]) -> Parsed {
        let mut state = match self.partial {
            Some(state) => state,
            None => {
                let (count, header_len) = match read_header(
                    buf,
                    0,
                    self.limits.max_inline,
                    ProtocolError::TooBigMultibulkCount,
                    &mut self.line_scanned,
                ) {
                    Err(e) => return Parsed::Error(e),
                    Ok(None) => return Parsed::Incomplete,
                    Ok(Some(header)) => header,
                };
                let Some(count) = count else {
                    return Parsed::Error(ProtocolError::InvalidMultibulkLength);
                };
                if count > self.limits.max_multibulk as i64 {
                    return Parsed::Error(ProtocolError::InvalidMultibulkLength);
                }
                if self.unauthenticated && count > UNAUTHENTICATED_MAX_ARGS as i64 {
                    return Parsed::Error(ProtocolError::UnauthenticatedMultibulkLength);
                }
                if count <= 0 {
                    return Parsed::Skip { len: header_len };
                }
                self.args.clear();
                self.args.reserve((count as usize).min(MAX_PREALLOCATED_ARGS));
                Partial {
                    remaining: count as usize,
                    cursor: header_len,
                    pending_bulk: None,
                }
            }
        };
        let result = self.parse_bulks(buf, &mut state);
        self.partial = match result {
            Parsed::Incomplete => Some(state),
            _ => None,
        };
        result
    }

    fn parse_bulks(&mut self, buf: &[u8], state: &mut Partial) -> Parsed {
        while state.remaining > 0 {
            let len = match state.pending_bulk {
                Some(len) => len,
                None => {
                    let Some(&first) = buf.get(state.cursor) else {
                        return Parsed::Incomplete;
                    };
                    if first != b'$' {
                        return Parsed::Error(ProtocolError::ExpectedDollar(first));
                    }
                    let header = read_header(
                        buf,
                        state.cursor,
                        self.limits.max_inline,
                        ProtocolError::TooBigBulkCount,
                        &mut self.line_scanned,
                    );
                    let (len, header_len) = match header {
                        Err(e) => return Parsed::Error(e),
                        Ok(None) => return Parsed::Incomplete,
                        Ok(Some(header)) => header,
                    };
                    let len = match len {
                        Some(len) if len >= 0 && len as u64 <= self.limits.max_bulk as u64 => len as usize,
                        _ => return Parsed::Error(ProtocolError::InvalidBulkLength),
                    };
                    if self.unauthenticated && len > UNAUTHENTICATED_MAX_BULK {
                        return Parsed::Error(ProtocolError::UnauthenticatedBulkLength);
                    }
                    state.cursor += header_len;
                    state.pending_bulk = Some(len);
                    len
                }
            };
            // The body plus its CRLF must be buffered. Like Redis we skip the two
            // trailing bytes without inspecting them.
            if buf.len() < state.cursor + len + 2 {
                return Parsed::Incomplete;
            }
            self.args.push((state.cursor, state.cursor + len));
            state.cursor += len + 2;
            state.pending_bulk = None;
            state.remaining -= 1;
        }
        Parsed::Command {
            protocol: Protocol::Resp,
            source: ArgSource::Buffer,
            len: state.cursor,
        }
    }
}

/// Reads a `*N\r\n` or `$N\r\n` line starting at `at`. Returns the number
/// (None if it is not a valid integer) and the line's length including CRLF,
/// or Ok(None) if the line is not complete yet. `scanned` (see
/// `Parser::line_scanned`) says how far an earlier call already searched
/// this line for its `\r`, and is updated.
#[allow(clippy::type_complexity)]
fn read_header(
    buf: &[u8],
    at: usize,
    max_line: usize,
    too_big: ProtocolError,
    scanned: &mut usize,
) -> Result<Option<(Option<i64>, usize)>, ProtocolError> {
    let rest = &buf[at..];
    let from = scanned.saturating_sub(at).min(rest.len());
    let Some(cr) = memchr(b'\r', &rest[from..]).map(|i| from + i) else {
        if rest.len() > max_line {
            return Err(too_big);
        }
        *scanned = buf.len();
        return Ok(None);
    };
    if cr > max_line {
        return Err(too_big);
    }
    if rest.len() < cr + 2 {
        // The `\r` is here, its `\n` not yet: search from the `\r` next time.
        *scanned = at + cr;
        return Ok(None);
    }
    *scanned = 0;
    Ok(Some((parse_i64(&rest[1..cr]), cr + 2)))
}

/// Strict decimal parse as Redis's `string2ll`: optional `-`, digits, no
/// spaces, no `+`, no overflow.
pub fn parse_i64(digits: &[u8]) -> Option<i64> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    if digits.len() > 1 && digits[0] == b'0' {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(d - b'0');
        value = if negative {
            value.checked_mul(10)?.checked_sub(digit)?
        } else {
            value.checked_mul(10)?.checked_add(digit)?
        };
    }
    if negative && value == 0 {
        return None;
    }
    Some(value)
}

/// Position of the first `needle` in `hay`. The iterator form compiles to a
/// tight loop; headers and inline lines are short, bodies are never scanned.
#[inline]
fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(parser: &Parser, buf: &[u8], source: ArgSource) -> Vec<Vec<u8>> {
        let base = match source {
            ArgSource::Buffer => buf,
            ArgSource::Scratch => parser.scratch(),
        };
        parser.args().iter().map(|&(s, e)| base[s..e].to_vec()).collect()
    }

    #[test]
    fn a_resp_command_split_at_every_byte_parses_once_complete() {
        let wire = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        for cut in 0..wire.len() {
            let mut parser = Parser::new(Limits::default());
            assert_eq!(parser.parse(&wire[..cut]), Parsed::Incomplete, "cut {cut}");
            match parser.parse(wire) {
                Parsed::Command { source, len, .. } => {
                    assert_eq!(len, wire.len());
                    assert_eq!(
                        args_of(&parser, wire, source),
                        vec![b"SET".to_vec(), b"k".to_vec(), b"hello".to_vec()]
                    );
                }
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn framing_errors_carry_redis_messages() {
        let cases: &[(&[u8], &str)] = &[
            (b"*abc\r\n", "ERR Protocol error: invalid multibulk length"),
            (
                b"*99999999999999999999\r\n",
                "ERR Protocol error: invalid multibulk length",
            ),
            (b"*2000000\r\n", "ERR Protocol error: invalid multibulk length"),
            (b"*1\r\n$-1\r\n", "ERR Protocol error: invalid bulk length"),
            (b"*1\r\n$x\r\n", "ERR Protocol error: invalid bulk length"),
            (b"*1\r\n$536870913\r\n", "ERR Protocol error: invalid bulk length"),
            (b"*1\r\nfoo\r\n", "ERR Protocol error: expected '$', got 'f'"),
            (
                b"SET \"a b\r\n",
                "ERR Protocol error: unbalanced quotes in request",
            ),
        ];
        for (wire, message) in cases {
            let mut parser = Parser::new(Limits::default());
            match parser.parse(wire) {
                Parsed::Error(e) => assert_eq!(e.to_string(), *message),
                other => panic!("{wire:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn non_positive_multibulk_counts_and_empty_lines_are_skipped() {
        for wire in [&b"*0\r\n"[..], b"*-10\r\n", b"\r\n", b"\n", b"   \r\n"] {
            let mut parser = Parser::new(Limits::default());
            assert_eq!(parser.parse(wire), Parsed::Skip { len: wire.len() });
        }
    }

    #[test]
    fn an_endless_line_without_newline_is_rejected_past_the_limit() {
        let mut parser = Parser::new(Limits::default());
        let junk = vec![b'x'; 64 * 1024 + 1];
        assert_eq!(parser.parse(&junk), Parsed::Error(ProtocolError::TooBigInline));
        assert_eq!(parser.parse(&junk[..1000]), Parsed::Incomplete);
    }

    #[test]
    fn a_claimed_huge_bulk_reserves_nothing_until_it_arrives() {
        let mut parser = Parser::new(Limits::default());
        assert_eq!(parser.parse(b"*1\r\n$536870912\r\nabc"), Parsed::Incomplete);
        assert!(parser.in_progress());
    }

    #[test]
    fn an_unauthenticated_parser_refuses_big_bulks_and_long_multibulks() {
        let mut parser = Parser::new(Limits::default());
        parser.set_unauthenticated(true);
        assert_eq!(
            parser.parse(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048576\r\n"),
            Parsed::Error(ProtocolError::UnauthenticatedBulkLength)
        );
        let mut parser = Parser::new(Limits::default());
        parser.set_unauthenticated(true);
        assert_eq!(
            parser.parse(b"*11\r\n"),
            Parsed::Error(ProtocolError::UnauthenticatedMultibulkLength)
        );
        // At the limits, and once authenticated, the same requests frame.
        let mut parser = Parser::new(Limits::default());
        parser.set_unauthenticated(true);
        assert_eq!(parser.parse(b"*10\r\n$16384\r\n"), Parsed::Incomplete);
        let mut parser = Parser::new(Limits::default());
        assert_eq!(parser.parse(b"*11\r\n$1048576\r\n"), Parsed::Incomplete);
    }

    #[test]
    fn a_long_inline_line_arriving_a_byte_at_a_time_parses_once_complete() {
        let mut line = b"SET k ".to_vec();
        line.extend(std::iter::repeat_n(b'v', 60_000));
        line.extend_from_slice(b"\r\n");
        let mut parser = Parser::default();
        for end in 1..line.len() {
            assert_eq!(parser.parse(&line[..end]), Parsed::Incomplete);
        }
        assert!(matches!(parser.parse(&line), Parsed::Command { len, .. } if len == line.len()));
        assert_eq!(args_of(&parser, &line, ArgSource::Scratch)[2].len(), 60_000);
        // The next command starts afresh.
        assert!(matches!(parser.parse(b"PING\n"), Parsed::Command { len: 5, .. }));
    }

    #[test]
    fn a_long_header_line_arriving_a_byte_at_a_time_gives_the_same_error_as_whole() {
        for header in [b"*".to_vec(), b"*2\r\n$".to_vec()] {
            let mut line = header.clone();
            line.extend(std::iter::repeat_n(b'1', 70_000));
            let whole = Parser::default().parse(&line);
            let mut parser = Parser::default();
            let mut split = Parsed::Incomplete;
            for end in 1..=line.len() {
                split = parser.parse(&line[..end]);
                if split != Parsed::Incomplete {
                    break;
                }
            }
            assert_eq!(split, whole);
            assert!(matches!(whole, Parsed::Error(_)), "{whole:?}");
        }
    }

    #[test]
    fn integers_parse_strictly() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"01",
            b"-0",
            b"9223372036854775808",
            b"1x",
        ] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }
}
