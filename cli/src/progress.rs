//! Progress bars for long work (import, sync, export, reindex): drawn on standard
//! error when it is a terminal, with the rate and the time left; never in
//! `--json` output or a pipe.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` units of `what` ("rows stored").
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:30}} {{human_pos}}/{{human_len}} {what} {{msg}}, {{per_sec}}, {{eta}} left"
        ))
        .expect("the template is valid"),
    );
    bar
}
