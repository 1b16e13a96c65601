//! Read planning: coalesce a model's registers into as few Modbus reads as possible, because
//! on a shared RS-485 line every request costs a round trip of tens of milliseconds.

use super::model::ModelSpec;
use super::regmap::{Register, Table};
use super::state::state_registers;
use crate::modbus::request::{Request, MAX_READ};

/// Largest register span one read may cover (the Modbus limit for FC3/FC4).
pub const MAX_SPAN: u16 = MAX_READ;
/// Largest hole between two registers still bridged by one read: reading a few unused words
/// is cheaper than a second round trip, but a long stretch of undefined registers is more
/// likely to be refused by the device.
pub const MAX_GAP: u16 = 40;

/// Everything `read_all` reads for a model: readings, state registers, applied current.
pub fn snapshot_registers(spec: &ModelSpec) -> Vec<Register> {
    let r = &spec.readings;
    let mut regs: Vec<Register> = r
        .voltage
        .iter()
        .chain(r.current.iter())
        .chain([&r.power, &r.energy])
        .flatten()
        .copied()
        .collect();
    if let Some(c) = &spec.charger {
        regs.extend(state_registers(&c.state));
        regs.extend(c.applied_current);
    }
    regs
}

/// Group registers into reads ([`Request::Read`]): same table, sorted by address, a block
/// grows while its span stays within [`MAX_SPAN`] and the hole before the next register
/// within [`MAX_GAP`].
pub fn plan_registers(regs: &[Register]) -> Vec<Request> {
    let mut sorted: Vec<(Table, u16, u16)> =
        regs.iter().map(|r| (r.table, r.addr, r.words())).collect();
    sorted.sort_by_key(|&(t, a, _)| (table_rank(t), a));
    let mut blocks: Vec<Request> = Vec::new();
    for (table, addr, words) in sorted {
        let end = u32::from(addr) + u32::from(words);
        if let Some(Request::Read {
            table: b_table,
            addr: b_addr,
            count: b_count,
        }) = blocks.last_mut()
        {
            let b_end = u32::from(*b_addr) + u32::from(*b_count);
            let fits = *b_table == table
                && end - u32::from(*b_addr) <= u32::from(MAX_SPAN)
                && u32::from(addr) <= b_end + u32::from(MAX_GAP);
            if fits {
                // Overlapping or repeated registers only extend the block when they reach
                // further.
                *b_count = (end.max(b_end) - u32::from(*b_addr)) as u16;
                continue;
            }
        }
        blocks.push(Request::Read {
            table,
            addr,
            count: words,
        });
    }
    blocks
}

fn table_rank(t: Table) -> u8 {
    match t {
        Table::Holding => 0,
        Table::Input => 1,
        Table::Coil => 2,
    }
}

/// The reads `read_all` issues for a model.
pub fn plan_reads(spec: &ModelSpec) -> Vec<Request> {
    plan_registers(&snapshot_registers(spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::registry;
    use crate::devices::regmap::DataType;

    fn plan(name: &str) -> Vec<Request> {
        plan_reads(registry::find(name).unwrap())
    }

    #[test]
    fn sdm630_is_one_read() {
        // V/A end at 0x0C, W starts 40 words later at 0x34 (the largest gap still bridged),
        // energy at 0x48 ends the block at 0x4A.
        assert_eq!(
            plan("eastron-sdm630"),
            vec![Request::Read {
                table: Table::Input,
                addr: 0x00,
                count: 0x4A
            }]
        );
    }

    #[test]
    fn abb_terra_is_one_read() {
        assert_eq!(
            plan("abb-terra-ac"),
            vec![Request::Read {
                table: Table::Holding,
                addr: 0x400C,
                count: 0x14
            }]
        );
    }

    #[test]
    fn gaps_and_tables_split() {
        // Bender: state 122 is 90 words before the meter block at 212.
        assert_eq!(
            plan("bender-cc613"),
            vec![
                Request::Read {
                    table: Table::Holding,
                    addr: 122,
                    count: 1
                },
                Request::Read {
                    table: Table::Holding,
                    addr: 212,
                    count: 16
                },
            ]
        );
        // Phoenix EV-ETH: inputs 100–121 together; energy is a holding register.
        assert_eq!(
            plan("phoenix-ev-eth"),
            vec![
                Request::Read {
                    table: Table::Holding,
                    addr: 904,
                    count: 2
                },
                Request::Read {
                    table: Table::Input,
                    addr: 100,
                    count: 22
                },
            ]
        );
    }

    #[test]
    fn span_limit_splits_long_runs() {
        let regs: Vec<Register> = (0..70)
            .map(|i| Register::input(i * 2, DataType::F32))
            .collect();
        let blocks = plan_registers(&regs);
        assert_eq!(blocks.len(), 2);
        assert!(blocks.iter().all(|b| b.count() <= MAX_SPAN));
        assert_eq!(blocks[0].count() + blocks[1].count(), 140);
    }

    #[test]
    fn every_model_plan_covers_every_register_within_limits() {
        for m in registry::all() {
            let blocks = plan_reads(m);
            for b in &blocks {
                assert!(b.count() <= MAX_SPAN, "{}", m.name);
            }
            for reg in snapshot_registers(m) {
                let covering = blocks
                    .iter()
                    .filter(|b| b.slice(&reg, &vec![0; usize::from(b.count())]).is_some())
                    .count();
                assert_eq!(covering, 1, "{} register {}", m.name, reg.addr);
            }
        }
    }
}
