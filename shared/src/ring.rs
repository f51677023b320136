//! Consistent hashing of users over the routees (Up, reachable members with role
//! `worker`). Each member owns many points on a 64-bit ring, so a member joining or
//! leaving moves only its share of users, and the load spreads evenly. A user's
//! owners are the distinct members met walking clockwise from the user's hash: the
//! first is the owner; the next are where a request goes when the owner does not
//! answer.

use crate::address::Address;
use std::collections::BTreeMap;

/// Points per member on the ring.
const POINTS_PER_MEMBER: u32 = 128;

/// A consistent-hash ring over member addresses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ring {
    points: BTreeMap<u64, Address>,
    members: Vec<Address>,
}

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn hash_text(text: &str, salt: u32) -> u64 {
    // FNV-1a, then a finaliser so nearby strings land far apart.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes().chain(salt.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

impl Ring {
    /// The ring over these members.
    pub fn new(members: impl IntoIterator<Item = Address>) -> Ring {
        let mut members: Vec<Address> = members.into_iter().collect();
        members.sort();
        members.dedup();
        let mut points = BTreeMap::new();
        for m in &members {
            let name = m.to_string();
            for i in 0..POINTS_PER_MEMBER {
                points.insert(hash_text(&name, i), m.clone());
            }
        }
        Ring { points, members }
    }

    /// The members, sorted.
    pub fn members(&self) -> &[Address] {
        &self.members
    }

    /// The user's owners, best first: every member once.
    pub fn owners(&self, user: u32) -> Vec<Address> {
        let start = mix(u64::from(user) ^ 0x5851_f42d_4c95_7f2d);
        let mut out: Vec<Address> = Vec::with_capacity(self.members.len());
        for (_, m) in self.points.range(start..).chain(self.points.range(..start)) {
            if !out.contains(m) {
                out.push(m.clone());
                if out.len() == self.members.len() {
                    break;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(ports: &[u16]) -> Vec<Address> {
        ports
            .iter()
            .map(|p| Address::new("127.0.0.1", *p))
            .collect()
    }

    #[test]
    fn every_user_gets_every_member_once_owner_first() {
        let ring = Ring::new(members(&[1, 2, 3]));
        for user in 0..200 {
            let owners = ring.owners(user);
            assert_eq!(owners.len(), 3);
            let mut sorted = owners.clone();
            sorted.sort();
            assert_eq!(sorted, members(&[1, 2, 3]));
        }
        assert!(Ring::new(vec![]).owners(5).is_empty());
    }

    #[test]
    fn load_spreads_evenly() {
        let ring = Ring::new(members(&[1, 2, 3, 4]));
        let mut count = BTreeMap::new();
        for user in 0..10_000 {
            *count.entry(ring.owners(user)[0].port).or_insert(0) += 1;
        }
        for (_, c) in count {
            assert!((1800..3200).contains(&c), "share {c} of 10000 is uneven");
        }
    }

    #[test]
    fn removing_a_member_moves_only_its_users_to_their_next_owner() {
        let before = Ring::new(members(&[1, 2, 3, 4]));
        let after = Ring::new(members(&[1, 2, 4]));
        for user in 0..2_000 {
            let old = before.owners(user);
            let new = after.owners(user);
            if old[0].port != 3 {
                assert_eq!(old[0], new[0], "user {user} moved though its owner stayed");
            } else {
                assert_eq!(old[1], new[0], "user {user} must go to its next owner");
            }
        }
    }
}
