//! The top-up paid in a real browser: headless Chromium, driven by chromedriver over the W3C
//! WebDriver protocol, opens the checkout URL of the local runner, clicks "Pay now", and the
//! points arrive. `stack.rs` posts the pay page's form itself; this catches what only a browser
//! does (following the redirect to the partner's success URL, the page as rendered).
//!
//! Chromium and chromedriver come from Debian (`chromium`, `chromium-driver`; `.ci/run` installs
//! them). Where either is missing the test says so on stderr and passes, so a laptop without a
//! browser still runs the rest of the suite; once both are there, every failure is loud.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::stack::Stack;

/// The key a W3C element reference is stored under (fixed by the WebDriver spec).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long one WebDriver command may take. Starting a browser on a busy 2-core CI machine takes
/// a few seconds; anything near this means something hangs.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long chromedriver may take to say it is ready, and the browser to reach the success URL.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The executable named by the environment variable `var`, else `default`; `Err` with the path
/// looked at when there is no file there.
fn tool(var: &str, default: &str) -> Result<PathBuf, PathBuf> {
    let path = std::env::var_os(var).filter(|v| !v.is_empty()).map_or_else(|| PathBuf::from(default), PathBuf::from);
    if path.is_file() { Ok(path) } else { Err(path) }
}

/// A port nobody listens on right now (the OS picks it; chromedriver binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// chromedriver as a child process, with a scratch directory for its log and the browser's
/// profile. Dropping it kills the process and removes the directory, also when the test panics.
struct Chromedriver {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Chromedriver {
    fn start(path: &Path) -> Chromedriver {
        let dir = std::env::temp_dir().join(format!("browser-test-{}-{:016x}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("chromedriver.log")).unwrap();
        let port = free_port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));
        Chromedriver { child, dir, url: format!("http://127.0.0.1:{port}") }
    }

    /// What chromedriver (and the browser, through it) wrote, for failure messages.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("chromedriver.log")).unwrap_or_default()
    }

    /// Polls `GET /status` until chromedriver says it is ready; fails with its log if it exits or
    /// takes too long.
    async fn wait_ready(&mut self, wd: &WebDriver) {
        let started = Instant::now();
        let mut last = String::from("no answer yet");
        while started.elapsed() < READY_TIMEOUT {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("chromedriver exited with {status} before it was ready; its log:\n{}", self.log());
            }
            match wd.send(Method::GET, "/status", None).await {
                Ok((200, body)) if body["value"]["ready"] == json!(true) => return,
                Ok((status, body)) => last = format!("{status} {body}"),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver was not ready within {READY_TIMEOUT:?} (last: {last}); its log:\n{}", self.log());
    }
}

/// A WebDriver client: JSON over HTTP to chromedriver.
#[derive(Clone)]
struct WebDriver {
    url: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl WebDriver {
    fn new(url: &str) -> WebDriver {
        WebDriver { url: url.to_owned(), client: Client::builder(TokioExecutor::new()).build_http() }
    }

    /// One command; the status and the JSON answer, or why there was none.
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Result<(u16, Value), String> {
        let mut req = Request::builder().method(method).uri(format!("{}{path}", self.url));
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json; charset=utf-8");
                b.to_string()
            }
            None => String::new(),
        };
        let exchange = async {
            let response = self
                .client
                .request(req.body(Full::new(Bytes::from(body))).unwrap())
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok((status, serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))))
        };
        tokio::time::timeout(COMMAND_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {COMMAND_TIMEOUT:?}")))
    }

    /// One command that must succeed; its `value`.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let what = format!("{method} {path}");
        match self.send(method, path, body).await {
            Ok((200, mut answer)) => answer["value"].take(),
            Ok((status, answer)) => panic!("WebDriver {what} answered {status}: {answer}"),
            Err(e) => panic!("WebDriver {what} failed: {e}"),
        }
    }

    async fn new_session(&self, chromium: &Path, profile: &Path) -> String {
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            // Bounds navigation and the click's page load; the default is five minutes.
            "timeouts": { "pageLoad": 20_000 },
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    // CI runs as root, where Chromium's sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    // Containers often have a tiny /dev/shm.
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let value = self.call(Method::POST, "/session", Some(capabilities)).await;
        value["sessionId"].as_str().unwrap_or_else(|| panic!("no sessionId in the new session: {value}")).to_owned()
    }
}

/// A browser session's commands.
#[derive(Clone)]
struct Session {
    wd: WebDriver,
    id: String,
}

impl Session {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        self.wd.call(method, &format!("/session/{}{path}", self.id), body).await
    }

    async fn find(&self, css: &str) -> String {
        let found = self.call(Method::POST, "/element", Some(json!({ "using": "css selector", "value": css }))).await;
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element reference for {css}: {found}")).to_owned()
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        let text = self.call(Method::GET, &format!("/element/{element}/text"), None).await;
        text.as_str().unwrap_or_else(|| panic!("the text of {css} is not a string: {text}")).to_owned()
    }

    async fn current_url(&self) -> String {
        let url = self.call(Method::GET, "/url", None).await;
        url.as_str().unwrap_or_else(|| panic!("the current URL is not a string: {url}")).to_owned()
    }

    /// Ends the session, which closes the browser; failures only noted, as this also runs after
    /// a failed step whose panic is the news.
    async fn delete(&self) {
        match self.wd.send(Method::DELETE, &format!("/session/{}", self.id), None).await {
            Ok((200, _)) => {}
            Ok((status, answer)) => eprintln!("deleting the WebDriver session answered {status}: {answer}"),
            Err(e) => eprintln!("deleting the WebDriver session failed: {e}"),
        }
    }
}

/// The path of an absolute URL, without query or fragment: `http://h:1/a/b?c` is `/a/b`.
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or_default()
}

/// What the customer does: open the checkout URL, see the amount, "Pay now", and land on the
/// partner's success URL.
async fn pay_in_browser(session: Session, checkout_url: String) {
    session.call(Method::POST, "/url", Some(json!({ "url": checkout_url }))).await;
    let title = session.call(Method::GET, "/title", None).await;
    assert_eq!(title, json!("Pay 10.00 USD"), "the pay page's title at {}", session.current_url().await);
    assert_eq!(session.text("#amount").await, "10.00 USD");
    let pay = session.find("#pay").await;
    assert_eq!(session.call(Method::GET, &format!("/element/{pay}/text"), None).await, json!("Pay now"));
    session.call(Method::POST, &format!("/element/{pay}/click"), Some(json!({}))).await;
    // The click submits the form; the fake answers 303 to the success URL. Whatever the runner
    // shows there (a stand-in partner page, or a 404): where the browser ends up is what counts.
    let started = Instant::now();
    let mut url = session.current_url().await;
    while url_path(&url) != "/checkout/success" {
        assert!(started.elapsed() < READY_TIMEOUT, "after \"Pay now\" the browser stayed at {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        url = session.current_url().await;
    }
}

#[tokio::test]
async fn a_top_up_paid_in_a_real_browser() {
    let skip = "install Debian's chromium and chromium-driver; .ci/run does";
    let chromedriver = match tool("CHROMEDRIVER", "/usr/bin/chromedriver") {
        Ok(path) => path,
        Err(path) => return eprintln!("browser test skipped: {} not found ({skip})", path.display()),
    };
    let chromium = match tool("CHROMIUM", "/usr/bin/chromium") {
        Ok(path) => path,
        Err(path) => return eprintln!("browser test skipped: {} not found ({skip})", path.display()),
    };

    let stack = Stack::start().await;
    let admin = stack.token(local::seed::DEMO_PARTNER, Some("demo-ws-1"), "workspace_admin");
    let (status, offers) = stack.api(Method::GET, "/workspace/topup-options", &admin, None).await;
    assert_eq!(status, 200, "{offers}");
    let first = &offers["data"][0];
    assert_eq!((&first["amount_major"], &first["points"]), (&json!("10.00"), &json!("1000.00")), "{offers}");
    let option = first["id"].as_str().unwrap().to_owned();
    let (status, created) =
        stack.api(Method::POST, "/workspace/checkout", &admin, Some(json!({ "topup_option_id": option }))).await;
    assert_eq!(status, 201, "{created}");
    let checkout_url = created["url"].as_str().unwrap_or_else(|| panic!("no url in {created}")).to_owned();

    let mut driver = Chromedriver::start(&chromedriver);
    let wd = WebDriver::new(&driver.url);
    driver.wait_ready(&wd).await;
    let id = wd.new_session(&chromium, &driver.dir.join("profile")).await;
    let session = Session { wd, id };
    // The steps run in their own task so that the session is deleted (closing the browser)
    // whether they pass or panic; the panic is then raised here.
    let steps = tokio::spawn(pay_in_browser(session.clone(), checkout_url)).await;
    session.delete().await;
    if let Err(failed) = steps {
        eprintln!("chromedriver's log:\n{}", driver.log());
        std::panic::resume_unwind(failed.into_panic());
    }

    // 100 demo points and the 1,000 bought, credited through the fake's webhook.
    stack.wait_for_balance(&admin, "1100.00").await;
}

#[test]
fn url_paths() {
    assert_eq!(url_path("http://127.0.0.1:3000/checkout/success?session_id=cs_1"), "/checkout/success");
    assert_eq!(url_path("http://localhost:3000/checkout/success#x"), "/checkout/success");
    assert_eq!(url_path("http://localhost:3000"), "");
    assert_eq!(url_path("data:,"), "");
}
