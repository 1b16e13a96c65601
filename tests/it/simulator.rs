//! The simulator end to end: the site physics seen through the real register maps, Modbus
//! over real TCP, a real pseudo-terminal and in-memory pipes, every fault kind, the models'
//! own fallbacks, and the evsite config written for a served site.

use crate::support::scenario;

use scenario::{fault, Head};

use std::time::Duration;

use evsite::config::Link as CfgLink;
use evsite::devices::codec::{decode, decode_number, Value};
use evsite::devices::registry;
use evsite::devices::regmap::{Register, Table};
use evsite::simulator::{
    serve_rtu_stream, serve_site, serve_tcp_stream, write_config, Link, Scenario, SharedSite,
    SiteModel, Units, METER,
};
use tokio_modbus::prelude::*;

fn head() -> String {
    Head {
        grid_limit_a: 32.0,
        ..Head::new("t", 9)
    }
    .toml()
}

/// How long a test waits to conclude a device stays silent (a bound, not synchronisation).
const QUIET: Duration = Duration::from_millis(300);

fn charger(id: &str, model: &str, transport: &str, phase_map: &str) -> String {
    let phases = phase_map.split(',').count();
    format!(
        "[[charger]]\nid = \"{id}\"\nmodel = \"{model}\"\ntransport = \"{transport}\"\n\
         phases = {phases}\nphase_map = [{phase_map}]\nmin_current_a = 6.0\nmax_current_a = 32.0\n"
    )
}

fn vehicle(charger: &str, phases: u8, max_a: f64, delay_s: f64) -> String {
    format!(
        "[[vehicle]]\ncharger = \"{charger}\"\narrive_s = 0\ndepart_s = 3000\ncapacity_kwh = 60\n\
         soc_start = 0.2\nsoc_target = 0.9\nmax_current_a = {max_a}\nphases = {phases}\n\
         response_delay_s = {delay_s}\ntaper_from_soc = 0.85\n"
    )
}

fn site(parts: &[String]) -> SiteModel {
    let text = format!("{}\n{}", head(), parts.join("\n"));
    let scenario = Scenario::parse(&text, "test").unwrap();
    SiteModel::from_registry(&scenario).unwrap()
}

fn model_reg(
    name: &str,
    pick: impl Fn(&evsite::devices::model::ModelSpec) -> Option<Register>,
) -> Register {
    pick(registry::find(name).unwrap()).unwrap()
}

fn read_reg(site: &mut SiteModel, device: usize, reg: &Register) -> Option<f64> {
    let words = site.read(device, reg.table, reg.addr, reg.words()).unwrap();
    decode_number(reg, &words).unwrap()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn meter_reads_base_load_plus_vehicle_draws_through_phase_maps() {
    let mut s = site(&[
        charger("cp-1", "alfen-eve", "tcp", "1, 2, 3"),
        charger("cp-2", "vestel-evc04", "tcp", "2, 3, 1"),
        vehicle("cp-1", 3, 16.0, 1.0),
        vehicle("cp-2", 1, 20.0, 1.0),
    ]);
    s.step(5.0);
    // cp-1: 16 A on L1–L3; cp-2: a 1-phase car on the charger's first phase, which is L2.
    let expected = [3.0 + 16.0, 5.0 + 16.0 + 20.0, 7.0 + 16.0];
    let grid = s.grid_current_a();
    for p in 0..3 {
        assert!(close(grid[p], expected[p], 1e-9), "L{}: {grid:?}", p + 1);
        let reg = model_reg("eastron-sdm630", |m| m.readings.current[p]);
        let read = read_reg(&mut s, METER, &reg).unwrap();
        assert!(
            close(read, expected[p], 1e-4),
            "meter L{} reads {read}",
            p + 1
        );
    }
    let power = model_reg("eastron-sdm630", |m| m.readings.power);
    let sum: f64 = expected.iter().sum();
    assert!(close(
        read_reg(&mut s, METER, &power).unwrap(),
        sum * 230.0,
        0.5
    ));
    let cp2 = &s.charger_truth()[1];
    assert_eq!(cp2.grid_a, [0.0, 20.0, 0.0]);
    // The charger's own meter reports per charger phase.
    let l1 = model_reg("vestel-evc04", |m| m.readings.current[0]);
    assert!(close(read_reg(&mut s, 2, &l1).unwrap(), 20.0, 1e-3));
}

#[test]
fn vehicle_energy_is_the_integral_and_registers_count_it() {
    let mut s = site(&[
        charger("cp-1", "alfen-eve", "tcp", "1, 2, 3"),
        vehicle("cp-1", 3, 16.0, 0.0),
    ]);
    let reg = model_reg("alfen-eve", |m| m.readings.energy);
    let before = read_reg(&mut s, 1, &reg).unwrap();
    assert!(before > 1.0e5, "lifetime counters start high: {before}");
    for _ in 0..600 {
        s.step(1.0);
    }
    let truth = &s.vehicle_truth()[0];
    assert!(close(
        truth.energy_wh,
        16.0 * 230.0 * 3.0 * 600.0 / 3600.0,
        1e-6
    ));
    let after = read_reg(&mut s, 1, &reg).unwrap();
    assert!(close(after - before, truth.energy_wh, 1e-3));
}

#[tokio::test]
async fn setpoint_written_over_tcp_applies_after_the_response_delay() {
    let s = site(&[
        charger("cp-1", "alfen-eve", "tcp", "1, 2, 3"),
        vehicle("cp-1", 3, 32.0, 3.0),
    ])
    .into_shared();
    let served = serve_site(s.clone()).await.unwrap();
    let port = served
        .endpoints
        .iter()
        .find_map(|e| match e.link {
            Link::Tcp { port } if e.device.id == "cp-1" => Some(port),
            _ => None,
        })
        .unwrap();
    step(&s, 10.0);
    assert_eq!(
        grid(&s)[0],
        3.0 + 32.0,
        "uncontrolled: the car takes its max"
    );
    let mut ctx = tcp::connect_slave(([127, 0, 0, 1], port).into(), Slave(1))
        .await
        .unwrap();
    let setpoint = model_reg("alfen-eve", |m| m.charger.map(|c| c.setpoint));
    let words = evsite::devices::codec::encode_number(&setpoint, 10.0).unwrap();
    ctx.write_multiple_registers(setpoint.addr, &words)
        .await
        .unwrap()
        .unwrap();
    let back = ctx
        .read_holding_registers(setpoint.addr, 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, words);
    assert_eq!(s.lock().unwrap().charger_truth()[0].setpoint_a, Some(10.0));
    step(&s, 2.9);
    assert_eq!(grid(&s)[0], 3.0 + 32.0, "the car has not reacted yet");
    step(&s, 0.2);
    assert_eq!(grid(&s)[0], 3.0 + 10.0, "reacted after 3 s");
    // Unmapped addresses and unsupported functions are Modbus exceptions, not silence.
    let e = ctx.read_holding_registers(9000, 2).await.unwrap();
    assert_eq!(e, Err(ExceptionCode::IllegalDataAddress));
}

fn step(s: &SharedSite, dt: f64) {
    s.lock().unwrap().step(dt);
}

fn grid(s: &SharedSite) -> [f64; 3] {
    s.lock().unwrap().grid_current_a()
}

#[tokio::test]
async fn sdm630_reads_over_rtu_on_a_pseudo_terminal() {
    let s = site(&[
        charger("cp-1", "mennekes-amtron-compact", "rtu", "1, 2, 3"),
        vehicle("cp-1", 3, 16.0, 0.0),
    ])
    .into_shared();
    let served = serve_site(s.clone()).await.unwrap();
    step(&s, 1.0);
    let (path, unit) = served
        .endpoints
        .iter()
        .find_map(|e| match &e.link {
            Link::Rtu { path, .. } if e.device.index == METER => {
                Some((path.clone(), e.device.unit))
            }
            _ => None,
        })
        .unwrap();
    let port =
        tokio_serial::SerialStream::open(&tokio_serial::new(path.to_string_lossy(), 9600)).unwrap();
    let mut ctx = rtu::attach_slave(port, Slave(unit));
    let reg = model_reg("eastron-sdm630", |m| m.readings.current[0]);
    let words = tokio::time::timeout(
        Duration::from_secs(5),
        ctx.read_input_registers(reg.addr, 2),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    let amps = decode_number(&reg, &words).unwrap().unwrap();
    assert!(close(amps, 3.0 + 16.0, 1e-4), "{amps}");
    let v = model_reg("eastron-sdm630", |m| m.readings.voltage[2]);
    let words = ctx.read_input_registers(v.addr, 2).await.unwrap().unwrap();
    assert!(close(
        decode_number(&v, &words).unwrap().unwrap(),
        230.0,
        1e-3
    ));
}

/// A Modbus TCP client wired to the site through an in-memory pipe.
fn tcp_pipe(s: &SharedSite, device: usize, unit: u8) -> client::Context {
    let (near, far) = tokio::io::duplex(1024);
    tokio::spawn(serve_tcp_stream(
        far,
        s.clone(),
        Units::from([(unit, device)]),
    ));
    tcp::attach_slave(near, Slave(unit))
}

fn rtu_pipe(s: &SharedSite, device: usize, unit: u8) -> client::Context {
    let (near, far) = tokio::io::duplex(1024);
    tokio::spawn(serve_rtu_stream(
        far,
        s.clone(),
        Units::from([(unit, device)]),
    ));
    rtu::attach_slave(near, Slave(unit))
}

#[tokio::test]
async fn meter_silent_means_no_answer_until_the_fault_ends() {
    let s = site(&[fault("meter_silent", "meter", 0.0, 60.0)]).into_shared();
    let mut ctx = rtu_pipe(&s, METER, 1);
    let r = tokio::time::timeout(QUIET, ctx.read_input_registers(0x06, 2)).await;
    assert!(r.is_err(), "a silent meter must time out: {r:?}");
    step(&s, 61.0);
    let mut ctx = rtu_pipe(&s, METER, 1);
    let r = tokio::time::timeout(QUIET, ctx.read_input_registers(0x06, 2)).await;
    assert!(matches!(r, Ok(Ok(Ok(_)))), "{r:?}");
}

#[tokio::test]
async fn garbled_frames_are_rejected_by_the_master() {
    let s = site(&[
        charger("cp-1", "alfen-eve", "tcp", "1, 2, 3"),
        fault("garbled_frames", "cp-1", 0.0, 60.0),
        fault("garbled_frames", "meter", 0.0, 60.0),
    ])
    .into_shared();
    let mut ctx = tcp_pipe(&s, 1, 1);
    let r = tokio::time::timeout(QUIET, ctx.read_holding_registers(320, 2)).await;
    assert!(!matches!(r, Ok(Ok(Ok(_)))), "TCP: {r:?}");
    let mut ctx = rtu_pipe(&s, METER, 1);
    let r = tokio::time::timeout(QUIET, ctx.read_input_registers(0x06, 2)).await;
    assert!(!matches!(r, Ok(Ok(Ok(_)))), "RTU: {r:?}");
    step(&s, 61.0);
    let mut ctx = tcp_pipe(&s, 1, 1);
    let r = tokio::time::timeout(QUIET, ctx.read_holding_registers(320, 2)).await;
    assert!(matches!(r, Ok(Ok(Ok(_)))), "after the fault: {r:?}");
}

#[tokio::test]
async fn charger_error_reports_f_and_cuts_the_vehicle() {
    let mut s = site(&[
        charger("cp-1", "alfen-eve", "tcp", "1, 2, 3"),
        vehicle("cp-1", 3, 16.0, 0.0),
        fault("charger_error", "cp-1", 10.0, 30.0),
    ]);
    let state = match registry::find("alfen-eve").unwrap().charger.unwrap().state {
        evsite::devices::model::StateSpec::Ascii(r) => r,
        other => panic!("{other:?}"),
    };
    s.step(5.0);
    let text = |s: &mut SiteModel| {
        let w = s
            .read(1, Table::Holding, state.addr, state.words())
            .unwrap();
        decode(&state, &w).unwrap()
    };
    assert_eq!(text(&mut s), Some(Value::Text("C2".into())));
    s.step(6.0);
    assert_eq!(text(&mut s), Some(Value::Text("F".into())));
    assert_eq!(s.charger_truth()[0].grid_a, [0.0; 3]);
    s.step(30.0);
    assert_eq!(
        s.charger_truth()[0].grid_a,
        [16.0; 3],
        "charging again after the fault"
    );
}

#[tokio::test]
async fn ignore_setpoints_acknowledges_but_keeps_drawing() {
    let s = site(&[
        charger("cp-1", "vestel-evc04", "tcp", "1, 2, 3"),
        vehicle("cp-1", 3, 32.0, 0.0),
        fault("ignore_setpoints", "cp-1", 0.0, 600.0),
    ])
    .into_shared();
    step(&s, 1.0);
    let mut ctx = tcp_pipe(&s, 1, 255);
    let setpoint = model_reg("vestel-evc04", |m| m.charger.map(|c| c.setpoint));
    ctx.write_single_register(setpoint.addr, 8)
        .await
        .unwrap()
        .unwrap();
    step(&s, 10.0);
    let truth = s.lock().unwrap().charger_truth()[0].clone();
    assert_eq!((truth.setpoint_a, truth.grid_a), (None, [32.0; 3]));
}

#[test]
fn energy_reset_restarts_the_register_at_zero() {
    let mut s = site(&[
        charger("cp-1", "alfen-eve", "tcp", "1, 2, 3"),
        vehicle("cp-1", 3, 16.0, 0.0),
        fault("energy_reset", "cp-1", 100.0, 1.0),
    ]);
    let reg = model_reg("alfen-eve", |m| m.readings.energy);
    s.step(100.0);
    assert!(read_reg(&mut s, 1, &reg).unwrap() > 1.0e5);
    s.step(10.0);
    let after = read_reg(&mut s, 1, &reg).unwrap();
    assert!(
        close(after, 16.0 * 230.0 * 3.0 * 10.0 / 3600.0, 1e-6),
        "{after}"
    );
}

#[test]
fn model_fallbacks_when_the_controller_goes_quiet() {
    let mut s = site(&[
        charger("cp-1", "alfen-eve", "tcp", "1, 2, 3"),
        charger("cp-2", "abb-terra-ac", "tcp", "1, 2, 3"),
        vehicle("cp-1", 3, 32.0, 0.0),
        vehicle("cp-2", 3, 32.0, 0.0),
    ]);
    for (device, name) in [(1, "alfen-eve"), (2, "abb-terra-ac")] {
        let reg = model_reg(name, |m| m.charger.map(|c| c.setpoint));
        let words = evsite::devices::codec::encode_number(&reg, 20.0).unwrap();
        s.write(device, Table::Holding, reg.addr, &words).unwrap();
    }
    s.step(1.0);
    assert_eq!(s.charger_truth()[0].grid_a[0], 20.0);
    assert_eq!(s.charger_truth()[1].grid_a[0], 20.0);
    // ABB's comms timeout (30 s) stops it; Alfen's setpoint validity (60 s) falls back to 6 A.
    s.step(30.0);
    s.step(1.0);
    assert_eq!(s.charger_truth()[1].grid_a[0], 0.0);
    assert_eq!(s.charger_truth()[0].grid_a[0], 20.0);
    s.step(30.0);
    s.step(1.0);
    let alfen = &s.charger_truth()[0];
    assert!(alfen.in_fallback);
    assert_eq!(alfen.grid_a[0], 6.0);
}

async fn served_small_site() -> (
    SharedSite,
    evsite::simulator::ServedSite,
    String,
    tempfile::TempDir,
) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/sim/scenarios/small.toml"
    ))
    .unwrap();
    let scenario = Scenario::parse(&text, "small").unwrap();
    let s = SiteModel::from_registry(&scenario).unwrap().into_shared();
    let served = serve_site(s.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = {
        let model = s.lock().unwrap();
        write_config::config_toml(&model, &served.endpoints, dir.path()).unwrap()
    };
    (s, served, toml, dir)
}

#[tokio::test]
async fn written_config_names_the_served_ports_and_lines() {
    let (_s, served, toml, dir) = served_small_site().await;
    let doc: toml::Table = toml::from_str(&toml).unwrap();
    let chargers = doc["charger"].as_array().unwrap();
    assert_eq!(chargers.len(), 4);
    let buses = doc["bus"].as_array().unwrap();
    assert_eq!(
        buses.len(),
        2,
        "SDM630 (9600 8N1) and AMTRON (57600 8N2) need two lines"
    );
    for e in &served.endpoints {
        let entry = if e.device.index == METER {
            doc["meter"].as_table().unwrap()
        } else {
            chargers[e.device.index - 1].as_table().unwrap()
        };
        assert_eq!(entry["unit"].as_integer(), Some(i64::from(e.device.unit)));
        match &e.link {
            Link::Tcp { port } | Link::GatewayTcp { port } | Link::GatewayRtu { port } => {
                assert_eq!(entry["port"].as_integer(), Some(i64::from(*port)));
                assert_eq!(entry["host"].as_str(), Some("127.0.0.1"));
                let framing = matches!(e.link, Link::GatewayRtu { .. }).then_some("rtu-over-tcp");
                assert_eq!(entry.get("framing").and_then(|f| f.as_str()), framing);
            }
            Link::Rtu { bus, path, serial } => {
                assert_eq!(entry["bus"].as_str(), Some(bus.as_str()));
                let line = buses
                    .iter()
                    .find(|b| b["name"].as_str() == Some(bus))
                    .unwrap();
                assert_eq!(line["device"].as_str(), path.to_str());
                assert_eq!(line["baud"].as_integer(), Some(i64::from(serial.baud)));
            }
        }
    }
    assert_eq!(
        doc["storage"]["path"].as_str(),
        dir.path().join("data").to_str()
    );
}

#[tokio::test]
async fn written_config_loads() {
    let (_s, served, toml, dir) = served_small_site().await;
    let cfg = evsite::config::load_str(&toml, "written").unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(cfg.chargers.len(), 4);
    for e in &served.endpoints {
        let link = if e.device.index == METER {
            &cfg.meter.link
        } else {
            &cfg.chargers[e.device.index - 1].device.link
        };
        match (&e.link, link) {
            (
                Link::Tcp { port } | Link::GatewayTcp { port },
                CfgLink::Tcp { port: p, host, .. },
            )
            | (Link::GatewayRtu { port }, CfgLink::RtuOverTcp { port: p, host, .. }) => {
                assert_eq!((port, host.as_str()), (p, "127.0.0.1"))
            }
            (Link::Rtu { bus, path, .. }, CfgLink::Rtu { bus: b }) => {
                assert_eq!(bus, b);
                let line = cfg.buses.iter().find(|l| &l.name == b).unwrap();
                assert_eq!(&line.device, path);
            }
            other => panic!(
                "{} served and configured differently: {other:?}",
                e.device.id
            ),
        }
    }
    assert_eq!(cfg.chargers[1].phase_map, vec![1, 2, 0]);
    assert_eq!(cfg.storage.path, dir.path().join("data"));
}
