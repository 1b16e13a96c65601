//! Command bodies as the cloud sends them (`request_id` removed first). Strict: unknown
//! fields and wrong types are errors. The profile follows OCPP 1.6's `ChargingProfile`
//! field names; rules beyond types are checked in [`super::validate`].

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSiteLimit {
    pub limit_a: f64,
    /// RFC 3339; parsed in validation for a clearer error.
    pub expires_at: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetCharger {
    pub charger: String,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub max_current_a: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetProfile {
    /// A charger id; null or absent: the site (OCPP connector 0).
    #[serde(default)]
    pub charger: Option<String>,
    pub profile: ChargingProfile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resync {
    pub from_seq: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChargingProfile {
    pub charging_profile_id: u32,
    pub stack_level: u32,
    pub charging_profile_purpose: Purpose,
    pub charging_profile_kind: Kind,
    #[serde(default)]
    pub recurrency_kind: Option<Recurrency>,
    #[serde(default)]
    pub valid_from: Option<String>,
    #[serde(default)]
    pub valid_to: Option<String>,
    pub charging_schedule: ChargingSchedule,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub enum Purpose {
    #[serde(rename = "ChargePointMaxProfile", alias = "ChargePointMax")]
    ChargePointMax,
    #[serde(rename = "TxDefaultProfile", alias = "TxDefault")]
    TxDefault,
    TxProfile,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub enum Kind {
    Absolute,
    Recurring,
    Relative,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub enum Recurrency {
    Daily,
    Weekly,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChargingSchedule {
    #[serde(default)]
    pub duration: Option<u32>,
    #[serde(default)]
    pub start_schedule: Option<String>,
    /// "A" or "W"; a string so "W" is refused with a reason rather than a type error.
    pub charging_rate_unit: String,
    pub charging_schedule_period: Vec<SchedulePeriod>,
    #[serde(default)]
    pub min_charging_rate: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SchedulePeriod {
    pub start_period: u32,
    pub limit: f64,
    #[serde(default)]
    pub number_phases: Option<u8>,
}

/// `set_plan`: a departure plan for the charger's session (in progress, or the next one).
/// Both fields null or absent: back to the charger's configured plan, if any.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPlan {
    pub charger: String,
    #[serde(default)]
    pub energy_wh: Option<u64>,
    #[serde(default)]
    pub depart_at: Option<String>,
}

/// `set_demand_limit`: the demand target for one local month ("2026-12"); `limit_kw` null or
/// absent: back to the config's `[demand] limit_kw`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetDemandLimit {
    pub month: String,
    #[serde(default)]
    pub limit_kw: Option<f64>,
}
