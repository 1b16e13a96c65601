//! SIGHUP: reload the config file without a restart. The new file is validated first; a bad
//! one is refused with every `file:line:col: key: reason` logged, and the old config stays in
//! force. A valid one that changes what is only read at start (device links and models, buses,
//! the loop's timers, the chargers' own fallback current, storage, MQTT, the API) is refused as
//! a whole, naming what needs a restart. Everything else — limits, margin, control tuning,
//! charger limits, priorities and phase maps, circuits, tariff, log level — goes live: to the
//! controller as [`ControlCommand::Reconfigure`], and to every other task on a config watch.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::signal::unix::Signal;
use tokio::sync::{mpsc, watch};

use super::logging::{DaemonLog, LogError};
use super::notify::Notifier;
use crate::config::{Charger, Config, ConfigErrors};
use crate::control::command::ControlCommand;

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("configuration refused ({} problems), the running one stays in force", .0.len())]
    Invalid(ConfigErrors),
    #[error("{} changed: restart evsite to apply (the running configuration stays in force)", .0.join(", "))]
    NeedsRestart(Vec<String>),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("the controller has stopped")]
    ControllerGone,
}

/// What a new config changes, split by whether it can be applied live.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// Settings read only at start, by name.
    pub restart: Vec<String>,
    /// Live settings, as "key old → new".
    pub live: Vec<String>,
}

/// Compare the running config with a new one.
pub fn diff(old: &Config, new: &Config) -> Changes {
    let mut c = Changes::default();
    let mut restart = |changed: bool, what: &str| {
        if changed {
            c.restart.push(what.to_owned());
        }
    };
    restart(old.site.id != new.site.id, "site.id");
    restart(old.site.phases != new.site.phases, "site.phases");
    restart(
        old.control.interval != new.control.interval,
        "control.interval_ms",
    );
    restart(
        old.control.meter_timeout != new.control.meter_timeout,
        "control.meter_timeout_s",
    );
    restart(old.buses != new.buses, "bus");
    restart(old.meter != new.meter, "meter");
    restart(
        old.auth.publish_identity != new.auth.publish_identity,
        "auth.publish_identity",
    );
    let ids = |cfg: &Config| {
        cfg.chargers
            .iter()
            .map(|c| c.id.clone())
            .collect::<Vec<_>>()
    };
    if ids(old) != ids(new) {
        restart(true, "the list of chargers");
    } else {
        // The chargers' own fallback current is written to them at start.
        let failsafe = old.site.failsafe_current_a != new.site.failsafe_current_a;
        restart(failsafe, "site.failsafe_current_a");
        for (o, n) in old.chargers.iter().zip(&new.chargers) {
            restart(o.device != n.device, &format!("charger {} link", o.id));
            restart(o.phases != n.phases, &format!("charger {} phases", o.id));
            restart(
                !failsafe && fallback_a(old, o) != fallback_a(new, n),
                &format!("charger {} max_current_a (its fallback current)", o.id),
            );
        }
    }
    restart(old.storage != new.storage, "storage");
    restart(old.mqtt != new.mqtt, "mqtt");
    restart(old.api != new.api, "api");

    let mut live = |key: &str, o: String, n: String| {
        if o != n {
            c.live.push(format!("{key} {o} → {n}"));
        }
    };
    live(
        "site.grid_limit_a",
        old.site.grid_limit_a.to_string(),
        new.site.grid_limit_a.to_string(),
    );
    live(
        "site.margin_a",
        old.site.margin_a.to_string(),
        new.site.margin_a.to_string(),
    );
    live(
        "site.voltage_v",
        old.site.voltage_v.to_string(),
        new.site.voltage_v.to_string(),
    );
    let (oc, nc) = (&old.control, &new.control);
    live(
        "control.ramp_step_a",
        oc.ramp_step_a.to_string(),
        nc.ramp_step_a.to_string(),
    );
    live(
        "control.hysteresis_a",
        oc.hysteresis_a.to_string(),
        nc.hysteresis_a.to_string(),
    );
    live(
        "control.rotation_interval_s",
        oc.rotation_interval.as_secs().to_string(),
        nc.rotation_interval.as_secs().to_string(),
    );
    live(
        "control.unused_threshold_a",
        oc.unused_threshold_a.to_string(),
        nc.unused_threshold_a.to_string(),
    );
    if ids(old) == ids(new) {
        for (o, n) in old.chargers.iter().zip(&new.chargers) {
            let key = |k: &str| format!("charger {} {k}", o.id);
            live(
                &key("min_current_a"),
                o.min_current_a.to_string(),
                n.min_current_a.to_string(),
            );
            live(
                &key("max_current_a"),
                o.max_current_a.to_string(),
                n.max_current_a.to_string(),
            );
            live(
                &key("priority"),
                o.priority.to_string(),
                n.priority.to_string(),
            );
            live(
                &key("enabled"),
                o.enabled.to_string(),
                n.enabled.to_string(),
            );
            live(
                &key("phase_map"),
                phases_1_based(&o.phase_map),
                phases_1_based(&n.phase_map),
            );
        }
    }
    live("log.level", old.log.level.clone(), new.log.level.clone());
    if old.circuits != new.circuits {
        c.live.push("circuit".into());
    }
    if old.tariff != new.tariff {
        c.live.push("tariff".into());
    }
    if old.tariff_groups != new.tariff_groups {
        c.live.push("tariff.groups".into());
    }
    if old.auth != new.auth {
        c.live.push(format!(
            "auth: token list {} entries → {}",
            old.auth.tokens.len(),
            new.auth.tokens.len()
        ));
    }
    c
}

/// The current a charger falls back to on its own (see `Controller::start`).
fn fallback_a(cfg: &Config, c: &Charger) -> f64 {
    cfg.site.failsafe_current_a.min(c.max_current_a)
}

fn phases_1_based(map: &[usize]) -> String {
    let names: Vec<String> = map.iter().map(|p| (p + 1).to_string()).collect();
    format!("[{}]", names.join(", "))
}

/// Reloads the config file on request, keeping the config in force.
pub struct Reloader {
    path: PathBuf,
    current: Arc<Config>,
    configs: watch::Sender<Arc<Config>>,
    commands: mpsc::UnboundedSender<ControlCommand>,
    log: DaemonLog,
    notifier: Notifier,
}

impl Reloader {
    /// `configs` carries the config in force to the tasks that follow it; `commands` is the
    /// controller's queue.
    pub fn new(
        path: PathBuf,
        configs: watch::Sender<Arc<Config>>,
        commands: mpsc::UnboundedSender<ControlCommand>,
        log: DaemonLog,
        notifier: Notifier,
    ) -> Self {
        let current = configs.borrow().clone();
        Reloader {
            path,
            current,
            configs,
            commands,
            log,
            notifier,
        }
    }

    /// The config in force.
    pub fn current(&self) -> &Arc<Config> {
        &self.current
    }

    /// Read, validate and apply the config file. Returns the live changes applied.
    pub fn reload(&mut self) -> Result<Vec<String>, ReloadError> {
        // The files the site reads (the API token, the token list) are read again too, as
        // at start: a reload is how a new token list comes into force.
        let checked = crate::config::check(&self.path, crate::config::FileScope::Site);
        for w in &checked.warnings {
            tracing::warn!("{w}");
        }
        let new = checked.result.map_err(ReloadError::Invalid)?;
        let changes = diff(&self.current, &new);
        if !changes.restart.is_empty() {
            return Err(ReloadError::NeedsRestart(changes.restart));
        }
        let new = Arc::new(new);
        self.commands
            .send(ControlCommand::Reconfigure(new.clone()))
            .map_err(|_| ReloadError::ControllerGone)?;
        self.log.set_level(&new.log.level)?;
        self.configs.send_replace(new.clone());
        self.current = new;
        Ok(changes.live)
    }

    /// Reload on every SIGHUP, for as long as the daemon runs.
    pub async fn serve(mut self, mut hangups: Signal) {
        while hangups.recv().await.is_some() {
            self.notifier.reloading();
            let status = match self.reload() {
                Ok(changes) if changes.is_empty() => {
                    tracing::info!(path = %self.path.display(), "configuration reloaded: nothing changed");
                    "running: configuration reloaded".to_owned()
                }
                Ok(changes) => {
                    tracing::info!(
                        path = %self.path.display(),
                        changed = %changes.join(", "),
                        "configuration reloaded"
                    );
                    "running: configuration reloaded".to_owned()
                }
                Err(e) => {
                    if let ReloadError::Invalid(errors) = &e {
                        for problem in errors {
                            tracing::error!("{problem}");
                        }
                    }
                    tracing::error!(path = %self.path.display(), "{e}");
                    format!("running: reload refused, see the log ({e})")
                }
            };
            self.notifier.ready(&status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[site]
id = "t"
grid_limit_a = 63.0
failsafe_current_a = 6.0
[meter]
model = "carlo-gavazzi-em340"
host = "127.0.0.9"
[[charger]]
id = "cp-1"
model = "alfen-eve"
host = "127.0.0.1"
max_current_a = 32.0
[[charger]]
id = "cp-2"
model = "alfen-eve"
host = "127.0.0.2"
max_current_a = 16.0
[storage]
path = "/var/lib/evsite"
"#;

    fn cfg(text: &str) -> Config {
        crate::config::load_str(text, "t.toml").expect("valid test config")
    }

    fn changed(from: &str, to: &str) -> Changes {
        diff(&cfg(BASE), &cfg(&BASE.replace(from, to)))
    }

    #[test]
    fn the_same_config_changes_nothing() {
        assert_eq!(diff(&cfg(BASE), &cfg(BASE)), Changes::default());
    }

    #[test]
    fn limits_priorities_and_phase_maps_go_live() {
        let c = changed("grid_limit_a = 63.0", "grid_limit_a = 40.0");
        assert!(c.restart.is_empty(), "{c:?}");
        assert_eq!(c.live, vec!["site.grid_limit_a 63 → 40"]);

        let c = changed(
            "host = \"127.0.0.2\"\nmax_current_a = 16.0",
            "host = \"127.0.0.2\"\nmax_current_a = 20.0\npriority = 3\nphase_map = [2, 3, 1]",
        );
        assert!(c.restart.is_empty(), "{c:?}");
        assert_eq!(
            c.live,
            vec![
                "charger cp-2 max_current_a 16 → 20",
                "charger cp-2 priority 0 → 3",
                "charger cp-2 phase_map [1, 2, 3] → [2, 3, 1]",
            ]
        );
    }

    #[test]
    fn device_links_storage_and_the_charger_list_need_a_restart() {
        let c = changed("host = \"127.0.0.2\"", "host = \"127.0.0.3\"");
        assert_eq!(c.restart, vec!["charger cp-2 link"]);
        let c = changed("path = \"/var/lib/evsite\"", "path = \"/srv/evsite\"");
        assert_eq!(c.restart, vec!["storage"]);
        let c = changed("id = \"cp-2\"", "id = \"cp-9\"");
        assert_eq!(c.restart, vec!["the list of chargers"]);
        let c = changed("[storage]", "[control]\ninterval_ms = 2000\n[storage]");
        assert_eq!(c.restart, vec!["control.interval_ms"]);
    }

    #[test]
    fn a_lower_charger_maximum_under_the_failsafe_current_needs_a_restart() {
        // Its own fallback current (min of failsafe and max) was written at start.
        let c = changed("max_current_a = 32.0", "max_current_a = 10.0");
        assert!(c.restart.is_empty(), "still above the 6 A fallback: {c:?}");
        let base = BASE.replace("failsafe_current_a = 6.0", "failsafe_current_a = 10.0");
        let lower = base.replace("max_current_a = 32.0", "max_current_a = 8.0");
        let c = diff(&cfg(&base), &cfg(&lower));
        assert_eq!(
            c.restart,
            vec!["charger cp-1 max_current_a (its fallback current)"]
        );
        let c = changed("failsafe_current_a = 6.0", "failsafe_current_a = 0.0");
        assert_eq!(c.restart, vec!["site.failsafe_current_a"]);
    }

    #[tokio::test]
    async fn a_broken_file_is_refused_and_the_old_config_stays() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("evsite.toml");
        std::fs::write(&path, BASE).expect("write");
        let old = Arc::new(cfg(BASE));
        let (configs, follow) = watch::channel(old.clone());
        let (commands, mut queued) = mpsc::unbounded_channel();
        let log = DaemonLog::detached();
        let mut r = Reloader::new(path.clone(), configs, commands, log, Notifier::disabled());

        std::fs::write(
            &path,
            BASE.replace("grid_limit_a = 63.0", "grid_limit_a = \"lots\""),
        )
        .expect("write");
        match r.reload() {
            Err(ReloadError::Invalid(e)) => {
                let text = e.to_string();
                assert!(
                    text.contains(":4:") && text.contains("site.grid_limit_a"),
                    "{text}"
                );
            }
            other => panic!("refused expected, got {other:?}"),
        }
        std::fs::write(
            &path,
            BASE.replace("host = \"127.0.0.2\"", "host = \"10.9.9.9\""),
        )
        .expect("write");
        let e = r.reload().expect_err("a link change needs a restart");
        assert!(
            e.to_string()
                .contains("charger cp-2 link changed: restart evsite"),
            "{e}"
        );
        assert!(queued.try_recv().is_err(), "nothing reached the controller");
        assert!(Arc::ptr_eq(&follow.borrow(), &old));

        std::fs::write(
            &path,
            BASE.replace("grid_limit_a = 63.0", "grid_limit_a = 50.0"),
        )
        .expect("write");
        let live = r.reload().expect("applied");
        assert_eq!(live, vec!["site.grid_limit_a 63 → 50"]);
        match queued.try_recv() {
            Ok(ControlCommand::Reconfigure(c)) => assert_eq!(c.site.grid_limit_a, 50.0),
            other => panic!("reconfigure expected, got {other:?}"),
        }
        assert_eq!(follow.borrow().site.grid_limit_a, 50.0);
        assert_eq!(r.current().site.grid_limit_a, 50.0);
    }

    #[tokio::test]
    async fn a_reload_rereads_the_token_list_and_a_broken_list_keeps_the_one_in_force() {
        let dir = tempfile::tempdir().expect("temp dir");
        let tokens = dir.path().join("tokens.toml");
        let entry = |id: &str, user: &str| format!("[[token]]\nid = {id:?}\nuser = {user:?}\n");
        std::fs::write(&tokens, entry("04AA", "Anna")).expect("write");
        let text = format!(
            "{BASE}\n[auth]\ntokens_file = {:?}\n",
            tokens.display().to_string()
        );
        let path = dir.path().join("evsite.toml");
        std::fs::write(&path, &text).expect("write");
        let checked = crate::config::check(&path, crate::config::FileScope::Site);
        let old = Arc::new(checked.result.expect("valid"));
        assert_eq!(old.auth.tokens.len(), 1);
        let (configs, follow) = watch::channel(old);
        let (commands, _queued) = mpsc::unbounded_channel();
        let mut r = Reloader::new(
            path,
            configs,
            commands,
            DaemonLog::detached(),
            Notifier::disabled(),
        );

        std::fs::write(&tokens, entry("04AA", "Anna") + &entry("04BB", "Ben")).expect("write");
        let live = r.reload().expect("applied");
        assert_eq!(live, vec!["auth: token list 1 entries → 2"]);
        assert_eq!(
            follow
                .borrow()
                .auth
                .tokens
                .authorise("04bb")
                .map(|t| t.user.clone()),
            Some("Ben".to_string())
        );

        // A mistake in the list: refused at its place in the token file; Ben keeps his.
        std::fs::write(&tokens, entry("04AA", "Anna") + &entry("04BB", "")).expect("write");
        let want = format!("{}:6:8: token[2].user: is empty", tokens.display());
        match r.reload() {
            Err(ReloadError::Invalid(e)) => assert!(e.to_string().contains(&want), "{e}"),
            other => panic!("refused expected, got {other:?}"),
        }
        assert!(r.current().auth.tokens.authorise("04BB").is_some());
    }
}
