//! Sub-distributions: a circuit's fuse limits the chargers behind it, so each charger
//! belongs to at most one circuit and every listed charger must exist.

use std::collections::HashMap;

use super::{check, check_id, num};
use crate::config::error::KeyPath;
use crate::config::raw::{RawCharger, RawCircuit};
use crate::config::report::Reporter;
use crate::config::types::Circuit;

/// Sub-distribution limits. Invalid circuits are reported and left out.
pub fn circuits(
    raw: &[RawCircuit],
    chargers: &[RawCharger],
    rep: &mut Reporter<'_>,
) -> Vec<Circuit> {
    let mut out = Vec::new();
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for (i, c) in raw.iter().enumerate() {
        let p = KeyPath::root("circuit").index(i);
        let before = rep.count();
        if check_id(rep, &p.key("id"), &c.id, "_.-", "A–Z, a–z, 0–9, _, . and -") {
            if let Some(first) = raw[..i].iter().position(|o| o.id == c.id) {
                rep.error(
                    &p.key("id"),
                    format!("circuit id {:?} is already used by circuit[{first}]", c.id),
                );
            }
        }
        check(
            rep,
            c.limit_a.is_finite() && c.limit_a > 0.0,
            &p.key("limit_a"),
            format!("must be more than 0 A, got {}", num(c.limit_a)),
        );
        for (j, id) in c.chargers.iter().enumerate() {
            let here = p.key("chargers").index(j);
            if !chargers.iter().any(|ch| &ch.id == id) {
                rep.error(&here, format!("no [[charger]] with id {id:?}"));
                continue;
            }
            match owner.get(id.as_str()) {
                Some(other) => rep.error(
                    &here,
                    format!("charger {id:?} is already on circuit {other:?}"),
                ),
                None => {
                    owner.insert(id, &c.id);
                }
            }
        }
        if rep.count() == before {
            out.push(Circuit {
                id: c.id.clone(),
                limit_a: c.limit_a,
                chargers: c.chargers.clone(),
            });
        }
    }
    out
}
