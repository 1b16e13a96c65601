//! Driver behaviour over an in-memory register bank (a stand-in for the transport only: the
//! register maps, codec and planning under test are the real ones).

use std::collections::HashMap;
use std::sync::Mutex;

use super::*;
use crate::devices::codec::encode_number;
use crate::devices::model::ChargeState;
use crate::devices::registry;
use crate::devices::regmap::Table;
use crate::devices::state::encode_state;
use crate::modbus::{ModbusError, Request};

#[derive(Default)]
struct Bank {
    regs: Mutex<HashMap<(Table, u16), u16>>,
    reads: Mutex<Vec<Request>>,
    writes: Mutex<Vec<Request>>,
    fail_reads: Mutex<Option<ModbusError>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Bank {
    fn put(&self, reg: &Register, words: &[u16]) {
        let mut regs = lock(&self.regs);
        for (i, w) in words.iter().enumerate() {
            regs.insert((reg.table, reg.addr + i as u16), *w);
        }
    }

    fn put_value(&self, reg: &Option<Register>, value: f64) {
        if let Some(r) = reg {
            self.put(r, &encode_number(r, value).unwrap());
        }
    }

    fn get(&self, reg: &Register) -> Vec<u16> {
        let regs = lock(&self.regs);
        (0..reg.words())
            .map(|i| regs.get(&(reg.table, reg.addr + i)).copied().unwrap_or(0))
            .collect()
    }

    fn apply(&self, op: &Request) {
        lock(&self.writes).push(op.clone());
        let mut regs = lock(&self.regs);
        for (i, v) in op.written().unwrap_or_default().into_iter().enumerate() {
            regs.insert((op.table(), op.addr() + i as u16), v);
        }
    }
}

impl RegisterIo for Bank {
    async fn call(&self, request: Request) -> Result<Vec<u16>, ModbusError> {
        let Request::Read { table, addr, count } = request else {
            self.apply(&request);
            return Ok(Vec::new());
        };
        if let Some(e) = lock(&self.fail_reads).clone() {
            return Err(e);
        }
        lock(&self.reads).push(request.clone());
        let regs = lock(&self.regs);
        // Unused addresses inside a coalesced read answer 0, as most devices do.
        Ok((0..count)
            .map(|i| regs.get(&(table, addr + i)).copied().unwrap_or(0))
            .collect())
    }
}

const V: [f64; 3] = [230.0, 231.0, 229.0];
const A: [f64; 3] = [16.0, 15.0, 14.0];
const W: f64 = 3680.0;
const WH: f64 = 1_234_500.0;

/// A bank presenting the same readings through any model's registers.
fn bank_for(spec: &ModelSpec, state: ChargeState) -> Bank {
    let bank = Bank::default();
    let r = &spec.readings;
    for i in 0..3 {
        bank.put_value(&r.voltage[i], V[i]);
        bank.put_value(&r.current[i], A[i]);
    }
    bank.put_value(&r.power, W);
    bank.put_value(&r.energy, WH);
    if let Some(c) = &spec.charger {
        for (reg, words) in encode_state(&c.state, state) {
            bank.put(&reg, &words);
        }
        bank.put_value(&c.applied_current, 16.0);
    }
    bank
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() <= 1e-6 * b.abs().max(1.0))
}

#[tokio::test]
async fn read_all_every_model_in_planned_reads() {
    for spec in registry::all() {
        let dev = ModbusDevice::new(spec, bank_for(spec, ChargeState::C));
        let snap = dev.read_all().await.unwrap();
        let r = &spec.readings;
        for i in 0..3 {
            assert_eq!(
                snap.voltage_v[i].is_some(),
                r.voltage[i].is_some(),
                "{}",
                spec.name
            );
            if r.voltage[i].is_some() {
                assert!(
                    close(snap.voltage_v[i], V[i]),
                    "{} V{i} {:?}",
                    spec.name,
                    snap
                );
            }
            assert_eq!(
                snap.current_a[i].is_some(),
                r.current[i].is_some(),
                "{}",
                spec.name
            );
            if r.current[i].is_some() {
                assert!(
                    close(snap.current_a[i], A[i]),
                    "{} A{i} {:?}",
                    spec.name,
                    snap
                );
            }
        }
        assert!(close(snap.power_w, W), "{} {:?}", spec.name, snap);
        assert!(close(snap.energy_wh, WH), "{} {:?}", spec.name, snap);
        match spec.charger {
            Some(c) => {
                assert_eq!(snap.state, Some(ChargeState::C), "{}", spec.name);
                assert_eq!(
                    snap.applied_current_a.is_some(),
                    c.applied_current.is_some()
                );
            }
            None => assert_eq!(snap.state, None),
        }
        let reads = lock(&dev.io().reads).clone();
        assert_eq!(reads, dev.plan(), "{} reads exactly its plan", spec.name);
    }
}

#[tokio::test]
async fn single_phase_meter_has_only_l1() {
    let spec = registry::find("eastron-sdm120").unwrap();
    let dev = ModbusDevice::new(spec, bank_for(spec, ChargeState::A));
    let snap = dev.read_all().await.unwrap();
    assert!(snap.current_a[0].is_some());
    assert_eq!(snap.current_a[1..], [None, None]);
    assert_eq!(dev.currents_a().await.unwrap()[1], None);
}

#[tokio::test]
async fn no_value_sentinel_is_none_not_error() {
    let spec = registry::find("bender-cc613").unwrap();
    let bank = bank_for(spec, ChargeState::B);
    bank.put(&spec.readings.power.unwrap(), &[0xFFFF, 0xFFFF]);
    let dev = ModbusDevice::new(spec, bank);
    let snap = dev.read_all().await.unwrap();
    assert_eq!(snap.power_w, None);
    assert_eq!(snap.state, Some(ChargeState::B));
    assert!(close(snap.current_a[0], 16.0));
    assert_eq!(
        dev.power_w().await,
        Err(DeviceError::NoValue { what: "power" })
    );
}

#[tokio::test]
async fn an_energy_counter_of_all_ones_is_no_value_on_every_model() {
    let mut integer = 0;
    for spec in registry::all() {
        let Some(reg) = spec.readings.energy else {
            continue;
        };
        let bank = bank_for(spec, ChargeState::C);
        bank.put(&reg, &vec![0xFFFF; usize::from(reg.words())]);
        let dev = ModbusDevice::new(spec, bank);
        let snap = dev.read_all().await.unwrap();
        let is_float = matches!(reg.dtype, DataType::F32 | DataType::F64);
        integer += usize::from(!is_float);
        assert!(
            snap.energy_wh
                .is_none_or(|wh| wh.is_finite() && wh < 1e6 && is_float),
            "{}: all-ones energy read as {:?}",
            spec.name,
            snap.energy_wh
        );
        if !is_float {
            assert_eq!(snap.energy_wh, None, "{}", spec.name);
            assert_eq!(
                dev.energy_wh().await,
                Err(DeviceError::NoValue { what: "energy" }),
                "{}",
                spec.name
            );
        }
        assert!(
            close(snap.power_w, W),
            "{}: the rest still reads",
            spec.name
        );
    }
    assert!(integer >= 5, "the built-in models count energy in integers");
}

#[tokio::test]
async fn link_failure_and_bad_state_are_errors() {
    let spec = registry::find("webasto-next").unwrap();
    let bank = bank_for(spec, ChargeState::C);
    let state_reg = state_registers(&spec.charger.unwrap().state)[0];
    bank.put(&state_reg, &[2]);
    let dev = ModbusDevice::new(spec, bank);
    assert!(matches!(
        dev.read_all().await,
        Err(DeviceError::BadState { .. })
    ));
    *lock(&dev.io().fail_reads) = Some(ModbusError::Timeout(Duration::from_millis(300)));
    assert!(matches!(
        dev.read_all().await,
        Err(DeviceError::Modbus(ModbusError::Timeout(_)))
    ));
}

#[tokio::test]
async fn every_charger_takes_16a_pauses_at_0_and_refuses_3a() {
    for spec in registry::all().iter().filter(|m| m.charger.is_some()) {
        let Some(c) = spec.charger else { continue };
        let dev = ModbusDevice::new(spec, bank_for(spec, ChargeState::B));
        dev.set_current_limit(16.0).await.unwrap();
        let back = decode_number(&c.setpoint, &dev.io().get(&c.setpoint)).unwrap();
        assert_eq!(back, Some(16.0), "{}", spec.name);
        if let Some(en) = c.enable {
            assert_eq!(dev.io().get(&en.reg), vec![en.on], "{} released", spec.name);
        }

        dev.set_current_limit(0.0).await.unwrap();
        match c.enable {
            Some(en) => assert_eq!(dev.io().get(&en.reg), vec![en.off], "{}", spec.name),
            None => assert_eq!(
                decode_number(&c.setpoint, &dev.io().get(&c.setpoint)).unwrap(),
                Some(0.0),
                "{}",
                spec.name
            ),
        }

        let before = lock(&dev.io().writes).len();
        assert!(matches!(
            dev.set_current_limit(3.0).await,
            Err(DeviceError::BelowMinimum { .. })
        ));
        assert_eq!(
            lock(&dev.io().writes).len(),
            before,
            "{} wrote nothing",
            spec.name
        );
    }
}

#[tokio::test]
async fn integer_setpoints_round_down() {
    let spec = registry::find("vestel-evc04").unwrap();
    let dev = ModbusDevice::new(spec, Bank::default());
    dev.set_current_limit(16.9).await.unwrap();
    assert_eq!(
        lock(&dev.io().writes).last(),
        Some(&Request::WriteSingle {
            addr: 5004,
            value: 16
        })
    );
    let abb = ModbusDevice::new(registry::find("abb-terra-ac").unwrap(), Bank::default());
    abb.set_current_limit(6.0).await.unwrap();
    assert_eq!(
        lock(&abb.io().writes).last(),
        Some(&Request::WriteMultiple {
            addr: 0x4100,
            values: vec![0x0000, 6000]
        })
    );
}

#[tokio::test]
async fn heartbeat_and_comms_timeout_writes() {
    let vestel = ModbusDevice::new(registry::find("vestel-evc04").unwrap(), Bank::default());
    vestel.heartbeat().await.unwrap();
    let timeout = vestel.default_comms_timeout().unwrap();
    vestel.configure_comms_timeout(timeout).await.unwrap();
    vestel.set_safe_current_a(6.0).await.unwrap();
    assert_eq!(
        *lock(&vestel.io().writes),
        vec![
            Request::WriteSingle {
                addr: 6000,
                value: 1
            },
            Request::WriteSingle {
                addr: 2002,
                value: timeout.as_secs() as u16
            },
            Request::WriteSingle {
                addr: 2000,
                value: 6
            },
        ]
    );
    // The alive register is written at a quarter of the timeout.
    assert_eq!(vestel.heartbeat_period().unwrap() * 4, timeout);

    let mennekes = ModbusDevice::new(
        registry::find("mennekes-amtron-compact").unwrap(),
        Bank::default(),
    );
    mennekes.heartbeat().await.unwrap();
    assert_eq!(
        lock(&mennekes.io().writes).last(),
        Some(&Request::WriteSingle {
            addr: 0x0D00,
            value: 0x55AA
        })
    );
}

#[tokio::test]
async fn missing_capabilities_are_unsupported() {
    let alfen = ModbusDevice::new(registry::find("alfen-eve").unwrap(), Bank::default());
    assert_eq!(
        alfen.heartbeat().await,
        Err(DeviceError::Unsupported("heartbeat"))
    );
    assert!(matches!(
        alfen.set_enabled(true).await,
        Err(DeviceError::Unsupported(_))
    ));
    // Alfen's safe current is read-only.
    assert!(matches!(
        alfen.set_safe_current_a(6.0).await,
        Err(DeviceError::Unsupported(_))
    ));
    let meter = ModbusDevice::new(registry::find("eastron-sdm630").unwrap(), Bank::default());
    assert!(matches!(
        meter.set_current_limit(16.0).await,
        Err(DeviceError::Unsupported(_))
    ));
    assert!(matches!(
        meter.charge_state().await,
        Err(DeviceError::Unsupported(_))
    ));
    let webasto = ModbusDevice::new(registry::find("webasto-next").unwrap(), Bank::default());
    assert!(matches!(
        webasto.voltages_v().await,
        Err(DeviceError::Unsupported("phase voltages"))
    ));
    assert!(lock(&alfen.io().writes).is_empty());
}

#[tokio::test]
async fn single_capability_reads() {
    let spec = registry::find("abb-terra-ac").unwrap();
    let dev = ModbusDevice::new(spec, bank_for(spec, ChargeState::C));
    assert_eq!(dev.charge_state().await.unwrap(), ChargeState::C);
    assert!(close(dev.energy_wh().await.ok(), WH));
    assert_eq!(dev.energy_scope(), EnergyScope::Session);
    let a = dev.currents_a().await.unwrap();
    assert!(close(a[2], 14.0));
    // The three currents come from one read.
    assert_eq!(
        lock(&dev.io().reads).last(),
        Some(&Request::Read {
            table: Table::Holding,
            addr: 0x4010,
            count: 6
        })
    );
}
