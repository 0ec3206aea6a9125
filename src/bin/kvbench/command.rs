//! Benchmark tests and their precomputed request bytes.
//!
//! Requests are serialised once per test; the only per-request work on the
//! hot path is overwriting the 12 random key digits in place, exactly like
//! redis-benchmark's `__rand_int__` substitution. This keeps the client cheap
//! so that it does not steal the CPU it is trying to measure.

use crate::cli::Protocol;

/// Placeholder redis-benchmark puts in keys; replaced by 12 digits with `-r`.
const RAND: &str = "__rand_int__";
/// Number of digits a random key part takes (redis-benchmark uses 12).
pub const RAND_DIGITS: usize = 12;
/// Keys per MSET/MGET request, as in redis-benchmark's `MSET (10 keys)`.
pub const MULTI_KEYS: usize = 10;
/// Fields per hash written by the `hset` test: a feature-store-shaped entity.
pub const HASH_FIELDS: usize = 20;
/// Fields read by one `hmget` request.
pub const HMGET_FIELDS: usize = 5;

/// One benchmark test. Names and keys follow redis-benchmark so that
/// results can be compared line by line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// `PING` as a multi-bulk request (redis-benchmark's `PING_MBULK`).
    Ping,
    /// `SET key:__rand_int__ <value>`.
    Set,
    /// `GET key:__rand_int__`.
    Get,
    /// `INCR counter:__rand_int__`.
    Incr,
    /// `DEL key:__rand_int__` (not in redis-benchmark, named like its tests).
    Del,
    /// `MSET` of 10 `key:__rand_int__` pairs.
    Mset,
    /// `MGET` of 10 `key:__rand_int__` keys.
    Mget,
    /// `HSET hash:__rand_int__` with 20 fields `f00..f19` (a Feast entity).
    Hset,
    /// `HGET hash:__rand_int__ f07`.
    Hget,
    /// `HMGET hash:__rand_int__` of 5 of the 20 fields.
    Hmget,
    /// `HGETALL hash:__rand_int__` (RESP only: a text reply's line count depends on the data).
    Hgetall,
    /// A transaction: `MULTI`, `INCR counter:__rand_int__` twice, `EXEC`
    /// (redis-benchmark cannot run one). One request = the 4 commands.
    Multi,
    /// `PUBLISH kvbench:channel <datasize bytes>` (with `--subscribers N`
    /// to have receivers and count deliveries).
    Publish,
}

/// The channel of the `publish` test (and of `--subscribers`).
pub const PUBLISH_CHANNEL: &str = "kvbench:channel";

impl Test {
    /// Parse a `-t` list such as `ping,set,get`.
    pub fn parse_list(list: &str) -> Result<Vec<Test>, String> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let t = match name.to_ascii_lowercase().as_str() {
                "ping" | "ping_mbulk" => Test::Ping,
                "set" => Test::Set,
                "get" => Test::Get,
                "incr" => Test::Incr,
                "del" => Test::Del,
                "mset" => Test::Mset,
                "mget" => Test::Mget,
                "hset" => Test::Hset,
                "hget" => Test::Hget,
                "hmget" => Test::Hmget,
                "hgetall" => Test::Hgetall,
                "multi" | "exec" => Test::Multi,
                "publish" => Test::Publish,
                _ => {
                    return Err(format!(
                        "unknown test `{name}` (supported: ping,set,get,incr,del,mset,mget,multi,hset,hget,hmget,hgetall,publish)"
                    ))
                }
            };
            if !out.contains(&t) {
                out.push(t);
            }
        }
        if out.is_empty() {
            return Err("no tests selected".into());
        }
        Ok(out)
    }

    /// Name used in every output format (matches redis-benchmark's CSV names).
    pub fn label(self) -> &'static str {
        match self {
            Test::Ping => "PING_MBULK",
            Test::Set => "SET",
            Test::Get => "GET",
            Test::Incr => "INCR",
            Test::Del => "DEL",
            Test::Mset => "MSET (10 keys)",
            Test::Mget => "MGET (10 keys)",
            Test::Hset => "HSET (20 fields)",
            Test::Hget => "HGET",
            Test::Hmget => "HMGET (5 fields)",
            Test::Hgetall => "HGETALL",
            Test::Multi => "MULTI/EXEC (2 INCR)",
            Test::Publish => "PUBLISH",
        }
    }

    /// How many RESP replies one request gets: 4 for a transaction
    /// (`+OK`, `+QUEUED`, `+QUEUED`, the `EXEC` array), 1 otherwise.
    pub fn replies_per_request(self) -> usize {
        if self == Test::Multi {
            4
        } else {
            1
        }
    }

    /// How many text-protocol lines one reply occupies. MGET replies are
    /// arrays rendered as one `i) value` line per element; every other test
    /// gets a single-line reply.
    pub fn text_lines_per_reply(self) -> usize {
        match self {
            Test::Mget => MULTI_KEYS,
            Test::Hmget => HMGET_FIELDS,
            // OK, QUEUED, QUEUED, then the EXEC array as two numbered lines.
            Test::Multi => 5,
            _ => 1,
        }
    }

    /// The commands of one request, each with the `__rand_int__` placeholder
    /// still in its keys.
    fn commands(self, data_size: usize) -> Vec<Vec<Vec<u8>>> {
        if self == Test::Multi {
            let incr = vec![b"INCR".to_vec(), format!("counter:{RAND}").into_bytes()];
            return vec![
                vec![b"MULTI".to_vec()],
                incr.clone(),
                incr,
                vec![b"EXEC".to_vec()],
            ];
        }
        vec![self.args(data_size)]
    }

    /// Command arguments with the `__rand_int__` placeholder still in keys.
    fn args(self, data_size: usize) -> Vec<Vec<u8>> {
        let key = format!("key:{RAND}").into_bytes();
        let hash_key = format!("hash:{RAND}").into_bytes();
        let value = vec![b'x'; data_size];
        match self {
            Test::Ping => vec![b"PING".to_vec()],
            Test::Set => vec![b"SET".to_vec(), key, value],
            Test::Get => vec![b"GET".to_vec(), key],
            Test::Incr => vec![b"INCR".to_vec(), format!("counter:{RAND}").into_bytes()],
            Test::Del => vec![b"DEL".to_vec(), key],
            Test::Mset => {
                let mut v = vec![b"MSET".to_vec()];
                for _ in 0..MULTI_KEYS {
                    v.push(key.clone());
                    v.push(value.clone());
                }
                v
            }
            Test::Mget => {
                let mut v = vec![b"MGET".to_vec()];
                for _ in 0..MULTI_KEYS {
                    v.push(key.clone());
                }
                v
            }
            Test::Hset => {
                let mut v = vec![b"HSET".to_vec(), hash_key];
                for f in 0..HASH_FIELDS {
                    v.push(format!("f{f:02}").into_bytes());
                    v.push(value.clone());
                }
                v
            }
            Test::Hget => vec![b"HGET".to_vec(), hash_key, b"f07".to_vec()],
            Test::Hmget => {
                let mut v = vec![b"HMGET".to_vec(), hash_key];
                for f in [0, 3, 7, 11, 19] {
                    v.push(format!("f{f:02}").into_bytes());
                }
                v
            }
            Test::Hgetall => vec![b"HGETALL".to_vec(), hash_key],
            Test::Publish => vec![b"PUBLISH".to_vec(), PUBLISH_CHANNEL.as_bytes().to_vec(), value],
            Test::Multi => unreachable!("a transaction is several commands: see `commands`"),
        }
    }
}

/// Appends one command in `protocol`'s request encoding.
fn encode_command(args: &[Vec<u8>], protocol: Protocol, one: &mut Vec<u8>) {
    match protocol {
        Protocol::Resp => {
            one.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for a in args {
                one.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                one.extend_from_slice(a);
                one.extend_from_slice(b"\r\n");
            }
        }
        Protocol::Text => {
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    one.push(b' ');
                }
                one.extend_from_slice(a);
            }
            one.extend_from_slice(b"\r\n");
        }
    }
}

/// Serialised pipeline of identical requests plus where the random digits go.
///
/// Why: building the bytes once and patching digits avoids any formatting or
/// allocation per request.
#[derive(Debug, Clone)]
pub struct Template {
    /// `pipeline` copies of the request, back to back.
    pub bytes: Vec<u8>,
    /// Length of one request; a short batch sends `k * one_len` bytes.
    pub one_len: usize,
    /// Offsets (into `bytes`) of every 12-digit random field.
    pub rand_offsets: Vec<usize>,
    /// Offsets of random fields within one request (to patch a prefix only).
    pub rand_per_request: usize,
}

impl Template {
    /// Build the request bytes for `test`.
    ///
    /// With a keyspace (`-r`), `__rand_int__` becomes `000000000000` and its
    /// position is remembered; without one the placeholder stays literal.
    /// Text protocol values must not contain spaces; ours are all `x`.
    pub fn new(
        test: Test,
        data_size: usize,
        pipeline: usize,
        random_keys: bool,
        protocol: Protocol,
    ) -> Template {
        let zeros = "0".repeat(RAND_DIGITS);
        let mut one = Vec::new();
        for command in test.commands(data_size) {
            let args: Vec<Vec<u8>> = command
                .into_iter()
                .map(|a| {
                    if random_keys {
                        replace(&a, RAND.as_bytes(), zeros.as_bytes())
                    } else {
                        a
                    }
                })
                .collect();
            encode_command(&args, protocol, &mut one);
        }
        let mut offsets_one = Vec::new();
        if random_keys {
            // Every "key:"/"counter:" prefix is followed by the digits.
            for prefix in [&b"key:"[..], &b"counter:"[..]] {
                let mut i = 0;
                while let Some(p) = find(&one[i..], prefix) {
                    let at = i + p + prefix.len();
                    offsets_one.push(at);
                    i = at;
                }
            }
            offsets_one.sort_unstable();
        }
        let pipeline = pipeline.max(1);
        let mut bytes = Vec::with_capacity(one.len() * pipeline);
        let mut rand_offsets = Vec::with_capacity(offsets_one.len() * pipeline);
        for r in 0..pipeline {
            rand_offsets.extend(offsets_one.iter().map(|o| o + r * one.len()));
            bytes.extend_from_slice(&one);
        }
        Template {
            one_len: one.len(),
            rand_per_request: offsets_one.len(),
            bytes,
            rand_offsets,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// Small xorshift64* generator: random keys need speed, not quality.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator; a zero seed is remapped because xorshift sticks at 0.
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// Next pseudo-random number.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Overwrite the 12 digits at `at` with `n` zero-padded (n < 10^12).
#[inline]
pub fn write_digits(buf: &mut [u8], at: usize, mut n: u64) {
    let field = &mut buf[at..at + RAND_DIGITS];
    for d in field.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_set_template_with_random_keys() {
        let t = Template::new(Test::Set, 3, 2, true, Protocol::Resp);
        let one = b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000000\r\n$3\r\nxxx\r\n";
        assert_eq!(t.one_len, one.len());
        assert_eq!(&t.bytes[..one.len()], &one[..]);
        assert_eq!(t.rand_offsets.len(), 2);
        let mut b = t.bytes.clone();
        write_digits(&mut b, t.rand_offsets[1], 12345);
        assert!(String::from_utf8_lossy(&b).ends_with("key:000000012345\r\n$3\r\nxxx\r\n"));
    }

    #[test]
    fn literal_placeholder_without_keyspace() {
        let t = Template::new(Test::Incr, 3, 1, false, Protocol::Text);
        assert_eq!(t.bytes, b"INCR counter:__rand_int__\r\n");
        assert!(t.rand_offsets.is_empty());
    }

    #[test]
    fn mset_has_ten_random_fields() {
        let t = Template::new(Test::Mset, 3, 1, true, Protocol::Resp);
        assert_eq!(t.rand_per_request, 10);
        assert!(t.bytes.starts_with(b"*21\r\n$4\r\nMSET\r\n"));
    }

    #[test]
    fn parse_list() {
        assert_eq!(
            Test::parse_list("ping, SET,get").expect("ok"),
            vec![Test::Ping, Test::Set, Test::Get]
        );
        assert!(Test::parse_list("lpush").is_err());
        assert_eq!(
            Test::parse_list("hset,hget,hmget,hgetall").expect("ok"),
            vec![Test::Hset, Test::Hget, Test::Hmget, Test::Hgetall]
        );
    }
}
