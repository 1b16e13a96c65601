//! `evsite models --show <id>`: the printed file is the shipped model file, which a user can
//! copy, change and load; an unknown id is a usage error naming the known ones.

use std::process::Command;

fn evsite(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_evsite"))
        .args(args)
        .output()
        .expect("evsite runs")
}

#[test]
fn show_prints_the_model_file_ready_to_copy() {
    let out = evsite(&["models", "--show", "alfen-eve"]);
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/alfen-eve.toml"
    ))
    .unwrap();
    assert_eq!(printed, shipped);
    // Copied under another id and changed, it is a model of its own.
    let mine = printed
        .replace("id = \"alfen-eve\"", "id = \"my-alfen\"")
        .replace("min_current_a = 6.0", "min_current_a = 8.0");
    let loaded = evsite::devices::file::load("my-alfen.toml", &mine).unwrap();
    assert_eq!(loaded.spec.name, "my-alfen");
    assert_eq!(loaded.spec.charger.unwrap().min_current_a, 8.0);
}

#[test]
fn show_of_an_unknown_model_is_a_usage_error() {
    let out = evsite(&["models", "--show", "wallbox-pulsar"]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("wallbox-pulsar") && err.contains("alfen-eve"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
