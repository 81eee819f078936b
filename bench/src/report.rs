//! docs/benchmarks.md: every benchmark hands in rows and prose; this renders
//! them, so that every section has the same table and the same way of
//! writing figures.

use std::fmt::Write as _;

/// One figure of a table: what was measured, beside its baseline from the
/// same run and the limit it is held to.
pub struct Row {
    pub what: String,
    pub measured: String,
    pub baseline: Option<Baseline>,
    pub limit: Option<Limit>,
}

pub struct Baseline {
    pub text: String,
    /// Measured over baseline.
    pub ratio: f64,
}

pub struct Limit {
    pub text: &'static str,
    pub holds: bool,
}

impl Row {
    pub fn new(what: impl Into<String>, measured: impl Into<String>) -> Row {
        Row {
            what: what.into(),
            measured: measured.into(),
            baseline: None,
            limit: None,
        }
    }

    pub fn baseline(mut self, text: impl Into<String>, ratio: f64) -> Row {
        self.baseline = Some(Baseline {
            text: text.into(),
            ratio,
        });
        self
    }

    pub fn limit(mut self, text: &'static str, holds: bool) -> Row {
        self.limit = Some(Limit { text, holds });
        self
    }

    fn render(&self, md: &mut String) {
        let (baseline, ratio) = match &self.baseline {
            Some(b) => (b.text.as_str(), ratio(b.ratio)),
            None => ("-", "-".to_string()),
        };
        // A figure held to no limit does not fail.
        let (limit, holds) = match &self.limit {
            Some(l) => (l.text, l.holds),
            None => ("-", true),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {baseline} | {ratio} | {limit} | {} |",
            self.what,
            self.measured,
            if holds { "yes" } else { "**no**" }
        );
    }
}

fn ratio(r: f64) -> String {
    // Two significant digits at least: a ratio of 0.004 is not 0.00.
    match r.abs() {
        a if a != 0.0 && a < 0.01 => format!("{r:.4}"),
        _ => format!("{r:.2}"),
    }
}

/// A `##` section: an introduction, the table, then notes.
pub struct Section {
    pub title: &'static str,
    pub intro: String,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl Section {
    fn render(&self, md: &mut String) {
        let _ = writeln!(md, "## {}\n", self.title);
        let _ = writeln!(md, "{}\n", self.intro);
        md.push_str("| what | measured | baseline (same run) | ratio | limit | holds |\n");
        md.push_str("|---|---|---|---|---|---|\n");
        for row in &self.rows {
            row.render(md);
        }
        md.push_str("\nNotes:\n");
        for note in &self.notes {
            let _ = writeln!(md, "- {note}");
        }
        md.push('\n');
    }
}

/// The whole of docs/benchmarks.md.
pub struct Report {
    /// When the run began.
    pub started: String,
    pub sections: Vec<Section>,
}

impl Report {
    pub fn render(&self) -> String {
        let mut md = String::from("# Benchmarks\n\n");
        let _ = writeln!(
            md,
            "Written by `scripts/bench` ({}), on {} cores. Release build; nodes in one process on \
             127.0.0.1 with real RocksDB, gRPC and mutual TLS. Figures are compared with baselines \
             measured in the same run.\n",
            self.started,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        for section in &self.sections {
            section.render(&mut md);
        }
        md
    }
}

pub fn now_utc() -> String {
    maillage_record::json::format_time(maillage_record::now_ms())
}

/// Bytes as people read them: exact when small.
pub fn human(b: u64) -> String {
    if b < 10 * 1024 {
        format!("{b} B")
    } else if b < 10 << 20 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
    }
}

/// The `p`th percentile of `v` (0 when empty): the nearest value at or below.
pub fn pct(v: &[u64], p: usize) -> u64 {
    let mut v = v.to_vec();
    v.sort();
    if v.is_empty() {
        return 0;
    }
    v[((v.len() - 1) * p / 100).min(v.len() - 1)]
}
