//! Property tests: gossip merge is a join (commutative, associative, idempotent) on
//! the replicated content (members, reachability, version, tombstones), so replicas
//! converge whatever order gossip arrives in. The seen set is not part of the join:
//! a merge resets it by design (nobody has seen the merged state yet).

use proptest::prelude::*;
use shared::{Address, Gossip, Member, MemberStatus, UniqueAddress};

fn node(i: u8) -> UniqueAddress {
    UniqueAddress::new(
        Address::new("10.0.0.1", 2551 + u16::from(i % 6)),
        u64::from(i % 2),
    )
}

fn arb_gossip() -> impl Strategy<Value = Gossip> {
    let member = (0u8..12, 0usize..7, 0u32..4, any::<bool>());
    let row = (0u8..12, 0u8..12);
    (
        prop::collection::vec(member, 0..8),
        prop::collection::vec(row, 0..6),
        prop::collection::vec((0u8..12, 1u64..5), 0..5),
        prop::collection::vec((0u8..12, 0u64..100), 0..3),
    )
        .prop_map(|(members, rows, clock, tombstones)| {
            let mut g = Gossip::default();
            for (i, status, up, role) in members {
                let status = MemberStatus::ALL[status];
                if status == MemberStatus::Removed {
                    continue;
                }
                let roles = if role {
                    ["api".to_string()].into()
                } else {
                    Default::default()
                };
                let mut m = Member::joining(node(i), roles);
                m.status = status;
                m.up_number = up;
                g.members.insert(node(i), m);
            }
            for (o, s) in rows {
                g.reachability.mark_unreachable(&node(o), &node(s));
            }
            for (n, count) in clock {
                for _ in 0..count {
                    g.version.increment(&node(n));
                }
            }
            for (n, at) in tombstones {
                g.tombstones.insert(node(n), at);
            }
            // A well-formed state: what merging it with nothing gives.
            g.merge(&Gossip::default())
        })
}

fn content(g: &Gossip) -> Gossip {
    Gossip {
        seen: Default::default(),
        ..g.clone()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn merge_is_commutative(a in arb_gossip(), b in arb_gossip()) {
        prop_assert_eq!(content(&a.merge(&b)), content(&b.merge(&a)));
    }

    #[test]
    fn merge_is_associative(a in arb_gossip(), b in arb_gossip(), c in arb_gossip()) {
        prop_assert_eq!(content(&a.merge(&b).merge(&c)), content(&a.merge(&b.merge(&c))));
    }

    #[test]
    fn merge_is_idempotent(a in arb_gossip()) {
        prop_assert_eq!(content(&a.merge(&a)), content(&a));
    }

    #[test]
    fn merge_never_moves_a_member_backwards(a in arb_gossip(), b in arb_gossip()) {
        let merged = a.merge(&b);
        for (n, m) in &merged.members {
            for side in [&a, &b] {
                if let Some(before) = side.member(n) {
                    prop_assert!(before.status.priority() <= m.status.priority());
                }
            }
        }
    }

    #[test]
    fn wire_encoding_round_trips_any_gossip(a in arb_gossip()) {
        let msg = shared::Message::Gossip { from: node(0), to: node(1), gossip: a };
        let bytes = shared::link_form::encode(&msg).unwrap();
        let ends = shared::link_form::LinkEnds { sender: &node(0).address, receiver: &node(1).address };
        prop_assert_eq!(shared::link_form::decode(&bytes, ends).unwrap(), msg);
    }
}
