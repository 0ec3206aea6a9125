//! On-disk framing of the write-ahead log: the file header and one record frame.
//!
//! This file owns the byte layout (see `docs/persistence.md` for the diagram):
//!
//! ```text
//! file   := header frame*
//! header := magic "KVSWAL\r\n" (8) | version u32 LE (4) | reserved u32 LE = 0 (4)
//! frame  := crc32c u32 LE (4) | payload_len u32 LE (4) | kind u8 (1) | payload (payload_len)
//!           crc32c covers payload_len, kind and payload (every byte after the crc field)
//! transaction frame (kind 16): payload := inner*
//! inner  := 0u32 (4) | payload_len u32 LE (4) | kind u8 (1) | payload   (a frame with crc 0)
//! ```
//!
//! A transaction (`EXEC`) is logged as ONE frame holding its records: its single checksum
//! makes it all-or-nothing — a crash in the middle of writing it leaves a torn tail that is
//! truncated, never half a transaction. The inner records carry a zero crc so that a scan for
//! the next valid frame after damage (`reader::find_valid_after`) never mistakes an inner
//! record of a torn transaction for a valid frame (which would turn a torn tail into
//! "corruption").
//!
//! It must never do I/O, allocate beyond the caller's output buffer, or trust a length read from
//! disk before bounding it: a garbage length is reported as a bad frame, never allocated.

/// Identifies a kvserver WAL file; the `\r\n` catches text-mode mangling, as PNG's magic does.
pub const FILE_MAGIC: [u8; 8] = *b"KVSWAL\r\n";
/// The only format version this build reads and writes; bump it on any layout change.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the file header (magic, version, reserved word).
pub const FILE_HEADER_LEN: usize = 16;
/// Length of a frame header: crc (4) + payload length (4) + kind (1).
pub const FRAME_HEADER_LEN: usize = 9;
/// Largest payload a frame may claim: a 512 MiB key plus a 512 MiB value (Redis's
/// `proto-max-bulk-len` each) plus field overhead. Anything larger is garbage, not a record.
pub const MAX_PAYLOAD_LEN: u32 = 2 * 512 * 1024 * 1024 + 64;

/// The file header every WAL starts with, so a reader can refuse a file it does not understand.
pub fn file_header() -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..8].copy_from_slice(&FILE_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h
}

/// The kind byte of a frame; kept apart from [`Record`] so counters and reports can name kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// A key now holds a value (with an optional absolute expiry).
    Set = 1,
    /// A key was removed.
    Del = 2,
    /// A key's expiry changed (set or removed).
    Expire = 3,
    /// Every key of every database was removed.
    FlushAll = 4,
    /// Part of a string value changed (`APPEND`, `SETRANGE`): bytes at an offset and the
    /// resulting length. Numbered apart from kinds other branches add (hashes 5–7, databases 10–12).
    Patch = 20,
    /// Hash fields now hold these values and field expiries (creating the hash).
    HashSet = 5,
    /// Hash fields were removed (the hash goes when its last field does).
    HashDel = 6,
    /// Hash field expiries changed (absolute times; `None` = HPERSIST).
    HashExpire = 7,
    /// The records that follow belong to database `db` (as Redis's AOF `SELECT`); a log
    /// starts in database 0, so a single-database log never holds one.
    Select = 10,
    /// Two databases swapped their contents (`SWAPDB`).
    SwapDb = 11,
    /// Every key of the current database was removed (`FLUSHDB`).
    FlushDb = 12,
    /// A transaction: the records of one `EXEC`, applied all or none. Numbered apart from the
    /// record kinds, which may grow.
    Transaction = 16,
    /// A list, set or sorted set changed: a type-specific effect (`store::types`).
    Collection = 21,
    /// A function library change (`FUNCTION LOAD`/`DELETE`/`FLUSH`/`RESTORE`): op + data.
    Function = 22,
}

impl RecordKind {
    /// Maps a kind byte read from disk; `None` means the frame is not one of ours.
    pub fn from_byte(b: u8) -> Option<RecordKind> {
        match b {
            1 => Some(RecordKind::Set),
            2 => Some(RecordKind::Del),
            3 => Some(RecordKind::Expire),
            4 => Some(RecordKind::FlushAll),
            20 => Some(RecordKind::Patch),
            5 => Some(RecordKind::HashSet),
            6 => Some(RecordKind::HashDel),
            7 => Some(RecordKind::HashExpire),
            10 => Some(RecordKind::Select),
            11 => Some(RecordKind::SwapDb),
            12 => Some(RecordKind::FlushDb),
            16 => Some(RecordKind::Transaction),
            21 => Some(RecordKind::Collection),
            22 => Some(RecordKind::Function),
            _ => None,
        }
    }
}

/// One logged write, expressed as its RESULT (never the command), so that replaying a record
/// twice, or over a snapshot that already contains it, leaves the same state. Borrows its bytes
/// from the caller (when encoding) or from the read buffer (when replaying): no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// `key` now holds `value`; `expires_at_ms` is an absolute unix time in milliseconds.
    Set {
        /// The key bytes.
        key: &'a [u8],
        /// The value bytes.
        value: &'a [u8],
        /// Absolute expiry (unix ms), `None` for a key without a TTL.
        expires_at_ms: Option<u64>,
    },
    /// `key` was deleted (or expired and reaped).
    Del {
        /// The key bytes.
        key: &'a [u8],
    },
    /// The expiry of an existing `key` changed; `None` means PERSIST. A no-op for a missing key.
    Expire {
        /// The key bytes.
        key: &'a [u8],
        /// Absolute expiry (unix ms), `None` to remove the TTL.
        expires_at_ms: Option<u64>,
    },
    /// Every key of every database was removed.
    FlushAll,
    /// `key`'s string value is now its previous value (empty if absent) cut or zero-padded
    /// to `len` bytes, with `bytes` written at `offset`; its expiry is `expires_at_ms`.
    /// Proportional to the change, yet still a result: applying it twice, or over a
    /// snapshot taken after it, gives the same value (see docs/persistence.md).
    Patch {
        /// The key bytes.
        key: &'a [u8],
        /// Where `bytes` start in the value.
        offset: u64,
        /// The bytes written.
        bytes: &'a [u8],
        /// The value's length afterwards (`offset + bytes.len()` at least).
        len: u64,
        /// Absolute expiry (unix ms) the key keeps, `None` for no TTL.
        expires_at_ms: Option<u64>,
    },
    /// `fields` of hash `key` now hold their values and expiries; a missing
    /// key (or one of another type) becomes a new hash first.
    HashSet {
        /// The key bytes.
        key: &'a [u8],
        /// (field, value, expiry) entries.
        fields: HashFields<'a>,
    },
    /// `fields` were removed from hash `key`; an emptied hash is removed.
    HashDel {
        /// The key bytes.
        key: &'a [u8],
        /// Field entries.
        fields: HashFields<'a>,
    },
    /// The expiries of `fields` of hash `key` changed; an expiry at or
    /// before replay time removes the field.
    HashExpire {
        /// The key bytes.
        key: &'a [u8],
        /// (field, expiry) entries.
        fields: HashFields<'a>,
    },
    /// Later records (up to the next `Select`) belong to database `db`.
    Select {
        /// The database index.
        db: u32,
    },
    /// Databases `a` and `b` swapped contents.
    SwapDb {
        /// One database index.
        a: u32,
        /// The other database index.
        b: u32,
    },
    /// Every key of the current database was removed.
    FlushDb,
    /// `key`, a list, set or sorted set, changed by effect `op` (type in the
    /// high nibble, operation in the low one) with a type-specific
    /// `payload`; see `store::types` and docs/persistence.md.
    Collection {
        /// The key bytes.
        key: &'a [u8],
        /// Type and operation.
        op: u8,
        /// The effect, encoded by the type's module.
        payload: &'a [u8],
    },
    /// A function library changed: `op` 1 = a library's code was loaded
    /// (replacing one of the same name), 2 = the library named `data` was
    /// deleted, 3 = every library was flushed (`data` empty). Not keyed:
    /// replay applies it to the function registry (`scripting::cache`).
    Function {
        /// What changed.
        op: u8,
        /// The library code or name.
        data: &'a [u8],
    },
}

/// The encoded entries of a hash record: `count` entries laid out as the
/// record kind says (see `docs/persistence.md`). Borrowed, so a record read
/// from disk or built by a command is copied only into the log buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashFields<'a> {
    kind: RecordKind,
    count: u32,
    bytes: &'a [u8],
}

/// One entry of a hash record; `value` is empty and `expires_at_ms` None
/// where the kind carries no such field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashField<'a> {
    pub field: &'a [u8],
    pub value: &'a [u8],
    pub expires_at_ms: Option<u64>,
}

impl<'a> HashFields<'a> {
    /// Entries already encoded with [`HashFields::put_entry`] for `kind`.
    pub fn new(kind: RecordKind, count: u32, bytes: &'a [u8]) -> HashFields<'a> {
        HashFields { kind, count, bytes }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True for a record without entries (never written).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded entries (what [`HashFields::new`] takes back).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Appends one entry for a record of `kind`: the field, then the value
    /// (HashSet only), then the expiry (HashSet and HashExpire).
    pub fn put_entry(
        out: &mut Vec<u8>,
        kind: RecordKind,
        field: &[u8],
        value: &[u8],
        expires_at_ms: Option<u64>,
    ) {
        put_bytes(out, field);
        if kind == RecordKind::HashSet {
            put_bytes(out, value);
        }
        if kind != RecordKind::HashDel {
            put_expiry(out, expires_at_ms);
        }
    }

    /// Decodes the entries (validated when the record was decoded).
    pub fn iter(&self) -> impl Iterator<Item = HashField<'a>> + 'a {
        let kind = self.kind;
        let mut c = Cursor { buf: self.bytes };
        (0..self.count).map_while(move |_| read_entry(&mut c, kind).ok())
    }
}

fn read_entry<'a>(c: &mut Cursor<'a>, kind: RecordKind) -> Result<HashField<'a>, &'static str> {
    let field = c.bytes()?;
    let value = if kind == RecordKind::HashSet {
        c.bytes()?
    } else {
        &[]
    };
    let expires_at_ms = if kind == RecordKind::HashDel {
        None
    } else {
        c.expiry()?
    };
    Ok(HashField {
        field,
        value,
        expires_at_ms,
    })
}

fn expiry_len(e: Option<u64>) -> usize {
    if e.is_some() {
        9
    } else {
        1
    }
}

fn put_expiry(out: &mut Vec<u8>, e: Option<u64>) {
    match e {
        Some(t) => {
            out.push(1);
            out.extend_from_slice(&t.to_le_bytes());
        }
        None => out.push(0),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    debug_assert!(b.len() <= u32::MAX as usize);
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

impl Record<'_> {
    /// The kind byte this record is framed with.
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Set { .. } => RecordKind::Set,
            Record::Del { .. } => RecordKind::Del,
            Record::Expire { .. } => RecordKind::Expire,
            Record::FlushAll => RecordKind::FlushAll,
            Record::Patch { .. } => RecordKind::Patch,
            Record::HashSet { .. } => RecordKind::HashSet,
            Record::HashDel { .. } => RecordKind::HashDel,
            Record::HashExpire { .. } => RecordKind::HashExpire,
            Record::Select { .. } => RecordKind::Select,
            Record::SwapDb { .. } => RecordKind::SwapDb,
            Record::FlushDb => RecordKind::FlushDb,
            Record::Collection { .. } => RecordKind::Collection,
            Record::Function { .. } => RecordKind::Function,
        }
    }

    /// Payload bytes (without the frame header); lets callers reserve exactly once.
    pub fn payload_len(&self) -> usize {
        match self {
            Record::Set {
                key,
                value,
                expires_at_ms,
            } => 4 + key.len() + 4 + value.len() + expiry_len(*expires_at_ms),
            Record::Del { key } => 4 + key.len(),
            Record::Expire { key, expires_at_ms } => 4 + key.len() + expiry_len(*expires_at_ms),
            Record::HashSet { key, fields }
            | Record::HashDel { key, fields }
            | Record::HashExpire { key, fields } => 4 + key.len() + 4 + fields.bytes.len(),
            Record::FlushAll | Record::FlushDb => 0,
            Record::Collection { key, payload, .. } => 4 + key.len() + 1 + 4 + payload.len(),
            Record::Function { data, .. } => 1 + 4 + data.len(),
            Record::Select { .. } => 4,
            Record::SwapDb { .. } => 8,
            Record::Patch {
                key,
                bytes,
                expires_at_ms,
                ..
            } => 4 + key.len() + 8 + 4 + bytes.len() + 8 + expiry_len(*expires_at_ms),
        }
    }

    /// Total framed length, header included.
    pub fn encoded_len(&self) -> usize {
        FRAME_HEADER_LEN + self.payload_len()
    }

    /// Appends one framed record to `out`. The only allocation is `out`'s own growth (one
    /// `reserve`), so the server can encode into a reused per-connection buffer.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let payload_len = self.payload_len();
        out.reserve(FRAME_HEADER_LEN + payload_len);
        let start = put_frame_header(out, self.kind(), payload_len);
        match self {
            Record::Set {
                key,
                value,
                expires_at_ms,
            } => {
                put_bytes(out, key);
                put_bytes(out, value);
                put_expiry(out, *expires_at_ms);
            }
            Record::Del { key } => put_bytes(out, key),
            Record::Expire { key, expires_at_ms } => {
                put_bytes(out, key);
                put_expiry(out, *expires_at_ms);
            }
            Record::HashSet { key, fields }
            | Record::HashDel { key, fields }
            | Record::HashExpire { key, fields } => {
                put_bytes(out, key);
                out.extend_from_slice(&fields.count.to_le_bytes());
                out.extend_from_slice(fields.bytes);
            }
            Record::FlushAll | Record::FlushDb => {}
            Record::Collection { key, op, payload } => {
                put_bytes(out, key);
                out.push(*op);
                put_bytes(out, payload);
            }
            Record::Function { op, data } => {
                out.push(*op);
                put_bytes(out, data);
            }
            Record::Select { db } => out.extend_from_slice(&db.to_le_bytes()),
            Record::SwapDb { a, b } => {
                out.extend_from_slice(&a.to_le_bytes());
                out.extend_from_slice(&b.to_le_bytes());
            }
            Record::Patch {
                key,
                offset,
                bytes,
                len,
                expires_at_ms,
            } => {
                put_bytes(out, key);
                out.extend_from_slice(&offset.to_le_bytes());
                put_bytes(out, bytes);
                out.extend_from_slice(&len.to_le_bytes());
                put_expiry(out, *expires_at_ms);
            }
        }
        let crc = crc32c::crc32c(&out[start + 4..]);
        out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Appends a frame header with a zero CRC (the caller fills it in once the
/// payload is written) and returns where the frame starts.
fn put_frame_header(out: &mut Vec<u8>, kind: RecordKind, payload_len: usize) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    out.push(kind as u8);
    start
}

/// Encodes a `Set` record of `key` and a value that is not copied into `out`:
/// the frame's bytes before the value and after it are appended, the CRC
/// covers the value all the same, and the return value is the offset in
/// `out` where the value's bytes belong. Writing `out[..at]`, the value,
/// then `out[at..]` gives exactly what [`Record::encode`] would.
pub fn encode_set_around_value(
    key: &[u8],
    value: &[u8],
    expires_at_ms: Option<u64>,
    out: &mut Vec<u8>,
) -> usize {
    let record = Record::Set {
        key,
        value,
        expires_at_ms,
    };
    let start = put_frame_header(out, RecordKind::Set, record.payload_len());
    put_bytes(out, key);
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    let at = out.len();
    put_expiry(out, expires_at_ms);
    let crc = crc32c::crc32c(&out[start + 4..at]);
    let crc = crc32c::crc32c_append(crc, value);
    let crc = crc32c::crc32c_append(crc, &out[at..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    at
}

/// Reads fields out of a payload slice, failing (never panicking) when a length overruns.
struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn u8(&mut self) -> Result<u8, &'static str> {
        let (&b, rest) = self
            .buf
            .split_first()
            .ok_or("payload field overruns the record")?;
        self.buf = rest;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        let (head, rest) = self
            .buf
            .split_first_chunk::<4>()
            .ok_or("payload field overruns the record")?;
        self.buf = rest;
        Ok(u32::from_le_bytes(*head))
    }

    fn bytes(&mut self) -> Result<&'a [u8], &'static str> {
        let n = self.u32()? as usize;
        if n > self.buf.len() {
            return Err("payload field overruns the record");
        }
        let (b, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(b)
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        let (head, rest) = self
            .buf
            .split_first_chunk::<8>()
            .ok_or("payload field overruns the record")?;
        self.buf = rest;
        Ok(u64::from_le_bytes(*head))
    }

    fn expiry(&mut self) -> Result<Option<u64>, &'static str> {
        let (&flag, rest) = self
            .buf
            .split_first()
            .ok_or("payload field overruns the record")?;
        self.buf = rest;
        match flag {
            0 => Ok(None),
            1 => {
                let (head, rest) = self
                    .buf
                    .split_first_chunk::<8>()
                    .ok_or("payload field overruns the record")?;
                self.buf = rest;
                Ok(Some(u64::from_le_bytes(*head)))
            }
            _ => Err("bad expiry flag"),
        }
    }

    fn finish(self) -> Result<(), &'static str> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err("trailing bytes after the payload fields")
        }
    }
}

/// Decodes a payload whose CRC already matched. Errors are static reasons for reports.
pub fn decode_payload(kind: RecordKind, payload: &[u8]) -> Result<Record<'_>, &'static str> {
    let mut c = Cursor { buf: payload };
    let rec = match kind {
        RecordKind::Set => {
            let key = c.bytes()?;
            let value = c.bytes()?;
            let expires_at_ms = c.expiry()?;
            Record::Set {
                key,
                value,
                expires_at_ms,
            }
        }
        RecordKind::Del => Record::Del { key: c.bytes()? },
        RecordKind::Expire => {
            let key = c.bytes()?;
            let expires_at_ms = c.expiry()?;
            Record::Expire { key, expires_at_ms }
        }
        RecordKind::FlushAll => Record::FlushAll,
        RecordKind::Patch => {
            let key = c.bytes()?;
            let offset = c.u64()?;
            let bytes = c.bytes()?;
            let len = c.u64()?;
            let expires_at_ms = c.expiry()?;
            // Bounded like a Set's value, so replay never allocates from a bad length.
            let end = offset.checked_add(bytes.len() as u64);
            if len > u64::from(MAX_PAYLOAD_LEN) || end.is_none_or(|end| end > len) {
                return Err("patch length out of bounds");
            }
            Record::Patch {
                key,
                offset,
                bytes,
                len,
                expires_at_ms,
            }
        }
        RecordKind::HashSet | RecordKind::HashDel | RecordKind::HashExpire => {
            let key = c.bytes()?;
            let count = c.u32()?;
            let bytes = c.buf;
            if count == 0 {
                return Err("hash record without entries");
            }
            for _ in 0..count {
                read_entry(&mut c, kind)?;
            }
            let fields = HashFields::new(kind, count, &bytes[..bytes.len() - c.buf.len()]);
            match kind {
                RecordKind::HashSet => Record::HashSet { key, fields },
                RecordKind::HashDel => Record::HashDel { key, fields },
                _ => Record::HashExpire { key, fields },
            }
        }
        RecordKind::FlushDb => Record::FlushDb,
        RecordKind::Select => Record::Select { db: c.u32()? },
        RecordKind::SwapDb => Record::SwapDb {
            a: c.u32()?,
            b: c.u32()?,
        },
        RecordKind::Collection => {
            let key = c.bytes()?;
            let op = c.u8()?;
            let payload = c.bytes()?;
            Record::Collection { key, op, payload }
        }
        RecordKind::Function => {
            let op = c.u8()?;
            let data = c.bytes()?;
            Record::Function { op, data }
        }
        RecordKind::Transaction => return Err("a transaction is not a single record"),
    };
    c.finish()?;
    Ok(rec)
}

/// Wraps `frames` (records encoded by [`Record::encode`]) into one transaction frame appended to
/// `out`. Returns false, writing nothing, when there is nothing to gain or it cannot be done:
/// a single record is already atomic, and a transaction larger than [`MAX_PAYLOAD_LEN`] cannot
/// be one frame (the caller then logs the records as they are; docs/persistence.md says so).
pub fn encode_transaction(frames: &[u8], out: &mut Vec<u8>) -> bool {
    let single = frame_header(frames)
        .and_then(Result::ok)
        .is_some_and(|(_, len, _)| FRAME_HEADER_LEN + len == frames.len());
    if single || frames.is_empty() || frames.len() > MAX_PAYLOAD_LEN as usize {
        return false;
    }
    out.reserve(FRAME_HEADER_LEN + frames.len());
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    out.push(RecordKind::Transaction as u8);
    let body = out.len();
    out.extend_from_slice(frames);
    // Zero every inner crc (see the module doc).
    let mut pos = body;
    while pos + FRAME_HEADER_LEN <= out.len() {
        let len = u32::from_le_bytes([out[pos + 4], out[pos + 5], out[pos + 6], out[pos + 7]]) as usize;
        out[pos..pos + 4].fill(0);
        pos += FRAME_HEADER_LEN + len;
    }
    let crc = crc32c::crc32c(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    true
}

/// The records inside a transaction frame's payload, in order. Yields `Err` at the first
/// malformed inner record; [`parse_frame`] validates the whole payload before it reports a
/// transaction, so replay never applies part of one.
pub(crate) fn transaction_records(body: &[u8]) -> impl Iterator<Item = Result<Record<'_>, &'static str>> {
    let mut rest = body;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let item = (|| {
            let h: &[u8; FRAME_HEADER_LEN] = rest.first_chunk().ok_or("transaction record cut short")?;
            let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
            let kind = RecordKind::from_byte(h[8]).ok_or("unknown record kind in a transaction")?;
            if kind == RecordKind::Transaction {
                return Err("nested transaction");
            }
            let payload = rest
                .get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len)
                .ok_or("transaction record overruns the transaction")?;
            let record = decode_payload(kind, payload)?;
            rest = &rest[FRAME_HEADER_LEN + len..];
            Ok(record)
        })();
        if item.is_err() {
            rest = &[];
        }
        Some(item)
    })
}

/// What the bytes at the start of a buffer are.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    /// A valid record occupying `len` bytes.
    Complete { record: Record<'a>, len: usize },
    /// A valid transaction frame of `len` bytes; `body` holds its records (already validated,
    /// read them with [`transaction_records`]).
    Transaction { body: &'a [u8], len: usize },
    /// The buffer ends before the frame does; `need` is the whole frame's length (bounded by
    /// [`MAX_PAYLOAD_LEN`]), or the header length when even the header is cut.
    Incomplete { need: usize },
    /// Not a valid frame.
    Bad(&'static str),
}

/// Reads the frame header at `buf[0..]`: `(crc, payload_len, kind)` once the length is bounded.
#[inline]
pub(crate) fn frame_header(buf: &[u8]) -> Option<Result<(u32, usize, RecordKind), &'static str>> {
    let h: &[u8; FRAME_HEADER_LEN] = buf.first_chunk()?;
    let crc = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if len > MAX_PAYLOAD_LEN {
        return Some(Err("record length out of bounds"));
    }
    match RecordKind::from_byte(h[8]) {
        Some(kind) => Some(Ok((crc, len as usize, kind))),
        None => Some(Err("unknown record kind")),
    }
}

/// Parses the frame starting at `buf[0]`, checking bounds, CRC and payload structure.
#[inline]
pub(crate) fn parse_frame(buf: &[u8]) -> Frame<'_> {
    let (crc, len, kind) = match frame_header(buf) {
        None => {
            return Frame::Incomplete {
                need: FRAME_HEADER_LEN,
            }
        }
        Some(Err(reason)) => return Frame::Bad(reason),
        Some(Ok(h)) => h,
    };
    let total = FRAME_HEADER_LEN + len;
    if buf.len() < total {
        return Frame::Incomplete { need: total };
    }
    if crc32c::crc32c(&buf[4..total]) != crc {
        return Frame::Bad("checksum mismatch");
    }
    if kind == RecordKind::Transaction {
        let body = &buf[FRAME_HEADER_LEN..total];
        return match transaction_records(body).find_map(Result::err) {
            Some(reason) => Frame::Bad(reason),
            None => Frame::Transaction { body, len: total },
        };
    }
    match decode_payload(kind, &buf[FRAME_HEADER_LEN..total]) {
        Ok(record) => Frame::Complete { record, len: total },
        Err(reason) => Frame::Bad(reason),
    }
}

#[cfg(test)]
mod hash_record_tests {
    use super::*;

    fn framed(kind: RecordKind, key: &[u8], entries: &[(&[u8], &[u8], Option<u64>)]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (f, v, e) in entries {
            HashFields::put_entry(&mut bytes, kind, f, v, *e);
        }
        let fields = HashFields::new(kind, entries.len() as u32, &bytes);
        let record = match kind {
            RecordKind::HashSet => Record::HashSet { key, fields },
            RecordKind::HashDel => Record::HashDel { key, fields },
            _ => Record::HashExpire { key, fields },
        };
        let mut out = Vec::new();
        record.encode(&mut out);
        assert_eq!(out.len(), record.encoded_len());
        out
    }

    #[test]
    fn hash_records_round_trip_through_a_frame() {
        let entries: &[(&[u8], &[u8], Option<u64>)] = &[(b"f1", b"v1", None), (b"f2", b"", Some(42))];
        let out = framed(RecordKind::HashSet, b"k", entries);
        let Frame::Complete {
            record: Record::HashSet { key, fields },
            len,
        } = parse_frame(&out)
        else {
            panic!("not a HashSet frame");
        };
        assert_eq!((key, len), (&b"k"[..], out.len()));
        let got: Vec<_> = fields
            .iter()
            .map(|e| (e.field, e.value, e.expires_at_ms))
            .collect();
        assert_eq!(got, entries.to_vec());

        let out = framed(RecordKind::HashDel, b"k", &[(b"f1", b"", None)]);
        assert!(matches!(
            parse_frame(&out),
            Frame::Complete {
                record: Record::HashDel { .. },
                ..
            }
        ));
        let out = framed(
            RecordKind::HashExpire,
            b"k",
            &[(b"f1", b"", Some(7)), (b"f2", b"", None)],
        );
        let Frame::Complete {
            record: Record::HashExpire { fields, .. },
            ..
        } = parse_frame(&out)
        else {
            panic!("not a HashExpire frame");
        };
        assert_eq!(
            fields.iter().map(|e| e.expires_at_ms).collect::<Vec<_>>(),
            vec![Some(7), None]
        );
    }

    #[test]
    fn a_hash_record_whose_count_overruns_its_payload_is_bad() {
        let mut out = framed(RecordKind::HashDel, b"k", &[(b"f1", b"", None)]);
        // Claim two entries; fix the crc so only the structure check can catch it.
        let count_at = FRAME_HEADER_LEN + 4 + 1;
        out[count_at..count_at + 4].copy_from_slice(&2u32.to_le_bytes());
        let crc = crc32c::crc32c(&out[4..]);
        out[..4].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(parse_frame(&out), Frame::Bad(_)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_encoded_around_its_value_equals_the_plain_encoding() {
        for expires in [None, Some(1_700_000_000_000)] {
            let (key, value) = (b"big".as_slice(), vec![7u8; 5000]);
            let mut plain = Vec::new();
            Record::Set {
                key,
                value: &value,
                expires_at_ms: expires,
            }
            .encode(&mut plain);
            let mut around = b"earlier records".to_vec();
            let at = encode_set_around_value(key, &value, expires, &mut around);
            let mut joined = around[..at].to_vec();
            joined.extend_from_slice(&value);
            joined.extend_from_slice(&around[at..]);
            assert_eq!(&joined[b"earlier records".len()..], &plain[..]);
        }
    }
}
