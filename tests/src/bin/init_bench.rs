//! Init benchmark: how long a Lambda process takes from its start until it is ready for its first
//! event, i.e. until it first calls `GET /2018-06-01/runtime/invocation/next` on
//! `AWS_LAMBDA_RUNTIME_API`.
//!
//! It plays Lambda's side locally with `integration_tests::lambda`: a Runtime API stand-in (it
//! notes when `/next` is first hit and, with no event queued, holds that request; `POST
//! .../init/error` is a failed init) and an SSM stand-in answering the Stripe parameters. Each
//! program gets the environment Lambda and template.yaml give a function, with dummy
//! credentials, and nothing else.
//!
//!   init-bench [--runs N] [--warmup N] [--logs DIR] LABEL=PROGRAM [ARGS...]...
//!
//! Each `LABEL=PROGRAM ARGS` is one word (arguments separated by spaces). Runs go round-robin over
//! the programs, so a noisy moment of the machine hits them alike; the warm-up runs (page cache)
//! are not counted. It prints a Markdown table (p50/p95/min/max) and, when the labels
//! `empty-lambda` and `python` are among them, each program's ratio to those two. It asserts
//! nothing about timing; a program that fails its init is reported, and makes the exit status 1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::lambda::{Process, RuntimeApi, Ssm, lambda_environment};

/// A program that has not called `/next` by then has failed.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_RUNS: usize = 10_000;

const SECRET_KEY_PARAM: &str = "/billing/stripe/secret-key";
const WEBHOOK_SECRETS_PARAM: &str = "/billing/stripe/webhook-secrets";
const PLATFORM_WEBHOOK_SECRETS_PARAM: &str = "/billing/stripe/platform-webhook-secrets";

struct Program {
    label: String,
    command: Vec<String>,
    init_ms: Vec<Duration>,
    ssm_calls: u32,
    failure: Option<String>,
}

/// What Lambda sets for a `provided.al2023` function, plus template.yaml's variables.
fn environment(label: &str, runtime_api: &str, ssm_url: &str, home: &Path) -> Vec<(String, String)> {
    let mut env = lambda_environment(label, runtime_api, ssm_url, home);
    // template.yaml's Globals and the functions' own variables.
    let pairs = [
        ("TABLE_NAME", "billing"),
        ("RUST_LOG", "info"),
        ("STRIPE_LIVEMODE", "false"),
        ("PLATFORM_METERS", "voice_minutes=0.07"),
        ("STRIPE_SECRET_KEY_PARAM", SECRET_KEY_PARAM),
        ("STRIPE_WEBHOOK_SECRETS_PARAM", WEBHOOK_SECRETS_PARAM),
        ("STRIPE_PLATFORM_WEBHOOK_SECRETS_PARAM", PLATFORM_WEBHOOK_SECRETS_PARAM),
    ];
    env.extend(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

/// One start of `program`: the time from spawning it to its first `/next`.
fn run_once(
    program: &Program,
    runtime: &RuntimeApi,
    ssm: &Ssm,
    env: &[(String, String)],
    log: &std::fs::File,
) -> Result<(Duration, u32), String> {
    runtime.reset();
    ssm.reset_calls();
    let out = log.try_clone().map_err(|e| e.to_string())?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let child = Command::new(&program.command[0])
        .args(&program.command[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.command[0]))?;
    // Dropped at the end of this run: it is held in /next and never finishes by itself.
    let mut process = Process(child);
    let ready = runtime.wait_for(&mut process.0, INIT_TIMEOUT, |seen| seen.first_next_at);
    match ready {
        Ok(at) => Ok((at.duration_since(started), ssm.calls())),
        Err(e) => Err(format!("{e} before calling /next")),
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    assert!(!sorted.is_empty() && p <= 100);
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Milliseconds with two decimals, from integers.
fn ms(d: Duration) -> String {
    let us = d.as_micros();
    format!("{}.{:02}", us / 1000, (us % 1000) / 10)
}

/// `a / b` with one decimal, from integers.
fn ratio(a: Duration, b: Duration) -> String {
    let tenths = a.as_micros() * 10 / b.as_micros().max(1);
    format!("{}.{}x", tenths / 10, tenths % 10)
}

fn usage() -> ! {
    eprintln!("usage: init-bench [--runs N] [--warmup N] [--logs DIR] LABEL=PROGRAM [ARGS...]...");
    std::process::exit(2)
}

fn main() {
    let mut runs = 20;
    let mut warmup = 1;
    let mut logs = std::env::temp_dir().join("init-bench");
    let mut programs = Vec::new();
    let mut args = std::env::args().skip(1);
    let count = |v: Option<String>, least: usize| -> usize {
        v.and_then(|v| v.parse().ok()).filter(|n| (least..=MAX_RUNS).contains(n)).unwrap_or_else(|| usage())
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = count(args.next(), 1),
            "--warmup" => warmup = count(args.next(), 0),
            "--logs" => logs = PathBuf::from(args.next().unwrap_or_else(|| usage())),
            _ => {
                let Some((label, command)) = a.split_once('=') else { usage() };
                let command: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
                if label.is_empty() || command.is_empty() {
                    usage();
                }
                programs.push(Program {
                    label: label.to_owned(),
                    command,
                    init_ms: vec![],
                    ssm_calls: 0,
                    failure: None,
                });
            }
        }
    }
    if programs.is_empty() {
        usage();
    }

    let runtime = RuntimeApi::start().expect("start the Runtime API stand-in");
    let parameters = BTreeMap::from([
        (SECRET_KEY_PARAM.to_owned(), "sk_test_init_bench".to_owned()),
        (WEBHOOK_SECRETS_PARAM.to_owned(), "whsec_init_bench".to_owned()),
        (PLATFORM_WEBHOOK_SECRETS_PARAM.to_owned(), "whsec_init_bench_platform".to_owned()),
    ]);
    let ssm = Ssm::start(parameters).expect("start the SSM stand-in");
    let home = logs.join("home");
    std::fs::create_dir_all(&home).expect("create the logs folder");

    let mut files = Vec::new();
    for p in &programs {
        let path = logs.join(format!("{}.log", p.label));
        files.push(std::fs::File::create(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display())));
    }
    for round in 0..warmup + runs {
        for (p, log) in programs.iter_mut().zip(&files) {
            if p.failure.is_some() {
                continue;
            }
            let env = environment(&p.label, runtime.address(), ssm.url(), &home);
            match run_once(p, &runtime, &ssm, &env, log) {
                Ok((init, ssm_calls)) if round >= warmup => {
                    p.init_ms.push(init);
                    p.ssm_calls = p.ssm_calls.max(ssm_calls);
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("init-bench: {}: {e} (its output: {}/{}.log)", p.label, logs.display(), p.label);
                    p.failure = Some(e);
                }
            }
        }
    }

    let p50_of = |label: &str| {
        programs.iter().find(|p| p.label == label && !p.init_ms.is_empty()).map(|p| {
            let mut v = p.init_ms.clone();
            v.sort();
            percentile(&v, 50)
        })
    };
    let (empty, python) = (p50_of("empty-lambda"), p50_of("python"));
    println!(
        "| program | runs | p50 ms | p95 ms | min ms | max ms | GetParameter calls | p50 / empty-lambda (goal <= 2x) | python / p50 (goal >= 10x) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut failed = false;
    for p in &programs {
        if let Some(e) = &p.failure {
            failed = true;
            println!("| {} | failed: {} | | | | | | | |", p.label, e.replace('|', "/").replace('\n', " "));
            continue;
        }
        let mut v = p.init_ms.clone();
        v.sort();
        let p50 = percentile(&v, 50);
        let vs_empty = match empty {
            Some(e) if p.label != "empty-lambda" && p.label != "python" => {
                let verdict = if p50 <= e * 2 { "met" } else { "**over**" };
                format!("{} ({verdict})", ratio(p50, e))
            }
            _ => String::new(),
        };
        let vs_python = match python {
            Some(py) if p.label != "python" => {
                let verdict = if py >= p50 * 10 { "met" } else { "**not met**" };
                format!("{} ({verdict})", ratio(py, p50))
            }
            _ => String::new(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.label,
            v.len(),
            ms(p50),
            ms(percentile(&v, 95)),
            ms(v[0]),
            ms(v[v.len() - 1]),
            p.ssm_calls,
            vs_empty,
            vs_python
        );
    }
    std::process::exit(i32::from(failed));
}
