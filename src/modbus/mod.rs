//! Modbus links: one shared connection per TCP endpoint, one actor per RS-485 line.
