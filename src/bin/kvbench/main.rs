//! `kvbench`: kvserver's redis-benchmark-style load tool.
//!
//! It speaks plain RESP (so it works unchanged against redis-server) or
//! kvserver's text protocol, drives all connections from a few epoll event
//! loops to stay cheap on small machines, and reports throughput, HDR
//! latency percentiles and failures by kind. Any failed request makes the
//! exit status non-zero so that scripts cannot mistake errors for speed.
//! See `docs/kvbench.md`.

mod cli;
mod command;
mod engine;
mod keys;
mod reply;
mod report;
mod subscribers;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

use cli::{Args, Protocol};
use command::{Template, Test};
use engine::{Outcome, RunConfig};
use report::Params;

fn main() -> ExitCode {
    let args = Args::parse();
    match real_main(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("kvbench: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Build the per-test run configuration for one server.
fn config(args: &Args, test: Test, host: &str, port: u16) -> RunConfig {
    RunConfig {
        host: host.to_string(),
        port,
        clients: args.clients,
        threads: args.threads,
        pipeline: args.pipeline,
        requests: args.requests,
        duration: args.duration,
        template: Template::new(
            test,
            args.data_size,
            args.pipeline,
            args.keyspace.is_some(),
            args.protocol,
        ),
        keyspace: args.keyspace,
        key_pattern: args.key_pattern,
        protocol: args.protocol,
        text_lines: test.text_lines_per_reply(),
        replies_per_request: test.replies_per_request(),
        password: args.password.clone(),
        timeout: args.timeout,
    }
}

fn validate(args: &Args) -> Result<Vec<Test>> {
    if args.clients == 0 || args.pipeline == 0 || args.threads == 0 || args.rounds == 0 {
        bail!("-c, -P, --threads and --rounds must be at least 1");
    }
    if args.keyspace == Some(0) || args.keyspace.is_some_and(|k| k > 999_999_999_999) {
        bail!("-r must be between 1 and 999999999999 (12 digits)");
    }
    if args.duration.is_none() && args.requests == 0 {
        bail!("-n must be at least 1");
    }
    if [args.quiet, args.csv, args.json].iter().filter(|&&b| b).count() > 1 {
        bail!("choose at most one of -q, --csv, --json");
    }
    let tests = Test::parse_list(&args.tests).map_err(|e| anyhow!(e))?;
    if args.protocol == Protocol::Text && tests.contains(&Test::Hgetall) {
        bail!("hgetall needs --protocol resp: its text reply has as many lines as the hash has fields");
    }
    Ok(tests)
}

fn progress_bar(args: &Args, label: &str) -> Option<ProgressBar> {
    let tty = std::io::stderr().is_terminal() && std::io::stdout().is_terminal();
    if !tty || args.quiet || args.csv || args.json {
        return None;
    }
    let len = match args.duration {
        Some(d) => d.as_millis() as u64,
        None => args.requests,
    };
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{prefix:>16} [{bar:30}] {percent:>3}% {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    pb.set_style(style);
    pb.set_prefix(label.to_string());
    Some(pb)
}

/// Run one test once, with a progress line when appropriate.
fn run_once(args: &Args, test: Test, host: &str, port: u16) -> Result<Outcome> {
    let cfg = config(args, test, host, port);
    let subscribers = if test == Test::Publish && args.subscribers > 0 {
        Some(subscribers::Subscribers::start(
            host,
            port,
            args.subscribers,
            args.password.as_deref(),
        )?)
    } else {
        None
    };
    let started = std::time::Instant::now();
    let pb = progress_bar(args, test.label());
    let out =
        engine::run(&cfg, pb.as_ref()).with_context(|| format!("{} against {host}:{port}", test.label()));
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if let Some(subs) = subscribers {
        let elapsed = started.elapsed();
        let total = subs.finish(std::time::Duration::from_secs(10));
        eprintln!(
            "kvbench: {} subscribers received {total} messages ({:.0} deliveries/s over {:.2}s)",
            args.subscribers,
            total as f64 / elapsed.as_secs_f64().max(1e-9),
            elapsed.as_secs_f64()
        );
    }
    out
}

/// Tell the user on stderr why requests failed (stdout stays parseable).
fn explain_failures(label: &str, target: &str, o: &Outcome) {
    if o.failed() == 0 {
        return;
    }
    let why = o
        .first_io_error
        .as_deref()
        .map(|w| format!(": {w}"))
        .unwrap_or_default();
    eprintln!(
        "kvbench: {label} against {target}: {} of {} requests failed ({}){why}",
        o.failed(),
        o.ok + o.failed(),
        report::error_summary(o)
    );
}

fn real_main(args: &Args) -> Result<bool> {
    let tests = validate(args)?;
    if let Some(other) = &args.compare {
        return compare(args, &tests, other);
    }
    let target = format!("{}:{}", args.host, args.port);
    let params = Params {
        target: target.clone(),
        clients: args.clients,
        data_size: args.data_size,
        pipeline: args.pipeline,
        threads: args.threads.min(args.clients),
        protocol: match args.protocol {
            Protocol::Resp => "resp",
            Protocol::Text => "text",
        },
    };
    if args.csv {
        println!("{}", report::CSV_HEADER);
    }
    let mut all_ok = true;
    let mut json = Vec::new();
    let mut series: Vec<(String, Histogram<u64>)> = Vec::new();
    for &test in &tests {
        let o = run_once(args, test, &args.host, args.port)?;
        let label = test.label();
        if args.csv {
            println!("{}", report::csv_row(label, &o));
        } else if args.quiet {
            println!("{}", report::quiet_line(label, &o));
        } else if args.json {
            json.push(report::json_outcome(label, &o));
        } else {
            println!("{}", report::human(label, &o, &params));
        }
        explain_failures(label, &target, &o);
        all_ok &= o.failed() == 0;
        series.push((label.to_string(), o.hist));
    }
    if args.json {
        println!(
            "{{\"target\":{},\"clients\":{},\"threads\":{},\"pipeline\":{},\"data_size\":{},\"protocol\":{},\"tests\":[{}]}}",
            report::json_str(&target),
            params.clients,
            params.threads,
            params.pipeline,
            params.data_size,
            report::json_str(params.protocol),
            json.join(",")
        );
    }
    if let Some(path) = &args.plot {
        report::plot(path, &series)?;
        if !args.json && !args.csv {
            eprintln!("kvbench: wrote {}", path.display());
        }
    }
    Ok(all_ok)
}

/// Split `HOST:PORT` (the host may be an `[ipv6]` literal).
fn split_host_port(s: &str) -> Result<(String, u16)> {
    let (h, p) = s
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("--compare expects HOST:PORT, got `{s}`"))?;
    let port = p
        .parse()
        .with_context(|| format!("bad port in --compare `{s}`"))?;
    Ok((h.trim_start_matches('[').trim_end_matches(']').to_string(), port))
}

/// Per-server samples of one test over all rounds.
#[derive(Default)]
struct Samples {
    rps: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    hist: Option<Histogram<u64>>,
}

impl Samples {
    fn push(&mut self, o: &Outcome) -> Result<()> {
        let l = report::Lat::of(&o.hist);
        self.rps.push(o.rps());
        self.p50.push(l.p50);
        self.p99.push(l.p99);
        match &mut self.hist {
            Some(h) => h.add(&o.hist).map_err(|e| anyhow!("histogram merge: {e}"))?,
            None => self.hist = Some(o.hist.clone()),
        }
        Ok(())
    }
}

/// `--compare`: rounds alternate A B A B … per test so that slow drift of a
/// noisy machine hits both servers equally; medians damp outliers.
fn compare(args: &Args, tests: &[Test], other: &str) -> Result<bool> {
    let (bhost, bport) = split_host_port(other)?;
    let a = format!("{}:{}", args.host, args.port);
    let b = format!("{bhost}:{bport}");
    let servers = [
        (args.host.clone(), args.port, a.clone()),
        (bhost, bport, b.clone()),
    ];
    let mut all_ok = true;
    let mut rows = Vec::new();
    for &test in tests {
        let mut samples = [Samples::default(), Samples::default()];
        for _ in 0..args.rounds {
            for (s, (host, port, name)) in servers.iter().enumerate() {
                let o = run_once(args, test, host, *port)?;
                explain_failures(test.label(), name, &o);
                all_ok &= o.failed() == 0;
                samples[s].push(&o)?;
            }
        }
        rows.push((test, samples));
    }
    let med = |v: &Vec<f64>| report::median(v);
    if args.json {
        let tests_json: Vec<String> = rows
            .iter()
            .map(|(t, s)| {
                let side = |x: &Samples| {
                    let list: Vec<String> = x.rps.iter().map(|v| report::num(*v)).collect();
                    format!(
                        "{{\"rps_median\":{},\"p50_ms_median\":{},\"p99_ms_median\":{},\"rps_rounds\":[{}]}}",
                        report::num(med(&x.rps)),
                        report::num(med(&x.p50)),
                        report::num(med(&x.p99)),
                        list.join(",")
                    )
                };
                format!(
                    "{{\"test\":{},\"a\":{},\"b\":{},\"rps_ratio\":{},\"p50_ratio\":{},\"p99_ratio\":{}}}",
                    report::json_str(t.label()),
                    side(&s[0]),
                    side(&s[1]),
                    report::num(report::ratio(med(&s[0].rps), med(&s[1].rps))),
                    report::num(report::ratio(med(&s[0].p50), med(&s[1].p50))),
                    report::num(report::ratio(med(&s[0].p99), med(&s[1].p99))),
                )
            })
            .collect();
        println!(
            "{{\"a\":{},\"b\":{},\"rounds\":{},\"tests\":[{}]}}",
            report::json_str(&a),
            report::json_str(&b),
            args.rounds,
            tests_json.join(",")
        );
    } else if args.csv {
        println!("\"test\",\"a_rps\",\"b_rps\",\"rps_ratio\",\"a_p50_ms\",\"b_p50_ms\",\"p50_ratio\",\"a_p99_ms\",\"b_p99_ms\",\"p99_ratio\"");
        for (t, s) in &rows {
            let (ar, br) = (med(&s[0].rps), med(&s[1].rps));
            let (a5, b5) = (med(&s[0].p50), med(&s[1].p50));
            let (a9, b9) = (med(&s[0].p99), med(&s[1].p99));
            println!(
                "\"{}\",\"{ar:.2}\",\"{br:.2}\",\"{:.3}\",\"{a5:.3}\",\"{b5:.3}\",\"{:.3}\",\"{a9:.3}\",\"{b9:.3}\",\"{:.3}\"",
                t.label(),
                report::ratio(ar, br),
                report::ratio(a5, b5),
                report::ratio(a9, b9)
            );
        }
    } else {
        println!(
            "A = {a}, B = {b}; medians of {} rounds each, run A B A B ...",
            args.rounds
        );
        println!(
            "{:<16} {:>12} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "test", "A req/s", "B req/s", "rps A/B", "A p50", "B p50", "p50 A/B", "A p99", "B p99", "p99 A/B"
        );
        for (t, s) in &rows {
            let (ar, br) = (med(&s[0].rps), med(&s[1].rps));
            let (a5, b5) = (med(&s[0].p50), med(&s[1].p50));
            let (a9, b9) = (med(&s[0].p99), med(&s[1].p99));
            println!(
                "{:<16} {ar:>12.2} {br:>12.2} {:>9.3} {a5:>9.3} {b5:>9.3} {:>9.3} {a9:>9.3} {b9:>9.3} {:>9.3}",
                t.label(),
                report::ratio(ar, br),
                report::ratio(a5, b5),
                report::ratio(a9, b9)
            );
        }
        println!("(ratios > 1 mean A has more throughput / higher latency; latencies in msec)");
    }
    if let Some(path) = &args.plot {
        let mut series = Vec::new();
        for (t, s) in rows {
            let [sa, sb] = s;
            if let Some(h) = sa.hist {
                series.push((format!("{} (A)", t.label()), h));
            }
            if let Some(h) = sb.hist {
                series.push((format!("{} (B)", t.label()), h));
            }
        }
        report::plot(path, &series)?;
    }
    Ok(all_ok)
}
