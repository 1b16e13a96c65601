//! `evsite check-config --live` against a served simulated site and a real Mosquitto with a
//! password: every part right (exit 0, one table, each part ok), then each part wrong in turn
//! — a charger's unit, a charger's model, the broker password, the API port taken — each
//! named in the table with exit 69 while the others stay ok.

use crate::support::daemon;
use crate::support::mosquitto;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use daemon::Served;
use mosquitto::{Mosquitto, Setup};

const EX_UNAVAILABLE: i32 = 69;

async fn live(config: &Path) -> Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_evsite"))
        .args(["check-config", "--live", "--config"])
        .arg(config)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("check-config --live ends within 60 s")
        .expect("evsite runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The table's row for `part` `name`: its result and detail.
fn row<'a>(table: &'a str, part: &str, name: &str) -> (&'a str, &'a str) {
    let line = table
        .lines()
        .find(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some(part) && w.next() == Some(name)
        })
        .unwrap_or_else(|| panic!("no row for {part} {name}:\n{table}"));
    let result = if line.contains("  ok  ") {
        "ok"
    } else if line.contains("  FAILED  ") {
        "FAILED"
    } else {
        panic!("no result in {line:?}")
    };
    (result, line)
}

/// `text` with the first line starting with `prefix` after the line `section` replaced.
fn replace_in(text: &str, section_index: usize, prefix: &str, to: &str) -> String {
    let mut seen = 0;
    let mut inside = false;
    let mut done = false;
    text.lines()
        .map(|l| {
            if l.trim() == "[[charger]]" {
                inside = seen == section_index;
                seen += 1;
            }
            if inside && !done && l.trim_start().starts_with(prefix) {
                done = true;
                to.to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_check_names_each_part_that_is_wrong() {
    let scenario = daemon::site_scenario(
        "live-site",
        "2026-11-21T08:00:00Z",
        &[
            ("cp-1", "alfen-eve", "1, 2, 3", 3600),
            ("cp-2", "alfen-eve", "2, 3, 1", 3600),
        ],
    );
    let served = Served::start(&scenario).await;
    let broker_dir = tempfile::tempdir().unwrap();
    let passwd = mosquitto::password_file(broker_dir.path(), "live-site", "s3cret");
    let broker = Mosquitto::start(Setup {
        password_file: Some(passwd),
        ..Setup::default()
    })
    .await;
    let pass = served.dir.path().join("mqtt.pass");
    std::fs::write(&pass, "s3cret\n").unwrap();
    let api_port = mosquitto::free_port();
    served.add_config(&format!(
        "\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\nusername = \"live-site\"\npassword_file = {pass:?}\n\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n",
        broker.port()
    ));
    let good = std::fs::read_to_string(&served.config).unwrap();

    // Every part right.
    let out = live(&served.config).await;
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}{}", text(&out.stderr));
    for (part, name) in [
        ("device", "meter"),
        ("device", "cp-1"),
        ("device", "cp-2"),
        ("broker", &format!("mqtt://127.0.0.1:{}", broker.port())[..]),
        ("api", "api.listen"),
    ] {
        assert_eq!(row(&table, part, name).0, "ok", "{table}");
    }
    assert!(
        table.contains("published to evsite/live-site/status and read it back"),
        "{table}"
    );

    // Each part wrong in turn: (what, the config, the row that must fail).
    let wrong_unit = replace_in(&good, 1, "unit =", "unit = 77");
    let wrong_model = replace_in(&good, 0, "model =", "model = \"abb-terra-ac\"");
    let cases = [
        ("a charger's unit", wrong_unit, ("device", "cp-2")),
        ("a charger's model", wrong_model, ("device", "cp-1")),
    ];
    for (what, config, (part, name)) in cases {
        assert_ne!(config, good, "{what}: the edit applies");
        std::fs::write(&served.config, &config).unwrap();
        let out = live(&served.config).await;
        let table = text(&out.stdout);
        assert_eq!(out.status.code(), Some(EX_UNAVAILABLE), "{what}:\n{table}");
        assert_eq!(row(&table, part, name).0, "FAILED", "{what}:\n{table}");
        assert_eq!(row(&table, "device", "meter").0, "ok", "{what}:\n{table}");
        assert_eq!(row(&table, "api", "api.listen").0, "ok", "{what}:\n{table}");
        assert!(text(&out.stderr).contains("1 of 5 parts failed"), "{what}");
    }
    std::fs::write(&served.config, &good).unwrap();

    // The broker refuses a wrong password (the file itself is fine, so only --live sees it).
    std::fs::write(&pass, "wrong\n").unwrap();
    let out = live(&served.config).await;
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(EX_UNAVAILABLE), "{table}");
    let broker_name = format!("mqtt://127.0.0.1:{}", broker.port());
    let (result, line) = row(&table, "broker", &broker_name);
    assert_eq!(result, "FAILED", "{table}");
    assert!(line.contains("refused"), "{line}");
    std::fs::write(&pass, "s3cret\n").unwrap();

    // The API port is taken.
    let _held = std::net::TcpListener::bind(("127.0.0.1", api_port)).unwrap();
    let out = live(&served.config).await;
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(EX_UNAVAILABLE), "{table}");
    let (result, line) = row(&table, "api", "api.listen");
    assert_eq!(result, "FAILED", "{table}");
    assert!(line.contains("cannot bind"), "{line}");
    assert_eq!(row(&table, "broker", &broker_name).0, "ok", "{table}");
}
