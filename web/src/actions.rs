//! What each button does, as a list of HTTP requests: launcher actions, leave and
//! down, link faults between two nodes, partitioning a node from the rest, healing.
//!
//! Planning is pure so the tests pin down which node each request goes to (a two-way
//! cut is set on both ends, a single link heals with an all-default fault, a down goes
//! to a live node other than the target); the browser code only sends the plan and
//! writes each result into the timeline.

use crate::model::Model;
use shared::api::LinkFaultRequest;

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
    /// Whether it needs the bearer token (node management calls).
    pub auth: bool,
    /// What it does, for the timeline.
    pub what: String,
}

/// A per-node button.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeAction {
    /// SIGKILL (launcher).
    Kill,
    /// SIGSTOP (launcher).
    Pause,
    /// SIGCONT (launcher).
    Resume,
    /// Kill and start a new incarnation (launcher).
    Restart,
    /// Graceful leave, not restarted (launcher).
    Stop,
    /// Leave through the management API.
    Leave,
    /// Down through the management API.
    Down,
    /// Cut every link between the node and every other node.
    Partition,
    /// Heal every link of the node.
    Heal,
}

impl NodeAction {
    /// Every action, in button order.
    pub const ALL: [NodeAction; 9] = [
        NodeAction::Kill,
        NodeAction::Pause,
        NodeAction::Resume,
        NodeAction::Restart,
        NodeAction::Stop,
        NodeAction::Leave,
        NodeAction::Down,
        NodeAction::Partition,
        NodeAction::Heal,
    ];

    /// The `data-action` name (also the launcher's action name).
    pub fn name(self) -> &'static str {
        match self {
            NodeAction::Kill => "kill",
            NodeAction::Pause => "pause",
            NodeAction::Resume => "resume",
            NodeAction::Restart => "restart",
            NodeAction::Stop => "stop",
            NodeAction::Leave => "leave",
            NodeAction::Down => "down",
            NodeAction::Partition => "partition",
            NodeAction::Heal => "heal",
        }
    }

    /// Whether only the demo launcher can do it.
    pub fn needs_launcher(self) -> bool {
        matches!(
            self,
            NodeAction::Kill
                | NodeAction::Pause
                | NodeAction::Resume
                | NodeAction::Restart
                | NodeAction::Stop
        )
    }

    /// A hint for the button's title.
    pub fn hint(self) -> &'static str {
        match self {
            NodeAction::Kill => "SIGKILL the process (launcher)",
            NodeAction::Pause => "SIGSTOP the process (launcher)",
            NodeAction::Resume => "SIGCONT the process (launcher)",
            NodeAction::Restart => "kill and start a new incarnation (launcher)",
            NodeAction::Stop => "graceful leave, then not restarted (launcher)",
            NodeAction::Leave => "ask the member to leave (management API)",
            NodeAction::Down => "mark the member Down (management API)",
            NodeAction::Partition => "cut every link between this node and the others",
            NodeAction::Heal => "heal every link of this node",
        }
    }
}

/// A per-link button.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkAction {
    /// Cut both directions.
    Cut,
    /// Cut `from` -> `to` only.
    OneWay,
    /// Delay both directions.
    Slow,
    /// Remove the faults of this link on both ends.
    Heal,
}

impl LinkAction {
    /// The `data-action` name.
    pub fn name(self) -> &'static str {
        match self {
            LinkAction::Cut => "cut",
            LinkAction::OneWay => "oneway",
            LinkAction::Slow => "slow",
            LinkAction::Heal => "heal",
        }
    }
}

/// Delay of a "slow" link (ms).
pub const SLOW_DELAY_MS: u64 = 300;
/// Jitter of a "slow" link (ms).
pub const SLOW_JITTER_MS: u64 = 100;

/// `http://{http}{path}`.
pub fn url(http: &str, path: &str) -> String {
    format!("http://{http}{path}")
}

/// A cluster address as a path segment (brackets of IPv6 literals escaped).
pub fn path_segment(addr: &str) -> String {
    addr.replace('[', "%5B").replace(']', "%5D")
}

fn link_fault(on_http: &str, peer: &str, fault: LinkFaultRequest, what: String) -> Planned {
    let body = LinkFaultRequest {
        peer: peer.to_string(),
        ..fault
    };
    Planned {
        method: Method::Post,
        url: url(on_http, "/faults/links"),
        body: Body::Json(serde_json::to_string(&body).expect("serializable")),
        auth: true,
        what,
    }
}

fn no_fault() -> LinkFaultRequest {
    LinkFaultRequest {
        peer: String::new(),
        cut_outbound: false,
        cut_inbound: false,
        delay_ms: 0,
        jitter_ms: 0,
        loss: 0.0,
    }
}

fn cut_both() -> LinkFaultRequest {
    LinkFaultRequest {
        cut_outbound: true,
        cut_inbound: true,
        ..no_fault()
    }
}

fn http_or_err<'a>(model: &'a Model, cluster: &str) -> Result<&'a str, String> {
    model
        .directory
        .http_of(cluster)
        .ok_or_else(|| format!("the HTTP address of {cluster} is not known yet"))
}

/// The requests for `action` on the node at cluster address `node`.
pub fn plan_node(model: &Model, action: NodeAction, node: &str) -> Result<Vec<Planned>, String> {
    let name = action.name();
    if action.needs_launcher() {
        let launcher =
            model.directory.launcher.as_deref().ok_or(
                "no launcher: start the cluster with `node demo` to kill, pause or restart",
            )?;
        let slot = model
            .directory
            .slot_of(node)
            .ok_or_else(|| format!("the launcher has no slot for {node}"))?;
        return Ok(vec![Planned {
            method: Method::Post,
            url: url(launcher, &format!("/launcher/nodes/{}/{name}", slot.slot)),
            body: Body::Empty,
            auth: false,
            what: format!("{name} n{} ({node})", slot.slot),
        }]);
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
        NodeAction::Partition => {
            let mut plan = Vec::new();
            let own = model.directory.http_of(node).map(str::to_string);
            for other in model.nodes().into_iter().filter(|r| r.cluster != node) {
                if let Some(own) = &own {
                    plan.push(link_fault(
                        own,
                        &other.cluster,
                        cut_both(),
                        format!("cut {node} ⇎ {} (on {node})", other.cluster),
                    ));
                }
                if let Some(theirs) = &other.http {
                    plan.push(link_fault(
                        theirs,
                        node,
                        cut_both(),
                        format!("cut {} ⇎ {node} (on {})", other.cluster, other.cluster),
                    ));
                }
            }
            if plan.is_empty() {
                return Err(format!("no other node to partition {node} from"));
            }
            Ok(plan)
        }
        NodeAction::Heal => {
            let mut plan = Vec::new();
            if let Some(own) = model.directory.http_of(node) {
                plan.push(Planned {
                    method: Method::Delete,
                    url: url(own, "/faults"),
                    body: Body::Empty,
                    auth: true,
                    what: format!("heal every link on {node}"),
                });
            }
            for other in model.nodes().into_iter().filter(|r| r.cluster != node) {
                if let Some(theirs) = &other.http {
                    plan.push(link_fault(
                        theirs,
                        node,
                        no_fault(),
                        format!("heal {} → {node} (on {})", other.cluster, other.cluster),
                    ));
                }
            }
            if plan.is_empty() {
                return Err(format!("no HTTP address known for {node} or its peers"));
            }
            Ok(plan)
        }
        _ => unreachable!("launcher actions returned above"),
    }
}

/// The requests for `action` on the link between `from` and `to` (cluster addresses).
pub fn plan_link(
    model: &Model,
    action: LinkAction,
    from: &str,
    to: &str,
) -> Result<Vec<Planned>, String> {
    if from == to {
        return Err("a link needs two different nodes".into());
    }
    let (a, b) = (http_or_err(model, from)?, http_or_err(model, to)?);
    let slow = LinkFaultRequest {
        delay_ms: SLOW_DELAY_MS,
        jitter_ms: SLOW_JITTER_MS,
        ..no_fault()
    };
    Ok(match action {
        LinkAction::Cut => vec![
            link_fault(a, to, cut_both(), format!("cut {from} ⇎ {to} (on {from})")),
            link_fault(b, from, cut_both(), format!("cut {to} ⇎ {from} (on {to})")),
        ],
        LinkAction::OneWay => vec![link_fault(
            a,
            to,
            LinkFaultRequest {
                cut_outbound: true,
                ..no_fault()
            },
            format!("cut {from} → {to} one way (on {from})"),
        )],
        LinkAction::Slow => vec![
            link_fault(
                a,
                to,
                slow.clone(),
                format!("slow {from} → {to} by {SLOW_DELAY_MS}±{SLOW_JITTER_MS} ms"),
            ),
            link_fault(
                b,
                from,
                slow,
                format!("slow {to} → {from} by {SLOW_DELAY_MS}±{SLOW_JITTER_MS} ms"),
            ),
        ],
        LinkAction::Heal => vec![
            link_fault(a, to, no_fault(), format!("heal {from} → {to} (on {from})")),
            link_fault(b, from, no_fault(), format!("heal {to} → {from} (on {to})")),
        ],
    })
}

/// `DELETE /faults` on every live node.
pub fn plan_heal_all(model: &Model) -> Result<Vec<Planned>, String> {
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
    let launcher = model
        .directory
        .launcher
        .as_deref()
        .ok_or("no launcher: only `node demo` can add nodes")?;
    Ok(vec![Planned {
        method: Method::Post,
        url: url(launcher, "/launcher/nodes"),
        body: Body::Empty,
        auth: false,
        what: "add a node".into(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{snapshot, three_up};
    use shared::api::{DashboardInfo, SlotState, SlotView};

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

    fn json(p: &Planned) -> serde_json::Value {
        match &p.body {
            Body::Json(text) => serde_json::from_str(text).unwrap(),
            other => panic!("not json: {other:?}"),
        }
    }

    #[test]
    fn launcher_actions_go_to_the_nodes_slot() {
        let m = page(true);
        let plan = plan_node(&m, NodeAction::Kill, "127.0.0.1:2553").unwrap();
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].method, Method::Post);
        assert_eq!(plan[0].url, "http://127.0.0.1:8550/launcher/nodes/2/kill");
        assert!(!plan[0].auth);
        let restart = plan_node(&m, NodeAction::Restart, "127.0.0.1:2551").unwrap();
        assert_eq!(
            restart[0].url,
            "http://127.0.0.1:8550/launcher/nodes/0/restart"
        );
        assert_eq!(
            plan_add_node(&m).unwrap()[0].url,
            "http://127.0.0.1:8550/launcher/nodes"
        );
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
        let m = page(true);
        let plan = plan_node(&m, NodeAction::Down, "127.0.0.1:2551").unwrap();
        assert_eq!(plan[0].method, Method::Put);
        assert_eq!(
            plan[0].url,
            "http://127.0.0.1:8552/cluster/members/127.0.0.1:2551"
        );
        assert_eq!(plan[0].body, Body::Form("operation=Down".into()));
        assert!(plan[0].auth);
    }

    #[test]
    fn leave_goes_to_the_node_itself_while_it_is_live() {
        let mut m = page(true);
        let plan = plan_node(&m, NodeAction::Leave, "127.0.0.1:2553").unwrap();
        assert_eq!(plan[0].method, Method::Delete);
        assert_eq!(
            plan[0].url,
            "http://127.0.0.1:8553/cluster/members/127.0.0.1:2553"
        );
        m.on_closed("127.0.0.1:8553");
        let plan = plan_node(&m, NodeAction::Leave, "127.0.0.1:2553").unwrap();
        assert!(plan[0].url.starts_with("http://127.0.0.1:8551/"));
    }

    #[test]
    fn a_cut_is_set_on_both_ends_and_a_one_way_cut_on_the_sender_only() {
        let m = page(true);
        let plan = plan_link(&m, LinkAction::Cut, "127.0.0.1:2551", "127.0.0.1:2552").unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].url, "http://127.0.0.1:8551/faults/links");
        assert_eq!(
            json(&plan[0]),
            serde_json::json!({"peer": "127.0.0.1:2552", "cutOutbound": true, "cutInbound": true,
                "delayMs": 0, "jitterMs": 0, "loss": 0.0})
        );
        assert_eq!(plan[1].url, "http://127.0.0.1:8552/faults/links");
        assert_eq!(json(&plan[1])["peer"], "127.0.0.1:2551");
        let one = plan_link(&m, LinkAction::OneWay, "127.0.0.1:2552", "127.0.0.1:2551").unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].url, "http://127.0.0.1:8552/faults/links");
        assert_eq!(json(&one[0])["cutOutbound"], true);
        assert_eq!(json(&one[0])["cutInbound"], false);
    }

    #[test]
    fn a_slow_link_is_delayed_both_ways_and_healing_sends_an_all_default_fault() {
        let m = page(true);
        let slow = plan_link(&m, LinkAction::Slow, "127.0.0.1:2551", "127.0.0.1:2553").unwrap();
        assert!(slow
            .iter()
            .all(|p| json(p)["delayMs"] == 300 && json(p)["jitterMs"] == 100));
        let heal = plan_link(&m, LinkAction::Heal, "127.0.0.1:2551", "127.0.0.1:2553").unwrap();
        assert_eq!(heal.len(), 2);
        for p in &heal {
            let body = json(p);
            assert_eq!(body["cutOutbound"], false);
            assert_eq!(body["cutInbound"], false);
            assert_eq!(body["delayMs"], 0);
        }
        assert!(plan_link(&m, LinkAction::Cut, "127.0.0.1:2551", "127.0.0.1:2551").is_err());
        assert!(plan_link(&m, LinkAction::Cut, "127.0.0.1:2551", "10.0.0.9:1").is_err());
    }

    #[test]
    fn partitioning_a_node_cuts_it_from_every_other_on_both_sides() {
        let m = page(true);
        let plan = plan_node(&m, NodeAction::Partition, "127.0.0.1:2553").unwrap();
        let targets: Vec<(String, String)> = plan
            .iter()
            .map(|p| (p.url.clone(), json(p)["peer"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(
            targets,
            [
                (
                    "http://127.0.0.1:8553/faults/links".to_string(),
                    "127.0.0.1:2551".to_string()
                ),
                (
                    "http://127.0.0.1:8551/faults/links".to_string(),
                    "127.0.0.1:2553".to_string()
                ),
                (
                    "http://127.0.0.1:8553/faults/links".to_string(),
                    "127.0.0.1:2552".to_string()
                ),
                (
                    "http://127.0.0.1:8552/faults/links".to_string(),
                    "127.0.0.1:2553".to_string()
                ),
            ]
        );
        assert!(plan
            .iter()
            .all(|p| json(p)["cutOutbound"] == true && json(p)["cutInbound"] == true));
    }

    #[test]
    fn healing_a_node_clears_its_table_and_its_peers_entries_for_it() {
        let m = page(true);
        let plan = plan_node(&m, NodeAction::Heal, "127.0.0.1:2552").unwrap();
        assert_eq!(plan[0].method, Method::Delete);
        assert_eq!(plan[0].url, "http://127.0.0.1:8552/faults");
        assert_eq!(plan.len(), 3);
        assert!(plan[1..]
            .iter()
            .all(|p| json(p)["peer"] == "127.0.0.1:2552"));
    }

    #[test]
    fn heal_all_clears_every_live_node() {
        let mut m = page(true);
        m.on_closed("127.0.0.1:8552");
        let urls: Vec<_> = plan_heal_all(&m)
            .unwrap()
            .into_iter()
            .map(|p| p.url)
            .collect();
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:8551/faults",
                "http://127.0.0.1:8553/faults"
            ]
        );
    }

    #[test]
    fn ipv6_addresses_are_escaped_in_paths() {
        assert_eq!(path_segment("[::1]:2551"), "%5B::1%5D:2551");
    }
}
