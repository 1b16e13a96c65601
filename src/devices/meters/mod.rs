//! Meter models, one file each: a `SPEC` register map per model.
pub mod abb_b23;
pub mod carlo_gavazzi_em24;
pub mod carlo_gavazzi_em340;
pub mod eastron_sdm120;
pub mod eastron_sdm630;
pub mod eastron_sdm72d;
