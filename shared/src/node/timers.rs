//! The member's periodic work: heartbeats, the reaper, gossip and leader rounds,
//! indirect probe rounds, the exiting deadline and the island probe.

use super::{probing, Millis, Node};
use crate::events::ShutdownReason;
use crate::member::MemberStatus;

impl Node {
    pub(super) fn member_tick(&mut self, now: Millis) {
        if now >= self.timers.heartbeat {
            self.send_heartbeats(now);
            self.timers.heartbeat = now + self.settings.heartbeat_interval_ms;
        }
        if self.timers.indirect_probes.is_some_and(|t| now >= t) && self.is_member() {
            self.probe_tick(now);
            self.timers.indirect_probes = Some(now + probing::probe_tick_ms(&self.settings));
        }
        if now >= self.timers.reaper {
            self.reap_unreachable(now);
            self.timers.reaper = now + self.settings.unreachable_nodes_reaper_interval_ms;
        }
        if !self.is_member() {
            return;
        }
        if now >= self.timers.leader {
            self.leader_actions(now);
            self.timers.leader = now + self.settings.leader_actions_interval_ms;
        }
        if !self.is_member() {
            return;
        }
        if now >= self.timers.gossip {
            self.gossip
                .prune_tombstones(now, self.settings.prune_gossip_tombstones_after_ms);
            self.gossip_round();
            // Speed up while fewer than half have seen the current state.
            let speed_up = self.gossip.seen.len() * 2 < self.gossip.members.len();
            self.timers.gossip = if speed_up {
                now + (self.settings.gossip_interval_ms / 3).max(1)
            } else if self.settings.gossip_interval_ms == self.settings.heartbeat_interval_ms {
                // Back in step with the heartbeats, so a tick's gossip shares their message.
                self.timers.heartbeat
            } else {
                now + self.settings.gossip_interval_ms.max(1)
            };
        }
        if self.timers.exiting_deadline.is_some_and(|t| now >= t) {
            self.shut_down(ShutdownReason::Left);
        }
        if let (Some(since), Some(limit)) = (self.joining_since, self.stuck_joining_after()) {
            // WeaklyUp members already serve, so they get twice as long.
            let limit = if self.status() == Some(MemberStatus::WeaklyUp) {
                2 * limit
            } else {
                limit
            };
            if now.saturating_sub(since) > limit
                && self.min_nr_of_members_fulfilled()
                && !self.is_converged()
            {
                // No leader has moved this node Up in far longer than any decision
                // takes: the cluster it joined is gone (its Up members were all downed,
                // or its contacts downed themselves right after letting it in).
                // Restarting to join again costs little.
                self.shut_down(ShutdownReason::Rejoin);
                return;
            }
        }
        if self.timers.probe_seeds.is_some_and(|t| now >= t) {
            let outside = self.seeds_outside_cluster();
            if outside.is_empty() {
                self.timers.probe_seeds = None;
            } else {
                if self.leader().as_ref() == Some(&self.self_node) {
                    self.send_init_joins(&outside);
                }
                self.timers.probe_seeds = Some(now + self.settings.seed_node_timeout_ms);
            }
        }
    }
}
