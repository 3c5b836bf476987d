//! Init benchmark: how long a Lambda process takes from its start until it is ready for its first
//! event, i.e. until it first calls `GET /2018-06-01/runtime/invocation/next` on
//! `AWS_LAMBDA_RUNTIME_API`.
//!
//! It plays Lambda's side locally: a Runtime API stand-in (it notes when `/next` is first hit and
//! holds that request; `POST .../init/error` is recorded as a failed init) and an SSM stand-in
//! answering `AmazonSSM.GetParameter` (the functions that take payments read their Stripe secrets
//! from Parameter Store at init; `AWS_ENDPOINT_URL_SSM` points the SDK here). Each program gets the
//! environment Lambda and template.yaml give a function, with dummy credentials, and nothing else.
//!
//!   init-bench [--runs N] [--warmup N] [--logs DIR] LABEL=PROGRAM [ARGS...]...
//!
//! Each `LABEL=PROGRAM ARGS` is one word (arguments separated by spaces). Runs go round-robin over
//! the programs, so a noisy moment of the machine hits them alike; the warm-up runs (page cache)
//! are not counted. It prints a Markdown table (p50/p95/min/max) and, when the labels
//! `empty-lambda` and `python` are among them, each program's ratio to those two. It asserts
//! nothing about timing; a program that fails its init is reported, and makes the exit status 1.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A program that has not called `/next` by then has failed.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the waiting loop also checks whether the child died.
const POLL: Duration = Duration::from_millis(2);
const MAX_RUNS: usize = 10_000;
/// The longest request head or body the stand-ins read.
const MAX_REQUEST_BYTES: usize = 1 << 20;

const SECRET_KEY_PARAM: &str = "/billing/stripe/secret-key";
const WEBHOOK_SECRETS_PARAM: &str = "/billing/stripe/webhook-secrets";
const PLATFORM_WEBHOOK_SECRETS_PARAM: &str = "/billing/stripe/platform-webhook-secrets";

/// What the stand-ins saw during the current run.
#[derive(Debug, Default)]
struct Seen {
    next_at: Option<Instant>,
    init_error: Option<String>,
    ssm_calls: u32,
}

#[derive(Default)]
struct State {
    seen: Mutex<Seen>,
    changed: Condvar,
}

impl State {
    fn update(&self, f: impl FnOnce(&mut Seen)) {
        f(&mut self.seen.lock().unwrap());
        self.changed.notify_all();
    }
}

struct HttpRequest {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// Reads one HTTP/1.1 request; `None` when the peer closed the connection.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<HttpRequest> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = BTreeMap::new();
    let mut head_bytes = line.len();
    loop {
        let mut h = String::new();
        let read = reader.read_line(&mut h).ok()?;
        head_bytes += read;
        if read == 0 || head_bytes > MAX_REQUEST_BYTES {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    if length > MAX_REQUEST_BYTES {
        return None;
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(HttpRequest { method, path, headers, body })
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// Serves each connection of `listener` on its own thread with `handle` (keep-alive: requests
/// in turn until the peer closes). `handle` returns false to stop answering (a held `/next`).
fn serve(listener: TcpListener, state: Arc<State>, handle: fn(&State, &HttpRequest, &mut TcpStream) -> bool) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let state = state.clone();
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let Ok(mut writer) = stream.try_clone() else { return };
                let mut reader = BufReader::new(stream);
                while let Some(req) = read_request(&mut reader) {
                    if !handle(&state, &req, &mut writer) {
                        // Held: wait for the peer to go away (the run kills it).
                        let mut sink = Vec::new();
                        let _ = reader.read_to_end(&mut sink);
                        return;
                    }
                }
            });
        }
    });
}

fn runtime_api_answer(state: &State, req: &HttpRequest, stream: &mut TcpStream) -> bool {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/2018-06-01/runtime/invocation/next") => {
            let at = Instant::now();
            state.update(|s| {
                s.next_at.get_or_insert(at);
            });
            false
        }
        ("POST", "/2018-06-01/runtime/init/error") => {
            let body = String::from_utf8_lossy(&req.body).into_owned();
            state.update(|s| s.init_error = Some(body));
            respond(stream, "202 Accepted", "application/json", r#"{"status":"OK"}"#).is_ok()
        }
        _ => respond(stream, "404 Not Found", "application/json", r#"{"errorType":"NotFound"}"#).is_ok(),
    }
}

fn ssm_answer(state: &State, req: &HttpRequest, stream: &mut TcpStream) -> bool {
    let target = req.headers.get("x-amz-target").map(String::as_str);
    if req.method != "POST" || target != Some("AmazonSSM.GetParameter") {
        let body = r#"{"__type":"InvalidAction","message":"only GetParameter here"}"#;
        return respond(stream, "400 Bad Request", "application/x-amz-json-1.1", body).is_ok();
    }
    state.update(|s| s.ssm_calls += 1);
    let asked: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    let name = asked["Name"].as_str().unwrap_or_default().to_owned();
    let value = match name.as_str() {
        SECRET_KEY_PARAM => "sk_test_init_bench",
        WEBHOOK_SECRETS_PARAM => "whsec_init_bench",
        PLATFORM_WEBHOOK_SECRETS_PARAM => "whsec_init_bench_platform",
        _ => {
            let body = r#"{"__type":"ParameterNotFound","message":"no such parameter"}"#;
            return respond(stream, "400 Bad Request", "application/x-amz-json-1.1", body).is_ok();
        }
    };
    let body = serde_json::json!({ "Parameter": {
        "Name": name, "Type": "SecureString", "Value": value, "Version": 1, "DataType": "text",
        "ARN": format!("arn:aws:ssm:us-east-1:123456789012:parameter{name}"),
    }});
    respond(stream, "200 OK", "application/x-amz-json-1.1", &body.to_string()).is_ok()
}

struct Program {
    label: String,
    command: Vec<String>,
    init_ms: Vec<Duration>,
    ssm_calls: u32,
    failure: Option<String>,
}

/// What Lambda sets for a `provided.al2023` function, plus template.yaml's variables.
fn environment(label: &str, runtime_api: &str, ssm_url: &str, home: &str) -> Vec<(String, String)> {
    let pairs = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", label),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/init-bench"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/22/[$LATEST]0123456789abcdef"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIAINITBENCHDUMMY00"),
        ("AWS_SECRET_ACCESS_KEY", "init-bench-dummy-secret"),
        ("AWS_SESSION_TOKEN", "init-bench-dummy-token"),
        // The credentials above are the only ones: never fall through to instance metadata.
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL_SSM", ssm_url),
        ("LAMBDA_TASK_ROOT", "/var/task"),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
        ("_HANDLER", "bootstrap"),
        ("LANG", "en_US.UTF-8"),
        ("TZ", ":UTC"),
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        // An empty home: no ~/.aws files of this machine.
        ("HOME", home),
        // template.yaml's Globals and the functions' own variables.
        ("TABLE_NAME", "billing"),
        ("RUST_LOG", "info"),
        ("STRIPE_LIVEMODE", "false"),
        ("PLATFORM_METERS", "voice_minutes=0.07"),
        ("STRIPE_SECRET_KEY_PARAM", SECRET_KEY_PARAM),
        ("STRIPE_WEBHOOK_SECRETS_PARAM", WEBHOOK_SECRETS_PARAM),
        ("STRIPE_PLATFORM_WEBHOOK_SECRETS_PARAM", PLATFORM_WEBHOOK_SECRETS_PARAM),
    ];
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// One start of `program`: the time from spawning it to its first `/next`.
fn run_once(
    program: &Program,
    state: &State,
    env: &[(String, String)],
    log: &std::fs::File,
) -> Result<(Duration, u32), String> {
    *state.seen.lock().unwrap() = Seen::default();
    let out = log.try_clone().map_err(|e| e.to_string())?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut child: Child = Command::new(&program.command[0])
        .args(&program.command[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.command[0]))?;
    let outcome = loop {
        let seen = state.seen.lock().unwrap();
        let (seen, _) = state.changed.wait_timeout(seen, POLL).unwrap();
        if let Some(at) = seen.next_at {
            break Ok((at.duration_since(started), seen.ssm_calls));
        }
        if let Some(e) = &seen.init_error {
            break Err(format!("init error: {e}"));
        }
        drop(seen);
        if let Ok(Some(status)) = child.try_wait() {
            break Err(format!("exited ({status}) before calling /next"));
        }
        if started.elapsed() > INIT_TIMEOUT {
            break Err(format!("no /next within {} s", INIT_TIMEOUT.as_secs()));
        }
    };
    // Our own child, by its handle: it is held in /next and never finishes by itself.
    let _ = child.kill();
    let _ = child.wait();
    outcome
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

    let state = Arc::new(State::default());
    let runtime = TcpListener::bind("127.0.0.1:0").expect("bind the Runtime API stand-in");
    let ssm_listener = TcpListener::bind("127.0.0.1:0").expect("bind the SSM stand-in");
    let runtime_api = runtime.local_addr().unwrap().to_string();
    let ssm_url = format!("http://{}", ssm_listener.local_addr().unwrap());
    serve(runtime, state.clone(), runtime_api_answer);
    serve(ssm_listener, state.clone(), ssm_answer);
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
            let env = environment(&p.label, &runtime_api, &ssm_url, &home.display().to_string());
            match run_once(p, &state, &env, log) {
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
