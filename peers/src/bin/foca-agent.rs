//! A minimal SWIM agent on `foca` over UDP on loopback, with its own timer queue.
//!
//! Profiles: `defaults` is `foca::Config::simple()` (foca's plain SWIM configuration:
//! 1.5 s probe period, 500 ms probe RTT, 3 indirect probes, suspect to down after 3 s,
//! no periodic gossip); `common` is `foca::Config::new_lan(cluster size)` (foca's
//! memberlist-derived LAN preset, whose probe period is 1 s; suspicion 4 s x
//! max(1, log10 n), periodic gossip every 200 ms to 3 members, announce every 30 s).
//! Until it knows a member the agent announces itself to every seed once a second.
//! Views, cuts and byte counts follow the protocol in the crate's `lib.rs`.

use foca::{AccumulatingRuntime, Config, Foca, PostcardCodec, State, Timer};
use peers::{now_ms, start, view, AgentArgs, Link};
use rand::rngs::StdRng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// Address plus a bump so a member declared down can rejoin as a new identity.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
struct Id {
    addr: SocketAddr,
    bump: u64,
}

impl foca::Identity for Id {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(Id {
            addr: self.addr,
            bump: self.bump.wrapping_add(1),
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

struct Timers {
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    pending: HashMap<u64, Timer<Id>>,
    seq: u64,
}

impl Timers {
    fn push(&mut self, at: Instant, timer: Timer<Id>) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.pending.insert(self.seq, timer);
    }

    fn pop_due(&mut self, now: Instant) -> Option<Timer<Id>> {
        let Reverse((at, seq)) = *self.queue.peek()?;
        if at > now {
            return None;
        }
        self.queue.pop();
        self.pending.remove(&seq)
    }

    fn next(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((at, _))| *at)
    }
}

/// Sends what foca queued (unless the link is cut), schedules its timers.
fn drain(
    runtime: &mut AccumulatingRuntime<Id>,
    socket: &UdpSocket,
    link: &Link,
    timers: &mut Timers,
) {
    while let Some((to, data)) = runtime.to_send() {
        if link.drops(&to.addr) {
            continue;
        }
        if let Ok(n) = socket.send_to(&data, to.addr) {
            link.count_sent(n);
        }
    }
    let now = Instant::now();
    while let Some((after, timer)) = runtime.to_schedule() {
        timers.push(now + after, timer);
    }
    while runtime.to_notify().is_some() {}
}

/// Emits every change of foca's membership state since the last call.
fn report(
    foca: &Foca<Id, PostcardCodec, StdRng, foca::NoCustomBroadcast>,
    seen: &mut HashMap<SocketAddr, (u64, State)>,
    me: SocketAddr,
) {
    let mut now: HashMap<SocketAddr, (u64, State)> = HashMap::new();
    for member in foca.iter_membership_state() {
        let id = member.id();
        if id.addr == me {
            continue;
        }
        let entry = now.entry(id.addr).or_insert((id.bump, member.state()));
        if id.bump >= entry.0 {
            *entry = (id.bump, member.state());
        }
    }
    for (addr, (bump, state)) in &now {
        if seen.get(addr) != Some(&(*bump, *state)) {
            let kind = match state {
                State::Alive => "alive",
                State::Suspect => "suspect",
                State::Down => "down",
            };
            view(kind, *addr);
        }
    }
    for addr in seen.keys() {
        if !now.contains_key(addr) {
            view("removed", *addr);
        }
    }
    *seen = now;
}

fn main() {
    let args = match AgentArgs::parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("foca-agent: {e}");
            std::process::exit(2);
        }
    };
    let config = if args.profile == "common" {
        Config::new_lan(NonZeroU32::new(args.cluster_size).expect("size >= 1"))
    } else {
        Config::simple()
    };
    let socket = UdpSocket::bind(args.bind).expect("bind UDP");
    let me = socket.local_addr().expect("local address");
    let link = start(me);
    let rng: StdRng = rand::make_rng();
    let mut foca = Foca::new(
        Id {
            addr: me,
            bump: now_ms(),
        },
        config,
        rng,
        PostcardCodec,
    );
    let mut runtime = AccumulatingRuntime::new();
    let mut timers = Timers {
        queue: BinaryHeap::new(),
        pending: HashMap::new(),
        seq: 0,
    };
    let mut seen = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    let mut next_announce = Instant::now();
    loop {
        let now = Instant::now();
        while let Some(timer) = timers.pop_due(now) {
            let _ = foca.handle_timer(timer, &mut runtime);
            drain(&mut runtime, &socket, &link, &mut timers);
        }
        if foca.num_members() == 0 && now >= next_announce {
            for seed in args.seeds.iter().filter(|s| **s != me) {
                let _ = foca.announce(
                    Id {
                        addr: *seed,
                        bump: 0,
                    },
                    &mut runtime,
                );
            }
            next_announce = now + Duration::from_secs(1);
        }
        drain(&mut runtime, &socket, &link, &mut timers);
        report(&foca, &mut seen, me);
        let mut wake = now + Duration::from_millis(50);
        if let Some(at) = timers.next() {
            wake = wake.min(at);
        }
        let wait = wake
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let _ = socket.set_read_timeout(Some(wait));
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            if !link.drops(&from) {
                link.count_recv(n);
                let _ = foca.handle_data(&buf[..n], &mut runtime);
                drain(&mut runtime, &socket, &link, &mut timers);
                report(&foca, &mut seen, me);
            }
        }
    }
}
