//! The throughput chart the README embeds is what `benches/throughput-chart`
//! draws from the JSON that `benches/netns-throughput --json` wrote:
//! drawing it again from the committed JSON gives the committed SVG, byte
//! for byte, so neither can change without the other.

use std::path::Path;
use std::process::{Command, Output};

/// The committed run: `results/NAME.json` as the bench wrote it, and
/// `results/NAME.svg` drawn from it.
const RUN: &str = "netns-throughput-2026-12-03";
/// The commit of that run, which its JSON predates recording:
/// benches/README.md gives it (the figures of 09:22 UTC, at 85fb1de).
const RUN_COMMIT: &str = "85fb1de";

/// Runs `throughput-chart ARGS`, which needs only Python 3's standard
/// library (as `netns-throughput` does).
fn chart(args: &[&str]) -> Output {
    let benches = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new("python3")
        .arg(benches.join("throughput-chart"))
        .args(args)
        .current_dir(benches)
        .output()
        .expect("python3 runs benches/throughput-chart")
}

#[test]
fn the_committed_chart_is_drawn_from_the_committed_results() {
    let json = format!("results/{RUN}.json");
    let output = chart(&[&json, "-", "--commit", RUN_COMMIT]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("results/{RUN}.svg")),
    )
    .expect("the committed chart");
    assert!(
        String::from_utf8_lossy(&output.stdout) == committed,
        "results/{RUN}.svg is not what benches/throughput-chart draws from results/{RUN}.json: \
         run `benches/throughput-chart results/{RUN}.json results/{RUN}.svg --commit {RUN_COMMIT}`"
    );
    for figure in ["5.04", "5.36", "2.22", "13.39", "sentrymesh at 85fb1de"] {
        assert!(committed.contains(figure), "{figure} is not in the chart");
    }
}

#[test]
fn a_chart_names_its_commit_or_is_not_drawn() {
    let json = format!("results/{RUN}.json");
    let output = chart(&[&json, "-"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("records no commit"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty());
}
