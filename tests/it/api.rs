//! The local API end to end: the real daemon (and the demo) on a simulated site served on
//! loopback, asked over real HTTP — the live state valid against schemas/state.json, Server-
//! Sent Events per cycle and at a pace, history and the report from the store the daemon
//! holds, Prometheus metrics, health, JSON errors, the bearer token, `evsite status` with a
//! daemon and with none, and the status page in a real headless Chromium.

use crate::support::daemon;
use crate::support::http;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use daemon::{field, Daemon, Served};
use http::{get, get_with, until_json, Sse};

pub(crate) fn schema() -> jsonschema::Validator {
    let path = format!("{}/schemas/state.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("schema file");
    let value: Value = serde_json::from_str(&text).expect("schema JSON");
    jsonschema::validator_for(&value).expect("a valid schema")
}

pub(crate) fn assert_valid(v: &jsonschema::Validator, instance: &Value) {
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "invalid against state.json: {errors:#?}\n{instance:#}"
    );
}

/// A two-charger site served on loopback, the daemon running against it with its API on
/// `listen`; returns the address the daemon says it listens on.
async fn daemon_on(listen: &str, extra: &str) -> (Served, Daemon, SocketAddr) {
    let scenario = daemon::site_scenario(
        "api-site",
        "2026-11-21T08:00:00Z",
        &[
            ("cp-1", "alfen-eve", "1, 2, 3", 3600),
            ("cp-2", "abb-terra-ac", "2, 3, 1", 3600),
        ],
    );
    let served = Served::start(&scenario).await;
    served.add_config(&format!("\n[api]\nlisten = \"{listen}\"\n{extra}"));
    let mut d = Daemon::start(&served.config);
    let line = d.line_with(&["local API listening"]).await;
    let addr: SocketAddr = field(&line, "addr").parse().expect("the logged address");
    (served, d, addr)
}

async fn evsite(args: &[&str]) -> std::process::Output {
    let run = Command::new(env!("CARGO_BIN_EXE_evsite"))
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("evsite ends within 30 s")
        .expect("evsite runs")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_its_live_state_history_metrics_and_health() {
    let port = http::free_port();
    let (served, d, addr) = daemon_on(&format!("127.0.0.1:{port}"), "").await;
    assert_eq!(addr.port(), port);
    let schema = schema();

    // The live state: both chargers charging, their sessions running.
    let st = until_json(addr, "/api/state", "both cars charge", |v| {
        v["sessions"].as_array().is_some_and(|s| s.len() == 2)
            && v["cycle"]["chargers"].as_array().is_some_and(|c| {
                c.iter().all(|c| {
                    c["state"] == "C" && c["current_a"][0].as_f64().is_some_and(|a| a >= 5.0)
                })
            })
    })
    .await;
    assert_valid(&schema, &st);
    assert_eq!(st["site"]["id"], "api-site");
    assert_eq!(st["healthy"], true);
    let cycle = &st["cycle"];
    assert_eq!(cycle["mode"], "normal");
    assert_eq!(cycle["limit"]["limit_a"], 63.0);
    assert_eq!(cycle["limit"]["source"], "installer");
    let ids: Vec<&str> = cycle["chargers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, ["cp-1", "cp-2"]);
    assert!(
        cycle["grid"]["current_a"][0]
            .as_f64()
            .is_some_and(|a| a > 4.0),
        "base load and cars: {cycle}"
    );
    assert!(cycle["chargers"][0]["link"]["ok"]
        .as_u64()
        .is_some_and(|n| n > 0));
    assert!(st["sessions"][0]["session_id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));

    // A client that opens the event stream and never reads holds nothing up.
    let stuck = tokio::net::TcpStream::connect(addr).await.expect("connect");
    {
        use tokio::io::AsyncWriteExt;
        let mut stuck = stuck;
        stuck
            .write_all(b"GET /api/events HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("request sent");
        // Events: one per cycle, in order, each a valid state.
        let mut sse = Sse::open(addr, "/api/events").await;
        assert_eq!(sse.status, 200);
        assert!(
            sse.content_type.starts_with("text/event-stream"),
            "{}",
            sse.content_type
        );
        let mut seqs = Vec::new();
        for _ in 0..3 {
            let (event, data) = sse.next().await;
            assert_eq!(event, "state");
            let v: Value = serde_json::from_str(&data).expect("event JSON");
            assert_valid(&schema, &v);
            seqs.push(v["cycle"]["seq"].as_u64().expect("seq"));
        }
        assert!(
            seqs.windows(2).all(|w| w[1] > w[0]),
            "a new cycle per event: {seqs:?}"
        );
        // At a pace the client asks: the latest state every 200 ms, cycles or not.
        let mut paced = Sse::open(addr, "/api/events?every_ms=200").await;
        let started = tokio::time::Instant::now();
        for _ in 0..4 {
            assert_eq!(paced.next().await.0, "state");
        }
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "4 paced events took {:?}",
            started.elapsed()
        );
        let bad = get(addr, "/api/events?every_ms=5").await;
        assert_eq!(bad.status, 400);
        assert!(bad.json()["error"].as_str().unwrap().contains("every_ms"));
        drop(stuck);
    }

    // Health and metrics.
    let h = get(addr, "/healthz").await;
    assert_eq!(h.status, 200, "{}", h.body);
    let m = get(addr, "/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.content_type().starts_with("text/plain; version=0.0.4"));
    for want in [
        "evsite_grid_current_amperes{phase=\"L1\"} ",
        "evsite_site_limit_amperes{source=\"installer\"} 63\n",
        "evsite_charger_setpoint_amperes{charger=\"cp-1\"} ",
        "evsite_charger_current_amperes{charger=\"cp-2\",phase=\"L1\"} ",
        "evsite_charger_energy_joules_total{charger=\"cp-1\"} ",
        "evsite_modbus_requests_total{device=\"meter\"} ",
        "evsite_modbus_errors_total{device=\"cp-1\",kind=\"timeout\"} 0\n",
        "# TYPE evsite_control_cycle_duration_seconds histogram\n",
        "evsite_control_cycle_duration_seconds_count ",
        "evsite_outbox_messages ",
        "evsite_alerts_open{kind=\"overload\"} 0\n",
        "evsite_sessions_active 2\n",
        // Station health: no request to a charger on loopback fails; two chargers are no
        // site to stand out from.
        "evsite_charger_error_ratio{charger=\"cp-1\"} 0\n",
        "evsite_charger_health_outlier{charger=\"cp-2\",measure=\"errors\"} 0\n",
        "# TYPE evsite_charger_energy_share_ratio gauge\n",
    ] {
        assert!(m.body.contains(want), "metrics lack {want:?}:\n{}", m.body);
    }

    // History from the store the daemon holds, with the commands' filters and formats. A
    // session's first record is stored within a minute; poll for it.
    let sessions = until_json(
        addr,
        "/api/sessions?charger=cp-1",
        "cp-1's session is stored",
        |v| v.as_array().is_some_and(|a| !a.is_empty()),
    )
    .await;
    assert!(sessions
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["charger"] == "cp-1"));
    let csv = get(addr, "/api/sessions?format=csv&from=2026-11-21").await;
    assert_eq!(csv.status, 200);
    assert!(csv.content_type().starts_with("text/csv"));
    assert!(
        csv.body.starts_with("session_id,charger,state,"),
        "{}",
        csv.body
    );
    let none = get(addr, "/api/sessions?to=2026-11-01").await;
    assert_eq!(
        none.json(),
        serde_json::json!([]),
        "nothing plugged in before November"
    );
    let report = get(addr, "/api/report?format=json").await;
    assert_eq!(report.status, 200, "{}", report.body);
    assert!(report.json().is_object());
    for (path, says) in [
        ("/api/sessions?site=x", "unknown filter \"site\""),
        ("/api/sessions?from=yesterday", "from: "),
        ("/api/report?format=xml", "unknown format"),
        (
            "/api/sessions?from=2026-11-22&to=2026-11-21",
            "must be before",
        ),
    ] {
        let r = get(addr, path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(
            r.json()["error"].as_str().unwrap().contains(says),
            "{path}: {}",
            r.body
        );
    }
    let missing = get(addr, "/api/nothing").await;
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"]
        .as_str()
        .unwrap()
        .contains("/api/nothing"));

    // `evsite status` asks the same daemon.
    let config = served.config.to_str().unwrap();
    let out = evsite(&["status", "--config", config, "--format", "json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_valid(&schema, &v);
    assert_eq!(v["site"]["id"], "api-site");
    let out = evsite(&["status", "--config", config]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        table.starts_with("site api-site  mode normal  cycling"),
        "{table}"
    );
    assert!(
        table.contains("\nlimit 63.0 A per phase from the installer\n"),
        "{table}"
    );
    if let Ok(keep) = std::env::var("EVSITE_KEEP_SCREENSHOTS") {
        let _ = std::fs::write(std::path::Path::new(&keep).join("status.txt"), &table);
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("cp-2") && l.contains("online")),
        "{table}"
    );

    d.signal("-TERM");
    assert!(d.exit().await.success());
}

/// The shipped example config with `[api] listen` set to `listen`, in `dir`.
pub(crate) fn example_config(dir: &std::path::Path, listen: &str) -> (std::path::PathBuf, String) {
    let example = std::fs::read_to_string(format!(
        "{}/config/example.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("the example config");
    let from = "listen = \"127.0.0.1:8787\"";
    assert!(example.contains(from), "the example sets api.listen");
    let text = example.replace(from, &format!("listen = \"{listen}\""));
    let path = dir.join("evsite.toml");
    std::fs::write(&path, &text).expect("config written");
    (path, text)
}

/// `evsite sessions` and `evsite report` while the daemon holds the store: read through its
/// API, byte for byte what the API serves for the same filters. The data moves while cars
/// charge, so a comparison counts only when the API gave the same answer just before and
/// just after the command ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_commands_read_through_the_daemon_that_holds_the_store() {
    let port = http::free_port();
    let (served, d, addr) = daemon_on(&format!("127.0.0.1:{port}"), "").await;
    until_json(addr, "/api/sessions", "both sessions are stored", |v| {
        v.as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    let config = served.config.to_str().unwrap().to_owned();
    let cases: [(&[&str], &str); 4] = [
        (
            &["sessions", "--format", "json"],
            "/api/sessions?tz=UTC&format=json",
        ),
        (
            &["sessions", "--charger", "cp-1", "--from", "2026-11-21"],
            "/api/sessions?charger=cp-1&from=2026-11-21&tz=UTC&format=table",
        ),
        (
            &["report", "--format", "csv"],
            "/api/report?tz=UTC&format=csv",
        ),
        (
            // Its `to` is the report's `now` to the nanosecond without a bound of its own.
            &[
                "report",
                "--format",
                "json",
                "--charger",
                "cp-2",
                "--to",
                "2030-01-01",
            ],
            "/api/report?charger=cp-2&to=2030-01-01&tz=UTC&format=json",
        ),
    ];
    for (args, path) in cases {
        let mut cmd: Vec<&str> = args.to_vec();
        cmd.extend(["--config", &config, "--tz", "UTC"]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let before = get(addr, path).await;
            let out = evsite(&cmd).await;
            let after = get(addr, path).await;
            assert_eq!(out.status.code(), Some(0), "{cmd:?}: {}", text(&out.stderr));
            assert_eq!(before.status, 200, "{path}: {}", before.body);
            assert!(!before.body.is_empty());
            if before.body == after.body {
                assert_eq!(text(&out.stdout), before.body, "{cmd:?} against {path}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never held still for one command"
            );
        }
    }
    drop(d);
}

#[tokio::test]
async fn status_with_no_daemon_says_so_and_exits_69() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = http::free_port();
    let (config, _) = example_config(dir.path(), &format!("127.0.0.1:{port}"));
    let out = evsite(&["status", "--config", config.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(69), "EX_UNAVAILABLE");
    assert_eq!(
        text(&out.stderr).trim(),
        format!("evsite: no evsite daemon answers on 127.0.0.1:{port}: is it running?")
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn off_loopback_the_api_needs_a_token_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (config, text_cfg) = example_config(dir.path(), "0.0.0.0:8787");
    let line = text_cfg.lines().position(|l| l == "[api]").unwrap() + 1;
    for command in ["check-config", "run"] {
        let out = evsite(&[command, "--config", config.to_str().unwrap()]).await;
        assert_eq!(out.status.code(), Some(78), "{command}: EX_CONFIG");
        let err = text(&out.stderr);
        let want = format!("{}:{line}:", config.display());
        assert!(
            err.starts_with(&want),
            "{command}: located at the [api] table ({want}): {err}"
        );
        assert!(
            err.contains(": api.token_file: required when api.listen (0.0.0.0:8787) is not a loopback address"),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_request_needs_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("api-token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let (_served, d, addr) = daemon_on(
        "0.0.0.0:0",
        &format!("token_file = \"{}\"\n", token_file.display()),
    )
    .await;
    assert!(
        addr.ip().is_unspecified(),
        "listening on every address: {addr}"
    );
    // Only ever connected to over loopback.
    let addr = SocketAddr::from(([127, 0, 0, 1], addr.port()));
    for path in [
        "/api/state",
        "/metrics",
        "/healthz",
        "/",
        "/api/events",
        "/nothing",
    ] {
        let r = get(addr, path).await;
        assert_eq!(r.status, 401, "{path}");
        assert!(r.json()["error"].as_str().unwrap().contains("bearer token"));
        let wrong = get_with(addr, path, Some("s3cret-tokem")).await;
        assert_eq!(wrong.status, 401, "{path} with a wrong token");
    }
    let st = get_with(addr, "/api/state", Some("s3cret-token")).await;
    assert_eq!(st.status, 200);
    assert_eq!(st.json()["site"]["id"], "api-site");
    d.signal("-TERM");
    assert!(d.exit().await.success());
}

#[tokio::test]
async fn health_is_503_until_the_loop_cycles() {
    // The API over a site whose loop has not cycled (nothing sends on its channel).
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, text_cfg) = example_config(dir.path(), "127.0.0.1:0");
    let cfg = evsite::config::load_str(&text_cfg, "example").expect("the example config loads");
    let (_tx, state) = tokio::sync::watch::channel(Arc::new(evsite::site::SiteState::default()));
    let ctx = evsite::api::ApiContext {
        observed: Arc::new(evsite::api::Observed::new(cfg.control.interval)),
        cfg: Arc::new(cfg),
        state,
        store: None,
        link: None,
        token: None,
    };
    let server = evsite::api::start(ctx, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("serving");
    let h = get(server.addr(), "/healthz").await;
    assert_eq!(h.status, 503);
    assert_eq!(h.json()["ok"], false);
    let st = get(server.addr(), "/api/state").await.json();
    assert_valid(&schema(), &st);
    assert_eq!(st["cycle"], Value::Null);
    assert_eq!(st["healthy"], false);
    let s = get(server.addr(), "/api/sessions").await;
    assert_eq!(s.status, 503, "no store, no history: {}", s.body);
}

/// Runs headless Chromium on `url` with `args` (a screenshot or the DOM), bounded.
pub(crate) async fn chromium(url: &str, args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let run = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("chromium ends within 60 s")
        .expect("chromium runs (scripts/test.sh installs it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_the_live_site_in_chromium() {
    let (_served, d, addr) = daemon_on("127.0.0.1:0", "").await;
    // Steady: both cars charging at their 16 A, so the grid current holds still.
    let steady = |v: &Value| {
        v["cycle"]["chargers"].as_array().is_some_and(|c| {
            c.iter()
                .all(|c| c["current_a"][0].as_f64().is_some_and(|a| a >= 15.5))
        })
    };
    let before = until_json(addr, "/api/state", "both cars draw 16 A", steady).await;
    let url = format!("http://{addr}/");
    let dom = chromium(&url, &["--dump-dom"]).await;
    let after = get(addr, "/api/state").await.json();
    let dom = text(&dom.stdout);
    for id in ["cp-1", "cp-2"] {
        assert!(
            dom.contains(&format!("<tr data-charger=\"{id}\">")),
            "a row for {id}:\n{dom}"
        );
    }
    let shown: f64 = dom
        .split("id=\"grid-l1\" data-a=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("L1's current in the DOM:\n{dom}"));
    let l1 = |v: &Value| v["cycle"]["grid"]["current_a"][0].as_f64().expect("L1");
    let (lo, hi) = (l1(&before).min(l1(&after)), l1(&before).max(l1(&after)));
    assert!(
        shown >= lo - 1.0 && shown <= hi + 1.0,
        "the page shows {shown} A on L1, the API {lo}..{hi}"
    );
    assert!(dom.contains("api-site"), "the site id");
    // The test site's config vouches for the time (`[clock] trusted = true`).
    assert!(
        rendered(&dom).contains("data-trusted=\"true\">clock trusted (installer)</span>"),
        "the clock is shown trusted:\n{dom}"
    );
    assert!(
        !rendered(&dom).contains("kW target"),
        "no [demand], no demand window:\n{dom}"
    );

    let shots = tempfile::tempdir().expect("shots dir");
    for (name, size) in [("desktop", "1200,900"), ("phone", "390,1400")] {
        let png = shots.path().join(format!("{name}.png"));
        let out = chromium(
            &url,
            &[
                &format!("--screenshot={}", png.display()),
                &format!("--window-size={size}"),
                "--timeout=3000",
            ],
        )
        .await;
        let len = std::fs::metadata(&png)
            .unwrap_or_else(|e| panic!("{name} screenshot ({e}): {}", text(&out.stderr)))
            .len();
        assert!(
            len > 20_000,
            "{name} screenshot is {len} bytes: a blank page?"
        );
        if let Ok(keep) = std::env::var("EVSITE_KEEP_SCREENSHOTS") {
            let _ = std::fs::copy(
                &png,
                std::path::Path::new(&keep).join(format!("{name}.png")),
            );
        }
    }
    d.signal("-TERM");
    assert!(d.exit().await.success());
}

/// The page's DOM as rendered, without its script (which spells out every template).
fn rendered(dom: &str) -> &str {
    dom.split("<script>").next().unwrap_or(dom)
}

/// The number in the rendered DOM's first `attr="…"`.
fn dom_number(dom: &str, attr: &str) -> f64 {
    rendered(dom)
        .split(&format!("{attr}=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{attr} in the DOM:\n{dom}"))
}

/// The same site with a `[demand]` target: the page in Chromium and `evsite status` show the
/// window under way against the target, with the figures the API serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demand_target_shows_on_the_page_and_in_status() {
    let port = http::free_port();
    let (served, d, addr) =
        daemon_on(&format!("127.0.0.1:{port}"), "[demand]\nlimit_kw = 25.0\n").await;
    let before = until_json(addr, "/api/state", "a demand window", |v| {
        v["cycle"]["demand"]["projected_kw"].is_number()
    })
    .await;
    assert_valid(&schema(), &before);
    let dom = text(
        &chromium(&format!("http://{addr}/"), &["--dump-dom"])
            .await
            .stdout,
    );
    let after = get(addr, "/api/state").await.json();
    assert!(
        rendered(&dom).contains("kW projected of 25.0 kW target · month peak "),
        "the demand line:\n{dom}"
    );
    assert!(
        rendered(&dom).contains("<section id=\"demand-card\">"),
        "the demand card is shown:\n{dom}"
    );
    let shown = dom_number(&dom, "data-projected-kw");
    let demand = |v: &Value| v["cycle"]["demand"].clone();
    let projected = |v: &Value| demand(v)["projected_kw"].as_f64().expect("projected");
    // Within one window the projection moves with the draw only; a new window starts over.
    if demand(&before)["window_start"] == demand(&after)["window_start"] {
        let (lo, hi) = (
            projected(&before).min(projected(&after)),
            projected(&before).max(projected(&after)),
        );
        assert!(
            shown >= lo - 1.0 && shown <= hi + 1.0,
            "the page shows {shown} kW projected, the API {lo}..{hi}"
        );
    }

    let out = evsite(&["status", "--config", served.config.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let line = table
        .lines()
        .find(|l| l.starts_with("demand  "))
        .unwrap_or_else(|| panic!("a demand line:\n{table}"));
    assert!(
        line.contains(" kW projected of 25.0 kW target · month peak "),
        "{line}"
    );
    assert!(
        table.lines().any(|l| l == "clock  trusted (installer)"),
        "a clock line:\n{table}"
    );
    d.signal("-TERM");
    assert!(d.exit().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_the_page_on_a_free_port_when_its_own_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to take");
    let port = taken.local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_evsite"))
        .args(["demo", "--for", "8", "--api", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the demo starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let page = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            if let Some(url) = line.strip_prefix("live page: ") {
                return url.to_owned();
            }
        }
        panic!("the demo ended without printing its page");
    })
    .await
    .expect("the page URL within 30 s");
    let addr: SocketAddr = page
        .strip_prefix("http://")
        .and_then(|r| r.strip_suffix('/'))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("a URL: {page}"));
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), port, "the taken port is not used");
    let st = until_json(addr, "/api/state", "the demo has cycled", |v| {
        !v["cycle"].is_null()
    })
    .await;
    assert_eq!(st["site"]["id"], "demo");
    let html = get(addr, "/").await;
    assert!(html.content_type().starts_with("text/html"));
    assert!(html.body.contains("new EventSource(\"api/events\")"));
    // Drain the rest of its output so it is never blocked writing, then its end.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the demo ends")
        .expect("wait");
    assert!(status.success());
    drop(taken);
}

/// The same site on a clock nothing vouches for (no installer's word, no kernel, no sync
/// file): the page's header says the times are provisional, as the API has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_an_untrusted_clock_in_chromium() {
    let scenario = daemon::site_scenario(
        "api-site",
        "2026-11-21T08:00:00Z",
        &[("cp-1", "alfen-eve", "1, 2, 3", 3600)],
    );
    let served = Served::start(&scenario).await;
    let config = std::fs::read_to_string(&served.config).expect("config read");
    let config = config.replace("[clock]\ntrusted = true\n", "");
    assert!(!config.contains("[clock]"), "{config}");
    let absent = served.dir.path().join("synchronized");
    std::fs::write(
        &served.config,
        format!(
            "{config}\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [clock]\nkernel = false\nsync_file = \"{}\"\n",
            absent.display()
        ),
    )
    .expect("config written");
    let mut d = Daemon::start(&served.config);
    let line = d.line_with(&["local API listening"]).await;
    let addr: SocketAddr = field(&line, "addr").parse().expect("the logged address");
    let state = until_json(addr, "/api/state", "a cycle on an untrusted clock", |v| {
        v["cycle"]["clock"]["trusted"] == false
    })
    .await;
    assert_eq!(state["cycle"]["clock"]["trusted_by"], Value::Null);

    let dom = chromium(&format!("http://{addr}/"), &["--dump-dom"]).await;
    let dom = text(&dom.stdout);
    // The minutes count from the daemon's start: 0 here, unless the machine is very slow.
    let shown = rendered(&dom)
        .split("data-trusted=\"false\">clock NOT synchronised for ")
        .nth(1)
        .and_then(|r| r.split("</span>").next());
    assert!(
        shown.is_some_and(|s| s.ends_with(" min: times are provisional")),
        "the clock is shown untrusted:\n{dom}"
    );
    assert!(
        !rendered(&dom).contains("clock trusted"),
        "and not as trusted:\n{dom}"
    );
    d.signal("-TERM");
    assert!(d.exit().await.success());
}

/// `&amp;`, `&lt;`, `&gt;`, `&quot;` and `&nbsp;` of a serialised DOM as the text they stand for.
fn unescape(html: &str) -> String {
    html.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// Each charger's `why` of a state, by id.
fn whys(st: &Value) -> Vec<(String, Value)> {
    st["cycle"]["chargers"]
        .as_array()
        .expect("chargers")
        .iter()
        .map(|c| (c["id"].as_str().expect("id").to_owned(), c["why"].clone()))
        .collect()
}

/// The why text shown for `id` is one the API served while it was being shown (a charger's
/// why changes from cycle to cycle while its car ramps).
fn shown_as_served(id: &str, shown: &str, states: &[Value]) {
    let served: Vec<String> = states
        .iter()
        .filter_map(|st| {
            whys(st)
                .into_iter()
                .find(|(c, _)| c == id)
                .and_then(|(_, w)| w["text"].as_str().map(str::to_owned))
        })
        .collect();
    assert!(
        served.iter().any(|t| t == shown),
        "{id}: shown {shown:?}, the API gave {served:?}"
    );
}

/// Runs `fut` while reading `/api/state` again and again: what it returns, and every state
/// the API served from just before it started to just after it ended.
async fn served_during<T>(
    addr: SocketAddr,
    fut: impl std::future::Future<Output = T>,
) -> (T, Vec<Value>) {
    let mut states = vec![get(addr, "/api/state").await.json()];
    tokio::pin!(fut);
    let out = loop {
        tokio::select! {
            out = &mut fut => break out,
            // The pace of the polling, not a wait for anything.
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                states.push(get(addr, "/api/state").await.json());
            }
        }
    };
    states.push(get(addr, "/api/state").await.json());
    (out, states)
}

/// Why each charger has its current, one of them disabled by its config: in `/api/state` and
/// every event with the schema's shape, in `evsite status` as a user runs it (one line each,
/// within 80 columns) and on the live page in Chromium (a line under each charger, not a
/// tooltip), each the text the API gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_chargers_why_shows_in_the_api_status_and_page() {
    let scenario = daemon::site_scenario(
        "api-site",
        "2026-11-21T08:00:00Z",
        &[
            ("cp-1", "alfen-eve", "1, 2, 3", 3600),
            ("cp-2", "abb-terra-ac", "2, 3, 1", 3600),
        ],
    );
    let served = Served::start(&scenario).await;
    let config = std::fs::read_to_string(&served.config).expect("config read");
    let from = "id = \"cp-2\"\n";
    assert_eq!(config.matches(from).count(), 1, "{config}");
    // A port of its own: `evsite status` finds the daemon by the config's address.
    let port = http::free_port();
    std::fs::write(
        &served.config,
        format!(
            "{}\n[api]\nlisten = \"127.0.0.1:{port}\"\n",
            config.replace(from, "id = \"cp-2\"\nenabled = false\n")
        ),
    )
    .expect("config written");
    let mut d = Daemon::start(&served.config);
    let line = d.line_with(&["local API listening"]).await;
    let addr: SocketAddr = field(&line, "addr").parse().expect("the logged address");
    let schema = schema();

    let st = until_json(addr, "/api/state", "cp-1 charges, cp-2 disabled", |v| {
        let c = &v["cycle"]["chargers"];
        c[0]["state"] == "C" && c[1]["enabled"] == false
    })
    .await;
    assert_valid(&schema, &st);
    for (id, why) in whys(&st) {
        assert!(
            why["text"].as_str().is_some_and(|t| !t.trim().is_empty()),
            "{id}: {why}"
        );
        assert!(why["code"].is_string(), "{id}: {why}");
    }
    // A disabled charger's why is fixed: nothing but its config decides it.
    let cp2 = &st["cycle"]["chargers"][1]["why"];
    assert_eq!(cp2["code"], "disabled", "{cp2}");
    assert_eq!(cp2["text"], "paused: disabled in the config", "{cp2}");
    assert_eq!(cp2["source"], "installer", "{cp2}");
    // The same in each event, and a why without its text is no state.
    let mut sse = Sse::open(addr, "/api/events").await;
    let (event, data) = sse.next().await;
    assert_eq!(event, "state");
    let ev: Value = serde_json::from_str(&data).expect("event JSON");
    assert_valid(&schema, &ev);
    assert_eq!(
        ev["cycle"]["chargers"][1]["why"]["text"],
        "paused: disabled in the config"
    );
    let mut bad = ev.clone();
    bad["cycle"]["chargers"][0]["why"]
        .as_object_mut()
        .expect("why")
        .remove("text");
    assert!(!schema.is_valid(&bad), "a why needs its text");

    // `evsite status`, as a user runs it: a `why` block, a line per charger with its text.
    let (out, states) = served_during(
        addr,
        evsite(&["status", "--config", served.config.to_str().unwrap()]),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    if let Ok(keep) = std::env::var("EVSITE_KEEP_SCREENSHOTS") {
        let _ = std::fs::write(std::path::Path::new(&keep).join("status-why.txt"), &table);
    }
    assert!(
        table.lines().all(|l| l.chars().count() <= 80),
        "within 80 columns:\n{table}"
    );
    let block: Vec<&str> = table
        .split("\nwhy\n")
        .nth(1)
        .unwrap_or_else(|| panic!("a why block:\n{table}"))
        .lines()
        .take_while(|l| !l.is_empty())
        .collect();
    for (id, _) in whys(&states[0]) {
        let start = block
            .iter()
            .position(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("a why line for {id}:\n{table}"));
        // A long text goes on under itself: read it back whole.
        let mut shown = block[start][id.len()..].trim().to_owned();
        for more in block[start + 1..].iter().take_while(|l| l.starts_with(' ')) {
            shown = format!("{shown} {}", more.trim());
        }
        shown_as_served(&id, &shown, &states);
    }
    assert!(
        block.contains(&"cp-2  paused: disabled in the config"),
        "cp-2's line:\n{table}"
    );

    // The live page in Chromium: a why line under each charger, with the API's text.
    let url = format!("http://{addr}/");
    let (dom, states) = served_during(addr, chromium(&url, &["--dump-dom"])).await;
    let dom = text(&dom.stdout);
    for (id, _) in whys(&states[0]) {
        let row = rendered(&dom)
            .split(&format!(
                "<tr class=\"why\" data-why-for=\"{id}\" data-code=\""
            ))
            .nth(1)
            .unwrap_or_else(|| panic!("a why row for {id}:\n{dom}"));
        let shown = row
            .split("<td colspan=\"6\">")
            .nth(1)
            .and_then(|r| r.split("</td>").next())
            .unwrap_or_else(|| panic!("{id}'s why cell:\n{dom}"));
        shown_as_served(&id, &unescape(shown), &states);
        // Right under the charger's own row.
        let own = rendered(&dom)
            .split(&format!("<tr data-charger=\"{id}\">"))
            .nth(1)
            .unwrap_or_else(|| panic!("{id}'s row:\n{dom}"));
        assert!(
            own.split("</tr>").nth(1).is_some_and(
                |next| next.starts_with(&format!("<tr class=\"why\" data-why-for=\"{id}\""))
            ),
            "{id}'s why follows its row:\n{dom}"
        );
    }
    assert!(
        rendered(&dom).contains(
            "data-code=\"disabled\"><td colspan=\"6\">paused: disabled in the config</td>"
        ),
        "{dom}"
    );

    // Screenshots at a desktop's and a phone's width, as the page's other test takes them.
    let shots = tempfile::tempdir().expect("shots dir");
    for (name, size) in [("why-desktop", "1200,900"), ("why-phone", "390,1400")] {
        let png = shots.path().join(format!("{name}.png"));
        let out = chromium(
            &url,
            &[
                &format!("--screenshot={}", png.display()),
                &format!("--window-size={size}"),
                "--timeout=3000",
            ],
        )
        .await;
        let len = std::fs::metadata(&png)
            .unwrap_or_else(|e| panic!("{name} screenshot ({e}): {}", text(&out.stderr)))
            .len();
        assert!(
            len > 20_000,
            "{name} screenshot is {len} bytes: a blank page?"
        );
        if let Ok(keep) = std::env::var("EVSITE_KEEP_SCREENSHOTS") {
            let _ = std::fs::copy(
                &png,
                std::path::Path::new(&keep).join(format!("{name}.png")),
            );
        }
    }
    d.signal("-TERM");
    assert!(d.exit().await.success());
}
