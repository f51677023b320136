//! The Globomantics recommendation service on the cluster.
//!
//! Every node loads the catalogue and trains the recommender at start (the data is
//! static; only watch histories change). Members with role `worker` are the
//! *replicas* of the watch history and the *routees* of user work; members with role
//! `api` answer HTTP (`api.rs`). An api node sends each user's work to the user's
//! owner on a consistent-hash ring over the Up, reachable workers (`routing.rs`); the
//! owner reads or writes the user's watches on a majority of replicas
//! (`replication.rs`), each of which keeps them on disk (`store.rs`).
//!
//! This module holds the service's state and its plumbing: the view of membership it
//! follows (from the core's events), correlation of replies with requests, and the
//! dispatch of incoming service messages.

pub mod api;
pub mod cache;
pub mod metrics;
pub mod replication;
pub mod routing;
pub mod store;

use crate::app::catalog::{Dataset, Video};
use crate::app::recommender::ItemItem;
use crate::cluster::runtime::Handle;
use crate::cluster::transport::Transport;
use shared::anti_entropy::Sync;
use shared::frame::Frame;
use shared::ring::Ring;
use shared::service::{RequestId, ServiceBody};
use shared::{Address, ClusterSnapshot, MemberStatus, UniqueAddress};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use store::WatchStore;
use tokio::sync::mpsc;

/// The role of members that answer HTTP.
pub const API_ROLE: &str = "api";
/// The role of members that hold histories and compute recommendations.
pub const WORKER_ROLE: &str = "worker";

/// Deadlines and periods of the service.
#[derive(Clone, Debug)]
pub struct Timing {
    /// How long an owner waits for a majority of replicas.
    pub replica: Duration,
    /// A read asks just a majority first; after this long it asks the rest too.
    pub replica_hedge: Duration,
    /// How long an api node waits for one owner.
    pub attempt: Duration,
    /// After this long without an answer, the next owner is asked too.
    pub hedge: Duration,
    /// How long an api node keeps trying before it gives up (or degrades).
    pub total: Duration,
    /// Period of anti-entropy exchanges and of catch-up attempts.
    pub anti_entropy: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            replica: Duration::from_millis(1000),
            replica_hedge: Duration::from_millis(40),
            attempt: Duration::from_millis(2000),
            hedge: Duration::from_millis(100),
            total: Duration::from_millis(4500),
            anti_entropy: Duration::from_millis(1000),
        }
    }
}

/// The catalogue, each user's history in the dataset, and the trained model.
pub struct Library {
    /// Videos by id.
    pub videos: BTreeMap<u32, Video>,
    /// The dataset's own history of every user (videos, ascending).
    pub base_history: HashMap<u32, Vec<u32>>,
    /// Every genre, sorted.
    pub genres: Vec<String>,
    /// The model.
    pub model: ItemItem,
}

impl Library {
    /// Trains the model on the dataset (one unit of affinity per watch).
    pub fn build(dataset: Dataset) -> Library {
        let interactions: Vec<(u32, u32, f32)> = dataset
            .ratings
            .iter()
            .map(|r| (r.user, r.item, 1.0))
            .collect();
        let model = ItemItem::train(dataset.videos.keys().copied(), &interactions);
        let mut base_history: HashMap<u32, Vec<u32>> = HashMap::new();
        for r in &dataset.ratings {
            base_history.entry(r.user).or_default().push(r.item);
        }
        for videos in base_history.values_mut() {
            videos.sort_unstable();
            videos.dedup();
        }
        let genres: BTreeSet<String> = dataset
            .videos
            .values()
            .flat_map(|v| v.genres.iter().cloned())
            .collect();
        Library {
            videos: dataset.videos,
            base_history,
            genres: genres.into_iter().collect(),
            model,
        }
    }

    /// Whether the user exists in the dataset.
    pub fn knows_user(&self, user: u32) -> bool {
        self.base_history.contains_key(&user)
    }
}

/// Which members the service uses, as this node sees membership.
#[derive(Clone, Debug, Default)]
pub struct ServiceView {
    /// Workers that hold a replica (Up, WeaklyUp or Leaving; reachable or not, so a
    /// partitioned minority cannot count itself a majority).
    pub replicas: Vec<Address>,
    /// Up or WeaklyUp workers that no member observes as unreachable.
    pub routees: Ring,
    /// Every member's address (any role), to exchange HTTP addresses with.
    pub members: Vec<Address>,
    /// Replicas this node itself reaches (itself included): those it does not observe
    /// unreachable. A broken link elsewhere does not make a node a minority.
    pub reachable_replicas: usize,
}

impl ServiceView {
    /// The view in a membership snapshot.
    pub fn from_snapshot(snapshot: &ClusterSnapshot) -> ServiceView {
        let unreachable: BTreeSet<&Address> = snapshot
            .unreachable
            .iter()
            .map(|u| &u.node.address)
            .collect();
        let workers = snapshot
            .members
            .iter()
            .filter(|m| m.roles.contains(WORKER_ROLE));
        let replicas: Vec<Address> = workers
            .clone()
            .filter(|m| {
                matches!(
                    m.status,
                    MemberStatus::Up | MemberStatus::WeaklyUp | MemberStatus::Leaving
                )
            })
            .map(|m| m.node.address.clone())
            .collect();
        let me = &snapshot.self_node;
        let i_lost: BTreeSet<&Address> = snapshot
            .unreachable
            .iter()
            .filter(|u| u.observed_by.contains(me))
            .map(|u| &u.node.address)
            .collect();
        let reachable_replicas = replicas.iter().filter(|r| !i_lost.contains(r)).count();
        let routees = Ring::new(
            workers
                .filter(|m| matches!(m.status, MemberStatus::Up | MemberStatus::WeaklyUp))
                .filter(|m| !unreachable.contains(&m.node.address))
                .map(|m| m.node.address.clone()),
        );
        let members = snapshot
            .members
            .iter()
            .filter(|m| !matches!(m.status, MemberStatus::Down | MemberStatus::Removed))
            .map(|m| m.node.address.clone())
            .collect();
        ServiceView {
            replicas,
            routees,
            members,
            reachable_replicas,
        }
    }

    /// How many replicas make a majority.
    pub fn majority(&self) -> usize {
        self.replicas.len() / 2 + 1
    }
}

type Pending = Arc<Mutex<HashMap<RequestId, mpsc::UnboundedSender<(Address, ServiceBody)>>>>;

/// An open request: replies carrying its id arrive on `replies` until it is dropped.
pub struct Call {
    /// The id to put in requests.
    pub id: RequestId,
    /// Replies as `(sender, body)`.
    pub replies: mpsc::UnboundedReceiver<(Address, ServiceBody)>,
    pending: Pending,
}

impl Drop for Call {
    fn drop(&mut self) {
        self.pending.lock().expect("pending").remove(&self.id);
    }
}

/// Static facts about this node that the service and the dashboard need.
#[derive(Clone, Debug)]
pub struct Identity {
    /// This incarnation.
    pub me: UniqueAddress,
    /// HTTP address.
    pub http: String,
    /// Roles.
    pub roles: BTreeSet<String>,
    /// Demo mode.
    pub demo: bool,
    /// The demo launcher's address, if any.
    pub launcher: Option<String>,
    /// How many members each node monitors on the heartbeat ring.
    pub monitored_by: usize,
}

/// The service on one node.
pub struct Service {
    /// Who this node is.
    pub identity: Identity,
    /// Catalogue and model.
    pub library: Arc<Library>,
    /// This node's replica of the watch history.
    pub store: WatchStore,
    /// Deadlines.
    pub timing: Timing,
    transport: Arc<Transport>,
    view: RwLock<Arc<ServiceView>>,
    pending: Pending,
    next_id: AtomicU64,
    /// Anti-entropy and catch-up (`shared::anti_entropy`), on the clock of `epoch`.
    sync: Mutex<Sync>,
    epoch: tokio::time::Instant,
    peers_http: Mutex<BTreeMap<Address, String>>,
    merges: mpsc::UnboundedSender<(Address, ServiceBody)>,
    /// Requests, quorums and exchanges, for `/metrics`.
    pub metrics: metrics::ServiceMetrics,
    /// Recommendations already scored, by user, count and recorded history.
    recommended: cache::RecommendationCache,
}

impl Service {
    /// Starts the service: follows membership through `handle`, runs anti-entropy,
    /// and returns the sender the node's transport demultiplexer feeds with incoming
    /// service messages.
    pub fn start(
        identity: Identity,
        library: Arc<Library>,
        store: WatchStore,
        timing: Timing,
        transport: Arc<Transport>,
        handle: Handle,
    ) -> (Arc<Service>, mpsc::Sender<(UniqueAddress, ServiceBody)>) {
        let (merges_tx, merges_rx) = mpsc::unbounded_channel();
        let seed: u64 = rand::random();
        let sync = Sync::start(
            replication::sync_timing(&timing),
            seed,
            store.recovered(),
            0,
        );
        let sync = Mutex::new(sync);
        let service = Arc::new(Service {
            identity,
            library,
            store,
            timing,
            transport,
            view: RwLock::new(Arc::default()),
            pending: Arc::default(),
            next_id: AtomicU64::new(seed >> 16),
            sync,
            epoch: tokio::time::Instant::now(),
            peers_http: Mutex::default(),
            merges: merges_tx,
            metrics: metrics::ServiceMetrics::default(),
            recommended: cache::RecommendationCache::default(),
        });
        let (inbound_tx, mut inbound_rx) = mpsc::channel::<(UniqueAddress, ServiceBody)>(4096);
        let dispatcher = Arc::clone(&service);
        tokio::spawn(async move {
            while let Some((from, body)) = inbound_rx.recv().await {
                dispatcher.dispatch(from, body);
            }
        });
        tokio::spawn(Arc::clone(&service).merge_loop(merges_rx));
        tokio::spawn(Arc::clone(&service).follow_membership(handle));
        tokio::spawn(Arc::clone(&service).anti_entropy_loop());
        (service, inbound_tx)
    }

    /// The current view (shared, not copied: requests read it on every call).
    pub fn view(&self) -> Arc<ServiceView> {
        Arc::clone(&self.view.read().expect("view"))
    }

    /// Whether this replica has caught up since it started.
    pub fn is_ready(&self) -> bool {
        self.sync.lock().expect("sync").is_ready()
    }

    /// The service's figures in Prometheus text (see `metrics`).
    pub fn metrics_text(&self) -> String {
        let replica = self.view().replicas.contains(&self.identity.me.address);
        self.metrics.render(replica && !self.is_ready())
    }

    /// Every HTTP address this node knows: its own, and every peer's it heard over the
    /// authenticated cluster transport (members or not; the relay may forward to these).
    pub fn known_http(&self) -> std::collections::BTreeSet<String> {
        let known = self.peers_http.lock().expect("peers");
        let mut all: std::collections::BTreeSet<String> = known.values().cloned().collect();
        all.insert(self.identity.http.clone());
        all
    }

    /// HTTP addresses of the current members other than this node.
    pub fn peers_http(&self) -> Vec<(Address, String)> {
        let members = &self.view().members;
        let known = self.peers_http.lock().expect("peers");
        members
            .iter()
            .filter(|m| **m != self.identity.me.address)
            .filter_map(|m| known.get(m).map(|h| (m.clone(), h.clone())))
            .collect()
    }

    /// Whether this node has the role.
    pub fn has_role(&self, role: &str) -> bool {
        self.identity.roles.contains(role)
    }

    fn send(&self, to: &Address, body: ServiceBody) {
        self.transport.send(
            to,
            &Frame::Service {
                from: self.identity.me.clone(),
                body,
            },
        );
    }

    /// Opens a call whose replies will be collected.
    pub fn open_call(&self) -> Call {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.pending.lock().expect("pending").insert(id, tx);
        Call {
            id,
            replies: rx,
            pending: Arc::clone(&self.pending),
        }
    }

    fn deliver_reply(&self, id: RequestId, from: Address, body: ServiceBody) {
        if let Some(tx) = self.pending.lock().expect("pending").get(&id) {
            let _ = tx.send((from, body));
        }
    }

    /// Handles one incoming service message.
    fn dispatch(self: &Arc<Self>, from: UniqueAddress, body: ServiceBody) {
        let sender = from.address.clone();
        match body {
            ServiceBody::Hello { http, reply } => {
                self.peers_http
                    .lock()
                    .expect("peers")
                    .insert(sender.clone(), http);
                if reply {
                    self.send(
                        &sender,
                        ServiceBody::Hello {
                            http: self.identity.http.clone(),
                            reply: false,
                        },
                    );
                }
            }
            ServiceBody::Recommended { id, .. }
            | ServiceBody::WatchRecorded { id, .. }
            | ServiceBody::HistoryRead { id, .. }
            | ServiceBody::Failed { id, .. }
            | ServiceBody::Stored { id }
            | ServiceBody::Fetched { id, .. } => self.deliver_reply(id, sender, body),
            ServiceBody::Recommend { .. }
            | ServiceBody::RecordWatch { .. }
            | ServiceBody::ReadHistory { .. } => {
                let this = Arc::clone(self);
                tokio::spawn(async move {
                    let reply = this.serve_routed(body).await;
                    this.send(&sender, reply);
                });
            }
            ServiceBody::Store { id, watches } => {
                let this = Arc::clone(self);
                tokio::spawn(async move {
                    match this.store.put(watches).await {
                        Ok(()) => this.send(&sender, ServiceBody::Stored { id }),
                        Err(e) => tracing::error!("cannot store replicated watches: {e}"),
                    }
                });
            }
            ServiceBody::Fetch { id, user } => {
                let reply = ServiceBody::Fetched {
                    id,
                    ready: self.is_ready(),
                    watches: self.store.user(user),
                };
                self.send(&sender, reply);
            }
            ServiceBody::Digest { id, buckets } => self.answer_digest(&sender, id, &buckets),
            ServiceBody::Buckets { .. } => {
                let _ = self.merges.send((sender, body));
            }
        }
    }

    /// Keeps the view in step with membership: re-reads it after every event, and
    /// every half second in case events were missed.
    async fn follow_membership(self: Arc<Self>, handle: Handle) {
        let mut events = handle.events.subscribe();
        loop {
            let Ok((_, snapshot)) = handle.snapshot().await else {
                return;
            };
            let view = ServiceView::from_snapshot(&snapshot);
            self.greet_new_members(&view);
            *self.view.write().expect("view") = Arc::new(view);
            tokio::select! {
                _ = events.recv() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Tells members whose HTTP address we do not know yet where ours is.
    fn greet_new_members(&self, view: &ServiceView) {
        let known = self.peers_http.lock().expect("peers").clone();
        for m in &view.members {
            if *m != self.identity.me.address && !known.contains_key(m) {
                self.send(
                    m,
                    ServiceBody::Hello {
                        http: self.identity.http.clone(),
                        reply: true,
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::events::{ResolverStatus, UnreachableInfo};
    use shared::Member;

    fn node(port: u16) -> UniqueAddress {
        UniqueAddress::new(Address::new("10.0.0.1", port), u64::from(port))
    }

    /// Three Up workers as `me` sees them, with `(subject, observers)` unreachable.
    fn view_of(me: u16, unreachable: &[(u16, &[u16])]) -> ServiceView {
        let members = [1, 2, 3]
            .iter()
            .map(|p| Member {
                node: node(*p),
                status: MemberStatus::Up,
                roles: [WORKER_ROLE.to_string()].into(),
                up_number: u32::from(*p),
            })
            .collect();
        let unreachable = unreachable
            .iter()
            .map(|(subject, observers)| UnreachableInfo {
                node: node(*subject),
                observed_by: observers.iter().map(|o| node(*o)).collect(),
            })
            .collect();
        ServiceView::from_snapshot(&ClusterSnapshot {
            self_node: node(me),
            self_status: Some(MemberStatus::Up),
            members,
            unreachable,
            seen_by: vec![],
            leader: None,
            role_leaders: BTreeMap::new(),
            oldest: None,
            converged: true,
            version_digest: 0,
            resolver: ResolverStatus {
                responsible: false,
                unreachable: 0,
                stable_since_ms: 0,
                decision_due_ms: None,
            },
            phi: vec![],
            time_away_ms: 0,
        })
    }

    #[test]
    fn a_node_counts_the_replicas_it_reaches_itself() {
        // 1 and 3 lost their link; 2 reaches both. Nobody is a minority.
        let broken_link = [(3, &[1][..]), (1, &[3][..])];
        assert_eq!(view_of(1, &broken_link).reachable_replicas, 2);
        assert_eq!(view_of(2, &broken_link).reachable_replicas, 3);
        // 3 cut off from both others: it reaches only itself.
        let cut_off = [(1, &[3][..]), (2, &[3][..]), (3, &[1, 2][..])];
        let minority = view_of(3, &cut_off);
        assert_eq!(minority.reachable_replicas, 1);
        assert!(minority.reachable_replicas < minority.majority());
        assert_eq!(view_of(1, &cut_off).reachable_replicas, 2);
    }
}
