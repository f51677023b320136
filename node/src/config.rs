//! Node configuration from flags, environment variables and a TOML file.
//!
//! Precedence: a flag beats its environment variable (clap reads both), which beats
//! the TOML file (`--config`), which beats the built-in default. Everything is checked
//! here, once, so the rest of the node works with valid values only.

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use shared::{Address, DowningSettings, DowningStrategy, Settings};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Command line of the `node` binary.
#[derive(Parser, Debug)]
#[command(
    name = "node",
    version,
    about = "A Globomantics cluster node (Akka-style membership) and its operator CLI."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: CliCommand,
}

/// The binary's subcommands.
#[derive(Subcommand, Debug)]
pub enum CliCommand {
    /// Run a cluster node.
    Run(Box<RunArgs>),
    /// Operator commands against a running node's management API (like Petabridge.Cmd).
    Cluster(ClusterArgs),
    /// Start a supervised demo cluster of node processes on this machine.
    Demo(crate::tooling::launcher::DemoArgs),
}

/// Operator CLI arguments.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// The node's HTTP address (`host:port`).
    #[arg(long, env = "NODE_API", default_value = "127.0.0.1:8558")]
    pub api: String,
    /// Bearer token for mutating commands (not needed against a demo-mode node).
    #[arg(long, env = "NODE_TOKEN")]
    pub token: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub action: ClusterAction,
}

/// Operator actions.
#[derive(Subcommand, Debug)]
pub enum ClusterAction {
    /// Print the members as the node sees them.
    Show,
    /// Make the member at ADDRESS leave gracefully.
    Leave {
        /// Cluster address `host:port` of the member.
        address: String,
    },
    /// Mark the member at ADDRESS Down.
    Down {
        /// Cluster address `host:port` of the member.
        address: String,
    },
    /// Mark every member the node sees as unreachable Down.
    DownUnreachable,
    /// Exit 0 if the node is ready (Up or WeaklyUp), 1 if not: a container health
    /// check for images with no shell or curl.
    Ready,
    /// The node's transport keyring: list, install, make primary, remove.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

/// `node cluster keys ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum KeysAction {
    /// Print the installed keys' fingerprints, primary first.
    List,
    /// Accept the key of SECRET from now on.
    Install {
        /// The cluster secret phrase.
        secret: String,
    },
    /// Use the key with this fingerprint for new connections.
    Use {
        /// Fingerprint, as `list` prints it.
        id: String,
    },
    /// Stop accepting the key with this fingerprint.
    Remove {
        /// Fingerprint, as `list` prints it.
        id: String,
    },
}

/// Settings profiles.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Akka's defaults (1 s heartbeats, 20 s stable-after).
    Akka,
    /// About five times faster (200 ms heartbeats, 3 s stable-after).
    Demo,
}

/// Split-brain resolver strategies.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The larger side survives (tie: the side with the lowest address).
    KeepMajority,
    /// A side survives with at least `--quorum-size` members.
    StaticQuorum,
    /// The side with the oldest member survives.
    KeepOldest,
    /// Every member is downed.
    DownAll,
}

/// `node run` flags. Every one can also come from its environment variable or from
/// the TOML file given with `--config` (same names, kebab-case).
#[derive(Args, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RunArgs {
    /// A TOML file with any of these settings.
    #[arg(long, env = "NODE_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Cluster name; nodes with another name are refused. Default `globomantics`.
    #[arg(long, env = "NODE_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// Where the cluster transport listens. Default `127.0.0.1:2551`.
    #[arg(long, env = "NODE_BIND")]
    pub bind: Option<SocketAddr>,
    /// The `host:port` other nodes reach this one at. Default: the bind address, or,
    /// when that is a wildcard (`0.0.0.0`, as in a container), this host's own IPv4
    /// address (its hostname resolved).
    #[arg(long, env = "NODE_ADVERTISE")]
    pub advertise: Option<String>,
    /// Where the management API and dashboard listen. Default `127.0.0.1:8558`.
    #[arg(long, env = "NODE_HTTP")]
    pub http: Option<SocketAddr>,
    /// The `host:port` peers, the launcher and the dashboard reach the HTTP API at.
    /// Default: the HTTP bind address, or, when that is a wildcard, the advertised
    /// cluster host with the HTTP port.
    #[arg(long, env = "NODE_HTTP_ADVERTISE")]
    pub http_advertise: Option<String>,
    /// Seed nodes, comma-separated `host:port` or `dns:name:port` (every IPv4 address
    /// the name resolves to, re-resolved while running); the same list on every node.
    /// Only the first may form a new cluster. Empty: wait for a join through the API.
    #[arg(long, env = "NODE_SEEDS", value_delimiter = ',')]
    pub seeds: Option<Vec<String>>,
    /// Roles, comma-separated (for example `api,worker`).
    #[arg(long, env = "NODE_ROLES", value_delimiter = ',')]
    pub roles: Option<Vec<String>>,
    /// Members needed before the leader moves anyone Up. Default 1.
    #[arg(long, env = "NODE_MIN_NR_OF_MEMBERS")]
    pub min_nr_of_members: Option<usize>,
    /// Timing profile. Default `akka`.
    #[arg(long, env = "NODE_PROFILE", value_enum)]
    pub profile: Option<Profile>,
    /// Split-brain resolver strategy. Default `keep-majority`.
    #[arg(long, env = "NODE_DOWNING", value_enum)]
    pub downing: Option<Strategy>,
    /// Quorum for `static-quorum`.
    #[arg(long, env = "NODE_QUORUM_SIZE")]
    pub quorum_size: Option<usize>,
    /// For `keep-oldest`: down the oldest if it is alone on its side.
    #[arg(long, env = "NODE_DOWN_IF_ALONE")]
    pub down_if_alone: Option<bool>,
    /// Override the profile's stable-after (ms).
    #[arg(long, env = "NODE_STABLE_AFTER_MS")]
    pub stable_after_ms: Option<u64>,
    /// Override the profile's heartbeat interval (ms).
    #[arg(long, env = "NODE_HEARTBEAT_INTERVAL_MS")]
    pub heartbeat_interval_ms: Option<u64>,
    /// Override the profile's acceptable heartbeat pause (ms).
    #[arg(long, env = "NODE_ACCEPTABLE_HEARTBEAT_PAUSE_MS")]
    pub acceptable_heartbeat_pause_ms: Option<u64>,
    /// Override the profile's gossip interval (ms).
    #[arg(long, env = "NODE_GOSSIP_INTERVAL_MS")]
    pub gossip_interval_ms: Option<u64>,
    /// How many members heartbeat each member (Akka's `monitored-by-nr-of-members`,
    /// default 9). Fewer cost less bandwidth; each member's failure is then seen first
    /// by fewer observers.
    #[arg(long, env = "NODE_MONITORED_BY_NR_OF_MEMBERS")]
    pub monitored_by_nr_of_members: Option<u64>,
    /// How many other members a monitor asks to reach a member that left a heartbeat
    /// unanswered, before phi gives up on it (indirect probes, ALGORITHM.md section
    /// 11; 0 turns them off). The akka profile has none, the demo profile three.
    #[arg(long, env = "NODE_INDIRECT_PROBE_HELPERS")]
    pub indirect_probe_helpers: Option<u64>,
    /// The resolver's stable-after when every unreachable member is marked by as many
    /// observers as watch it (ms; 0 or unset: off). Off by default: seed 43386440808
    /// found a split brain with it (ALGORITHM.md, deviation 8).
    #[arg(long, env = "NODE_CORROBORATED_STABLE_AFTER_MS")]
    pub corroborated_stable_after_ms: Option<u64>,
    /// Shared cluster secret for node authentication (never sent over the wire).
    /// Required unless `--demo`.
    #[arg(long, env = "NODE_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Further cluster secrets whose keys are accepted beside the primary one (comma
    /// separated), so a node restarted during a key rotation still talks to both.
    #[arg(long, env = "NODE_ACCEPT_SECRETS", hide_env_values = true)]
    pub accept_secrets: Option<String>,
    /// Encrypt and authenticate every frame between nodes (Noise, default true).
    /// `false` uses the plaintext challenge-response; the two never talk.
    #[arg(long, env = "NODE_TRANSPORT_ENCRYPTION")]
    pub transport_encryption: Option<bool>,
    /// Bearer token for mutating and fault endpoints. Required unless `--demo`.
    #[arg(long, env = "NODE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Demo mode: fault and admin endpoints open, a built-in secret if none is given.
    #[arg(long, env = "NODE_DEMO")]
    pub demo: Option<bool>,
    /// The MovieLens folder written by `scripts/fetch-data.sh`. Default `data/ml-100k`.
    #[arg(long, env = "NODE_DATA")]
    pub data: Option<PathBuf>,
    /// Serve a small synthetic catalogue instead of MovieLens (tests; no download).
    #[arg(long, env = "NODE_SYNTHETIC_DATA")]
    pub synthetic_data: Option<bool>,
    /// Folder of this node's watch-history store. Default `state/node-<cluster port>`.
    #[arg(long, env = "NODE_STORE")]
    pub store: Option<PathBuf>,
    /// The built dashboard to serve at `/`. Default `dist`.
    #[arg(long, env = "NODE_WEB_ROOT")]
    pub web_root: Option<PathBuf>,
    /// The demo launcher's HTTP address, shown to the dashboard.
    #[arg(long, env = "NODE_LAUNCHER")]
    pub launcher: Option<String>,
    /// Serve the HTTP API and dashboard over TLS with this PEM certificate chain
    /// (with `--http-tls-key`).
    #[arg(long, env = "NODE_HTTP_TLS_CERT")]
    pub http_tls_cert: Option<PathBuf>,
    /// The PEM private key of `--http-tls-cert`.
    #[arg(long, env = "NODE_HTTP_TLS_KEY")]
    pub http_tls_key: Option<PathBuf>,
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where the cluster transport listens.
    pub bind: SocketAddr,
    /// This node's cluster address.
    pub advertise: Address,
    /// Where the HTTP API listens.
    pub http: SocketAddr,
    /// The HTTP address others use.
    pub http_advertise: Address,
    /// Seeds.
    pub seeds: Vec<crate::cluster::seeds::SeedSpec>,
    /// Roles.
    pub roles: BTreeSet<String>,
    /// Membership settings.
    pub settings: Settings,
    /// Cluster secret.
    pub secret: String,
    /// Further secrets whose keys are accepted.
    pub accept_secrets: Vec<String>,
    /// TLS for the HTTP API: certificate chain and key (PEM files).
    pub http_tls: Option<(PathBuf, PathBuf)>,
    /// Encrypted links between nodes.
    pub encryption: bool,
    /// Admin token (None in demo mode: endpoints are open).
    pub token: Option<String>,
    /// Demo mode.
    pub demo: bool,
    /// Where the catalogue comes from.
    pub data: DataSource,
    /// Folder of the watch-history store.
    pub store: PathBuf,
    /// The built dashboard.
    pub web_root: PathBuf,
    /// The demo launcher's HTTP address.
    pub launcher: Option<String>,
}

/// Where a node's catalogue comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// MovieLens 100k in this folder.
    MovieLens(PathBuf),
    /// The synthetic catalogue (tests).
    Synthetic,
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read or parsed.
    #[error("config file {0}: {1}")]
    File(PathBuf, String),
    /// A value is invalid.
    #[error("{0}")]
    Invalid(String),
}

impl RunArgs {
    /// Fills what flags and environment left unset from the TOML file, then defaults,
    /// and checks every value.
    pub fn resolve(self) -> Result<NodeConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => RunArgs::default(),
        };
        let given = self.over(file);
        let demo = given.demo.unwrap_or(false);
        let addresses = given.addresses()?;
        let (secret, token) = given.credentials(demo)?;
        Ok(NodeConfig {
            seeds: given.seed_specs()?,
            roles: given.role_set()?,
            settings: given.settings()?,
            secret,
            accept_secrets: given.accepted_secrets()?,
            http_tls: given.http_tls()?,
            encryption: given.transport_encryption.unwrap_or(true),
            token: if demo { None } else { token },
            demo,
            data: given.data_source(),
            store: given.store.clone().unwrap_or_else(|| {
                PathBuf::from(format!("state/node-{}", addresses.advertise.port))
            }),
            web_root: given
                .web_root
                .clone()
                .unwrap_or_else(|| PathBuf::from("dist")),
            launcher: given.launcher.clone(),
            bind: addresses.bind,
            advertise: addresses.advertise,
            http: addresses.http,
            http_advertise: addresses.http_advertise,
        })
    }

    /// One layer of settings: each of ours, or else `file`'s.
    fn over(self, file: RunArgs) -> RunArgs {
        macro_rules! layered {
            ($($field:ident),* $(,)?) => {
                RunArgs { config: self.config, $($field: self.$field.or(file.$field)),* }
            };
        }
        layered!(
            cluster_name,
            bind,
            advertise,
            http,
            http_advertise,
            seeds,
            roles,
            min_nr_of_members,
            profile,
            downing,
            quorum_size,
            down_if_alone,
            stable_after_ms,
            heartbeat_interval_ms,
            acceptable_heartbeat_pause_ms,
            gossip_interval_ms,
            monitored_by_nr_of_members,
            indirect_probe_helpers,
            corroborated_stable_after_ms,
            secret,
            accept_secrets,
            transport_encryption,
            token,
            demo,
            data,
            synthetic_data,
            store,
            web_root,
            launcher,
            http_tls_cert,
            http_tls_key,
        )
    }

    fn addresses(&self) -> Result<Addresses, ConfigError> {
        let bind = self
            .bind
            .unwrap_or_else(|| "127.0.0.1:2551".parse().expect("literal"));
        let advertise = match &self.advertise {
            Some(text) => parse_address(text, "--advertise")?,
            None => default_advertise(bind).map_err(ConfigError::Invalid)?,
        };
        let http = self
            .http
            .unwrap_or_else(|| "127.0.0.1:8558".parse().expect("literal"));
        let http_advertise = match &self.http_advertise {
            Some(text) => parse_address(text, "--http-advertise")?,
            None if http.ip().is_unspecified() => Address::new(advertise.host.clone(), http.port()),
            None => Address::new(http.ip().to_string(), http.port()),
        };
        Ok(Addresses {
            bind,
            advertise,
            http,
            http_advertise,
        })
    }

    fn seed_specs(&self) -> Result<Vec<crate::cluster::seeds::SeedSpec>, ConfigError> {
        self.seeds
            .iter()
            .flatten()
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.trim()
                    .parse::<crate::cluster::seeds::SeedSpec>()
                    .map_err(|e| invalid(format!("--seeds: {e}")))
            })
            .collect()
    }

    fn role_set(&self) -> Result<BTreeSet<String>, ConfigError> {
        let roles: BTreeSet<String> = self
            .roles
            .iter()
            .flatten()
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect();
        if roles.len() > shared::member::MAX_ROLES
            || roles.iter().any(|r| r.len() > shared::member::MAX_ROLE_LEN)
        {
            return Err(invalid("at most 16 roles of at most 64 characters"));
        }
        Ok(roles)
    }

    /// The profile's membership settings with the overrides applied.
    fn settings(&self) -> Result<Settings, ConfigError> {
        let cluster_name = self
            .cluster_name
            .clone()
            .unwrap_or_else(|| "globomantics".into());
        if cluster_name.is_empty() || cluster_name.len() > shared::wire::MAX_CLUSTER_NAME_LEN {
            return Err(invalid("cluster name must be 1 to 64 characters"));
        }
        let mut settings = match self.profile.unwrap_or(Profile::Akka) {
            Profile::Akka => Settings::akka_defaults(cluster_name),
            Profile::Demo => Settings::demo(cluster_name),
        };
        if let Some(ms) = self.heartbeat_interval_ms {
            settings.heartbeat_interval_ms = within(ms, 10..=60_000, "--heartbeat-interval-ms")?;
            settings.expected_response_after_ms = ms;
        }
        if let Some(ms) = self.acceptable_heartbeat_pause_ms {
            settings.acceptable_heartbeat_pause_ms =
                within(ms, 0..=600_000, "--acceptable-heartbeat-pause-ms")?;
        }
        if let Some(ms) = self.gossip_interval_ms {
            settings.gossip_interval_ms = within(ms, 10..=60_000, "--gossip-interval-ms")?;
            settings.leader_actions_interval_ms = ms;
        }
        if let Some(n) = self.monitored_by_nr_of_members {
            let n = within(n, 1..=64, "--monitored-by-nr-of-members")?;
            settings.monitored_by_nr_of_members = n as usize;
        }
        // Timed from the heartbeat interval as it now stands, overridden or not.
        let helpers = match self.indirect_probe_helpers {
            Some(n) => within(n, 0..=16, "--indirect-probe-helpers")? as usize,
            None => settings.indirect_probe_helpers,
        };
        settings = settings.with_indirect_probes(helpers);
        settings.min_nr_of_members = self.min_nr_of_members.unwrap_or(1).max(1);
        settings.downing = self.downing_settings(settings.downing.stable_after_ms)?;
        if let Some(ms) = self.corroborated_stable_after_ms {
            let ms = within(ms, 0..=600_000, "--corroborated-stable-after-ms")?;
            settings.downing.corroborated_stable_after_ms = (ms > 0).then_some(ms);
        }
        Ok(settings)
    }

    fn downing_settings(&self, profile_stable_after: u64) -> Result<DowningSettings, ConfigError> {
        let mut downing =
            DowningSettings::keep_majority(self.stable_after_ms.unwrap_or(profile_stable_after));
        downing.strategy = match self.downing.unwrap_or(Strategy::KeepMajority) {
            Strategy::KeepMajority => DowningStrategy::KeepMajority,
            Strategy::StaticQuorum => {
                let quorum_size = self
                    .quorum_size
                    .filter(|q| *q > 0)
                    .ok_or_else(|| invalid("static-quorum needs --quorum-size > 0"))?;
                DowningStrategy::StaticQuorum { quorum_size }
            }
            Strategy::KeepOldest => DowningStrategy::KeepOldest {
                down_if_alone: self.down_if_alone.unwrap_or(true),
            },
            Strategy::DownAll => DowningStrategy::DownAll,
        };
        Ok(downing)
    }

    /// Both TLS files, or neither.
    fn http_tls(&self) -> Result<Option<(PathBuf, PathBuf)>, ConfigError> {
        match (&self.http_tls_cert, &self.http_tls_key) {
            (Some(cert), Some(key)) => Ok(Some((cert.clone(), key.clone()))),
            (None, None) => Ok(None),
            _ => Err(invalid("--http-tls-cert and --http-tls-key go together")),
        }
    }

    /// The further secrets accepted, each at least 8 characters.
    fn accepted_secrets(&self) -> Result<Vec<String>, ConfigError> {
        let list = self.accept_secrets.as_deref().unwrap_or("");
        let secrets: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if secrets.iter().any(|s| s.len() < 8) {
            return Err(invalid(
                "every accepted secret must be at least 8 characters",
            ));
        }
        Ok(secrets)
    }

    /// The cluster secret (a built-in one in demo mode) and the admin token (required
    /// outside demo mode).
    fn credentials(&self, demo: bool) -> Result<(String, Option<String>), ConfigError> {
        let secret = match &self.secret {
            Some(s) if s.len() >= 8 => s.clone(),
            Some(_) => return Err(invalid("the cluster secret must be at least 8 characters")),
            None if demo => "globomantics-demo-secret".into(),
            None => {
                return Err(invalid(
                    "a cluster secret is required (--secret or NODE_SECRET) outside demo mode",
                ))
            }
        };
        let token = self.token.clone();
        if token.as_ref().is_some_and(|t| t.len() < 8) {
            return Err(invalid("the admin token must be at least 8 characters"));
        }
        if token.is_none() && !demo {
            return Err(invalid(
                "an admin token is required (--token or NODE_TOKEN) outside demo mode",
            ));
        }
        Ok((secret, token))
    }

    fn data_source(&self) -> DataSource {
        if self.synthetic_data.unwrap_or(false) {
            DataSource::Synthetic
        } else {
            DataSource::MovieLens(
                self.data
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("data/ml-100k")),
            )
        }
    }
}

/// Where a node listens and how others reach it.
struct Addresses {
    bind: SocketAddr,
    advertise: Address,
    http: SocketAddr,
    http_advertise: Address,
}

fn read_file(path: &PathBuf) -> Result<RunArgs, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::File(path.clone(), e.to_string()))?;
    toml::from_str(&text).map_err(|e| ConfigError::File(path.clone(), e.to_string()))
}

fn invalid(what: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(what.into())
}

fn parse_address(text: &str, flag: &str) -> Result<Address, ConfigError> {
    text.parse::<Address>()
        .map_err(|e| invalid(format!("{flag}: {e}")))
}

/// `value` if it lies in `range`; otherwise an error naming the flag and the range.
fn within(
    value: u64,
    range: std::ops::RangeInclusive<u64>,
    flag: &str,
) -> Result<u64, ConfigError> {
    if range.contains(&value) {
        return Ok(value);
    }
    Err(invalid(match range.start() {
        0 => format!("{flag} must be at most {}", range.end()),
        start => format!("{flag} must be {start} to {}", range.end()),
    }))
}

/// The address to advertise when none is given: the bind address, unless that is a
/// wildcard, which nobody can connect to; then this host's own IPv4 address, found
/// by resolving its hostname (in a container: its address on the bridge network).
fn default_advertise(bind: SocketAddr) -> Result<Address, String> {
    if !bind.ip().is_unspecified() {
        return Ok(Address::new(bind.ip().to_string(), bind.port()));
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let own = std::net::ToSocketAddrs::to_socket_addrs(&(hostname.as_str(), bind.port()))
        .ok()
        .and_then(|mut found| {
            found.find(|a| matches!(a.ip(), std::net::IpAddr::V4(v4) if !v4.is_loopback()))
        });
    match own {
        Some(a) => Ok(Address::new(a.ip().to_string(), bind.port())),
        None => Err(format!(
            "--bind {bind} is a wildcard and this host's name `{hostname}` resolves to no \
             IPv4 address other than loopback: give --advertise host:port"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> RunArgs {
        let mut full = vec!["node", "run"];
        full.extend_from_slice(list);
        match Cli::try_parse_from(full).unwrap().command {
            CliCommand::Run(a) => *a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = std::env::temp_dir().join(format!("node-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("node.toml");
        std::fs::write(&file, "cluster-name = \"from-file\"\nroles = [\"api\"]\nprofile = \"demo\"\nsecret = \"file-secret-123\"\ntoken = \"token-123\"\n").unwrap();
        let config = args(&["--config", file.to_str().unwrap(), "--roles", "worker,api"])
            .resolve()
            .unwrap();
        assert_eq!(config.settings.cluster_name, "from-file");
        assert_eq!(
            config.roles,
            ["api".to_string(), "worker".to_string()].into()
        );
        assert_eq!(
            config.settings.heartbeat_interval_ms, 200,
            "demo profile from the file"
        );
        assert_eq!(config.advertise, Address::new("127.0.0.1", 2551));
    }

    #[test]
    fn outside_demo_mode_a_secret_and_a_token_are_required() {
        assert!(args(&[]).resolve().is_err());
        assert!(args(&["--secret", "long-enough"]).resolve().is_err());
        assert!(args(&["--secret", "short", "--token", "token-123"])
            .resolve()
            .is_err());
        let config = args(&["--secret", "long-enough", "--token", "token-123"])
            .resolve()
            .unwrap();
        assert_eq!(config.token.as_deref(), Some("token-123"));
        assert!(args(&["--demo", "true"]).resolve().unwrap().token.is_none());
    }

    #[test]
    fn an_empty_or_short_token_is_refused() {
        assert!(args(&["--secret", "long-enough", "--token", ""])
            .resolve()
            .is_err());
        assert!(args(&["--secret", "long-enough", "--token", "short"])
            .resolve()
            .is_err());
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let err = args(&["--demo", "true", "--seeds", "nohost"])
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("--seeds"));
        let err = args(&["--demo", "true", "--downing", "static-quorum"])
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("quorum"));
    }
}
