//! Every integration test of evsite, in one test binary: linked once instead of once per
//! file, which on a 2-core machine was most of the test command's time (docs/benchmarks.md,
//! "Test command"). Each module is one area, as each file was its own binary before; the
//! shared rigs are in `support`. Run one area with its module path as the filter, e.g.
//! `cargo test --test it control::`, or one test with `--exact`.
//!
//! No test here needs a process of its own: none changes this process's environment, signal
//! handlers, panic hook or global tracing subscriber. What must own a process (the daemon,
//! libfaketime's `LD_PRELOAD`, Chromium, mosquitto, cargo-deb) is a child process each test
//! starts. Tests run on libtest's threads, one per core by default, as each binary's did.
//! The test command runs `outage` and `mqtt_daemon` apart, after the rest: they hold
//! delivery within windows of real time, which the other tests' load would stretch.

mod support;

mod alerts;
mod anomaly;
mod api;
mod authorize;
mod billing;
mod check_live;
mod cli;
mod clock;
mod commands;
mod config;
mod config_files;
mod control;
mod crash;
mod demo;
mod drivers;
mod forget;
mod fuzz;
mod gateways;
mod history;
mod identity;
mod modbus_faults;
mod modbus_links;
mod models_show;
mod mqtt_daemon;
mod mqtt_sync;
mod mqtt_tls;
mod outage;
mod package;
mod probe_tools;
mod reports;
mod service;
mod sim_db;
mod simulator;
mod site;
mod store;
mod torture;
mod user_model;
