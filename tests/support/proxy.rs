//! Test support: Debian's nginx as the TLS-terminating reverse proxy in front of the
//! demo, with a self-signed certificate made for the test (openssl), in a directory of
//! its own; stopped when dropped. The configuration is the minimal one the README
//! shows: one `location /` passing HTTP and WebSocket upgrades to the launcher. The
//! same nginx also serves a directory as a plain static site (the dashboard with no
//! node behind it).

use node::tooling::procs::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx serving `https://127.0.0.1:{port}/` in front of an upstream.
pub struct Proxy {
    child: Child,
    /// The HTTPS port.
    pub port: u16,
    /// Its directory (configuration, certificate, logs).
    pub dir: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // SIGQUIT: the master stops its workers and exits (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The nginx configuration for `upstream`, listening on `listen` with the certificate
/// in `dir`.
pub fn nginx_conf(dir: &Path, listen: &str, upstream: &str) -> String {
    let d = dir.display();
    format!(
        r#"worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen {listen} ssl;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header Host $host;
            proxy_read_timeout 1h;
        }}
    }}
}}
"#
    )
}

/// Makes a self-signed certificate and starts nginx in front of `upstream`
/// (`host:port`), listening on `bind_ip` at a free port.
pub fn start_proxy(dir: &Path, bind_ip: &str, upstream: &str) -> Proxy {
    std::fs::create_dir_all(dir).unwrap();
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=globomantics.test"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs (scripts/test.sh installs it)");
    assert!(made.success(), "openssl made a certificate");
    let port = free_port();
    let conf = nginx_conf(dir, &format!("{bind_ip}:{port}"), upstream);
    run_nginx(dir, &conf, bind_ip, port)
}

/// The nginx configuration of a plain static file server: `root` over HTTP on
/// `listen`, nothing proxied, nothing behind it.
pub fn static_conf(dir: &Path, listen: &str, root: &Path) -> String {
    let (d, r) = (dir.display(), root.display());
    format!(
        r#"worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {listen};
        root {r};
    }}
}}
"#
    )
}

/// Starts nginx serving the files under `root` on 127.0.0.1 at a free port.
pub fn start_static_server(dir: &Path, root: &Path) -> Proxy {
    std::fs::create_dir_all(dir).unwrap();
    let port = free_port();
    let conf = static_conf(dir, &format!("127.0.0.1:{port}"), root);
    run_nginx(dir, &conf, "127.0.0.1", port)
}

/// Runs nginx in the foreground with configuration `conf` (written to `dir`) and
/// waits until it listens on `bind_ip:port`.
fn run_nginx(dir: &Path, conf: &str, bind_ip: &str, port: u16) -> Proxy {
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&path)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx runs (Debian package nginx; scripts/test.sh installs it)");
    let start = Instant::now();
    while std::net::TcpStream::connect((bind_ip, port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Proxy {
        child,
        port,
        dir: dir.to_path_buf(),
    }
}
