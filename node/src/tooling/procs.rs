//! Node processes on this machine: spawn one on given ports, signal it (SIGKILL,
//! SIGSTOP, SIGCONT, SIGTERM are real), wait for its exit code, and kill it when the
//! handle is dropped, so no test or benchmark leaves a process behind.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1, and that this process has not
/// handed out before: the kernel may give a just-released port again, and two nodes
/// given one port fight over it (a process test once started two on one port).
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        if HANDED_OUT.lock().expect("ports lock").insert(port) {
            return port;
        }
    }
}

/// One running (or exited) node process.
pub struct NodeProcess {
    /// Cluster transport address, `host:port`.
    pub cluster: String,
    /// HTTP API address, `host:port`.
    pub http: String,
    child: Option<Child>,
}

impl NodeProcess {
    /// Starts `binary run --bind CLUSTER --http HTTP ARGS...`; its stderr goes to
    /// `stderr` (a log file, or nothing).
    pub fn spawn(
        binary: &Path,
        cluster: String,
        http: String,
        args: &[String],
        stderr: Stdio,
    ) -> std::io::Result<NodeProcess> {
        let child = Command::new(binary)
            .args(["run", "--bind", &cluster, "--http", &http])
            .args(args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()?;
        Ok(NodeProcess {
            cluster,
            http,
            child: Some(child),
        })
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends a signal by name (`KILL`, `STOP`, `CONT`, `TERM`).
    pub fn signal(&self, name: &str) -> bool {
        let Some(pid) = self.pid() else { return false };
        Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits up to `limit` (zero: just checks) for the process to exit; its exit code,
    /// -1 if a signal ended it, None if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                // Killed by a signal: no code; report it as -1 so "exited" is visible.
                return Some(status.code().unwrap_or(-1));
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory in KiB (Linux), while it runs.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.signal("CONT");
            self.kill();
        }
    }
}
