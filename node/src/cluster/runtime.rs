//! Drives the membership core on tokio: one task owns the `Node` and feeds it, in turn,
//! messages from the transport, requests from the HTTP API and its own timer.
//!
//! Because only this task touches the core, no lock guards membership; the API asks
//! for snapshots and sends commands through a channel, actor style. Events go out on a
//! broadcast channel with sequence numbers, so a WebSocket subscriber can take a
//! snapshot, then apply exactly the events after it. Freezing (a simulated GC pause)
//! is this task sleeping: inputs queue up in bounded channels, and beyond those, in
//! TCP, as in a real stopped process.

use crate::cluster::transport::Transport;
use shared::api::StreamMessage;
use shared::frame::Frame;
use shared::{ClusterSnapshot, Command, CommandError, Message, Node, Output, ShutdownReason};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Milliseconds since the epoch, advancing monotonically from process start (so a
/// wall-clock step cannot fake a long pause to the failure detector).
pub fn clock_ms() -> u64 {
    static START: OnceLock<(Instant, u64)> = OnceLock::new();
    let (instant, epoch_ms) = START.get_or_init(|| {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        (Instant::now(), epoch)
    });
    epoch_ms + instant.elapsed().as_millis() as u64
}

fn instant_of(ms: u64) -> tokio::time::Instant {
    let now_ms = clock_ms();
    tokio::time::Instant::now() + Duration::from_millis(ms.saturating_sub(now_ms))
}

/// What the API can ask of the core.
pub enum Request {
    /// Apply a command.
    Command(Command, oneshot::Sender<Result<(), CommandError>>),
    /// The current view and the sequence number of the last event it includes.
    Snapshot(oneshot::Sender<(u64, ClusterSnapshot)>),
    /// Stop processing for this long (a simulated pause).
    Freeze(Duration),
    /// Record an injected fault in the event stream.
    Fault(String),
    /// Replace the seed list (re-resolved DNS seeds).
    UpdateSeeds(Vec<shared::Address>),
}

/// The API's handle on the running core.
#[derive(Clone)]
pub struct Handle {
    requests: mpsc::Sender<Request>,
    /// Every event and fault, numbered.
    pub events: broadcast::Sender<StreamMessage>,
    /// Set once the core stops, with the reason.
    pub stopped: watch::Receiver<Option<ShutdownReason>>,
}

/// The core stopped; nothing can be asked of it any more.
#[derive(Debug, thiserror::Error)]
#[error("the membership core has stopped")]
pub struct Stopped;

impl Handle {
    /// The current view with the sequence number of the last event it includes.
    pub async fn snapshot(&self) -> Result<(u64, ClusterSnapshot), Stopped> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Snapshot(tx))
            .await
            .map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Applies a command.
    pub async fn command(&self, command: Command) -> Result<Result<(), CommandError>, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Command(command, tx))
            .await
            .map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Freezes the core for `duration`.
    pub async fn freeze(&self, duration: Duration) -> Result<(), Stopped> {
        self.requests
            .send(Request::Freeze(duration))
            .await
            .map_err(|_| Stopped)
    }

    /// Gives the core a new seed list.
    pub async fn update_seeds(&self, seeds: Vec<shared::Address>) -> Result<(), Stopped> {
        self.requests
            .send(Request::UpdateSeeds(seeds))
            .await
            .map_err(|_| Stopped)
    }

    /// Records a fault in the event stream.
    pub async fn record_fault(&self, description: String) {
        let _ = self.requests.send(Request::Fault(description)).await;
    }
}

/// The next peer whose connection was refused (never, without a stream of them).
async fn next_refusal(
    refusals: &mut Option<mpsc::Receiver<shared::Address>>,
) -> Option<shared::Address> {
    match refusals {
        Some(stream) => stream.recv().await,
        None => std::future::pending().await,
    }
}

/// Starts the core task.
pub fn start(node: Node, inbound: mpsc::Receiver<Message>, transport: Arc<Transport>) -> Handle {
    let (requests_tx, requests_rx) = mpsc::channel(256);
    let (events, _) = broadcast::channel(4096);
    let (stopped_tx, stopped_rx) = watch::channel(None);
    let core = Core {
        node,
        transport,
        events: events.clone(),
        stopped: stopped_tx,
        seq: 0,
    };
    let refusals = core.transport.take_refusals();
    tokio::spawn(core.run(inbound, requests_rx, refusals));
    Handle {
        requests: requests_tx,
        events,
        stopped: stopped_rx,
    }
}

struct Core {
    node: Node,
    transport: Arc<Transport>,
    events: broadcast::Sender<StreamMessage>,
    stopped: watch::Sender<Option<ShutdownReason>>,
    seq: u64,
}

impl Core {
    async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Message>,
        mut requests: mpsc::Receiver<Request>,
        mut refusals: Option<mpsc::Receiver<shared::Address>>,
    ) {
        loop {
            if let Some(reason) = self.flush() {
                let _ = self.stopped.send(Some(reason));
                return;
            }
            let wake = self.node.next_deadline().map(instant_of);
            tokio::select! {
                Some(message) = inbound.recv() => self.node.handle_message(clock_ms(), message),
                Some(address) = next_refusal(&mut refusals) => self.node.peer_refused(clock_ms(), &address),
                Some(request) = requests.recv() => match request {
                    Request::Command(command, reply) => {
                        let _ = reply.send(self.node.handle_command(clock_ms(), command));
                    }
                    Request::Snapshot(reply) => {
                        let _ = reply.send((self.seq, self.node.snapshot()));
                    }
                    Request::Freeze(duration) => {
                        self.publish_fault(format!("frozen for {} ms", duration.as_millis()));
                        tokio::time::sleep(duration).await;
                    }
                    Request::Fault(description) => self.publish_fault(description),
                    Request::UpdateSeeds(seeds) => self.node.update_seeds(clock_ms(), seeds),
                },
                _ = async { match wake { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } } => {
                    self.node.tick(clock_ms());
                }
            }
        }
    }

    fn publish_fault(&mut self, description: String) {
        self.seq += 1;
        tracing::info!("fault: {description}");
        let _ = self.events.send(StreamMessage::Fault {
            seq: self.seq,
            at_ms: clock_ms(),
            description,
        });
    }

    /// Carries out the core's outputs; returns the shutdown reason if it stopped.
    fn flush(&mut self) -> Option<ShutdownReason> {
        let mut stop = None;
        // What one step sends a peer goes in one write (one sealed message).
        let mut to_peers: Vec<(shared::Address, Vec<Frame>)> = Vec::new();
        for output in self.node.take_outputs() {
            match output {
                Output::Send { to, message } => {
                    match to_peers.iter_mut().find(|(peer, _)| *peer == to) {
                        Some((_, frames)) => frames.push(Frame::Membership(message)),
                        None => to_peers.push((to, vec![Frame::Membership(message)])),
                    }
                }
                Output::Event(event) => {
                    self.seq += 1;
                    tracing::info!(
                        event = event.kind(),
                        "{}",
                        serde_json::to_string(&event).unwrap_or_default()
                    );
                    let _ = self.events.send(StreamMessage::Event {
                        seq: self.seq,
                        at_ms: clock_ms(),
                        event,
                    });
                }
                Output::Shutdown(reason) => stop = Some(reason),
            }
        }
        for (to, frames) in to_peers {
            self.transport.send_together(&to, &frames);
        }
        stop
    }
}
