//! How long the token list takes to read and to answer: it is reread on every reload, and a
//! presented id is looked up whenever a charger reports one.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use evsite::tokens::TokenList;

/// A list of `n` entries as an operator's export writes it: every field, a tenth disabled.
fn list(n: usize) -> String {
    let mut s = String::with_capacity(n * 120);
    for i in 0..n {
        s.push_str(&format!(
            "[[token]]\nid = \"{:014X}\"\nuser = \"User {i}\"\nvehicle = {{ name = \"Car {i}\", battery_kwh = {} }}\ngroup = \"g{}\"\nenabled = {}\n\n",
            0x04_0000_0000_0000u64 + (i as u64) * 7919,
            40 + i % 60,
            i % 7,
            i % 10 != 0
        ));
    }
    s
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("token_list");
    g.sample_size(10);
    for n in [1_000, 10_000, 50_000] {
        let text = list(n);
        g.bench_with_input(BenchmarkId::new("parse", n), &text, |b, t| {
            b.iter(|| TokenList::parse(black_box(t), "tokens.toml").expect("valid"))
        });
        let parsed = TokenList::parse(&text, "tokens.toml").expect("valid");
        let probe = format!(
            "{:014x}\0\0",
            0x04_0000_0000_0000u64 + (n as u64 / 2) * 7919
        );
        g.bench_with_input(BenchmarkId::new("authorise", n), &parsed, |b, l| {
            b.iter(|| l.authorise(black_box(&probe)).is_some())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
