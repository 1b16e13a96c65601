//! A database as schema 1 left it: outbox values were the envelope's JSON alone, without the
//! topic tag schema 2 puts in front. Made by rewriting one the current build wrote, since
//! the JSON itself did not change.

use std::path::Path;

/// Rewrites the closed database at `path` into the schema-1 layout. Returns the schema-1
/// outbox values, in seq order.
pub fn downgrade_to_schema_1(path: &Path) -> Vec<Vec<u8>> {
    let db = sled::open(path).expect("open the database directly");
    let outbox = db.open_tree("outbox").expect("outbox tree");
    let mut old = Vec::new();
    for item in outbox.iter() {
        let (key, value) = item.expect("outbox entry");
        let (tag, json) = value.split_first().expect("a tagged value");
        assert!(matches!(tag, 1 | 2), "tag {tag}");
        assert_eq!(json.first(), Some(&b'{'), "schema 1 stored bare JSON");
        outbox.insert(key, json).expect("rewrite");
        old.push(json.to_vec());
    }
    db.open_tree("meta")
        .expect("meta tree")
        .insert("schema_version", &1u32.to_be_bytes())
        .expect("version");
    db.flush().expect("flush");
    old
}
