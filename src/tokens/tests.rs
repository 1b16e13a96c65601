use super::*;
use proptest::prelude::*;

const EXAMPLE: &str = r#"
[[token]]
id = "04A1B2C3D4E5F6"
user = "Anna Berg"
vehicle = { name = "ID.3", battery_kwh = 58 }
group = "residents"

[[token]]
id = "visitor-17"
user = "Visitor 17"
enabled = false
"#;

#[test]
fn a_list_is_read_with_every_field_and_ids_match_as_a_charger_presents_them() {
    let list = TokenList::parse(EXAMPLE, "tokens.toml").unwrap();
    assert_eq!(list.len(), 2);
    let anna = list.get("04a1b2c3d4e5f6").expect("case folded");
    assert_eq!(anna.user, "Anna Berg");
    assert_eq!(anna.group.as_deref(), Some("residents"));
    assert_eq!(
        anna.vehicle,
        Some(Vehicle {
            name: "ID.3".into(),
            battery_kwh: Some(58.0)
        })
    );
    assert!(anna.enabled);
    // An identity register is padded with NULs or blanks after the id.
    assert_eq!(
        list.authorise("04A1B2C3D4E5F6\0\0\0\0").map(|t| &t.user),
        Some(&anna.user)
    );
    assert_eq!(list.get(" 04A1B2C3D4E5F6 ").map(|t| &t.id), Some(&anna.id));
    // Listed but disabled: known, but may not charge.
    assert!(list.get("VISITOR-17").is_some());
    assert!(list.authorise("visitor-17").is_none());
    assert!(list.get("04A1B2C3D4E5F7").is_none());
}

#[test]
fn an_empty_file_is_an_empty_list() {
    let list = TokenList::parse("", "t.toml").unwrap();
    assert!(list.is_empty());
    assert!(list.authorise("anything").is_none());
}

/// Parses `text` expecting errors; returns them as the user reads them.
fn errors(text: &str) -> Vec<String> {
    match TokenList::parse(text, "t.toml") {
        Ok(l) => panic!("accepted with {} tokens:\n{text}", l.len()),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn every_mistake_is_named_with_its_key_line_and_column() {
    let cases: &[(&str, &str)] = &[
        (
            "[[token]]\nid = \"\"\nuser = \"A\"\n",
            "t.toml:2:6: token[1].id: is empty",
        ),
        (
            "[[token]]\nid = \"AB CD\"\nuser = \"A\"\n",
            "t.toml:2:6: token[1].id: holds ' '",
        ),
        (
            &format!("[[token]]\nid = \"{}\"\nuser = \"A\"\n", "A".repeat(65)),
            "t.toml:2:6: token[1].id: is 65 characters, at most 64",
        ),
        (
            "[[token]]\nid = \"A1\"\nuser = \"  \"\n",
            "t.toml:3:8: token[1].user: is empty",
        ),
        (
            "[[token]]\nid = \"A1\"\nuser = \"A\"\nvehicle = { name = \"X\", battery_kwh = 580 }\n",
            "t.toml:4:39: token[1].vehicle.battery_kwh: 580 kWh is not a battery size",
        ),
        (
            "[[token]]\nid = \"A1\"\nuser = \"A\"\ngroup = \"\"\n",
            "t.toml:4:9: token[1].group: is empty",
        ),
        (
            "[[token]]\nid = \"a1\"\nuser = \"A\"\n[[token]]\nid = \"A1\"\nuser = \"B\"\n",
            "t.toml:5:6: token[2].id: \"A1\" is already listed at line 2, column 6",
        ),
        (
            "[[token]]\nid = \"A1\"\nusr = \"A\"\n",
            "t.toml:3:1: unknown field `usr`",
        ),
        (
            "[[token]]\nid = \"A1\"\n",
            "t.toml:1:1: missing field `user`",
        ),
        ("[[token]]\nid = A1\n", "t.toml:2:6:"),
        (
            "[[token]]\nid = \"A1\"\nuser = \"A\"\nenabled = \"yes\"\n",
            "t.toml:4:11:",
        ),
    ];
    for (text, want) in cases {
        let got = errors(text);
        assert!(
            got.iter().any(|g| g.starts_with(want)),
            "want {want:?} in {got:?} for\n{text}"
        );
    }
}

#[test]
fn every_mistake_of_a_file_is_reported_at_once_and_nothing_is_half_taken() {
    let text = "[[token]]\nid = \"\"\nuser = \"A\"\n\n[[token]]\nid = \"B2\"\nuser = \"\"\n\n[[token]]\nid = \"C3\"\nuser = \"C\"\n";
    let got = errors(text);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("t.toml:2:6: token[1].id"), "{got:?}");
    assert!(got[1].starts_with("t.toml:7:8: token[2].user"), "{got:?}");
}

#[test]
fn a_missing_file_says_so_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    let e = TokenList::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("tokens.toml") && e.contains("cannot read the token file"),
        "{e}"
    );
    std::fs::write(&path, EXAMPLE).unwrap();
    assert_eq!(TokenList::load(&path).unwrap().len(), 2);
}

/// A file of `n` generated tokens, as an operator's export would write it.
fn generated(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "[[token]]\nid = \"{:014X}\"\nuser = \"User {i}\"\ngroup = \"g{}\"\nenabled = {}\n\n",
            0x04_0000_0000_0000u64 + (i as u64) * 7919,
            i % 7,
            i % 10 != 0
        ));
    }
    s
}

#[test]
fn ten_thousand_tokens_load_and_every_one_is_found() {
    let n = 10_000;
    let list = TokenList::parse(&generated(n), "big.toml").unwrap();
    assert_eq!(list.len(), n);
    for i in (0..n).step_by(97) {
        let id = format!("{:014x}", 0x04_0000_0000_0000u64 + (i as u64) * 7919);
        let t = list.get(&id).unwrap_or_else(|| panic!("{id} not found"));
        assert_eq!(t.user, format!("User {i}"));
        assert_eq!(list.authorise(&id).is_some(), i % 10 != 0, "{id}");
    }
}

proptest! {
    /// Whatever the text, the loader answers: a list or located errors, never a panic, and
    /// every error's place is inside the text.
    #[test]
    fn any_text_gets_a_list_or_located_errors(text in ".{0,300}") {
        if let Err(e) = TokenList::parse(&text, "f.toml") {
            prop_assert!(!e.0.is_empty());
            let lines = text.split('\n').count();
            for err in &e.0 {
                prop_assert!(err.line >= 1 && err.line <= lines, "{err} in {} lines", lines);
            }
        }
    }

    /// Ids written in any case, each once, are all found under any other case.
    #[test]
    fn ids_are_found_whatever_their_case(ids in proptest::collection::hash_set("[0-9A-F]{8,20}", 1..40)) {
        let mut text = String::new();
        for (i, id) in ids.iter().enumerate() {
            let written = if i % 2 == 0 { id.to_lowercase() } else { id.clone() };
            text.push_str(&format!("[[token]]\nid = \"{written}\"\nuser = \"u{i}\"\n"));
        }
        let list = TokenList::parse(&text, "f.toml").unwrap();
        prop_assert_eq!(list.len(), ids.len());
        for id in &ids {
            prop_assert!(list.authorise(&id.to_lowercase()).is_some());
            prop_assert!(list.authorise(id).is_some());
        }
    }
}

#[test]
fn a_mistake_in_every_entry_of_a_large_list_is_placed_as_in_a_small_one() {
    // Every entry's user empty: each error on its own line, counted from one index.
    let n = 2_000;
    let text: String = (0..n)
        .map(|i| format!("[[token]]\nid = \"ID{i}\"\nuser = \"\"\n"))
        .collect();
    let e = TokenList::parse(&text, "t.toml").unwrap_err();
    assert_eq!(e.0.len(), n);
    for (i, err) in e.0.iter().enumerate().step_by(199) {
        assert_eq!((err.line, err.col), (3 * i + 3, 8), "{err}");
        let (l, c) = crate::config::locate::line_col(
            &text,
            text.match_indices("user").nth(i).unwrap().0 + 7,
        );
        assert_eq!((err.line, err.col), (l, c));
    }
}
