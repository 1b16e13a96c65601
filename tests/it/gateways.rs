//! RS-485 devices behind Ethernet gateways, end to end over loopback TCP: the simulator serves
//! them behind a Modbus TCP gateway (`link = "gateway-tcp"`) or a transparent serial converter
//! (`link = "gateway-rtu"`), writes the evsite config for them, and the real validation,
//! `Links` and driver read them through it.

use crate::support::scenario;

use scenario::Head;

use std::sync::Arc;
use std::time::Duration;

use evsite::config::{load_str, Config, Device, Link as CfgLink};
use evsite::devices::traits::{CurrentLimit, ReadAll};
use evsite::devices::{DeviceError, ModbusDevice};
use evsite::modbus::{DeviceLink, Links, ModbusError, TcpConnector};
use evsite::simulator::write_config::config_toml;
use evsite::simulator::{
    serve_rtu_stream, serve_site, ChargerTruth, Link, Scenario, ServedSite, SharedSite, SiteError,
    SiteModel, Units, METER,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// The site, with its SDM630 main meter served behind the gateway `meter_link`.
fn head(meter_link: &str) -> String {
    format!(
        "{}link = \"{meter_link}\"\n",
        Head::new("gateways", 5).toml()
    )
}

/// An AMTRON (an RS-485-only charger) behind the gateway `link`, with a car drawing 16 A.
fn amtron(id: &str, link: &str) -> String {
    format!(
        "[[charger]]\nid = \"{id}\"\nmodel = \"mennekes-amtron-compact\"\ntransport = \"rtu\"\n\
         link = \"{link}\"\nphases = 3\nphase_map = [1, 2, 3]\nmin_current_a = 6.0\n\
         max_current_a = 32.0\n\
         [[vehicle]]\ncharger = \"{id}\"\narrive_s = 0\ndepart_s = 3000\ncapacity_kwh = 60\n\
         soc_start = 0.2\nsoc_target = 0.9\nmax_current_a = 16.0\nphases = 3\n\
         response_delay_s = 0\ntaper_from_soc = 0.85\n"
    )
}

fn fault(kind: &str, target: &str) -> String {
    format!("[[fault]]\nat_s = 0\nduration_s = 600\nkind = \"{kind}\"\ntarget = \"{target}\"\n")
}

/// A served site and the evsite config the simulator wrote for it, loaded and validated.
struct Served {
    site: SharedSite,
    served: ServedSite,
    cfg: Config,
    links: Links,
    _dir: tempfile::TempDir,
}

async fn serve(meter_link: &str, parts: &[String]) -> Served {
    let text = format!("{}\n{}", head(meter_link), parts.join("\n"));
    let scenario = Scenario::parse(&text, "gateways").unwrap();
    let site = SiteModel::from_registry(&scenario).unwrap().into_shared();
    site.lock().unwrap().step(5.0);
    let served = serve_site(site.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = config_toml(&site.lock().unwrap(), &served.endpoints, dir.path()).unwrap();
    let cfg = load_str(&toml, "written").unwrap_or_else(|e| panic!("{e}\n{toml}"));
    Served {
        site,
        served,
        cfg,
        links: Links::new(Arc::new(TcpConnector)),
        _dir: dir,
    }
}

impl Served {
    fn device(&self, dev: &Device) -> ModbusDevice<DeviceLink> {
        ModbusDevice::new(dev.model, self.links.device(dev, &self.cfg.buses).unwrap())
    }

    fn meter(&self) -> ModbusDevice<DeviceLink> {
        self.device(&self.cfg.meter)
    }

    fn charger(&self, id: &str) -> ModbusDevice<DeviceLink> {
        let c = self.cfg.chargers.iter().find(|c| c.id == id).unwrap();
        self.device(&c.device)
    }

    fn truth(&self, id: &str) -> ChargerTruth {
        let s = self.site.lock().unwrap();
        s.charger_truth().into_iter().find(|c| c.id == id).unwrap()
    }

    fn grid_a(&self) -> [f64; 3] {
        self.site.lock().unwrap().grid_current_a()
    }

    /// The loopback port the device `id` is served on, behind a gateway.
    fn gateway_port(&self, id: &str) -> u16 {
        self.served
            .endpoints
            .iter()
            .find_map(|e| match e.link {
                Link::GatewayTcp { port } | Link::GatewayRtu { port } if e.device.id == id => {
                    Some(port)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{id} is not behind a gateway"))
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// Reads the meter and checks it against what the site draws.
async fn assert_reads_grid(s: &Served, meter: &ModbusDevice<DeviceLink>) {
    let grid = s.grid_a();
    let snap = meter.read_all().await.unwrap();
    for (p, want) in grid.iter().enumerate() {
        let a = snap.current_a[p].unwrap();
        assert!(close(a, *want, 1e-3), "L{}: {a} vs {want}", p + 1);
        assert!(close(snap.voltage_v[p].unwrap(), 230.0, 1e-3));
    }
    assert!(snap.energy_wh.unwrap() > 0.0);
}

#[tokio::test]
async fn sdm630_reads_through_a_modbus_tcp_gateway() {
    let s = serve("gateway-tcp", &[]).await;
    let port = s.gateway_port("meter");
    assert!(
        matches!(&s.cfg.meter.link, CfgLink::Tcp { port: p, .. } if *p == port),
        "{:?}",
        s.cfg.meter.link
    );
    let meter = s.meter();
    assert_eq!(meter.io().label(), format!("tcp 127.0.0.1:{port} unit 1"));
    assert_reads_grid(&s, &meter).await;
    let st = meter.io().stats();
    assert_eq!((st.requests, st.ok), (1, 1), "{st:?}");
}

#[tokio::test]
async fn sdm630_reads_through_a_transparent_serial_converter() {
    let s = serve("gateway-rtu", &[]).await;
    let port = s.gateway_port("meter");
    // RTU framing with the line timing of the SDM630's factory 9600 baud.
    assert_eq!(
        s.cfg.meter.link,
        CfgLink::RtuOverTcp {
            host: "127.0.0.1".into(),
            port,
            timeout: Duration::from_millis(1000),
            frame_gap: Duration::from_micros(4010),
        }
    );
    let meter = s.meter();
    assert_eq!(
        meter.io().label(),
        format!("rtu-over-tcp 127.0.0.1:{port} unit 1")
    );
    assert_reads_grid(&s, &meter).await;
    // And again on the same connection.
    assert_reads_grid(&s, &meter).await;
    let st = meter.io().stats();
    assert_eq!((st.requests, st.ok, st.reconnects), (2, 2, 0), "{st:?}");
}

/// Two units behind one gateway of each kind, read concurrently on the one connection, and
/// a setpoint written through it.
#[tokio::test]
async fn two_units_share_one_gateway_of_each_kind() {
    for kind in ["gateway-tcp", "gateway-rtu"] {
        let s = serve(kind, &[amtron("cp-1", kind)]).await;
        let port = s.gateway_port("meter");
        assert_eq!(s.gateway_port("cp-1"), port, "{kind}: one gateway");
        let meter = s.meter();
        let cp1 = s.charger("cp-1");
        assert_ne!(meter.io().unit(), cp1.io().unit(), "{kind}");
        for _ in 0..3 {
            let ((), c) = tokio::join!(assert_reads_grid(&s, &meter), cp1.read_all());
            let c = c.unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(c.current_a, [Some(16.0); 3], "{kind}");
        }
        cp1.set_current_limit(10.0).await.unwrap();
        assert_eq!(s.truth("cp-1").setpoint_a, Some(10.0), "{kind}");
        for d in [&meter, &cp1] {
            let st = d.io().stats();
            assert_eq!(st.requests, st.ok, "{kind}: {st:?}");
            assert_eq!(st.reconnects, 0, "{kind}: one connection throughout");
        }
    }
}

/// A meter answering with garbled frames, then one that falls silent, behind the converter
/// it shares with a charger: each failure is counted on the meter, the charger is answered on
/// the same converter right after, and the meter reads again once the fault is over.
#[tokio::test]
async fn a_garbled_or_silent_unit_does_not_take_the_converter_down() {
    for (kind, want) in [("garbled_frames", "bad frame"), ("meter_silent", "timeout")] {
        let s = serve(
            "gateway-rtu",
            &[amtron("cp-1", "gateway-rtu"), fault(kind, "meter")],
        )
        .await;
        let meter = s.meter();
        let cp1 = s.charger("cp-1");
        let r = meter.read_all().await;
        let failed = match &r {
            Err(DeviceError::Modbus(ModbusError::BadFrame(_))) => "bad frame",
            Err(DeviceError::Modbus(ModbusError::Timeout(_))) => "timeout",
            _ => "something else",
        };
        assert_eq!(failed, want, "{kind}: {r:?}");
        let c = cp1
            .read_all()
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(c.current_a, [Some(16.0); 3], "{kind}");
        s.site.lock().unwrap().step(600.0);
        assert_reads_grid(&s, &meter).await;
        let st = meter.io().stats();
        assert_eq!((st.requests, st.ok), (2, 1), "{kind}: {st:?}");
        let st = cp1.io().stats();
        assert_eq!((st.requests, st.ok), (st.ok, st.ok), "{kind}: {st:?}");
        assert!(st.ok > 0, "{kind}");
    }
}

#[test]
fn only_an_rs485_device_sits_behind_a_gateway() {
    let text = format!(
        "{}\n[[charger]]\nid = \"cp-1\"\nmodel = \"alfen-eve\"\ntransport = \"tcp\"\n\
         link = \"gateway-rtu\"\nphases = 3\nphase_map = [1, 2, 3]\nmin_current_a = 6.0\n\
         max_current_a = 32.0\n",
        head("gateway-tcp")
    );
    let scenario = Scenario::parse(&text, "gateways").unwrap();
    let err = SiteModel::from_registry(&scenario).err().expect("refused");
    assert!(
        matches!(err, SiteError::GatewayNeedsRtu { ref device, .. } if device == "cp-1"),
        "{err}"
    );
    assert!(err.to_string().contains("link = \"gateway-rtu\""), "{err}");
}

/// A serial converter that drops the connection evsite holds (it restarted, or closes idle
/// clients): the next request notices and is answered on a fresh connection, within itself.
#[tokio::test]
async fn a_dropped_converter_connection_is_remade_within_the_request() {
    let s = serve("gateway-rtu", &[]).await;
    // Our own converter in front of the same simulated meter, whose connections we can end.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (conns, mut accepted) = mpsc::unbounded_channel();
    let (site, units) = (s.site.clone(), Units::from([(s.cfg.meter.unit, METER)]));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let served = tokio::spawn(serve_rtu_stream(stream, site.clone(), units.clone()));
            if conns.send(served).is_err() {
                return;
            }
        }
    });
    let bus = s.links.rtu_over_tcp(
        "127.0.0.1",
        port,
        Duration::from_millis(1000),
        Duration::from_millis(5),
    );
    let meter = ModbusDevice::new(
        s.cfg.meter.model,
        DeviceLink::rtu_over_tcp(bus, s.cfg.meter.unit),
    );
    assert_reads_grid(&s, &meter).await;
    let first = accepted.recv().await.unwrap();
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    assert_reads_grid(&s, &meter).await;
    let st = meter.io().stats();
    assert_eq!((st.requests, st.ok, st.reconnects), (2, 2, 1), "{st:?}");
}
