//! Criterion benchmarks live in `benches/*.rs` targets of this package.
