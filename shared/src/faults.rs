//! What each link control means, planned in one place for the demo launcher and the
//! page: which node's fault table gets which entry. A fault is set at both ends of
//! the link (one end may be down; the other still applies it), except a one-way cut,
//! which only its sender drops. A partition is a cut from the node to every other,
//! and healing a node heals each of its links at both ends.

use crate::api::{LinkFault, LinkKind};

/// Delay of a slow link (ms), each way.
pub const SLOW_DELAY_MS: u64 = 300;
/// Random extra delay of a slow link, up to (ms).
pub const SLOW_JITTER_MS: u64 = 100;
/// Share of the messages a lossy link drops, each way.
pub const LOSS: f64 = 0.3;

/// Which end of a link a fault entry is set on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The `from` node: its entry is about `to`.
    From,
    /// The `to` node: its entry is about `from`.
    To,
}

/// The fault table entries that `kind` on the link `from` - `to` sets: on which end,
/// and the fault toward the other end.
pub fn link_entries(kind: LinkKind) -> Vec<(End, LinkFault)> {
    let both = |fault: LinkFault| vec![(End::From, fault.clone()), (End::To, fault)];
    match kind {
        LinkKind::Cut => both(LinkFault {
            cut_outbound: true,
            cut_inbound: true,
            ..LinkFault::default()
        }),
        LinkKind::OneWay => vec![
            (
                End::From,
                LinkFault {
                    cut_outbound: true,
                    ..LinkFault::default()
                },
            ),
            // Whatever the other end held toward `from` is cleared.
            (End::To, LinkFault::default()),
        ],
        LinkKind::Slow => both(LinkFault {
            delay_ms: SLOW_DELAY_MS,
            jitter_ms: SLOW_JITTER_MS,
            ..LinkFault::default()
        }),
        LinkKind::Lossy => both(LinkFault {
            loss: LOSS,
            ..LinkFault::default()
        }),
        LinkKind::Heal => both(LinkFault::default()),
    }
}

/// The links a node-wide control touches: `node` against each of `others` (never
/// itself), with the kind each gets. Partition cuts them all; heal heals them all.
pub fn node_links<'a, N: PartialEq>(
    kind: LinkKind,
    node: &'a N,
    others: &'a [N],
) -> impl Iterator<Item = (&'a N, &'a N, LinkKind)> + 'a {
    others
        .iter()
        .filter(move |other| *other != node)
        .map(move |other| (node, other, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_is_set_on_both_ends_and_a_one_way_cut_drops_only_at_its_sender() {
        let cut = link_entries(LinkKind::Cut);
        assert_eq!(cut.len(), 2);
        assert!(cut.iter().all(|(_, f)| f.cut_outbound && f.cut_inbound));
        let one_way = link_entries(LinkKind::OneWay);
        assert!(one_way
            .iter()
            .any(|(end, f)| *end == End::From && f.cut_outbound && !f.cut_inbound));
        assert!(one_way
            .iter()
            .any(|(end, f)| *end == End::To && *f == LinkFault::default()));
        assert!(link_entries(LinkKind::Heal)
            .iter()
            .all(|(_, f)| *f == LinkFault::default()));
        assert!(link_entries(LinkKind::Lossy)
            .iter()
            .all(|(_, f)| f.loss == LOSS));
    }

    #[test]
    fn a_partition_cuts_the_node_from_every_other_and_never_from_itself() {
        let nodes = ["a", "b", "c"];
        let links: Vec<_> = node_links(LinkKind::Cut, &"b", &nodes).collect();
        assert_eq!(
            links,
            vec![(&"b", &"a", LinkKind::Cut), (&"b", &"c", LinkKind::Cut)]
        );
    }
}
