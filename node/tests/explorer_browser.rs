//! The block explorer (protocol §7.2) as a user meets it: a real `ordo testnet` of 4 validators,
//! and a real headless Chromium driven over WebDriver (Debian's `chromedriver`, through
//! fantoccini). The test reads the dashboard, watches a committed block appear on the open page
//! without a reload (the live stream of protocol §7.1), follows links and the search box from the
//! dashboard to a block, a transaction and a key, checks that a client-written
//! `<script>` is shown as text and never runs, and checks the 404 pages.
//!
//! Chromium and chromedriver come from `scripts/setup.sh --tests`; where they are missing the test
//! fails and says so, it is never skipped. With `ORDO_SCREENSHOTS=1` it also writes the
//! screenshots the README shows to `docs/explorer/*.png`.

mod common;

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_ports, ordo, Testnet};
use fantoccini::error::CmdError;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use ordo_chain::Keypair;
use ordo_genesis::Genesis;
use serde_json::{json, Value};
use tokio::time::error::Elapsed;

/// Debian's Chromium and its WebDriver (packages `chromium` and `chromium-driver`).
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The value a client writes: the explorer must show it as text, never run it.
const SCRIPT_VALUE: &str = "<script>alert(1)</script>";
const STATE_KEY: &str = "explorer:xss";

/// How long a committed block may take to appear on an open dashboard.
const LIVE_UPDATE_MAX: Duration = Duration::from_secs(10);
/// Generous bounds for a loaded 2-core machine (nodes, Chromium and builds share it).
const START_MAX: Duration = Duration::from_secs(90);
const PAGE_MAX: Duration = Duration::from_secs(30);

/// Where the README's screenshots go (only with `ORDO_SCREENSHOTS=1`).
fn screenshot_dir() -> Option<PathBuf> {
    (std::env::var("ORDO_SCREENSHOTS").as_deref() == Ok("1"))
        .then(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/explorer"))
}

/// The last `n` lines of a file, for failure messages.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A running `ordo testnet`, as a user starts it. Dropping it stops it as Ctrl-C does (SIGINT,
/// then SIGKILL if it lingers); its nodes die with it.
struct Supervisor {
    child: Child,
    log: PathBuf,
}

impl Supervisor {
    fn start(dir: &Path, p2p: u16, api: u16) -> Supervisor {
        let log = dir.with_file_name("testnet.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = ordo()
            .args(["testnet", "--nodes", "4", "--dir"])
            .arg(dir)
            .args(["--p2p-port", &p2p.to_string(), "--api-port", &api.to_string()])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Supervisor { child, log }
    }

    fn output(&self) -> String {
        tail(&self.log, 40)
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- ordo testnet output:\n{}", self.output());
        }
        // SAFETY: kill(2) on our own child, which has not been reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails, saying what to run, unless Chromium and chromedriver are installed.
fn require_browser() {
    for (path, package) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: the explorer's browser test needs Debian's `{package}`; \
             run scripts/setup.sh --tests (as root it installs chromium and chromium-driver)"
        );
    }
}

/// A running `chromedriver`. Dropping it SIGKILLs the driver and any browser it started that is
/// still running (a browser whose session was closed has already exited).
struct Driver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Driver {
    fn start(dir: &Path) -> Driver {
        require_browser();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.join("chromedriver.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}; run scripts/setup.sh --tests"));
        let mut driver = Driver { child, url: format!("http://127.0.0.1:{port}"), log };
        driver.wait_ready();
        driver
    }

    /// Waits until the driver answers `GET /status` with `ready: true`.
    fn wait_ready(&mut self) {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
        let deadline = Instant::now() + START_MAX;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("chromedriver exited ({status}) before it was ready:\n{}", tail(&self.log, 40));
            }
            let ready = agent
                .get(&format!("{}/status", self.url))
                .call()
                .ok()
                .and_then(|r| r.into_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "chromedriver never became ready:\n{}", tail(&self.log, 40));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The pids of the live processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().is_some_and(|stat| {
                // After the command name in parentheses: state, then the parent's pid.
                let fields: Vec<&str> =
                    stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
                fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent)
            })
        })
        .collect()
}

impl Drop for Driver {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- chromedriver log:\n{}", tail(&self.log, 40));
        }
        // A browser whose session was just closed exits on its own (and reaps its helpers);
        // give it that chance before killing what is left.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !children_of(self.child.id()).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in children_of(self.child.id()) {
            // SAFETY: kill(2) on a browser this test's driver started and still parents.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `work` on `rt` for at most `limit` (the timer must be created inside the runtime).
fn within<T>(rt: &tokio::runtime::Runtime, limit: Duration, work: impl Future<Output = T>) -> Result<T, Elapsed> {
    rt.block_on(async { tokio::time::timeout(limit, work).await })
}

/// A headless Chromium session on one explorer node, driven synchronously: each WebDriver
/// command runs to completion on the browser's own single-threaded runtime. Dropping it ends
/// the session, which quits the browser.
struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    /// The explorer's origin, e.g. `http://127.0.0.1:8080`.
    base: String,
}

impl Browser {
    fn open(driver: &Driver, profile: &Path, base: &str) -> Browser {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let caps: Capabilities = serde_json::from_value(json!({
            "browserName": "chrome",
            // An alert that a script raised must stay open for the check below, not be dismissed.
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }))
        .unwrap();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let connect = async { ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await };
        let client = match within(&rt, START_MAX, connect) {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!("no Chromium session: {e}\n{}", tail(&driver.log, 40)),
            Err(_) => panic!("Chromium did not start within {START_MAX:?}\n{}", tail(&driver.log, 40)),
        };
        Browser { rt, client: Some(client), base: base.to_string() }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open")
    }

    /// Runs one WebDriver command; a failure names `what`.
    fn run<T>(&self, what: &str, command: impl Future<Output = Result<T, CmdError>>) -> T {
        match within(&self.rt, PAGE_MAX, command) {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => panic!("{what}: {e} (at {})", self.location()),
            Err(_) => panic!("{what}: no answer within {PAGE_MAX:?}"),
        }
    }

    /// The current URL, or why it is unknown (for failure messages).
    fn location(&self) -> String {
        match within(&self.rt, Duration::from_secs(5), self.client().current_url()) {
            Ok(Ok(url)) => url.to_string(),
            _ => "an unknown page".into(),
        }
    }

    fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.run(&format!("open {url}"), self.client().goto(&url));
    }

    /// The path (and query) of the current page.
    fn path(&self) -> String {
        let url = self.run("read the URL", self.client().current_url());
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    fn title(&self) -> String {
        self.run("read the title", self.client().title())
    }

    /// How many elements match `css` now.
    fn count(&self, css: &str) -> usize {
        self.run(&format!("find {css}"), self.client().find_all(Locator::Css(css))).len()
    }

    /// The `textContent` of the one element `css` names, exactly as in the DOM.
    fn text(&self, css: &str) -> String {
        let v =
            self.js("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", json!([css]));
        v.as_str().unwrap_or_else(|| panic!("no element {css} on {}", self.location())).to_string()
    }

    fn attr(&self, css: &str, name: &str) -> Option<String> {
        let element = self.run(&format!("find {css}"), self.client().find(Locator::Css(css)));
        self.run(&format!("read {name} of {css}"), element.attr(name))
    }

    fn click(&self, css: &str) {
        let element = self.run(&format!("find {css}"), self.client().find(Locator::Css(css)));
        self.run(&format!("click {css}"), element.click());
    }

    /// Runs `script` in the page with `args` (a JSON array) and returns what it returns.
    fn js(&self, script: &str, args: Value) -> Value {
        let args = args.as_array().cloned().unwrap_or_default();
        self.run("run a script", self.client().execute(script, args))
    }

    /// Polls `pred` until it holds, or fails naming `what` and the page.
    fn wait_until(&self, what: &str, timeout: Duration, mut pred: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + timeout;
        while !pred(self) {
            assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what} on {}", self.location());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the browser shows `path` (a click or a form submission navigates there).
    fn wait_path(&self, path: &str) {
        self.wait_until(&format!("the page {path}"), PAGE_MAX, |b| b.path() == path);
    }

    /// Types `query` into the header's search box and submits it.
    fn search(&self, query: &str) {
        let input = self.run("find the search box", self.client().find(Locator::Css("form#search input[name=q]")));
        self.run("clear the search box", input.clear());
        self.run("type into the search box", input.send_keys(query));
        self.click("form#search button[type=submit]");
    }

    /// No `alert()` is open, and no script element carries the client's value: the value
    /// was rendered as text.
    fn assert_no_script_ran(&self) {
        match self.rt.block_on(self.client().get_alert_text()) {
            Err(e) if e.is_no_such_alert() => {}
            Err(e) => panic!("cannot ask for an alert: {e}"),
            Ok(text) => panic!("a script ran on {}: alert({text:?})", self.location()),
        }
        let injected = self.js(
            "return Array.from(document.querySelectorAll('script')).filter(s => s.textContent.includes('alert(1)')).length;",
            json!([]),
        );
        assert_eq!(injected, json!(0), "a client's <script> became a script element on {}", self.location());
    }

    /// Asserts the page is the explorer's 404 page.
    fn assert_not_found(&self) {
        assert!(self.title().starts_with("Not found"), "title {:?} on {}", self.title(), self.location());
        assert_eq!(self.text("h1").trim(), "Not found");
    }

    /// Saves a PNG of the viewport as `docs/explorer/NAME.png` when screenshots are asked for.
    fn screenshot(&self, name: &str) {
        let Some(dir) = screenshot_dir() else { return };
        let png = self.run("take a screenshot", self.client().screenshot());
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = within(&self.rt, Duration::from_secs(10), client.close());
        }
    }
}

/// The HTTP status of `GET path` on node 0 (an explorer page).
fn page_status(t: &Testnet, path: &str) -> u16 {
    match t.agent.get(&format!("{}{path}", t.api(0))).call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("GET {path}: {e}"),
    }
}

/// Commits a few rounds of transactions from `key` (nonces from 1), a round at a time so that
/// they fill several blocks; returns the height of the last block.
fn load_for_screenshots(t: &Testnet, key: &Keypair) -> u64 {
    let mut tip = 0;
    for round in 0..8u64 {
        let ids: Vec<String> = (0..5 + 3 * round)
            .map(|i| {
                let nonce = 1 + round * 100 + i;
                let tx = t.tx(key, nonce, &format!("user:{nonce}"), &format!("account {nonce}"));
                let (code, body) = t.post_json(i as usize % 4, "/v1/transactions", &serde_json::to_value(&tx).unwrap());
                assert!(code == 202 || code == 200, "submit: {code} {body}");
                body["tx_id"].as_str().unwrap().to_string()
            })
            .collect();
        common::wait_committed(t, 0, &ids, START_MAX);
        tip = tip.max(t.height(0).unwrap());
    }
    tip
}

#[test]
fn the_explorer_works_in_a_real_browser_against_a_real_testnet() {
    // Values drop in the reverse order of their declaration, also when an assertion fails: the
    // browser closes, the driver stops, the testnet stops (and prints its output on failure),
    // and only then are the directories removed. `t` is declared before the supervisor for that.
    require_browser();
    let work = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let (p2p, api) = free_ports(4);
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(40)).build();
    let t: Testnet;

    // 1. `ordo testnet`, the command users run, until node 0 is ready.
    let sup = Supervisor::start(&dir, p2p, api);
    let genesis_file = dir.join("genesis.json");
    let started = Instant::now();
    while !genesis_file.exists() {
        assert!(started.elapsed() < START_MAX, "ordo testnet wrote no genesis.json:\n{}", sup.output());
        std::thread::sleep(Duration::from_millis(50));
    }
    // It may be seen half-written: wait until it parses.
    let genesis = loop {
        match Genesis::load(&genesis_file) {
            Ok(g) => break g,
            Err(e) => assert!(started.elapsed() < START_MAX, "genesis.json does not load: {e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let names: Vec<String> = genesis.validators.iter().map(|v| v.name.clone()).collect();
    // The harness's HTTP helpers over the supervisor's nodes; it starts no process itself.
    t = Testnet { dir: tmp, genesis, nodes: (0..4).map(|_| None).collect(), agent };
    t.wait_ready(0);

    // 2. chromedriver and a headless Chromium.
    let driver = Driver::start(work.path());
    let browser = Browser::open(&driver, &work.path().join("chromium-profile"), &t.api(0));

    // 3. The dashboard: height, view, leader, the four validators, and the live stream.
    browser.goto("/");
    assert!(browser.title().starts_with("Dashboard"), "title {:?}", browser.title());
    let height_shown: u64 =
        browser.text("#height").trim().parse().unwrap_or_else(|_| panic!("#height {:?}", browser.text("#height")));
    let latest = t.height(0).expect("node 0 serves its latest block");
    assert!(height_shown <= latest, "the dashboard shows height {height_shown}, the node has {latest}");
    let view = browser.text("#view");
    assert!(view.trim().parse::<u64>().is_ok(), "#view {view:?} is not a number");
    let leader = browser.text("#leader");
    assert!(names.contains(&leader.trim().to_string()), "#leader {leader:?} names no validator of {names:?}");
    assert_eq!(browser.count("table#validators tbody tr"), 4);
    for name in &names {
        assert_eq!(browser.count(&format!("table#validators tr[data-name=\"{name}\"]")), 1, "no row for {name}");
    }
    assert_eq!(browser.count("svg#chart"), 1);
    browser.wait_until("#live to say live", PAGE_MAX, |b| b.attr("#live", "data-state").as_deref() == Some("live"));
    assert_eq!(browser.text("#live").trim(), "live");
    browser.assert_no_script_ran();

    // 4. A signed transaction over the API; its block appears on the open page, no reload (a
    // mark left in this page's window would not survive one).
    browser.js("window.ordoTestMark = 'still this page';", json!([]));
    let key = Keypair::from_seed([42; 32]);
    let tx = t.tx(&key, 0, STATE_KEY, SCRIPT_VALUE);
    let (code, body) = t.post_json(0, "/v1/transactions", &serde_json::to_value(&tx).unwrap());
    assert!(code == 202 || code == 200, "submit: {code} {body}");
    let tx_id = body["tx_id"].as_str().unwrap().to_string();
    let committed_by = Instant::now() + START_MAX;
    let status = loop {
        let (code, status) = t.get(0, &format!("/v1/transactions/{tx_id}?wait_ms=5000"));
        if code == 200 && status["status"] == "committed" {
            break status;
        }
        assert!(Instant::now() < committed_by, "{tx_id} was not committed: {code} {status}\n{}", t.log(0));
    };
    let h = status["height"].as_u64().unwrap();
    let row = format!("table#recent-blocks tr[data-height=\"{h}\"] a[href=\"/blocks/{h}\"]");
    browser.wait_until(&format!("block {h} on the open dashboard"), LIVE_UPDATE_MAX, |b| b.count(&row) == 1);
    assert!(browser.text("#height").trim().parse::<u64>().unwrap() >= h, "#height did not follow the new block");
    assert_eq!(browser.js("return window.ordoTestMark;", json!([])), json!("still this page"), "the page reloaded");
    assert_eq!(browser.attr("#live", "data-state").as_deref(), Some("live"), "the event stream went stale");

    // 5. Click through: the block, its transaction; then the search box.
    let (code, block) = t.get(0, &format!("/v1/blocks/{h}"));
    assert_eq!(code, 200, "{block}");
    let block_hash = block["hash"].as_str().unwrap().to_string();
    browser.click(&row);
    browser.wait_path(&format!("/blocks/{h}"));
    assert!(browser.title().starts_with(&format!("Block {h}")), "title {:?}", browser.title());
    assert_eq!(browser.text("#block-height").trim(), h.to_string());
    assert_eq!(browser.text("#block-hash").trim(), block_hash);
    assert_eq!(browser.text("#prev-hash").trim(), block["prev_hash"].as_str().unwrap());
    let signers: Vec<String> = browser
        .js(
            "return Array.from(document.querySelectorAll('#certificate .signer')).map(e => e.textContent.trim());",
            json!([]),
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let certificate = browser.text("#certificate");
    let named = names.iter().filter(|n| certificate.contains(n.as_str())).count();
    assert!(named >= 3, "the certificate names {named} validators (2f+1 = 3 sign a block): {signers:?}");
    assert!(signers.iter().all(|s| names.contains(s)), "a signer is not a validator: {signers:?}");
    browser.assert_no_script_ran();
    browser.screenshot("block");

    let tx_link = format!("table#txs a[href=\"/tx/{tx_id}\"]");
    assert_eq!(browser.count(&tx_link), 1, "block {h} does not link to {tx_id}");
    browser.click(&tx_link);
    browser.wait_path(&format!("/tx/{tx_id}"));
    assert!(browser.title().starts_with("Transaction"), "title {:?}", browser.title());
    assert_eq!(browser.text("#tx-id").trim(), tx_id);
    assert_eq!(browser.text("#tx-status").trim(), "committed");
    assert_eq!(browser.attr("#tx-block", "href").as_deref(), Some(format!("/blocks/{h}").as_str()));
    assert_eq!(browser.text("#tx-value"), SCRIPT_VALUE, "the value is shown as the text the client wrote");
    assert_eq!(browser.count("#tx-value *"), 0, "the value became markup");
    browser.assert_no_script_ran();
    browser.screenshot("tx");

    browser.search(&block_hash);
    browser.wait_path(&format!("/blocks/{h}"));
    assert_eq!(browser.text("#block-hash").trim(), block_hash);

    browser.search(STATE_KEY);
    browser.wait_until("the state page", PAGE_MAX, |b| b.path().starts_with("/state/"));
    assert!(browser.title().starts_with("State"), "title {:?}", browser.title());
    assert_eq!(browser.text("#state-key"), STATE_KEY);
    assert_eq!(browser.text("#state-value"), SCRIPT_VALUE);
    assert_eq!(browser.count("#state-value *"), 0, "the value became markup");
    let state_height: u64 = browser.text("#state-height").trim().parse().unwrap();
    assert!(state_height >= h, "#state-height {state_height} is before the write at {h}");
    browser.assert_no_script_ran();

    let garbage = "no-such-thing-zz9";
    browser.search(garbage);
    browser.wait_until("the search's answer", PAGE_MAX, |b| b.path().starts_with("/search"));
    browser.assert_not_found();
    assert_eq!(page_status(&t, &format!("/search?q={garbage}")), 404);

    // 6. An unknown block is a 404 page.
    browser.goto("/blocks/999999");
    browser.assert_not_found();
    assert_eq!(page_status(&t, "/blocks/999999"), 404);
    browser.screenshot("not-found");

    // 7. The other pages the README shows, checked as they are screenshot.
    if screenshot_dir().is_some() {
        // A few more blocks, so that the README's dashboard shows a chart and a list.
        let tip = load_for_screenshots(&t, &key);
        browser.goto("/");
        browser.wait_until("#live to say live", PAGE_MAX, |b| b.attr("#live", "data-state").as_deref() == Some("live"));
        let newest = format!("table#recent-blocks tr[data-height=\"{tip}\"]");
        browser.wait_until(&format!("block {tip} on the dashboard"), LIVE_UPDATE_MAX, |b| b.count(&newest) == 1);
        browser.screenshot("dashboard");
    }
    browser.goto("/blocks");
    assert!(browser.title().starts_with("Blocks"), "title {:?}", browser.title());
    assert!(browser.count(&format!("a[href=\"/blocks/{h}\"]")) >= 1, "/blocks does not list block {h}");
    browser.screenshot("blocks");
    browser.goto("/validators");
    assert!(browser.title().starts_with("Validators"), "title {:?}", browser.title());
    for name in &names {
        assert!(browser.text("main").contains(name.as_str()), "/validators does not name {name}");
    }
    browser.screenshot("validators");

    drop(browser);
    drop(driver);
    drop(sup);
}
