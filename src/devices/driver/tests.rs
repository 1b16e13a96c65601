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
    /// Reads that start at one of these addresses answer an exception: "illegal data
    /// address" (2), or `refuse_code` where set.
    refuse: Mutex<Vec<u16>>,
    refuse_code: Mutex<Option<u8>>,
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
        if lock(&self.refuse).contains(&addr) {
            let code = lock(&self.refuse_code).unwrap_or(0x02);
            return Err(ModbusError::Exception { code });
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
        // Charging (a vehicle connected): the id registers are read after the plan, in reads
        // of their own.
        let reads = lock(&dev.io().reads).clone();
        let planned = [dev.plan(), dev.id_plan()].concat();
        assert_eq!(reads, planned, "{} reads exactly its plan", spec.name);
        let has_ids = spec
            .charger
            .is_some_and(|c| c.id_tag.is_some() || c.ev_id.is_some());
        assert_eq!(dev.id_plan().is_empty(), !has_ids, "{}", spec.name);
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

/// The models that report a user's id, with a real-looking id in their register.
const ID_MODELS: [&str; 4] = [
    "phoenix-charx",
    "webasto-next",
    "bender-cc613",
    "vestel-evc04",
];

#[tokio::test]
async fn ids_are_read_while_connected_and_not_for_an_empty_bay() {
    for name in ID_MODELS {
        let spec = registry::find(name).unwrap();
        let c = spec.charger.unwrap();
        let bank = bank_for(spec, ChargeState::B);
        let tag = c.id_tag.unwrap();
        bank.put(
            &tag,
            &crate::devices::codec::encode_text(&tag, "04A1B2C3D4E5F6"),
        );
        if let Some(e) = c.ev_id {
            bank.put(
                &e.reg,
                &crate::devices::codec::encode_text(&e.reg, "0A1B2C3D4E5F"),
            );
            if let Some((flag, v)) = e.valid_when {
                bank.put(&flag, &[v]);
            }
        }
        let dev = ModbusDevice::new(spec, bank);
        let snap = dev.read_all().await.unwrap();
        assert_eq!(snap.id_tag.as_deref(), Some("04A1B2C3D4E5F6"), "{name}");
        assert_eq!(
            snap.ev_id.as_deref(),
            c.ev_id.map(|_| "0A1B2C3D4E5F"),
            "{name}"
        );
        // Unplugged: the stale id in the registers is not shown, and not even read.
        for (reg, words) in encode_state(&c.state, ChargeState::A) {
            dev.io().put(&reg, &words);
        }
        lock(&dev.io().reads).clear();
        let snap = dev.read_all().await.unwrap();
        assert_eq!((snap.id_tag, snap.ev_id), (None, None), "{name}");
        assert_eq!(lock(&dev.io().reads).clone(), dev.plan(), "{name}");
    }
}

#[tokio::test]
async fn bender_ev_id_only_when_its_flag_says_valid() {
    let spec = registry::find("bender-cc613").unwrap();
    let e = spec.charger.unwrap().ev_id.unwrap();
    let (flag, valid) = e.valid_when.unwrap();
    assert_eq!(
        (flag.addr, valid, e.reg.addr, e.reg.words()),
        (740, 1, 741, 6)
    );
    let bank = bank_for(spec, ChargeState::C);
    bank.put(
        &e.reg,
        &crate::devices::codec::encode_text(&e.reg, "0A1B2C3D4E5F"),
    );
    bank.put(&flag, &[0]);
    let dev = ModbusDevice::new(spec, bank);
    assert_eq!(dev.read_all().await.unwrap().ev_id, None);
    dev.io().put(&flag, &[1]);
    assert_eq!(
        dev.read_all().await.unwrap().ev_id.as_deref(),
        Some("0A1B2C3D4E5F")
    );
}

#[tokio::test]
async fn a_refused_id_read_is_no_id_and_the_readings_stand() {
    // Vestel firmware before 3.156 has no id register: an exception there, or zeros.
    let spec = registry::find("vestel-evc04").unwrap();
    let tag = spec.charger.unwrap().id_tag.unwrap();
    let bank = bank_for(spec, ChargeState::C);
    lock(&bank.refuse).push(tag.addr);
    let dev = ModbusDevice::new(spec, bank);
    let snap = dev.read_all().await.unwrap();
    assert_eq!(snap.id_tag, None);
    assert_eq!(snap.state, Some(ChargeState::C));
    assert!(close(snap.power_w, W));
    // "Illegal data address" means the firmware has no such register: not asked again.
    lock(&dev.io().reads).clear();
    let snap = dev.read_all().await.unwrap();
    assert_eq!(snap.id_tag, None);
    assert_eq!(lock(&dev.io().reads).clone(), dev.plan());
    // Zeros (firmware that has the register but no card was shown) are no id either.
    let bank = bank_for(spec, ChargeState::C);
    bank.put(&tag, &[0; 15]);
    let dev = ModbusDevice::new(spec, bank);
    assert_eq!(
        dev.read_all().await.unwrap().id_tag,
        None,
        "zeros are no id"
    );
    assert_eq!(lock(&dev.io().reads).len(), dev.plan().len() + 1);
}

#[tokio::test]
async fn a_busy_id_read_is_no_id_and_is_tried_again() {
    let spec = registry::find("webasto-next").unwrap();
    let tag = spec.charger.unwrap().id_tag.unwrap();
    let bank = bank_for(spec, ChargeState::C);
    bank.put(
        &tag,
        &crate::devices::codec::encode_text(&tag, "04A1B2C3D4E5F6"),
    );
    lock(&bank.refuse).push(tag.addr);
    *lock(&bank.refuse_code) = Some(0x06); // server device busy
    let dev = ModbusDevice::new(spec, bank);
    let snap = dev.read_all().await.unwrap();
    assert_eq!(snap.id_tag, None);
    assert_eq!(snap.state, Some(ChargeState::C));
    // Only "illegal data address" stops the reads: the register answers next time.
    lock(&dev.io().refuse).clear();
    assert_eq!(
        dev.read_all().await.unwrap().id_tag.as_deref(),
        Some("04A1B2C3D4E5F6")
    );
}

#[tokio::test]
async fn an_unprintable_id_is_none_and_counted() {
    let spec = registry::find("webasto-next").unwrap();
    let tag = spec.charger.unwrap().id_tag.unwrap();
    let bank = bank_for(spec, ChargeState::C);
    let mut words = vec![0u16; usize::from(tag.words())];
    words[0] = 0x3034;
    words[1] = 0x1B41; // ESC
    bank.put(&tag, &words);
    let dev = ModbusDevice::new(spec, bank);
    for _ in 0..3 {
        assert_eq!(dev.read_all().await.unwrap().id_tag, None);
    }
    assert_eq!(dev.bad_ids(), 3);
}
