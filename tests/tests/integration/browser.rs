//! The screens in a real browser: headless Chromium, driven by chromedriver over the W3C
//! WebDriver protocol, goes through the product's story on the local runner, on both stores:
//! the partner sets an add-on's price and label and a top-up option in the console; the
//! workspace, paused over its bot limit, pays a top-up on the Stripe fake's Checkout page (by
//! keyboard) and sees the points arrive (the webhook's credit, polled), buys the extra bot that
//! resumes it, turns auto top-up on; the clock moves a month and the renewal is in the ledger;
//! the partner deducts points with a reason (by keyboard) and sees it in its ledger. Each
//! screen is checked with axe-core (no serious or critical violation), at phone width (no
//! horizontal overflow), and the browser's log holds no error from the pages.
//!
//! Chromium and chromedriver come from Debian (`chromium`, `chromium-driver`; `.ci/run` installs
//! them). Where either is missing the test says so on stderr and passes, so a laptop without a
//! browser still runs the rest of the suite; once both are there, every failure is loud.
//! axe-core comes from `npm ci` (pinned in package.json). With `SCREENSHOTS_DIR` set, the
//! in-memory run saves the two screens there (`scripts/screenshots` does, for the README).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing::Billing;
use domain::OffsetClock;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use local::{App, PolicyTable, Router, Verifier};
use serde_json::{Value, json};
use store::memory::MemoryTable;
use store::{Store, Table};
use stripe_fake::RunningFake;
use tokio::sync::oneshot;

/// The key a W3C element reference is stored under (fixed by the WebDriver spec).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long one WebDriver command may take. Starting a browser on a busy 2-core CI machine takes
/// a few seconds; anything near this means something hangs.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long chromedriver may take to say it is ready, and a page to show what it waits for.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// The runner's token secret in this test.
const SECRET: &str = "browser-test-secret";
/// Most Tab presses to reach a control by keyboard.
const MAX_TABS: usize = 80;
/// A phone's width in CSS pixels.
const PHONE_WIDTH: u32 = 375;
/// The README's screenshots stay small.
const MAX_SCREENSHOT_BYTES: usize = 200 * 1024;

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
            "timeouts": { "pageLoad": 20_000, "script": 20_000 },
            // The browser's console, read back at the end (chromedriver's log endpoint).
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    // CI runs as root, where Chromium's sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    // Containers often have a tiny /dev/shm.
                    "--disable-dev-shm-usage",
                    "--window-size=1100,1500",
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

    /// The elements matching `css` now (none is no error).
    async fn all(&self, css: &str) -> Vec<String> {
        let found = self.call(Method::POST, "/elements", Some(json!({ "using": "css selector", "value": css }))).await;
        found
            .as_array()
            .map_or_else(Vec::new, |a| a.iter().filter_map(|e| e[ELEMENT].as_str().map(str::to_owned)).collect())
    }

    async fn go(&self, url: &str) {
        self.call(Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    async fn click(&self, css: &str) {
        let element = self.wait_for(css).await;
        self.call(Method::POST, &format!("/element/{element}/click"), Some(json!({}))).await;
    }

    /// Replaces the text of the input `css` with `text`.
    async fn type_into(&self, css: &str, text: &str) {
        let element = self.wait_for(css).await;
        self.call(Method::POST, &format!("/element/{element}/clear"), Some(json!({}))).await;
        self.call(Method::POST, &format!("/element/{element}/value"), Some(json!({ "text": text }))).await;
    }

    /// Types `text` (WebDriver key codes allowed) into whatever has the focus.
    async fn keys(&self, text: &str) {
        let active = self.call(Method::GET, "/element/active", None).await;
        let element = active[ELEMENT].as_str().unwrap_or_else(|| panic!("nothing has the focus: {active}")).to_owned();
        self.call(Method::POST, &format!("/element/{element}/value"), Some(json!({ "text": text }))).await;
    }

    async fn exec(&self, script: &str, args: Value) -> Value {
        self.call(Method::POST, "/execute/sync", Some(json!({ "script": script, "args": args }))).await
    }

    /// Waits until an element matches `css`; its reference.
    async fn wait_for(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(element) = self.all(css).await.into_iter().next() {
                return element;
            }
            assert!(started.elapsed() < READY_TIMEOUT, "no {css} on {}", self.current_url().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of `css` contains `expected`; the text.
    async fn wait_text(&self, css: &str, expected: &str) -> String {
        let started = Instant::now();
        loop {
            let mut last = String::new();
            for element in self.all(css).await {
                if let Some(t) = self.send_text(&element).await {
                    last = t;
                }
            }
            if last.contains(expected) {
                return last;
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "{css} says {last:?}, not {expected:?}, on {}; the status line: {:?}",
                self.current_url().await,
                self.exec("const s = document.getElementById('status'); return s ? s.textContent : null;", json!([]))
                    .await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An element's text, or `None` when it went stale meanwhile (the page re-rendered).
    async fn send_text(&self, element: &str) -> Option<String> {
        match self.wd.send(Method::GET, &format!("/session/{}/element/{element}/text", self.id), None).await {
            Ok((200, v)) => v["value"].as_str().map(str::to_owned),
            _ => None,
        }
    }

    /// Presses Tab until the focus is on `css` (at most [`MAX_TABS`] times), then Enter: the
    /// control is reachable and operable by keyboard alone.
    async fn tab_to_and_press(&self, css: &str) {
        for _ in 0..MAX_TABS {
            self.keys("\u{E004}").await;
            let focused = self.exec("return document.activeElement.matches(arguments[0]);", json!([css])).await;
            if focused == json!(true) {
                self.keys("\u{E007}").await;
                return;
            }
        }
        panic!("{css} was not reached with {MAX_TABS} Tab presses on {}", self.current_url().await);
    }

    async fn set_size(&self, width: u32, height: u32) {
        self.call(Method::POST, "/window/rect", Some(json!({ "width": width, "height": height }))).await;
    }

    /// Runs axe-core on the page: the serious and critical violations, one line each.
    async fn accessibility_violations(&self, axe: &str) -> Vec<String> {
        self.exec(&format!("{axe}\nreturn true;"), json!([])).await;
        let script = "const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ['violations'] }).then((r) => done(r.violations
              .filter((v) => v.impact === 'serious' || v.impact === 'critical')
              .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)));";
        let found = self.call(Method::POST, "/execute/async", Some(json!({ "script": script, "args": [] }))).await;
        found.as_array().map_or_else(Vec::new, |a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
    }

    /// How far the page is wider than the window (0: no horizontal overflow), and the width.
    async fn overflow(&self) -> (i64, i64) {
        let v = self
            .exec("return [document.documentElement.scrollWidth - window.innerWidth, window.innerWidth];", json!([]))
            .await;
        (v[0].as_i64().unwrap_or(i64::MAX), v[1].as_i64().unwrap_or(0))
    }

    /// The browser's log since the last read (chromedriver keeps it per session).
    async fn browser_log(&self) -> Vec<Value> {
        let log = self.call(Method::POST, "/se/log", Some(json!({ "type": "browser" }))).await;
        log.as_array().cloned().unwrap_or_default()
    }

    /// A PNG of the window, written to `file`.
    async fn screenshot(&self, file: &Path) -> usize {
        use base64::Engine as _;
        let shot = self.call(Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot.as_str().unwrap_or_default()).unwrap();
        std::fs::write(file, &png).unwrap();
        png.len()
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

/// The local runner as `cargo run -p local` builds it (routes from template.yaml, local JWTs,
/// each function's IAM policy, an adjustable clock, the fake Stripe, the demo data, the screens
/// of `web/`) over `table`; it stops when dropped.
struct Runner {
    url: String,
    _fake: RunningFake,
    _stop: oneshot::Sender<()>,
}

impl Runner {
    async fn start<T: Table>(table: T) -> Runner {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        let fake = local::stripe::start_fake(([127, 0, 0, 1], 0).into(), &url).await.unwrap();
        let billing = Billing::new(Store::new(PolicyTable::new(table)), Arc::new(OffsetClock::new()))
            .with_payments(local::stripe::payments(&fake.url));
        local::seed::seed(&billing, &url, &fake).await.unwrap();
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("template.yaml");
        let router = Router::from_template(&template).unwrap();
        let web_root = local::web::web_root();
        let app = Arc::new(App { router, billing, verifier: Verifier::new(SECRET), web_root });
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            local::server::serve(app, listener, shutdown).await.unwrap();
        });
        Runner { url, _fake: fake, _stop: stop }
    }
}

/// axe-core's script, from `npm ci`.
fn axe_script() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run npm ci (scripts/test does) for the pinned axe-core", path.display()))
}

/// The page as it is now passes axe-core's serious and critical checks, and fits a phone.
async fn check_screen(session: &Session, axe: &str, what: &str) {
    let violations = session.accessibility_violations(axe).await;
    assert!(violations.is_empty(), "{what}: accessibility violations:\n{}", violations.join("\n"));
    session.set_size(PHONE_WIDTH, 800).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (overflow, width) = session.overflow().await;
    assert!(width <= 400, "{what}: the window did not narrow to a phone's width ({width} px)");
    assert!(overflow <= 0, "{what}: {overflow} px wider than a {width} px phone screen");
    session.set_size(1100, 1500).await;
}

/// Signs in on the runner's local page as a demo user (a click), landing on their screen.
async fn sign_in(session: &Session, runner: &Runner, user: &str) {
    session.go(&format!("{}/_local/sign-in", runner.url)).await;
    session.click(&format!("button[data-user=\"{user}\"]")).await;
}

/// The story, screen by screen.
async fn story(session: Session, runner: &Runner, screenshots: Option<PathBuf>) {
    let axe = axe_script();

    // The checks can fail: on the sign-in page, an image without a text alternative is a
    // critical violation, and a box wider than a phone is an overflow.
    session.go(&format!("{}/_local/sign-in", runner.url)).await;
    session.wait_for("button[data-user=\"alice\"]").await;
    let planted = "const img = document.createElement('img'); img.src = 'data:,'; document.body.append(img);
        const wide = document.createElement('div'); wide.style.width = '2000px'; wide.style.height = '1px';
        document.body.append(wide);";
    session.exec(planted, json!([])).await;
    let found = session.accessibility_violations(&axe).await;
    assert!(found.iter().any(|v| v.starts_with("image-alt (critical)")), "axe missed an image without alt: {found:?}");
    assert!(session.overflow().await.0 > 0, "a 2000 px box did not overflow");

    // The partner, in the console: the connection in test mode, the cost price beside the
    // points price; a new price and label for the extra bot; a new top-up option, the currency
    // rules checked as they are typed.
    sign_in(&session, runner, "alice").await;
    session.wait_text("#stripe-line", "Test mode").await;
    let bot = session.wait_text("tr:has([data-save-addon=\"extra_bot\"])", "5.00 USD a month").await;
    assert!(bot.contains("extra_bot"), "{bot}");
    session.type_into("#price-extra_bot", "12").await;
    session.type_into("#label-extra_bot", "Extra bot (Northwind)").await;
    session.click("[data-save-addon=\"extra_bot\"]").await;
    session.wait_text("#status", "Extra bot (Northwind): 12.00 points a month").await;
    session.click("#topup-add").await;
    let row = "#topup-rows tr:last-child";
    session.type_into(&format!("{row} [data-field=\"label\"]"), "Mini pack").await;
    session.type_into(&format!("{row} [data-field=\"currency\"]"), "kwd").await;
    session.type_into(&format!("{row} [data-field=\"amount\"]"), "5.125").await;
    session.wait_text(&format!("{row} .hint"), "KWD amounts end in 0").await;
    session.type_into(&format!("{row} [data-field=\"currency\"]"), "usd").await;
    session.type_into(&format!("{row} [data-field=\"amount\"]"), "5.00").await;
    session.type_into(&format!("{row} [data-field=\"points\"]"), "400").await;
    session.click("#topups-save").await;
    session.wait_text("#status", "4 top-up options saved.").await;
    check_screen(&session, &axe, "the console").await;

    // The platform reports 2 bots where the starter plan allows 1 (the sign-in page's local
    // tool, as a newcomer clicks it): the workspace pauses.
    session.go(&format!("{}/_local/sign-in", runner.url)).await;
    session.click("#tool-usage").await;
    session.wait_text("#sign-in-status", "demo-ws-1 uses 2 bots of 1: it is paused.").await;

    // The workspace's admin: the partner's brand, why it is paused and the three ways out.
    sign_in(&session, runner, "bob").await;
    session.wait_text("#ws-status", "Paused").await;
    assert_eq!(session.text("#brand-name").await, local::seed::DEMO_BRAND_NAME);
    let title = session.call(Method::GET, "/title", None).await;
    assert_eq!(title, json!(format!("Billing · {}", local::seed::DEMO_BRAND_NAME)));
    session.wait_text(".paused-box", "bots: 2 used, 1 allowed").await;
    for way in ["#way-upgrade", "#way-buy-extra_bot", "#way-reduce"] {
        session.wait_for(way).await;
    }
    // The upgrade lists the partner's plans that cover the usage, each priced, one click from
    // Checkout (not taken here: the story goes on with the add-on).
    session.click("#way-upgrade").await;
    session.wait_text("#upgrade-plans", "Subscribe to Growth").await;
    session.wait_text("#topups", "Mini pack").await;
    check_screen(&session, &axe, "the billing page, paused").await;
    if let Some(dir) = &screenshots {
        let bytes = session.screenshot(&dir.join("billing.png")).await;
        assert!(bytes < MAX_SCREENSHOT_BYTES, "billing.png is {bytes} bytes");
    }

    // Pay now, by keyboard: Checkout (the fake's pay page), then back to the billing page,
    // which shows the points once the webhook has credited them.
    session.tab_to_and_press("button[data-option]").await;
    let started = Instant::now();
    while session.call(Method::GET, "/title", None).await != json!("Pay 10.00 USD") {
        assert!(started.elapsed() < READY_TIMEOUT, "Pay now did not open Checkout: {}", session.current_url().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    session.click("#pay").await;
    session.wait_text("#status", "1000.00 points arrived").await;
    assert_eq!(url_path(&session.current_url().await), "/billing/");
    session.wait_text("#balance-value", "1100.00 points").await;

    // The way out by add-on: the price now (prorated) and per month after, before confirming.
    session.click("#way-buy-extra_bot").await;
    session.wait_text("#quote-month", "12.00 points").await;
    let now = session.wait_text("#quote-now", "points").await;
    session.click("#buy-confirm").await;
    session.wait_text("#ws-status", "Active").await;
    let charged = now.trim_end_matches(" points");
    session.wait_text("#status", &format!("Bought 1 x Extra bot (Northwind) for {charged} points.")).await;

    // Auto top-up on, with the card the payment saved.
    session.wait_text("#card-line", "ending").await;
    session.click("#auto-enabled").await;
    session.click("#auto-save").await;
    session.wait_text("#auto-state", "On").await;

    // A month later the add-on renews at its price: the renewal is in the ledger.
    session.go(&format!("{}/_local/sign-in", runner.url)).await;
    session.click("#tool-clock").await;
    session.wait_text("#sign-in-status", "2 workspaces renewed, 0 lapsed").await;
    session.click("button[data-user=\"bob\"]").await;
    let renewal = session.wait_text("#ledger-rows tr[data-kind=\"renewal\"]", "-12.00").await;
    assert!(renewal.contains("extra_bot x 1"), "{renewal}");

    // The partner deducts points with a reason, by keyboard, and sees it in its ledger.
    sign_in(&session, runner, "alice").await;
    session.wait_for("[data-points=\"demo-ws-1\"]").await;
    session.tab_to_and_press("[data-points=\"demo-ws-1\"]").await;
    session.wait_for("dialog[open] #points-amount").await;
    session.keys("-12.50").await;
    session.keys("\u{E004}").await;
    session.keys("Manual correction").await;
    session.keys("\u{E004}").await;
    session.keys("\u{E007}").await;
    session.wait_text("#status", "-12.50 points (Manual correction)").await;
    let entry = session.wait_text("#partner-ledger-rows tr:first-child", "Manual correction").await;
    assert!(entry.contains("-12.50") && entry.contains("demo-ws-1"), "{entry}");
    session.wait_text("#workspaces", "active").await;
    if let Some(dir) = &screenshots {
        session.exec("window.scrollTo(0, 0);", json!([])).await;
        let bytes = session.screenshot(&dir.join("console.png")).await;
        assert!(bytes < MAX_SCREENSHOT_BYTES, "console.png is {bytes} bytes");
    }

    // The billing page in a partner's app: the host hands it the token with postMessage.
    session.go(&format!("{}/_local/embed", runner.url)).await;
    let frame = session.wait_for("#billing-frame").await;
    session.call(Method::POST, "/frame", Some(json!({ "id": { ELEMENT: frame } }))).await;
    session.wait_text("#brand-name", local::seed::DEMO_BRAND_NAME).await;
    session.wait_text("#balance-value", "points").await;
    session.call(Method::POST, "/frame/parent", Some(json!({}))).await;
    session.wait_text("#embed-status", "Token handed to the billing page.").await;

    // Nothing the pages did logged an error. (The fake's pay page, Stripe's stand-in on its own
    // origin, is not one of ours: its missing favicon is not.)
    let errors: Vec<Value> = session
        .browser_log()
        .await
        .into_iter()
        .filter(|e| e["level"] == "SEVERE" && e["message"].as_str().is_some_and(|m| m.contains(&runner.url)))
        .collect();
    assert!(errors.is_empty(), "the browser logged errors: {errors:#?}");

    // A page the partner did not list may not frame the billing page: the browser refuses it
    // (the frame holds the browser's error page, not the billing page).
    session.go("about:blank").await;
    let billing = format!("{}/billing/?partner={}", runner.url, local::seed::DEMO_PARTNER);
    let frame = "const f = document.createElement('iframe');
        f.onload = () => { f.dataset.loaded = 'yes'; }; f.src = arguments[0]; document.body.append(f);";
    session.exec(frame, json!([billing])).await;
    let frame = session.wait_for("iframe[data-loaded]").await;
    session.call(Method::POST, "/frame", Some(json!({ "id": { ELEMENT: frame } }))).await;
    let shown = session.exec("return location.href;", json!([])).await;
    assert!(shown.as_str().is_some_and(|href| href.starts_with("chrome-error://")), "an unlisted page framed {shown}");
    session.call(Method::POST, "/frame/parent", Some(json!({}))).await;
}

/// Runs the story on `table` in a fresh browser, or says why it was skipped.
async fn story_in_a_browser<T: Table>(table: T, screenshots: bool) {
    let skip = "install Debian's chromium and chromium-driver; .ci/run does";
    let chromedriver = match tool("CHROMEDRIVER", "/usr/bin/chromedriver") {
        Ok(path) => path,
        Err(path) => return eprintln!("browser test skipped: {} not found ({skip})", path.display()),
    };
    let chromium = match tool("CHROMIUM", "/usr/bin/chromium") {
        Ok(path) => path,
        Err(path) => return eprintln!("browser test skipped: {} not found ({skip})", path.display()),
    };
    let screenshots = std::env::var_os("SCREENSHOTS_DIR").filter(|_| screenshots).map(PathBuf::from);
    let runner = Runner::start(table).await;
    let mut driver = Chromedriver::start(&chromedriver);
    let wd = WebDriver::new(&driver.url);
    driver.wait_ready(&wd).await;
    let id = wd.new_session(&chromium, &driver.dir.join("profile")).await;
    let session = Session { wd, id };
    // The steps run in their own task so that the session is deleted (closing the browser)
    // whether they pass or panic; the panic is then raised here.
    let started = Instant::now();
    let runner = Arc::new(runner);
    let steps = {
        let (session, runner) = (session.clone(), runner.clone());
        tokio::spawn(async move { story(session, &runner, screenshots).await }).await
    };
    session.delete().await;
    if let Err(failed) = steps {
        eprintln!("chromedriver's log:\n{}", driver.log());
        std::panic::resume_unwind(failed.into_panic());
    }
    eprintln!("browser story: {} ms", started.elapsed().as_millis());
}

mod memory {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_story_through_the_screens() {
        super::story_in_a_browser(super::MemoryTable::new(), true).await;
    }
}

mod dynamodb {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_story_through_the_screens() {
        super::story_in_a_browser(integration_tests::fresh_table().await, false).await;
    }
}

/// The Content-Security-Policy a page is served with, over HTTP.
async fn policy_of(url: &str) -> String {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(Request::get(url).body(Full::new(Bytes::new())).unwrap()).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let policy = response.headers().get("content-security-policy").unwrap_or_else(|| panic!("no CSP on {url}"));
    policy.to_str().unwrap().to_owned()
}

/// Who may frame the pages: the console nobody, the billing page its own origin and the sites
/// its partner lists in `brand.embed_origins`, read when the page is served.
#[tokio::test]
async fn the_billing_page_may_be_framed_only_by_its_partners_sites() {
    let runner = Runner::start(MemoryTable::new()).await;
    let console = policy_of(&format!("{}/console/", runner.url)).await;
    assert!(console.ends_with("frame-ancestors 'none'"), "{console}");
    let billing_url = format!("{}/billing/?partner={}", runner.url, local::seed::DEMO_PARTNER);
    let seeded = policy_of(&billing_url).await;
    assert!(seeded.ends_with(&format!("frame-ancestors 'self' {}", runner.url)), "{seeded}");
    assert!(seeded.contains("script-src 'self';"), "{seeded}");
    // The partner names its app's origin in its settings: the next load allows it.
    let token = local::TokenRequest {
        sub: "alice".into(),
        partner_id: Some(local::seed::DEMO_PARTNER.into()),
        workspace_id: None,
        roles: vec!["partner_admin".into()],
        ttl_s: 600,
    }
    .mint(&Verifier::new(SECRET), local::server::now_epoch_s());
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let get = Request::get(format!("{}/partner/settings", runner.url))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let bytes = client.request(get).await.unwrap().into_body().collect().await.unwrap().to_bytes();
    let mut settings: Value = serde_json::from_slice(&bytes).unwrap();
    settings["brand"]["embed_origins"] = json!(["https://app.northwind.example"]);
    let put = Request::put(format!("{}/partner/settings", runner.url))
        .header("authorization", format!("Bearer {token}"))
        .header("idempotency-key", "embed-origins")
        .body(Full::new(Bytes::from(settings.to_string())))
        .unwrap();
    assert_eq!(client.request(put).await.unwrap().status(), 200);
    let named = policy_of(&billing_url).await;
    assert!(named.ends_with("frame-ancestors 'self' https://app.northwind.example"), "{named}");
    // Without a partner the page may be framed by its own origin only.
    let anyone = policy_of(&format!("{}/billing/", runner.url)).await;
    assert!(anyone.ends_with("frame-ancestors 'self'"), "{anyone}");
}

#[test]
fn url_paths() {
    assert_eq!(url_path("http://127.0.0.1:3000/billing/?checkout=cs_1"), "/billing/");
    assert_eq!(url_path("http://localhost:3000/billing/#x"), "/billing/");
    assert_eq!(url_path("http://localhost:3000"), "");
    assert_eq!(url_path("data:,"), "");
}
