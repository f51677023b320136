//! Geometry and derived tables for drawing a view: members placed on a ring in a fixed
//! SVG box (so streaming events never move the layout), directed edges shortened to
//! end at the circles, the observer x subject reachability matrix, and status colours.

use crate::state::NodeView;
use shared::failure_detector::monitoring_plan;
use shared::{MemberStatus, UniqueAddress};
use std::collections::BTreeSet;

/// Position of member `i` of `n` on a circle of radius `r` around (`cx`, `cy`),
/// starting at the top and going clockwise.
pub fn ring_position(i: usize, n: usize, cx: f64, cy: f64, r: f64) -> (f64, f64) {
    if n <= 1 {
        return (cx, cy);
    }
    let angle = -std::f64::consts::FRAC_PI_2 + std::f64::consts::TAU * i as f64 / n as f64;
    let (cos, sin) = cos_sin(angle);
    (cx + r * cos, cy + r * sin)
}

/// The cosine and sine of `angle` (radians), within 1e-9: the angle taken to [-π, π),
/// then ten terms of each Taylor series. This is the page's only trigonometry, and
/// `f64::cos` and `sin` brought libm's argument reduction (8 KB of code) into it.
fn cos_sin(angle: f64) -> (f64, f64) {
    use std::f64::consts::TAU;
    let x = angle - TAU * (angle / TAU + 0.5).floor();
    let x2 = x * x;
    let (mut cos, mut sin) = (1.0, x);
    let (mut cos_term, mut sin_term) = (1.0, x);
    for k in 1..=10 {
        let k = f64::from(k);
        cos_term *= -x2 / ((2.0 * k - 1.0) * (2.0 * k));
        sin_term *= -x2 / ((2.0 * k) * (2.0 * k + 1.0));
        cos += cos_term;
        sin += sin_term;
    }
    (cos, sin)
}

/// A directed edge from `from` to `to` whose ends stop `gap` short of the centres, moved
/// sideways by `offset` (to the right of the direction of travel) so the edges A->B and
/// B->A are both visible.
pub fn edge(from: (f64, f64), to: (f64, f64), gap: f64, offset: f64) -> (f64, f64, f64, f64) {
    let (dx, dy) = (to.0 - from.0, to.1 - from.1);
    let len = (dx * dx + dy * dy).sqrt();
    if len <= 2.0 * gap || len == 0.0 {
        return (from.0, from.1, to.0, to.1);
    }
    let (ux, uy) = (dx / len, dy / len);
    let (ox, oy) = (-uy * offset, ux * offset);
    (
        from.0 + ux * gap + ox,
        from.1 + uy * gap + oy,
        to.0 - ux * gap + ox,
        to.1 - uy * gap + oy,
    )
}

/// CSS class of a status (`st-up`, `st-weaklyup`, ...).
pub fn status_class(status: MemberStatus) -> String {
    format!("st-{}", status.to_string().to_ascii_lowercase())
}

/// A cell of the reachability matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// The observer itself.
    Itself,
    /// The observer does not report the subject unreachable.
    Reachable,
    /// The observer reports the subject unreachable.
    Unreachable,
}

/// The reachability matrix of a view: rows are observers, columns subjects, both the
/// view's members in address order (Removed ones left out).
pub fn matrix(view: &NodeView) -> (Vec<UniqueAddress>, Vec<Vec<Cell>>) {
    let nodes: Vec<UniqueAddress> = view
        .display_members()
        .into_iter()
        .filter(|m| m.status != MemberStatus::Removed)
        .map(|m| m.node.clone())
        .collect();
    let rows = nodes
        .iter()
        .map(|observer| {
            nodes
                .iter()
                .map(|subject| {
                    if observer == subject {
                        Cell::Itself
                    } else if view.sees_unreachable(observer, subject) {
                        Cell::Unreachable
                    } else {
                        Cell::Reachable
                    }
                })
                .collect()
        })
        .collect();
    (nodes, rows)
}

/// Who monitors whom on the heartbeat ring, as this view's members would work it out
/// (the core's own rule, `monitoring_plan`): (monitor, monitored) for every member
/// that is not Down or Removed. The request in akka#22090: draw the ring.
pub fn ring_edges(view: &NodeView, monitored_by: usize) -> Vec<(UniqueAddress, UniqueAddress)> {
    let live: BTreeSet<UniqueAddress> = view
        .members()
        .filter(|m| !matches!(m.status, MemberStatus::Down | MemberStatus::Removed))
        .map(|m| m.node.clone())
        .collect();
    let unreachable: BTreeSet<UniqueAddress> = view.unreachable.keys().cloned().collect();
    let mut edges = Vec::new();
    for me in &live {
        let mut monitored = live.clone();
        monitored.remove(me);
        let own_marks: BTreeSet<UniqueAddress> = view
            .unreachable
            .iter()
            .filter(|(_, observers)| observers.contains(me))
            .map(|(subject, _)| subject.clone())
            .collect();
        let plan = monitoring_plan(me, &monitored, &unreachable, &own_marks, monitored_by);
        edges.extend(plan.into_iter().map(|to| (me.clone(), to)));
    }
    edges
}

/// Every (observer, subject) pair the view reports unreachable, for drawing red edges.
pub fn unreachable_edges(view: &NodeView) -> Vec<(UniqueAddress, UniqueAddress)> {
    view.unreachable
        .iter()
        .flat_map(|(subject, observers)| {
            observers
                .iter()
                .filter(move |o| *o != subject)
                .map(move |o| (o.clone(), subject.clone()))
        })
        .collect()
}

/// A short label for the node at `host:port`: `:port` when the host is loopback
/// (nodes on one machine differ by port), else the host (containers and machines
/// differ by address and often share the port). The whole text if it has no port.
pub fn short(addr: &str) -> String {
    match addr.rsplit_once(':') {
        Some((host, port)) => node_label(host, port),
        None => addr.to_string(),
    }
}

/// The label, short enough for a node's disc: an IPv4 host keeps its last two parts
/// (`.0.4`), a name its first six characters.
pub fn disc_label(host: &str, port: impl std::fmt::Display) -> String {
    let label = node_label(host, port);
    if label.starts_with(':') || label.len() <= 6 {
        return label;
    }
    let parts: Vec<&str> = label.split('.').collect();
    if parts.len() == 4 && parts.iter().all(|p| p.parse::<u8>().is_ok()) {
        format!(".{}.{}", parts[2], parts[3])
    } else {
        label.chars().take(6).collect()
    }
}

/// The same label from a host and a port.
pub fn node_label(host: &str, port: impl std::fmt::Display) -> String {
    let loopback =
        host == "localhost" || host.starts_with("127.") || host == "::1" || host == "[::1]";
    if loopback {
        format!(":{port}")
    } else {
        host.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{event, member, node, snapshot, three_up};
    use shared::events::ClusterEvent;

    fn close(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9
    }

    #[test]
    fn the_series_agrees_with_the_standard_cosine_and_sine() {
        for step in -400..=400 {
            let angle = f64::from(step) * 0.037;
            let (cos, sin) = cos_sin(angle);
            assert!(
                close((cos, sin), (angle.cos(), angle.sin())),
                "angle {angle}: {cos}, {sin}"
            );
        }
    }

    #[test]
    fn the_ring_has_each_member_watch_and_be_watched_by_monitored_by_others() {
        let members: Vec<_> = (0..6)
            .map(|i| member(2551 + i, MemberStatus::Up, 1 + i as u32))
            .collect();
        let mut v = NodeView::new("h");
        v.apply(&snapshot(1, 2551, &members));
        let edges = ring_edges(&v, 2);
        assert_eq!(edges.len(), 12);
        for m in &members {
            assert_eq!(edges.iter().filter(|(from, _)| *from == m.node).count(), 2);
            assert_eq!(edges.iter().filter(|(_, to)| *to == m.node).count(), 2);
        }
        assert_eq!(
            ring_edges(&v, 9).len(),
            30,
            "small clusters: everyone watches everyone"
        );
        let mut down = members.clone();
        down[5].status = MemberStatus::Down;
        v.apply(&snapshot(2, 2551, &down));
        assert!(ring_edges(&v, 2)
            .iter()
            .all(|(a, b)| *a != down[5].node && *b != down[5].node));
    }

    #[test]
    fn members_sit_on_the_ring_from_the_top_clockwise() {
        assert!(close(
            ring_position(0, 4, 100.0, 100.0, 50.0),
            (100.0, 50.0)
        ));
        assert!(close(
            ring_position(1, 4, 100.0, 100.0, 50.0),
            (150.0, 100.0)
        ));
        assert!(close(
            ring_position(0, 1, 100.0, 100.0, 50.0),
            (100.0, 100.0)
        ));
    }

    #[test]
    fn edges_stop_at_the_circles_and_opposite_edges_do_not_overlap() {
        let (x1, y1, x2, y2) = edge((0.0, 0.0), (100.0, 0.0), 10.0, 0.0);
        assert_eq!((x1, y1, x2, y2), (10.0, 0.0, 90.0, 0.0));
        let there = edge((0.0, 0.0), (100.0, 0.0), 10.0, 4.0);
        let back = edge((100.0, 0.0), (0.0, 0.0), 10.0, 4.0);
        assert_eq!(there.1, 4.0);
        assert_eq!(back.1, -4.0);
    }

    #[test]
    fn status_classes_are_lower_case_names() {
        assert_eq!(status_class(MemberStatus::WeaklyUp), "st-weaklyup");
        assert_eq!(status_class(MemberStatus::Up), "st-up");
    }

    #[test]
    fn the_matrix_marks_what_each_observer_sees_unreachable() {
        let mut v = NodeView::new("h");
        v.apply(&snapshot(1, 2551, &three_up()));
        v.apply(&event(
            2,
            10,
            ClusterEvent::UnreachableMember {
                member: member(2553, shared::MemberStatus::Up, 3),
                observed_by: vec![node(2551), node(2552)],
            },
        ));
        let (nodes, rows) = matrix(&v);
        assert_eq!(nodes, [node(2551), node(2552), node(2553)]);
        assert_eq!(
            rows[0],
            [Cell::Itself, Cell::Reachable, Cell::Unreachable],
            "2551 sees 2553 unreachable"
        );
        assert_eq!(rows[2], [Cell::Reachable, Cell::Reachable, Cell::Itself]);
        let edges = unreachable_edges(&v);
        assert_eq!(edges, [(node(2551), node(2553)), (node(2552), node(2553))]);
        assert_eq!(short("127.0.0.1:2553"), ":2553");
        assert_eq!(short("172.28.0.4:2551"), "172.28.0.4");
        assert_eq!(short("n1:2551"), "n1");
        assert_eq!(disc_label("172.28.0.4", 2551), ".0.4");
        assert_eq!(disc_label("127.0.0.1", 2553), ":2553");
        assert_eq!(disc_label("globomantics-2", 2551), "globom");
    }
}
