//! The split-brain resolver: turns the observation "unreachable" into the decision
//! "down", the same way on every side of a partition.
//!
//! Crashes and partitions look alike to an observer, so the resolver waits until
//! membership and reachability have been stable for `stable_after`, then each side's
//! leader applies the strategy to its own view: keep-majority, static-quorum,
//! keep-oldest or down-all. Members that are unreachable over some links only
//! (indirectly connected) are downed and the fully connected side kept. If the view
//! never settles, everyone is downed (`down_all_when_unstable`) rather than letting
//! two sides live on.

use crate::address::UniqueAddress;
use crate::failure_detector::ring_monitors;
use crate::gossip::Gossip;
use crate::member::{Member, MemberStatus};
use crate::settings::{DowningSettings, DowningStrategy};
use crate::vclock::Fnv;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What the resolver decided for this side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Our side survives; the unreachable members are downed.
    DownUnreachable,
    /// Our side loses; every reachable member, this node included, is downed.
    DownReachable,
    /// Everyone is downed.
    DownAll,
    /// Only the indirectly connected members are downed.
    DownIndirectlyConnected,
    /// Broken links that this node cannot weigh safely: it downs only itself, and the
    /// next leader decides on its own view.
    DownSelf,
    /// Members whose death enough observers proved first-hand (their address refused
    /// connections) are downed without waiting for stable-after.
    DownProvenDead,
}

/// A decision and the members it downs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// What was decided.
    pub decision: Decision,
    /// Members to mark Down.
    pub to_down: BTreeSet<UniqueAddress>,
    /// Members found indirectly connected (also in `to_down`).
    pub indirectly_connected: BTreeSet<UniqueAddress>,
    /// The sides as the strategy weighed them, when it did.
    pub weighing: Option<Weighing>,
}

/// What the strategy weighed: the members it counted for this side against the total
/// both sides weigh against (deviation 2 in ALGORITHM.md). For a proof of death, "ours"
/// are the witnesses whose connections were refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weighing {
    /// Counted for this side.
    pub ours: Vec<UniqueAddress>,
    /// The total they were weighed against.
    pub total: Vec<UniqueAddress>,
    /// The oldest member of the total (what keep-oldest goes by).
    pub oldest: Option<UniqueAddress>,
}

impl Weighing {
    fn of(ours: &[&Member], total: &[&Member]) -> Self {
        let nodes = |members: &[&Member]| members.iter().map(|m| m.node.clone()).collect();
        Weighing {
            ours: nodes(ours),
            total: nodes(total),
            oldest: total
                .iter()
                .min_by(|a, b| a.age_cmp(b))
                .map(|m| m.node.clone()),
        }
    }
}

/// Members that may still be downed: everything not already Down or Exiting.
fn downable(m: &Member) -> bool {
    !m.status.is_departing()
}

/// Members that are unreachable over some links only, as this view shows them.
///
/// A record (observer sees subject unreachable) is a broken link rather than a
/// partition or a crash when there is fresh evidence that the subject still talks to
/// this side: the subject has seen the current gossip version (it got our latest state
/// somehow), or a member on this side that monitors the subject on the heartbeat ring
/// does not see it unreachable. Both ends of such a record are indirectly connected.
/// For a record about `self_node`, the evidence is that the observer has seen the
/// current version (a node has always seen its own state, so that test says nothing).
///
/// Akka also counts every observer that is itself unreachable (a cycle in the
/// unreachability graph). That rule trusts records written before a partition: with a
/// one-way cut between two survivors of a crash, each side then counted the other as
/// indirectly connected, left it out of the count, and both kept running (the
/// simulator found this, seed 80). Without the monitor test, a node cut from two of
/// four members took a 2|2 "partition" for real and kept itself while the others
/// downed it (seed 2785). A voucher must have answered heartbeats recently: one
/// across a partition not yet detected would vouch with stale rows (seed 611).
pub fn indirectly_connected(
    gossip: &Gossip,
    self_node: &UniqueAddress,
    monitored_by: usize,
    fresh: &dyn Fn(&UniqueAddress) -> bool,
) -> BTreeSet<UniqueAddress> {
    let live = |n: &UniqueAddress| gossip.member(n).is_some_and(downable);
    let unreachable = gossip.unreachable_excluding_downed_observers();
    let live_members: BTreeSet<UniqueAddress> =
        gossip.members.keys().filter(|n| live(n)).cloned().collect();
    // A member on our side, heard from recently (so its rows are current), that
    // monitors `subject` and still reaches it.
    let vouched = |subject: &UniqueAddress| {
        ring_monitors(&live_members, subject, monitored_by)
            .iter()
            .any(|m| {
                m != self_node
                    && !unreachable.contains(m)
                    && fresh(m)
                    && gossip.reachability.is_reachable_by(m, subject)
            })
    };
    let mut result = BTreeSet::new();
    for (observer, subject) in gossip.reachability.unreachable_pairs() {
        if !live(observer) || !live(subject) {
            continue;
        }
        let evidence = if subject == self_node {
            observer != self_node && gossip.seen_by(observer)
        } else {
            gossip.seen_by(subject) || vouched(subject)
        };
        if evidence {
            result.insert(observer.clone());
            result.insert(subject.clone());
        }
    }
    result
}

/// Whether every unreachable member in `gossip` (other than `self_node`) is marked by
/// as many observers as can watch it: all the members it is not cut off from, up to
/// `monitored_by`, and at least two. Several observers agreeing, each after its own
/// probes, is stronger evidence than one, and the resolver then waits
/// `DowningSettings::corroborated_stable_after_ms` rather than the full stable-after.
/// A member cut off from the rest is the only observer of everyone it lost, so its
/// own view is never corroborated.
pub fn corroborated(gossip: &Gossip, self_node: &UniqueAddress, monitored_by: usize) -> bool {
    let unreachable = gossip.unreachable_excluding_downed_observers();
    let live =
        |n: &&UniqueAddress| gossip.member(n).is_some_and(downable) && !unreachable.contains(*n);
    let subjects: Vec<&UniqueAddress> = unreachable
        .iter()
        .filter(|n| *n != self_node && gossip.member(n).is_some_and(downable))
        .collect();
    !subjects.is_empty()
        && subjects.iter().all(|subject| {
            let watchers = gossip.members.keys().filter(live).count();
            let needed = watchers.min(monitored_by).max(2);
            let observers = gossip.reachability.observers_of(subject);
            observers.iter().filter(live).count() >= needed
        })
}

/// Applies the strategy to `gossip` as `self_node` sees it. Returns `None` when nothing
/// is unreachable.
pub fn decide(
    gossip: &Gossip,
    self_node: &UniqueAddress,
    settings: &DowningSettings,
) -> Option<Resolution> {
    decide_with_evidence(gossip, self_node, settings, usize::MAX, |_| true)
}

/// As [`decide`], with the heartbeat ring's `monitored_by` (who monitors whom, for the
/// indirect-connection test) and a member counting for our side only if `fresh` says
/// this node heard from it recently. A view can still show a member reachable that has just
/// gone silent (its detector learned a slow link and is slow to suspect); counting it
/// would let both sides claim it.
pub fn decide_with_evidence(
    gossip: &Gossip,
    self_node: &UniqueAddress,
    settings: &DowningSettings,
    monitored_by: usize,
    fresh: impl Fn(&UniqueAddress) -> bool,
) -> Option<Resolution> {
    let unreachable: BTreeSet<UniqueAddress> = gossip
        .unreachable_excluding_downed_observers()
        .into_iter()
        .filter(|n| n != self_node && gossip.member(n).is_some_and(downable))
        .collect();
    let indirect = indirectly_connected(gossip, self_node, monitored_by, &fresh);
    if unreachable.is_empty() && indirect.is_empty() {
        return None;
    }
    let clean_unreachable: BTreeSet<UniqueAddress> =
        unreachable.difference(&indirect).cloned().collect();
    let role_ok = |m: &Member| settings.role.as_ref().is_none_or(|r| m.has_role(r));
    let counted = |m: &Member| role_ok(m) && (&m.node == self_node || fresh(&m.node));
    if clean_unreachable.is_empty() {
        return Some(resolve_broken_links(
            gossip, self_node, &indirect, settings, &role_ok, &counted,
        ));
    }
    // A partition as well. Our side counts only its reachable Up members that are not
    // indirectly connected (Leaving ones may already be Exiting over there).
    let total = weighed_total(gossip, &clean_unreachable, &role_ok);
    let ours: Vec<&Member> = gossip
        .members
        .values()
        .filter(|m| m.status == MemberStatus::Up && counted(m))
        .filter(|m| !clean_unreachable.contains(&m.node) && !indirect.contains(&m.node))
        .collect();
    let reachable_side: Vec<&Member> = gossip
        .members
        .values()
        .filter(|m| {
            downable(m) && !clean_unreachable.contains(&m.node) && !indirect.contains(&m.node)
        })
        .collect();
    let decision = strategy_decision(&ours, &total, settings);
    let mut to_down: BTreeSet<UniqueAddress> = match decision {
        Decision::DownUnreachable => clean_unreachable,
        Decision::DownReachable => reachable_side.iter().map(|m| m.node.clone()).collect(),
        Decision::DownAll => gossip
            .members
            .values()
            .filter(|m| downable(m))
            .map(|m| m.node.clone())
            .collect(),
        Decision::DownIndirectlyConnected | Decision::DownSelf | Decision::DownProvenDead => {
            BTreeSet::new()
        }
    };
    to_down.extend(indirect.iter().cloned());
    Some(Resolution {
        decision,
        to_down,
        indirectly_connected: indirect,
        weighing: Some(Weighing::of(&ours, &total)),
    })
}

/// Whether `self_node`'s side is outweighed by the members it cannot reach: it loses
/// under the strategy even counting every Up or Leaving member its view shows
/// reachable, fresh or not, indirectly connected or not, against the smallest total (no
/// joiner counted), while the unreachable members, with every once-Up member this view
/// holds Down (the far side may not know of those downs), would pass it. Only such a far
/// side can down us, and no decision on this view can keep us: the test a node applies
/// before it downs its side without waiting for stable-after.
pub fn outweighed_by_the_unreachable(
    gossip: &Gossip,
    self_node: &UniqueAddress,
    settings: &DowningSettings,
) -> bool {
    let unreachable: BTreeSet<UniqueAddress> = gossip
        .unreachable_excluding_downed_observers()
        .into_iter()
        .filter(|n| n != self_node)
        .collect();
    let role_ok = |m: &Member| settings.role.as_ref().is_none_or(|r| m.has_role(r));
    let total = weighed_total(gossip, &BTreeSet::new(), &role_ok);
    let ours: Vec<&Member> = gossip
        .members
        .values()
        .filter(|m| matches!(m.status, MemberStatus::Up | MemberStatus::Leaving) && role_ok(m))
        .filter(|m| !unreachable.contains(&m.node))
        .collect();
    let far: Vec<&Member> = gossip
        .members
        .values()
        .filter(|m| role_ok(m))
        .filter(|m| match m.status {
            MemberStatus::Down => m.up_number > 0,
            _ => unreachable.contains(&m.node) && m.status.is_staying(),
        })
        .collect();
    let loses = |side: &[&Member]| {
        matches!(
            strategy_decision(side, &total, settings),
            Decision::DownReachable | Decision::DownAll
        )
    };
    loses(&ours) && !loses(&far)
}

/// The fast path: members whose process is proven gone, downed with no wait for
/// stable-after. `self_node` must hold the proof itself (its own row says the member's
/// address refused a connection after its last answer), and the members whose rows say
/// the same, heard from recently (`fresh`) and reachable, must be a side that the
/// strategy keeps against the whole cluster (every joiner counted, as if the far side
/// had moved it Up), as if they were the only survivors, and a majority of it as well. Without the majority, a keep-oldest oldest that a rejecting
/// firewall cut off for a moment downed the rest within a heartbeat (seed 653), where
/// stable-after would have outwaited the blip.
///
/// A firewall that rejects can fake the proof, so it is weighed like a partition: the
/// far side of a rejecting partition holds proofs against our side too, but only one
/// side can pass the strategy (their totals are the same, see `weighed_total`), and a
/// side made only of members with proofs is no larger than the side it stands for. A
/// stale row (an observer that has since heard from the member again) can only shrink
/// the side next time, and every observer's own rows clear with the member's first
/// answer. Down-all never takes this path: its rule downs everyone, not the dead.
pub fn decide_on_proof_of_death(
    gossip: &Gossip,
    self_node: &UniqueAddress,
    settings: &DowningSettings,
    fresh: impl Fn(&UniqueAddress) -> bool,
) -> Option<Resolution> {
    if settings.strategy == DowningStrategy::DownAll {
        return None;
    }
    let majority = DowningSettings {
        strategy: DowningStrategy::KeepMajority,
        ..settings.clone()
    };
    let role_ok = |m: &Member| settings.role.as_ref().is_none_or(|r| m.has_role(r));
    let unreachable = gossip.unreachable_excluding_downed_observers();
    // Every joiner counts in the total, as if on the far side: one that the far side
    // has moved Up already would otherwise be missing here (seed 6200006309: a joiner
    // across a fresh rejecting partition, not yet seen unreachable, was left out, and
    // both sides downed the other).
    let everyone: BTreeSet<UniqueAddress> = gossip.members.keys().cloned().collect();
    let witness = |m: &Member, dead: &UniqueAddress| {
        m.status == MemberStatus::Up
            && role_ok(m)
            && (&m.node == self_node || (fresh(&m.node) && !unreachable.contains(&m.node)))
            && gossip.reachability.is_refused_by(&m.node, dead)
    };
    let total = weighed_total(gossip, &everyone, &role_ok);
    let mut all_witnesses: Vec<&Member> = Vec::new();
    let to_down: BTreeSet<UniqueAddress> = gossip
        .members
        .values()
        .filter(|m| &m.node != self_node && downable(m))
        .filter(|m| gossip.reachability.is_refused_by(self_node, &m.node))
        .filter(|dead| {
            let witnesses: Vec<&Member> = gossip
                .members
                .values()
                .filter(|m| witness(m, &dead.node))
                .collect();
            let keeps = |s: &DowningSettings| {
                strategy_decision(&witnesses, &total, s) == Decision::DownUnreachable
            };
            let proven = keeps(settings) && keeps(&majority);
            if proven {
                for w in witnesses {
                    if !all_witnesses.iter().any(|a| a.node == w.node) {
                        all_witnesses.push(w);
                    }
                }
            }
            proven
        })
        .map(|m| m.node.clone())
        .collect();
    (!to_down.is_empty()).then(|| Resolution {
        decision: Decision::DownProvenDead,
        to_down,
        indirectly_connected: BTreeSet::new(),
        weighing: Some(Weighing::of(&all_witnesses, &total)),
    })
}

/// Both sides of a partition must weigh themselves against the same total, or each
/// may find itself the majority: the total is every member that is or may be Up
/// anywhere (Up, Leaving, Exiting and Down members that were once Up, and Joining or
/// WeaklyUp members on the `far` side, which the other side may have moved Up). Downs
/// and removals known on one side only then shrink no one's total below what the other
/// counts, so two disjoint sides can never both pass.
fn weighed_total<'g>(
    gossip: &'g Gossip,
    far: &BTreeSet<UniqueAddress>,
    role_ok: &dyn Fn(&Member) -> bool,
) -> Vec<&'g Member> {
    gossip
        .members
        .values()
        .filter(|m| role_ok(m))
        .filter(|m| match m.status {
            MemberStatus::Up | MemberStatus::Leaving | MemberStatus::Exiting => true,
            MemberStatus::Down => m.up_number > 0,
            MemberStatus::Joining | MemberStatus::WeaklyUp => far.contains(&m.node),
            MemberStatus::Removed => false,
        })
        .collect()
}

/// No partition in view, only broken links while everyone still talks through third
/// parties: down only as many as it takes to leave no broken link among the rest (a
/// greedy cover), so the largest fully connected set survives.
///
/// The records behind "indirectly connected" can be stale: what looks like broken
/// links here may be a real partition that the cover's members see as one, and there
/// the strategy decides. So the kept side must also pass the strategy, weighed as if
/// the cover were the other side. Without that check, under keep-oldest, the majority
/// downed a cover holding the oldest while the oldest's side kept itself (seed
/// 9100009403 and four more of that sweep).
///
/// When the kept side would lose, or this node is itself in the cover (so not on the
/// kept side), it downs only itself. Downing more from here is not safe: whoever stays
/// reachable inherits those Down marks and carries on unweighed. Downing the kept side
/// left the cover alive with its members' marks while a far side that the kept side's
/// stale rows had hidden survived too (seed 9200004739 and four more). The next leader
/// then decides on its own view, with one fewer member.
fn resolve_broken_links(
    gossip: &Gossip,
    self_node: &UniqueAddress,
    indirect: &BTreeSet<UniqueAddress>,
    settings: &DowningSettings,
    role_ok: &dyn Fn(&Member) -> bool,
    counted: &dyn Fn(&Member) -> bool,
) -> Resolution {
    let cover = broken_link_cover(gossip, indirect);
    let total = weighed_total(gossip, &cover, role_ok);
    let kept: Vec<&Member> = gossip
        .members
        .values()
        .filter(|m| m.status == MemberStatus::Up && counted(m) && !cover.contains(&m.node))
        .collect();
    let resolution = |decision, to_down| Resolution {
        decision,
        to_down,
        indirectly_connected: indirect.clone(),
        weighing: Some(Weighing::of(&kept, &total)),
    };
    let kept_side_survives = match strategy_decision(&kept, &total, settings) {
        Decision::DownUnreachable
        | Decision::DownIndirectlyConnected
        | Decision::DownProvenDead => true,
        // Down-all (or a static quorum too small for the cluster) downs everyone on a
        // real partition's far side too, so no far side survives to clash with ours.
        Decision::DownAll => true,
        Decision::DownReachable | Decision::DownSelf => false,
    };
    if kept_side_survives && !cover.contains(self_node) {
        resolution(Decision::DownIndirectlyConnected, cover)
    } else {
        resolution(Decision::DownSelf, BTreeSet::from([self_node.clone()]))
    }
}

/// A small set of members whose removal leaves no unreachable record between the
/// remaining `candidates`: repeatedly take the member on the most broken links (ties:
/// the highest address, so lower addresses are kept, as in keep-majority's tie-break).
/// Deterministic, so every side computes the same set from the same records.
fn broken_link_cover(
    gossip: &Gossip,
    candidates: &BTreeSet<UniqueAddress>,
) -> BTreeSet<UniqueAddress> {
    let mut links: Vec<(UniqueAddress, UniqueAddress)> = gossip
        .reachability
        .unreachable_pairs()
        .filter(|(o, s)| candidates.contains(*o) && candidates.contains(*s))
        .map(|(o, s)| (o.clone(), s.clone()))
        .collect();
    let mut cover = BTreeSet::new();
    while !links.is_empty() {
        let mut degree: std::collections::BTreeMap<&UniqueAddress, usize> = Default::default();
        for (o, s) in &links {
            *degree.entry(o).or_default() += 1;
            *degree.entry(s).or_default() += 1;
        }
        let worst = degree
            .into_iter()
            .max_by(|(a, da), (b, db)| da.cmp(db).then(a.cmp(b)))
            .map(|(n, _)| n.clone())
            .expect("links is not empty");
        links.retain(|(o, s)| o != &worst && s != &worst);
        cover.insert(worst);
    }
    // Indirectly connected members with no link among the candidates (e.g. they only
    // saw a crashed member) are not downed.
    cover
}

/// The strategy proper: does our side (`ours`) survive against `total`?
fn strategy_decision(ours: &[&Member], total: &[&Member], settings: &DowningSettings) -> Decision {
    let is_ours = |m: &Member| ours.iter().any(|o| o.node == m.node);
    match &settings.strategy {
        DowningStrategy::KeepMajority => {
            if total.is_empty() {
                // Nobody counted anywhere (the cluster is still forming): keep ourselves.
                return Decision::DownUnreachable;
            }
            let lowest = total
                .iter()
                .min_by(|a, b| a.node.cmp(&b.node))
                .expect("not empty");
            if 2 * ours.len() > total.len() || (2 * ours.len() == total.len() && is_ours(lowest)) {
                Decision::DownUnreachable
            } else {
                Decision::DownReachable
            }
        }
        DowningStrategy::StaticQuorum { quorum_size } => {
            if total.len() > quorum_size * 2 - 1 {
                Decision::DownAll
            } else if ours.len() >= *quorum_size {
                Decision::DownUnreachable
            } else {
                Decision::DownReachable
            }
        }
        DowningStrategy::KeepOldest { down_if_alone } => {
            let Some(oldest) = total.iter().min_by(|a, b| a.age_cmp(b)) else {
                return Decision::DownUnreachable;
            };
            // Everyone in the total who is not ours may be with the oldest, Down ones
            // included: a member downed here (by an operator, say) may still be Up over
            // there, and counting it out let both sides survive (seed 9100093193).
            let others_with_oldest = total.iter().filter(|m| !is_ours(m)).count();
            let alone_allowed = *down_if_alone && total.len() > 2;
            if is_ours(oldest) {
                if alone_allowed && ours.len() == 1 {
                    Decision::DownReachable
                } else {
                    Decision::DownUnreachable
                }
            } else if alone_allowed
                && others_with_oldest == 1
                && oldest.status != MemberStatus::Down
            {
                Decision::DownUnreachable
            } else {
                Decision::DownReachable
            }
        }
        DowningStrategy::DownAll => Decision::DownAll,
    }
}

/// Tracks whether the view has been stable long enough to decide, and whether it has
/// been changing for so long that everyone must be downed.
#[derive(Clone, Debug, Default)]
pub struct Stability {
    fingerprint: u64,
    /// Last time membership or reachability changed.
    last_change_ms: u64,
    /// First and latest reachability change since the view was last all-reachable.
    reachability_changes: Option<(u64, u64)>,
    reachability_fingerprint: u64,
}

/// What the resolver should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StabilityVerdict {
    /// Nothing unreachable; nothing to do.
    Idle,
    /// Unreachable members, but the view changed too recently; decide at this time.
    WaitUntil(u64),
    /// Stable for long enough: decide now.
    Decide,
    /// Unstable for too long: down everyone.
    DownAll,
}

impl Stability {
    /// Starts tracking at `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Stability {
            last_change_ms: now_ms,
            ..Default::default()
        }
    }

    /// Feeds the current view; resets the stable deadline on any change.
    pub fn observe(&mut self, gossip: &Gossip, now_ms: u64) {
        let mut members = Fnv::new();
        for m in gossip.members.values() {
            members.unique_address(&m.node);
            members.u64(u64::from(m.status.priority()));
        }
        let mut reach = Fnv::new();
        for (observer, subject) in gossip.reachability.unreachable_pairs() {
            reach.unique_address(observer);
            reach.unique_address(subject);
        }
        let (member_print, reach_print) = (members.finish(), reach.finish());
        let combined = member_print ^ reach_print.rotate_left(17);
        if combined != self.fingerprint {
            self.fingerprint = combined;
            self.last_change_ms = now_ms;
        }
        if reach_print != self.reachability_fingerprint {
            self.reachability_fingerprint = reach_print;
            self.reachability_changes = Some(match self.reachability_changes {
                Some((first, _)) => (first, now_ms),
                None => (now_ms, now_ms),
            });
        }
    }

    /// Forgets the history of changes (after a decision, or when all is reachable).
    pub fn reset(&mut self, now_ms: u64) {
        self.last_change_ms = now_ms;
        self.reachability_changes = None;
    }

    /// The view is as old as `now_ms` and no older: its owner was not running before
    /// (see `Node::advance_clock`) and cannot tell what changed meanwhile. Unlike
    /// `reset`, the span of reachability changes is kept.
    pub fn restart(&mut self, now_ms: u64) {
        self.last_change_ms = self.last_change_ms.max(now_ms);
    }

    /// When the current view became stable.
    pub fn stable_since_ms(&self) -> u64 {
        self.last_change_ms
    }

    /// What to do at `now_ms`, given whether anything is unreachable and whether the
    /// view is corroborated (see `corroborated`), which shortens the wait.
    pub fn verdict(
        &mut self,
        settings: &DowningSettings,
        has_unreachable: bool,
        corroborated: bool,
        now_ms: u64,
    ) -> StabilityVerdict {
        if !has_unreachable {
            // Everything unreachable has been downed (or came back): start afresh.
            self.reachability_changes = None;
            return StabilityVerdict::Idle;
        }
        let deadline = self.last_change_ms + settings.stable_after(corroborated);
        if now_ms >= deadline {
            return StabilityVerdict::Decide;
        }
        if let (Some(limit), Some((first, latest))) = (
            settings.down_all_when_unstable_ms,
            self.reachability_changes,
        ) {
            if latest.saturating_sub(first) > settings.stable_after_ms + limit {
                return StabilityVerdict::DownAll;
            }
        }
        StabilityVerdict::WaitUntil(deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;

    fn node(port: u16) -> UniqueAddress {
        UniqueAddress::new(Address::new("h", port), 1)
    }

    fn cluster(ports: &[u16]) -> Gossip {
        let mut g = Gossip::default();
        for (i, p) in ports.iter().enumerate() {
            g.members.insert(
                node(*p),
                Member {
                    node: node(*p),
                    status: MemberStatus::Up,
                    roles: BTreeSet::new(),
                    up_number: i as u32 + 1,
                },
            );
        }
        g
    }

    fn settings(strategy: DowningStrategy) -> DowningSettings {
        DowningSettings {
            strategy,
            stable_after_ms: 1000,
            down_all_when_unstable_ms: Some(4000),
            role: None,
            corroborated_stable_after_ms: None,
        }
    }

    /// A clean partition as `observer` sees it: every member on its side (the ones not
    /// in `unreachable`) has marked every member of `unreachable`.
    fn partitioned(ports: &[u16], observer: u16, unreachable: &[u16]) -> Gossip {
        let mut g = cluster(ports);
        assert!(!unreachable.contains(&observer));
        for ours in ports.iter().filter(|p| !unreachable.contains(p)) {
            for u in unreachable {
                g.reachability.mark_unreachable(&node(*ours), &node(*u));
            }
        }
        g
    }

    #[test]
    fn keep_majority_downs_the_minority_and_the_minority_downs_itself() {
        let majority = partitioned(&[1, 2, 3], 1, &[3]);
        let r = decide(
            &majority,
            &node(1),
            &settings(DowningStrategy::KeepMajority),
        )
        .unwrap();
        assert_eq!(r.decision, Decision::DownUnreachable);
        assert_eq!(r.to_down, [node(3)].into());
        let minority = partitioned(&[1, 2, 3], 3, &[1, 2]);
        let r = decide(
            &minority,
            &node(3),
            &settings(DowningStrategy::KeepMajority),
        )
        .unwrap();
        assert_eq!(r.decision, Decision::DownReachable);
        assert_eq!(r.to_down, [node(3)].into());
    }

    #[test]
    fn only_a_minority_facing_a_far_side_that_would_win_is_outweighed() {
        let keep = settings(DowningStrategy::KeepMajority);
        let majority = partitioned(&[1, 2, 3, 4, 5], 1, &[4, 5]);
        assert!(!outweighed_by_the_unreachable(&majority, &node(1), &keep));
        let minority = partitioned(&[1, 2, 3, 4, 5], 4, &[1, 2, 3]);
        assert!(outweighed_by_the_unreachable(&minority, &node(4), &keep));
        // Two of five lose, but one unreachable member cannot down them either.
        let mut shrunk = partitioned(&[1, 2, 3, 4, 5], 4, &[1]);
        for n in [2, 3] {
            shrunk.move_member(&node(n), MemberStatus::Leaving);
            shrunk.move_member(&node(n), MemberStatus::Exiting);
        }
        assert!(!outweighed_by_the_unreachable(&shrunk, &node(4), &keep));
    }

    #[test]
    fn keep_majority_tie_keeps_the_side_with_the_lowest_address() {
        let low = partitioned(&[1, 2, 3, 4], 1, &[3, 4]);
        let r = decide(&low, &node(1), &settings(DowningStrategy::KeepMajority)).unwrap();
        assert_eq!(r.decision, Decision::DownUnreachable);
        let high = partitioned(&[1, 2, 3, 4], 3, &[1, 2]);
        let r = decide(&high, &node(3), &settings(DowningStrategy::KeepMajority)).unwrap();
        assert_eq!(r.decision, Decision::DownReachable);
        assert_eq!(r.to_down, [node(3), node(4)].into());
    }

    #[test]
    fn static_quorum_and_keep_oldest_and_down_all() {
        let g = partitioned(&[1, 2, 3, 4, 5], 1, &[4, 5]);
        let quorum = |q| settings(DowningStrategy::StaticQuorum { quorum_size: q });
        assert_eq!(
            decide(&g, &node(1), &quorum(3)).unwrap().decision,
            Decision::DownUnreachable
        );
        assert_eq!(
            decide(&g, &node(1), &quorum(4)).unwrap().decision,
            Decision::DownReachable
        );
        assert_eq!(
            decide(&g, &node(1), &quorum(2)).unwrap().decision,
            Decision::DownAll,
            "too many members for quorum 2"
        );

        let oldest = |alone| {
            settings(DowningStrategy::KeepOldest {
                down_if_alone: alone,
            })
        };
        let minority_with_oldest = partitioned(&[1, 2, 3], 1, &[2, 3]);
        assert_eq!(
            decide(&minority_with_oldest, &node(1), &oldest(false))
                .unwrap()
                .decision,
            Decision::DownUnreachable
        );
        assert_eq!(
            decide(&minority_with_oldest, &node(1), &oldest(true))
                .unwrap()
                .decision,
            Decision::DownReachable
        );
        let majority_without_oldest = partitioned(&[1, 2, 3], 2, &[1]);
        assert_eq!(
            decide(&majority_without_oldest, &node(2), &oldest(false))
                .unwrap()
                .decision,
            Decision::DownReachable
        );
        assert_eq!(
            decide(&majority_without_oldest, &node(2), &oldest(true))
                .unwrap()
                .decision,
            Decision::DownUnreachable
        );

        let all = decide(&g, &node(1), &settings(DowningStrategy::DownAll)).unwrap();
        assert_eq!(all.to_down.len(), 5);
    }

    #[test]
    fn indirectly_connected_members_are_downed_and_the_rest_kept() {
        // 1 and 3 cannot talk to each other; 2 reaches both.
        let mut g = cluster(&[1, 2, 3]);
        g.reachability.mark_unreachable(&node(1), &node(3));
        g.reachability.mark_unreachable(&node(3), &node(1));
        g.seen = g.members.keys().cloned().collect();
        let r = decide(&g, &node(2), &settings(DowningStrategy::KeepMajority)).unwrap();
        assert_eq!(r.decision, Decision::DownIndirectlyConnected);
        assert_eq!(r.indirectly_connected, [node(1), node(3)].into());
        assert_eq!(
            r.to_down,
            [node(3)].into(),
            "one end of the broken link is enough"
        );
    }

    #[test]
    fn a_member_cut_from_two_others_is_the_only_one_downed() {
        // 5 cannot reach 1 and 2 (both directions); 3 and 4 reach everyone.
        let mut g = cluster(&[1, 2, 3, 4, 5]);
        for other in [1, 2] {
            g.reachability.mark_unreachable(&node(other), &node(5));
            g.reachability.mark_unreachable(&node(5), &node(other));
        }
        g.seen = g.members.keys().cloned().collect();
        for observer in [1, 3, 5] {
            let r = decide(
                &g,
                &node(observer),
                &settings(DowningStrategy::KeepMajority),
            )
            .unwrap();
            assert_eq!(r.to_down, [node(5)].into(), "as seen from {observer}");
        }
    }

    #[test]
    fn stale_records_from_before_a_partition_do_not_make_a_member_indirectly_connected() {
        // 3 crashed; 1 and 2 then lost each other. 1's view holds 2's old record about
        // 3, but 2 has not seen 1's current state: 2 is plainly unreachable.
        let mut g = cluster(&[1, 2, 3]);
        g.reachability.mark_unreachable(&node(1), &node(3));
        g.reachability.mark_unreachable(&node(2), &node(3));
        g.reachability.mark_unreachable(&node(1), &node(2));
        g.bump(&node(1));
        let r = decide(&g, &node(1), &settings(DowningStrategy::KeepMajority)).unwrap();
        assert!(r.indirectly_connected.is_empty());
        assert_eq!(
            r.decision,
            Decision::DownReachable,
            "one of three is a minority"
        );
    }

    #[test]
    fn both_sides_weigh_themselves_against_the_same_total() {
        // 5 members; side {1,2} already downed 4 (a broken link) just before the
        // partition {1,2} | {3,4,5}; side {3,4,5} never heard of it.
        let mut low = partitioned(&[1, 2, 3, 4, 5], 1, &[3, 5]);
        low.members.get_mut(&node(4)).unwrap().status = MemberStatus::Down;
        let r = decide(&low, &node(1), &settings(DowningStrategy::KeepMajority)).unwrap();
        assert_eq!(
            r.decision,
            Decision::DownReachable,
            "2 of 5 is not a majority, Down 4 still counts"
        );
        let high = partitioned(&[1, 2, 3, 4, 5], 3, &[1, 2]);
        let r = decide(&high, &node(3), &settings(DowningStrategy::KeepMajority)).unwrap();
        assert_eq!(r.decision, Decision::DownUnreachable, "3 of 5");
    }

    #[test]
    fn a_member_cut_from_us_but_reached_by_its_other_monitors_is_indirectly_connected() {
        // 1 lost its links to 3 and 4; 2 still reaches both. From 1's side this is not
        // a 2|2 partition it could win on the tie: 1 is on the broken links.
        let mut g = cluster(&[1, 2, 3, 4]);
        g.reachability.mark_unreachable(&node(1), &node(3));
        g.reachability.mark_unreachable(&node(1), &node(4));
        let r = decide(&g, &node(1), &settings(DowningStrategy::KeepMajority)).unwrap();
        assert_eq!(r.decision, Decision::DownSelf, "1 is on both broken links");
        assert_eq!(r.to_down, [node(1)].into());
    }

    #[test]
    fn a_cover_holding_the_oldest_is_not_downed_under_keep_oldest() {
        // The oldest, 1, is on every broken link, so the cover is {1}. The records may
        // be stale and 1 alone on a real partition, where keep-oldest keeps it: the
        // kept side {2,3,4,5} would then lose, so the decider downs only itself.
        let mut g = cluster(&[1, 2, 3, 4, 5]);
        g.reachability.mark_unreachable(&node(1), &node(2));
        g.reachability.mark_unreachable(&node(1), &node(3));
        g.seen = g.members.keys().cloned().collect();
        let keep_oldest = settings(DowningStrategy::KeepOldest {
            down_if_alone: false,
        });
        let r = decide(&g, &node(4), &keep_oldest).unwrap();
        assert_eq!(r.decision, Decision::DownSelf);
        assert_eq!(r.to_down, [node(4)].into());
        // Keep-majority weighs the kept side 4 of 5: the cover goes.
        let r = decide(&g, &node(4), &settings(DowningStrategy::KeepMajority)).unwrap();
        assert_eq!(r.decision, Decision::DownIndirectlyConnected);
        assert_eq!(r.to_down, [node(1)].into());
    }

    #[test]
    fn role_restricts_the_count() {
        let mut g = partitioned(&[1, 2, 3], 1, &[2, 3]);
        g.members
            .get_mut(&node(1))
            .unwrap()
            .roles
            .insert("db".into());
        let mut s = settings(DowningStrategy::KeepMajority);
        s.role = Some("db".into());
        assert_eq!(
            decide(&g, &node(1), &s).unwrap().decision,
            Decision::DownUnreachable
        );
    }

    #[test]
    fn a_view_is_corroborated_when_every_unreachable_member_is_marked_by_all_who_watch_it() {
        let mut g = cluster(&[1, 2, 3, 4, 5]);
        g.reachability.mark_unreachable(&node(1), &node(5));
        assert!(!corroborated(&g, &node(1), 3), "one observer of three");
        g.reachability.mark_unreachable(&node(2), &node(5));
        g.reachability.mark_unreachable(&node(3), &node(5));
        assert!(corroborated(&g, &node(1), 3));
        // Another lost member seen by one observer only: not every mark is corroborated.
        g.reachability.mark_unreachable(&node(2), &node(4));
        assert!(!corroborated(&g, &node(1), 3));
        // With three members, both survivors must mark the third.
        let mut small = cluster(&[1, 2, 3]);
        small.reachability.mark_unreachable(&node(1), &node(3));
        assert!(!corroborated(&small, &node(1), 3));
        small.reachability.mark_unreachable(&node(2), &node(3));
        assert!(corroborated(&small, &node(2), 3));
    }

    #[test]
    fn a_member_cut_off_from_everyone_never_sees_its_view_corroborated() {
        let mut g = cluster(&[1, 2, 3, 4]);
        for other in [2, 3, 4] {
            g.reachability.mark_unreachable(&node(1), &node(other));
        }
        assert!(!corroborated(&g, &node(1), 3));
    }

    #[test]
    fn stability_waits_for_stable_after_and_downs_all_when_it_never_settles() {
        let s = settings(DowningStrategy::KeepMajority);
        let mut g = cluster(&[1, 2, 3]);
        let mut stability = Stability::new(0);
        stability.observe(&g, 0);
        g.reachability.mark_unreachable(&node(1), &node(3));
        stability.observe(&g, 100);
        assert_eq!(
            stability.verdict(&s, true, false, 500),
            StabilityVerdict::WaitUntil(1100)
        );
        assert_eq!(
            stability.verdict(&s, true, false, 1100),
            StabilityVerdict::Decide
        );
        // Flapping: reachability changes every 500 ms for longer than 1 s + 4 s.
        let mut t = 100;
        let mut verdict = StabilityVerdict::Idle;
        while t < 10_000 {
            t += 500;
            if g.reachability.is_reachable_by(&node(1), &node(2)) {
                g.reachability.mark_unreachable(&node(1), &node(2));
            } else {
                g.reachability.mark_reachable(&node(1), &node(2));
            }
            stability.observe(&g, t);
            verdict = stability.verdict(&s, true, false, t);
            if verdict == StabilityVerdict::DownAll {
                break;
            }
        }
        assert_eq!(verdict, StabilityVerdict::DownAll);
        assert!(t > 5000);
    }
}
