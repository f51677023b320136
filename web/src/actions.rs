//! What each button does, as a list of HTTP requests: launcher actions, leave and
//! down, link faults between two nodes, partitioning a node from the rest, healing,
//! freezing; and how each answer reads in the timeline.
//!
//! When the page knows a demo launcher, every node and link action goes through it,
//! addressed by slot: the launcher relays membership and fault actions to the nodes
//! (in public mode only it holds their token) and applies the public rules. Without
//! one, the page calls the nodes itself: a two-way cut is set on both ends, a single
//! link heals with an all-default fault, a down goes to a live node other than the
//! target. Freezing and lossy links have no launcher relay, so they go to the nodes
//! directly and are offered only where the page may do that (not in public mode).
//!
//! Planning is pure so the tests pin down which URL each request goes to; the browser
//! code only sends the plan and writes each result into the timeline.

use crate::model::Model;
use crate::protocol::{error_text, message_text};
use crate::timeline::Level;
pub use shared::api::NodeAction;
use shared::api::{
    ErrorBody, FreezeRequest, LauncherLinkRequest, LinkFault, LinkFaultRequest, LinkKind,
};
use shared::faults::{link_entries, End};
pub use shared::faults::{LOSS, SLOW_DELAY_MS, SLOW_JITTER_MS};

/// HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
}

impl Method {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// A request body.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// None.
    Empty,
    /// `application/json`.
    Json(String),
    /// `application/x-www-form-urlencoded`.
    Form(String),
}

/// One request of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Body.
    pub body: Body,
    /// Whether it sends the bearer token from the token field, if any (node management
    /// calls, and launcher calls, where it is the operator token).
    pub auth: bool,
    /// What it does, for the timeline.
    pub what: String,
}

/// A hint for a node button's title.
pub fn hint(action: NodeAction) -> &'static str {
    match action {
        NodeAction::Kill => "SIGKILL the process (launcher)",
        NodeAction::Pause => "SIGSTOP the process (launcher)",
        NodeAction::Resume => "SIGCONT the process (launcher)",
        NodeAction::Restart => "kill and start a new incarnation (launcher)",
        NodeAction::Stop => "graceful leave, then not restarted (launcher)",
        NodeAction::Leave => "ask the member to leave (management API)",
        NodeAction::Down => "mark the member Down (management API)",
        NodeAction::Partition => "cut every link between this node and the others",
        NodeAction::Heal => "heal every link of this node",
        NodeAction::Freeze => "stop processing for 5 s; the process stays up (node API)",
    }
}

/// How the timeline names a link action between two nodes.
fn describe(kind: LinkKind, from: &str, to: &str) -> String {
    match kind {
        LinkKind::Cut => format!("cut {from} ⇎ {to}"),
        LinkKind::OneWay => format!("cut {from} → {to} one way"),
        LinkKind::Slow => format!("slow {from} ⇄ {to}"),
        LinkKind::Heal => format!("heal {from} ⇄ {to}"),
        LinkKind::Lossy => format!("lossy {from} ⇄ {to}"),
    }
}

/// How the timeline names one fault-table entry set on `on` for its `peer`.
fn describe_entry(kind: LinkKind, fault: &LinkFault, on: &str, peer: &str) -> String {
    match kind {
        LinkKind::OneWay if fault.cut_outbound => format!("cut {on} → {peer} one way (on {on})"),
        LinkKind::OneWay | LinkKind::Heal => format!("heal {on} → {peer} (on {on})"),
        LinkKind::Cut => format!("cut {on} ⇎ {peer} (on {on})"),
        LinkKind::Slow => format!("slow {on} → {peer} by {SLOW_DELAY_MS}±{SLOW_JITTER_MS} ms"),
        LinkKind::Lossy => format!("drop {}% of {on} → {peer}", (LOSS * 100.0).round()),
    }
}

/// How long "freeze" stops a node (ms).
pub const FREEZE_MS: u64 = 5_000;

/// The URL of `path` on the node at `http`: through the relay of the origin the page
/// was loaded from (`/nodes/{http}{path}`), relative, so it works behind any proxy and
/// over HTTPS. The page never talks to a node's own port.
pub fn url(http: &str, path: &str) -> String {
    format!("/nodes/{http}{path}")
}

/// The URL of a launcher path: relative, since the launcher is the origin (or the
/// node that served the page relays `/launcher/...` to it).
pub fn launcher_url(path: &str) -> String {
    path.to_string()
}

/// A cluster address as a path segment (brackets of IPv6 literals escaped).
pub fn path_segment(addr: &str) -> String {
    addr.replace('[', "%5B").replace(']', "%5D")
}

fn link_fault(on_http: &str, peer: &str, fault: LinkFault, what: String) -> Planned {
    let body = LinkFaultRequest {
        peer: peer.to_string(),
        fault,
    };
    Planned {
        method: Method::Post,
        url: url(on_http, "/faults/links"),
        body: Body::Json(serde_json::to_string(&body).expect("serializable")),
        auth: true,
        what,
    }
}

fn http_or_err<'a>(model: &'a Model, cluster: &str) -> Result<&'a str, String> {
    model
        .directory
        .http_of(cluster)
        .ok_or_else(|| format!("the HTTP address of {cluster} is not known yet"))
}

/// A launcher request to `path` (always with the operator token, if one is typed).
fn to_launcher(path: &str, body: Body, what: String) -> Planned {
    Planned {
        method: Method::Post,
        url: launcher_url(path),
        body,
        auth: true,
        what,
    }
}

/// The launcher's slot number of the node at `cluster`, or why there is none.
fn slot_number(model: &Model, cluster: &str) -> Result<usize, String> {
    model
        .directory
        .slot_of(cluster)
        .map(|s| s.slot)
        .ok_or_else(|| format!("the launcher has no slot for {cluster}"))
}

/// Before the launcher's first answer nothing is planned around it.
fn slots_known(model: &Model) -> Result<(), String> {
    if model.directory.slots.is_empty() {
        Err("waiting for the launcher's list of nodes; try again in a moment".into())
    } else {
        Ok(())
    }
}

/// The requests for `action` on the node at cluster address `node`.
pub fn plan_node(model: &Model, action: NodeAction, node: &str) -> Result<Vec<Planned>, String> {
    let name = action.name();
    if action == NodeAction::Freeze {
        return plan_freeze(model, node);
    }
    match model.directory.launcher.as_deref() {
        Some(_) => match slots_known(model).and_then(|()| slot_number(model, node)) {
            Ok(slot) => {
                return Ok(vec![to_launcher(
                    &format!("/launcher/nodes/{slot}/{name}"),
                    Body::Empty,
                    format!("{name} n{slot} ({node})"),
                )]);
            }
            // A member the launcher did not start: only the node's own API can help,
            // and only where the page may call it.
            Err(e)
                if action.needs_launcher()
                    || !model.direct_faults_allowed()
                    || model.directory.slots.is_empty() =>
            {
                return Err(e)
            }
            Err(_) => {}
        },
        None if action.needs_launcher() => {
            return Err(
                "no launcher: start the cluster with `node demo` to kill, pause or restart".into(),
            )
        }
        None => {}
    }
    let members_path = format!("/cluster/members/{}", path_segment(node));
    match action {
        NodeAction::Leave => {
            // Its own node if it answers, else any live member can ask for it.
            let via = model
                .directory
                .http_of(node)
                .filter(|h| model.is_live(h))
                .map(str::to_string)
                .unwrap_or_else(|| model.request_base());
            Ok(vec![Planned {
                method: Method::Delete,
                url: url(&via, &members_path),
                body: Body::Empty,
                auth: true,
                what: format!("leave {node} (via {via})"),
            }])
        }
        NodeAction::Down => {
            let via = model
                .live_other_than(node)
                .unwrap_or_else(|| model.request_base());
            Ok(vec![Planned {
                method: Method::Put,
                url: url(&via, &members_path),
                body: Body::Form("operation=Down".into()),
                auth: true,
                what: format!("down {node} (via {via})"),
            }])
        }
        NodeAction::Partition => plan_node_links(model, LinkKind::Cut, node),
        NodeAction::Heal => plan_node_links(model, LinkKind::Heal, node),
        _ => unreachable!("launcher actions and freeze returned above"),
    }
}

/// `POST /faults/freeze` on the node itself (no launcher relay; not in public mode).
pub fn plan_freeze(model: &Model, node: &str) -> Result<Vec<Planned>, String> {
    if !model.direct_faults_allowed() {
        return Err("freezing is not offered in the public demo".into());
    }
    let http = http_or_err(model, node)?;
    let body = FreezeRequest { millis: FREEZE_MS };
    Ok(vec![Planned {
        method: Method::Post,
        url: url(http, "/faults/freeze"),
        body: Body::Json(serde_json::to_string(&body).expect("serializable")),
        auth: true,
        what: format!("freeze {node} for {} s", FREEZE_MS / 1000),
    }])
}

/// The requests for `kind` on the link between `from` and `to` (cluster addresses).
pub fn plan_link(
    model: &Model,
    kind: LinkKind,
    from: &str,
    to: &str,
) -> Result<Vec<Planned>, String> {
    if from == to {
        return Err("a link needs two different nodes".into());
    }
    if model.directory.launcher.is_some() && kind.launcher_relays() {
        slots_known(model)?;
        match (slot_number(model, from), slot_number(model, to)) {
            (Ok(a), Ok(b)) => {
                let body = LauncherLinkRequest {
                    from: a,
                    to: b,
                    kind,
                };
                return Ok(vec![to_launcher(
                    "/launcher/links",
                    Body::Json(serde_json::to_string(&body).expect("serializable")),
                    describe(kind, &format!("n{a} ({from})"), &format!("n{b} ({to})")),
                )]);
            }
            (Err(e), _) | (_, Err(e)) if !model.direct_faults_allowed() => return Err(e),
            _ => {}
        }
    }
    if !model.direct_faults_allowed() {
        return Err(format!(
            "{} links are not offered in the public demo",
            kind.name()
        ));
    }
    let (a, b) = (http_or_err(model, from)?, http_or_err(model, to)?);
    Ok(link_requests(kind, (from, Some(a)), (to, Some(b))))
}

/// The fault-table requests `kind` means on the link between two nodes (cluster
/// address, HTTP address if known), from the shared planner; an end whose HTTP
/// address is unknown is skipped.
fn link_requests(
    kind: LinkKind,
    from: (&str, Option<&str>),
    to: (&str, Option<&str>),
) -> Vec<Planned> {
    link_entries(kind)
        .into_iter()
        .filter_map(|(end, fault)| {
            let ((on, http), (peer, _)) = match end {
                End::From => (from, to),
                End::To => (to, from),
            };
            let what = describe_entry(kind, &fault, on, peer);
            http.map(|http| link_fault(http, peer, fault, what))
        })
        .collect()
}

/// A node-wide control without a launcher: `kind` (a cut to partition, a heal to
/// heal) on every link between `node` and the other nodes, at both ends.
fn plan_node_links(model: &Model, kind: LinkKind, node: &str) -> Result<Vec<Planned>, String> {
    let own = model.directory.http_of(node).map(str::to_string);
    let others = model.nodes();
    let clusters: Vec<&str> = others.iter().map(|r| r.cluster.as_str()).collect();
    let mut plan = Vec::new();
    for (_, other, kind) in shared::faults::node_links(kind, &node, &clusters) {
        let theirs = others
            .iter()
            .find(|r| r.cluster == *other)
            .and_then(|r| r.http.as_deref());
        plan.extend(link_requests(kind, (node, own.as_deref()), (other, theirs)));
    }
    if plan.is_empty() {
        return Err(format!(
            "no other node with a known HTTP address for {node}"
        ));
    }
    Ok(plan)
}

/// `POST /launcher/heal` with a launcher (every link on every node, and paused nodes
/// resumed), else `DELETE /faults` on every live node.
pub fn plan_heal_all(model: &Model) -> Result<Vec<Planned>, String> {
    if model.directory.launcher.is_some() {
        return Ok(vec![to_launcher(
            "/launcher/heal",
            Body::Empty,
            "heal all (launcher)".into(),
        )]);
    }
    let live = model.live();
    if live.is_empty() {
        return Err("no live node to heal".into());
    }
    Ok(live
        .into_iter()
        .map(|http| {
            let who = model
                .directory
                .cluster_of(&http)
                .unwrap_or(&http)
                .to_string();
            Planned {
                method: Method::Delete,
                url: url(&http, "/faults"),
                body: Body::Empty,
                auth: true,
                what: format!("heal every link on {who}"),
            }
        })
        .collect())
}

/// `POST /launcher/nodes`.
pub fn plan_add_node(model: &Model) -> Result<Vec<Planned>, String> {
    if model.directory.launcher.is_none() {
        return Err("no launcher: only `node demo` can add nodes".into());
    }
    Ok(vec![to_launcher(
        "/launcher/nodes",
        Body::Empty,
        "add a node".into(),
    )])
}

/// How the answer to a planned request reads in the timeline: its message when it
/// worked; a refusal of the public rules (403, 409) as "refused: reason"; a rate limit
/// (429) as the launcher words it ("too many actions: try again in 5 s").
pub fn outcome(what: &str, status: u16, body: &str) -> (String, Level) {
    if (200..300).contains(&status) {
        let text = match message_text(body) {
            Some(msg) => format!("{what}: ok ({msg})"),
            None => format!("{what}: ok"),
        };
        return (text, Level::Ok);
    }
    let reason = serde_json::from_str::<ErrorBody>(body).map(|e| e.error);
    let text = match (status, reason) {
        (403 | 409, Ok(reason)) => format!("{what}: refused: {reason}"),
        (429, Ok(reason)) => format!("{what}: {reason}"),
        _ => format!("{what}: {}", error_text(status, body)),
    };
    (text, Level::Error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{snapshot, three_up};
    use shared::api::{DashboardInfo, LauncherPolicy, SlotState, SlotView};

    /// A page in demo mode with three nodes, with or without a launcher.
    fn page(launcher: bool) -> Model {
        let mut m = Model::new("127.0.0.1:8551", 0);
        m.on_info(
            &DashboardInfo {
                self_node: "127.0.0.1:2551".into(),
                http: "127.0.0.1:8551".into(),
                roles: vec![],
                demo: true,
                launcher: launcher.then(|| "127.0.0.1:8550".to_string()),
                peers: vec![],
                max_user_id: 0,
                monitored_by: None,
            },
            true,
        );
        if launcher {
            m.on_slots(
                (0..3)
                    .map(|i| SlotView {
                        slot: i,
                        cluster: format!("127.0.0.1:{}", 2551 + i),
                        http: format!("127.0.0.1:{}", 8551 + i),
                        pid: None,
                        state: SlotState::Running,
                        last_exit: None,
                        starts: 1,
                    })
                    .collect(),
            );
        } else {
            m.directory.learn("127.0.0.1:2552", "127.0.0.1:8552");
            m.directory.learn("127.0.0.1:2553", "127.0.0.1:8553");
        }
        for (i, port) in [2551, 2552, 2553].into_iter().enumerate() {
            m.on_stream(
                &format!("127.0.0.1:{}", 8551 + i),
                &snapshot(1, port, &three_up()),
            );
        }
        m
    }

    /// A public demo: the nodes want a token only the launcher holds.
    fn public_page() -> Model {
        let mut m = page(true);
        let info = DashboardInfo {
            self_node: "127.0.0.1:2551".into(),
            http: "127.0.0.1:8551".into(),
            roles: vec![],
            demo: false,
            launcher: Some("127.0.0.1:8550".into()),
            peers: vec![],
            max_user_id: 0,
            monitored_by: None,
        };
        m.on_info(&info, true);
        m.on_policy(LauncherPolicy {
            public: true,
            fault_ttl_secs: 20,
            pause_max_secs: 20,
            actions_per_minute: 12,
            extra_nodes: 2,
            impaired: vec![2],
            max_impaired: 1,
        });
        m
    }

    fn json(p: &Planned) -> serde_json::Value {
        match &p.body {
            Body::Json(text) => serde_json::from_str(text).unwrap(),
            other => panic!("not json: {other:?}"),
        }
    }

    #[test]
    fn with_a_launcher_kill_goes_to_the_launchers_slot_endpoint() {
        let m = page(true);
        let plan = plan_node(&m, NodeAction::Kill, "127.0.0.1:2553").unwrap();
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].method, Method::Post);
        assert_eq!(plan[0].url, "/launcher/nodes/2/kill");
        assert_eq!(plan[0].body, Body::Empty);
        assert!(plan[0].auth, "the operator token goes along when typed");
        let restart = plan_node(&m, NodeAction::Restart, "127.0.0.1:2551").unwrap();
        assert_eq!(restart[0].url, "/launcher/nodes/0/restart");
        assert_eq!(plan_add_node(&m).unwrap()[0].url, "/launcher/nodes");
    }

    #[test]
    fn with_a_launcher_membership_and_fault_actions_are_relayed_too() {
        let m = page(true);
        for (action, node, path) in [
            (
                NodeAction::Leave,
                "127.0.0.1:2553",
                "/launcher/nodes/2/leave",
            ),
            (NodeAction::Down, "127.0.0.1:2551", "/launcher/nodes/0/down"),
            (
                NodeAction::Partition,
                "127.0.0.1:2552",
                "/launcher/nodes/1/partition",
            ),
            (NodeAction::Heal, "127.0.0.1:2552", "/launcher/nodes/1/heal"),
            (NodeAction::Stop, "127.0.0.1:2552", "/launcher/nodes/1/stop"),
        ] {
            let plan = plan_node(&m, action, node).unwrap();
            assert_eq!(plan.len(), 1, "{action:?}");
            assert_eq!(plan[0].method, Method::Post);
            assert_eq!(plan[0].url, path);
        }
        let heal = plan_heal_all(&m).unwrap();
        assert_eq!(heal.len(), 1);
        assert_eq!(heal[0].method, Method::Post);
        assert_eq!(heal[0].url, "/launcher/heal");
    }

    #[test]
    fn a_link_cut_becomes_one_launcher_request_with_kind_cut() {
        let m = page(true);
        let plan = plan_link(&m, LinkKind::Cut, "127.0.0.1:2551", "127.0.0.1:2552").unwrap();
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].method, Method::Post);
        assert_eq!(plan[0].url, "/launcher/links");
        assert_eq!(
            json(&plan[0]),
            serde_json::json!({"from": 0, "to": 1, "kind": "cut"})
        );
        let one = plan_link(&m, LinkKind::OneWay, "127.0.0.1:2553", "127.0.0.1:2551").unwrap();
        assert_eq!(
            json(&one[0]),
            serde_json::json!({"from": 2, "to": 0, "kind": "oneWay"})
        );
        for (action, kind) in [(LinkKind::Slow, "slow"), (LinkKind::Heal, "heal")] {
            let plan = plan_link(&m, action, "127.0.0.1:2551", "127.0.0.1:2553").unwrap();
            assert_eq!(plan.len(), 1);
            assert_eq!(json(&plan[0])["kind"], kind);
        }
        // Loss has no launcher relay: in demo mode it goes to the nodes directly.
        let lossy = plan_link(&m, LinkKind::Lossy, "127.0.0.1:2551", "127.0.0.1:2553").unwrap();
        assert_eq!(lossy.len(), 2);
        assert!(lossy.iter().all(|p| p.url.ends_with("/faults/links")));
        assert!(lossy.iter().all(|p| json(p)["loss"] == LOSS));
    }

    #[test]
    fn with_a_launcher_actions_wait_for_its_slots_instead_of_going_around_it() {
        let mut m = page(true);
        m.directory.slots.clear();
        let err = plan_link(&m, LinkKind::Cut, "127.0.0.1:2551", "127.0.0.1:2552").unwrap_err();
        assert!(err.contains("waiting for the launcher"), "{err}");
        assert!(plan_node(&m, NodeAction::Leave, "127.0.0.1:2552").is_err());
    }

    #[test]
    fn in_the_public_demo_nothing_goes_to_the_nodes_directly() {
        let m = public_page();
        assert!(m.is_public());
        assert!(!m.direct_faults_allowed());
        let kill = plan_node(&m, NodeAction::Kill, "127.0.0.1:2552").unwrap();
        assert_eq!(kill[0].url, "/launcher/nodes/1/kill");
        let err = plan_node(&m, NodeAction::Freeze, "127.0.0.1:2552").unwrap_err();
        assert!(err.contains("public demo"), "{err}");
        assert!(plan_link(&m, LinkKind::Lossy, "127.0.0.1:2551", "127.0.0.1:2552").is_err());
        // A member without a slot cannot be reached around the launcher.
        assert!(plan_node(&m, NodeAction::Leave, "127.0.0.1:2599").is_err());
        assert!(m.is_impaired(2) && !m.is_impaired(0));
        assert!(!m.stop_allowed(), "visitors without a token cannot stop");
        let mut operator = m.clone();
        operator.token = "operator-secret".into();
        assert!(operator.stop_allowed());
        assert_eq!(operator.bearer().as_deref(), Some("operator-secret"));
        assert_eq!(
            m.policy_banner().unwrap(),
            "Public demo: faults heal after 20 s; at most 1 node may be impaired at once; \
             12 actions per minute · impaired now: n2"
        );
        assert_eq!(page(true).policy_banner(), None);
    }

    #[test]
    fn freeze_goes_to_the_node_itself() {
        for launcher in [false, true] {
            let m = page(launcher);
            let plan = plan_node(&m, NodeAction::Freeze, "127.0.0.1:2552").unwrap();
            assert_eq!(plan.len(), 1);
            assert_eq!(plan[0].method, Method::Post);
            assert_eq!(plan[0].url, "/nodes/127.0.0.1:8552/faults/freeze");
            assert_eq!(json(&plan[0]), serde_json::json!({"millis": 5000}));
            assert!(plan[0].auth);
        }
    }

    #[test]
    fn a_409_refusal_is_shown_with_its_reason() {
        let body = r#"{"error":"at most 1 of 3 nodes may be impaired at once in the public demo (impaired now: 1)"}"#;
        let (text, level) = outcome("kill n1 (127.0.0.1:2552)", 409, body);
        assert_eq!(
            text,
            "kill n1 (127.0.0.1:2552): refused: at most 1 of 3 nodes may be impaired at once \
             in the public demo (impaired now: 1)"
        );
        assert_eq!(level, Level::Error);
        let (text, _) = outcome(
            "stop n0 (127.0.0.1:2551)",
            403,
            r#"{"error":"stopping a node needs the operator token in the public demo"}"#,
        );
        assert!(
            text.ends_with("refused: stopping a node needs the operator token in the public demo")
        );
        let (text, level) = outcome(
            "pause n2",
            429,
            r#"{"error":"too many actions: try again in 5 s"}"#,
        );
        assert_eq!(text, "pause n2: too many actions: try again in 5 s");
        assert_eq!(level, Level::Error);
        let (text, level) = outcome("kill n2", 200, r#"{"message":"n2 killed"}"#);
        assert_eq!(
            (text.as_str(), level),
            ("kill n2: ok (n2 killed)", Level::Ok)
        );
        assert_eq!(outcome("x", 502, "").0, "x: HTTP 502");
    }

    #[test]
    fn without_a_launcher_process_actions_are_refused_with_a_reason() {
        let m = page(false);
        let err = plan_node(&m, NodeAction::Pause, "127.0.0.1:2553").unwrap_err();
        assert!(err.contains("no launcher"), "{err}");
        assert!(plan_add_node(&m).is_err());
    }

    #[test]
    fn down_goes_to_a_live_node_other_than_the_target_as_a_form() {
        let m = page(false);
        let plan = plan_node(&m, NodeAction::Down, "127.0.0.1:2551").unwrap();
        assert_eq!(plan[0].method, Method::Put);
        assert_eq!(
            plan[0].url,
            "/nodes/127.0.0.1:8552/cluster/members/127.0.0.1:2551"
        );
        assert_eq!(plan[0].body, Body::Form("operation=Down".into()));
        assert!(plan[0].auth);
    }

    #[test]
    fn leave_goes_to_the_node_itself_while_it_is_live() {
        let mut m = page(false);
        let plan = plan_node(&m, NodeAction::Leave, "127.0.0.1:2553").unwrap();
        assert_eq!(plan[0].method, Method::Delete);
        assert_eq!(
            plan[0].url,
            "/nodes/127.0.0.1:8553/cluster/members/127.0.0.1:2553"
        );
        m.on_closed("127.0.0.1:8553");
        let plan = plan_node(&m, NodeAction::Leave, "127.0.0.1:2553").unwrap();
        assert!(plan[0].url.starts_with("/nodes/127.0.0.1:8551/"));
    }

    #[test]
    fn without_a_launcher_a_cut_sets_faults_on_both_nodes() {
        let m = page(false);
        let plan = plan_link(&m, LinkKind::Cut, "127.0.0.1:2551", "127.0.0.1:2552").unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].url, "/nodes/127.0.0.1:8551/faults/links");
        assert_eq!(
            json(&plan[0]),
            serde_json::json!({"peer": "127.0.0.1:2552", "cutOutbound": true, "cutInbound": true,
                "delayMs": 0, "jitterMs": 0, "loss": 0.0})
        );
        assert_eq!(plan[1].url, "/nodes/127.0.0.1:8552/faults/links");
        assert_eq!(json(&plan[1])["peer"], "127.0.0.1:2551");
        // One way: only the sender drops; the other end's entry for it is cleared (the
        // shared planner, as the launcher does).
        let one = plan_link(&m, LinkKind::OneWay, "127.0.0.1:2552", "127.0.0.1:2551").unwrap();
        assert_eq!(one.len(), 2);
        assert_eq!(one[0].url, "/nodes/127.0.0.1:8552/faults/links");
        assert_eq!(json(&one[0])["cutOutbound"], true);
        assert_eq!(json(&one[0])["cutInbound"], false);
        assert_eq!(one[1].url, "/nodes/127.0.0.1:8551/faults/links");
        assert_eq!(json(&one[1])["peer"], "127.0.0.1:2552");
        assert_eq!(json(&one[1])["cutOutbound"], false);
    }

    #[test]
    fn a_slow_link_is_delayed_both_ways_and_healing_sends_an_all_default_fault() {
        let m = page(false);
        let slow = plan_link(&m, LinkKind::Slow, "127.0.0.1:2551", "127.0.0.1:2553").unwrap();
        assert!(slow
            .iter()
            .all(|p| json(p)["delayMs"] == 300 && json(p)["jitterMs"] == 100));
        let heal = plan_link(&m, LinkKind::Heal, "127.0.0.1:2551", "127.0.0.1:2553").unwrap();
        assert_eq!(heal.len(), 2);
        for p in &heal {
            let body = json(p);
            assert_eq!(body["cutOutbound"], false);
            assert_eq!(body["cutInbound"], false);
            assert_eq!(body["delayMs"], 0);
        }
        assert!(plan_link(&m, LinkKind::Cut, "127.0.0.1:2551", "127.0.0.1:2551").is_err());
        assert!(plan_link(&m, LinkKind::Cut, "127.0.0.1:2551", "10.0.0.9:1").is_err());
    }

    #[test]
    fn partitioning_a_node_cuts_it_from_every_other_on_both_sides() {
        let m = page(false);
        let plan = plan_node(&m, NodeAction::Partition, "127.0.0.1:2553").unwrap();
        let targets: Vec<(String, String)> = plan
            .iter()
            .map(|p| (p.url.clone(), json(p)["peer"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(
            targets,
            [
                (
                    "/nodes/127.0.0.1:8553/faults/links".to_string(),
                    "127.0.0.1:2551".to_string()
                ),
                (
                    "/nodes/127.0.0.1:8551/faults/links".to_string(),
                    "127.0.0.1:2553".to_string()
                ),
                (
                    "/nodes/127.0.0.1:8553/faults/links".to_string(),
                    "127.0.0.1:2552".to_string()
                ),
                (
                    "/nodes/127.0.0.1:8552/faults/links".to_string(),
                    "127.0.0.1:2553".to_string()
                ),
            ]
        );
        assert!(plan
            .iter()
            .all(|p| json(p)["cutOutbound"] == true && json(p)["cutInbound"] == true));
    }

    #[test]
    fn healing_a_node_clears_each_of_its_links_at_both_ends() {
        let m = page(false);
        let plan = plan_node(&m, NodeAction::Heal, "127.0.0.1:2552").unwrap();
        let targets: Vec<(String, String)> = plan
            .iter()
            .map(|p| (p.url.clone(), json(p)["peer"].as_str().unwrap().to_string()))
            .collect();
        let entry = |on: &str, peer: &str| (format!("/nodes/{on}/faults/links"), peer.to_string());
        assert_eq!(
            targets,
            [
                entry("127.0.0.1:8552", "127.0.0.1:2551"),
                entry("127.0.0.1:8551", "127.0.0.1:2552"),
                entry("127.0.0.1:8552", "127.0.0.1:2553"),
                entry("127.0.0.1:8553", "127.0.0.1:2552"),
            ]
        );
        assert!(plan.iter().all(|p| json(p)["cutOutbound"] == false
            && json(p)["cutInbound"] == false
            && json(p)["delayMs"] == 0
            && json(p)["loss"] == 0.0));
    }

    #[test]
    fn heal_all_clears_every_live_node() {
        let mut m = page(false);
        m.on_closed("127.0.0.1:8552");
        let urls: Vec<_> = plan_heal_all(&m)
            .unwrap()
            .into_iter()
            .map(|p| p.url)
            .collect();
        assert_eq!(
            urls,
            [
                "/nodes/127.0.0.1:8551/faults",
                "/nodes/127.0.0.1:8553/faults"
            ]
        );
    }

    #[test]
    fn ipv6_addresses_are_escaped_in_paths() {
        assert_eq!(path_segment("[::1]:2551"), "%5B::1%5D:2551");
    }
}
