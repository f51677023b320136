//! Simulated mode in the browser: picks it (`?sim`, `?sim=<link>`, or no node behind
//! the page), runs the session's frames from a timer, and carries out what the views
//! ask for on the simulated cluster instead of over HTTP.

use super::Ctx;
use crate::intent::{Intent, SimControl};
use crate::model::Model;
use crate::simulated::{Scenario, SimAction, SimSession};
use crate::timeline::Level;
use gloo::timers::callback::Interval;

/// Real time between two frames of a playing run (ms).
const FRAME_MS: u32 = 50;

/// The `sim` query parameter, when the page was asked for simulated mode: empty for a
/// fresh run, a share link's text otherwise.
pub(super) fn asked_for() -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    search
        .trim_start_matches('?')
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some(("sim", value)) => Some(value.to_string()),
            None if pair == "sim" => Some(String::new()),
            _ => None,
        })
        .map(|value| {
            js_sys::decode_uri_component(&value)
                .ok()
                .and_then(|v| v.as_string())
                .unwrap_or(value)
        })
}

fn random_seed() -> u64 {
    (js_sys::Math::random() * 1e12) as u64
}

impl Ctx {
    /// Whether the page runs a simulated cluster.
    pub(super) fn simulated(&self) -> bool {
        self.0.sim.borrow().is_some()
    }

    /// Switches to simulated mode: the run a share link describes (shown at the
    /// moment it was shared, paused), or a fresh one.
    pub(super) fn start_simulated(&self, link: Option<String>) {
        let link = link.filter(|l| !l.trim().is_empty());
        let read = link.as_deref().map(Scenario::from_link);
        let fresh = || {
            let draft = crate::simulated::SimDraft::default();
            draft
                .scenario(random_seed())
                .expect("the default form is valid")
        };
        let session = self.update(|m| {
            let (scenario, shared, error) = match read {
                Some(Ok(scenario)) => (scenario, true, None),
                Some(Err(e)) => (fresh(), false, Some(e.to_string())),
                None => (fresh(), false, None),
            };
            let mut session = SimSession::start(scenario, m);
            if shared {
                session.seek(session.shared_at(), m);
                session.set_playing(false, m);
                m.local(
                    "simulation",
                    "opened a shared run, paused at the moment it was shared",
                    Level::Info,
                );
            }
            if let Some(e) = error {
                m.local(
                    "simulation",
                    format!("{e}; a fresh run started instead"),
                    Level::Error,
                );
            }
            session
        });
        *self.0.sim.borrow_mut() = Some(session);
        self.0.sim_last_frame.set(js_sys::Date::now());
        if self.0.sim_timer.borrow().is_none() {
            let me = self.clone();
            let timer = Interval::new(FRAME_MS, move || me.sim_frame());
            *self.0.sim_timer.borrow_mut() = Some(timer);
        }
    }

    fn sim_frame(&self) {
        let now = js_sys::Date::now();
        let elapsed = now - self.0.sim_last_frame.replace(now);
        self.with_session(|session, m| session.frame(elapsed, m));
    }

    /// Runs `f` on the session and the model, then redraws.
    fn with_session<R>(&self, f: impl FnOnce(&mut SimSession, &mut Model) -> R) -> Option<R> {
        let result = {
            let mut session = self.0.sim.borrow_mut();
            let session = session.as_mut()?;
            let mut model = self.0.model.borrow_mut();
            f(session, &mut model)
        };
        self.schedule_redraw();
        Some(result)
    }

    /// Carries out an intent on the simulated cluster.
    pub(super) fn sim_dispatch(&self, intent: Intent) {
        let action = match intent {
            Intent::Sim(control) => return self.sim_control(control),
            Intent::Node(action, node) => self.slot(&node).map(|s| SimAction::Node(action, s)),
            Intent::Link(kind, from, to) => self
                .slot(&from)
                .zip(self.slot(&to))
                .map(|(a, b)| SimAction::Link(kind, a, b)),
            Intent::AddNode => Some(SimAction::AddNode),
            Intent::HealAll => Some(SimAction::HealAll),
            _ => {
                self.update(|m| {
                    m.local(
                        "action",
                        "the service does not run in simulated mode".to_string(),
                        Level::Error,
                    )
                });
                return;
            }
        };
        let Some(action) = action else {
            self.update(|m| m.local("action", "no such simulated node", Level::Error));
            return;
        };
        let result = self.with_session(|session, m| session.act(action, m));
        if let Some(Err(e)) = result {
            self.update(|m| m.local("action", e, Level::Error));
        }
    }

    fn slot(&self, cluster: &str) -> Option<usize> {
        self.0.sim.borrow().as_ref()?.slot_of(cluster)
    }

    fn sim_control(&self, control: SimControl) {
        self.0.sim_last_frame.set(js_sys::Date::now());
        let result = match control {
            SimControl::Play => self.with_session(|s, m| {
                s.set_playing(true, m);
                Ok(())
            }),
            SimControl::Pause => self.with_session(|s, m| {
                s.set_playing(false, m);
                Ok(())
            }),
            SimControl::Step => self.with_session(|s, m| {
                s.step(m);
                Ok(())
            }),
            SimControl::Speed(speed) => self.with_session(|s, m| s.set_speed(speed, m)),
            SimControl::Seek(to) => self.with_session(|s, m| {
                s.seek(to, m);
                Ok(())
            }),
            SimControl::NewRun => {
                let scenario = self.model().sim_draft.scenario(random_seed());
                match scenario {
                    Ok(scenario) => self.with_session(|s, m| {
                        *s = SimSession::start(scenario, m);
                        Ok(())
                    }),
                    Err(e) => Some(Err(e.to_string())),
                }
            }
        };
        if let Some(Err(e)) = result {
            self.update(|m| m.local("simulation", e, Level::Error));
        }
    }
}
