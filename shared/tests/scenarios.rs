//! Membership scenarios on the deterministic simulator, one per behaviour the
//! reference asks for. Each runs with the invariant checker on; a failure prints the
//! trace and every node's view.

use shared::events::ClusterEvent;
use shared::sbr::Decision;
use shared::sim::{Sim, SimConfig, Slot};
use shared::{
    Address, Command, DowningSettings, Member, MemberStatus, Message, Node, Output, Settings,
    ShutdownReason, UniqueAddress,
};

const MINUTE: u64 = 60_000;

fn report(sim: &Sim) -> String {
    format!(
        "trace:\n{}\nviews:\n{}",
        sim.trace().join("\n"),
        sim.describe()
    )
}

fn assert_safe(sim: &Sim) {
    if let Some(v) = sim.violation() {
        panic!("invariant violated: {v}\n{}", report(sim));
    }
}

fn formed(nodes: usize, seed: u64) -> Sim {
    formed_with(SimConfig::demo(nodes, seed))
}

fn formed_with(config: SimConfig) -> Sim {
    let nodes = config.nodes;
    let mut sim = Sim::new(config);
    sim.start_all();
    let all: Vec<Slot> = (0..nodes).collect();
    sim.run_until(30_000, |s| s.all_up(&all))
        .unwrap_or_else(|| panic!("cluster of {nodes} did not form\n{}", report(&sim)));
    assert_safe(&sim);
    sim
}

fn wait(sim: &mut Sim, limit: u64, what: &str, done: impl FnMut(&Sim) -> bool) -> u64 {
    let took = sim
        .run_until(limit, done)
        .unwrap_or_else(|| panic!("timed out waiting for: {what}\n{}", report(sim)));
    assert_safe(sim);
    took
}

fn unreachable_in(sim: &Sim, observer: Slot, target: &UniqueAddress) -> bool {
    sim.view(observer)
        .is_some_and(|g| g.has_member(target) && !g.reachability.is_reachable(target))
}

/// Fails if any of `observers` ever reported a member unreachable.
fn assert_never_unreachable(sim: &Sim, observers: &[Slot]) {
    for &observer in observers {
        assert!(
            !sim.events(observer)
                .iter()
                .any(|(_, e)| matches!(e, ClusterEvent::UnreachableMember { .. })),
            "n{observer} saw a member unreachable\n{}",
            report(sim)
        );
    }
}

fn gone_from(sim: &Sim, observer: Slot, old: &shared::UniqueAddress) -> bool {
    sim.view(observer)
        .is_some_and(|g| !g.has_member(old) && g.tombstones.contains_key(old))
}

#[test]
fn three_nodes_form_a_cluster_with_one_leader() {
    let sim = formed(3, 1);
    let leaders: Vec<_> = (0..3).map(|s| sim.node(s).unwrap().leader()).collect();
    assert!(leaders.iter().all(|l| l == &leaders[0]));
    assert_eq!(leaders[0], sim.unique(0), "the lowest address leads");
    for slot in 0..3 {
        let kinds: Vec<&str> = sim.events(slot).iter().map(|(_, e)| e.kind()).collect();
        assert!(
            kinds.contains(&"MemberUp"),
            "n{slot} saw no MemberUp: {kinds:?}"
        );
    }
}

#[test]
fn a_crash_of_one_of_three_is_detected_downed_by_keep_majority_and_removed() {
    let mut sim = formed(3, 2);
    let victim = sim.unique(2).unwrap();
    let crash_at = sim.now;
    sim.crash(2);
    let detected = wait(&mut sim, MINUTE, "n2 unreachable on n0 or n1", |s| {
        unreachable_in(s, 0, &victim) || unreachable_in(s, 1, &victim)
    });
    assert!(
        detected <= 1_500,
        "detection took {detected} ms in the demo profile"
    );
    wait(&mut sim, MINUTE, "n2 removed everywhere", |s| {
        gone_from(s, 0, &victim) && gone_from(s, 1, &victim)
    });
    let removed_after = sim.now - crash_at;
    assert!(removed_after <= 8_000, "removal took {removed_after} ms");
    wait(&mut sim, 2_000, "the two converge", |s| {
        s.all_up(&[0, 1]) && s.converged_as_one()
    });
    let decided = sim.events(0).iter().chain(sim.events(1)).any(|(_, e)| {
        matches!(e, ClusterEvent::ResolverDecision { downed, .. } if downed == &vec![victim.clone()])
    });
    assert!(decided, "the resolver downed the crashed node");
}

#[test]
fn a_two_one_partition_downs_the_minority_while_the_majority_continues() {
    let mut sim = formed(3, 3);
    let minority = sim.unique(2).unwrap();
    sim.isolate(2);
    wait(&mut sim, MINUTE, "minority stops itself", |s| {
        !s.is_running(2)
    });
    assert_eq!(sim.exit_reason(2), Some(ShutdownReason::Downed));
    wait(&mut sim, MINUTE, "majority removes the minority", |s| {
        gone_from(s, 0, &minority) && gone_from(s, 1, &minority)
    });
    wait(&mut sim, 2_000, "the majority converges", |s| {
        s.all_up(&[0, 1])
    });
    sim.heal_network();
    sim.start(2);
    wait(
        &mut sim,
        MINUTE,
        "restarted node rejoins as a new incarnation",
        |s| s.all_up(&[0, 1, 2]),
    );
    assert_ne!(sim.unique(2).unwrap(), minority);
}

#[test]
fn a_two_two_split_keeps_the_side_with_the_lowest_address() {
    let mut sim = formed(4, 4);
    sim.partition(&[0, 1]);
    wait(&mut sim, MINUTE, "the high side stops", |s| {
        !s.is_running(2) && !s.is_running(3)
    });
    wait(&mut sim, MINUTE, "the low side converges", |s| {
        s.converged_as_one() && s.view(0).is_some_and(|g| g.members.len() == 2)
    });
    assert!(sim.is_running(0) && sim.is_running(1));
}

#[test]
fn a_one_way_cut_downs_one_end_of_the_broken_link_and_keeps_the_rest() {
    let mut sim = formed(5, 5);
    // Messages from n3 to n4 are lost; everything else flows. With request-response
    // heartbeats, n3 and n4 each see the other unreachable while both talk to the rest.
    sim.cut_one_way(3, 4);
    wait(&mut sim, MINUTE, "one end is downed", |s| !s.is_running(4));
    wait(&mut sim, MINUTE, "the rest converge", |s| {
        s.converged_as_one() && s.view(0).is_some_and(|g| g.members.len() == 4)
    });
    assert!(sim.is_running(3), "the lower address of the pair is kept");
    let decision = sim
        .events(0)
        .iter()
        .chain(sim.events(1))
        .chain(sim.events(2))
        .find_map(|(_, e)| match e {
            ClusterEvent::ResolverDecision {
                indirectly_connected,
                ..
            } => Some(indirectly_connected.len()),
            _ => None,
        });
    assert_eq!(
        decision,
        Some(2),
        "the decision named two indirectly connected members"
    );
}

#[test]
fn an_indirectly_connected_member_is_downed_and_the_fully_connected_side_kept() {
    let mut sim = formed(5, 6);
    // n4 cannot talk to n0 and n1 but can to n2 and n3.
    sim.cut(4, 0);
    sim.cut(4, 1);
    wait(&mut sim, MINUTE, "n4 is downed and stops", |s| {
        !s.is_running(4)
    });
    wait(&mut sim, MINUTE, "the others converge without n4", |s| {
        s.converged_as_one() && s.view(0).is_some_and(|g| g.members.len() == 4)
    });
    for slot in 0..4 {
        assert!(sim.is_running(slot), "n{slot} kept");
    }
}

#[test]
fn a_graceful_leave_goes_through_leaving_exiting_removed_and_stops_the_node() {
    let mut sim = formed(3, 7);
    let leaver = sim.unique(1).unwrap();
    sim.leave(1).unwrap();
    wait(&mut sim, MINUTE, "the leaver stops", |s| !s.is_running(1));
    assert_eq!(sim.exit_reason(1), Some(ShutdownReason::Left));
    wait(&mut sim, MINUTE, "the others remove it", |s| {
        gone_from(s, 0, &leaver) && gone_from(s, 2, &leaver)
    });
    let seen: Vec<&str> = sim
        .events(0)
        .iter()
        .filter_map(|(_, e)| match e {
            ClusterEvent::MemberLeft { member } if member.node == leaver => Some("Left"),
            ClusterEvent::MemberExited { member } if member.node == leaver => Some("Exited"),
            ClusterEvent::MemberRemoved {
                member,
                previous_status: MemberStatus::Exiting,
            } if member.node == leaver => Some("Removed"),
            _ => None,
        })
        .collect();
    assert_eq!(seen, ["Left", "Exited", "Removed"]);
    // Its process is gone before the others remove it, so connections to it are
    // refused; a departure by design is still no failure.
    assert_never_unreachable(&sim, &[0, 2]);
}

#[test]
fn a_leaver_whose_process_is_gone_before_the_others_remove_it_is_never_unreachable() {
    let mut sim = formed(3, 7);
    let leaver = sim.unique(1).unwrap();
    sim.leave(1).unwrap();
    wait(&mut sim, MINUTE, "the leaver sees itself Exiting", |s| {
        s.status_seen_by(1, 1) == Some(MemberStatus::Exiting)
    });
    // Its process ends now, as a container's does once the node has left, while
    // the others still hold it Leaving or Exiting: connections to it are refused.
    sim.crash(1);
    wait(&mut sim, MINUTE, "the others remove it", |s| {
        gone_from(s, 0, &leaver) && gone_from(s, 2, &leaver)
    });
    assert_never_unreachable(&sim, &[0, 2]);
}

#[test]
fn the_leader_itself_can_leave_and_leadership_moves_on() {
    let mut sim = formed(3, 8);
    let old_leader = sim.unique(0).unwrap();
    sim.leave(0).unwrap();
    wait(&mut sim, MINUTE, "old leader removed", |s| {
        gone_from(s, 1, &old_leader) && gone_from(s, 2, &old_leader)
    });
    assert_eq!(sim.node(1).unwrap().leader(), sim.unique(1));
}

#[test]
fn a_restart_at_the_same_address_replaces_the_old_incarnation_at_once() {
    let mut sim = formed(3, 9);
    let old = sim.unique(2).unwrap();
    sim.crash(2);
    sim.run_for(50);
    sim.start(2);
    let new = sim.unique(2).unwrap();
    assert_ne!(old, new);
    let took = wait(
        &mut sim,
        MINUTE,
        "new incarnation Up, old removed everywhere",
        |s| s.all_up(&[0, 1, 2]) && (0..3).all(|o| gone_from(s, o, &old)),
    );
    // The old incarnation is downed when the new one joins, without waiting for the
    // failure detector and the resolver's stable-after.
    assert!(took < 3_000, "replacement took {took} ms");
    let downed = sim
        .events(0)
        .iter()
        .any(|(_, e)| matches!(e, ClusterEvent::MemberDowned { member } if member.node == old));
    assert!(downed);
}

#[test]
fn seeds_started_in_any_order_form_one_cluster_never_two_islands() {
    for order in [[2usize, 1, 0], [1, 2, 0], [0, 2, 1]] {
        let mut sim = Sim::new(SimConfig::demo(3, 10));
        for (i, slot) in order.iter().enumerate() {
            sim.start(*slot);
            sim.run_for(if i == 0 { 4_000 } else { 700 });
        }
        wait(&mut sim, MINUTE, "one cluster of three", |s| {
            s.all_up(&[0, 1, 2])
        });
        assert!(sim.converged_as_one(), "order {order:?}");
    }
}

#[test]
fn non_first_seeds_alone_never_form_a_cluster() {
    let mut sim = Sim::new(SimConfig::demo(3, 11));
    sim.start(1);
    sim.start(2);
    sim.run_for(20_000);
    assert!(
        sim.view(1).is_none() && sim.view(2).is_none(),
        "{}",
        sim.describe()
    );
    sim.start(0);
    wait(
        &mut sim,
        MINUTE,
        "first seed forms and the others join",
        |s| s.all_up(&[0, 1, 2]),
    );
}

#[test]
fn an_idle_member_writes_each_peer_once_per_heartbeat_tick() {
    let mut sim = formed(3, 11);
    sim.run_for(5_000);
    let before = sim.traffic.clone();
    let alarms_before: usize = (0..3).map(|slot| sim.events(slot).len()).sum();
    let secs = 20;
    sim.run_for(secs * 1000);
    assert_safe(&sim);
    let messages: u64 = sim.traffic.by_kind.values().map(|(m, _)| m).sum::<u64>()
        - before.by_kind.values().map(|(m, _)| m).sum::<u64>();
    let writes = sim.traffic.writes - before.writes;
    let per_member = |n: u64| n as f64 / 3.0 / secs as f64;
    // Demo profile: a 200 ms tick, two peers each. Each tick's heartbeat, the answer
    // owed to that peer and the gossip round share one write: 10 a second, where
    // answering at once took 25 (a heartbeat and an answer per peer, and gossip apart).
    assert!(
        per_member(writes) <= 11.0,
        "{:.1} writes a second per member for {:.1} messages",
        per_member(writes),
        per_member(messages)
    );
    assert!(
        per_member(messages) >= 20.0,
        "{:.1} messages",
        per_member(messages)
    );
    let alarms_after: usize = (0..3).map(|slot| sim.events(slot).len()).sum();
    assert_eq!(
        alarms_before,
        alarms_after,
        "an idle cluster changed\n{}",
        report(&sim)
    );
    // Every heartbeat is answered by the peer's next tick, so no round starts.
    let probes = |t: &shared::sim::Traffic| t.by_kind.get("probe_request").map_or(0, |(m, _)| *m);
    assert_eq!(
        probes(&sim.traffic),
        probes(&before),
        "an idle cluster probed"
    );
}

#[test]
fn a_freeze_shorter_than_the_acceptable_pause_raises_no_alarm() {
    let mut sim = formed(3, 12);
    let pause = sim.config().settings.acceptable_heartbeat_pause_ms;
    sim.freeze(2, pause / 2);
    sim.run_for(5_000);
    assert_safe(&sim);
    for slot in 0..3 {
        assert!(
            !sim.events(slot)
                .iter()
                .any(|(_, e)| matches!(e, ClusterEvent::UnreachableMember { .. })),
            "n{slot} raised an alarm\n{}",
            report(&sim)
        );
    }
}

#[test]
fn a_longer_freeze_makes_the_member_unreachable_and_reachable_again_when_it_resumes() {
    let mut config = SimConfig::demo(3, 13);
    config.settings.downing = DowningSettings::keep_majority(20_000);
    let mut sim = formed_with(config);
    let frozen = sim.unique(2).unwrap();
    sim.freeze(2, 3_000);
    wait(&mut sim, 3_000, "n2 unreachable", |s| {
        unreachable_in(s, 0, &frozen)
    });
    wait(&mut sim, 10_000, "n2 reachable again", |s| {
        !s.is_frozen(2) && !unreachable_in(s, 0, &frozen) && s.converged_as_one()
    });
    assert!(sim.all_up(&[0, 1, 2]));
    let reachable_again = sim
        .events(0)
        .iter()
        .any(|(_, e)| matches!(e, ClusterEvent::ReachableMember { .. }));
    assert!(reachable_again);
}

#[test]
fn a_member_frozen_past_the_decision_is_downed_and_stops_when_it_resumes() {
    let mut sim = formed(3, 14);
    let frozen = sim.unique(2).unwrap();
    sim.freeze(2, 10_000);
    wait(&mut sim, 9_000, "the others remove it", |s| {
        gone_from(s, 0, &frozen) && gone_from(s, 1, &frozen)
    });
    assert!(sim.is_running(2), "still frozen, so still running");
    wait(&mut sim, 15_000, "it stops after resuming", |s| {
        !s.is_running(2)
    });
    assert!(matches!(
        sim.exit_reason(2),
        Some(ShutdownReason::Removed | ShutdownReason::Downed)
    ));
    wait(&mut sim, 2_000, "the two converge", |s| s.all_up(&[0, 1]));
}

#[test]
fn a_node_with_the_wrong_cluster_name_is_refused_and_the_cluster_is_untouched() {
    let sim = formed(3, 15);
    let now = sim.now;
    let member = sim.node(0).unwrap();
    let mut contact = Node::with_state(
        member.self_node().clone(),
        member.gossip().clone(),
        Settings::demo("sim"),
        2,
        now,
    );
    let before = contact.gossip().clone();
    let stranger = UniqueAddress::new(Address::new("10.0.0.9", 9999), 1);
    let mut wrong = Node::new(
        stranger,
        Default::default(),
        vec![sim.address(0).clone()],
        Settings::demo("other"),
        1,
        now,
    );
    // The stranger asks (InitJoin), and also tries a Join outright.
    let mut requests: Vec<Message> = wrong
        .take_outputs()
        .into_iter()
        .filter_map(|o| match o {
            Output::Send { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    requests.push(Message::Join {
        node: wrong.self_node().clone(),
        roles: Default::default(),
        cluster: "other".into(),
    });
    for request in requests {
        contact.handle_message(now, request);
    }
    assert_eq!(contact.gossip(), &before, "a refusal changes nothing");
    let replies = contact.take_outputs();
    let refusals: Vec<Message> = replies
        .into_iter()
        .filter_map(|o| match o {
            Output::Send {
                message: m @ Message::JoinRefused { .. },
                ..
            } => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(refusals.len(), 2, "both InitJoin and Join are refused");
    for refusal in refusals {
        wrong.handle_message(now, refusal);
    }
    let events = wrong.take_outputs();
    assert!(events
        .iter()
        .any(|o| matches!(o, Output::Event(ClusterEvent::JoinRefused { .. }))));
    assert!(!wrong.is_member());
}

#[test]
fn min_nr_of_members_holds_everyone_in_joining_until_enough_have_joined() {
    let mut config = SimConfig::demo(3, 16);
    config.settings.min_nr_of_members = 3;
    config.settings.weakly_up_after_ms = None;
    let mut sim = Sim::new(config);
    sim.start(0);
    sim.start(1);
    sim.run_for(6_000);
    assert_eq!(sim.status_seen_by(0, 0), Some(MemberStatus::Joining));
    assert_eq!(sim.status_seen_by(0, 1), Some(MemberStatus::Joining));
    sim.start(2);
    wait(&mut sim, MINUTE, "all Up once three have joined", |s| {
        s.all_up(&[0, 1, 2])
    });
}

#[test]
fn a_joining_member_becomes_weakly_up_while_convergence_is_blocked() {
    let mut config = SimConfig::demo(4, 17);
    config.settings.downing = DowningSettings::keep_majority(60_000);
    config.settings.downing.down_all_when_unstable_ms = None;
    let nodes = 4;
    let mut sim = Sim::new(config);
    for slot in 0..3 {
        sim.start(slot);
    }
    wait(&mut sim, MINUTE, "three Up", |s| s.all_up(&[0, 1, 2]));
    let crashed = sim.unique(2).unwrap();
    // A lost host: no refusal proves it dead, so it stays unreachable, not Down.
    sim.power_off(2);
    wait(&mut sim, MINUTE, "n2 unreachable", |s| {
        unreachable_in(s, 0, &crashed)
    });
    sim.start(3);
    wait(&mut sim, MINUTE, "n3 WeaklyUp", |s| {
        s.status_seen_by(0, 3) == Some(MemberStatus::WeaklyUp)
    });
    assert_eq!(nodes, sim.len());
    sim.command(0, Command::Down(sim.address(2).clone()))
        .unwrap();
    wait(&mut sim, MINUTE, "n3 Up once n2 is downed", |s| {
        s.all_up(&[0, 1, 3])
    });
}

/// A member welcomes a joiner and dies before its gossip reaches anyone, so the
/// joiner holds a state the survivors never saw (as after a healed partition, when
/// the far side's last member welcomes restarted nodes and stops; seed 5700003960).
/// The survivors must hear the joiner itself: that state waits for their seen marks,
/// so ignoring it would leave the joiner waiting until it gives up and restarts.
#[test]
fn a_joiner_whose_welcomer_died_joins_through_the_survivors() {
    let mut sim = Sim::new(SimConfig::demo(4, 23));
    for slot in 0..3 {
        sim.start(slot);
    }
    wait(&mut sim, MINUTE, "three Up", |s| s.all_up(&[0, 1, 2]));
    let welcomer = sim.unique(2).unwrap();
    let joiner = UniqueAddress {
        address: sim.address(3).clone(),
        uid: 4242,
    };
    let mut welcome = sim.view(2).unwrap().clone();
    let roles = welcome.member(&welcomer).unwrap().roles.clone();
    welcome
        .members
        .insert(joiner.clone(), Member::joining(joiner.clone(), roles));
    welcome.bump(&welcomer);
    welcome.mark_seen(&joiner);
    sim.crash(2);
    sim.start_with_state(3, joiner.clone(), welcome);
    let up_at = |s: &Sim, observer: Slot| {
        s.view(observer)
            .and_then(|g| g.member(&joiner))
            .is_some_and(|m| m.status == MemberStatus::Up)
    };
    wait(&mut sim, 15_000, "the joiner Up at both survivors", |s| {
        up_at(s, 0) && up_at(s, 1)
    });
    assert!(
        sim.is_running(3),
        "the joiner never restarted\n{}",
        report(&sim)
    );
}

#[test]
fn an_operator_down_stops_the_downed_node_and_it_is_removed() {
    let mut sim = formed(3, 18);
    let target = sim.unique(2).unwrap();
    sim.command(0, Command::Down(sim.address(2).clone()))
        .unwrap();
    wait(&mut sim, MINUTE, "n2 stops", |s| !s.is_running(2));
    assert_eq!(sim.exit_reason(2), Some(ShutdownReason::Downed));
    wait(&mut sim, MINUTE, "n2 removed", |s| {
        gone_from(s, 0, &target) && gone_from(s, 1, &target)
    });
}

#[test]
fn akka_defaults_detect_a_lost_host_in_about_five_seconds_and_remove_it_after_stable_after() {
    let mut config = SimConfig::demo(3, 19);
    config.settings = Settings::akka_defaults("sim");
    let mut sim = formed_with(config);
    let victim = sim.unique(1).unwrap();
    sim.power_off(1);
    let detected = wait(&mut sim, MINUTE, "unreachable", |s| {
        unreachable_in(s, 0, &victim)
    });
    assert!(
        (4_000..=7_000).contains(&detected),
        "detected after {detected} ms"
    );
    let removed = detected
        + wait(&mut sim, 2 * MINUTE, "removed", |s| {
            gone_from(s, 0, &victim) && gone_from(s, 2, &victim)
        });
    assert!(
        (20_000..=30_000).contains(&removed),
        "removed after {removed} ms"
    );
}

#[test]
fn akka_defaults_see_a_killed_process_at_once_and_down_it_on_the_proof() {
    let mut config = SimConfig::demo(3, 19);
    config.settings = Settings::akka_defaults("sim");
    let mut sim = formed_with(config);
    let victim = sim.unique(1).unwrap();
    sim.crash(1);
    // The next heartbeat to it is refused: nothing listens at its address.
    let detected = wait(&mut sim, MINUTE, "unreachable on both survivors", |s| {
        unreachable_in(s, 0, &victim) && unreachable_in(s, 2, &victim)
    });
    assert!(detected <= 1_100, "detected after {detected} ms");
    // Both survivors hold the proof, and two of three is a majority: no wait for
    // stable-after (20 s).
    let removed = detected
        + wait(&mut sim, 2 * MINUTE, "removed", |s| {
            gone_from(s, 0, &victim) && gone_from(s, 2, &victim)
        });
    assert!(removed <= 2_000, "removed after {removed} ms");
    assert_eq!(
        decisions(&sim, &[0, 2]),
        vec![(Decision::DownProvenDead, vec![victim])]
    );
}

/// Forms `n` members with Akka's defaults, kills one (SIGKILL: nothing listens at its
/// address any more) and returns how long until every survivor removed it, checking
/// that every survivor decided on the proof alone.
fn removal_after_a_kill(n: usize, seed: u64) -> u64 {
    let mut config = SimConfig::demo(n, seed);
    config.settings = Settings::akka_defaults("sim");
    let mut sim = formed_with(config);
    let all: Vec<Slot> = (0..n).collect();
    wait(&mut sim, MINUTE, "one converged cluster", |s| {
        s.all_up(&all) && s.converged_as_one()
    });
    sim.run_for(5_000);
    let victim = sim.unique(7).unwrap();
    sim.crash(7);
    let survivors: Vec<Slot> = all.iter().copied().filter(|&s| s != 7).collect();
    let removed = wait(&mut sim, 2 * MINUTE, "removed from every survivor", |s| {
        survivors.iter().all(|&o| gone_from(s, o, &victim))
    });
    let decided = decisions(&sim, &survivors);
    assert!(
        decided
            .iter()
            .all(|(d, downed)| *d == Decision::DownProvenDead && *downed == vec![victim.clone()]),
        "decided on the proof alone: {decided:?}"
    );
    removed
}

/// Of 25 members only the dead one's 9 monitors heartbeat it, but every member's next
/// message to it (gossip prefers a member that has not seen the latest state, and it
/// never will) is refused too, and a majority of witnesses downs it at once.
#[test]
fn a_killed_member_of_twenty_five_is_removed_everywhere_within_two_seconds() {
    let removed = removal_after_a_kill(25, 23);
    assert!(removed <= 2_000, "removed after {removed} ms");
}

/// Of 100 members, 9 monitors are far from a majority and nothing is pushed (section 4):
/// gossip alone brings few others to the dead member before stable-after would run
/// out. Members that hear of a proof look for themselves, so the witnesses are a
/// majority within a few gossip rounds (ALGORITHM.md section 10).
#[test]
fn a_killed_member_of_a_hundred_is_downed_on_the_proof_before_stable_after() {
    let removed = removal_after_a_kill(100, 23);
    assert!(removed <= 15_000, "removed after {removed} ms");
}

/// In a small cluster the welcomer pushes the joiner to everyone, the talk-backs tell
/// it that all have seen it, it tells the leader, and the leader's Up is pushed too: a
/// join takes round trips, not gossip rounds, even through a welcomer that does not lead.
#[test]
fn a_join_into_ten_is_up_everywhere_within_one_gossip_interval() {
    let mut sim = Sim::new(SimConfig::demo(10, 37));
    for slot in 0..9 {
        sim.start(slot);
    }
    let nine: Vec<Slot> = (0..9).collect();
    wait(&mut sim, MINUTE, "nine Up", |s| {
        s.all_up(&nine) && s.converged_as_one()
    });
    sim.run_for(2_000);
    // The leader (n0) answers the joiner last, so another seed welcomes it.
    sim.slow_link(9, 0, 40, 0);
    sim.slow_link(0, 9, 40, 0);
    sim.start(9);
    let all: Vec<Slot> = (0..10).collect();
    let took = wait(&mut sim, MINUTE, "the tenth seen Up everywhere", |s| {
        all.iter()
            .all(|&o| s.status_seen_by(o, 9) == Some(MemberStatus::Up))
    });
    let round = sim.config().settings.gossip_interval_ms;
    assert!(
        took < round,
        "the join took {took} ms, a gossip round is {round} ms\n{}",
        report(&sim)
    );
}

/// Every resolver decision taken at `slots`, with whom it downed.
fn decisions(sim: &Sim, slots: &[Slot]) -> Vec<(Decision, Vec<UniqueAddress>)> {
    slots
        .iter()
        .flat_map(|&slot| sim.events(slot))
        .filter_map(|(_, e)| match e {
            ClusterEvent::ResolverDecision {
                decision, downed, ..
            } => Some((*decision, downed.clone())),
            _ => None,
        })
        .collect()
}

/// A firewall that rejects fakes the proof on both sides of a partition. Only the
/// majority's proofs pass the strategy, so the minority never downs the majority on
/// them: it waits for stable-after and downs itself, as keep-majority says.
#[test]
fn a_rejecting_partition_fakes_proofs_that_only_the_majority_can_act_on() {
    let mut sim = formed(5, 29);
    let minority: Vec<UniqueAddress> = [3, 4].iter().map(|s| sim.unique(*s).unwrap()).collect();
    let cut_at = sim.now;
    sim.refusing_partition(&[3, 4]);
    let removed = wait(&mut sim, MINUTE, "the majority removes the minority", |s| {
        (0..3).all(|o| minority.iter().all(|m| gone_from(s, o, m)))
    });
    let stable_after = sim.config().settings.downing.stable_after_ms;
    assert!(
        removed < stable_after,
        "the majority acted on its proofs ({removed} ms, stable-after {stable_after} ms)"
    );
    wait(&mut sim, MINUTE, "the minority stops itself", |s| {
        !s.is_running(3) && !s.is_running(4)
    });
    for (decision, downed) in decisions(&sim, &[3, 4]) {
        assert_eq!(
            decision,
            Decision::DownReachable,
            "the minority downed {downed:?}"
        );
    }
    let majority_decisions = decisions(&sim, &[0, 1, 2]);
    assert!(
        majority_decisions
            .iter()
            .all(|(d, _)| *d == Decision::DownProvenDead),
        "{majority_decisions:?}"
    );
    assert!(sim.now - cut_at < 2 * MINUTE);
}

/// Two of four without the lowest address is not a majority under keep-majority: with
/// n0 lost (no proof) and n1 dead, the survivors' proofs of n1 cannot pass. They wait
/// for stable-after like any side of a 2 | 2 partition, and lose the tie-break.
#[test]
fn proofs_from_half_the_cluster_without_the_tie_break_wait_for_stable_after() {
    let mut sim = formed(4, 31);
    sim.power_off(0);
    sim.crash(1);
    let stopped = wait(&mut sim, MINUTE, "the survivors stop", |s| {
        !s.is_running(2) && !s.is_running(3)
    });
    // Both survivors mark both lost members: a corroborated view, with its shorter wait.
    let stable_after = sim.config().settings.downing.stable_after(true);
    assert!(stopped >= stable_after, "stopped after {stopped} ms");
    let taken = decisions(&sim, &[2, 3]);
    assert!(
        !taken.is_empty() && taken.iter().all(|(d, _)| *d == Decision::DownReachable),
        "half the cluster, without the tie-break, took the fast path: {taken:?}"
    );
}

#[test]
fn a_firewall_that_rejects_looks_like_death_but_downs_only_the_minority() {
    let mut sim = formed(3, 23);
    let minority = sim.unique(2).unwrap();
    sim.refusing_partition(&[2]);
    let detected = wait(
        &mut sim,
        MINUTE,
        "each side sees the other unreachable",
        |s| {
            unreachable_in(s, 0, &minority)
                && sim_sees_unreachable(s, 2, 0)
                && sim_sees_unreachable(s, 2, 1)
        },
    );
    assert!(detected <= 500, "refusals are seen at once ({detected} ms)");
    wait(&mut sim, MINUTE, "the minority stops itself", |s| {
        !s.is_running(2)
    });
    assert_eq!(sim.exit_reason(2), Some(ShutdownReason::Downed));
    wait(
        &mut sim,
        MINUTE,
        "the majority removes it and carries on",
        |s| gone_from(s, 0, &minority) && gone_from(s, 1, &minority) && s.all_up(&[0, 1]),
    );
}

#[test]
fn a_short_rejecting_cut_is_forgiven_when_the_member_answers_again() {
    // Healed as soon as the first observer holds a proof: one witness of three is not a
    // majority, so nothing is decided before the member answers again. (A rejection
    // that lasts until a majority holds proofs downs the member at once; see
    // `a_rejecting_partition_fakes_proofs_that_only_the_majority_can_act_on`.)
    let mut sim = formed(3, 29);
    let member = sim.unique(2).unwrap();
    sim.refusing_partition(&[2]);
    wait(&mut sim, MINUTE, "n2 unreachable on n0", |s| {
        unreachable_in(s, 0, &member)
    });
    sim.heal_network();
    wait(&mut sim, MINUTE, "n2 reachable again everywhere", |s| {
        s.all_up(&[0, 1, 2]) && s.converged_as_one() && !unreachable_in(s, 0, &member)
    });
    assert_eq!(sim.unique(2), Some(member), "nobody was downed");
}

/// A leader that has just downed a member on its own decision and is then cut off by
/// a rejecting firewall downs itself at once, without waiting for stable-after: the
/// majority holds proofs against it and downs it within a heartbeat, and a leader that
/// ran on beside it with its own decision applied would be the other half of a split
/// brain (seed 6600018048).
#[test]
fn a_leader_cut_off_just_after_downing_a_member_downs_itself_at_once() {
    let mut sim = formed(5, 37);
    let lost = sim.unique(4).unwrap();
    sim.power_off(4);
    wait(&mut sim, MINUTE, "the leader downs the lost host", |s| {
        s.view(0)
            .and_then(|g| g.member(&lost))
            .is_some_and(|m| m.status == MemberStatus::Down)
    });
    assert_eq!(
        decisions(&sim, &[0]),
        vec![(Decision::DownUnreachable, vec![lost])]
    );
    sim.refusing_partition(&[0]);
    let stopped = wait(&mut sim, MINUTE, "the cut-off leader stops", |s| {
        !s.is_running(0)
    });
    assert_eq!(sim.exit_reason(0), Some(ShutdownReason::Downed));
    let stable_after = sim.config().settings.downing.stable_after_ms;
    assert!(
        stopped < stable_after / 4,
        "stopped {stopped} ms after the cut, stable-after is {stable_after} ms"
    );
}

/// With three monitors in a cluster of twenty-five, a member cut off from the rest
/// watches everyone once its own ring's worth is unreachable, so it sees itself alone
/// after a second detection period and downs itself, and nobody else, after
/// stable-after. One ring's worth at a time, its view never settled and it ended in
/// down-all (61 s with Akka's timings).
#[test]
fn a_member_cut_off_from_twenty_five_with_three_monitors_downs_only_itself() {
    let mut config = SimConfig::demo(25, 41);
    config.settings.monitored_by_nr_of_members = 3;
    let mut sim = formed_with(config);
    let victim = sim.unique(7).unwrap();
    sim.isolate(7);
    let stopped = wait(&mut sim, MINUTE, "the cut-off member stops", |s| {
        !s.is_running(7)
    });
    assert_eq!(
        decisions(&sim, &[7]),
        vec![(Decision::DownReachable, vec![victim])]
    );
    let settings = &sim.config().settings;
    let detection = settings.acceptable_heartbeat_pause_ms + 4 * settings.heartbeat_interval_ms;
    let limit = 2 * detection + settings.downing.stable_after_ms + 1_000;
    assert!(
        stopped <= limit,
        "stopped after {stopped} ms (limit {limit})"
    );
}

/// Whether `observer` sees the node at `target` unreachable.
fn sim_sees_unreachable(sim: &Sim, observer: Slot, target: Slot) -> bool {
    sim.view(observer).is_some_and(|g| {
        g.members
            .keys()
            .any(|n| n.address == *sim.address(target) && !g.reachability.is_reachable(n))
    })
}

#[test]
fn a_message_from_a_removed_incarnation_never_brings_it_back() {
    let mut sim = formed(3, 20);
    let frozen = sim.unique(2).unwrap();
    // Frozen long enough to be downed and removed, then it resumes with its stale view
    // (everyone Up) and gossips it: the survivors must not take it back.
    sim.freeze(2, 12_000);
    wait(&mut sim, 11_000, "removed", |s| {
        gone_from(s, 0, &frozen) && gone_from(s, 1, &frozen)
    });
    // It resumes 12 s in and is told it is gone.
    sim.run_for(15_000);
    assert!(!sim.view(0).unwrap().has_member(&frozen));
    assert!(!sim.is_running(2));
}

/// Delivers every message between the given nodes, ticking them, until `done` or the
/// time limit; returns the time reached.
fn pump(
    nodes: &mut [&mut Node],
    mut now: u64,
    limit: u64,
    done: impl Fn(&[&mut Node]) -> bool,
) -> u64 {
    while now < limit && !done(nodes) {
        now += 10;
        let mut mail = Vec::new();
        for n in nodes.iter_mut() {
            n.tick(now);
            for out in n.take_outputs() {
                if let Output::Send { to, message } = out {
                    mail.push((to, message));
                }
            }
        }
        for (to, message) in mail {
            if let Some(n) = nodes
                .iter_mut()
                .find(|n| n.snapshot().self_node.address == to)
            {
                n.handle_message(now, message);
            }
        }
    }
    now
}

#[test]
fn a_joining_node_follows_a_re_resolved_seed_list() {
    let settings = Settings::demo("dns");
    let a_addr = Address::new("10.0.0.1", 2551);
    let b_addr = Address::new("10.0.0.2", 2551);
    let gone = Address::new("10.0.0.9", 2551);
    let mut a = Node::new(
        UniqueAddress::new(a_addr.clone(), 1),
        Default::default(),
        vec![a_addr.clone()],
        settings.clone(),
        1,
        0,
    );
    // B's name resolved, at start, only to an address where nothing runs, and it is
    // not the first seed, so it cannot form a cluster of its own.
    let mut b = Node::new(
        UniqueAddress::new(b_addr.clone(), 2),
        Default::default(),
        vec![gone.clone(), b_addr.clone()],
        settings,
        2,
        0,
    );
    let is_member = |n: &Node| n.snapshot().self_status == Some(MemberStatus::Up);
    let now = pump(&mut [&mut a, &mut b], 0, 10_000, |_| false);
    assert!(is_member(&a), "A formed its cluster");
    assert!(!is_member(&b), "B waits: its only other seed is gone");
    // Re-resolution now finds A first.
    b.update_seeds(now, vec![a_addr.clone(), b_addr.clone()]);
    let joined_at = pump(&mut [&mut a, &mut b], now, now + 10_000, |n| {
        n.iter()
            .all(|x| x.snapshot().self_status == Some(MemberStatus::Up))
            && n[0].snapshot().members.len() == 2
    });
    assert!(
        joined_at < now + 10_000,
        "B joined A after the seeds changed"
    );
}

#[test]
fn a_snapshot_of_a_long_silent_member_survives_json() {
    let mut config = SimConfig::demo(3, 5);
    config.settings.downing.corroborated_stable_after_ms = None;
    let mut sim = formed_with(config);
    // A lost host stays in the view, silent, until stable-after (the full one: its
    // two observers would otherwise corroborate it, and downing it takes 700 ms).
    sim.power_off(2);
    // Long enough for phi to overflow to infinity before the member is removed.
    sim.run_for(2_500);
    let snapshot = sim.node(0).unwrap().snapshot();
    assert!(snapshot.phi.iter().all(|(_, phi)| phi.is_finite()));
    assert!(
        snapshot
            .phi
            .iter()
            .any(|(_, phi)| *phi >= shared::node::PHI_CAP),
        "the silent member's phi reached the cap: {:?}",
        snapshot.phi
    );
    let json = serde_json::to_string(&snapshot).unwrap();
    let back: shared::ClusterSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back.phi.len(), snapshot.phi.len());
}

/// A member of two (the founder n0 at :2552 and p at :2553) probing a seed, answered by
/// a member of the same cluster that joined through another and that p has not heard of
/// yet: three members, its own address lowest. Seen in a five-process start, where p
/// then downed its whole cluster as the smaller island.
fn probed_member(now: u64) -> (Node, UniqueAddress, Message) {
    use shared::{Gossip, Member};
    let founder = UniqueAddress::new(Address::new("10.0.0.1", 2552), 1);
    let p = UniqueAddress::new(Address::new("10.0.0.1", 2553), 2);
    let stranger = UniqueAddress::new(Address::new("10.0.0.1", 2551), 3);
    let mut gossip = Gossip::with_member(Member::joining(founder.clone(), Default::default()));
    gossip
        .members
        .insert(p.clone(), Member::joining(p.clone(), Default::default()));
    for m in gossip.members.values_mut() {
        m.status = MemberStatus::Up;
    }
    gossip.bump(&founder);
    let node = Node::with_state(p, gossip, Settings::demo("probe"), 1, now);
    let answer = |knows_you| Message::InitJoinAck {
        from: stranger.clone(),
        cluster_size: 3,
        lowest_member: stranger.address.clone(),
        lineage: 1,
        knows_you,
    };
    (
        node,
        stranger.clone(),
        answer(shared::wire::Acquaintance::Stranger),
    )
}

fn downed_anyone(node: &mut Node) -> bool {
    let decided = node
        .take_outputs()
        .into_iter()
        .any(|o| matches!(o, Output::Event(ClusterEvent::ResolverDecision { .. })));
    decided
        || node
            .gossip()
            .members
            .values()
            .any(|m| m.status == MemberStatus::Down)
}

#[test]
fn a_probe_answered_by_a_member_that_knows_us_leaves_the_cluster_alone() {
    let (mut node, stranger, _) = probed_member(0);
    let knows_us = Message::InitJoinAck {
        from: stranger.clone(),
        cluster_size: 3,
        lowest_member: stranger.address.clone(),
        lineage: 1,
        knows_you: shared::wire::Acquaintance::Member,
    };
    for t in [0, 10_000, 60_000] {
        node.handle_message(t, knows_us.clone());
    }
    assert!(
        !downed_anyone(&mut node),
        "one cluster taken for a bigger island"
    );
}

#[test]
fn a_stranger_of_our_lineage_counts_as_an_island_only_once_it_stays_outside() {
    let (mut node, _, stranger_answer) = probed_member(0);
    let patience = 3 * Settings::demo("probe").seed_node_timeout_ms;
    node.handle_message(0, stranger_answer.clone());
    node.handle_message(patience - 1, stranger_answer.clone());
    assert!(
        !downed_anyone(&mut node),
        "acted before gossip could merge the views"
    );
    node.handle_message(patience, stranger_answer);
    assert!(
        downed_anyone(&mut node),
        "a bigger island of our lineage that stays outside is yielded to"
    );
}

/// Whether `observer`'s own row marks `subject` unreachable.
fn marked_by(sim: &Sim, observer: Slot, subject: &UniqueAddress) -> bool {
    let (Some(g), Some(me)) = (sim.view(observer), sim.unique(observer)) else {
        return false;
    };
    g.has_member(subject) && !g.reachability.is_reachable_by(&me, subject)
}

#[test]
fn a_member_paused_for_ten_seconds_accuses_nobody_and_still_detects_a_lost_host_in_time() {
    let mut config = SimConfig::demo(3, 23);
    config.settings = Settings::akka_defaults("sim");
    let mut sim = formed_with(config);
    sim.run_for(30_000);
    for slot in 0..3 {
        // Joining took a while, but none of it was time away.
        assert_eq!(sim.node(slot).unwrap().time_away_ms(), 0, "n{slot}");
    }
    sim.freeze(0, 10_000);
    sim.run_for(10_000);
    let (n1, n2) = (sim.unique(1).unwrap(), sim.unique(2).unwrap());
    // Awake, its peers' silence over the pause is its own, not theirs.
    let mut accused = false;
    sim.run_until(8_000, |s| {
        accused |= marked_by(s, 0, &n1) || marked_by(s, 0, &n2);
        false
    });
    assert_safe(&sim);
    assert!(!accused, "n0 accused a healthy member\n{}", report(&sim));
    let away = sim.node(0).unwrap().time_away_ms();
    assert!(
        (9_000..=10_000).contains(&away),
        "n0 found itself away {away} ms"
    );
    // Nor did its detectors learn the pause as a heartbeat interval: a lost host is
    // seen as soon as ever (4 to 7 s), not after the 10 s it would have learned.
    sim.power_off(1);
    let detected = wait(&mut sim, MINUTE, "n0 marks n1", |s| marked_by(s, 0, &n1));
    assert!(
        (4_000..=7_000).contains(&detected),
        "n0 detected the lost host after {detected} ms"
    );
}

/// The peer comparison's common profile: Akka's one-second timings and three monitors
/// per member; when `probes` is set, indirect probes through three helpers and the
/// shorter stable-after of a corroborated view.
fn common_profile(probes: bool) -> Settings {
    let mut settings = Settings::akka_defaults("sim");
    settings.monitored_by_nr_of_members = 3;
    if probes {
        settings
            .with_indirect_probes(3)
            .with_corroborated_stable_after()
    } else {
        settings
    }
}

fn formed_common(nodes: usize, seed: u64, probes: bool) -> Sim {
    let mut config = SimConfig::demo(nodes, seed);
    config.settings = common_profile(probes);
    let mut sim = formed_with(config);
    sim.run_for(20_000);
    sim
}

fn unreachable_alarms(sim: &Sim) -> usize {
    (0..sim.len())
        .map(|slot| {
            sim.events(slot)
                .iter()
                .filter(|(_, e)| matches!(e, ClusterEvent::UnreachableMember { .. }))
                .count()
        })
        .sum()
}

/// How long until every other running member's view holds `slot` unreachable.
fn time_until_all_see_unreachable(sim: &mut Sim, slot: Slot) -> u64 {
    let subject = sim.unique(slot).unwrap();
    let others: Vec<Slot> = (0..sim.len()).filter(|s| *s != slot).collect();
    wait(sim, MINUTE, "every other member sees it unreachable", |s| {
        others.iter().all(|o| {
            s.view(*o)
                .is_some_and(|g| !g.reachability.is_reachable(&subject))
        })
    })
}

#[test]
fn a_lossy_member_is_vouched_for_by_its_helpers_and_nobody_raises_an_alarm() {
    // One member in ten loses a fifth of its messages both ways for ten minutes. Phi
    // alone, watching each link by itself, accuses after a few losses in a row.
    let mut alarms = Vec::new();
    for probes in [false, true] {
        let mut sim = formed_common(10, 41, probes);
        let before = unreachable_alarms(&sim);
        sim.lossy_member(4, 0.2);
        sim.run_for(10 * MINUTE);
        assert_safe(&sim);
        alarms.push(unreachable_alarms(&sim) - before);
    }
    assert!(
        alarms[0] > 0,
        "phi alone raised no alarm: the loss is too mild to test"
    );
    assert_eq!(
        alarms[1], 0,
        "with indirect probes (phi alone: {})",
        alarms[0]
    );
}

/// Freezes n6 of ten for `freeze_ms`, in the common profile without and then with
/// indirect probes, and returns what `measure` took in each.
fn freeze_with_and_without_probes(
    seed: u64,
    freeze_ms: u64,
    measure: fn(&mut Sim, Slot) -> u64,
) -> [u64; 2] {
    [false, true].map(|probes| {
        let mut sim = formed_common(10, seed, probes);
        sim.freeze(6, freeze_ms);
        measure(&mut sim, 6)
    })
}

#[test]
fn a_frozen_member_is_seen_unreachable_everywhere_a_second_sooner_with_indirect_probes() {
    let took = freeze_with_and_without_probes(42, MINUTE, time_until_all_see_unreachable);
    // Phi with Akka's 3 s acceptable pause needs 4-5 s; the helpers confirm the
    // silence after a heartbeat is one and a half intervals overdue.
    assert!(
        took[1] <= 3_500,
        "with probes: {} ms (phi alone: {} ms)",
        took[1],
        took[0]
    );
    assert!(
        took[1] + 1_000 <= took[0],
        "with probes {} ms, phi alone {} ms",
        took[1],
        took[0]
    );
}

#[test]
fn a_member_cut_off_is_found_out_quickly_but_accuses_the_others_no_sooner_than_phi() {
    let mut sim = formed_common(10, 43, true);
    sim.isolate(2);
    let found = time_until_all_see_unreachable(&mut sim, 2);
    assert!(found <= 3_500, "the others took {found} ms");
    // Its helpers are all out of reach, so its rounds prove nothing and it waits for
    // phi: it never marks anyone ahead of the acceptable pause.
    let others: Vec<UniqueAddress> = (0..10)
        .filter(|s| *s != 2)
        .map(|s| sim.unique(s).unwrap())
        .collect();
    let accused = wait(&mut sim, MINUTE, "n2 marks someone", |s| {
        others.iter().any(|o| marked_by(s, 2, o))
    });
    let accused_at = found + accused;
    let pause = common_profile(true).acceptable_heartbeat_pause_ms;
    assert!(accused_at >= pause, "n2 accused after {accused_at} ms");
}

#[test]
fn a_one_way_cut_is_still_seen_though_the_helpers_vouch_for_the_member() {
    let mut sim = formed_common(5, 44, true);
    let subject = sim.unique(3).unwrap();
    sim.cut_one_way(3, 0);
    // n0 no longer hears n3, though n3 hears n0 and its helpers hear both: their reports
    // keep n3 available until the direct-silence limit, then the broken link shows.
    let seen = wait(&mut sim, MINUTE, "n0 marks n3", |s| {
        marked_by(s, 0, &subject)
    });
    let settings = common_profile(true);
    let limit = settings.acceptable_heartbeat_pause_ms + 10 * settings.heartbeat_interval_ms;
    assert!(
        seen >= limit,
        "marked after {seen} ms, before the {limit} ms limit"
    );
    assert!(seen <= limit + 3_000, "marked after {seen} ms");
}

/// How long until every other running member's view holds `slot` Down or removed.
fn time_until_all_see_down(sim: &mut Sim, slot: Slot) -> u64 {
    let others: Vec<Slot> = (0..sim.len()).filter(|s| *s != slot).collect();
    wait(sim, 2 * MINUTE, "every other member holds it down", |s| {
        others
            .iter()
            .all(|o| matches!(s.status_seen_by(*o, slot), None | Some(MemberStatus::Down)))
    })
}

#[test]
fn a_frozen_member_that_all_its_monitors_mark_is_downed_after_the_shorter_stable_after() {
    let took = freeze_with_and_without_probes(45, 2 * MINUTE, time_until_all_see_down);
    // Found out in about 3 s by all three of its monitors: stable after 3 + 2 s rather
    // than Akka's 20 s.
    assert!(
        took[1] <= 11_000,
        "corroborated: {} ms (phi alone: {} ms)",
        took[1],
        took[0]
    );
    assert!(took[0] >= 20_000, "phi alone: {} ms", took[0]);
}

#[test]
fn a_member_cut_off_is_downed_sooner_by_the_rest_and_downs_only_itself_on_its_own_view() {
    let mut sim = formed_common(10, 46, true);
    let n2 = sim.unique(2).unwrap();
    sim.isolate(2);
    let downed = time_until_all_see_down(&mut sim, 2);
    assert!(downed <= 11_000, "the rest downed it after {downed} ms");
    // Alone, n2 is the only observer of everyone it lost: its view is never
    // corroborated, so it waits the full stable-after, then downs only itself.
    let stopped = downed + wait(&mut sim, 2 * MINUTE, "n2 stops", |s| !s.is_running(2));
    let stable_after = common_profile(true).downing.stable_after_ms;
    assert!(stopped >= stable_after, "n2 stopped after {stopped} ms");
    let downed_others = sim.events(2).iter().any(|(_, e)| {
        matches!(e, ClusterEvent::ResolverDecision { downed, .. } if downed.iter().any(|d| *d != n2))
    });
    assert!(!downed_others, "n2 downed others\n{}", report(&sim));
}
