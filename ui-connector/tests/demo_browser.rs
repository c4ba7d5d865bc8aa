//! The test page in a real browser, in both modes.
//!
//! - Local: starts the real binary, `ui-connector --local`, on a free port and runs
//!   `tests/browser/demo.test.mjs`, which drives the page in headless Chromium (register,
//!   connect, join, post samples, disconnect, post, reconnect, recovered events).
//! - Production: a production connector (Redis, a secret file, `AUTH_OPTION=Five9`) and an
//!   interceptor on one real Redis, in-process through `test-support`; the same script asks the
//!   page for the platform token, pushes the events to the interceptor itself, and checks that a
//!   desktop on another origin connects with `withCredentials: true`.
//!
//! Each writes a screenshot to `target/artifacts/` for a human to look at. Skipped, loudly,
//! where Chromium is not installed; `.ci/run` installs it and runs `npm ci` in
//! `tests/browser`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
/// How long the binary may take to answer `/status` after it is spawned.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The server process, killed however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is inside the workspace")
        .to_path_buf()
}

/// A port nothing listens on: bound by the OS, then released.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port")
        .port()
}

/// `true` once `GET /status` answers 200.
fn status_ok(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let mut response = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut response).is_ok()
        && response.starts_with("HTTP/1.1 200")
}

/// Polls `/status` (bounded) while checking the process has not died.
fn wait_until_serving(server: &mut Server, port: u16, log: &Path) {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while !status_ok(port) {
        if let Some(status) = server.0.try_wait().expect("poll the server") {
            panic!(
                "FAIL: ui-connector --local exited ({status}) before serving:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "FAIL: ui-connector --local did not answer /status within {STARTUP_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes a line straight to the process's stderr: the test harness captures `println!` and
/// `eprintln!` of passing tests, and a skip or an artifact path must be visible in CI's log.
fn tell_ci(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The browser test's directory, or `None` (said loudly) where Chromium is missing.
fn browser_suite() -> Option<PathBuf> {
    if !Path::new(CHROMIUM).exists() {
        tell_ci(&format!(
            "SKIPPED: test page browser test: {CHROMIUM} not found \
             (chromium not installed; .ci/run installs it)"
        ));
        return None;
    }
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|out| out.status.success()),
        "FAIL: node is required to run the test page browser test (ui-connector/tests/browser)"
    );
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "FAIL: {}/node_modules is missing: run `npm ci` there (as .ci/run does)",
        browser_dir.display()
    );
    Some(browser_dir)
}

/// `target/artifacts/<name>`, with any earlier copy removed.
fn artifact(name: &str) -> PathBuf {
    let artifacts = workspace_root().join("target/artifacts");
    std::fs::create_dir_all(&artifacts).expect("create target/artifacts");
    let path = artifacts.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Runs `node demo.test.mjs <args>` and fails the test with its output if it fails.
fn run_browser_script(browser_dir: &Path, args: &[&str], screenshot: &Path, server_log: &str) {
    let run = Command::new("node")
        .arg("demo.test.mjs")
        .args(args)
        .current_dir(browser_dir)
        .stdin(Stdio::null())
        .output()
        .expect("run node demo.test.mjs");
    print!("{}", String::from_utf8_lossy(&run.stdout));
    eprint!("{}", String::from_utf8_lossy(&run.stderr));
    tell_ci(&format!(
        "CI artifact: test page screenshot at {}",
        screenshot.display()
    ));
    assert!(
        run.status.success(),
        "FAIL: the test page browser test failed ({}); server log: {server_log}",
        run.status,
    );
    assert!(screenshot.is_file(), "no screenshot was written");
}

#[test]
fn the_demo_page_works_in_chromium() {
    let Some(browser_dir) = browser_suite() else {
        return;
    };
    let screenshot = artifact("demo-page.png");
    let server_log = artifact("demo-browser-server.log");

    let port = free_port();
    let log_file = std::fs::File::create(&server_log).expect("create the server log");
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_ui-connector"))
            .arg("--local")
            .env("PORT", port.to_string())
            // The in-memory bus, and nothing that would make local mode refuse to start.
            .env_remove("REDIS_URL")
            .env_remove("REDISHOST")
            .env_remove("K_SERVICE")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the log handle"))
            .stderr(log_file)
            .spawn()
            .expect("start ui-connector --local"),
    );
    wait_until_serving(&mut server, port, &server_log);

    let url = format!("http://127.0.0.1:{port}/");
    let screenshot_arg = screenshot.display().to_string();
    run_browser_script(
        &browser_dir,
        &[&url, &screenshot_arg],
        &screenshot,
        &server_log.display().to_string(),
    );
    drop(server);
}

/// The Python connector served its test page at `/` in every deployment
/// (`ui-connector/main.py:83-87` at 9425334): in production mode the page must work with the
/// real registration (a platform token checked by `AUTH_OPTION`), and events arrive through a
/// real interceptor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_page_works_in_production_mode_in_chromium() {
    use agent_assist_test_support::{RedisServer, TestConnector, TestInterceptor};
    let Some(browser_dir) = browser_suite() else {
        return;
    };
    const TRUST_TOKEN: &str = "browser-test-five9-trust-token";
    let redis = RedisServer::start();
    let interceptor = TestInterceptor::on(&redis).await;
    let connector = TestConnector::builder()
        .redis(&redis)
        .setting("AUTH_OPTION", "Five9")
        .setting("FIVE9_TRUST_TOKEN", TRUST_TOKEN)
        .spawn()
        .await;
    let screenshot = artifact("test-page-production.png");
    let url = connector.url("/");
    let interceptor_url = interceptor.url("");
    let screenshot_arg = screenshot.display().to_string();
    let platform_token = format!("Bearer {TRUST_TOKEN}");
    tokio::task::spawn_blocking(move || {
        run_browser_script(
            &browser_dir,
            &[
                &url,
                &screenshot_arg,
                "production",
                &interceptor_url,
                &platform_token,
            ],
            &screenshot,
            "(in-process connector: see the test output)",
        )
    })
    .await
    .expect("the browser script ran");
}
