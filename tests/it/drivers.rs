//! The real drivers against the real simulator: `ModbusDevice` over `Links`/`DeviceLink`,
//! talking Modbus TCP on loopback ports and Modbus RTU on the simulator's pseudo-terminals,
//! checked against the simulator's own truth (what the site really draws and was told).

use crate::support::scenario;

use scenario::Head;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evsite::config::Bus;
use evsite::devices::model::{ChargeState, Transport};
use evsite::devices::regmap::Table;
use evsite::devices::traits::{
    CommsTimeout, CurrentLimit, EnablePause, Heartbeat, ReadAll, SafeCurrent,
};
use evsite::devices::{registry, DeviceError, ModbusDevice, Snapshot};
use evsite::modbus::{
    BoxedStream, Connector, DeviceLink, Links, ModbusError, RegisterIo, Request, RtuBus,
    RtuSettings, TcpConnector,
};
use evsite::simulator::bank::Exception;
use evsite::simulator::framing::{
    crc_ok, exception_pdu, parse_pdu, read_response, rtu_request_len, with_crc, RtuLen,
};
use evsite::simulator::{
    serve_site, serve_tcp_stream, ChargerTruth, Link, Scenario, ServedSite, SharedSite, SiteModel,
    Units, METER,
};
use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// A scenario's head with `meter` as the site meter on `transport`.
fn head(meter: &str, transport: &str) -> String {
    Head {
        meter,
        transport,
        ..Head::new("drivers", 3)
    }
    .toml()
}

/// Per-request timeout: long enough for a loaded machine, short enough for the timeout test.
const TIMEOUT: Duration = Duration::from_millis(500);

fn charger(id: &str, model: &str, transport: &str, unit: Option<u8>) -> String {
    let unit = unit.map_or(String::new(), |u| format!("unit = {u}\n"));
    format!(
        "[[charger]]\nid = \"{id}\"\nmodel = \"{model}\"\ntransport = \"{transport}\"\n\
         phases = 3\nphase_map = [1, 2, 3]\nmin_current_a = 6.0\nmax_current_a = 32.0\n{unit}"
    )
}

fn vehicle(charger: &str, max_a: f64) -> String {
    format!(
        "[[vehicle]]\ncharger = \"{charger}\"\narrive_s = 0\ndepart_s = 3000\ncapacity_kwh = 60\n\
         soc_start = 0.2\nsoc_target = 0.9\nmax_current_a = {max_a}\nphases = 3\n\
         response_delay_s = 0\ntaper_from_soc = 0.85\n"
    )
}

fn fault(kind: &str, target: &str) -> String {
    scenario::fault(kind, target, 0.0, 600.0)
}

fn shared_site(parts: &[String]) -> SharedSite {
    shared_site_metered("eastron-sdm630", "rtu", parts)
}

fn shared_site_metered(meter: &str, transport: &str, parts: &[String]) -> SharedSite {
    let text = format!("{}\n{}", head(meter, transport), parts.join("\n"));
    let scenario = Scenario::parse(&text, "drivers").unwrap();
    SiteModel::from_registry(&scenario).unwrap().into_shared()
}

fn step(s: &SharedSite, dt: f64) {
    s.lock().unwrap().step(dt);
}

fn truth(s: &SharedSite, id: &str) -> ChargerTruth {
    s.lock()
        .unwrap()
        .charger_truth()
        .into_iter()
        .find(|c| c.id == id)
        .unwrap()
}

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

/// The config of the simulator's line that device `index` is on, and its unit there.
fn rtu_bus(served: &ServedSite, index: usize) -> (Bus, u8) {
    served
        .endpoints
        .iter()
        .find_map(|e| match &e.link {
            Link::Rtu { bus, path, serial } if e.device.index == index => Some((
                Bus {
                    name: bus.clone(),
                    device: path.clone(),
                    baud: serial.baud,
                    parity: serial.parity,
                    stop_bits: serial.stop_bits,
                    timeout: TIMEOUT,
                    frame_gap: Duration::from_millis(5),
                },
                e.device.unit,
            )),
            _ => None,
        })
        .unwrap_or_else(|| panic!("device {index} is not served over RTU"))
}

fn device(model: &str, link: DeviceLink) -> ModbusDevice<DeviceLink> {
    ModbusDevice::new(registry::find(model).unwrap(), link)
}

fn tcp_device(
    links: &Links,
    served: &ServedSite,
    id: &str,
    model: &str,
) -> ModbusDevice<DeviceLink> {
    let port = tcp_port(served, id);
    let unit = registry::find(model).unwrap().default_unit;
    device(
        model,
        DeviceLink::tcp(links.tcp("127.0.0.1", port, TIMEOUT), unit),
    )
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// The snapshot of a charger agrees with what the simulator says it draws and has counted.
fn assert_matches_truth(model: &str, snap: &Snapshot, t: &ChargerTruth) {
    assert_eq!(snap.state, Some(ChargeState::C), "{model}: {snap:?}");
    for p in 0..3 {
        let read = snap.current_a[p].unwrap_or_else(|| panic!("{model}: no L{} current", p + 1));
        // Integer registers count mA or 0.1 A; floats are exact enough.
        assert!(
            close(read, t.grid_a[p], 0.1),
            "{model} L{}: {read} vs {:?}",
            p + 1,
            t.grid_a
        );
    }
    let energy = snap
        .energy_wh
        .unwrap_or_else(|| panic!("{model}: no energy"));
    let step = registry::find(model)
        .unwrap()
        .readings
        .energy
        .map_or(1.0, |r| r.scale);
    // One register step, or the precision of a float32 kWh counter at lifetime totals.
    let tol = step.max(t.energy_register_wh.abs() * 1e-6).max(1.0);
    assert!(
        close(energy, t.energy_register_wh, tol),
        "{model}: energy {energy} vs {}",
        t.energy_register_wh
    );
    for v in snap.voltage_v.iter().flatten() {
        assert!(close(*v, 230.0, 0.5), "{model}: voltage {v}");
    }
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Tcp => "tcp",
        Transport::Rtu => "rtu",
    }
}

/// Every charger model in the registry, once over each transport it supports, on one site:
/// the simulator serves each from its map and the driver reads what the site draws.
#[tokio::test]
async fn every_charger_reads_what_the_site_draws_over_each_of_its_transports() {
    let mut points = Vec::new();
    for spec in registry::all().iter().filter(|m| m.charger.is_some()) {
        for &t in spec.transports {
            points.push((spec.name, t));
        }
    }
    assert!(
        points.iter().any(|(_, t)| *t == Transport::Rtu),
        "some RTU charger"
    );
    let mut parts = Vec::new();
    for (i, (model, t)) in points.iter().enumerate() {
        let id = format!("cp-{}", i + 1);
        // Units of their own, so chargers sharing a line cannot collide at a default.
        let unit = (*t == Transport::Rtu).then(|| 10 + i as u8);
        parts.push(charger(&id, model, transport_name(*t), unit));
        parts.push(vehicle(&id, 16.0));
    }
    let s = shared_site(&parts);
    let served = serve_site(s.clone()).await.unwrap();
    step(&s, 30.0);
    let links = Links::new(Arc::new(TcpConnector));
    for (i, (model, t)) in points.iter().enumerate() {
        let id = format!("cp-{}", i + 1);
        let d = match t {
            Transport::Tcp => tcp_device(&links, &served, &id, model),
            Transport::Rtu => {
                let (bus, unit) = rtu_bus(&served, i + 1);
                device(model, DeviceLink::rtu(links.rtu(&bus), unit))
            }
        };
        let snap = d
            .read_all()
            .await
            .unwrap_or_else(|e| panic!("{model} over {t:?}: {e}"));
        let t = truth(&s, &id);
        assert_eq!(t.grid_a, [16.0; 3], "{model}: the car draws its max");
        assert_matches_truth(model, &snap, &t);
        // And the twin takes the setpoint the driver writes.
        d.set_current_limit(10.0)
            .await
            .unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!(truth(&s, &id).setpoint_a, Some(10.0), "{model}");
        let stats = d.io().stats();
        assert_eq!(stats.requests, stats.ok, "{model}: {stats:?}");
        assert!(stats.ok >= 1);
    }
}

/// Every meter model in the registry as the site meter, over each transport it supports.
#[tokio::test]
async fn every_meter_reads_the_grid_over_each_of_its_transports() {
    for spec in registry::all().iter().filter(|m| m.charger.is_none()) {
        for &t in spec.transports {
            let what = format!("{} over {t:?}", spec.name);
            let s = shared_site_metered(
                spec.name,
                transport_name(t),
                &[
                    charger("cp-1", "alfen-eve", "tcp", None),
                    vehicle("cp-1", 16.0),
                ],
            );
            let served = serve_site(s.clone()).await.unwrap();
            step(&s, 5.0);
            let links = Links::new(Arc::new(TcpConnector));
            let link = match t {
                Transport::Tcp => {
                    let port = served
                        .endpoints
                        .iter()
                        .find_map(|e| match e.link {
                            Link::Tcp { port } if e.device.index == METER => Some(port),
                            _ => None,
                        })
                        .unwrap_or_else(|| panic!("{what}: not served over TCP"));
                    DeviceLink::tcp(links.tcp("127.0.0.1", port, TIMEOUT), spec.default_unit)
                }
                Transport::Rtu => {
                    let (bus, unit) = rtu_bus(&served, METER);
                    DeviceLink::rtu(links.rtu(&bus), unit)
                }
            };
            let meter = ModbusDevice::new(spec, link);
            let snap = meter
                .read_all()
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let grid = s.lock().unwrap().grid_current_a();
            let r = &spec.readings;
            for p in 0..3 {
                assert_eq!(
                    snap.current_a[p].is_some(),
                    r.current[p].is_some(),
                    "{what}"
                );
                if let Some(a) = snap.current_a[p] {
                    assert!(
                        close(a, grid[p], 1e-2),
                        "{what} L{}: {a} vs {grid:?}",
                        p + 1
                    );
                }
                if let Some(v) = snap.voltage_v[p] {
                    assert!(close(v, 230.0, 0.5), "{what}: voltage {v}");
                }
            }
            if let Some(w) = snap.power_w {
                let want = grid.iter().sum::<f64>() * 230.0;
                assert!(close(w, want, want * 1e-3 + 1.0), "{what}: {w} W vs {want}");
            }
            assert!(
                snap.energy_wh.is_some_and(|wh| wh > 0.0),
                "{what}: {snap:?}"
            );
        }
    }
}

#[tokio::test]
async fn sdm630_reads_over_rtu_on_a_pseudo_terminal() {
    let s = shared_site(&[
        charger("cp-1", "alfen-eve", "tcp", None),
        vehicle("cp-1", 16.0),
    ]);
    let served = serve_site(s.clone()).await.unwrap();
    step(&s, 5.0);
    let (bus, unit) = rtu_bus(&served, METER);
    let links = Links::new(Arc::new(TcpConnector));
    let meter = device("eastron-sdm630", DeviceLink::rtu(links.rtu(&bus), unit));
    let snap = meter.read_all().await.unwrap();
    let grid = s.lock().unwrap().grid_current_a();
    let expected = [3.0 + 16.0, 5.0 + 16.0, 7.0 + 16.0];
    for p in 0..3 {
        assert!(close(grid[p], expected[p], 1e-9));
        let a = snap.current_a[p].unwrap();
        assert!(close(a, expected[p], 1e-3), "L{}: {a}", p + 1);
        assert!(close(snap.voltage_v[p].unwrap(), 230.0, 1e-3));
    }
    let w = snap.power_w.unwrap();
    assert!(close(w, expected.iter().sum::<f64>() * 230.0, 1.0), "{w}");
    assert!(snap.energy_wh.unwrap() > 0.0);
    assert_eq!(meter.io().label(), format!("rtu {} unit {unit}", bus.name));
}

#[tokio::test]
async fn meter_and_two_chargers_share_lines_and_read_concurrently() {
    let s = shared_site(&[
        charger("cp-1", "mennekes-amtron-compact", "rtu", Some(50)),
        charger("cp-2", "mennekes-amtron-compact", "rtu", Some(51)),
        vehicle("cp-1", 16.0),
        vehicle("cp-2", 10.0),
    ]);
    let served = serve_site(s.clone()).await.unwrap();
    step(&s, 10.0);
    let (meter_bus, meter_unit) = rtu_bus(&served, METER);
    let (bus1, unit1) = rtu_bus(&served, 1);
    let (bus2, unit2) = rtu_bus(&served, 2);
    assert_eq!(bus1, bus2, "both AMTRONs are on one line");
    assert_ne!(unit1, unit2);
    assert_ne!(meter_bus.name, bus1.name, "8N1 and 8N2 need two lines");
    let links = Links::new(Arc::new(TcpConnector));
    let meter = device(
        "eastron-sdm630",
        DeviceLink::rtu(links.rtu(&meter_bus), meter_unit),
    );
    let cp1 = device(
        "mennekes-amtron-compact",
        DeviceLink::rtu(links.rtu(&bus1), unit1),
    );
    let cp2 = device(
        "mennekes-amtron-compact",
        DeviceLink::rtu(links.rtu(&bus2), unit2),
    );
    // Several rounds at once, so requests of both units queue on the one line.
    for _ in 0..3 {
        let (m, a, b) = tokio::join!(meter.read_all(), cp1.read_all(), cp2.read_all());
        let (m, a, b) = (m.unwrap(), a.unwrap(), b.unwrap());
        assert_matches_truth("mennekes-amtron-compact", &a, &truth(&s, "cp-1"));
        assert_matches_truth("mennekes-amtron-compact", &b, &truth(&s, "cp-2"));
        assert_eq!(a.current_a, [Some(16.0); 3]);
        assert_eq!(b.current_a, [Some(10.0); 3]);
        let grid = s.lock().unwrap().grid_current_a();
        for (read, want) in m.current_a.iter().zip(grid) {
            assert!(close(read.unwrap(), want, 1e-3), "{read:?} vs {want}");
        }
    }
    for d in [&cp1, &cp2] {
        let st = d.io().stats();
        assert_eq!(
            (st.requests, st.ok, st.bad_frames),
            (st.ok, st.ok, 0),
            "{st:?}"
        );
    }
}

#[tokio::test]
async fn setpoints_written_by_the_driver_reach_the_charger() {
    let s = shared_site(&[
        charger("cp-1", "alfen-eve", "tcp", None),
        charger("cp-2", "vestel-evc04", "tcp", None),
        charger("cp-3", "mennekes-amtron-compact", "rtu", None),
        vehicle("cp-1", 32.0),
        vehicle("cp-2", 32.0),
        vehicle("cp-3", 32.0),
    ]);
    let served = serve_site(s.clone()).await.unwrap();
    step(&s, 1.0);
    let links = Links::new(Arc::new(TcpConnector));
    let alfen = tcp_device(&links, &served, "cp-1", "alfen-eve");
    let vestel = tcp_device(&links, &served, "cp-2", "vestel-evc04");
    let (bus, unit) = rtu_bus(&served, 3);
    let amtron = device(
        "mennekes-amtron-compact",
        DeviceLink::rtu(links.rtu(&bus), unit),
    );
    alfen.set_current_limit(10.5).await.unwrap();
    // Vestel's register counts whole amps: 13.7 A must become 13, never 14.
    vestel.set_current_limit(13.7).await.unwrap();
    amtron.set_current_limit(8.0).await.unwrap();
    assert_eq!(truth(&s, "cp-1").setpoint_a, Some(10.5));
    assert_eq!(truth(&s, "cp-2").setpoint_a, Some(13.0));
    assert_eq!(truth(&s, "cp-3").setpoint_a, Some(8.0));
    step(&s, 1.0);
    assert_eq!(truth(&s, "cp-1").grid_a, [10.5; 3]);
    assert_eq!(truth(&s, "cp-2").grid_a, [13.0; 3]);
    assert_eq!(truth(&s, "cp-3").grid_a, [8.0; 3]);
    // What the charger reports it applies is read back through the same driver.
    let snap = alfen.read_all().await.unwrap();
    if let Some(applied) = snap.applied_current_a {
        assert!(close(applied, 10.5, 1e-3), "{applied}");
    }
    assert_eq!(snap.current_a, [Some(10.5); 3]);
    // 0 pauses.
    vestel.set_current_limit(0.0).await.unwrap();
    step(&s, 1.0);
    assert_eq!(truth(&s, "cp-2").grid_a, [0.0; 3]);
    let below = vestel.set_current_limit(3.0).await;
    assert!(
        matches!(below, Err(DeviceError::BelowMinimum { .. })),
        "{below:?}"
    );
}

#[tokio::test]
async fn a_silent_meter_is_a_counted_timeout() {
    let s = shared_site(&[fault("meter_silent", "meter")]);
    let served = serve_site(s.clone()).await.unwrap();
    let (bus, unit) = rtu_bus(&served, METER);
    let links = Links::new(Arc::new(TcpConnector));
    let meter = device("eastron-sdm630", DeviceLink::rtu(links.rtu(&bus), unit));
    let r = meter.read_all().await;
    assert!(
        matches!(r, Err(DeviceError::Modbus(ModbusError::Timeout(t))) if t == TIMEOUT),
        "{r:?}"
    );
    let st = meter.io().stats();
    assert_eq!((st.requests, st.timeouts, st.ok), (1, 1, 0), "{st:?}");
}

#[tokio::test]
async fn an_unmapped_address_is_exception_2() {
    let s = shared_site(&[charger("cp-1", "alfen-eve", "tcp", None)]);
    let served = serve_site(s.clone()).await.unwrap();
    let links = Links::new(Arc::new(TcpConnector));
    let alfen = tcp_device(&links, &served, "cp-1", "alfen-eve");
    let r = alfen.io().read(Table::Holding, 9000, 2).await;
    assert_eq!(r, Err(ModbusError::Exception { code: 2 }));
    // The connection survives an exception: the next read is answered on it.
    assert!(alfen.read_all().await.is_ok());
    let st = alfen.io().stats();
    assert_eq!((st.exceptions, st.reconnects), (1, 0), "{st:?}");
    // Over RTU too.
    let (bus, unit) = rtu_bus(&served, METER);
    let link = DeviceLink::rtu(links.rtu(&bus), unit);
    let r = link.read(Table::Input, 0x7000, 2).await;
    assert_eq!(r, Err(ModbusError::Exception { code: 2 }));
}

/// Connects "TCP" through in-memory pipes served by the simulator's own Modbus TCP server,
/// counting the connections made.
struct PipeConnector {
    site: SharedSite,
    units: Units,
    connects: Arc<AtomicUsize>,
}

impl Connector for PipeConnector {
    fn connect(&self, _host: &str, _port: u16) -> BoxFuture<'static, std::io::Result<BoxedStream>> {
        let (near, far) = tokio::io::duplex(4096);
        self.connects.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(serve_tcp_stream(far, self.site.clone(), self.units.clone()));
        Box::pin(async move { Ok(Box::new(near) as BoxedStream) })
    }
}

/// The Alfen closes a connection idle for 60 s; the link notices on its next request and
/// reconnects within that request. The 60 s pass on tokio's paused clock, which only works
/// deterministically without real sockets (with them, the clock could jump past a request
/// timeout while the kernel still holds a reply), so the connection is a pipe to the same
/// server code the simulator runs on its TCP ports.
#[tokio::test(start_paused = true)]
async fn reconnects_after_the_alfen_drops_an_idle_connection() {
    let s = shared_site(&[
        charger("cp-1", "alfen-eve", "tcp", None),
        vehicle("cp-1", 16.0),
    ]);
    step(&s, 5.0);
    let connects = Arc::new(AtomicUsize::new(0));
    let links = Links::new(Arc::new(PipeConnector {
        site: s.clone(),
        units: Units::from([(1, 1)]),
        connects: connects.clone(),
    }));
    let alfen = device(
        "alfen-eve",
        DeviceLink::tcp(links.tcp("alfen.local", 502, TIMEOUT), 1),
    );
    alfen.read_all().await.unwrap();
    alfen.read_all().await.unwrap();
    assert_eq!(connects.load(Ordering::SeqCst), 1, "one connection, reused");
    // Virtual time passing, not synchronisation: the server's idle timer fires at 60 s.
    tokio::time::sleep(Duration::from_secs(61)).await;
    let snap = alfen.read_all().await.unwrap();
    assert_matches_truth("alfen-eve", &snap, &truth(&s, "cp-1"));
    assert_eq!(connects.load(Ordering::SeqCst), 2, "reconnected once");
    let st = alfen.io().stats();
    assert_eq!(st.reconnects, 1, "{st:?}");
    assert_eq!(
        st.link_errors, 0,
        "the drop is absorbed within the request: {st:?}"
    );
    assert_eq!(st.requests, st.ok);
}

/// Passes every request on to the real link, keeping a copy of what the driver sent.
struct Recording {
    link: DeviceLink,
    sent: Mutex<Vec<Request>>,
}

impl RegisterIo for Recording {
    async fn call(&self, request: Request) -> Result<Vec<u16>, ModbusError> {
        self.sent.lock().unwrap().push(request.clone());
        self.link.call(request).await
    }
}

/// What the far end of a line made of each frame: a request, or the bytes it refused.
type Parsed = Arc<Mutex<Vec<Result<Request, Vec<u8>>>>>;

/// The far end of an RTU line that parses every frame with the simulator's framing and keeps
/// what it understood (or the bytes it refused), answering reads with zeros and writes with
/// their echo so the link moves on to the next request.
async fn parse_rtu_frames(mut line: DuplexStream, parsed: Parsed) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let n = match line.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while let RtuLen::Complete(len) = rtu_request_len(&buf) {
            let frame: Vec<u8> = buf.drain(..len).collect();
            let pdu = &frame[1..len - 2];
            let (kept, answer) = match parse_pdu(pdu) {
                Ok(req) if crc_ok(&frame) => {
                    let answer = match &req {
                        Request::Read { table, count, .. } => {
                            read_response(*table, &vec![0; usize::from(*count)])
                        }
                        _ => pdu[..5].to_vec(),
                    };
                    (Ok(req), answer)
                }
                _ => (
                    Err(frame.clone()),
                    exception_pdu(pdu[0], Exception::ILLEGAL_VALUE),
                ),
            };
            parsed.lock().unwrap().push(kept);
            let mut out = vec![frame[0]];
            out.extend(answer);
            if line.write_all(&with_crc(out)).await.is_err() {
                return;
            }
        }
    }
}

/// Every request a model's driver sends (its planned reads and every write it can make),
/// encoded by tokio-modbus onto an RTU line, must be parsed by the simulator as the very
/// request the driver made: the encoder and the simulator's parser agree on the wire.
#[tokio::test]
async fn every_request_a_driver_sends_is_parsed_back_the_same_by_the_simulator() {
    let mut writes = 0;
    for spec in registry::all() {
        let (near, far) = tokio::io::duplex(1024);
        let parsed = Parsed::default();
        let far_end = tokio::spawn(parse_rtu_frames(far, parsed.clone()));
        let settings = RtuSettings {
            name: "wire".into(),
            timeout: TIMEOUT,
            frame_gap: Duration::ZERO,
        };
        let link = DeviceLink::rtu(RtuBus::from_stream(near, settings), spec.default_unit);
        let dev = ModbusDevice::new(
            spec,
            Recording {
                link,
                sent: Mutex::new(Vec::new()),
            },
        );
        // Zeros are not a valid state or value for every model: only the requests matter.
        let _ = dev.read_all().await;
        if let Some(c) = spec.charger {
            let _ = dev.set_current_limit(c.min_current_a).await;
            let _ = dev.set_current_limit(16.0).await;
            let _ = dev.set_current_limit(0.0).await;
            let _ = dev.set_enabled(true).await;
            let _ = dev.set_enabled(false).await;
            let _ = dev.heartbeat().await;
            if let Some(t) = dev.default_comms_timeout() {
                let _ = dev.configure_comms_timeout(t).await;
            }
            let _ = dev.safe_current_a().await;
            let _ = dev.set_safe_current_a(6.0).await;
        }
        let sent = dev.io().sent.lock().unwrap().clone();
        writes += sent.iter().filter(|r| r.written().is_some()).count();
        let got = parsed.lock().unwrap().clone();
        let want: Vec<Result<Request, Vec<u8>>> = sent.into_iter().map(Ok).collect();
        assert!(!want.is_empty(), "{} sent nothing", spec.name);
        assert_eq!(
            got, want,
            "{}: the simulator parsed other requests",
            spec.name
        );
        far_end.abort();
    }
    assert!(writes > 0, "no model wrote anything");
}
