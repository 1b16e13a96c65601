//! The real `evsite run` binary for tests: started with a config, its log lines (stdout and
//! stderr) searchable whenever they came, signalled and awaited; and bounded polling of a
//! simulated site. Include with `#[path = "support/daemon.rs"] mod daemon;`.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use evsite::simulator::{SharedSite, SiteModel};

/// The daemon with its log lines (stdout and stderr) on a channel.
pub struct Daemon {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    pub fn start(config: &Path) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_evsite"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
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
