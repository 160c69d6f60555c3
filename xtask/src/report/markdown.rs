//! step-summary.md: the run for GitHub's step summary (`cat` it into
//! `$GITHUB_STEP_SUMMARY`): a heading with the verdict, the end-of-run text in a
//! code block, and the first compiler error or failed hunks when a stage stopped.

use super::{text, title, Ending};
use crate::plan::RunRecord;

pub fn render(r: &RunRecord, end: Ending<'_>) -> String {
    let exit = end.exit(r) as u8;
    let mark = if exit == 0 { "✅" } else { "❌" };
    let mut o = format!(
        "### {mark} {}: exit {exit}\n\n{}\n\n```\n{}```\n",
        title(r),
        end.headline(r),
        text(r, end)
    );
    if let Some(e) = r.failure.as_ref().and_then(|f| f.first_error.as_ref()) {
        o.push_str(&format!("\nFirst compiler error:\n\n```\n{e}\n```\n"));
    }
    o
}
