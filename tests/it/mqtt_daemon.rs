//! The real daemon syncing to a real Mosquitto: sessions recorded while the broker is down and
//! not yet acknowledged when the daemon is killed with SIGKILL arrive after both come back,
//! every seq exactly once or with the same msg_id, none missing; a commanded limit with an
//! expiry lapses at it even when the config is reloaded in between.

use crate::support::daemon;
use crate::support::mosquitto;

use std::collections::BTreeMap;
use std::time::Duration;

use evsite::simulator::Scenario;

use daemon::{until, Daemon, Served};
use mosquitto::{Mosquitto, Msg, Setup, Subscriber};

fn scenario() -> Scenario {
    daemon::site_scenario(
        "sync-site",
        "2026-11-21T17:00:00Z",
        &[
            ("stays", "alfen-eve", "1, 2, 3", 3000),
            ("leaves", "alfen-eve", "2, 3, 1", 25),
        ],
    )
}

/// Outbox messages by seq; a seq delivered twice must carry the same msg_id.
fn by_seq(msgs: &[Msg]) -> BTreeMap<u64, serde_json::Value> {
    let mut out: BTreeMap<u64, serde_json::Value> = BTreeMap::new();
    for m in msgs.iter().filter(|m| !m.topic.ends_with("/status")) {
        let v = m.json();
        let seq = v["seq"].as_u64().expect("a seq");
        if let Some(before) = out.get(&seq) {
            assert_eq!(
                before["msg_id"], v["msg_id"],
                "a duplicate keeps its msg_id"
            );
        }
        out.insert(seq, v);
    }
    out
}

fn has(msgs: &[Msg], kind: &str, charger: &str) -> bool {
    msgs.iter()
        .filter(|m| m.topic.ends_with("/sessions"))
        .map(Msg::json)
        .any(|v| v["type"] == kind && v["data"]["charger"] == charger)
}

/// The site served in real time with a config for it that syncs to `port`.
/// The daemon is online once its retained status says so.
async fn until_online(cloud: &mut Subscriber) {
    let online = cloud
        .collect_until(Duration::from_secs(60), |m| {
            m.iter()
                .any(|m| m.topic.ends_with("/status") && m.json()["online"] == true)
        })
        .await;
    assert!(!online.is_empty(), "the daemon came online");
}

async fn site_with_mqtt(port: u16) -> Served {
    let served = Served::start(&scenario()).await;
    served.add_config(&format!(
        "\n[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\nclient_id = \"evsite-sync-site\"\ntelemetry_interval_s = 1\n"
    ));
    served
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_through_the_daemon_are_answered_and_only_valid_ones_act() {
    let broker = Mosquitto::start(Setup::default()).await;
    let served = site_with_mqtt(broker.port()).await;
    let (site, config) = (served.site.clone(), served.config.clone());
    let mut cloud = Subscriber::connect(
        broker.port(),
        "cloud-cmd",
        &["evsite/sync-site/cmd/reply", "evsite/sync-site/status"],
        false,
    )
    .await;
    let daemon = Daemon::start(&config);
    until_online(&mut cloud).await;
    until(&site, "both cars charge above 8 A", |s| {
        s.charger_truth()
            .iter()
            .all(|t| t.setpoint_a.is_some_and(|a| a > 8.0))
    })
    .await;

    let send = |name: &str, body: String| {
        let c = cloud.client.clone();
        let topic = format!("evsite/sync-site/cmd/{name}");
        async move {
            c.publish(topic, rumqttc::QoS::AtLeastOnce, false, body)
                .await
                .expect("publish");
        }
    };
    let expires = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    send(
        "set_site_limit",
        format!(r#"{{"request_id":"r-high","limit_a":100,"expires_at":"{expires}"}}"#),
    )
    .await;
    send("set_site_limit", "{not json".to_string()).await;
    send("launch_rockets", r#"{"request_id":"r-x"}"#.to_string()).await;
    send(
        "set_site_limit",
        format!(r#"{{"request_id":"r-low","limit_a":12,"expires_at":"{expires}"}}"#),
    )
    .await;
    let replies: Vec<serde_json::Value> = cloud
        .collect_until(Duration::from_secs(30), |m| {
            m.iter().filter(|m| m.topic.ends_with("/reply")).count() >= 4
        })
        .await
        .iter()
        .filter(|m| m.topic.ends_with("/reply"))
        .map(Msg::json)
        .collect();
    let reply = |id: &str| {
        replies
            .iter()
            .find(|r| r["request_id"] == id)
            .unwrap_or_else(|| panic!("no reply to {id}: {replies:?}"))
    };
    assert_eq!(reply("r-high")["ok"], false);
    assert!(reply("r-high")["error"]
        .as_str()
        .is_some_and(|e| e.contains("grid_limit_a")));
    assert_eq!(reply("r-x")["ok"], false);
    assert!(
        replies
            .iter()
            .any(|r| r["request_id"].is_null() && r["ok"] == false),
        "{replies:?}"
    );
    assert_eq!(reply("r-low")["ok"], true, "{replies:?}");
    // 12 A for the site with 4 A of base load: the cars are held to what is left.
    until(&site, "the cars follow the lower limit", |s| {
        s.charger_truth()
            .iter()
            .all(|t| t.setpoint_a.is_some_and(|a| a <= 8.0 + 1e-6))
    })
    .await;
    daemon.signal("-TERM");
    assert!(daemon.exit().await.success());
}

/// How far out the commanded limit expires: room for the command, the cars coming down and
/// a reload before it.
const EXPIRY_S: i64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commanded_limit_lapses_at_its_expiry_across_a_reload() {
    let broker = Mosquitto::start(Setup::default()).await;
    let served = site_with_mqtt(broker.port()).await;
    let (site, config) = (served.site.clone(), served.config.clone());
    let mut cloud = Subscriber::connect(
        broker.port(),
        "cloud-expiry",
        &["evsite/sync-site/cmd/reply", "evsite/sync-site/status"],
        false,
    )
    .await;
    let mut daemon = Daemon::start(&config);
    until_online(&mut cloud).await;
    let above_8 = |s: &evsite::simulator::SiteModel| {
        s.charger_truth()
            .iter()
            .all(|t| t.setpoint_a.is_some_and(|a| a > 8.0))
    };
    until(&site, "both cars charge above 8 A", above_8).await;

    let expires = chrono::Utc::now() + chrono::TimeDelta::seconds(EXPIRY_S);
    cloud
        .client
        .publish(
            "evsite/sync-site/cmd/set_site_limit",
            rumqttc::QoS::AtLeastOnce,
            false,
            format!(
                r#"{{"request_id":"r-brief","limit_a":12,"expires_at":"{}"}}"#,
                expires.to_rfc3339()
            ),
        )
        .await
        .expect("publish");
    let replies = cloud
        .collect_until(Duration::from_secs(30), |m| {
            m.iter().any(|m| m.topic.ends_with("/reply"))
        })
        .await;
    let reply = replies
        .iter()
        .filter(|m| m.topic.ends_with("/reply"))
        .map(Msg::json)
        .find(|r| r["request_id"] == "r-brief")
        .unwrap_or_else(|| panic!("no reply: {replies:?}"));
    assert_eq!(reply["ok"], true, "{reply}");
    until(&site, "the cars follow the commanded limit", |s| {
        s.charger_truth()
            .iter()
            .all(|t| t.setpoint_a.is_some_and(|a| a <= 8.0 + 1e-6))
    })
    .await;

    // An edited config, reloaded while the limit is in force.
    let text = std::fs::read_to_string(&config).expect("config read");
    let edited: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("margin_a") {
                "margin_a = 1.5".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert!(edited.iter().any(|l| l == "margin_a = 1.5"), "{text}");
    std::fs::write(&config, edited.join("\n")).expect("config written");
    daemon.signal("-HUP");
    let reloaded = daemon.line_with(&["configuration reloaded"]).await;
    assert!(reloaded.contains("site.margin_a"), "{reloaded}");
    assert!(
        chrono::Utc::now() < expires,
        "the reload must come before the expiry for this test to say anything"
    );
    // The reload kept the expiry: the limit lapses at it and the cars take the site again.
    daemon.line_with(&["commanded site limit expired"]).await;
    assert!(chrono::Utc::now() >= expires, "lapsed before its expiry");
    until(&site, "both cars above 8 A again", above_8).await;
    daemon.signal("-TERM");
    assert!(daemon.exit().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_sessions_arrive_after_a_kill_9_and_a_broker_outage() {
    let mut broker = Mosquitto::start(Setup {
        persistence: true,
        ..Setup::default()
    })
    .await;
    let topics = [
        "evsite/sync-site/sessions",
        "evsite/sync-site/alerts",
        "evsite/sync-site/status",
    ];
    let mut cloud = Subscriber::connect(broker.port(), "cloud", &topics, true).await;

    let served = site_with_mqtt(broker.port()).await;
    let (site, config) = (served.site.clone(), served.config.clone());
    let mut daemon = Daemon::start(&config);
    let mut got = cloud
        .collect_until(Duration::from_secs(60), |m| {
            has(m, "session.started", "stays") && has(m, "session.started", "leaves")
        })
        .await;
    assert!(has(&got, "session.started", "leaves"), "{got:?}");

    // The uplink goes down; meanwhile a car leaves and its session completes on disk only.
    broker.stop().await;
    until(&site, "the leaving car has left", |s| s.time_s() > 26.0).await;
    daemon.line_with(&["session ended", "leaves"]).await;
    daemon.signal("-KILL");
    let _ = daemon.exit().await;

    broker.restart().await;
    let daemon = Daemon::start(&config);
    got.extend(
        cloud
            .collect_until(Duration::from_secs(60), |m| {
                has(m, "session.completed", "leaves")
            })
            .await,
    );
    assert!(has(&got, "session.completed", "leaves"), "{got:?}");
    daemon.signal("-TERM");
    let (lines, status) = daemon.all_lines().await;
    assert!(status.success(), "{status}:\n{}", lines.join("\n"));

    let seqs = by_seq(&got);
    let first = *seqs.keys().next().expect("messages");
    let last = *seqs.keys().last().expect("messages");
    assert_eq!(first, 1, "the first message of the site");
    let missing: Vec<u64> = (first..=last).filter(|s| !seqs.contains_key(s)).collect();
    assert!(missing.is_empty(), "gaps at {missing:?}");
    let completed = seqs
        .values()
        .find(|v| v["type"] == "session.completed" && v["data"]["charger"] == "leaves")
        .expect("completed");
    assert_eq!(completed["data"]["stop_reason"], "unplugged");
    assert!(completed["data"]["energy_wh"].as_u64().unwrap_or(0) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_publishes_its_sessions_status_and_telemetry_with_mqtt() {
    let broker = Mosquitto::start(Setup::default()).await;
    let mut cloud = Subscriber::connect(broker.port(), "cloud-demo", &["evsite/#"], false).await;
    let url = format!("mqtt://127.0.0.1:{}", broker.port());
    let demo = tokio::process::Command::new(env!("CARGO_BIN_EXE_evsite"))
        .args(["demo", "--for", "20", "--mqtt", &url])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("demo starts");
    let got = cloud
        .collect_until(Duration::from_secs(90), |m| {
            has(m, "session.completed", "cp-1") && m.iter().any(|m| m.topic.ends_with("/telemetry"))
        })
        .await;
    let out = tokio::time::timeout(Duration::from_secs(90), demo.wait_with_output())
        .await
        .expect("the demo ends")
        .expect("wait");
    assert!(out.status.success());
    assert!(has(&got, "session.started", "cp-1"), "{got:?}");
    assert!(has(&got, "session.completed", "cp-1"), "{got:?}");
    let status = got
        .iter()
        .find(|m| m.topic.ends_with("/status"))
        .expect("a status message");
    assert_eq!(status.json()["online"], true);
    let completed = got
        .iter()
        .filter(|m| m.topic.ends_with("/sessions"))
        .map(Msg::json)
        .find(|v| v["type"] == "session.completed")
        .expect("completed");
    assert!(
        completed["data"]["cost"]["total"].is_string(),
        "{completed}"
    );
    // The telemetry the real controller's cycles give: valid against its schema, and every
    // charger in it says why it has its current.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/schemas/telemetry.v1.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("schema file"),
    )
    .expect("schema JSON");
    let schema = jsonschema::validator_for(&schema).expect("a valid schema");
    let telemetry: Vec<serde_json::Value> = got
        .iter()
        .filter(|m| m.topic.ends_with("/telemetry"))
        .map(Msg::json)
        .collect();
    assert!(!telemetry.is_empty());
    for t in &telemetry {
        let errors: Vec<String> = schema.iter_errors(t).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{t}\n{errors:#?}");
        let chargers = t["chargers"].as_array().expect("chargers");
        assert_eq!(chargers.len(), 5, "the demo's five chargers: {t}");
        for c in chargers {
            assert!(
                c["why"]["code"].as_str().is_some_and(|w| !w.is_empty()),
                "{c}"
            );
        }
    }
}
