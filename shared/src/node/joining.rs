//! Joining: seeking a cluster through the seeds, forming one (first seed only),
//! accepting joiners and welcomes, and the island probe between clusters.

use super::changes::down_at_once;
use super::{Millis, Node, Output, Phase, ProbeAnswer};
use crate::address::{Address, UniqueAddress};
use crate::events::{ClusterEvent, DecisionGrounds, DecisionTrigger, ShutdownReason};
use crate::gossip::Gossip;
use crate::member::{Member, MemberStatus, MAX_ROLES, MAX_ROLE_LEN};
use crate::sbr;
use crate::wire::{Acquaintance, Message};
use std::collections::BTreeSet;

impl Node {
    /// How often a joining node asks the seeds again: a fifth of the seed-node
    /// timeout (200 ms in the demo profile, 1 s with Akka's defaults), so a node that
    /// asked just before the first seed formed the cluster joins soon after.
    pub(super) fn join_retry_interval(&self) -> Millis {
        (self.settings.seed_node_timeout_ms / 5).max(50)
    }

    pub(super) fn start_seeking(&mut self, contacts: Vec<Address>, now: Millis) {
        let i_am_first_seed = self.seeds.first() == Some(&self.self_node.address);
        if i_am_first_seed && self.seeds.len() == 1 {
            self.form_new_cluster(now);
            return;
        }
        let form_self_at = i_am_first_seed.then(|| now + self.settings.seed_node_timeout_ms);
        self.send_init_joins(&contacts);
        self.phase = Phase::Seeking {
            contacts,
            form_self_at,
            next_attempt: now + self.join_retry_interval(),
            nacked: BTreeSet::new(),
        };
    }

    /// Seed addresses (other than this node's) where this cluster has no member.
    pub(super) fn seeds_outside_cluster(&self) -> Vec<Address> {
        self.seeds
            .iter()
            .filter(|s| *s != &self.self_node.address && self.gossip.member_at(s).is_none())
            .cloned()
            .collect()
    }

    pub(super) fn send_init_joins(&mut self, contacts: &[Address]) {
        for contact in contacts {
            if contact != &self.self_node.address {
                self.send(
                    contact.clone(),
                    Message::InitJoin {
                        from: self.self_node.clone(),
                        cluster: self.settings.cluster_name.clone(),
                    },
                );
            }
        }
    }

    /// The first seed found no running cluster: it joins itself.
    pub(super) fn form_new_cluster(&mut self, now: Millis) {
        let old = std::mem::take(&mut self.gossip);
        self.gossip =
            Gossip::with_member(Member::joining(self.self_node.clone(), self.roles.clone()));
        self.gossip.bump(&self.self_node);
        self.phase = Phase::Member;
        self.start_member_clock(now);
        self.after_change(&old, now);
    }

    pub(super) fn on_init_join(&mut self, from: UniqueAddress, cluster: String) {
        if cluster != self.settings.cluster_name {
            self.refuse(&from, format!("cluster name `{cluster}` does not match"));
            return;
        }
        // A removed incarnation still gets an Ack: if it is joining, its Join is then
        // answered with Quarantined (see `on_join`); if it is a member of another
        // cluster probing for islands, the Ack's size is what it needs (seed 2280).
        let accepting = self.is_member() && self.status().is_some_and(|s| !s.is_departing());
        let reply = if accepting {
            Message::InitJoinAck {
                from: self.self_node.clone(),
                cluster_size: self.live_member_count(),
                lowest_member: self.lowest_member(),
                lineage: self.gossip.lineage,
                knows_you: self.acquaintance(&from),
            }
        } else {
            Message::InitJoinNack {
                from: self.self_node.clone(),
            }
        };
        self.send(from.address, reply);
    }

    pub(super) fn refuse(&mut self, to: &UniqueAddress, reason: String) {
        self.send(
            to.address.clone(),
            Message::JoinRefused {
                from: self.self_node.clone(),
                reason,
            },
        );
    }

    /// Members that count when islands compare sizes: neither Down nor Exiting.
    pub(super) fn live_member_count(&self) -> u32 {
        let live = self
            .gossip
            .members
            .values()
            .filter(|m| !m.status.is_departing());
        live.count() as u32
    }

    pub(super) fn lowest_member(&self) -> Address {
        self.gossip
            .members
            .keys()
            .next()
            .map_or_else(|| self.self_node.address.clone(), |n| n.address.clone())
    }

    pub(super) fn on_init_join_nack(&mut self, from: UniqueAddress, now: Millis) {
        let Phase::Seeking {
            form_self_at: Some(_),
            nacked,
            ..
        } = &mut self.phase
        else {
            return;
        };
        nacked.insert(from.address);
        let me = &self.self_node.address;
        let all_nacked = self
            .seeds
            .iter()
            .filter(|s| *s != me)
            .all(|s| nacked.contains(s));
        if all_nacked {
            self.form_new_cluster(now);
        }
    }

    /// What our view holds of `node` (told to a member that probes us).
    pub(super) fn acquaintance(&self, node: &UniqueAddress) -> Acquaintance {
        match self.gossip.member(node) {
            Some(m) if m.status != MemberStatus::Down => Acquaintance::Member,
            Some(_) => Acquaintance::Gone,
            None if self.gossip.tombstones.contains_key(node) => Acquaintance::Gone,
            None => Acquaintance::Stranger,
        }
    }

    /// Whether a probe answer of our own lineage is our own cluster, seen from a view
    /// that has not merged with ours yet (or an old incarnation's stale view of it),
    /// rather than an island that parted from us.
    pub(super) fn is_our_cluster(
        &mut self,
        from: &UniqueAddress,
        answer: &ProbeAnswer,
        now: Millis,
    ) -> bool {
        if answer.lineage != self.gossip.lineage {
            return false;
        }
        let strangers = &mut self.strangers_since;
        strangers.retain(|n, _| self.gossip.member_at(&n.address).is_none());
        match answer.knows_you {
            // It holds us as a member: one cluster, views not merged yet (seen in a
            // five-process start where a member joined through another, and its
            // view's lowest member was itself: the prober downed its whole cluster).
            Acquaintance::Member => true,
            // It holds us Down or removed: two clusters of one lineage (seed 63366381).
            Acquaintance::Gone => false,
            // Neither knows the other. Its lowest member is one of ours: a stale view
            // of this cluster (seed 63366856; another cluster may hold a stale entry
            // for a member of ours that never took its welcome). Otherwise it may be a
            // member that joined through another while we did not hear of it; gossip
            // brings it into our view within rounds, so it is an island only once it
            // has stayed outside for three seed-node timeouts.
            Acquaintance::Stranger => {
                if self.gossip.member_at(&answer.lowest_member).is_some() {
                    return true;
                }
                let since = *strangers.entry(from.clone()).or_insert(now);
                now < since + 3 * self.settings.seed_node_timeout_ms
            }
        }
    }

    pub(super) fn on_init_join_ack(
        &mut self,
        from: UniqueAddress,
        answer: ProbeAnswer,
        now: Millis,
    ) {
        if self.is_member() && self.is_our_cluster(&from, &answer, now) {
            // Not another cluster. (An incarnation we removed that still holds a view
            // of ours is told so. Its uid being one of our tombstones says nothing on
            // its own: an island may have downed a node that lives on elsewhere.)
            self.quarantine_if_gone(&from);
            return;
        }
        let ProbeAnswer {
            cluster_size,
            lowest_member,
            ..
        } = answer;
        if self.is_member() && !self.gossip.has_member(&from) {
            // A seed answered a probe from another cluster: one of the two is an
            // island (formed, or left over, while the other was unreachable). The
            // smaller one yields (ties: the one whose lowest member address is higher)
            // by downing all its members; supervisors restart them into the other.
            let ours = (
                self.live_member_count(),
                std::cmp::Reverse(self.lowest_member()),
            );
            let theirs = (cluster_size, std::cmp::Reverse(lowest_member));
            if theirs > ours {
                if self.gossip.members.len() == 1 {
                    self.shut_down(ShutdownReason::Rejoin);
                } else {
                    let everyone: BTreeSet<UniqueAddress> =
                        self.gossip.members.keys().cloned().collect();
                    self.outputs
                        .push(Output::Event(ClusterEvent::ResolverDecision {
                            decision: sbr::Decision::DownAll,
                            downed: everyone.iter().cloned().collect(),
                            indirectly_connected: Vec::new(),
                            grounds: Some(Box::new(DecisionGrounds {
                                strategy: self.settings.downing.strategy.clone(),
                                trigger: DecisionTrigger::LargerClusterFound,
                                unreachable: Vec::new(),
                                weighing: None,
                            })),
                        }));
                    self.down_members(now, &everyone);
                }
            }
            return;
        }
        if let Phase::Seeking { .. } = self.phase {
            self.send(
                from.address.clone(),
                Message::Join {
                    node: self.self_node.clone(),
                    roles: self.roles.clone(),
                    cluster: self.settings.cluster_name.clone(),
                },
            );
            self.phase = Phase::AwaitingWelcome {
                contact: from.address,
                give_up_at: now + self.settings.retry_unsuccessful_join_after_ms,
            };
        }
    }

    pub(super) fn on_join(
        &mut self,
        node: UniqueAddress,
        roles: BTreeSet<String>,
        cluster: String,
        now: Millis,
    ) {
        if cluster != self.settings.cluster_name {
            self.refuse(&node, format!("cluster name `{cluster}` does not match"));
            return;
        }
        if roles.len() > MAX_ROLES || roles.iter().any(|r| r.is_empty() || r.len() > MAX_ROLE_LEN) {
            self.refuse(&node, "roles out of bounds".into());
            return;
        }
        if !self.is_member() || self.status().is_some_and(|s| s.is_departing()) {
            return;
        }
        if self.gossip.tombstones.contains_key(&node) {
            // Removed before it ever got its welcome: it must restart as a new one.
            self.quarantine_if_gone(&node);
            return;
        }
        if !self.gossip.has_member(&node) {
            let previous = self
                .gossip
                .member_at(&node.address)
                .filter(|m| m.node != node)
                .map(|m| m.node.clone());
            self.change(now, |g, me| {
                if let Some(old) = &previous {
                    // A new incarnation at the same address: the old one is gone for
                    // sure, so it is downed (and so removed) at once.
                    down_at_once(g, me, old);
                }
                g.members
                    .insert(node.clone(), Member::joining(node.clone(), roles));
            });
        }
        if self.is_member() {
            self.send(
                node.address.clone(),
                Message::Welcome {
                    from: self.self_node.clone(),
                    to: node,
                    gossip: self.gossip.clone(),
                },
            );
        }
    }

    pub(super) fn on_welcome(
        &mut self,
        _from: UniqueAddress,
        to: UniqueAddress,
        gossip: Gossip,
        now: Millis,
    ) {
        let waiting = matches!(
            self.phase,
            Phase::AwaitingWelcome { .. } | Phase::Seeking { .. }
        );
        if !waiting || to != self.self_node || !gossip.has_member(&self.self_node) {
            return;
        }
        let old = std::mem::take(&mut self.gossip);
        self.gossip = gossip;
        self.gossip.mark_seen(&self.self_node);
        self.phase = Phase::Member;
        self.start_member_clock(now);
        self.after_change(&old, now);
    }
}
