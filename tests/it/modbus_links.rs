//! The Modbus links against a real Modbus server: TCP on loopback and RTU on a
//! pseudo-terminal, served by tokio-modbus's own server over a small register map per unit.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evsite::config::{Bus, Device, Link};
use evsite::devices::model::{DeviceKind, ModelSpec, Parity, Readings, Transport};
use evsite::devices::regmap::Table;
use evsite::modbus::{
    DeviceLink, Links, ModbusError, RegisterIo, RtuBus, RtuSettings, TcpConnector,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Instant};
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_serial::{SerialPort, SerialStream};

/// Guard against a hung test; never used to wait for something to happen.
const GUARD: Duration = Duration::from_secs(10);

static TEST_MODEL: ModelSpec = ModelSpec {
    name: "test-device",
    title: "Test device",
    kind: DeviceKind::Meter,
    transports: &[Transport::Tcp, Transport::Rtu],
    default_unit: 1,
    default_port: 502,
    serial: None,
    phases: 3,
    readings: Readings {
        voltage: [None; 3],
        current: [None; 3],
        power: None,
        energy: None,
    },
    charger: None,
    hex_addresses: false,
    confidence: "test",
};

// ---------------------------------------------------------------------------------------
// A tiny Modbus server: one register map per unit; units without a map never answer, as
// an absent device on a bus would not.

type Units = Arc<Mutex<HashMap<u8, HashMap<u16, u16>>>>;

fn units(maps: &[(u8, &[(u16, u16)])]) -> Units {
    let units = maps
        .iter()
        .map(|(unit, regs)| (*unit, regs.iter().copied().collect()))
        .collect();
    Arc::new(Mutex::new(units))
}

#[derive(Clone)]
struct Registers(Units);

impl Registers {
    fn answer(&self, req: SlaveRequest<'static>) -> Result<Option<Response>, ExceptionCode> {
        let mut units = self
            .0
            .lock()
            .map_err(|_| ExceptionCode::ServerDeviceFailure)?;
        let Some(regs) = units.get_mut(&req.slave) else {
            return Ok(None);
        };
        let read = |regs: &HashMap<u16, u16>, addr: u16, count: u16| {
            (addr..addr.saturating_add(count))
                .map(|a| regs.get(&a).copied())
                .collect::<Option<Vec<u16>>>()
                .ok_or(ExceptionCode::IllegalDataAddress)
        };
        let response = match req.request {
            Request::ReadHoldingRegisters(addr, count) => {
                Response::ReadHoldingRegisters(read(regs, addr, count)?)
            }
            Request::ReadInputRegisters(addr, count) => {
                Response::ReadInputRegisters(read(regs, addr, count)?)
            }
            Request::ReadCoils(addr, count) => Response::ReadCoils(
                read(regs, addr, count)?
                    .into_iter()
                    .map(|w| w != 0)
                    .collect(),
            ),
            Request::WriteSingleRegister(addr, value) => {
                let slot = regs
                    .get_mut(&addr)
                    .ok_or(ExceptionCode::IllegalDataAddress)?;
                *slot = value;
                Response::WriteSingleRegister(addr, value)
            }
            Request::WriteMultipleRegisters(addr, values) => {
                read(regs, addr, values.len() as u16)?;
                for (a, v) in (addr..).zip(values.iter()) {
                    regs.insert(a, *v);
                }
                Response::WriteMultipleRegisters(addr, values.len() as u16)
            }
            Request::WriteSingleCoil(addr, on) => {
                let slot = regs
                    .get_mut(&addr)
                    .ok_or(ExceptionCode::IllegalDataAddress)?;
                *slot = u16::from(on);
                Response::WriteSingleCoil(addr, on)
            }
            _ => return Err(ExceptionCode::IllegalFunction),
        };
        Ok(Some(response))
    }
}

impl tokio_modbus::server::Service for Registers {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = std::future::Ready<Result<Option<Response>, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        std::future::ready(self.answer(req))
    }
}

/// A Modbus TCP server on 127.0.0.1:0 that counts accepted connections and can close them.
struct TcpServer {
    port: u16,
    accepts: Arc<AtomicUsize>,
    /// Duplicates of the accepted sockets, to shut them down from the test.
    open: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl TcpServer {
    async fn start(units: Units) -> io::Result<TcpServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let accepts = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (accepts2, open2) = (accepts.clone(), open.clone());
        let on_connected = move |stream: TcpStream, _peer: SocketAddr| {
            let service = Registers(units.clone());
            let accepts = accepts2.clone();
            let open = open2.clone();
            async move {
                accepts.fetch_add(1, Ordering::SeqCst);
                let std_stream = stream.into_std()?;
                let dup = std_stream.try_clone()?;
                open.lock()
                    .map_err(|_| io::Error::other("poisoned"))?
                    .push(dup);
                Ok(Some((service, TcpStream::from_std(std_stream)?)))
            }
        };
        let server = tokio_modbus::server::tcp::Server::new(listener);
        tokio::spawn(async move { server.serve(&on_connected, |_err| {}).await });
        Ok(TcpServer {
            port,
            accepts,
            open,
        })
    }

    fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    /// Close every accepted connection, as a device closing idle connections does.
    fn close_connections(&self) {
        let mut open = self.open.lock().unwrap();
        for socket in open.drain(..) {
            socket.shutdown(Shutdown::Both).unwrap();
        }
    }
}

fn tcp_device(links: &Links, port: u16, unit: u8, timeout: Duration) -> DeviceLink {
    let dev = Device {
        model: &TEST_MODEL,
        link: Link::Tcp {
            host: "127.0.0.1".into(),
            port,
            timeout,
        },
        unit,
    };
    links.device(&dev, &[]).unwrap()
}

fn tcp_links() -> Links {
    Links::new(Arc::new(TcpConnector))
}

// ---------------------------------------------------------------------------------------
// TCP

#[tokio::test]
async fn tcp_reads_and_writes_every_table() {
    let server = TcpServer::start(units(&[(1, &[(100, 11), (101, 12), (102, 13), (200, 0)])]))
        .await
        .unwrap();
    let links = tcp_links();
    let dev = tcp_device(&links, server.port, 1, Duration::from_secs(1));
    assert_eq!(dev.label(), format!("tcp 127.0.0.1:{} unit 1", server.port));

    timeout(GUARD, async {
        assert_eq!(dev.read(Table::Holding, 100, 3).await, Ok(vec![11, 12, 13]));
        assert_eq!(dev.read(Table::Input, 101, 2).await, Ok(vec![12, 13]));

        dev.write_single(100, 7).await.unwrap();
        dev.write_multiple(101, &[21, 22]).await.unwrap();
        assert_eq!(dev.read(Table::Holding, 100, 3).await, Ok(vec![7, 21, 22]));

        assert_eq!(dev.read(Table::Coil, 200, 1).await, Ok(vec![0]));
        dev.write_coil(200, true).await.unwrap();
        assert_eq!(dev.read(Table::Coil, 200, 1).await, Ok(vec![1]));
    })
    .await
    .unwrap();

    let stats = dev.stats();
    assert_eq!(stats.requests, 8);
    assert_eq!(stats.ok, 8);
    assert_eq!(server.accepts(), 1);
}

#[tokio::test]
async fn two_units_share_one_connection() {
    let server = TcpServer::start(units(&[(1, &[(0, 1)]), (2, &[(0, 2)])]))
        .await
        .unwrap();
    let links = tcp_links();
    let a = tcp_device(&links, server.port, 1, Duration::from_secs(1));
    let b = tcp_device(&links, server.port, 2, Duration::from_secs(1));

    timeout(GUARD, async {
        for _ in 0..5 {
            let (ra, rb) = tokio::join!(a.read(Table::Holding, 0, 1), b.read(Table::Holding, 0, 1));
            assert_eq!(ra, Ok(vec![1]));
            assert_eq!(rb, Ok(vec![2]));
        }
    })
    .await
    .unwrap();

    assert_eq!(server.accepts(), 1);
    assert_eq!(a.stats().ok, 5);
    assert_eq!(b.stats().ok, 5);
}

#[tokio::test]
async fn reconnects_when_the_device_closes_the_connection() {
    let server = TcpServer::start(units(&[(1, &[(0, 42)])])).await.unwrap();
    let links = tcp_links();
    let dev = tcp_device(&links, server.port, 1, Duration::from_secs(1));

    timeout(GUARD, async {
        assert_eq!(dev.read(Table::Holding, 0, 1).await, Ok(vec![42]));
        server.close_connections();
        assert_eq!(dev.read(Table::Holding, 0, 1).await, Ok(vec![42]));
    })
    .await
    .unwrap();

    let stats = dev.stats();
    assert_eq!(stats.reconnects, 1);
    assert_eq!(stats.ok, 2);
    assert_eq!(stats.link_errors, 0);
    assert_eq!(server.accepts(), 2);
}

#[tokio::test]
async fn a_silent_unit_times_out_and_the_connection_recovers() {
    // Unit 9 has no register map: the server never answers it.
    let server = TcpServer::start(units(&[(1, &[(0, 42)])])).await.unwrap();
    let links = tcp_links();
    let limit = Duration::from_millis(200);
    let silent = tcp_device(&links, server.port, 9, limit);
    let alive = tcp_device(&links, server.port, 1, limit);

    let started = Instant::now();
    let result = timeout(GUARD, silent.read(Table::Holding, 0, 1))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(result, Err(ModbusError::Timeout(limit)));
    assert!(took >= limit, "gave up after {took:?}");
    assert!(took < limit + Duration::from_secs(1), "took {took:?}");
    assert_eq!(silent.stats().timeouts, 1);

    let answer = timeout(GUARD, alive.read(Table::Holding, 0, 1))
        .await
        .unwrap();
    assert_eq!(answer, Ok(vec![42]));
    // The connection was reset after the timeout, so a late answer cannot be misread.
    assert_eq!(server.accepts(), 2);
}

#[tokio::test]
async fn an_illegal_address_surfaces_the_exception_code() {
    let server = TcpServer::start(units(&[(1, &[(0, 42)])])).await.unwrap();
    let links = tcp_links();
    let dev = tcp_device(&links, server.port, 1, Duration::from_secs(1));

    timeout(GUARD, async {
        assert_eq!(
            dev.read(Table::Holding, 500, 2).await,
            Err(ModbusError::Exception { code: 2 })
        );
        // An exception is an answer: the connection stays up.
        assert_eq!(dev.read(Table::Holding, 0, 1).await, Ok(vec![42]));
    })
    .await
    .unwrap();

    let stats = dev.stats();
    assert_eq!(stats.exceptions, 1);
    assert_eq!(stats.ok, 1);
    assert_eq!(server.accepts(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_a_link_error_and_later_requests_fail_fast() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let links = tcp_links();
    let limit = Duration::from_secs(2);
    let dev = tcp_device(&links, port, 1, limit);

    let first = timeout(GUARD, dev.read(Table::Holding, 0, 1))
        .await
        .unwrap();
    assert!(matches!(first, Err(ModbusError::Link(_))), "{first:?}");
    // Within the backoff the request does not even try to connect.
    let started = Instant::now();
    let second = timeout(GUARD, dev.read(Table::Holding, 0, 1))
        .await
        .unwrap();
    assert!(
        matches!(&second, Err(ModbusError::Link(m)) if m.contains("next attempt")),
        "{second:?}"
    );
    assert!(started.elapsed() < limit);
    assert_eq!(dev.stats().link_errors, 2);
}

// ---------------------------------------------------------------------------------------
// RTU on a pseudo-terminal

/// A pty pair: the server end, and the path of the end the bus opens (kept open by
/// `_client_end` so the server end does not see a hang-up before the bus opens it).
fn pty() -> (SerialStream, PathBuf, SerialStream) {
    let (server_end, client_end) = SerialStream::pair().unwrap();
    let path = PathBuf::from(client_end.name().unwrap());
    (server_end, path, client_end)
}

fn bus(path: PathBuf, timeout: Duration) -> Bus {
    Bus {
        name: "rs485-1".into(),
        device: path,
        baud: 9600,
        parity: Parity::None,
        stop_bits: 1,
        timeout,
        frame_gap: Duration::from_millis(5),
    }
}

fn rtu_device(links: &Links, buses: &[Bus], unit: u8) -> DeviceLink {
    let dev = Device {
        model: &TEST_MODEL,
        link: Link::Rtu {
            bus: "rs485-1".into(),
        },
        unit,
    };
    links.device(&dev, buses).unwrap()
}

#[tokio::test]
async fn two_rtu_devices_share_a_line_opened_by_path() {
    let (server_end, path, _client_end) = pty();
    let regs = Registers(units(&[
        (1, &[(0, 101), (1, 102)]),
        (3, &[(0, 301), (1, 302)]),
    ]));
    tokio::spawn(tokio_modbus::server::rtu::Server::new(server_end).serve_forever(regs));

    let buses = [bus(path, Duration::from_secs(1))];
    let links = tcp_links();
    let one = rtu_device(&links, &buses, 1);
    let three = rtu_device(&links, &buses, 3);
    assert_eq!(three.label(), "rtu rs485-1 unit 3");

    let requests = (0..10).map(|i| {
        let dev = if i % 2 == 0 {
            one.clone()
        } else {
            three.clone()
        };
        async move { (dev.unit(), dev.read(Table::Holding, 0, 2).await) }
    });
    let answers = timeout(GUARD, futures::future::join_all(requests))
        .await
        .unwrap();
    for (unit, answer) in answers {
        let base = u16::from(unit) * 100;
        assert_eq!(answer, Ok(vec![base + 1, base + 2]), "unit {unit}");
    }

    timeout(GUARD, three.write_single(1, 333))
        .await
        .unwrap()
        .unwrap();
    let after = timeout(GUARD, three.read(Table::Holding, 1, 1))
        .await
        .unwrap();
    assert_eq!(after, Ok(vec![333]));

    assert_eq!(one.stats().ok, 5);
    assert_eq!(three.stats().ok, 7);
}

#[tokio::test]
async fn a_garbled_rtu_answer_is_a_bad_frame_and_the_line_goes_on() {
    let (mut server_end, path, _client_end) = pty();
    let regs = Registers(units(&[(1, &[(0, 42)])]));
    tokio::spawn(async move {
        // Answer the first request (read 1 holding register: 8 bytes) with a frame of the
        // right shape and a wrong CRC, then serve properly.
        let mut request = [0u8; 8];
        server_end.read_exact(&mut request).await?;
        server_end
            .write_all(&[0x01, 0x03, 0x02, 0x00, 0x2A, 0xDE, 0xAD])
            .await?;
        tokio_modbus::server::rtu::Server::new(server_end)
            .serve_forever(regs)
            .await
    });

    let limit = Duration::from_millis(300);
    let port =
        tokio_serial::SerialStream::open(&tokio_serial::new(path.to_string_lossy(), 9600)).unwrap();
    let settings = RtuSettings {
        name: "rs485-1".into(),
        timeout: limit,
        frame_gap: Duration::from_millis(5),
    };
    let dev = DeviceLink::rtu(RtuBus::from_stream(port, settings), 1);

    let first = timeout(GUARD, dev.read(Table::Holding, 0, 1))
        .await
        .unwrap();
    assert!(matches!(first, Err(ModbusError::BadFrame(_))), "{first:?}");
    let second = timeout(GUARD, dev.read(Table::Holding, 0, 1))
        .await
        .unwrap();
    assert_eq!(second, Ok(vec![42]));

    let stats = dev.stats();
    assert_eq!(stats.bad_frames, 1);
    assert_eq!(stats.timeouts, 0);
    assert_eq!(stats.ok, 1);
}

#[tokio::test]
async fn a_missing_serial_device_is_a_link_error() {
    let dir = tempfile::tempdir().unwrap();
    let buses = [bus(dir.path().join("ttyUSB9"), Duration::from_millis(200))];
    let links = tcp_links();
    let dev = rtu_device(&links, &buses, 1);

    let first = timeout(GUARD, dev.read(Table::Holding, 0, 1))
        .await
        .unwrap();
    assert!(
        matches!(&first, Err(ModbusError::Link(m)) if m.contains("ttyUSB9")),
        "{first:?}"
    );
    assert_eq!(dev.stats().link_errors, 1);
}
