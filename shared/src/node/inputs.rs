//! The node's inputs: timers coming due, messages, seed-list updates and commands.
//! Each entry point advances the clock and hands the input to the section it is for.

use super::{Command, CommandError, Millis, Node, Output, Phase, ProbeAnswer};
use crate::address::{Address, UniqueAddress};
use crate::events::{ClusterEvent, ShutdownReason};
use crate::member::{Member, MemberStatus};
use crate::wire::Message;

impl Node {
    /// Runs every timer that is due at `now`.
    pub fn tick(&mut self, now: Millis) {
        let now = self.advance_clock(now);
        match self.phase.clone() {
            Phase::Stopped(_) | Phase::Idle => {}
            Phase::Seeking {
                contacts,
                form_self_at,
                next_attempt,
                ..
            } => {
                if form_self_at.is_some_and(|t| now >= t) {
                    self.form_new_cluster(now);
                } else if now >= next_attempt {
                    self.send_init_joins(&contacts);
                    let retry_at = now + self.join_retry_interval();
                    if let Phase::Seeking { next_attempt, .. } = &mut self.phase {
                        *next_attempt = retry_at;
                    }
                }
            }
            Phase::AwaitingWelcome { give_up_at, .. } => {
                if now >= give_up_at {
                    let contacts = if self.seeds.is_empty() {
                        match &self.phase {
                            Phase::AwaitingWelcome { contact, .. } => vec![contact.clone()],
                            _ => Vec::new(),
                        }
                    } else {
                        self.seeds.clone()
                    };
                    self.start_seeking(contacts, now);
                }
            }
            Phase::Member => self.member_tick(now),
        }
    }

    /// Handles one message from the network.
    pub fn handle_message(&mut self, now: Millis, message: Message) {
        let now = self.advance_clock(now);
        if matches!(self.phase, Phase::Stopped(_)) {
            return;
        }
        match message {
            Message::InitJoin { from, cluster } => self.on_init_join(from, cluster),
            Message::InitJoinAck {
                from,
                cluster_size,
                lowest_member,
                lineage,
                knows_you,
            } => {
                let answer = ProbeAnswer {
                    cluster_size,
                    lowest_member,
                    lineage,
                    knows_you,
                };
                self.on_init_join_ack(from, answer, now)
            }
            Message::InitJoinNack { from } => self.on_init_join_nack(from, now),
            Message::Join {
                node,
                roles,
                cluster,
            } => self.on_join(node, roles, cluster, now),
            Message::Welcome { from, to, gossip } => self.on_welcome(from, to, gossip, now),
            Message::JoinRefused { from, reason } => {
                if !self.is_member() {
                    self.outputs.push(Output::Event(ClusterEvent::JoinRefused {
                        by: from.address,
                        reason,
                    }));
                }
            }
            Message::Gossip { from, to, gossip } => self.on_gossip(from, to, gossip, now),
            Message::GossipStatus {
                from,
                to,
                version_digest,
                seen_digest,
            } => self.on_gossip_status(from, to, version_digest, seen_digest),
            Message::Heartbeat { from, seq } => self.on_heartbeat(from, seq),
            Message::HeartbeatRsp { from, seq } => {
                if self.monitor.is_monitoring(&from) {
                    self.monitor.heartbeat(&from, now);
                }
                self.on_probe_answer(&from, seq);
            }
            Message::Probe { from, seq } => self.on_probe(from, seq),
            Message::ProbeRequest {
                from,
                target,
                round,
            } => self.on_probe_request(from, target, round, now),
            Message::ProbeReport {
                from,
                target,
                round,
                reached,
            } => self.on_probe_report(from, target, round, reached, now),
            Message::Quarantined { from, to } if to == self.self_node => {
                if !self.is_member() {
                    // Still joining, but the cluster already removed this incarnation.
                    self.shut_down(ShutdownReason::Rejoin);
                } else if self.gossip.has_member(&from) {
                    let reason = self.reason_for_removal();
                    self.shut_down(reason);
                }
            }
            Message::Quarantined { .. } => {}
            Message::Elsewhere { from, to } if to == self.self_node => self.on_elsewhere(from, now),
            Message::Elsewhere { .. } => {}
        }
    }

    /// The transport found nothing listening at `address` (the connection was refused,
    /// so the process there has exited). A Joining, WeaklyUp or Up member at that
    /// address (a leaving one exits by design) is marked
    /// unreachable by this node at once, without waiting for phi, and watched from
    /// then on even if this node did not monitor it. This is only an observation, and
    /// unreachable is not down: downing still goes through the resolver and its
    /// stable-after. A firewall that rejects rather than drops can fake the evidence;
    /// that looks like a partition, and the member is reachable again as soon as it
    /// answers a heartbeat.
    pub fn peer_refused(&mut self, now: Millis, address: &Address) {
        let now = self.advance_clock(now);
        if !self.is_member() {
            return;
        }
        let gone: Vec<UniqueAddress> = self
            .gossip
            .members
            .values()
            .filter(|m| &m.node.address == address && m.node != self.self_node)
            // A member on its way out (Leaving, Exiting) ends its process by design,
            // and a Down one is already decided: only a live member's death is news.
            .filter(|m| m.status.is_staying())
            .map(|m| m.node.clone())
            .collect();
        if gone.is_empty() {
            return;
        }
        for node in &gone {
            self.monitor.refused(node, now);
        }
        self.reap_unreachable(now);
    }

    /// Replaces the seed list (for seeds given as a DNS name, re-resolved while
    /// joining). A node still looking for its cluster asks the new seeds from its next
    /// attempt on; whether it may form a cluster itself follows the new list (only the
    /// first seed may). A member ignores its seeds except to probe for islands.
    pub fn update_seeds(&mut self, now: Millis, seeds: Vec<Address>) {
        let mut unique: Vec<Address> = Vec::new();
        for seed in seeds {
            if !unique.contains(&seed) {
                unique.push(seed);
            }
        }
        if unique == self.seeds {
            return;
        }
        self.seeds = unique;
        let first = self.seeds.first() == Some(&self.self_node.address);
        let timeout = self.settings.seed_node_timeout_ms;
        match &mut self.phase {
            Phase::Seeking {
                contacts,
                form_self_at,
                ..
            } => {
                *contacts = self.seeds.clone();
                match (first, form_self_at.is_some()) {
                    (true, false) => *form_self_at = Some(now + timeout),
                    (false, true) => *form_self_at = None,
                    _ => {}
                }
            }
            Phase::Idle if !self.seeds.is_empty() => self.start_seeking(self.seeds.clone(), now),
            _ => {}
        }
    }

    /// Applies an operator or application command.
    pub fn handle_command(&mut self, now: Millis, command: Command) -> Result<(), CommandError> {
        let now = self.advance_clock(now);
        if matches!(self.phase, Phase::Stopped(_)) {
            return Err(CommandError::Stopped);
        }
        match command {
            Command::Join(contact) => {
                if self.phase != Phase::Idle {
                    return Err(CommandError::AlreadyJoining);
                }
                self.start_seeking(vec![contact], now);
                Ok(())
            }
            Command::Leave(address) => {
                let member = self.member_at(&address)?;
                if !member.status.is_staying() {
                    if member.status == MemberStatus::Leaving
                        || member.status == MemberStatus::Exiting
                    {
                        return Ok(());
                    }
                    return Err(CommandError::NotAllowed(address, member.status, "leave"));
                }
                let node = member.node.clone();
                self.change(now, |g, _| {
                    g.move_member(&node, MemberStatus::Leaving);
                });
                Ok(())
            }
            Command::Down(address) => {
                let member = self.member_at(&address)?;
                if member.status == MemberStatus::Down {
                    return Ok(());
                }
                let node = member.node.clone();
                self.down_members(now, &[node].into());
                Ok(())
            }
        }
    }

    pub(super) fn member_at(&self, address: &Address) -> Result<Member, CommandError> {
        if !self.is_member() {
            return Err(CommandError::NotAMember);
        }
        self.gossip
            .member_at(address)
            .cloned()
            .ok_or_else(|| CommandError::UnknownMember(address.clone()))
    }
}
