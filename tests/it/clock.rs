//! The real daemon on a controller whose system clock is stepped while it runs, as NTP steps a
//! Raspberry Pi that booted on the time fake-hwclock saved 646 days ago. The daemon's wall
//! clock is faked with libfaketime (Debian's `faketime`, which scripts/test.sh installs), read
//! from a file the test rewrites; its monotonic time stays real. A session that started before
//! the step and one that started after it are both stamped on the true time, the first keeps
//! its true duration and is priced again; the tariff window and the demand window follow the
//! true time; the step is logged, raised as `clock_stepped` and counted in `/metrics`; and the
//! time is untrusted until timesyncd's flag appears.

use crate::support::daemon;
use crate::support::http;

use std::net::SocketAddr;

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde_json::Value;

use daemon::{field, Daemon, Served};
use evsite::simulator::Scenario;
use http::{get, until_json};

/// Debian's libfaketime, in the machine's multiarch directory.
fn libfaketime() -> std::path::PathBuf {
    std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists())
        .expect("libfaketime is installed (scripts/test.sh installs Debian's faketime)")
}

/// cp-1's car arrives at 2 s (before the step), cp-2's at 15 s (after it).
fn scenario() -> Scenario {
    let mut text = String::from(
        "name = \"clock-site\"\nseed = 5\nduration_s = 3600\nstart = \"2026-11-21T08:00:00Z\"\n\
         [site]\nid = \"clock-site\"\ngrid_limit_a = 63.0\nphases = 3\nvoltage_v = 230.0\n\
         margin_a = 1.0\nfailsafe_current_a = 6.0\n[base_load]\npoints = [[0, 4, 4, 4]]\n\
         [meter]\nmodel = \"eastron-sdm630\"\ntransport = \"rtu\"\n",
    );
    for (id, arrive) in [("cp-1", 2), ("cp-2", 15)] {
        text.push_str(&format!(
            "[[charger]]\nid = \"{id}\"\nmodel = \"alfen-eve\"\ntransport = \"tcp\"\nphases = 3\n\
             phase_map = [1, 2, 3]\nmin_current_a = 6.0\nmax_current_a = 16.0\n\
             [[vehicle]]\ncharger = \"{id}\"\narrive_s = {arrive}\ndepart_s = 3600\n\
             capacity_kwh = 100\nsoc_start = 0.2\nsoc_target = 1.0\nmax_current_a = 16\n\
             phases = 3\nresponse_delay_s = 1\ntaper_from_soc = 1.0\n"
        ));
    }
    Scenario::parse(&text, "clock test").expect("test scenario parses")
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a time: {v}"))
}

fn session<'a>(st: &'a Value, charger: &str) -> Option<&'a Value> {
    st["sessions"]
        .as_array()?
        .iter()
        .find(|s| s["charger"] == charger)
}

fn weekday(t: DateTime<Utc>) -> String {
    t.weekday().to_string().to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_646_day_step_is_seen_and_every_stamp_follows_the_true_time() {
    let lib = libfaketime();
    let served = Served::start(&scenario()).await;
    let dir = served.dir.path();
    let flag = dir.join("synchronized");
    let offset = dir.join("faketime");
    std::fs::write(&offset, "-646d\n").expect("offset written");

    // A tariff dearer on today's and tomorrow's (true) weekdays: 646 days ago was two weekdays
    // earlier, so a session priced on the stale time would pay the base price.
    let now = Utc::now();
    let port = http::free_port();
    let config = std::fs::read_to_string(&served.config).expect("config read");
    let config = config.replace("[clock]\ntrusted = true\n", "");
    assert!(!config.contains("[clock]"), "{config}");
    std::fs::write(
        &served.config,
        format!(
            "{config}\n[api]\nlisten = \"127.0.0.1:{port}\"\n\
             [clock]\nkernel = false\nsync_file = \"{}\"\n\
             [demand]\nlimit_kw = 40.0\n\
             [tariff]\ncurrency = \"EUR\"\nenergy_price = \"0.20\"\n\
             [[tariff.window]]\nstart = \"00:00\"\nend = \"24:00\"\nenergy_price = \"0.50\"\n\
             days = [\"{}\", \"{}\"]\n",
            flag.display(),
            weekday(now),
            weekday(now + TimeDelta::days(1)),
        ),
    )
    .expect("config written");

    let started = Utc::now();
    let mut d = Daemon::start_with(
        &served.config,
        &[
            ("LD_PRELOAD", lib.to_str().expect("utf-8 path")),
            (
                "FAKETIME_TIMESTAMP_FILE",
                offset.to_str().expect("utf-8 path"),
            ),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    let line = d.line_with(&["local API listening"]).await;
    let addr: SocketAddr = field(&line, "addr").parse().expect("the logged address");

    // Before the step: the daemon lives 646 days back, untrusted, and says so.
    let before = until_json(
        addr,
        "/api/state",
        "cp-1's session on the stale time",
        |v| session(v, "cp-1").is_some(),
    )
    .await;
    let stale = at(&before["cycle"]["at"]);
    assert!(
        (started - stale - TimeDelta::days(646)).num_seconds().abs() < 30,
        "the daemon started on the stale time: {stale}"
    );
    assert_eq!(before["cycle"]["clock"]["trusted"], false);
    let provisional = session(&before, "cp-1").expect("cp-1");
    assert_eq!(provisional["time_provisional"], true);
    assert!(at(&provisional["plugged_in_at"]) < started - TimeDelta::days(600));
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_evsite"))
        .args(["status", "--config"])
        .arg(&served.config)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), status)
        .await
        .expect("evsite status ends")
        .expect("evsite status runs");
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("clock  NOT SYNCHRONISED for 0 min: times are provisional")),
        "evsite status shows the untrusted clock:\n{table}"
    );
    assert!(
        session(&before, "cp-2").is_none(),
        "cp-2's car must arrive after the step"
    );

    // NTP steps the clock to the true time, and timesyncd says it is synchronised.
    // Written whole and renamed into place: libfaketime rereads the file at every call and
    // must never see it half written.
    let next = offset.with_extension("next");
    std::fs::write(&next, "+0\n").expect("offset written");
    std::fs::rename(&next, &offset).expect("offset moved into place");
    std::fs::write(&flag, b"").expect("flag written");
    let stepped_at = Utc::now();
    let line = d.line_with(&["system clock was stepped"]).await;
    let step_s: f64 = field(&line, "step_s").parse().expect("the logged step");
    assert!(
        (step_s - 646.0 * 86_400.0).abs() < 5.0,
        "the step logged with its size: {line}"
    );
    let after = until_json(
        addr,
        "/api/state",
        "the step seen and the time trusted",
        |v| {
            v["cycle"]["clock"]["steps"].as_u64() >= Some(1)
                && v["cycle"]["clock"]["trusted"] == true
        },
    )
    .await;
    assert_eq!(after["cycle"]["clock"]["trusted_by"], "sync_file");
    assert!(
        after["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["kind"] == "clock_stepped"
                && a["severity"] == "info"
                && a["message"].as_str().is_some_and(|m| m.contains("+646 d")))),
        "a clock_stepped alert: {}",
        after["alerts"]
    );

    // Both sessions on the true time, the first with its true duration.
    let priced = |s: Option<&Value>| {
        s.and_then(|s| s["cost"]["lines"].as_array())
            .is_some_and(|l| l.iter().any(|l| l["kind"] == "energy"))
    };
    let done = until_json(addr, "/api/state", "both sessions priced", |v| {
        priced(session(v, "cp-1")) && priced(session(v, "cp-2"))
    })
    .await;
    let now = Utc::now();
    let cp1 = session(&done, "cp-1").expect("cp-1");
    let cp2 = session(&done, "cp-2").expect("cp-2");
    let plugged1 = at(&cp1["plugged_in_at"]);
    assert!(
        plugged1 >= started - TimeDelta::seconds(2) && plugged1 <= stepped_at,
        "cp-1 plugged in between the start ({started}) and the step ({stepped_at}): {plugged1}"
    );
    assert!(cp1.get("time_provisional").is_none(), "{cp1}");
    let plugged2 = at(&cp2["plugged_in_at"]);
    assert!(
        plugged2 >= stepped_at && plugged2 <= now,
        "cp-2 plugged in after the step: {plugged2}"
    );
    // The tariff window of the true weekday prices both, the restamped one included.
    for s in [cp1, cp2] {
        let lines = s["cost"]["lines"].as_array().expect("cost lines");
        let energy: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "energy").collect();
        assert!(
            energy.iter().all(|l| l["unit_price"] == "0.50"),
            "priced in the true day's window: {lines:?}"
        );
    }
    // The demand window is this quarter hour of the true time, with what was drawn in it
    // and before it since the start (not 646 days of power).
    let demand = &done["cycle"]["demand"];
    let window = at(&demand["window_start"]);
    assert!(
        window <= now && now - window < TimeDelta::minutes(15) && window.timestamp() % 900 == 0,
        "the demand window follows the true time: {demand}"
    );
    let wh = demand["energy_wh"].as_f64().expect("energy");
    assert!(wh > 0.0 && wh < 2_000.0, "the window's energy: {wh} Wh");

    let metrics = get(addr, "/metrics").await.body;
    assert!(metrics.contains("evsite_clock_steps_total 1"), "{metrics}");
    assert!(metrics.contains("evsite_clock_trusted 1"), "{metrics}");

    d.signal("-TERM");
    assert!(d.exit().await.success());
}
