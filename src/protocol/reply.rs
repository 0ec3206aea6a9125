//! Reply encoding: RESP2 for RESP requests, human-readable lines for text.
//!
//! Handlers describe a reply by calling these methods; they never see which
//! encoding is used and never touch a socket. Everything is appended to one
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
    Resp,
    Text { crlf: bool },
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
        match self.style {
            Style::Resp => {
                self.buf.push(b'+');
                self.buf.extend_from_slice(status.as_bytes());
            }
            Style::Text { .. } => self.buf.extend_from_slice(status.as_bytes()),
        }
        self.end_line();
    }

    /// An error line; `message` starts with its code (`ERR ...`, `NOAUTH ...`).
    pub fn error(&mut self, message: &str) {
        self.begin_item();
        match self.style {
            Style::Resp => self.buf.push(b'-'),
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
            Style::Resp => self.buf.push(b':'),
            Style::Text { .. } => self.buf.extend_from_slice(b"(integer) "),
        }
        self.buf.extend_from_slice(digits.format(n).as_bytes());
        self.end_line();
    }

    /// A bulk string: `$len\r\n...\r\n` / the raw bytes.
    pub fn bulk(&mut self, value: &[u8]) {
        self.begin_item();
        if self.style == Style::Resp {
            let mut digits = itoa::Buffer::new();
            self.buf.push(b'$');
            self.buf.extend_from_slice(digits.format(value.len()).as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        }
        self.buf.extend_from_slice(value);
        self.end_line();
    }

    /// A bulk string holding the decimal form of `n`.
    pub fn bulk_int(&mut self, n: i64) {
        let mut digits = itoa::Buffer::new();
        self.bulk(digits.format(n).as_bytes());
    }

    /// The null bulk string: `$-1` / `(nil)`.
    pub fn nil(&mut self) {
        self.begin_item();
        match self.style {
            Style::Resp => self.buf.extend_from_slice(b"$-1"),
            Style::Text { .. } => self.buf.extend_from_slice(b"(nil)"),
        }
        self.end_line();
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
        match self.style {
            Style::Resp => {
                let mut digits = itoa::Buffer::new();
                self.begin_item();
                self.buf.push(b'*');
                self.buf.extend_from_slice(digits.format(len).as_bytes());
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
}
