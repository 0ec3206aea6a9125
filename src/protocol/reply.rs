//! Reply encoding: RESP2 or RESP3 for RESP requests (by the connection's
//! `HELLO` version), human-readable lines for text.
//!
//! Handlers describe a reply by calling these methods; they never see which
//! encoding is used and never touch a socket. Each reply *kind* (null, map,
//! set, double, boolean, verbatim string, big number, push) is added here
//! once, with its RESP2 fallback — the one Redis uses for a RESP2 client —
//! so a handler that says "map" is right in both protocols:
//!
//! | kind       | RESP3                  | RESP2 (and text)              |
//! |------------|------------------------|-------------------------------|
//! | null       | `_`                    | `$-1` (bulk) / `*-1` (array)  |
//! | map of n   | `%n` then 2n items     | `*2n` array                   |
//! | set of n   | `~n`                   | `*n` array                    |
//! | double     | `,1.5`                 | bulk string `1.5`             |
//! | boolean    | `#t` / `#f`            | `:1` / `:0`                   |
//! | verbatim   | `=len` + `txt:` + text | bulk string of the text       |
//! | big number | `(digits`              | bulk string of the digits     |
//! | push of n  | `>n`                   | `*n` array                    |
//! Everything is appended to one
//! buffer per connection that is written once per read and then reused, so
//! replying allocates nothing once the buffer has grown to its working size.
//!
//! The text encoding mirrors `redis-cli`'s terminal output without quoting:
//! `OK`, raw value bytes, `(nil)`, `(integer) 3`, `(error) ERR ...`,
//! `(empty array)`, and arrays as numbered lines, nested arrays indented:
//!
//! ```text
//! 1) 0
//! 2) 1) key:1
//!    2) key:2
//! ```

use super::parse::Protocol;

/// How the current command's reply is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// RESP2: every connection's protocol until `HELLO 3`.
    Resp,
    /// RESP3, after `HELLO 3`.
    Resp3,
    Text {
        crlf: bool,
    },
}

impl Style {
    /// The reply style for a request: text requests get text replies unless
    /// the server is configured with `inline-replies = "resp"`.
    pub fn for_request(protocol: Protocol, inline_replies_resp: bool) -> Style {
        match protocol {
            Protocol::Resp => Style::Resp,
            Protocol::Text { .. } if inline_replies_resp => Style::Resp,
            Protocol::Text { crlf } => Style::Text { crlf },
        }
    }

    /// This style for a connection that negotiated RESP3 (`HELLO 3`): RESP
    /// requests get RESP3 replies; text requests keep text replies.
    #[inline]
    pub fn with_resp3(self, resp3: bool) -> Style {
        match self {
            Style::Resp if resp3 => Style::Resp3,
            other => other,
        }
    }

    /// True for either RESP version.
    pub fn is_resp(self) -> bool {
        matches!(self, Style::Resp | Style::Resp3)
    }
}

/// One open array in the text encoding.
#[derive(Clone, Copy, Debug)]
struct Frame {
    len: usize,
    next: usize,
    width: usize,
    indent: usize,
}

/// The per-connection reply buffer.
#[derive(Debug)]
pub struct Replies {
    buf: Vec<u8>,
    style: Style,
    frames: Vec<Frame>,
}

impl Default for Replies {
    fn default() -> Self {
        Replies {
            buf: Vec::new(),
            style: Style::Resp,
            frames: Vec::new(),
        }
    }
}

impl Replies {
    /// An array of status lines: every `HELP` subcommand's reply.
    pub fn status_lines(&mut self, lines: &[&str]) {
        self.array(lines.len());
        for line in lines {
            self.simple(line);
        }
    }

    /// Sets the encoding for the next reply.
    pub fn set_style(&mut self, style: Style) {
        self.style = style;
        self.frames.clear();
    }

    /// The encoding in use.
    pub fn style(&self) -> Style {
        self.style
    }

    /// Bytes ready to send.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Number of buffered bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes allocated for replies (CLIENT LIST's `rbs`).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// True when nothing is waiting to be sent.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Forgets sent bytes, keeping the allocation (shrinking a huge one).
    pub fn clear(&mut self) {
        self.buf.clear();
        if self.buf.capacity() > MAX_RETAINED_CAPACITY {
            self.buf.shrink_to(16 * 1024);
        }
    }

    /// Frees the buffer's memory (an idle connection keeps none).
    pub fn release(&mut self) {
        self.buf = Vec::new();
        self.frames = Vec::new();
    }

    /// Drops the first `n` bytes (written to the socket), keeping the rest.
    pub fn consume(&mut self, n: usize) {
        if n >= self.buf.len() {
            self.clear();
        } else {
            self.buf.drain(..n);
        }
    }

    /// Takes the encoded bytes out, leaving the buffer empty.
    pub fn take_bytes(&mut self) -> Vec<u8> {
        self.frames.clear();
        std::mem::take(&mut self.buf)
    }

    /// Appends bytes that are already encoded (e.g. from [`Replies::take_bytes`]).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Removes everything written since `mark` (a previous [`Replies::len`]).
    pub fn truncate(&mut self, mark: usize) {
        self.buf.truncate(mark);
    }

    /// `+OK` / `OK`.
    pub fn ok(&mut self) {
        self.simple("OK");
    }

    /// A status reply such as `PONG`.
    pub fn simple(&mut self, status: &str) {
        self.begin_item();
        if self.style.is_resp() {
            self.buf.push(b'+');
        }
        self.buf.extend_from_slice(status.as_bytes());
        self.end_line();
    }

    /// A status reply from bytes (a MONITOR line); CR and LF, which would
    /// break the framing, become spaces.
    pub fn simple_bytes(&mut self, status: &[u8]) {
        self.begin_item();
        if self.style.is_resp() {
            self.buf.push(b'+');
        }
        self.buf.extend(
            status
                .iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        self.end_line();
    }

    /// An error line; `message` starts with its code (`ERR ...`, `NOAUTH ...`).
    pub fn error(&mut self, message: &str) {
        self.begin_item();
        match self.style {
            Style::Resp | Style::Resp3 => self.buf.push(b'-'),
            Style::Text { .. } => self.buf.extend_from_slice(b"(error) "),
        }
        // A message never spans lines: CR/LF would break the framing.
        self.buf.extend(
            message
                .bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        self.end_line();
    }

    /// `:n` / `(integer) n`.
    pub fn int(&mut self, n: i64) {
        self.begin_item();
        let mut digits = itoa::Buffer::new();
        match self.style {
            Style::Resp | Style::Resp3 => self.buf.push(b':'),
            Style::Text { .. } => self.buf.extend_from_slice(b"(integer) "),
        }
        self.buf.extend_from_slice(digits.format(n).as_bytes());
        self.end_line();
    }

    /// A bulk string: `$len\r\n...\r\n` / the raw bytes.
    pub fn bulk(&mut self, value: &[u8]) {
        self.blob(b'$', b"", value);
    }

    /// A length-prefixed string (`$` bulk, `=` verbatim, ...): `prefix` is
    /// part of the counted payload (`txt:` of a verbatim string) but is not
    /// shown in text mode.
    fn blob(&mut self, marker: u8, prefix: &[u8], value: &[u8]) {
        self.begin_item();
        if self.style.is_resp() {
            let mut digits = itoa::Buffer::new();
            self.buf.push(marker);
            self.buf
                .extend_from_slice(digits.format(prefix.len() + value.len()).as_bytes());
            self.buf.extend_from_slice(b"\r\n");
            self.buf.extend_from_slice(prefix);
        }
        self.buf.extend_from_slice(value);
        self.end_line();
    }

    /// A bulk string holding the decimal form of `n`.
    pub fn bulk_int(&mut self, n: i64) {
        let mut digits = itoa::Buffer::new();
        self.bulk(digits.format(n).as_bytes());
    }

    /// The null bulk string: `$-1` / RESP3 `_` / `(nil)`.
    pub fn nil(&mut self) {
        self.null_as(b"$-1");
    }

    /// The null array (EXEC after a WATCH conflict): `*-1` / RESP3 `_` / `(nil)`.
    pub fn null_array(&mut self) {
        self.null_as(b"*-1");
    }

    fn null_as(&mut self, resp2: &[u8]) {
        self.begin_item();
        match self.style {
            Style::Resp => self.buf.extend_from_slice(resp2),
            Style::Resp3 => self.buf.push(b'_'),
            Style::Text { .. } => self.buf.extend_from_slice(b"(nil)"),
        }
        self.end_line();
    }

    /// A double: RESP3 `,1.5`; a bulk string elsewhere, as Redis does for
    /// RESP2 clients. Shortest round-trip form; `inf`, `-inf`, `nan`.
    pub fn double(&mut self, value: f64) {
        let text = format_double(value);
        if self.style == Style::Resp3 {
            self.begin_item();
            self.buf.push(b',');
            self.buf.extend_from_slice(text.as_bytes());
            self.end_line();
        } else {
            self.bulk(text.as_bytes());
        }
    }

    /// A boolean: RESP3 `#t`/`#f`; the integer 1/0 elsewhere.
    pub fn boolean(&mut self, value: bool) {
        if self.style == Style::Resp3 {
            self.begin_item();
            self.buf.extend_from_slice(if value { b"#t" } else { b"#f" });
            self.end_line();
        } else {
            self.int(i64::from(value));
        }
    }

    /// Human-readable text (INFO, CLIENT INFO/LIST): RESP3 verbatim string
    /// `=len\r\ntxt:...`; a bulk string elsewhere.
    pub fn verbatim(&mut self, text: &[u8]) {
        if self.style == Style::Resp3 {
            self.blob(b'=', b"txt:", text);
        } else {
            self.bulk(text);
        }
    }

    /// An integer too large for 64 bits, given as its decimal digits:
    /// RESP3 `(digits`; a bulk string elsewhere.
    pub fn big_number(&mut self, digits: &str) {
        if self.style == Style::Resp3 {
            self.begin_item();
            self.buf.push(b'(');
            self.buf.extend_from_slice(digits.as_bytes());
            self.end_line();
        } else {
            self.bulk(digits.as_bytes());
        }
    }

    /// `Some(v)` as a bulk, `None` as nil.
    pub fn bulk_or_nil(&mut self, value: Option<&[u8]>) {
        match value {
            Some(v) => self.bulk(v),
            None => self.nil(),
        }
    }

    /// Starts an array of `len` elements; the caller then writes exactly `len` replies.
    pub fn array(&mut self, len: usize) {
        self.aggregate(b'*', len, len);
    }

    /// Starts a map of `len` pairs; the caller then writes `2 * len` replies
    /// (key, value, key, value...). RESP3 `%len`; an array of `2 * len` elsewhere.
    pub fn map(&mut self, len: usize) {
        if self.style == Style::Resp3 {
            self.aggregate(b'%', len, 2 * len);
        } else {
            self.aggregate(b'*', 2 * len, 2 * len);
        }
    }

    /// Starts an unordered set of `len` elements: RESP3 `~len`; an array elsewhere.
    pub fn set(&mut self, len: usize) {
        let marker = if self.style == Style::Resp3 { b'~' } else { b'*' };
        self.aggregate(marker, len, len);
    }

    /// Starts an out-of-band push message of `len` elements (pub/sub,
    /// client-side caching invalidations): RESP3 `>len`; an array elsewhere.
    pub fn push(&mut self, len: usize) {
        let marker = if self.style == Style::Resp3 { b'>' } else { b'*' };
        self.aggregate(marker, len, len);
    }

    /// Writes an aggregate header: `marker` and `count` on the wire, and
    /// `items` replies to follow (a map counts pairs but holds 2n replies).
    fn aggregate(&mut self, marker: u8, count: usize, items: usize) {
        let len = items;
        match self.style {
            Style::Resp | Style::Resp3 => {
                let mut digits = itoa::Buffer::new();
                self.begin_item();
                self.buf.push(marker);
                self.buf.extend_from_slice(digits.format(count).as_bytes());
                self.buf.extend_from_slice(b"\r\n");
            }
            Style::Text { .. } if len == 0 => {
                self.begin_item();
                self.buf.extend_from_slice(b"(empty array)");
                self.end_line();
            }
            Style::Text { .. } => {
                let indent = match self.frames.last() {
                    Some(parent) => parent.indent + parent.width + 2,
                    None => 0,
                };
                self.begin_item();
                self.frames.push(Frame {
                    len,
                    next: 0,
                    width: decimal_width(len),
                    indent,
                });
            }
        }
    }

    /// Writes the numbered prefix of an array element in text mode.
    fn begin_item(&mut self) {
        let Some(frame) = self.frames.last() else {
            return;
        };
        if frame.next > 0 {
            self.buf.resize(self.buf.len() + frame.indent, b' ');
        }
        let mut digits = itoa::Buffer::new();
        let index = digits.format(frame.next + 1);
        self.buf.resize(self.buf.len() + frame.width - index.len(), b' ');
        self.buf.extend_from_slice(index.as_bytes());
        self.buf.extend_from_slice(b") ");
    }

    /// Ends a scalar reply and closes every array it completes.
    fn end_line(&mut self) {
        match self.style {
            Style::Text { crlf: false } => self.buf.push(b'\n'),
            _ => self.buf.extend_from_slice(b"\r\n"),
        }
        while let Some(frame) = self.frames.last_mut() {
            frame.next += 1;
            if frame.next < frame.len {
                break;
            }
            self.frames.pop();
        }
    }
}

/// Capacity above which an idle reply buffer is shrunk, so one huge `KEYS *`
/// does not pin memory for the rest of the connection.
const MAX_RETAINED_CAPACITY: usize = 1024 * 1024;

/// Redis's textual form of a double (7.2's `d2string`): `inf`/`-inf`/`nan`,
/// integral values within ±2^62 as integers (`3`), everything else as the
/// shortest round-trip digits laid out as `fpconv_dtoa` does — plain
/// decimals for moderate exponents (`1.5`, `0.00001`), scientific notation
/// beyond them (`1e+22`, `1.5e-7`).
pub fn format_double(value: f64) -> String {
    if value.is_nan() {
        "nan".into()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.into()
    } else if value == 0.0 {
        if value.is_sign_negative() { "-0" } else { "0" }.into()
    } else if value.fract() == 0.0 && value.abs() <= (i64::MAX / 2) as f64 {
        // `double2ll`: exact integers print through the integer formatter.
        itoa::Buffer::new().format(value as i64).to_string()
    } else {
        fpconv_layout(value)
    }
}

/// `fpconv_dtoa`'s layout of the shortest round-trip digits of a finite,
/// non-zero `value` (Rust's `{:e}` gives the same digits Grisu aims for).
fn fpconv_layout(value: f64) -> String {
    let sci = format!("{:e}", value.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let ndigits = digits.len() as i32;
    // value = digits × 10^k
    let k = exponent.parse::<i32>().unwrap_or(0) - (ndigits - 1);
    let exp = (k + ndigits - 1).abs();
    let mut out = String::with_capacity(24);
    if value < 0.0 {
        out.push('-');
    }
    if k >= 0 && exp < ndigits + 7 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', k as usize));
    } else if k < 0 && (k > -7 || exp < 4) {
        let offset = ndigits + k;
        if offset <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-offset) as usize));
            out.push_str(&digits);
        } else {
            out.push_str(&digits[..offset as usize]);
            out.push('.');
            out.push_str(&digits[offset as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if ndigits > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if k + ndigits - 1 < 0 { '-' } else { '+' });
        out.push_str(itoa::Buffer::new().format(exp));
    }
    out
}

fn decimal_width(n: usize) -> usize {
    let mut digits = itoa::Buffer::new();
    digits.format(n).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> Replies {
        let mut r = Replies::default();
        r.set_style(Style::Text { crlf: false });
        r
    }

    #[test]
    fn resp_scalars_are_byte_exact() {
        let mut r = Replies::default();
        r.ok();
        r.error("ERR x");
        r.int(-3);
        r.bulk(b"v");
        r.nil();
        r.array(0);
        assert_eq!(r.bytes(), b"+OK\r\n-ERR x\r\n:-3\r\n$1\r\nv\r\n$-1\r\n*0\r\n");
    }

    #[test]
    fn resp3_kinds_are_byte_exact() {
        let mut r = Replies::default();
        r.set_style(Style::Resp3);
        r.nil();
        r.null_array();
        r.map(1);
        r.bulk(b"k");
        r.double(1.5);
        r.set(2);
        r.boolean(true);
        r.boolean(false);
        r.verbatim(b"a\r\nb");
        r.big_number("12345678901234567890");
        r.push(1);
        r.double(f64::NEG_INFINITY);
        r.double(3.0);
        assert_eq!(
            r.bytes(),
            &b"_\r\n_\r\n%1\r\n$1\r\nk\r\n,1.5\r\n~2\r\n#t\r\n#f\r\n=8\r\ntxt:a\r\nb\r\n(12345678901234567890\r\n>1\r\n,-inf\r\n,3\r\n"[..]
        );
    }

    #[test]
    fn resp3_kinds_fall_back_to_what_redis_sends_a_resp2_client() {
        let mut r = Replies::default();
        r.nil();
        r.null_array();
        r.map(1);
        r.bulk(b"k");
        r.double(1.5);
        r.set(1);
        r.boolean(true);
        r.verbatim(b"txt");
        r.big_number("1");
        assert_eq!(
            r.bytes(),
            &b"$-1\r\n*-1\r\n*2\r\n$1\r\nk\r\n$3\r\n1.5\r\n*1\r\n:1\r\n$3\r\ntxt\r\n$1\r\n1\r\n"[..]
        );
        let mut t = text();
        t.map(1);
        t.bulk(b"k");
        t.double(2.5);
        t.null_array();
        assert_eq!(t.bytes(), b"1) k\n2) 2.5\n(nil)\n");
    }

    #[test]
    fn text_arrays_look_like_redis_cli() {
        let mut r = text();
        r.array(2);
        r.bulk(b"25");
        r.nil();
        assert_eq!(r.bytes(), b"1) 25\n2) (nil)\n");

        let mut r = text();
        r.array(2);
        r.bulk(b"0");
        r.array(2);
        r.bulk(b"a");
        r.bulk(b"b");
        r.int(1);
        assert_eq!(r.bytes(), b"1) 0\n2) 1) a\n   2) b\n(integer) 1\n");

        let mut r = text();
        r.array(10);
        for i in 0..10 {
            r.int(i);
        }
        assert!(r.bytes().starts_with(b" 1) (integer) 0\n"));
        assert!(r.bytes().ends_with(b"10) (integer) 9\n"));
    }

    #[test]
    fn text_scalars_and_line_endings() {
        let mut r = Replies::default();
        r.set_style(Style::Text { crlf: true });
        r.ok();
        r.error("ERR bad");
        r.array(0);
        assert_eq!(r.bytes(), b"OK\r\n(error) ERR bad\r\n(empty array)\r\n");
    }

    #[test]
    fn doubles_print_as_redis_7_2_prints_them() {
        for (value, text) in [
            (1.1, "1.1"),
            (3.0, "3"),
            (-2.5, "-2.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (0.00001, "0.00001"),
            (1.5e-7, "1.5e-7"),
            (1e22, "1e+22"),
            (-1e300, "-1e+300"),
            (1.2345678901234568e20, "123456789012345680000"),
            (4611686018427387904.0, "4611686018427387904"),
            (1e-300, "1e-300"),
            (123.456, "123.456"),
        ] {
            assert_eq!(format_double(value), text, "{value:e}");
        }
    }
}
