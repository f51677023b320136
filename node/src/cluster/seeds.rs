//! Seed nodes as given by the operator: fixed `host:port` addresses, or
//! `dns:name:port`, a DNS name that resolves to several addresses (a Kubernetes
//! headless Service, for example). A DNS seed is resolved at start and again while
//! the node runs, so seeds that start later are found; the core gets the new list.
//!
//! Resolved addresses are IPv4 only and sorted, so every node that resolves the
//! same name gets the same list in the same order, and agrees on which seed is first
//! (only the first may form a new cluster, and even it joins an existing one if any
//! other seed answers).

use shared::Address;
use std::fmt;

/// One entry of the seed list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeedSpec {
    /// A fixed address (a name here is resolved by the transport on each connect).
    Fixed(Address),
    /// Every IPv4 address the name resolves to, at this port.
    Dns {
        /// The name.
        name: String,
        /// The cluster port.
        port: u16,
    },
}

impl fmt::Display for SeedSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeedSpec::Fixed(a) => write!(f, "{a}"),
            SeedSpec::Dns { name, port } => write!(f, "dns:{name}:{port}"),
        }
    }
}

impl std::str::FromStr for SeedSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<SeedSpec, String> {
        let text = text.trim();
        match text.strip_prefix("dns:") {
            Some(rest) => {
                let (name, port) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| format!("`{text}`: expected dns:name:port"))?;
                let port: u16 = port
                    .parse()
                    .map_err(|_| format!("`{text}`: `{port}` is not a port"))?;
                if name.is_empty() || name.len() > 253 || port == 0 {
                    return Err(format!("`{text}`: expected dns:name:port"));
                }
                Ok(SeedSpec::Dns {
                    name: name.to_string(),
                    port,
                })
            }
            None => text
                .parse::<Address>()
                .map(SeedSpec::Fixed)
                .map_err(|e| e.to_string()),
        }
    }
}

/// The seed addresses now: fixed entries as they are, DNS entries expanded (an
/// entry that does not resolve contributes nothing this time).
pub async fn resolve(specs: &[SeedSpec]) -> Vec<Address> {
    let mut out: Vec<Address> = Vec::new();
    for spec in specs {
        match spec {
            SeedSpec::Fixed(a) => out.push(a.clone()),
            SeedSpec::Dns { name, port } => {
                match tokio::net::lookup_host((name.as_str(), *port)).await {
                    Ok(found) => {
                        let mut v4: Vec<std::net::SocketAddrV4> = found
                            .filter_map(|a| match a {
                                std::net::SocketAddr::V4(v4) => Some(v4),
                                std::net::SocketAddr::V6(_) => None,
                            })
                            .collect();
                        v4.sort();
                        out.extend(
                            v4.into_iter()
                                .map(|a| Address::new(a.ip().to_string(), a.port())),
                        );
                    }
                    Err(e) => tracing::warn!("seed {spec}: cannot resolve: {e}"),
                }
            }
        }
    }
    let mut unique = Vec::new();
    for a in out {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    unique
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        assert_eq!(
            "dns:seeds.default.svc:2551".parse::<SeedSpec>().unwrap(),
            SeedSpec::Dns {
                name: "seeds.default.svc".into(),
                port: 2551
            }
        );
        assert_eq!(
            "10.0.0.1:2551".parse::<SeedSpec>().unwrap(),
            SeedSpec::Fixed(Address::new("10.0.0.1", 2551))
        );
        for bad in [
            "dns:name",
            "dns::2551",
            "dns:name:http",
            "dns:name:0",
            "nohost",
        ] {
            assert!(bad.parse::<SeedSpec>().is_err(), "{bad} must be refused");
        }
    }

    #[tokio::test]
    async fn a_dns_seed_expands_to_the_addresses_the_name_resolves_to() {
        let specs = vec![
            "dns:localhost:2551".parse().unwrap(),
            "10.1.1.1:2552".parse().unwrap(),
            "dns:no-such-host.invalid:2551".parse().unwrap(),
        ];
        let resolved = resolve(&specs).await;
        assert_eq!(
            resolved,
            vec![
                Address::new("127.0.0.1", 2551),
                Address::new("10.1.1.1", 2552)
            ]
        );
    }
}
