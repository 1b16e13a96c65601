//! The cloud `cloud` chargers ask, modelled on the run's virtual clock: it accepts the tokens
//! the scenario names and refuses the others, after its latency; tokens it is silent about
//! get no answer (the site's timeout decides); while it is offline the link is down, so
//! requests go nowhere and answers due meanwhile are lost. Deterministic: it acts only
//! between cycles, at times the scenario fixes.

use chrono::{DateTime, Duration, Utc};
use tokio::sync::{mpsc, watch};

use evsite::control::command::ControlCommand;
use evsite::simulator::CloudSpec;
use evsite::sync::LinkStatus;
use evsite::tokens::{normalise, AuthAnswer, AuthQueue, AuthRequest};

/// How long a yes lets the site's cache accept the token (evsite's default `cache_days`).
const CACHE_DAYS: i64 = 30;

pub struct ModelCloud {
    spec: CloudSpec,
    start: DateTime<Utc>,
    queue: AuthQueue,
    link: watch::Sender<LinkStatus>,
    /// Answers due: (when, the request).
    due: Vec<(f64, AuthRequest)>,
}

impl ModelCloud {
    pub fn new(spec: CloudSpec, start: DateTime<Utc>) -> Self {
        let (link, _) = watch::channel(LinkStatus {
            connected: spec.online_at(0.0),
            ..LinkStatus::default()
        });
        ModelCloud {
            spec,
            start,
            queue: AuthQueue::default(),
            link,
            due: Vec::new(),
        }
    }

    /// Where the controller's requests go.
    pub fn queue(&self) -> AuthQueue {
        self.queue.clone()
    }

    /// The link as the controller sees it.
    pub fn link(&self) -> watch::Receiver<LinkStatus> {
        self.link.subscribe()
    }

    /// Before the cycle at `t_s`: the link follows the offline windows, and answers that are
    /// due go to the controller (lost if the cloud is offline now).
    pub fn before_cycle(&mut self, t_s: f64, commands: &mpsc::UnboundedSender<ControlCommand>) {
        let online = self.spec.online_at(t_s);
        self.link.send_if_modified(|s| {
            let changed = s.connected != online;
            s.connected = online;
            changed
        });
        let (now, later): (Vec<_>, Vec<_>) = self.due.drain(..).partition(|(at, _)| *at <= t_s);
        self.due = later;
        if !online {
            return;
        }
        for (_, r) in now {
            let token = normalise(&r.token);
            let accepted = self.spec.accepts.iter().any(|t| normalise(t) == token);
            let at = self.start + Duration::milliseconds((t_s * 1000.0) as i64);
            let _ = commands.send(ControlCommand::AuthAnswer(AuthAnswer {
                request_id: r.request_id,
                token,
                accepted,
                reason: (!accepted).then(|| "not a customer".to_string()),
                expires_at: accepted.then(|| at + Duration::days(CACHE_DAYS)),
            }));
        }
    }

    /// After the cycle at `t_s`: the requests it made reach the cloud if it is online, and
    /// are answered after its latency unless it is silent about the token.
    pub fn after_cycle(&mut self, t_s: f64) {
        for r in self.queue.take() {
            let silent = self
                .spec
                .silent
                .iter()
                .any(|t| normalise(t) == normalise(&r.token));
            if self.spec.online_at(t_s) && !silent {
                self.due.push((t_s + self.spec.latency_s, r));
            }
        }
    }
}
