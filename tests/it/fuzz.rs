//! Property-based fuzzing of everything that takes input from outside: the config loader,
//! every cloud command through the real handler (with a real store), register decoding of
//! every model, and the store's recovery from truncated or corrupted files. Inputs start from
//! the seed corpus in `tests/fuzz/` and are mutated (truncated, bytes flipped, spliced,
//! random). Every target must never panic and must answer bad input with a reason.
//!
//! Cases per target: `EVSITE_FUZZ_CASES` (default 200, as the test command runs it); each
//! target prints how many inputs it executed.

use crate::support::{corrupt, db};

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

use evsite::clock::Clock;
use evsite::commands::{handle, CommandContext};
use evsite::devices::codec::decode;
use evsite::devices::registry;
use evsite::devices::state::{decode_state, state_registers};
use evsite::store::{SessionFilter, Store};

fn cases() -> u32 {
    std::env::var("EVSITE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    })
}

fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| std::fs::read(e.expect("corpus entry").path()).expect("corpus file"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "a seed corpus in {}", root.display());
    out
}

/// One mutation of a seed: what a fuzzer does to it.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Replace(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<usize>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..16),
                // Tokens that make syntax go wrong in interesting ways.
                prop::sample::select(vec![
                    b"\"".to_vec(),
                    b"]".to_vec(),
                    b"[[".to_vec(),
                    b"=".to_vec(),
                    b"\n[site]\n".to_vec(),
                    b"nan".to_vec(),
                    b"-inf".to_vec(),
                    b"1e400".to_vec(),
                    b"{".to_vec(),
                    b"null".to_vec(),
                    b"\xff\xfe".to_vec(),
                    b"-1".to_vec(),
                    b"99999999999999999999".to_vec(),
                ]),
            ]
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        proptest::collection::vec(any::<u8>(), 0..256).prop_map(Mutation::Replace),
    ]
}

fn apply(seed: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in muts {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match m {
            Mutation::Truncate(i) => b.truncate(at(*i, b.len())),
            Mutation::Flip(i, x) => {
                if !b.is_empty() {
                    let j = i % b.len();
                    b[j] ^= x;
                }
            }
            Mutation::Insert(i, bytes) => {
                let j = at(*i, b.len());
                b.splice(j..j, bytes.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let j = at(*i, b.len());
                let end = (j + n).min(b.len());
                b.drain(j..end);
            }
            Mutation::Replace(bytes) => b = bytes.clone(),
        }
    }
    b
}

fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(seeds),
        proptest::collection::vec(mutation(), 0..4),
    )
        .prop_map(|(seed, muts)| apply(&seed, &muts))
}

fn report(target: &str, runs: &AtomicU64) {
    println!(
        "fuzz: {target}: {} inputs executed, 0 panics",
        runs.load(Ordering::Relaxed)
    );
}

#[test]
fn the_config_loader_answers_every_input_with_a_config_or_located_errors() {
    let mut seeds = corpus("tests/fuzz/config");
    seeds.extend(corpus("tests/fixtures/config"));
    let runs = AtomicU64::new(0);
    runner(cases() * 5)
        .run(&mutated(seeds), |bytes| {
            runs.fetch_add(1, Ordering::Relaxed);
            let text = String::from_utf8_lossy(&bytes);
            if let Err(errors) = evsite::config::load_str(&text, "fuzz.toml") {
                let shown = errors.to_string();
                prop_assert!(!shown.trim().is_empty(), "an error says why");
                let first = shown.lines().next().unwrap_or_default();
                prop_assert!(
                    first.starts_with("fuzz.toml"),
                    "an error names the file (and where): {shown:?}"
                );
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    report("config loader", &runs);
}

#[test]
fn every_cloud_command_gets_a_reply_saying_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/config/full.toml"),
        )
        .expect("seed config");
        Arc::new(evsite::config::load_str(&text, "full.toml").expect("the seed config is valid"))
    };
    let (store, _) = Store::open(dir.path().join("db")).expect("store");
    let (control, mut applied) = tokio::sync::mpsc::unbounded_channel();
    let ctx = CommandContext {
        cfg: cfg.clone(),
        store,
        control,
        clock: Clock::system(),
        sessions: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let names = vec![
        "set_site_limit",
        "set_charger",
        "set_profile",
        "set_plan",
        "set_demand_limit",
        "resync",
        "reboot",
        "",
    ];
    let runs = AtomicU64::new(0);
    let strategy = (
        prop::sample::select(names),
        mutated(corpus("tests/fuzz/commands")),
    );
    runner(cases() * 5)
        .run(&strategy, |(name, payload)| {
            runs.fetch_add(1, Ordering::Relaxed);
            let reply = rt.block_on(handle(&ctx, name, &payload));
            prop_assert!(reply["ok"].is_boolean(), "a reply: {reply}");
            if reply["ok"] == false {
                prop_assert!(
                    reply["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "a refusal says why: {reply}"
                );
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // Whatever was applied stays within the installer's limits (invariant 1).
    while let Ok(cmd) = applied.try_recv() {
        if let evsite::control::command::ControlCommand::SetSiteLimit {
            limit_a: Some(l), ..
        } = cmd
        {
            assert!(l <= cfg.site.grid_limit_a, "a commanded limit {l} A");
        }
    }
    report("cloud commands", &runs);
}

#[test]
fn register_decoding_of_every_model_survives_any_words() {
    let runs = AtomicU64::new(0);
    for model in registry::all() {
        let mut regs: Vec<_> = evsite::devices::plan::snapshot_registers(model);
        if let Some(c) = &model.charger {
            regs.extend(state_registers(&c.state));
            regs.push(c.setpoint);
        }
        let words = proptest::collection::vec(any::<u16>(), 0..8);
        runner(cases())
            .run(&words, |w| {
                for reg in &regs {
                    runs.fetch_add(1, Ordering::Relaxed);
                    let n = usize::from(reg.words());
                    // The right length and whatever else a device may answer.
                    for words in [&w[..w.len().min(n)], &w[..]] {
                        let mut padded = words.to_vec();
                        if padded.len() < n && words.len() == w.len().min(n) {
                            padded.resize(n, 0xFFFF);
                        }
                        if let Ok(Some(evsite::devices::codec::Value::Number(v))) =
                            decode(reg, &padded)
                        {
                            prop_assert!(
                                v.is_finite(),
                                "{}: register {} decodes {padded:04x?} to {v}",
                                model.name,
                                reg.addr
                            );
                        }
                    }
                }
                if let Some(c) = &model.charger {
                    let regs = state_registers(&c.state);
                    let parts: Vec<Vec<u16>> = regs
                        .iter()
                        .map(|r| {
                            let n = usize::from(r.words());
                            let mut v = w.clone();
                            v.resize(n, 0xFFFF);
                            v
                        })
                        .collect();
                    let refs: Vec<&[u16]> = parts.iter().map(Vec::as_slice).collect();
                    let _ = decode_state(&c.state, &refs);
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{}: {e}", model.name));
    }
    report("register decoding (all models)", &runs);
}

/// A store with a few sessions and alerts in it, closed.
fn filled_store(path: &Path) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(corrupt::store_with_five_alerts(path));
}

#[test]
fn the_store_recovers_from_truncated_and_corrupted_files() {
    let pristine = tempfile::tempdir().expect("temp dir");
    let db = pristine.path().join("db");
    filled_store(&db);
    let files: Vec<std::path::PathBuf> = walk(&db);
    assert!(!files.is_empty(), "sled wrote files");
    let runs = AtomicU64::new(0);
    let strategy = (
        prop::sample::select(files.clone()),
        proptest::collection::vec(mutation(), 1..3),
    );
    // Opening a database is slow next to parsing: fewer cases.
    runner((cases() / 4).max(10))
        .run(&strategy, |(file, muts)| {
            runs.fetch_add(1, Ordering::Relaxed);
            let work = tempfile::tempdir().expect("temp dir");
            let copy = work.path().join("db");
            copy_dir(&db, &copy);
            let target = copy.join(file.strip_prefix(&db).expect("inside the db"));
            let bytes = std::fs::read(&target).expect("db file");
            std::fs::write(&target, apply(&bytes, &muts)).expect("corrupted");
            // Either it opens and reads, or it refuses with an error: never a panic, and a
            // refusal leaves what it could not read where it was (moved aside, not deleted).
            match Store::open(&copy) {
                Ok((store, _)) => {
                    let _ = store.sessions(&SessionFilter::default());
                    let _ = store.active_alerts();
                    let _ = store.open_sessions();
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
            let left: u64 = walk(work.path())
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            prop_assert!(left > 0, "nothing deleted");
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    report("store recovery", &runs);
}

/// The input the store target found: sled panics opening it. Opened here, where panics unwind,
/// it is moved aside; the daemon, which aborts on a panic, tries it in a child process first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_sled_crashes_on_is_moved_aside_in_process_and_by_the_trial() {
    let work = tempfile::tempdir().expect("temp dir");
    let bad = work.path().join("bad");
    corrupt::database_sled_crashes_on(&bad).await;
    let trial = work.path().join("trial");
    copy_dir(&bad, &trial);

    let (store, report) = Store::open(&bad).expect("opens fresh");
    let aside = report.moved_aside.expect("moved aside");
    assert!(
        walk(&aside).iter().any(|p| p.ends_with("db")),
        "kept for inspection"
    );
    assert!(
        store.active_alerts().expect("readable").is_empty(),
        "a fresh store"
    );
    drop(store);

    let exe = Path::new(env!("CARGO_BIN_EXE_evsite"));
    let (store, report) = Store::open_guarded(&trial, exe).await.expect("opens fresh");
    assert!(report.moved_aside.is_some(), "the trial saw the crash");
    assert!(store.active_alerts().expect("readable").is_empty());
    // A sound database passes its trial and is kept.
    drop(store);
    db::wait_released(&trial);
    let set_aside = || {
        std::fs::read_dir(work.path())
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("trial.corrupt-")
            })
            .count()
    };
    assert_eq!(set_aside(), 1);
    let (_store, report) = Store::open_guarded(&trial, exe).await.expect("opens");
    assert_eq!(report.moved_aside, None);
    assert_eq!(set_aside(), 1, "the sound database stays where it is");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).expect("copy");
        }
    }
}

/// The kinds of value a config holds, each with its own pool of values near the edge of
/// what it takes, valid and not.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Zone,
    Money,
    Time,
    Number,
    Name,
    Days,
    Url,
    Address,
    Level,
}

/// Where a config value sits (tables by name, arrays of tables by `name[i]`, the key last)
/// and its kind. Optional keys are set even when the seed leaves them out.
const VALUE_KEYS: &[(&str, Kind)] = &[
    ("site.id", Kind::Name),
    ("site.timezone", Kind::Zone),
    ("control.interval_ms", Kind::Number),
    ("control.meter_timeout_s", Kind::Number),
    ("control.rotation_interval_s", Kind::Number),
    ("bus[0].name", Kind::Name),
    ("bus[0].parity", Kind::Name),
    ("bus[0].timeout_ms", Kind::Number),
    ("meter.bus", Kind::Name),
    ("charger[0].id", Kind::Name),
    ("charger[0].plan_depart", Kind::Time),
    ("charger[0].plan_energy_wh", Kind::Number),
    ("charger[1].plan_depart", Kind::Time),
    ("tariff.currency", Kind::Name),
    ("tariff.energy_price", Kind::Money),
    ("tariff.session_fee", Kind::Money),
    ("tariff.idle_fee_per_min", Kind::Money),
    ("tariff.time_fee_per_hour", Kind::Money),
    ("tariff.idle_grace_min", Kind::Number),
    ("tariff.timezone", Kind::Zone),
    ("tariff.window[0].start", Kind::Time),
    ("tariff.window[0].end", Kind::Time),
    ("tariff.window[0].energy_price", Kind::Money),
    ("tariff.window[0].days", Kind::Days),
    ("demand.window_min", Kind::Number),
    ("schedule[0].days", Kind::Days),
    ("schedule[0].from", Kind::Time),
    ("schedule[0].to", Kind::Time),
    ("schedule[1].charger", Kind::Name),
    ("mqtt.url", Kind::Url),
    ("mqtt.client_id", Kind::Name),
    ("mqtt.topic_prefix", Kind::Name),
    ("mqtt.telemetry_interval_s", Kind::Number),
    ("api.listen", Kind::Address),
    ("log.level", Kind::Level),
    ("storage.retention_days", Kind::Number),
];

fn strings(values: &[&'static str]) -> BoxedStrategy<toml_edit::Value> {
    prop::sample::select(values.to_vec())
        .prop_map(toml_edit::Value::from)
        .boxed()
}

/// A value of `kind`, mostly near what it takes, sometimes of another kind altogether.
fn config_value(kind: Kind) -> BoxedStrategy<toml_edit::Value> {
    let own = match kind {
        Kind::Zone => strings(&[
            "Europe/Berlin",
            "UTC",
            "Etc/GMT+5",
            "America/Argentina/Buenos_Aires",
            "Asia/Kathmandu",
            "Australia/Lord_Howe",
            "Europe/Berln",
            "europe/berlin",
            "Mars/Olympus",
            "Local",
            "UTC ",
        ]),
        Kind::Money => strings(&[
            "0.35",
            "0",
            "12",
            "0.0000000000000000000000000001",
            "79228162514264337593543950335",
            "79228162514264337593543950336",
            "0.00000000000000000000000000001",
            "1e3",
            "-0.30",
            "0,30",
            ".5",
            "1.",
        ]),
        Kind::Time => strings(&[
            "00:00", "06:30", "17:00", "23:59", "24:00", "24:01", "7:00", "12:60", "17:00 ",
        ]),
        Kind::Number => prop::sample::select(vec![
            -1i64,
            0,
            1,
            15,
            30,
            60,
            100,
            1000,
            1440,
            3600,
            20_000,
            86_400,
            i64::MAX,
        ])
        .prop_map(toml_edit::Value::from)
        .boxed(),
        Kind::Name => strings(&[
            "cp-01", "cp-02", "rs485-1", "garage", "EUR", "none", "even", "evsite", "", "a/b",
            "x+y", "eur",
        ]),
        Kind::Days => proptest::collection::vec(
            prop::sample::select(vec!["mon", "fri", "sun", "weekdays", "weekends", "Mon", ""]),
            0..3,
        )
        .prop_map(|d| toml_edit::Value::Array(d.into_iter().collect()))
        .boxed(),
        Kind::Url => strings(&[
            "mqtt://127.0.0.1:1883",
            "mqtts://[::1]:8883",
            "mqtt://broker.example.com",
            "mqtt://host:99999",
            "mqtt://host:0",
            "mqtt://host/path",
            "mqtt://user@host",
            "mqtt://[::1",
            "mqtt://",
        ]),
        Kind::Address => strings(&["127.0.0.1:8787", "[::1]:8787", "localhost:8787", ""]),
        Kind::Level => strings(&["info", "evsite=debug", "warn,evsite=trace", "evsite=[", ""]),
    };
    let any = strings(&["Europe/Berlin", "0.35", "17:00", "cp-01", "info", ""]);
    prop_oneof![6 => own, 1 => any].boxed()
}

fn key_and_value() -> impl Strategy<Value = (&'static str, toml_edit::Value)> {
    prop::sample::select(VALUE_KEYS.to_vec())
        .prop_flat_map(|(path, kind)| config_value(kind).prop_map(move |v| (path, v)))
}

/// Sets `path` (see [`VALUE_KEYS`]) to `value` when its table exists.
fn set_value(doc: &mut toml_edit::DocumentMut, path: &str, value: toml_edit::Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(key) = parts.pop() else { return };
    let mut table: &mut dyn toml_edit::TableLike = doc.as_table_mut();
    for part in parts {
        let (name, index) = match part.split_once('[') {
            Some((name, i)) => (name, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some(item) = table.get_mut(name) else {
            return;
        };
        let next: Option<&mut dyn toml_edit::TableLike> = match (item, index) {
            (toml_edit::Item::ArrayOfTables(a), Some(i)) => {
                a.get_mut(i).map(|t| t as &mut dyn toml_edit::TableLike)
            }
            (toml_edit::Item::Table(t), None) => Some(t),
            _ => None,
        };
        let Some(next) = next else { return };
        table = next;
    }
    table.insert(key, toml_edit::Item::Value(value));
}

/// Every use of the config's values after validation, as the daemon, the controller, the
/// session ledger and the cloud link make them. None may fail on a config that validated.
fn use_everything(cfg: &evsite::config::Config) -> Result<(), String> {
    use chrono::{DateTime, Utc};
    use evsite::control::{allocate::CircuitInput, demand, plan, schedule};
    use evsite::sessions::tariff::TariffSnapshot;

    let tz = cfg.site.timezone;
    // Across both of Europe's 2026 DST changes, off the minute.
    let instants: Vec<DateTime<Utc>> = [
        "2026-03-29T00:59:17Z",
        "2026-03-29T01:30:17Z",
        "2026-06-15T12:00:17Z",
        "2026-10-25T00:30:17Z",
        "2026-10-25T01:30:17Z",
        "2026-12-31T23:59:17Z",
    ]
    .iter()
    .map(|s| s.parse().map_err(|e| format!("{s}: {e}")))
    .collect::<Result<_, String>>()?;
    if let Some(t) = &cfg.tariff {
        for &at in &instants {
            t.price_at(at);
        }
        // Frozen into every session record and read back from the store.
        let json = serde_json::to_string(t).map_err(|e| format!("tariff snapshot: {e}"))?;
        let back: TariffSnapshot =
            serde_json::from_str(&json).map_err(|e| format!("tariff snapshot {json}: {e}"))?;
        if &back != t {
            return Err(format!("tariff snapshot changed on its way back: {json}"));
        }
    }
    for &at in &instants {
        schedule::limit_a(&cfg.schedules, None, at, tz, cfg.site.voltage_v, 3);
        for c in &cfg.chargers {
            schedule::limit_a(&cfg.schedules, Some(&c.id), at, tz, cfg.site.voltage_v, 3);
            if let Some(p) = c.plan {
                let depart = plan::next_local(at, p.depart_min, tz);
                if depart <= at {
                    return Err(format!("{}: no departure after {at}", c.id));
                }
            }
        }
        if let Some(d) = &cfg.demand {
            let start = demand::window_start(at, d.window.as_secs() as i64, tz);
            if start > at {
                return Err(format!("demand window starting {start} after {at}"));
            }
            demand::DemandMeter::new(d.clone(), tz).limit_kw(at);
        }
    }
    let circuits = CircuitInput::from_config(cfg);
    if circuits.len() != cfg.circuits.len() {
        return Err("a circuit lost on its way to the allocator".into());
    }
    if let Some(m) = &cfg.mqtt {
        evsite::sync::parse_url(&m.url).map_err(|e| e.to_string())?;
    }
    evsite::app::logging::parse_level(&cfg.log.level).map_err(|e| e.to_string())?;
    Ok(())
}

/// Configs mutated value by value (zones, money, local times, durations, names): every one
/// that validates is used by everything that reads it later without a parse failing. Run
/// longer with `EVSITE_FUZZ_CASES=20000 cargo test --test it fuzz::configs_that_validate`.
#[test]
fn configs_that_validate_never_fail_to_parse_later() {
    let mut seeds: Vec<String> = corpus("tests/fuzz/config")
        .into_iter()
        .map(|b| String::from_utf8(b).expect("seed configs are text"))
        .collect();
    seeds.push(
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/base.toml"),
        )
        .expect("base fixture"),
    );
    for seed in &seeds {
        let cfg = evsite::config::load_str(seed, "seed.toml").expect("seeds are valid");
        use_everything(&cfg).expect("seeds are usable");
    }
    let strategy = (
        prop::sample::select(seeds),
        proptest::collection::vec(key_and_value(), 1..4),
    );
    let (runs, valid) = (AtomicU64::new(0), AtomicU64::new(0));
    runner(cases() * 5)
        .run(&strategy, |(seed, edits)| {
            runs.fetch_add(1, Ordering::Relaxed);
            let mut doc: toml_edit::DocumentMut = seed.parse().expect("seeds parse");
            for (path, value) in edits {
                set_value(&mut doc, path, value);
            }
            let text = doc.to_string();
            if let Ok(cfg) = evsite::config::load_str(&text, "fuzz.toml") {
                valid.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = use_everything(&cfg) {
                    prop_assert!(false, "validated, then failed: {e}\n{text}");
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let (runs, valid) = (runs.load(Ordering::Relaxed), valid.load(Ordering::Relaxed));
    println!("fuzz: configs that validate: {runs} inputs executed, {valid} validated");
    // Not vacuous: a fair share of the edited configs validate and are used.
    assert!(valid * 5 >= runs, "only {valid} of {runs} validated");
}
