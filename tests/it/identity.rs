//! Who charged: the real driver reads the token a simulated charger serves in its model's id
//! register over real Modbus TCP on loopback, while the car is connected, and no id after
//! it leaves.

use crate::support::scenario::Head;

use std::sync::Arc;
use std::time::Duration;

use evsite::devices::model::ChargeState;
use evsite::devices::traits::ReadAll;
use evsite::devices::{registry, ModbusDevice};
use evsite::modbus::{DeviceLink, Links, TcpConnector};
use evsite::simulator::{serve_site, Link, Scenario, ServedSite, SiteModel};

const TOKEN: &str = "04A1B2C3D4E5F6";
const TIMEOUT: Duration = Duration::from_millis(500);

/// Every model that reports a user's id.
const ID_MODELS: [&str; 4] = [
    "phoenix-charx",
    "webasto-next",
    "bender-cc613",
    "vestel-evc04",
];

fn tcp_port(served: &ServedSite, id: &str) -> u16 {
    served
        .endpoints
        .iter()
        .find_map(|e| match e.link {
            Link::Tcp { port } if e.device.id == id => Some(port),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{id} is not served over TCP"))
}

/// A charger of each id model with a car carrying `TOKEN` from 0 to 100 s, and one more
/// Webasto NEXT whose car has no token.
fn scenario() -> String {
    let mut text = Head::new("identity", 3).toml();
    let mut points: Vec<(String, &str, Option<&str>)> = ID_MODELS
        .iter()
        .enumerate()
        .map(|(i, m)| (format!("cp-{}", i + 1), *m, Some(TOKEN)))
        .collect();
    points.push(("cp-anon".to_string(), "webasto-next", None));
    for (id, model, token) in &points {
        text.push_str(&format!(
            "\n[[charger]]\nid = \"{id}\"\nmodel = \"{model}\"\ntransport = \"tcp\"\n\
             phases = 3\nphase_map = [1, 2, 3]\nmin_current_a = 6.0\nmax_current_a = 32.0\n"
        ));
        let token = token.map_or(String::new(), |t| format!("token = \"{t}\"\n"));
        text.push_str(&format!(
            "\n[[vehicle]]\ncharger = \"{id}\"\narrive_s = 0\ndepart_s = 100\ncapacity_kwh = 60\n\
             soc_start = 0.2\nsoc_target = 0.9\nmax_current_a = 16\nphases = 3\n\
             response_delay_s = 0\ntaper_from_soc = 0.85\n{token}"
        ));
    }
    text
}

#[tokio::test]
async fn a_cars_token_is_read_while_connected_and_gone_after_unplug() {
    let scenario = Scenario::parse(&scenario(), "identity").unwrap();
    let s = SiteModel::from_registry(&scenario).unwrap().into_shared();
    let served = serve_site(s.clone()).await.unwrap();
    s.lock().unwrap().step(30.0);
    let links = Links::new(Arc::new(TcpConnector));
    let mut devices = Vec::new();
    for (i, model) in ID_MODELS.iter().enumerate() {
        devices.push((format!("cp-{}", i + 1), *model));
    }
    devices.push(("cp-anon".to_string(), "webasto-next"));
    let devices: Vec<_> = devices
        .into_iter()
        .map(|(id, model)| {
            let spec = registry::find(model).unwrap();
            let link = DeviceLink::tcp(
                links.tcp("127.0.0.1", tcp_port(&served, &id), TIMEOUT),
                spec.default_unit,
            );
            (id, model, ModbusDevice::new(spec, link))
        })
        .collect();
    for (id, model, d) in &devices {
        let snap = d
            .read_all()
            .await
            .unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(snap.state, Some(ChargeState::C), "{id} {model}");
        let want = (id != "cp-anon").then_some(TOKEN);
        assert_eq!(snap.id_tag.as_deref(), want, "{id} {model}");
        // The simulated cars present no vehicle id: zeros (Bender: its flag says invalid).
        assert_eq!(snap.ev_id, None, "{id} {model}");
        let stats = d.io().stats();
        assert_eq!(
            stats.requests, stats.ok,
            "{model}: the id reads are answered"
        );
        assert_eq!(d.bad_ids(), 0, "{model}");
    }
    // The cars leave at 100 s (a step sees arrivals and departures at its start).
    s.lock().unwrap().step(100.0);
    s.lock().unwrap().step(1.0);
    for (id, model, d) in &devices {
        let snap = d.read_all().await.unwrap();
        assert_eq!(snap.state, Some(ChargeState::A), "{id} {model}");
        assert_eq!((snap.id_tag, snap.ev_id), (None, None), "{id} {model}");
    }
}

/// The real daemon against a simulated Webasto NEXT over Modbus TCP: `/api/state` shows the
/// car's token while it is plugged in (valid against schemas/state.json), and none after it
/// left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_shows_the_token_in_api_state_until_unplug() {
    use crate::support::daemon::{field, Daemon, Served};
    use crate::support::http::{self, until_json};
    let text = format!(
        "name = \"identity\"\nseed = 5\nduration_s = 3600\nstart = \"2026-12-07T08:00:00Z\"\n\
         [site]\nid = \"identity\"\ngrid_limit_a = 63.0\nphases = 3\nvoltage_v = 230.0\n\
         margin_a = 1.0\nfailsafe_current_a = 6.0\n[base_load]\npoints = [[0, 4, 4, 4]]\n\
         [meter]\nmodel = \"eastron-sdm630\"\ntransport = \"rtu\"\n\
         [[charger]]\nid = \"cp-1\"\nmodel = \"webasto-next\"\ntransport = \"tcp\"\nphases = 3\n\
         phase_map = [1, 2, 3]\nmin_current_a = 6.0\nmax_current_a = 16.0\n\
         [[vehicle]]\ncharger = \"cp-1\"\narrive_s = 2\ndepart_s = 12\ncapacity_kwh = 100\n\
         soc_start = 0.2\nsoc_target = 1.0\nmax_current_a = 16\nphases = 3\n\
         response_delay_s = 1\ntaper_from_soc = 1.0\ntoken = \"{TOKEN}\"\n"
    );
    let scenario = Scenario::parse(&text, "identity").expect("scenario parses");
    let served = Served::start(&scenario).await;
    let port = http::free_port();
    served.add_config(&format!("\n[api]\nlisten = \"127.0.0.1:{port}\"\n"));
    let mut d = Daemon::start(&served.config);
    let line = d.line_with(&["local API listening"]).await;
    let addr: std::net::SocketAddr = field(&line, "addr").parse().expect("the logged address");
    let schema = crate::api::schema();
    let st = until_json(addr, "/api/state", "the token is shown", |v| {
        v["cycle"]["chargers"][0]["id_tag"] == TOKEN
    })
    .await;
    crate::api::assert_valid(&schema, &st);
    let c = &st["cycle"]["chargers"][0];
    assert_ne!(c["state"], "A", "{c}");
    assert!(c["ev_id"].is_null(), "{c}");
    let st = until_json(addr, "/api/state", "the car left", |v| {
        v["cycle"]["chargers"][0]["state"] == "A"
    })
    .await;
    crate::api::assert_valid(&schema, &st);
    assert!(st["cycle"]["chargers"][0]["id_tag"].is_null(), "{st}");
    d.signal("-TERM");
    let (_, status) = d.all_lines().await;
    assert!(status.success(), "{status:?}");
}
