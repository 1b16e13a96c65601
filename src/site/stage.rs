//! The task between the control loop and everything that follows it: takes every cycle
//! record in order, runs the [`Pipeline`] on it, hands the events to each sink (the
//! recorder, a display) and publishes the live [`SiteState`]. Ends when the loop stops, after
//! handing on what the pipeline still holds, and returns the pipeline so its last sessions
//! can be read.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::pipeline::{Pipeline, SiteEvent};
use crate::config::Config;
use crate::control::record::CycleRecord;
use crate::view::SiteState;

pub(crate) struct Stage {
    pub(crate) pipeline: Pipeline,
    pub(crate) records: mpsc::Receiver<Arc<CycleRecord>>,
    pub(crate) sinks: Vec<mpsc::UnboundedSender<SiteEvent>>,
    pub(crate) state: watch::Sender<Arc<SiteState>>,
    /// Whether the state carries sessions and alerts (a display or the sync reads them) or
    /// only the cycle (a scored run, where nobody looks).
    pub(crate) live: bool,
    pub(crate) config: watch::Receiver<Arc<Config>>,
    /// Conditions raised from outside the loop ([`super::cloud`]).
    pub(crate) signals: mpsc::UnboundedReceiver<super::cloud::Signal>,
    /// `assign_session` requests from the command handler.
    pub(crate) assignments: mpsc::UnboundedReceiver<crate::commands::assign::AssignRequest>,
}

impl Stage {
    pub(crate) async fn run(mut self) -> Pipeline {
        let mut last_seq = None;
        let mut last_at = None;
        loop {
            tokio::select! {
                // Records first: a reload never overtakes cycles already run.
                biased;
                r = self.records.recv() => match r {
                    Some(rec) => {
                        if let Some(last) = last_seq {
                            if rec.seq != last + 1 {
                                tracing::error!(from = last + 1, to = rec.seq - 1, "cycle records missed");
                            }
                        }
                        last_seq = Some(rec.seq);
                        last_at = Some(rec.at);
                        self.observe(&rec);
                    }
                    None => {
                        let last = self.pipeline.finish();
                        self.hand_on(last);
                        break;
                    }
                },
                Some(s) = self.signals.recv() => {
                    let events = self.pipeline.signal(s.kind, None, s.on, &s.message, s.at);
                    self.hand_on(events);
                }
                Some(req) = self.assignments.recv() => {
                    let at = last_at.unwrap_or_else(chrono::Utc::now);
                    let event = self.pipeline.assign(req, at);
                    self.hand_on(vec![event]);
                }
                Ok(()) = self.config.changed() => {
                    let cfg = self.config.borrow_and_update().clone();
                    self.pipeline.reconfigure(&cfg);
                }
            }
        }
        self.pipeline
    }

    fn observe(&mut self, rec: &Arc<CycleRecord>) {
        let events = self.pipeline.observe(rec);
        self.hand_on(events);
        let state = if self.live {
            self.pipeline.state(rec)
        } else {
            SiteState::of_cycle(rec.clone())
        };
        self.state.send_replace(Arc::new(state));
    }

    pub(crate) fn hand_on(&mut self, events: Vec<SiteEvent>) {
        hand_on(&mut self.sinks, events);
    }
}

/// Every event to every sink still listening.
pub(crate) fn hand_on(sinks: &mut Vec<mpsc::UnboundedSender<SiteEvent>>, events: Vec<SiteEvent>) {
    if events.is_empty() {
        return;
    }
    sinks.retain(|s| !s.is_closed());
    if let Some((last, rest)) = sinks.split_last() {
        for e in events {
            for s in rest {
                let _ = s.send(e.clone());
            }
            let _ = last.send(e);
        }
    }
}
