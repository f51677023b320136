//! Local health: a member notices when it did not run on time (a paused process, a
//! starved CPU) and does not hold its own absence against others.
//!
//! Every input carries the time. A member's timers are due at `next_deadline`, so an
//! input that arrives well after it shows that the process was not running: the
//! silence of its peers over that stretch was its own. Each detector is excused that
//! much (phi leaves it out, and the interval it would have learned is not learned), so
//! a woken or starved member accuses nobody for its own absence and keeps detecting
//! real failures at the usual speed. A member that was away longer than the acceptable
//! heartbeat pause also restarts its resolver's stable period: while it slept the
//! others may have changed what its view still shows, and a decision on that view
//! could down a member that had long since come back (seed 6900005929). For a full
//! stable-after it also takes no decision on proofs of death, which do not wait for a
//! stable view (seed 6200006309).

use super::{Millis, Node, Phase};

impl Node {
    /// Moves this node's clock to `now`, first excusing any time it was not running.
    pub(super) fn advance_clock(&mut self, now: Millis) -> Millis {
        let away = self.away_for(now);
        if away > 0 {
            self.absent_through = now;
            self.time_away_ms += away;
            self.monitor.excuse(away);
            self.probes.forget_rounds();
            if away > self.settings.acceptable_heartbeat_pause_ms {
                self.stability.restart(now);
                self.pending_decision = None;
                self.woke_from_long_absence_at = Some(now);
            }
        }
        self.now = self.now.max(now);
        self.now
    }

    /// Whether this member woke from a long absence less than a full stable-after ago.
    /// Meanwhile it takes no decision on proofs of death: the others may have downed
    /// it while it slept, and a partition that rejects (fake proofs) would keep that
    /// news from it (seed 6200006309 with the corroborated stable-after: n0, frozen
    /// 2.7 s, was downed by n1; woken into a rejecting partition, it downed n1 and n3
    /// on their refusals 40 ms later). The normal path waits for a fresh stable view.
    pub(super) fn just_woke_from_long_absence(&self, now: Millis) -> bool {
        self.woke_from_long_absence_at
            .is_some_and(|at| now < at + self.settings.downing.stable_after_ms)
    }

    /// A node that has just become a member runs its member timers from now on: the
    /// ones it was created with came due while it was joining, which is not time away.
    pub(super) fn start_member_clock(&mut self, now: Millis) {
        self.absent_through = self.absent_through.max(now);
    }

    /// How long past its due time (and past any absence already excused) a member's
    /// input arrives, if by more than a quarter heartbeat interval; otherwise 0.
    fn away_for(&self, now: Millis) -> Millis {
        if self.phase != Phase::Member {
            return 0;
        }
        let Some(due) = self.next_deadline() else {
            return 0;
        };
        let late = now.saturating_sub(due.max(self.absent_through));
        if late > self.settings.heartbeat_interval_ms / 4 {
            late
        } else {
            0
        }
    }

    /// Total time this member found it had not been running (also in `snapshot`, and
    /// so in the node's `/metrics`).
    pub fn time_away_ms(&self) -> Millis {
        self.time_away_ms
    }
}
