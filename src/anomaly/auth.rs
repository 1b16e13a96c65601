//! Unauthorised use: energy drawn on a charger that needs authorisation with nobody
//! authorised (`unauthorized_draw`), a token that is not on the list presented again and
//! again (`unknown_token`), and one token on two chargers at once (`token_in_use_twice`).
//!
//! A *presentation* is an appearance of an id in a charger's id register: it starts when the
//! charger reports an id (normalised, [`crate::tokens::normalise`]) it has not reported within
//! the last [`PRESENTATION_GAP_S`], and lasts while it keeps reporting it. A register that
//! blanks for a few cycles (a failed read, a model that clears it between polls) does not
//! make a new presentation; a card shown again after the register was cleared for longer
//! does, and so does the same card at another charger.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};

use super::hold::{secs, Hold};
use super::{Facts, Settings, Verdict};
use crate::alerts::{AlertKind, When};
use crate::control::record::CycleRecord;
use crate::devices::model::ChargeState;
use crate::electric::{charger_power_w, DRAW_FLOOR_A};
use crate::tokens::{normalise, AuthMode, AuthState, TokenList};

/// An id missing from the register for less than this is still the same presentation.
pub const PRESENTATION_GAP_S: f64 = 10.0;

/// One charger's id register and unauthorised draw so far.
#[derive(Debug, Clone, Default, PartialEq)]
struct ChargerWatch {
    /// Drawing with nobody authorised, held.
    draw: Hold,
    /// Energy drawn since that condition began (Wh), and the last power and time of it.
    drawn_wh: f64,
    last: Option<(DateTime<Utc>, f64)>,
    /// The id presented now (normalised), since when, and when last seen.
    tag: Option<Presented>,
    /// The same id on another connected charger, held (judged on the later presentation).
    twice: Hold,
}

#[derive(Debug, Clone, PartialEq)]
struct Presented {
    id: String,
    since: DateTime<Utc>,
    seen: DateTime<Utc>,
}

/// A presentation of a token that may not charge.
#[derive(Debug, Clone, PartialEq)]
struct Attempt {
    at: DateTime<Utc>,
    charger: usize,
    /// The charger authorised it after all (the cloud accepted a token the list lacks).
    authorised: bool,
}

/// Every charger's watch and the recent presentations of unknown tokens, site-wide.
#[derive(Debug, Clone, Default)]
pub struct AuthWatch {
    chargers: Vec<ChargerWatch>,
    /// Normalised id → its recent presentations that the list does not allow.
    attempts: BTreeMap<String, VecDeque<Attempt>>,
}

impl AuthWatch {
    pub fn new(chargers: usize) -> Self {
        AuthWatch {
            chargers: vec![ChargerWatch::default(); chargers],
            attempts: BTreeMap::new(),
        }
    }

    /// Every verdict of the three rules for `rec`, per charger of `facts`.
    pub fn observe(
        &mut self,
        rec: &CycleRecord,
        facts: &[Facts],
        tokens: &TokenList,
        voltage_v: f64,
        now: When,
        s: &Settings,
    ) -> Vec<(AlertKind, String, Verdict)> {
        let at = now.steady;
        let mut out = Vec::new();
        let cycles: Vec<_> = facts.iter().map(|f| rec.charger(&f.id)).collect();
        // Presentations and unauthorised draw, charger by charger.
        for (i, f) in facts.iter().enumerate() {
            let w = &mut self.chargers[i];
            let Some(c) = cycles[i].filter(|c| c.online) else {
                // Nothing known of the gap: no run of draw survives it, and no alert changes.
                w.draw = Hold::default();
                w.drawn_wh = 0.0;
                w.last = None;
                w.twice = Hold::default();
                out.push((AlertKind::UnauthorizedDraw, f.id.clone(), Verdict::Keep));
                continue;
            };
            let guarded = matches!(c.auth.mode, AuthMode::Local | AuthMode::Cloud);
            let authorised = c.auth.state == AuthState::Authorized;

            // The id register.
            let id = c.id_tag.as_deref().map(normalise).filter(|t| !t.is_empty());
            if let Some(id) = id {
                let same = w
                    .tag
                    .as_ref()
                    .is_some_and(|p| p.id == id && secs(at - p.seen) <= PRESENTATION_GAP_S);
                if same {
                    if let Some(p) = w.tag.as_mut() {
                        p.seen = at;
                    }
                } else {
                    w.tag = Some(Presented {
                        id: id.clone(),
                        since: at,
                        seen: at,
                    });
                    if guarded && tokens.authorise(&id).is_none() {
                        self.attempts
                            .entry(id.clone())
                            .or_default()
                            .push_back(Attempt {
                                at,
                                charger: i,
                                authorised,
                            });
                    }
                }
                if authorised {
                    // Allowed after all (the cloud, or a token added to the list meanwhile).
                    if let Some(list) = self.attempts.get_mut(&id) {
                        if let Some(a) = list.iter_mut().rev().find(|a| a.charger == i) {
                            a.authorised = true;
                        }
                    }
                }
            } else if w
                .tag
                .as_ref()
                .is_some_and(|p| secs(at - p.seen) > PRESENTATION_GAP_S)
            {
                w.tag = None;
            }

            // Energy flowing with nobody authorised.
            let current = c.current_or_zero_a();
            let draw = current.iter().copied().fold(0.0, f64::max);
            let unauthorised = guarded && !authorised && draw > DRAW_FLOOR_A;
            let held = w.draw.update(unauthorised, at, s.unauthorized_hold_s);
            if unauthorised {
                let p = charger_power_w(c.power_w, &current, voltage_v);
                if let Some((t, last_p)) = w.last {
                    w.drawn_wh += (last_p + p) / 2.0 * secs(at - t) / 3600.0;
                }
                w.last = Some((at, p));
            } else {
                w.drawn_wh = 0.0;
                w.last = None;
            }
            let verdict = if held {
                let state = match c.auth.state {
                    AuthState::Waiting => "no token presented",
                    AuthState::Asking => "waiting for the cloud's answer",
                    AuthState::Refused => "its token was refused",
                    _ => "nobody authorised",
                };
                Verdict::On(format!(
                    "{}: drawing {draw:.1} A in {} mode with {state}; {:.0} Wh drawn so far",
                    f.id,
                    c.auth.mode.name(),
                    w.drawn_wh
                ))
            } else {
                Verdict::Off
            };
            out.push((AlertKind::UnauthorizedDraw, f.id.clone(), verdict));
        }

        // Unknown tokens presented repeatedly, site-wide, within the window.
        let window = s.unknown_token_window_s;
        self.attempts.retain(|_, list| {
            while list.front().is_some_and(|a| secs(at - a.at) > window) {
                list.pop_front();
            }
            !list.is_empty()
        });
        let need = usize::try_from(s.unknown_token_count).unwrap_or(usize::MAX);
        let mut unknown: Vec<Option<(String, usize)>> = vec![None; facts.len()];
        for (id, list) in &self.attempts {
            let counted: Vec<&Attempt> = list.iter().filter(|a| !a.authorised).collect();
            if counted.len() >= need {
                if let Some(last) = counted.last() {
                    if unknown[last.charger].is_none() {
                        unknown[last.charger] = Some((id.clone(), counted.len()));
                    }
                }
            }
        }
        for (i, f) in facts.iter().enumerate() {
            let v = match &unknown[i] {
                Some((id, n)) => Verdict::On(format!(
                    "{}: token {} not on the list presented {n} times within {}",
                    f.id,
                    shown(id),
                    span(window)
                )),
                None => Verdict::Off,
            };
            out.push((AlertKind::UnknownToken, f.id.clone(), v));
        }

        // One token on two connected chargers at once: judged on the later presentation.
        let connected = |i: usize| {
            cycles[i].is_some_and(|c| {
                c.online
                    && matches!(
                        c.state,
                        Some(ChargeState::B | ChargeState::C | ChargeState::D)
                    )
            })
        };
        for i in 0..facts.len() {
            if !cycles[i].is_some_and(|c| c.online) {
                out.push((
                    AlertKind::TokenInUseTwice,
                    facts[i].id.clone(),
                    Verdict::Keep,
                ));
                continue;
            }
            let mine = self.chargers[i].tag.clone().filter(|_| connected(i));
            let other = mine.as_ref().and_then(|p| {
                (0..facts.len()).find(|&j| {
                    j != i
                        && connected(j)
                        && self.chargers[j]
                            .tag
                            .as_ref()
                            .is_some_and(|q| q.id == p.id && (q.since, j) < (p.since, i))
                })
            });
            let held = self.chargers[i]
                .twice
                .update(other.is_some(), at, s.token_twice_hold_s);
            let v = match (held, mine, other) {
                (true, Some(p), Some(j)) => Verdict::On(format!(
                    "{}: token {} is also in use on {}",
                    facts[i].id,
                    shown(&p.id),
                    facts[j].id
                )),
                _ => Verdict::Off,
            };
            out.push((AlertKind::TokenInUseTwice, facts[i].id.clone(), v));
        }
        out
    }
}

/// A token as an alert message shows it: its last four characters only (tokens are personal
/// data; the operator finds the card from them, the alert feed does not carry it whole).
fn shown(id: &str) -> String {
    let n = id.chars().count();
    if n <= 4 {
        "*".repeat(n)
    } else {
        let tail: String = id.chars().skip(n - 4).collect();
        format!("…{tail}")
    }
}

fn span(window_s: f64) -> String {
    if window_s >= 3600.0 && (window_s % 3600.0).abs() < 1e-9 {
        format!("{} h", window_s / 3600.0)
    } else {
        format!("{} min", (window_s / 60.0).round())
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
