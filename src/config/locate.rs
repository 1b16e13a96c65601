//! Mapping between key paths and positions in the TOML text.
//!
//! The `config` crate forgets where values came from, so positions are recovered from a
//! span-keeping parse of the same text (`toml_edit::ImDocument`): key path → the value's
//! span (or its nearest enclosing table's header when the key is missing), and a serde
//! error's span → the key path it falls in.

use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, Value};

use super::error::{KeyPath, Segment};

/// A parsed document with spans, and the text it came from.
pub struct Located {
    doc: ImDocument<String>,
}

impl Located {
    /// Parses `text`; fails with the parser's error (and its span) on a syntax error.
    pub fn parse(text: &str) -> Result<Self, toml_edit::TomlError> {
        Ok(Located {
            doc: ImDocument::parse(text.to_owned())?,
        })
    }

    pub fn text(&self) -> &str {
        self.doc.raw()
    }

    /// Byte offset of the value at `path`, or `None` when the key is not in the text.
    pub fn exact(&self, path: &KeyPath) -> Option<usize> {
        let mut node = Node::Item(self.doc.as_item());
        for seg in path.segments() {
            node = node.child(seg)?;
        }
        node.span().map(|s| s.start)
    }

    /// Byte offset of the value at `path`, else of its nearest ancestor present in the text
    /// (for a missing key: the header of the table that should hold it); 0 when nothing is.
    pub fn nearest(&self, path: &KeyPath) -> usize {
        let mut node = Node::Item(self.doc.as_item());
        let mut best = 0;
        for seg in path.segments() {
            match node.child(seg) {
                Some(child) => {
                    if let Some(span) = child.span() {
                        best = span.start;
                    }
                    node = child;
                }
                None => break,
            }
        }
        best
    }

    /// The deepest key path whose key or value contains byte `offset`.
    pub fn path_at(&self, offset: usize) -> KeyPath {
        find_in_table(self.doc.as_table(), offset, &KeyPath::default()).unwrap_or_default()
    }

    /// 1-based line and column (in characters) of byte `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(self.text(), offset)
    }
}

/// The start of every line of a text, counted once: many positions placed in one long
/// text (a token list with a mistake in every entry) stay linear, where [`line_col`] counts
/// from the top each time.
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// As [`line_col`].
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let text = self.text;
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line - 1];
        (line, text[start..offset].chars().count() + 1)
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..offset].chars().count() + 1;
    (line, col)
}

/// A step in the document tree: tables hold items, arrays and inline tables hold values.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Table(&'a Table),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn child(self, seg: &Segment) -> Option<Node<'a>> {
        match (self, seg) {
            (Node::Item(Item::Table(t)) | Node::Table(t), Segment::Key(k)) => {
                t.get(k).map(Node::Item)
            }
            (Node::Item(Item::ArrayOfTables(a)), Segment::Index(i)) => a.get(*i).map(Node::Table),
            (Node::Item(Item::Value(v)) | Node::Value(v), seg) => match (v, seg) {
                (Value::InlineTable(t), Segment::Key(k)) => t.get(k).map(Node::Value),
                (Value::Array(a), Segment::Index(i)) => a.get(*i).map(Node::Value),
                _ => None,
            },
            _ => None,
        }
    }

    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Item(i) => i.span(),
            Node::Table(t) => t.span(),
            Node::Value(v) => v.span(),
        }
    }
}

fn contains(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.contains(&offset) || (s.is_empty() && s.start == offset))
}

fn find_in_table(table: &Table, offset: usize, path: &KeyPath) -> Option<KeyPath> {
    for (name, item) in table.iter() {
        let here = path.key(name);
        if let Some((key, _)) = table.get_key_value(name) {
            if contains(key.span(), offset) {
                return Some(here);
            }
        }
        if let Some(found) = find_in_item(item, offset, &here) {
            return Some(found);
        }
    }
    None
}

fn find_in_item(item: &Item, offset: usize, path: &KeyPath) -> Option<KeyPath> {
    match item {
        Item::None => None,
        Item::Value(v) => find_in_value(v, offset, path),
        Item::Table(t) => find_in_table(t, offset, path)
            .or_else(|| contains(t.span(), offset).then(|| path.clone())),
        Item::ArrayOfTables(a) => a.iter().enumerate().find_map(|(i, t)| {
            let here = path.index(i);
            find_in_table(t, offset, &here).or_else(|| contains(t.span(), offset).then_some(here))
        }),
    }
}

fn find_in_value(value: &Value, offset: usize, path: &KeyPath) -> Option<KeyPath> {
    let inner = match value {
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_in_value(v, offset, &path.index(i))),
        Value::InlineTable(t) => t
            .iter()
            .find_map(|(k, v)| find_in_value(v, offset, &path.key(k))),
        _ => None,
    };
    inner.or_else(|| contains(value.span(), offset).then(|| path.clone()))
}
