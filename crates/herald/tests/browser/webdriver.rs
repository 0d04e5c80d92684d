//! A small W3C WebDriver client over reqwest, for chromedriver driving headless Chromium: just
//! the commands the browser tests use. Chromium runs with a fresh profile in a temporary
//! directory and with the flags that keep it from reaching any network of its own.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// The key W3C WebDriver uses for element references in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Longest a single WebDriver command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `wait_for` waits for the page to show something.
pub const WAIT_MS: u64 = 15_000;

/// A chromedriver process on a port of its own choosing, killed on drop.
#[derive(Debug)]
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts chromedriver with `--port=0` and reads the port it chose from its first lines.
    pub fn start(chromedriver: &Path) -> Result<Self, String> {
        let mut child = Command::new(chromedriver)
            .args(["--port=0", "--allowed-ips=127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", chromedriver.display()))?;
        let stdout = child.stdout.take().ok_or("chromedriver has no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        let port = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                return Err(format!("chromedriver exited before it was ready: {}", seen.join(" | ")));
            };
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                break rest
                    .trim_end_matches('.')
                    .trim()
                    .parse::<u16>()
                    .map_err(|e| format!("{line}: {e}"))?;
            }
            seen.push(line);
        };
        // Keep draining its output so chromedriver never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self { child, port })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser (a WebDriver session).
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    base: String,
    /// Whether the session was ended (so `Drop` need not end it).
    closed: bool,
    /// The browser's profile, removed when the browser is dropped.
    _profile: tempfile::TempDir,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Opens headless Chromium at the given window size.
    pub async fn open(driver: &Driver, chromium: &Path, width: u32, height: u32) -> Result<Self, String> {
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--force-device-scale-factor=1".to_owned(),
            "--lang=en-GB".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.display().to_string(), "args": args},
            "timeouts": {"implicit": 0, "pageLoad": 30_000, "script": WAIT_MS + 5_000},
        }}});
        let http = reqwest::Client::builder().timeout(COMMAND_TIMEOUT).build().map_err(|e| e.to_string())?;
        let root = format!("http://127.0.0.1:{}", driver.port);
        let reply: Value = http
            .post(format!("{root}/session"))
            .json(&capabilities)
            .send()
            .await
            .map_err(|e| format!("chromedriver: {e}"))?
            .json()
            .await
            .map_err(|e| format!("chromedriver: {e}"))?;
        let id = reply["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("Chromium did not start: {}", reply["value"]["message"]))?;
        let browser = Self { http, base: format!("{root}/session/{id}"), closed: false, _profile: profile };
        browser.watch_for_problems().await;
        Ok(browser)
    }

    /// Sends a command; panics with WebDriver's message when it fails.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        } else if method == reqwest::Method::POST {
            request = request.json(&json!({}));
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("WebDriver {path}: {e}"));
        let status = response.status();
        let reply: Value = response.json().await.unwrap_or_else(|e| panic!("WebDriver {path}: {e}"));
        if !status.is_success() {
            panic!("WebDriver {path} failed ({status}): {}", reply["value"]["message"]);
        }
        reply["value"].clone()
    }

    /// Collects script errors, rejected promises and CSP violations of every page, so a test
    /// can check that a page ran cleanly under its Content-Security-Policy.
    async fn watch_for_problems(&self) {
        let source = "window.__problems = [];\
            addEventListener('error', (e) => window.__problems.push('error: ' + e.message));\
            addEventListener('unhandledrejection', (e) => window.__problems.push('unhandled: ' + (e.reason && e.reason.message || e.reason)));\
            document.addEventListener('securitypolicyviolation', (e) => window.__problems.push('CSP blocked ' + e.blockedURI + ' (' + e.violatedDirective + ')'));";
        self.command(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": source}})),
        )
        .await;
    }

    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    pub async fn current_url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or_default().to_owned()
    }

    /// Runs a script in the page and returns its result.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.command(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": args})))
            .await
    }

    /// Runs an asynchronous script; it calls its last argument with the result.
    pub async fn run_async(&self, script: &str, args: Value) -> Value {
        self.command(reqwest::Method::POST, "/execute/async", Some(json!({"script": script, "args": args})))
            .await
    }

    /// Waits until a visible element matching `css` whose text contains `text` is on the page,
    /// and returns it. On timeout, panics with what the page shows instead.
    pub async fn wait_for(&self, css: &str, text: &str) -> Element<'_> {
        let script = "const [css, text, limit] = arguments; const done = arguments[arguments.length - 1];\
            const started = Date.now();\
            const check = () => {\
              const hit = [...document.querySelectorAll(css)]\
                .find((e) => e.getClientRects().length > 0 && e.textContent.includes(text));\
              if (hit) return done({found: hit});\
              if (Date.now() - started > limit) {\
                const main = document.querySelector('main');\
                return done({shown: (main ? main.innerText : document.body.innerText).slice(0, 3000)});\
              }\
              setTimeout(check, 50);\
            };\
            check();";
        let result = self.run_async(script, json!([css, text, WAIT_MS])).await;
        match result["found"][ELEMENT_KEY].as_str() {
            Some(id) => Element { browser: self, id: id.to_owned() },
            None => panic!(
                "no `{css}` containing {text:?} within {WAIT_MS} ms at {}; the page shows:\n{}",
                self.current_url().await,
                result["shown"].as_str().unwrap_or_default()
            ),
        }
    }

    /// The text of `<main>`, as the reader sees it.
    pub async fn main_text(&self) -> String {
        self.run("return document.querySelector('main').innerText", json!([]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Script errors and CSP violations on the current page so far.
    pub async fn problems(&self) -> Vec<String> {
        let value = self.run("return window.__problems || []", json!([])).await;
        value
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect())
            .unwrap_or_default()
    }

    /// Saves a PNG of the whole page (beyond the window when it is taller).
    pub async fn screenshot(&self, path: &Path) {
        let shot = self
            .command(
                reqwest::Method::POST,
                "/goog/cdp/execute",
                Some(json!({"cmd": "Page.captureScreenshot", "params": {"format": "png", "captureBeyondViewport": true}})),
            )
            .await;
        use base64::Engine as _;
        let data = shot["data"].as_str().expect("a screenshot");
        let bytes = base64::engine::general_purpose::STANDARD.decode(data).expect("base64 PNG");
        std::fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Sends the following commands to the page inside an `<iframe>`.
    pub async fn enter_frame(&self, frame: &Element<'_>) {
        self.command(reqwest::Method::POST, "/frame", Some(json!({"id": {ELEMENT_KEY: frame.id}}))).await;
    }

    /// Sends the following commands to the top page again.
    pub async fn leave_frame(&self) {
        self.command(reqwest::Method::POST, "/frame", Some(json!({"id": null}))).await;
    }

    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.command(reqwest::Method::POST, "/window/rect", Some(json!({"width": width, "height": height})))
            .await;
    }

    /// Closes the browser.
    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.base).send().await;
        self.closed = true;
    }
}

impl Drop for Browser {
    /// A test that failed half-way still closes its browser: chromedriver ends the session and
    /// Chromium with it. `Drop` can't await, so a thread of its own sends the request.
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let url = self.base.clone();
        let closing = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async {
                let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build();
                if let Ok(client) = client {
                    let _ = client.delete(url).send().await;
                }
            });
        });
        let _ = closing.join();
    }
}

impl Element<'_> {
    fn path(&self, action: &str) -> String {
        format!("/element/{}/{action}", self.id)
    }

    pub async fn click(&self) {
        self.browser.command(reqwest::Method::POST, &self.path("click"), None).await;
    }

    /// Types into the element (after clearing it).
    pub async fn type_text(&self, text: &str) {
        self.browser.command(reqwest::Method::POST, &self.path("clear"), None).await;
        self.browser.command(reqwest::Method::POST, &self.path("value"), Some(json!({"text": text}))).await;
    }

    pub async fn text(&self) -> String {
        self.browser
            .command(reqwest::Method::GET, &self.path("text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}
