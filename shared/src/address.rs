//! Node identity: where a node listens (`Address`) and which incarnation of a process
//! is listening there (`UniqueAddress`).
//!
//! A process picks a random `uid` at start. A restarted process at the same `host:port`
//! is a different `UniqueAddress`, so a removed incarnation can never be confused with
//! its successor. Ordering is by host, then port, then uid: "address order" decides the
//! leader and the keep-majority tie-break, so it must be the same on every node.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest host name accepted (DNS limit); keeps decoded messages bounded.
pub const MAX_HOST_LEN: usize = 253;

/// A `host:port` where a node's cluster transport listens.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Address {
    /// Host name or IP literal, as advertised by the node.
    pub host: String,
    /// TCP port of the cluster transport.
    pub port: u16,
}

impl Address {
    /// Builds an address from its parts.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Address {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a string is not a `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressParseError {
    /// There is no `:port` suffix.
    #[error("address `{0}` has no `:port`")]
    MissingPort(String),
    /// The port is not a number from 1 to 65535.
    #[error("address `{0}` has an invalid port")]
    InvalidPort(String),
    /// The host part is empty, too long or contains characters a host name cannot have.
    #[error("address `{0}` has an invalid host")]
    InvalidHost(String),
}

impl FromStr for Address {
    type Err = AddressParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| AddressParseError::MissingPort(text.to_string()))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let host_ok = !host.is_empty()
            && host.len() <= MAX_HOST_LEN
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
        if !host_ok {
            return Err(AddressParseError::InvalidHost(text.to_string()));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| AddressParseError::InvalidPort(text.to_string()))?;
        Ok(Address::new(host, port))
    }
}

/// One incarnation of a node: its address plus the random uid picked at process start.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UniqueAddress {
    /// Where the incarnation listens.
    pub address: Address,
    /// Random per process start; tells incarnations at the same address apart.
    pub uid: u64,
}

impl UniqueAddress {
    /// Builds a unique address.
    pub fn new(address: Address, uid: u64) -> Self {
        UniqueAddress { address, uid }
    }
}

impl fmt::Display for UniqueAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.address, self.uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_host_port() {
        let a: Address = "127.0.0.1:2552".parse().unwrap();
        assert_eq!(a, Address::new("127.0.0.1", 2552));
        assert_eq!(a.to_string(), "127.0.0.1:2552");
        let v6: Address = "[::1]:7000".parse().unwrap();
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.to_string(), "[::1]:7000");
    }

    #[test]
    fn rejects_malformed_addresses() {
        assert!(matches!(
            "nohost".parse::<Address>(),
            Err(AddressParseError::MissingPort(_))
        ));
        assert!(matches!(
            "h:0".parse::<Address>(),
            Err(AddressParseError::InvalidPort(_))
        ));
        assert!(matches!(
            "h:99999".parse::<Address>(),
            Err(AddressParseError::InvalidPort(_))
        ));
        assert!(matches!(
            ":80".parse::<Address>(),
            Err(AddressParseError::InvalidHost(_))
        ));
        assert!(matches!(
            "a b:80".parse::<Address>(),
            Err(AddressParseError::InvalidHost(_))
        ));
    }

    #[test]
    fn address_order_is_host_then_port_then_uid() {
        let a = UniqueAddress::new(Address::new("10.0.0.1", 9), 5);
        let b = UniqueAddress::new(Address::new("10.0.0.1", 10), 1);
        let c = UniqueAddress::new(Address::new("10.0.0.1", 10), 2);
        assert!(a < b && b < c);
    }
}
