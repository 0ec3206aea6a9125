//! Command-line flags of `kvbench`.
//!
//! The short flags deliberately mirror `redis-benchmark` so that existing
//! muscle memory and scripts carry over; this is why clap's automatic `-h`
//! help flag is disabled (`-h` is the host, help stays on `--help`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};

/// Wire protocol spoken by the benchmark clients.
///
/// `resp` is what every Redis client speaks; `text` exercises kvserver's
/// netcat-friendly inline protocol so that its cost can be measured too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// RESP2 multi-bulk requests, RESP replies (works with redis-server).
    Resp,
    /// Inline `SET key value\r\n` requests, one text line per reply.
    Text,
}

/// All flags. Field docs double as `--help` text.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kvbench",
    version,
    disable_help_flag = true,
    about = "redis-benchmark-style load generator for kvserver (and any RESP server)",
    after_help = "Defaults to port 6380 (kvserver's default), not redis' 6379.\n\
                  Tests: ping (PING_MBULK), set, get, incr, del, mset, mget (10 keys each);\n\
                  also hset, hget, hmget, hgetall, multi, publish (with --subscribers N).\n\
                  Exit status is non-zero if any request failed (error reply, dropped\n\
                  connection, timeout) or the server could not be reached."
)]
pub struct Args {
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,

    /// Server hostname.
    #[arg(short = 'h', long = "host", default_value = "127.0.0.1")]
    pub host: String,

    /// Server port (kvserver's default 6380; redis-benchmark defaults to 6379).
    #[arg(short = 'p', long = "port", default_value_t = 6380)]
    pub port: u16,

    /// Number of parallel connections.
    #[arg(short = 'c', long = "clients", default_value_t = 50)]
    pub clients: usize,

    /// Total number of requests per test (ignored with --duration).
    #[arg(short = 'n', long = "requests", default_value_t = 100_000)]
    pub requests: u64,

    /// Data size of SET/MSET values in bytes.
    #[arg(short = 'd', long = "datasize", default_value_t = 3)]
    pub data_size: usize,

    /// Use random keys in [0, N): `__rand_int__` becomes a 12-digit number.
    /// Without it the key is literally `key:__rand_int__` (one key), as in redis-benchmark.
    #[arg(short = 'r', long = "keyspacelen")]
    pub keyspace: Option<u64>,

    /// Distribution of the `-r` keys: `uniform` (redis-benchmark's) or
    /// `zipf:S` (rank k drawn with probability ∝ 1/k^S, e.g. zipf:0.99: a
    /// cache workload with hot keys). GET tests then report the hit ratio.
    #[arg(long, default_value = "uniform")]
    pub key_pattern: crate::keys::KeyPattern,

    /// Pipeline N requests per round trip.
    #[arg(short = 'P', long = "pipeline", default_value_t = 1)]
    pub pipeline: usize,

    /// Comma-separated list of tests to run.
    #[arg(
        short = 't',
        long = "tests",
        default_value = "ping,set,get,incr,del,mset,mget"
    )]
    pub tests: String,

    /// Quiet: one line per test, like `redis-benchmark -q`.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,

    /// Output in redis-benchmark 7's CSV format.
    #[arg(long)]
    pub csv: bool,

    /// Password sent with AUTH on every connection before the test.
    #[arg(short = 'a', long = "password")]
    pub password: Option<String>,

    /// Client threads; connections are spread over them (1 like redis-benchmark).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,

    /// Request/reply protocol.
    #[arg(long, value_enum, default_value_t = Protocol::Resp)]
    pub protocol: Protocol,

    /// Run each test for this long instead of -n requests (e.g. 500ms, 10s, 2m).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Machine-readable JSON results on stdout.
    #[arg(long)]
    pub json: bool,

    /// Second server: alternate rounds A B A B … and print ratios A/B.
    #[arg(long, value_name = "HOST:PORT")]
    pub compare: Option<String>,

    /// Rounds per server for --compare (medians are reported).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,

    /// Write an SVG latency-percentile plot (one line per test).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// Subscribers of the `publish` test's channel, connected before it
    /// starts; their deliveries are counted and reported.
    #[arg(long, default_value_t = 0)]
    pub subscribers: usize,

    /// Connect and reply timeout (a server silent for this long fails the request).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Parse `500ms`, `10s`, `2m`, `1h` or a bare number of seconds.
///
/// A tiny subset of humantime: enough for benchmark durations without a crate.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration `{s}` (try 500ms, 10s, 2m)"))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" | "sec" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown duration unit `{other}` (use ms, s, m, h)")),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("duration `{s}` must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn dash_h_is_host() {
        let a = Args::try_parse_from(["kvbench", "-h", "example", "-p", "1"]).expect("parse");
        assert_eq!(a.host, "example");
        assert_eq!(a.port, 1);
    }
}
