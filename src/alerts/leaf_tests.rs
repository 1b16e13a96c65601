//! `alerts` is a leaf: the control loop, the sessions and the store depend on it, never the
//! other way round. Every path out of the module is read from the source, comments included
//! (a doc link is a dependency too).

use std::path::{Path, PathBuf};

/// The modules `alerts` must not reach.
const FORBIDDEN: [&str; 3] = ["control", "sessions", "store"];

/// The first segment of every path that leaves `alerts` in `src`: `crate::x…`,
/// `crate::{x, y…}` and `super::super::x…` (from a file below `alerts/`, `super::super` is
/// the crate).
fn reached(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in src.match_indices("crate::") {
        let rest = &src[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Only the top-level names of the group: `{a::{b, c}, d}` reaches a and d.
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if c.is_whitespace() => {}
                    _ if start && depth == 0 => {
                        out.push(ident(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    for (i, _) in src.match_indices("super::super::") {
        let mut rest = &src[i..];
        while let Some(r) = rest.strip_prefix("super::") {
            rest = r;
        }
        out.push(ident(rest));
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_scanner_sees_every_way_out() {
    let src = "use crate::control::record::CycleRecord;\n\
               use crate::{clock::Clock, sessions::{a, b}, store};\n\
               /// see [`crate::config`]\n\
               use super::super::super::store::Store;\n\
               use super::kind::Alert;";
    assert_eq!(
        reached(src),
        ["control", "clock", "sessions", "store", "config", "store"]
    );
}

#[test]
fn alerts_imports_neither_control_sessions_nor_store() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/alerts");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("alerts/mod.rs"))
            && files.iter().any(|f| f.ends_with("alerts/kind.rs"))
            && files.iter().any(|f| f.ends_with("alerts/book.rs")),
        "not the alerts module: {files:?}"
    );
    let mut bad = Vec::new();
    for f in &files {
        // This file names the forbidden paths in its own test of the scanner.
        if f.ends_with("alerts/leaf_tests.rs") {
            continue;
        }
        let src = std::fs::read_to_string(f).unwrap();
        for m in reached(&src) {
            if FORBIDDEN.contains(&m.as_str()) {
                bad.push(format!("{}: crate::{m}", f.display()));
            }
        }
    }
    assert!(bad.is_empty(), "alerts must stay a leaf: {bad:#?}");
}
