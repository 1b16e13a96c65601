//! A real mosquitto for tests: started on a free loopback port with a generated config, waited
//! for until its port accepts, stopped and restarted on the same port, killed on drop. And a
//! subscriber (a real MQTT client) that collects what the broker delivers.
//!
//! The drain bench (benches/drain.rs) includes it too.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How the listener is set up.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// `cafile`, `certfile`, `keyfile`: a TLS listener.
    pub tls: Option<TlsFiles>,
    /// Require a client certificate signed by the CA (mutual TLS).
    pub require_certificate: bool,
    /// `mosquitto_passwd` file: no anonymous clients.
    pub password_file: Option<PathBuf>,
    /// Keep sessions and retained messages across a restart (saved on a clean stop).
    pub persistence: bool,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct Mosquitto {
    dir: tempfile::TempDir,
    conf: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// mosquitto lives in /usr/sbin on Debian, which is not on every PATH.
pub fn binary(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

/// A port the kernel had free just now (bind 127.0.0.1:0).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl Mosquitto {
    pub async fn start(setup: Setup) -> Mosquitto {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut conf = format!(
            "listener {port} 127.0.0.1\n\
             max_queued_messages 0\n\
             max_inflight_messages 0\n\
             log_dest file {log}\n\
             log_type error\nlog_type warning\nlog_type notice\nlog_type information\n",
            log = dir.path().join("mosquitto.log").display()
        );
        // Run as whoever runs the tests (as root mosquitto would switch to its own user and
        // lose access to the temporary files).
        conf.push_str("user root\n");
        match &setup.password_file {
            Some(p) => conf.push_str(&format!(
                "allow_anonymous false\npassword_file {}\n",
                p.display()
            )),
            None => conf.push_str("allow_anonymous true\n"),
        }
        if let Some(tls) = &setup.tls {
            conf.push_str(&format!(
                "cafile {}\ncertfile {}\nkeyfile {}\n",
                tls.ca.display(),
                tls.cert.display(),
                tls.key.display()
            ));
            if setup.require_certificate {
                conf.push_str("require_certificate true\n");
            }
        }
        if setup.persistence {
            conf.push_str(&format!(
                "persistence true\npersistence_location {}/\nautosave_interval 0\n",
                dir.path().display()
            ));
        }
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).expect("write mosquitto.conf");
        let mut m = Mosquitto {
            dir,
            conf: conf_path,
            port,
            child: None,
        };
        m.launch().await;
        m
    }

    async fn launch(&mut self) {
        let child = Command::new(binary("mosquitto"))
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto (apt-get install mosquitto)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("mosquitto exited: {status}; log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A clean stop (SIGTERM: persistence is saved, connections close), waited for.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Starts again on the same port with the same config.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One message as delivered.
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Msg {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).expect("JSON payload")
    }
}

/// A subscriber collecting what the broker delivers; it subscribes again on every
/// (re)connection and, with `persistent`, keeps its session across its own disconnects.
pub struct Subscriber {
    pub client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Msg>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    pub async fn connect(port: u16, client_id: &str, topics: &[&str], persistent: bool) -> Self {
        let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
        o.set_clean_session(!persistent);
        o.set_keep_alive(Duration::from_secs(5));
        o.set_max_packet_size(1 << 20, 1 << 20);
        Self::with_options(o, topics).await
    }

    /// Connects with `o` and returns once every topic is subscribed.
    pub async fn with_options(o: MqttOptions, topics: &[&str]) -> Self {
        let (client, mut eventloop) = AsyncClient::new(o, 1000);
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed_rx) = mpsc::unbounded_channel();
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let count = topics.len();
        let sub_client = client.clone();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for t in &topics {
                            let _ = sub_client.try_subscribe(t.clone(), QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(Msg {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        for _ in 0..count {
            tokio::time::timeout(Duration::from_secs(10), subscribed_rx.recv())
                .await
                .expect("subscriber got no SUBACK")
                .expect("subscriber task ended");
        }
        Subscriber { client, rx, task }
    }

    /// The next message within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Msg> {
        tokio::time::timeout(wait, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Messages until `done` says enough or `wait` has passed since the start.
    pub async fn collect_until(
        &mut self,
        wait: Duration,
        mut done: impl FnMut(&[Msg]) -> bool,
    ) -> Vec<Msg> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        while !done(&got) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) => got.push(m),
                _ => break,
            }
        }
        got
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A password file made with `mosquitto_passwd -b -c`.
pub fn password_file(dir: &Path, user: &str, password: &str) -> PathBuf {
    let path = dir.join("passwd");
    let status = Command::new(binary("mosquitto_passwd"))
        .arg("-b")
        .arg("-c")
        .arg(&path)
        .arg(user)
        .arg(password)
        .status()
        .expect("run mosquitto_passwd");
    assert!(status.success(), "mosquitto_passwd failed");
    path
}
