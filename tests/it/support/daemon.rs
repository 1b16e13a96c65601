//! The real `evsite run` binary for tests: started with a config, its log lines (stdout and
//! stderr) searchable whenever they came, signalled and awaited; and bounded polling of a
//! simulated site. The API bench (benches/api.rs) includes it too.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use evsite::simulator::write_config::write_config;
use evsite::simulator::{serve_site, spawn_stepper, Scenario, ServedSite, SharedSite, SiteModel};

/// The daemon with its log lines (stdout and stderr) on a channel.
pub struct Daemon {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    pub fn start(config: &Path) -> Daemon {
        Daemon::start_with(config, &[])
    }

    /// As [`Daemon::start`], with `env` added to its environment (a preloaded library).
    pub fn start_with(config: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_evsite"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("evsite starts");
        let (tx, lines) = mpsc::unbounded_channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        for stream in [
            Box::new(out) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(err),
        ] {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(stream).lines();
                while let Ok(Some(line)) = r.next_line().await {
                    let _ = tx.send(line);
                }
            });
        }
        Daemon {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for a log line containing every one of `words`, whenever it came;
    /// returns it.
    pub async fn line_with(&mut self, words: &[&str]) -> String {
        let matches = |line: &str| words.iter().all(|w| line.contains(w));
        if let Some(line) = self.seen.iter().find(|l| matches(l)) {
            return line.clone();
        }
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if matches(&line) {
                    return line;
                }
            }
            panic!("the daemon's output ended before a line with {words:?}");
        };
        tokio::time::timeout(Duration::from_secs(90), wait)
            .await
            .unwrap_or_else(|_| panic!("no log line with {words:?} within 90 s"))
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("a pid");
        let ok = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill {sig}");
    }

    /// Waits for the daemon to exit; returns every line it printed and its exit status.
    pub async fn all_lines(mut self) -> (Vec<String>, std::process::ExitStatus) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the daemon exits within 30 s")
            .expect("wait");
        // The readers end at the pipes' end, closing the channel.
        while let Ok(Some(line)) =
            tokio::time::timeout(Duration::from_secs(10), self.lines.recv()).await
        {
            self.seen.push(line);
        }
        (self.seen, status)
    }

    pub async fn exit(mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the daemon exits within 30 s")
            .expect("wait")
    }
}

/// The value of `key=` in a structured log line.
pub fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let at = line
        .find(&format!("{key}="))
        .unwrap_or_else(|| panic!("no {key} in {line}"));
    line[at + key.len() + 1..]
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_matches('"')
}

/// Polls the site (bounded) until `done` holds.
pub async fn until(site: &SharedSite, what: &str, done: impl Fn(&SiteModel) -> bool) {
    let wait = async {
        loop {
            if done(&site.lock().expect("site lock")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// A real-time test site: 63 A per phase, 4 A of base load, the meter on RTU, and for each
/// `(id, model, phase_map, depart_s)` a 3-phase 16 A TCP charger with a car that arrives at
/// 2 s and leaves at `depart_s`.
pub fn site_scenario(site_id: &str, start: &str, chargers: &[(&str, &str, &str, u32)]) -> Scenario {
    let mut text = format!(
        "name = \"{site_id}\"\nseed = 5\nduration_s = 3600\nstart = \"{start}\"\n\
         [site]\nid = \"{site_id}\"\ngrid_limit_a = 63.0\nphases = 3\nvoltage_v = 230.0\n\
         margin_a = 1.0\nfailsafe_current_a = 6.0\n[base_load]\npoints = [[0, 4, 4, 4]]\n\
         [meter]\nmodel = \"eastron-sdm630\"\ntransport = \"rtu\"\n"
    );
    for (id, model, phase_map, _) in chargers {
        text.push_str(&format!(
            "[[charger]]\nid = \"{id}\"\nmodel = \"{model}\"\ntransport = \"tcp\"\nphases = 3\n\
             phase_map = [{phase_map}]\nmin_current_a = 6.0\nmax_current_a = 16.0\n"
        ));
    }
    for (id, _, _, depart) in chargers {
        text.push_str(&format!(
            "[[vehicle]]\ncharger = \"{id}\"\narrive_s = 2\ndepart_s = {depart}\n\
             capacity_kwh = 100\nsoc_start = 0.2\nsoc_target = 1.0\nmax_current_a = 16\n\
             phases = 3\nresponse_delay_s = 1\ntaper_from_soc = 1.0\n"
        ));
    }
    Scenario::parse(&text, "test site").expect("test scenario parses")
}

/// A scenario's site served on loopback and stepped in real time (`speed` 1: a register is
/// judged against what a charger could deliver in the time that passed), with an evsite
/// config for it in a temporary directory.
pub struct Served {
    pub site: SharedSite,
    pub config: std::path::PathBuf,
    pub dir: tempfile::TempDir,
    _served: ServedSite,
    _stepper: tokio::task::JoinHandle<()>,
}

impl Served {
    pub async fn start(scenario: &Scenario) -> Served {
        let site = SiteModel::from_registry(scenario)
            .expect("site")
            .into_shared();
        let served = serve_site(site.clone()).await.expect("served");
        let stepper = spawn_stepper(site.clone(), 1.0);
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("evsite.toml");
        {
            let model = site.lock().expect("site lock");
            write_config(&config, &model, &served.endpoints, dir.path()).expect("config written");
        }
        Served {
            site,
            config,
            dir,
            _served: served,
            _stepper: stepper,
        }
    }

    /// Appends `text` (a TOML section) to the config.
    pub fn add_config(&self, text: &str) {
        let mut all = std::fs::read_to_string(&self.config).expect("config read");
        all.push_str(text);
        std::fs::write(&self.config, all).expect("config written");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self._stepper.abort();
    }
}
