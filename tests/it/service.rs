//! The real `evsite run` as systemd runs it, against the simulator served in this process:
//! READY=1 and watchdog pings on a notification socket, SIGHUP with a lower grid limit (the
//! chargers' setpoints drop to fit it), SIGHUP with a broken file (refused, every problem
//! logged with its line and key, the old limit kept), and SIGTERM (STOPPING=1, exit 0, every
//! charger at the fail-safe current). Assertions read the simulator's truth.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixDatagram;
use tokio::process::{Child, Command};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::time::{timeout, Duration};

use evsite::config::Config;
use evsite::devices::model::ChargeState;
use evsite::simulator::write_config::write_config;
use evsite::simulator::{serve_site, spawn_stepper, Scenario, SharedSite, SiteModel};

const FAILSAFE_A: f64 = 6.0;
const BASE_A: f64 = 5.0;
const MARGIN_A: f64 = 1.0;
const TOL: f64 = 0.05;
const WAIT: Duration = Duration::from_secs(30);

fn scenario() -> Scenario {
    let charger = |id: &str, model: &str, map: &str| {
        format!(
            "[[charger]]\nid = \"{id}\"\nmodel = \"{model}\"\ntransport = \"tcp\"\nphases = 3\n\
             phase_map = [{map}]\nmin_current_a = 6.0\nmax_current_a = 16.0\n"
        )
    };
    let car = |id: &str| {
        format!(
            "[[vehicle]]\ncharger = \"{id}\"\narrive_s = 0\ndepart_s = 3600\ncapacity_kwh = 100\n\
             soc_start = 0.1\nsoc_target = 1.0\nmax_current_a = 32\nphases = 3\n\
             response_delay_s = 1\ntaper_from_soc = 1.0\n"
        )
    };
    let text = format!(
        r#"
name = "service"
seed = 5
duration_s = 3600
start = "2026-01-15T17:00:00Z"
[site]
id = "service"
grid_limit_a = 32.0
phases = 3
voltage_v = 230.0
margin_a = {MARGIN_A}
failsafe_current_a = {FAILSAFE_A}
[base_load]
points = [[0, {BASE_A}, {BASE_A}, {BASE_A}]]
[meter]
model = "eastron-sdm630"
transport = "rtu"
{}{}{}{}{}"#,
        charger("cp-1", "alfen-eve", "1, 2, 3"),
        charger("cp-2", "vestel-evc04", "2, 3, 1"),
        charger("cp-3", "schneider-evlink-pro", "3, 1, 2"),
        car("cp-1"),
        car("cp-2"),
    );
    Scenario::parse(&text, "service test").expect("test scenario parses")
}

/// The most the site can draw per grid phase once the cars follow their setpoints.
fn worst_case_a(site: &SharedSite, cfg: &Config) -> f64 {
    let guard = site.lock().expect("site lock");
    let mut sum = guard.base_load_a();
    for (t, c) in guard.charger_truth().iter().zip(&cfg.chargers) {
        for &p in &c.phase_map {
            sum[p] += t.setpoint_a.unwrap_or(0.0);
        }
    }
    sum.into_iter().fold(f64::MIN, f64::max)
}

/// Poll the simulator (bounded) until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let poll = async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    timeout(WAIT, poll)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// Lines from a stream of the daemon, as they come.
fn lines(stream: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> UnboundedReceiver<String> {
    let (tx, rx) = unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line (message) that satisfies `pred`, the ones before it returned too.
async fn expect(
    rx: &mut UnboundedReceiver<String>,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut seen = Vec::new();
    let found = timeout(WAIT, async {
        while let Some(line) = rx.recv().await {
            let hit = pred(&line);
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert!(found == Ok(true), "no {what}; got:\n{}", seen.join("\n"));
    seen
}

/// systemd's side of `Type=notify`: a datagram socket whose messages are passed on.
fn notify_socket(path: &Path) -> UnboundedReceiver<String> {
    let sock = UnixDatagram::bind(path).expect("notify socket binds");
    let (tx, rx) = unbounded_channel();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = sock.recv(&mut buf).await {
            if tx
                .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                .is_err()
            {
                break;
            }
        }
    });
    rx
}

fn signal(child: &Child, sig: &str) {
    let pid = child.id().expect("the daemon runs");
    let kill = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
}

fn with_limit(text: &str, limit_a: f64) -> String {
    let mut doc: toml_edit::DocumentMut = text.parse().expect("written config is TOML");
    doc["site"]["grid_limit_a"] = toml_edit::value(limit_a);
    doc.to_string()
}

fn start(config: &PathBuf, notify: &Path) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_evsite"));
    cmd.arg("run")
        .arg("--config")
        .arg(config)
        .env("NOTIFY_SOCKET", notify)
        // Ping every half second.
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .env_remove("JOURNAL_STREAM")
        .env_remove("RUST_LOG")
        .env_remove("EVSITE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, _) in std::env::vars() {
        if k.starts_with("EVSITE__") {
            cmd.env_remove(k);
        }
    }
    cmd.spawn().expect("evsite starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_good_and_broken_configs_then_stop_on_sigterm() {
    let site = SiteModel::from_registry(&scenario())
        .expect("site")
        .into_shared();
    let served = serve_site(site.clone()).await.expect("served");
    let _stepper = spawn_stepper(site.clone(), 1.0);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("evsite.toml");
    {
        let model = site.lock().expect("site lock");
        write_config(&config, &model, &served.endpoints, dir.path()).expect("config written");
    }
    let cfg = evsite::config::load(&config).expect("the written config is valid");
    let written = std::fs::read_to_string(&config).expect("config text");
    let notify_path = dir.path().join("notify");
    let mut notes = notify_socket(&notify_path);

    let mut child = start(&config, &notify_path);
    let mut out = lines(child.stdout.take().expect("stdout"));
    let _err = lines(child.stderr.take().expect("stderr"));

    expect(&mut notes, "READY=1", |m| m.lines().any(|l| l == "READY=1")).await;
    expect(&mut notes, "a watchdog ping", |m| {
        m.lines().any(|l| l == "WATCHDOG=1")
    })
    .await;

    // Running at the 32 A limit: more than a 24 A site could take is planned.
    until("the daemon plans above 24 A per phase", || {
        worst_case_a(&site, &cfg) > 24.0 + 1.0
    })
    .await;

    // A lower grid limit, reloaded: the setpoints come down to fit it.
    std::fs::write(&config, with_limit(&written, 24.0)).expect("config rewritten");
    signal(&child, "-HUP");
    expect(&mut notes, "RELOADING=1", |m| {
        m.lines().any(|l| l == "RELOADING=1")
    })
    .await;
    expect(&mut notes, "READY=1 after the reload", |m| {
        m.lines().any(|l| l == "READY=1")
    })
    .await;
    expect(&mut out, "the reload logged", |l| {
        l.contains("configuration reloaded") && l.contains("site.grid_limit_a 32 → 24")
    })
    .await;
    until("the setpoints fit 24 A per phase", || {
        worst_case_a(&site, &cfg) <= 24.0 - MARGIN_A + TOL
    })
    .await;

    // A broken file asking for 32 A again: refused, every problem logged, 24 A kept.
    let broken = with_limit(&written, 32.0)
        .replace(&format!("margin_a = {MARGIN_A:?}"), "margin_a = \"one\"");
    let line = broken
        .lines()
        .position(|l| l.starts_with("margin_a"))
        .expect("margin_a in the written config")
        + 1;
    std::fs::write(&config, &broken).expect("config broken");
    signal(&child, "-HUP");
    let origin = format!("{}:{line}:", config.display());
    let seen = expect(&mut out, "the refusal", |l| {
        l.contains("configuration refused")
    })
    .await;
    assert!(
        seen.iter()
            .any(|l| l.contains("ERROR") && l.contains(&origin) && l.contains("site.margin_a")),
        "no error naming {origin} site.margin_a in:\n{}",
        seen.join("\n")
    );
    expect(&mut notes, "READY=1 after the refusal", |m| {
        m.lines().any(|l| l == "READY=1")
    })
    .await;
    let refused_at = site.lock().expect("site lock").time_s();
    let mut worst = 0.0_f64;
    until("five more seconds of control", || {
        worst = worst.max(worst_case_a(&site, &cfg));
        site.lock().expect("site lock").time_s() > refused_at + 5.0
    })
    .await;
    assert!(
        worst <= 24.0 - MARGIN_A + TOL,
        "planned {worst} A under a 24 A limit"
    );
    assert!(child.try_wait().expect("wait").is_none(), "still running");
    expect(&mut notes, "pings after the refusal", |m| {
        m.lines().any(|l| l == "WATCHDOG=1")
    })
    .await;

    // SIGTERM: STOPPING=1, safe currents, exit 0.
    signal(&child, "-TERM");
    expect(&mut notes, "STOPPING=1", |m| {
        m.lines().any(|l| l == "STOPPING=1")
    })
    .await;
    let status = timeout(WAIT, child.wait())
        .await
        .expect("the daemon exits within 30 s of SIGTERM")
        .expect("wait");
    assert!(status.success(), "exit status {status:?}");
    let truth = site.lock().expect("site lock").charger_truth();
    assert!(truth.iter().any(|t| t.state.is_connected()));
    for t in truth.iter().filter(|t| t.state.is_connected()) {
        let sp = t.setpoint_a.unwrap_or(f64::NAN);
        assert!((sp - FAILSAFE_A).abs() < TOL, "{t:?}");
        assert!(t.state != ChargeState::F, "{t:?}");
    }
}

/// The controller takes a reloaded config between two cycles: a lower charger maximum and
/// priorities apply at once, a commanded site limit stays in force under the new ceiling, and
/// a config with other devices is refused.
#[tokio::test(start_paused = true)]
async fn reconfigure_applies_charger_limits_between_cycles() {
    use evsite::clock::Clock;
    use evsite::control::command::ControlCommand;
    use evsite::control::runner::Controller;
    use evsite_sim::run::{in_memory, InMemory};
    use std::sync::Arc;

    let s = scenario();
    let dir = tempfile::tempdir().expect("temp dir");
    let model = SiteModel::from_registry(&s).expect("site");
    let InMemory { site, cfg, links } = in_memory(model, dir.path()).expect("wired");
    let mut ctl =
        Controller::new(cfg.clone(), &links, Clock::starting_at(s.start)).expect("controller");
    let commands = ctl.commands();
    let setpoint = |i: usize| site.lock().expect("site lock").charger_truth()[i].setpoint_a;
    let cycles = async |ctl: &mut Controller, n: usize| {
        for _ in 0..n {
            tokio::time::sleep(cfg.control.interval).await;
            site.lock()
                .expect("site lock")
                .step(cfg.control.interval.as_secs_f64());
            ctl.cycle().await;
        }
    };
    cycles(&mut ctl, 30).await;
    assert!(setpoint(0).is_some_and(|a| a > 10.0), "{:?}", setpoint(0));

    let mut lower = (*cfg).clone();
    lower.chargers[0].max_current_a = 8.0;
    commands
        .send(ControlCommand::Reconfigure(Arc::new(lower.clone())))
        .expect("queued");
    cycles(&mut ctl, 1).await;
    assert!(
        setpoint(0).is_some_and(|a| a <= 8.0 + TOL),
        "{:?}",
        setpoint(0)
    );

    // Another meter: refused, the 8 A maximum stays.
    let mut other = (*cfg).clone();
    other.meter.unit = other.meter.unit.wrapping_add(1);
    commands
        .send(ControlCommand::Reconfigure(Arc::new(other)))
        .expect("queued");
    cycles(&mut ctl, 10).await;
    assert!(
        setpoint(0).is_some_and(|a| a <= 8.0 + TOL),
        "{:?}",
        setpoint(0)
    );

    // A commanded limit stays, capped by a lower grid limit.
    commands
        .send(ControlCommand::SetSiteLimit {
            limit_a: Some(30.0),
            expires_at: None,
        })
        .expect("queued");
    lower.site.grid_limit_a = 20.0;
    commands
        .send(ControlCommand::Reconfigure(Arc::new(lower)))
        .expect("queued");
    cycles(&mut ctl, 1).await;
    assert_eq!(ctl.site_limit_a(), 20.0);
}
