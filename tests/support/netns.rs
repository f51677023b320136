//! Test support: a second host for the browser, made of a network namespace and a veth
//! pair (`ip netns`, `ip link`): the namespace's end gets 10.231.x.2/30, the host's end
//! 10.231.x.1/30, so a program started in the namespace reaches the host only over the
//! veth, as a visitor's machine reaches a hosted demo. Removed when dropped.

use std::process::{Command, Stdio};

/// A namespace with a veth link to the host.
pub struct TestHost {
    /// The namespace's name.
    pub name: String,
    /// The host's address on the link.
    pub host_ip: String,
    /// The namespace's address on the link.
    pub guest_ip: String,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl TestHost {
    /// Makes the namespace and its link; panics with the failing step.
    pub fn new() -> TestHost {
        let id = std::process::id() % 250 + 1;
        let name = format!("gm-visitor-{id}");
        let (host_if, guest_if) = (format!("gmv{id}h"), format!("gmv{id}g"));
        let host_ip = format!("10.231.{id}.1");
        let guest_ip = format!("10.231.{id}.2");
        ip(&["netns", "del", &name]);
        ip(&["link", "del", &host_if]);
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), name.clone()],
            vec![
                "link".into(),
                "add".into(),
                host_if.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                guest_if.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                guest_if.clone(),
                "netns".into(),
                name.clone(),
            ],
            vec![
                "addr".into(),
                "add".into(),
                format!("{host_ip}/30"),
                "dev".into(),
                host_if.clone(),
            ],
            vec!["link".into(), "set".into(), host_if.clone(), "up".into()],
            // Without IPv6 the link gets no link-local address a second after it comes
            // up (duplicate address detection), which Chromium in the namespace takes
            // for a network change and aborts the page load with ERR_NETWORK_CHANGED.
            vec![
                "netns".into(),
                "exec".into(),
                name.clone(),
                "sysctl".into(),
                "-q".into(),
                "-w".into(),
                "net.ipv6.conf.all.disable_ipv6=1".into(),
            ],
            vec![
                "-n".into(),
                name.clone(),
                "addr".into(),
                "add".into(),
                format!("{guest_ip}/30"),
                "dev".into(),
                guest_if.clone(),
            ],
            vec![
                "-n".into(),
                name.clone(),
                "link".into(),
                "set".into(),
                guest_if.clone(),
                "up".into(),
            ],
            vec![
                "-n".into(),
                name.clone(),
                "link".into(),
                "set".into(),
                "lo".into(),
                "up".into(),
            ],
        ];
        let host = TestHost {
            name,
            host_ip,
            guest_ip,
        };
        for step in steps {
            let args: Vec<&str> = step.iter().map(String::as_str).collect();
            assert!(
                ip(&args),
                "`ip {}` failed (the test needs root and iproute2)",
                args.join(" ")
            );
        }
        // A host firewall that drops new connections from unknown interfaces would
        // keep the visitor out; let this link in (removed again when dropped).
        host.accept_link(&host_if, "-I");
        host
    }

    /// Inserts (`-I`) or deletes (`-D`) the rule accepting what comes in over the link.
    fn accept_link(&self, host_if: &str, op: &str) {
        let _ = Command::new("iptables")
            .args([op, "INPUT", "-i", host_if, "-j", "ACCEPT"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        // Nothing started in the namespace outlives it (a browser a driver left behind
        // would keep the namespace, and its veth, alive).
        let pids = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
        // Deleting the namespace deletes its veth end, and with it the host's.
        ip(&["netns", "del", &self.name]);
        let id = self.name.trim_start_matches("gm-visitor-");
        self.accept_link(&format!("gmv{id}h"), "-D");
    }
}
