//! Who may charge, end to end: the real daemon against a simulated site served over Modbus TCP
//! on loopback, whose chargers report the cars' tokens in their id registers, with a real
//! Mosquitto for the cloud. Local mode: a listed token charges, another is held at 0 A with
//! its reason. Cloud mode: a test client answers `P/cmd/authorize` yes or no; a silent cloud
//! leaves it to the list after the timeout; with the broker stopped mid-session the charging
//! car goes on charging and a new car is decided by the list and the cache of the cloud's
//! earlier yes. `check-config` refuses the modes that could never let a car charge.

use crate::support::daemon;
use crate::support::http;
use crate::support::mosquitto;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use daemon::{field, until, Daemon, Served};
use evsite::simulator::Scenario;
use mosquitto::{Mosquitto, Setup, Subscriber};

const ANNA: &str = "04A1B2C3D4E5F6";
const EX_CONFIG: i32 = 78;

const TOKENS: &str = r#"
[[token]]
id = "04A1B2C3D4E5F6"
user = "Anna Berg"
group = "residents"

[[token]]
id = "VISITOR-17"
user = "Visitor 17"
enabled = false
"#;

/// A real-time site (63 A, 4 A of base load) of Webasto NEXTs, which report the token; for
/// each `(charger, auth)` and each `(charger, token, arrive_s, depart_s)` a car.
fn scenario(site: &str, chargers: &[(&str, &str)], cars: &[(&str, &str, u32, u32)]) -> Scenario {
    let mut text = format!(
        "name = \"{site}\"\nseed = 3\nduration_s = 3600\nstart = \"2026-11-21T17:00:00Z\"\n\
         [site]\nid = \"{site}\"\ngrid_limit_a = 63.0\nphases = 3\nvoltage_v = 230.0\n\
         margin_a = 1.0\nfailsafe_current_a = 6.0\n[base_load]\npoints = [[0, 4, 4, 4]]\n\
         [meter]\nmodel = \"eastron-sdm630\"\ntransport = \"rtu\"\n"
    );
    for (id, auth) in chargers {
        text.push_str(&format!(
            "[[charger]]\nid = \"{id}\"\nmodel = \"webasto-next\"\ntransport = \"tcp\"\n\
             phases = 3\nphase_map = [1, 2, 3]\nmin_current_a = 6.0\nmax_current_a = 16.0\n\
             auth = \"{auth}\"\n"
        ));
    }
    for (charger, token, arrive, depart) in cars {
        text.push_str(&format!(
            "[[vehicle]]\ncharger = \"{charger}\"\narrive_s = {arrive}\ndepart_s = {depart}\n\
             capacity_kwh = 100\nsoc_start = 0.2\nsoc_target = 1.0\nmax_current_a = 16\n\
             phases = 3\nresponse_delay_s = 1\ntaper_from_soc = 1.0\ntoken = \"{token}\"\n"
        ));
    }
    Scenario::parse(&text, "authorisation site").expect("test scenario parses")
}

/// The site served with the token list and a local API on a free port, plus `extra`.
async fn serve(scenario: &Scenario, extra: &str) -> Served {
    let served = Served::start(scenario).await;
    let tokens = served.dir.path().join("tokens.toml");
    std::fs::write(&tokens, TOKENS).expect("token list written");
    served.add_config(&format!(
        "\n[auth]\ntokens_file = \"{}\"\n{extra}\n[api]\nlisten = \"127.0.0.1:0\"\n",
        tokens.display()
    ));
    served
}

async fn start(served: &Served) -> (Daemon, SocketAddr) {
    let mut d = Daemon::start(&served.config);
    let line = d.line_with(&["local API listening"]).await;
    let addr: SocketAddr = field(&line, "addr").parse().expect("the logged address");
    (d, addr)
}

/// Charger `id` in a live state.
fn charger<'a>(state: &'a Value, id: &str) -> &'a Value {
    state["cycle"]["chargers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == id))
        .unwrap_or(&Value::Null)
}

fn charging(state: &Value, id: &str) -> bool {
    let c = charger(state, id);
    c["state"] == "C" && c["current_a"][0].as_f64().is_some_and(|a| a >= 5.0)
}

fn authorised_by<'a>(state: &'a Value, id: &str) -> &'a Value {
    &charger(state, id)["auth"]["identity"]["authorized_by"]
}

fn setpoint(served: &Served, id: &str) -> Option<f64> {
    served
        .site
        .lock()
        .expect("site lock")
        .charger_truth()
        .into_iter()
        .find(|t| t.id == id)
        .and_then(|t| t.setpoint_a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_mode_lets_a_listed_token_charge_and_holds_any_other_at_0_a() {
    let s = scenario(
        "auth-local",
        &[
            ("anna", "local"),
            ("stranger", "local"),
            ("visitor", "local"),
        ],
        &[
            ("anna", ANNA, 2, 3000),
            ("stranger", "DEADBEEF", 2, 3000),
            ("visitor", "visitor-17", 2, 3000),
        ],
    );
    let served = serve(&s, "").await;
    let (d, addr) = start(&served).await;
    let st = http::until_json(addr, "/api/state", "the listed car charges", |v| {
        charging(v, "anna")
            && charger(v, "stranger")["auth"]["state"] == "refused"
            && charger(v, "visitor")["auth"]["state"] == "refused"
    })
    .await;
    let anna = &charger(&st, "anna")["auth"];
    assert_eq!(anna["mode"], "local");
    assert_eq!(anna["state"], "authorized");
    assert_eq!(anna["identity"]["user"], "Anna Berg");
    assert_eq!(anna["identity"]["group"], "residents");
    assert_eq!(anna["identity"]["authorized_by"], "local");

    let stranger = charger(&st, "stranger");
    assert_eq!(
        stranger["state"], "B",
        "plugged in, not charging: {stranger}"
    );
    assert_eq!(stranger["auth"]["refused"], "not on the list");
    assert_eq!(stranger["why"]["code"], "auth");
    assert_eq!(stranger["why"]["source"], "auth");
    assert_eq!(
        stranger["why"]["text"],
        "held: token DEAD… refused: not on the list"
    );
    assert_eq!(
        charger(&st, "visitor")["why"]["text"],
        "held: token VISI… refused: disabled"
    );
    // What the chargers themselves were told: nothing for the refused ones.
    assert!(setpoint(&served, "anna").is_some_and(|a| a >= 6.0));
    for id in ["stranger", "visitor"] {
        assert_eq!(setpoint(&served, id), Some(0.0), "{id}");
        assert_eq!(charger(&st, id)["current_a"][0].as_f64(), Some(0.0), "{id}");
    }
    d.signal("-TERM");
    assert!(d.exit().await.success());
}

/// The cloud: answers every `P/auth/request` whose token `answers` names (true: accepted),
/// leaves the others unanswered. Returns the requests seen and the replies to its answers.
struct Cloud {
    sub: Subscriber,
    answers: HashMap<&'static str, bool>,
    requests: Vec<Value>,
    replies: Vec<Value>,
}

impl Cloud {
    async fn connect(port: u16, site: &str, answers: &[(&'static str, bool)]) -> Cloud {
        let sub = Subscriber::connect(
            port,
            &format!("cloud-{site}"),
            &[
                &format!("evsite/{site}/auth/request"),
                &format!("evsite/{site}/cmd/reply"),
            ],
            false,
        )
        .await;
        Cloud {
            sub,
            answers: answers.iter().copied().collect(),
            requests: Vec::new(),
            replies: Vec::new(),
        }
    }

    async fn send(&self, topic: String, body: String) {
        self.sub
            .client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, body)
            .await
            .expect("publish");
    }

    /// Takes what arrived in the next moment, answering requests as it goes.
    async fn serve_once(&mut self) {
        let Some(m) = self.sub.next(Duration::from_millis(200)).await else {
            return;
        };
        let v = m.json();
        if m.topic.ends_with("/cmd/reply") {
            self.replies.push(v);
            return;
        }
        let token = v["token"].as_str().unwrap_or_default().to_string();
        if let Some(&yes) = self.answers.get(token.as_str()) {
            let site = v["site"].as_str().unwrap_or_default();
            let body = serde_json::json!({
                "request_id": v["request_id"],
                "token": token,
                "accepted": yes,
                "reason": if yes { Value::Null } else { "card blocked".into() },
            });
            self.send(format!("evsite/{site}/cmd/authorize"), body.to_string())
                .await;
        }
        self.requests.push(v);
    }

    /// Serves the cloud until a reply to each of `ids` came (bounded).
    async fn until_replies(&mut self, ids: &[&str]) {
        let wait = async {
            while !ids
                .iter()
                .all(|id| self.replies.iter().any(|r| r["request_id"] == *id))
            {
                self.serve_once().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .unwrap_or_else(|_| panic!("no replies to {ids:?}: {:?}", self.replies));
    }

    /// Serves the cloud until `done` holds of the live state at `addr` (bounded).
    async fn until(
        &mut self,
        addr: SocketAddr,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let wait = async {
            loop {
                self.serve_once().await;
                let r = http::get(addr, "/api/state").await;
                if r.status == 200 {
                    let v = r.json();
                    if done(&v) {
                        return v;
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(90), wait)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting until {what}"))
    }
}

/// The site's cloud timeout, and its `[mqtt]` (written for `cloud` chargers) pointed at `port`.
async fn serve_cloud(scenario: &Scenario, port: u16, site: &str, timeout_s: f64) -> Served {
    let served = serve(scenario, &format!("cloud_timeout_s = {timeout_s}\n")).await;
    let text = std::fs::read_to_string(&served.config).expect("config read");
    let written = "url = \"mqtt://127.0.0.1:1883\"";
    assert!(
        text.contains(written),
        "a cloud site's config names a broker: {text}"
    );
    let text = text.replace(
        written,
        &format!(
            "url = \"mqtt://127.0.0.1:{port}\"\nclient_id = \"evsite-{site}\"\ntelemetry_interval_s = 1"
        ),
    );
    std::fs::write(&served.config, text).expect("config written");
    served
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_mode_asks_the_cloud_and_follows_its_answers() {
    let broker = Mosquitto::start(Setup::default()).await;
    let site = "auth-cloud";
    let s = scenario(
        site,
        &[("yes", "cloud"), ("no", "cloud")],
        &[("yes", "CAFE01", 2, 3000), ("no", "BEEF02", 2, 3000)],
    );
    // A long timeout: the answers decide, not the fallback.
    let served = serve_cloud(&s, broker.port(), site, 60.0).await;
    let mut cloud =
        Cloud::connect(broker.port(), site, &[("CAFE01", true), ("BEEF02", false)]).await;
    let (d, addr) = start(&served).await;
    let st = cloud
        .until(addr, "the cloud's yes charges and its no is held", |v| {
            charging(v, "yes") && charger(v, "no")["auth"]["state"] == "refused"
        })
        .await;
    assert_eq!(authorised_by(&st, "yes"), "cloud");
    assert_eq!(charger(&st, "yes")["auth"]["identity"]["token"], "CAFE01");
    assert_eq!(
        charger(&st, "no")["why"]["text"],
        "held: token BEEF… refused: refused by the cloud: card blocked"
    );
    assert_eq!(setpoint(&served, "no"), Some(0.0));
    // One request per session, with what the schema asks for.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/auth-request.v1.json"),
        )
        .expect("schema"),
    )
    .expect("schema JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    for token in ["CAFE01", "BEEF02"] {
        let asked: Vec<&Value> = cloud
            .requests
            .iter()
            .filter(|r| r["token"] == token)
            .collect();
        assert_eq!(asked.len(), 1, "{token}: {:?}", cloud.requests);
        assert!(validator.is_valid(asked[0]), "{}", asked[0]);
        assert_eq!(asked[0]["site"], site);
    }
    // Every answer got its reply, like any command; a malformed one is told why.
    cloud
        .send(
            format!("evsite/{site}/cmd/authorize"),
            r#"{"request_id":"bad-1","token":"","accepted":true}"#.into(),
        )
        .await;
    cloud
        .send(
            format!("evsite/{site}/cmd/authorize"),
            r#"{"request_id":"bad-2","token":"CAFE01"}"#.into(),
        )
        .await;
    cloud.until_replies(&["bad-1", "bad-2"]).await;
    let reply = |id: &str| {
        cloud
            .replies
            .iter()
            .find(|r| r["request_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no reply to {id}: {:?}", cloud.replies))
    };
    for r in cloud
        .requests
        .iter()
        .filter(|r| r["token"] == "CAFE01" || r["token"] == "BEEF02")
    {
        let id = r["request_id"].as_str().expect("an id");
        assert_eq!(reply(id)["ok"], true, "{id}");
    }
    assert_eq!(reply("bad-1")["ok"], false);
    assert!(reply("bad-1")["error"]
        .as_str()
        .is_some_and(|e| e.contains("token")));
    assert_eq!(reply("bad-2")["ok"], false);
    assert!(reply("bad-2")["error"]
        .as_str()
        .is_some_and(|e| e.contains("accepted")));
    // Still charging, still held: a malformed answer changes nothing.
    let st = http::get(addr, "/api/state").await.json();
    assert!(charging(&st, "yes"));
    assert_eq!(charger(&st, "no")["auth"]["state"], "refused");
    d.signal("-TERM");
    assert!(d.exit().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_cloud_and_a_broker_gone_mid_session_leave_it_to_the_list_and_the_cache() {
    let mut broker = Mosquitto::start(Setup::default()).await;
    let site = "auth-outage";
    let s = scenario(
        site,
        &[
            ("regular", "cloud"),
            ("resident", "cloud"),
            ("guest", "cloud"),
        ],
        &[
            // Accepted by the cloud, leaves, and comes back while the broker is down.
            ("regular", "CAFE01", 2, 15),
            ("regular", "CAFE01", 60, 3000),
            // On the list; the cloud never answers about it.
            ("resident", ANNA, 2, 3000),
            // Unknown to all, arrives while the broker is down.
            ("guest", "F00D", 60, 3000),
        ],
    );
    let served = serve_cloud(&s, broker.port(), site, 3.0).await;
    let mut cloud = Cloud::connect(broker.port(), site, &[("CAFE01", true)]).await;
    let (d, addr) = start(&served).await;
    let st = cloud
        .until(addr, "the regular and the resident charge", |v| {
            charging(v, "regular") && charging(v, "resident")
        })
        .await;
    assert_eq!(authorised_by(&st, "regular"), "cloud");
    // The cloud was asked about the resident and stayed silent: the list decided.
    assert!(
        cloud.requests.iter().any(|r| r["token"] == ANNA),
        "{:?}",
        cloud.requests
    );
    assert_eq!(authorised_by(&st, "resident"), "local");
    assert_eq!(
        charger(&st, "resident")["auth"]["identity"]["user"],
        "Anna Berg"
    );

    until(&served.site, "the regular leaves", |m| {
        m.charger_truth()
            .iter()
            .any(|t| t.id == "regular" && !t.state.is_connected())
    })
    .await;
    broker.stop().await;
    let down = served.site.lock().expect("site lock").time_s();
    assert!(
        down < 55.0,
        "the broker is down before the next cars arrive ({down} s)"
    );

    let st = http::until_json(
        addr,
        "/api/state",
        "the cache and the list decide the new cars",
        |v| charging(v, "regular") && charger(v, "guest")["auth"]["state"] == "refused",
    )
    .await;
    assert_eq!(authorised_by(&st, "regular"), "cache");
    assert!(
        charger(&st, "guest")["auth"]["refused"]
            .as_str()
            .is_some_and(|r| r.contains("cloud offline")),
        "{}",
        charger(&st, "guest")
    );
    assert_eq!(setpoint(&served, "guest"), Some(0.0));
    // The resident charged through the outage, as authorised before it.
    assert!(charging(&st, "resident"), "{}", charger(&st, "resident"));
    assert_eq!(authorised_by(&st, "resident"), "local");
    assert!(setpoint(&served, "resident").is_some_and(|a| a >= 6.0));
    d.signal("-TERM");
    assert!(d.exit().await.success());
}

/// `check-config` output for a config of one Alfen (no id register) and one Webasto NEXT.
fn check_config(dir: &Path, chargers: &str, extra: &str) -> (i32, String) {
    let tokens = dir.join("tokens.toml");
    std::fs::write(&tokens, TOKENS).expect("token list written");
    let config = dir.join("evsite.toml");
    let text = format!(
        "[site]\nid = \"s\"\ngrid_limit_a = 63.0\nfailsafe_current_a = 6.0\n\
         [meter]\nmodel = \"eastron-sdm630\"\nhost = \"127.0.0.1\"\n\
         [[charger]]\nid = \"alfen\"\nmodel = \"alfen-eve\"\nhost = \"127.0.0.2\"\nmax_current_a = 16.0\n{}\n\
         [[charger]]\nid = \"webasto\"\nmodel = \"webasto-next\"\nhost = \"127.0.0.3\"\nmax_current_a = 16.0\n{}\n\
         [storage]\npath = \"{}\"\n{extra}",
        chargers.split('|').next().unwrap_or(""),
        chargers.split('|').nth(1).unwrap_or(""),
        dir.join("db").display(),
    );
    let text = text.replace("TOKENS", &tokens.display().to_string());
    std::fs::write(&config, text).expect("config written");
    let out = Command::new(env!("CARGO_BIN_EXE_evsite"))
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .expect("evsite runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn check_config_refuses_a_mode_that_could_never_let_a_car_charge_at_its_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let list = "[auth]\ntokens_file = \"TOKENS\"\n";
    // Fine: a reader, or a resident's own bay on the list.
    let (code, out) = check_config(
        dir.path(),
        "auth = \"local\"\ntoken = \"04a1b2c3d4e5f6\"|auth = \"local\"",
        list,
    );
    assert_eq!(code, 0, "{out}");
    let cases = [
        // No id register and no token.
        (
            "auth = \"local\"|",
            list,
            "charger[0].auth",
            "reports no token",
        ),
        // Cloud without [mqtt].
        ("|auth = \"cloud\"", list, "charger[1].auth", "needs [mqtt]"),
        // Local without a token list.
        ("|auth = \"local\"", "", "charger[1].auth", "tokens_file"),
        // A bay's token not on the list, or disabled there.
        (
            "token = \"NOPE\"|",
            list,
            "charger[0].token",
            "not on the token list",
        ),
        (
            "token = \"visitor-17\"|",
            list,
            "charger[0].token",
            "disabled",
        ),
        (
            "|",
            "[auth]\ncloud_timeout_s = 0\n",
            "auth.cloud_timeout_s",
            "must be",
        ),
    ];
    for (chargers, extra, key, words) in cases {
        let (code, out) = check_config(dir.path(), chargers, extra);
        assert_eq!(code, EX_CONFIG, "{chargers} {extra}: {out}");
        let line = out
            .lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("no error at {key}: {out}"));
        assert!(line.contains(words), "{line}");
        assert!(line.contains("evsite.toml:"), "located: {line}");
    }
}

/// Energy of each session `evsite-sim run` recorded for `scenario`, by charger in plug-in order.
async fn simulated(name: &str) -> (evsite_sim::score::Scorecard, Vec<(String, u64)>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("sim/scenarios/{name}.toml"));
    let scenario = Scenario::from_path(&path).expect("scenario");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db");
    // The run has a runtime of its own (a paused clock): on a thread of its own.
    let at = db.clone();
    let card = tokio::task::spawn_blocking(move || {
        evsite_sim::run::run_keeping(&scenario, Some(&at)).expect("run")
    })
    .await
    .expect("run thread");
    // sled lets go of its file lock from its own thread once the run's last handle is gone:
    // polled (bounded), as the other helpers poll for a condition.
    let store = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match evsite::store::Store::open_existing(&db) {
                Ok(s) => return s,
                Err(evsite::store::OpenExistingError::InUse { .. }) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("the run's store: {e}"),
            }
        }
    })
    .await
    .expect("the run's store is let go of");
    let mut sessions = store
        .sessions(&evsite::store::SessionFilter::default())
        .expect("sessions");
    sessions.sort_by_key(|s| (s.charger.clone(), s.plugged_in_at));
    (
        card,
        sessions
            .into_iter()
            .map(|s| (s.charger, s.energy_wh))
            .collect(),
    )
}

fn energies(sessions: &[(String, u64)], charger: &str) -> Vec<u64> {
    sessions
        .iter()
        .filter(|(c, _)| c == charger)
        .map(|&(_, wh)| wh)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_sites_charge_only_who_may_in_every_mode() {
    // Local: the residents charge; the disabled visitor after them on bay-3 takes nothing.
    let (card, s) = simulated("auth-local").await;
    assert_eq!(card.overload_s, 0.0);
    assert!(
        energies(&s, "bay-1")[0] > 1000 && energies(&s, "bay-2")[0] > 1000,
        "{s:?}"
    );
    let bay3 = energies(&s, "bay-3");
    assert_eq!(bay3.len(), 2, "{s:?}");
    assert!(bay3[0] > 500 && bay3[1] == 0, "{s:?}");

    // An unauthorised car beside two residents: nothing for it, the site for them.
    let (card, s) = simulated("auth-unauthorised").await;
    assert_eq!(card.overload_s, 0.0);
    assert_eq!(energies(&s, "bay-3"), vec![0], "{s:?}");
    assert!(
        energies(&s, "bay-1")[0] > 5000 && energies(&s, "bay-2")[0] > 5000,
        "{s:?}"
    );

    // Cloud: its customers charge, its refusal takes nothing, a card it is silent about is
    // let charge by the list after the timeout.
    let (card, s) = simulated("auth-cloud").await;
    assert_eq!(card.overload_s, 0.0);
    assert!(energies(&s, "p-1").iter().all(|&wh| wh > 500), "{s:?}");
    assert!(energies(&s, "p-2")[0] > 1000, "{s:?}");
    let p3 = energies(&s, "p-3");
    assert!(p3.len() == 2 && p3[0] == 0 && p3[1] > 1000, "{s:?}");

    // The cloud offline for an hour: the cache lets a regular charge again, the list a
    // fleet card, and the stranger waits and is refused once the cloud is back.
    let (card, s) = simulated("auth-cloud-offline").await;
    assert_eq!(card.overload_s, 0.0);
    assert!(
        energies(&s, "p-1")[0] > 10_000,
        "charged through the outage: {s:?}"
    );
    let p2 = energies(&s, "p-2");
    assert!(p2.len() == 2 && p2.iter().all(|&wh| wh > 1000), "{s:?}");
    let p3 = energies(&s, "p-3");
    assert!(p3.len() == 2 && p3[0] > 1000 && p3[1] == 0, "{s:?}");

    // Deterministic: the same run twice gives the same sessions.
    let (again, s2) = simulated("auth-cloud-offline").await;
    assert_eq!(s, s2);
    assert_eq!(card.energy_wh, again.energy_wh);
}
