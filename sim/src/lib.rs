//! evsite-sim: serves a scenario's simulated site over Modbus, or runs it against the real
//! controller on a virtual clock and scores the result.
#![forbid(unsafe_code)]
