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
//! could down a member that had long since come back (seed 6900005929).

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
            }
        }
        self.now = self.now.max(now);
        self.now
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

    /// Total time this member found it had not been running (read by tests; the node
    /// does not export it yet).
    pub fn time_away_ms(&self) -> Millis {
        self.time_away_ms
    }
}
