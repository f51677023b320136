//! Test support: Debian's chromedriver on a free port and a headless Chromium session
//! through it (fantoccini), with the flags Chromium needs as root in a container.

use fantoccini::{Client, ClientBuilder};
use node::tooling::procs::free_port;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// chromedriver on a free port; killed when dropped.
pub struct Driver {
    child: Child,
    /// Its port.
    pub port: u16,
    /// Where it listens.
    pub host: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_driver() -> Driver {
    start_driver_with(Command::new("chromedriver"), "127.0.0.1", &[])
}

/// chromedriver started by `command` (inside a test host, say), reached at `host`.
pub fn start_driver_with(mut command: Command, host: &str, extra: &[&str]) -> Driver {
    let port = free_port();
    let child = command
        .arg(format!("--port={port}"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs (Debian package chromium-driver; scripts/test.sh installs it)");
    let start = Instant::now();
    while std::net::TcpStream::connect((host, port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver {
        child,
        port,
        host: host.to_string(),
    }
}

pub async fn open_browser(driver: &Driver, profile: &std::path::Path) -> Client {
    open_browser_with(driver, profile, &[]).await
}

/// As [`open_browser`], with extra Chromium flags (`--ignore-certificate-errors` for a
/// test's own self-signed certificate).
pub async fn open_browser_with(
    driver: &Driver,
    profile: &std::path::Path,
    extra: &[&str],
) -> Client {
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--no-first-run",
        "--window-size=1280,800",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.extend(extra.iter().map(|a| a.to_string()));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": args,
        }),
    );
    // Two rustls providers are compiled in (fantoccini's and the node's ring): name one.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    ClientBuilder::rustls()
        .expect("tls")
        .capabilities(caps)
        .connect(&format!("http://{}:{}", driver.host, driver.port))
        .await
        .expect("a browser session")
}
