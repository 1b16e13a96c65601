//! Read planning: coalesce a model's registers into as few Modbus reads as possible, because
//! on a shared RS-485 line every request costs a round trip of tens of milliseconds.

use super::model::ModelSpec;
use super::regmap::{Register, Table};
use super::state::state_registers;

/// Largest register span one read may cover (the Modbus limit for FC3/FC4).
pub const MAX_SPAN: u16 = 125;
/// Largest hole between two registers still bridged by one read: reading a few unused words
/// is cheaper than a second round trip, but a long stretch of undefined registers is more
/// likely to be refused by the device.
pub const MAX_GAP: u16 = 40;

/// One read request: `count` words from `addr` in `table`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReadBlock {
    pub table: Table,
    pub addr: u16,
    pub count: u16,
}

impl ReadBlock {
    /// The words of `reg` within this block's answer, if the block covers it.
    pub fn slice<'a>(&self, reg: &Register, words: &'a [u16]) -> Option<&'a [u16]> {
        if reg.table != self.table || reg.addr < self.addr {
            return None;
        }
        let start = usize::from(reg.addr - self.addr);
        words.get(start..start + usize::from(reg.words()))
    }
}

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

/// Group registers into reads: same table, sorted by address, a block grows while its span
/// stays within [`MAX_SPAN`] and the hole before the next register within [`MAX_GAP`].
pub fn plan_registers(regs: &[Register]) -> Vec<ReadBlock> {
    let mut sorted: Vec<(Table, u16, u16)> =
        regs.iter().map(|r| (r.table, r.addr, r.words())).collect();
    sorted.sort_by_key(|&(t, a, _)| (table_rank(t), a));
    let mut blocks: Vec<ReadBlock> = Vec::new();
    for (table, addr, words) in sorted {
        let end = u32::from(addr) + u32::from(words);
        if let Some(b) = blocks.last_mut() {
            let b_end = u32::from(b.addr) + u32::from(b.count);
            let fits = b.table == table
                && end - u32::from(b.addr) <= u32::from(MAX_SPAN)
                && u32::from(addr) <= b_end + u32::from(MAX_GAP);
            if fits {
                // Overlapping or repeated registers only extend the block when they reach
                // further.
                b.count = (end.max(b_end) - u32::from(b.addr)) as u16;
                continue;
            }
        }
        blocks.push(ReadBlock {
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
pub fn plan_reads(spec: &ModelSpec) -> Vec<ReadBlock> {
    plan_registers(&snapshot_registers(spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::registry;
    use crate::devices::regmap::DataType;

    fn plan(name: &str) -> Vec<ReadBlock> {
        plan_reads(registry::find(name).unwrap())
    }

    #[test]
    fn sdm630_is_one_read() {
        // V/A end at 0x0C, W starts 40 words later at 0x34 (the largest gap still bridged),
        // energy at 0x48 ends the block at 0x4A.
        assert_eq!(
            plan("eastron-sdm630"),
            vec![ReadBlock {
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
            vec![ReadBlock {
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
                ReadBlock {
                    table: Table::Holding,
                    addr: 122,
                    count: 1
                },
                ReadBlock {
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
                ReadBlock {
                    table: Table::Holding,
                    addr: 904,
                    count: 2
                },
                ReadBlock {
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
        assert!(blocks.iter().all(|b| b.count <= MAX_SPAN));
        assert_eq!(blocks[0].count + blocks[1].count, 140);
    }

    #[test]
    fn every_model_plan_covers_every_register_within_limits() {
        for m in registry::all() {
            let blocks = plan_reads(m);
            for b in &blocks {
                assert!(b.count <= MAX_SPAN, "{}", m.name);
            }
            for reg in snapshot_registers(m) {
                let covering = blocks
                    .iter()
                    .filter(|b| b.slice(&reg, &vec![0; usize::from(b.count)]).is_some())
                    .count();
                assert_eq!(covering, 1, "{} register {}", m.name, reg.addr);
            }
        }
    }
}
