//! Lambda's side of a function process, played locally for the init benchmark and the wiring
//! test: a Runtime API stand-in (the function's `AWS_LAMBDA_RUNTIME_API`), an SSM stand-in
//! answering `AmazonSSM.GetParameter` and `GetParameters` (the webhook function reads its two
//! signing secrets from Parameter Store in one call at init, the functions that call Stripe their
//! key on their first Stripe call;
//! `AWS_ENDPOINT_URL_SSM` points the SDK here), and the environment Lambda gives a
//! `provided.al2023` function.
//!
//! Both stand-ins are plain HTTP/1.1 over std threads, so they answer whatever the caller's
//! thread is doing (a benchmark loop, a test blocked waiting for an answer).

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest request head or body the stand-ins read.
const MAX_REQUEST_BYTES: usize = 1 << 20;
/// How often a wait also checks whether the process died.
const POLL: Duration = Duration::from_millis(2);

const NEXT_PATH: &str = "/2018-06-01/runtime/invocation/next";
const INVOCATION_PREFIX: &str = "/2018-06-01/runtime/invocation/";
const INIT_ERROR_PATH: &str = "/2018-06-01/runtime/init/error";

/// The account and region of every ARN the stand-ins make up.
const ARN_PREFIX: &str = "arn:aws:lambda:us-east-1:123456789012:function:";

struct HttpRequest {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// Reads one HTTP/1.1 request (a `content-length` or chunked body); `None` when the peer
/// closed the connection or sent more than [`MAX_REQUEST_BYTES`].
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
    let chunked = headers.get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        read_chunked(reader)?
    } else {
        let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        if length > MAX_REQUEST_BYTES {
            return None;
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        body
    };
    Some(HttpRequest { method, path, headers, body })
}

/// A chunked body, without trailers; `None` past [`MAX_REQUEST_BYTES`].
fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line).ok()?;
        let size_hex = size_line.trim().split(';').next()?;
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        if body.len().checked_add(size)? > MAX_REQUEST_BYTES {
            return None;
        }
        let mut chunk = vec![0; size];
        reader.read_exact(&mut chunk).ok()?;
        body.extend_from_slice(&chunk);
        let mut crlf = String::new();
        reader.read_line(&mut crlf).ok()?;
        if size == 0 {
            return Some(body);
        }
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// What a handler does after a request.
enum Then {
    Continue,
    /// Leave the request unanswered until the peer goes away (a `/next` with nothing to hand out).
    Hold,
}

/// Serves each connection of `listener` on its own thread with `handle` (keep-alive: requests
/// in turn until the peer closes). `open` counts the connections being served.
fn serve<S: Send + Sync + 'static>(
    listener: TcpListener,
    state: Arc<S>,
    open: Arc<AtomicUsize>,
    handle: fn(&S, &HttpRequest, &mut TcpStream) -> std::io::Result<Then>,
) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let state = state.clone();
            let open = open.clone();
            open.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let _served = Served(open);
                let _ = stream.set_nodelay(true);
                let Ok(mut writer) = stream.try_clone() else { return };
                let mut reader = BufReader::new(stream);
                while let Some(req) = read_request(&mut reader) {
                    match handle(&state, &req, &mut writer) {
                        Ok(Then::Continue) => {}
                        Ok(Then::Hold) => {
                            // The process is killed by its owner; then this read ends.
                            let mut sink = Vec::new();
                            let _ = reader.read_to_end(&mut sink);
                            return;
                        }
                        Err(_) => return,
                    }
                }
            });
        }
    });
}

/// Counts a connection as served until its thread ends.
struct Served(Arc<AtomicUsize>);

impl Drop for Served {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How long [`RuntimeApi::reset`] waits for a killed process's connections to be drained.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

// ---- Runtime API -----------------------------------------------------------------------------

/// One event to hand out on `/next`.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub payload: Vec<u8>,
    /// The function's timeout: `Lambda-Runtime-Deadline-Ms` is this far after the handing out.
    pub timeout: Duration,
    /// Its name in `Lambda-Runtime-Invoked-Function-Arn`.
    pub function_name: String,
}

/// How the function answered an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `POST /invocation/{id}/response`: the handler's result.
    Response(Vec<u8>),
    /// `POST /invocation/{id}/error`: its error document.
    Error(Vec<u8>),
}

/// One invocation's answer, with when it was handed out and answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub request_id: String,
    pub outcome: Outcome,
    pub handed_out_at: Instant,
    pub answered_at: Instant,
}

/// What the Runtime API stand-in saw since it started or was last [`RuntimeApi::reset`].
#[derive(Debug, Default)]
pub struct Seen {
    /// The first `GET /next`: the end of the process's init.
    pub first_next_at: Option<Instant>,
    /// The body of `POST /init/error`.
    pub init_error: Option<String>,
    /// Answers in arrival order.
    pub answers: Vec<Answer>,
    /// Requests it refused (an unknown path, an answer to an id it never handed out).
    pub refused: Vec<String>,
}

#[derive(Default)]
struct RuntimeState {
    seen: Mutex<Seen>,
    queue: Mutex<VecDeque<Invocation>>,
    /// The request ids handed out and when, so an answer to another one is refused as Lambda does.
    handed_out: Mutex<Vec<(String, Instant)>>,
    changed: Condvar,
}

impl RuntimeState {
    fn update(&self, f: impl FnOnce(&mut Seen)) {
        f(&mut self.seen.lock().unwrap());
        self.changed.notify_all();
    }
}

/// Why a wait on a process ended without what it waited for.
#[derive(Debug)]
pub enum WaitError {
    /// The process called `POST /init/error` with this body.
    InitError(String),
    Exited(ExitStatus),
    TimedOut(Duration),
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitError::InitError(body) => write!(f, "init error: {body}"),
            WaitError::Exited(status) => write!(f, "exited ({status})"),
            WaitError::TimedOut(after) => write!(f, "nothing within {} ms", after.as_millis()),
        }
    }
}

/// The Runtime API stand-in: `GET /next` hands out the queued invocations in order, then holds
/// (as Lambda does while no event comes); answers and init errors are recorded in [`Seen`].
pub struct RuntimeApi {
    address: String,
    state: Arc<RuntimeState>,
    /// Connections being served.
    open: Arc<AtomicUsize>,
}

impl RuntimeApi {
    /// Listens on a free port of 127.0.0.1.
    pub fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?.to_string();
        let state = Arc::new(RuntimeState::default());
        let open = Arc::new(AtomicUsize::new(0));
        serve(listener, state.clone(), open.clone(), runtime_api_answer);
        Ok(Self { address, state, open })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Forgets what was seen and queued (before the next process starts), once every connection
    /// of the processes before (killed by now) is drained: a `GET /next` a process sent just
    /// before it was killed is still read after its death, and must not take an event queued
    /// for the next process.
    pub fn reset(&self) {
        let started = Instant::now();
        while self.open.load(Ordering::SeqCst) > 0 {
            assert!(started.elapsed() < DRAIN_TIMEOUT, "a Runtime API connection outlived its process");
            std::thread::sleep(Duration::from_millis(1));
        }
        self.state.queue.lock().unwrap().clear();
        self.state.handed_out.lock().unwrap().clear();
        *self.state.seen.lock().unwrap() = Seen::default();
    }

    /// Queues an event for the next `GET /next`.
    pub fn enqueue(&self, invocation: Invocation) {
        self.state.queue.lock().unwrap().push_back(invocation);
    }

    /// Waits until `check` finds what it looks for in what was seen, the process calls
    /// `/init/error` or exits, or `timeout` passes.
    pub fn wait_for<R>(
        &self,
        process: &mut Child,
        timeout: Duration,
        mut check: impl FnMut(&Seen) -> Option<R>,
    ) -> Result<R, WaitError> {
        let started = Instant::now();
        loop {
            let seen = self.state.seen.lock().unwrap();
            let (seen, _) = self.state.changed.wait_timeout(seen, POLL).unwrap();
            if let Some(found) = check(&seen) {
                return Ok(found);
            }
            if let Some(body) = &seen.init_error {
                return Err(WaitError::InitError(body.clone()));
            }
            drop(seen);
            if let Ok(Some(status)) = process.try_wait() {
                return Err(WaitError::Exited(status));
            }
            if started.elapsed() > timeout {
                return Err(WaitError::TimedOut(timeout));
            }
        }
    }

    /// What was seen so far (for a failure's message).
    pub fn seen<R>(&self, read: impl FnOnce(&Seen) -> R) -> R {
        read(&self.state.seen.lock().unwrap())
    }
}

fn epoch_ms(at: SystemTime) -> u128 {
    at.duration_since(UNIX_EPOCH).expect("the clock is after 1970").as_millis()
}

fn runtime_api_answer(state: &RuntimeState, req: &HttpRequest, stream: &mut TcpStream) -> std::io::Result<Then> {
    let accepted = |stream: &mut TcpStream| {
        respond(stream, "202 Accepted", "application/json", &[], br#"{"status":"OK"}"#).map(|()| Then::Continue)
    };
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", NEXT_PATH) => {
            let at = Instant::now();
            state.update(|s| {
                s.first_next_at.get_or_insert(at);
            });
            let Some(invocation) = state.queue.lock().unwrap().pop_front() else { return Ok(Then::Hold) };
            state.handed_out.lock().unwrap().push((invocation.request_id.clone(), Instant::now()));
            let deadline_ms = epoch_ms(SystemTime::now() + invocation.timeout);
            let headers = [
                ("lambda-runtime-aws-request-id", invocation.request_id.clone()),
                ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
                ("lambda-runtime-invoked-function-arn", format!("{ARN_PREFIX}{}", invocation.function_name)),
                (
                    "lambda-runtime-trace-id",
                    format!("Root=1-{:08x}-{:024x};Sampled=0", deadline_ms / 1000, fastrand::u64(..)),
                ),
            ];
            respond(stream, "200 OK", "application/json", &headers, &invocation.payload)?;
            Ok(Then::Continue)
        }
        ("POST", INIT_ERROR_PATH) => {
            let body = String::from_utf8_lossy(&req.body).into_owned();
            state.update(|s| s.init_error = Some(body));
            accepted(stream)
        }
        ("POST", path) if path.starts_with(INVOCATION_PREFIX) => {
            let rest = &path[INVOCATION_PREFIX.len()..];
            let answer = match rest.rsplit_once('/') {
                Some((id, "response")) => Some((id, Outcome::Response(req.body.clone()))),
                Some((id, "error")) => Some((id, Outcome::Error(req.body.clone()))),
                _ => None,
            };
            let answered_at = Instant::now();
            let handed_out_at = answer
                .as_ref()
                .and_then(|(id, _)| state.handed_out.lock().unwrap().iter().find(|(h, _)| h == id).map(|(_, at)| *at));
            match (answer, handed_out_at) {
                (Some((id, outcome)), Some(handed_out_at)) => {
                    let answer = Answer { request_id: id.to_owned(), outcome, handed_out_at, answered_at };
                    state.update(|s| s.answers.push(answer));
                    accepted(stream)
                }
                _ => {
                    state.update(|s| s.refused.push(format!("POST {path}")));
                    let body = br#"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#;
                    respond(stream, "400 Bad Request", "application/json", &[], body).map(|()| Then::Continue)
                }
            }
        }
        (method, path) => {
            state.update(|s| s.refused.push(format!("{method} {path}")));
            respond(stream, "404 Not Found", "application/json", &[], br#"{"errorType":"NotFound"}"#)
                .map(|()| Then::Continue)
        }
    }
}

// ---- SSM -------------------------------------------------------------------------------------

struct SsmState {
    parameters: BTreeMap<String, String>,
    /// When each `GetParameter` or `GetParameters` arrived.
    calls: Mutex<Vec<Instant>>,
}

/// The SSM stand-in: `GetParameter` and `GetParameters` answer its parameters (as decrypted
/// SecureStrings); an unknown name is `ParameterNotFound` for the first, listed in
/// `InvalidParameters` by the second; every other action is refused.
pub struct Ssm {
    url: String,
    state: Arc<SsmState>,
}

impl Ssm {
    /// Listens on a free port of 127.0.0.1 and answers `parameters` (name -> value).
    pub fn start(parameters: BTreeMap<String, String>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(SsmState { parameters, calls: Mutex::new(Vec::new()) });
        serve(listener, state.clone(), Arc::new(AtomicUsize::new(0)), ssm_answer);
        Ok(Self { url, state })
    }

    /// The value of `AWS_ENDPOINT_URL_SSM`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `GetParameter` and `GetParameters` calls so far.
    pub fn calls(&self) -> u32 {
        u32::try_from(self.state.calls.lock().unwrap().len()).expect("fewer than 2^32 calls")
    }

    /// The `GetParameter` and `GetParameters` calls that arrived before `at`.
    pub fn calls_before(&self, at: Instant) -> u32 {
        let before = self.state.calls.lock().unwrap().iter().filter(|c| **c < at).count();
        u32::try_from(before).expect("fewer than 2^32 calls")
    }

    pub fn reset_calls(&self) {
        self.state.calls.lock().unwrap().clear();
    }
}

fn ssm_answer(state: &SsmState, req: &HttpRequest, stream: &mut TcpStream) -> std::io::Result<Then> {
    const JSON: &str = "application/x-amz-json-1.1";
    let target = req.headers.get("x-amz-target").map(String::as_str);
    let one = match target {
        Some("AmazonSSM.GetParameter") if req.method == "POST" => true,
        Some("AmazonSSM.GetParameters") if req.method == "POST" => false,
        _ => {
            let body = br#"{"__type":"InvalidAction","message":"only GetParameter and GetParameters here"}"#;
            return respond(stream, "400 Bad Request", JSON, &[], body).map(|()| Then::Continue);
        }
    };
    state.calls.lock().unwrap().push(Instant::now());
    let asked: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    let parameter = |name: &str, value: &str| {
        serde_json::json!({
            "Name": name, "Type": "SecureString", "Value": value, "Version": 1, "DataType": "text",
            "ARN": format!("arn:aws:ssm:us-east-1:123456789012:parameter{name}"),
        })
    };
    let body = if one {
        let name = asked["Name"].as_str().unwrap_or_default();
        let Some(value) = state.parameters.get(name) else {
            let body = br#"{"__type":"ParameterNotFound","message":"no such parameter"}"#;
            return respond(stream, "400 Bad Request", JSON, &[], body).map(|()| Then::Continue);
        };
        serde_json::json!({ "Parameter": parameter(name, value) })
    } else {
        let names: Vec<&str> = asked["Names"].as_array().into_iter().flatten().filter_map(|n| n.as_str()).collect();
        let (known, unknown): (Vec<&str>, Vec<&str>) = names.iter().partition(|n| state.parameters.contains_key(**n));
        let found: Vec<_> = known.iter().map(|n| parameter(n, &state.parameters[*n])).collect();
        serde_json::json!({ "Parameters": found, "InvalidParameters": unknown })
    };
    respond(stream, "200 OK", JSON, &[], body.to_string().as_bytes()).map(|()| Then::Continue)
}

// ---- the process -----------------------------------------------------------------------------

/// What Lambda sets for a `provided.al2023` function named `function_name`, with dummy
/// credentials, SSM at `ssm_url` and an empty `home` (no `~/.aws` files of this machine). The
/// function's own variables (template.yaml's) come on top.
pub fn lambda_environment(function_name: &str, runtime_api: &str, ssm_url: &str, home: &Path) -> Vec<(String, String)> {
    let home = home.display().to_string();
    let pairs = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", function_name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", &format!("/aws/lambda/{function_name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/22/[$LATEST]0123456789abcdef"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIALOCALLAMBDADUMMY"),
        ("AWS_SECRET_ACCESS_KEY", "local-lambda-dummy-secret"),
        ("AWS_SESSION_TOKEN", "local-lambda-dummy-token"),
        // The credentials above are the only ones: never fall through to instance metadata.
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL_SSM", ssm_url),
        ("LAMBDA_TASK_ROOT", "/var/task"),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
        ("_HANDLER", "bootstrap"),
        ("LANG", "en_US.UTF-8"),
        ("TZ", ":UTC"),
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("HOME", &home),
    ];
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A started function process, killed and reaped when dropped (a failed assertion included):
/// held in `/next`, it never ends by itself.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
