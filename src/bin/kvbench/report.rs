//! Output formats: human summary, `-q`, `--csv`, `--json`, compare tables
//! and the SVG percentile plot.
//!
//! Quiet and CSV output copy redis-benchmark 7 byte for byte (verified
//! against `redis-benchmark --csv` on this machine) so that existing result
//! parsers keep working; JSON is hand-written to avoid a serde_json dependency.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{anyhow, Result};
use hdrhistogram::Histogram;

use crate::engine::Outcome;

/// redis-benchmark 7's CSV header, verbatim.
pub const CSV_HEADER: &str = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"";

/// Latency summary in milliseconds (histograms hold microseconds).
#[derive(Debug, Clone, Copy, Default)]
pub struct Lat {
    /// Mean.
    pub avg: f64,
    /// Minimum.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

impl Lat {
    /// Summarise a histogram; an empty one (all requests failed) gives zeros.
    pub fn of(h: &Histogram<u64>) -> Lat {
        if h.is_empty() {
            return Lat::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Lat {
            avg: h.mean() / 1000.0,
            min: ms(h.min()),
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// The GET hit ratio (non-nil replies / GETs), for GET tests only.
pub fn hit_ratio(label: &str, o: &Outcome) -> Option<f64> {
    (label == "GET" && o.ok > 0).then(|| (o.ok - o.nil) as f64 / o.ok as f64)
}

/// `SET: 123456.79 requests per second, p50=0.199 msec` (redis-benchmark -q);
/// GET lines add `, hit ratio=0.873`.
pub fn quiet_line(label: &str, o: &Outcome) -> String {
    let mut line = format!(
        "{label}: {:.2} requests per second, p50={:.3} msec",
        o.rps(),
        Lat::of(&o.hist).p50
    );
    if let Some(ratio) = hit_ratio(label, o) {
        let _ = write!(line, ", hit ratio={ratio:.4}");
    }
    line
}

/// One CSV row in redis-benchmark 7's format.
pub fn csv_row(label: &str, o: &Outcome) -> String {
    let l = Lat::of(&o.hist);
    format!(
        "\"{label}\",\"{:.2}\",\"{:.3}\",\"{:.3}\",\"{:.3}\",\"{:.3}\",\"{:.3}\",\"{:.3}\"",
        o.rps(),
        l.avg,
        l.min,
        l.p50,
        l.p95,
        l.p99,
        l.max
    )
}

/// Failures as `ERR=3 connection_dropped=2`, or `none`.
pub fn error_summary(o: &Outcome) -> String {
    let mut parts: Vec<String> = o.errors.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if o.unsent > 0 {
        parts.push(format!("unsent={}", o.unsent));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(" ")
    }
}

/// Run parameters echoed in the human summary and JSON.
#[derive(Debug, Clone)]
pub struct Params {
    /// `host:port` of the target.
    pub target: String,
    /// Connections.
    pub clients: usize,
    /// Value size.
    pub data_size: usize,
    /// Pipeline depth.
    pub pipeline: usize,
    /// Client threads.
    pub threads: usize,
    /// `resp` or `text`.
    pub protocol: &'static str,
}

/// Multi-line human summary, similar to redis-benchmark's default output.
pub fn human(label: &str, o: &Outcome, p: &Params) -> String {
    let l = Lat::of(&o.hist);
    let mut s = String::new();
    let _ = writeln!(s, "====== {label} ======");
    let _ = writeln!(
        s,
        "  {} requests completed in {:.2} seconds ({} failed)",
        o.ok,
        o.elapsed.as_secs_f64(),
        o.failed()
    );
    let _ = writeln!(
        s,
        "  {} parallel clients on {} thread(s), {} bytes payload, pipeline {}, {} protocol, {}",
        p.clients, p.threads, p.data_size, p.pipeline, p.protocol, p.target
    );
    let _ = writeln!(s, "  throughput summary: {:.2} requests per second", o.rps());
    if let Some(ratio) = hit_ratio(label, o) {
        let _ = writeln!(
            s,
            "  hit ratio: {:.2}% ({} of {} GETs returned a value)",
            ratio * 100.0,
            o.ok - o.nil,
            o.ok
        );
    }
    let _ = writeln!(s, "  latency summary (msec):");
    let _ = writeln!(
        s,
        "  {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "avg", "min", "p50", "p95", "p99", "p99.9", "max"
    );
    let _ = writeln!(
        s,
        "  {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
        l.avg, l.min, l.p50, l.p95, l.p99, l.p999, l.max
    );
    let _ = writeln!(s, "  errors: {}", error_summary(o));
    let _ = writeln!(
        s,
        "  client CPU: {:.3} s ({:.2} us/request)",
        o.cpu.as_secs_f64(),
        cpu_us_per_request(o)
    );
    s
}

/// Client CPU microseconds per completed request.
pub fn cpu_us_per_request(o: &Outcome) -> f64 {
    let done = o.ok + o.errors.values().sum::<u64>();
    if done == 0 {
        0.0
    } else {
        o.cpu.as_secs_f64() * 1e6 / done as f64
    }
}

/// Escape a string for JSON.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// JSON number; non-finite values (never expected) become 0.
pub fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "0".into()
    }
}

/// One test's result as a JSON object.
pub fn json_outcome(label: &str, o: &Outcome) -> String {
    let l = Lat::of(&o.hist);
    let errors: Vec<String> = o
        .errors
        .iter()
        .map(|(k, v)| format!("{}:{v}", json_str(k)))
        .collect();
    format!(
        "{{\"test\":{},\"requests\":{},\"ok\":{},\"failed\":{},\"unsent\":{},\"seconds\":{},\"rps\":{},\
         \"latency_ms\":{{\"avg\":{},\"min\":{},\"p50\":{},\"p95\":{},\"p99\":{},\"p999\":{},\"max\":{}}},\
         \"errors\":{{{}}},\"client_cpu_seconds\":{},\"client_cpu_us_per_request\":{},\"nil\":{},\"hit_ratio\":{}}}",
        json_str(label),
        o.ok + o.errors.values().sum::<u64>(),
        o.ok,
        o.failed(),
        o.unsent,
        format_args!("{:.6}", o.elapsed.as_secs_f64()),
        num(o.rps()),
        num(l.avg),
        num(l.min),
        num(l.p50),
        num(l.p95),
        num(l.p99),
        num(l.p999),
        num(l.max),
        errors.join(","),
        format_args!("{:.6}", o.cpu.as_secs_f64()),
        num(cpu_us_per_request(o)),
        o.nil,
        hit_ratio(label, o).map_or("null".to_string(), num),
    )
}

/// Median of a non-empty slice (mean of the middle two for even lengths).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// Ratio that stays printable when the denominator is zero.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// Write an SVG with one latency-vs-percentile line per (label, histogram).
///
/// The x axis is `-log10(1 - q)` so that 90%, 99%, 99.9%, 99.99% are evenly
/// spaced (the usual HDR histogram plot); y is latency in ms.
pub fn plot(path: &Path, series: &[(String, Histogram<u64>)]) -> Result<()> {
    use plotters::prelude::*;

    const MAX_X: f64 = 4.0; // up to 99.99%
    let points: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(name, h)| {
            let pts = (0..=80)
                .map(|i| {
                    let x = MAX_X * i as f64 / 80.0;
                    let q = 1.0 - 10f64.powf(-x);
                    (x, h.value_at_quantile(q) as f64 / 1000.0)
                })
                .collect();
            (name.clone(), pts)
        })
        .collect();
    let max_y = points
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .fold(0.001f64, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow!("plot {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("kvbench latency by percentile", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..MAX_X, 0f64..max_y)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_labels(5)
        .x_label_formatter(&|x| {
            let p = 100.0 * (1.0 - 10f64.powf(-*x));
            format!("{p:.2}%")
        })
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (name, pts)) in points.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn outcome() -> Outcome {
        let mut hist = Histogram::new_with_bounds(1, 60_000_000, 3).expect("hist");
        hist.record_n(200, 10).expect("rec");
        Outcome {
            ok: 10,
            nil: 0,
            errors: BTreeMap::new(),
            unsent: 0,
            elapsed: Duration::from_millis(100),
            hist,
            cpu: Duration::ZERO,
            first_io_error: None,
        }
    }

    #[test]
    fn csv_and_quiet_match_redis_benchmark() {
        let o = outcome();
        assert_eq!(
            csv_row("SET", &o),
            "\"SET\",\"100.00\",\"0.200\",\"0.200\",\"0.200\",\"0.200\",\"0.200\",\"0.200\""
        );
        assert_eq!(
            quiet_line("SET", &o),
            "SET: 100.00 requests per second, p50=0.200 msec"
        );
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0]), 2.5);
    }

    #[test]
    fn json_escapes() {
        assert_eq!(json_str("a\"b"), "\"a\\\"b\"");
    }
}
