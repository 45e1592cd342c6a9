//! Token changes as Markdown for a pull request description: a summary line, then one
//! table per file and context, cut at a row so the text fits the forge's limit.
//!
//! Names and values are code spans: GitHub and GitLab show a colour swatch next to a
//! hex, `rgb()` or `hsl()` colour in backticks, and nothing in a value (HTML, `|`,
//! backticks, line breaks) can break out of its cell.

use std::fmt::Write as _;

use super::diff::{TokenChange, TokenDiff};

/// Longest value shown in a cell, in characters; longer ones end in `…`.
const MAX_CELL_CHARS: usize = 80;

/// "12 tokens changed, 3 added, 1 removed in 4 files"; empty when there is nothing to
/// say.
pub fn summary(diff: &TokenDiff) -> String {
    if diff.total() == 0 {
        return if diff.is_empty() {
            String::new()
        } else {
            "No token changed in the files Courier could read".to_owned()
        };
    }
    let kinds = [
        (diff.changed, "changed"),
        (diff.added, "added"),
        (diff.removed, "removed"),
        (diff.renamed, "renamed"),
    ];
    let mut parts = kinds.iter().filter(|(n, _)| *n > 0);
    let mut text = String::new();
    if let Some((n, kind)) = parts.next() {
        let _ = write!(text, "{n} {} {kind}", plural(*n, "token", "tokens"));
    }
    for (n, kind) in parts {
        let _ = write!(text, ", {n} {kind}");
    }
    let _ = write!(
        text,
        " in {} {}",
        diff.files,
        plural(diff.files, "file", "files")
    );
    text
}

/// The notes on files not read, then the tables, in at most `budget` characters. What
/// does not fit is left out at a row boundary and counted in a last line, so a table
/// is never cut in the middle of a row.
pub fn markdown(diff: &TokenDiff, budget: usize) -> String {
    let rows: usize = diff.groups.iter().map(|g| g.changes.len()).sum();
    let notes = diff.unreadable.len() + diff.skipped.len();
    let mut out = Fitted::new(budget, rows, notes);
    // Notes first: a file whose tokens could not be read is what a reviewer must not
    // miss, and there are few of them.
    let notes = diff
        .unreadable
        .iter()
        .map(|n| {
            format!(
                "- Could not read tokens in {}: {}\n",
                code(&n.path),
                text(&n.reason)
            )
        })
        .chain(diff.skipped.iter().map(|n| {
            format!(
                "- Not read for tokens: {} ({})\n",
                code(&n.path),
                text(&n.reason)
            )
        }));
    for line in notes {
        out.note(&line);
    }
    for group in &diff.groups {
        let mut header = format!("#### {}", code(&group.path));
        if !group.context.is_empty() {
            let _ = write!(header, " · {}", code(&group.context));
        }
        header.push_str("\n\n| Token | Change | Before | After |\n| --- | --- | --- | --- |\n");
        let mut rows = group.changes.iter().map(row);
        let Some(first) = rows.next() else { continue };
        // The header only comes with at least one row under it.
        if !out.row(&format!("{}{first}", separator(&out.text, &header))) {
            continue;
        }
        for line in rows {
            out.row(&line);
        }
    }
    out.finish()
}

/// A blank line between blocks (none before the first).
fn separator(so_far: &str, then: &str) -> String {
    if so_far.is_empty() {
        then.to_owned()
    } else {
        format!("\n{then}")
    }
}

fn row(change: &TokenChange) -> String {
    let (name, what, before, after) = match change {
        TokenChange::Changed { name, old, new } => {
            (name, "changed".to_owned(), code(old), code(new))
        }
        TokenChange::Added { name, value } => {
            (name, "added".to_owned(), String::new(), code(value))
        }
        TokenChange::Removed { name, value } => {
            (name, "removed".to_owned(), code(value), String::new())
        }
        TokenChange::Renamed { from, name, value } => (
            name,
            format!("renamed from {}", code(from)),
            code(value),
            code(value),
        ),
    };
    format!("| {} | {what} | {before} | {after} |\n", code(name))
}

/// Text kept within budget, counting what was shown.
struct Fitted {
    text: String,
    used: usize,
    budget: usize,
    rows: (usize, usize),
    notes: (usize, usize),
    full: bool,
}

impl Fitted {
    fn new(budget: usize, rows: usize, notes: usize) -> Fitted {
        Fitted {
            text: String::new(),
            used: 0,
            budget,
            rows: (0, rows),
            notes: (0, notes),
            full: false,
        }
    }

    fn row(&mut self, line: &str) -> bool {
        let fits = self.push(line);
        self.rows.0 += usize::from(fits);
        fits
    }

    fn note(&mut self, line: &str) -> bool {
        let fits = self.push(line);
        self.notes.0 += usize::from(fits);
        fits
    }

    /// Appends `line` if it and the longest possible closing line still fit; after the
    /// first miss nothing more is added, so what is shown is a prefix in order.
    fn push(&mut self, line: &str) -> bool {
        let len = line.chars().count();
        let reserve = tail(self.rows.1, self.notes.1).chars().count();
        if self.full || self.used + len + reserve > self.budget {
            self.full = true;
            return false;
        }
        self.text.push_str(line);
        self.used += len;
        true
    }

    fn finish(mut self) -> String {
        let line = tail(self.rows.1 - self.rows.0, self.notes.1 - self.notes.0);
        if self.used + line.chars().count() <= self.budget {
            self.text.push_str(&line);
        }
        self.text.trim_end().to_owned()
    }
}

/// The closing line for what was left out.
fn tail(rows: usize, notes: usize) -> String {
    let mut parts = Vec::new();
    if rows > 0 {
        parts.push(format!(
            "{rows} more token {}",
            plural(rows as u64, "change", "changes")
        ));
    }
    if notes > 0 {
        parts.push(format!(
            "{notes} more {}",
            plural(notes as u64, "note", "notes")
        ));
    }
    if parts.is_empty() {
        return String::new();
    }
    format!("\n_…and {} not shown here._\n", parts.join(" and "))
}

fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// Plain text for a Markdown line: one line, `|` and `<` made harmless.
fn text(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.replace('|', "\\|").replace('<', "&lt;")
}

/// `s` as a code span in a table cell: on one line, cut to [`MAX_CELL_CHARS`], `|`
/// escaped (GFM tables split cells on it even inside code), fenced with more backticks
/// than it holds.
pub(crate) fn code(s: &str) -> String {
    let mut one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return "_(empty)_".to_owned();
    }
    if one_line.chars().count() > MAX_CELL_CHARS {
        one_line = one_line
            .chars()
            .take(MAX_CELL_CHARS - 1)
            .collect::<String>()
            + "…";
    }
    let escaped = one_line.replace('|', "\\|");
    let longest_run = escaped.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    if longest_run > 0 {
        format!("{fence} {escaped} {fence}")
    } else {
        format!("{fence}{escaped}{fence}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::diff::FileDiff;

    fn diff(rows: usize) -> TokenDiff {
        let changes = (0..rows)
            .map(|i| TokenChange::Changed {
                name: format!("color.gray.{i:03}"),
                old: "#0969DA".into(),
                new: "#0550AE".into(),
            })
            .collect();
        TokenDiff {
            changed: rows as u64,
            files: 1,
            groups: vec![FileDiff {
                path: "src/tokens/colors.css".into(),
                context: ":root".into(),
                changes,
            }],
            ..TokenDiff::default()
        }
    }

    #[test]
    fn summary_names_each_kind_once_and_counts_files() {
        let mut d = diff(12);
        d.added = 3;
        d.removed = 1;
        d.files = 4;
        assert_eq!(
            summary(&d),
            "12 tokens changed, 3 added, 1 removed in 4 files"
        );
        d.changed = 0;
        d.removed = 0;
        d.added = 1;
        d.files = 1;
        assert_eq!(summary(&d), "1 token added in 1 file");
        assert_eq!(summary(&TokenDiff::default()), "");
    }

    #[test]
    fn a_table_shows_each_change_with_its_values_in_code() {
        let text = markdown(&diff(2), usize::MAX);
        assert_eq!(
            text,
            "#### `src/tokens/colors.css` · `:root`\n\n\
             | Token | Change | Before | After |\n| --- | --- | --- | --- |\n\
             | `color.gray.000` | changed | `#0969DA` | `#0550AE` |\n\
             | `color.gray.001` | changed | `#0969DA` | `#0550AE` |"
        );
    }

    #[test]
    fn a_long_diff_is_cut_at_a_row_and_says_how_many_more() {
        let d = diff(500);
        for budget in [0, 10, 150, 400, 4000, 20_000] {
            let text = markdown(&d, budget);
            assert!(text.chars().count() <= budget, "{budget}: {}", text.len());
            let shown = text.lines().filter(|l| l.starts_with("| `")).count();
            if shown < 500 && budget >= 400 {
                assert!(
                    text.ends_with(&format!(
                        "_…and {} more token changes not shown here._",
                        500 - shown
                    )),
                    "{text}"
                );
            }
            // Every table line is a whole row.
            for line in text.lines().filter(|l| l.starts_with('|')) {
                assert!(line.ends_with(" |"), "{line}");
            }
        }
        let fitted = markdown(&d, 4000);
        assert!(fitted.lines().filter(|l| l.starts_with("| `")).count() > 40);
    }

    #[test]
    fn notes_on_files_not_read_come_first_and_survive_a_tight_budget() {
        let mut d = diff(500);
        d.unreadable.push(crate::tokens::FileNote {
            path: "tokens/broken.json".into(),
            reason: "EOF while parsing an object at line 1 column 30 (in the export)".into(),
        });
        let text = markdown(&d, 1000);
        assert!(
            text.starts_with(
                "- Could not read tokens in `tokens/broken.json`: EOF while parsing an object at line 1 column 30 (in the export)\n\n#### "
            ),
            "{text}"
        );
        assert!(text.chars().count() <= 1000);
    }

    #[test]
    fn values_cannot_break_out_of_their_cell() {
        assert_eq!(code("a|b"), "`a\\|b`");
        assert_eq!(code("x`y"), "`` x`y ``");
        assert_eq!(
            code("<script>alert(1)</script>"),
            "`<script>alert(1)</script>`"
        );
        assert_eq!(code("one\ntwo"), "`one two`");
        assert_eq!(code(""), "_(empty)_");
        let long = "x".repeat(200);
        assert_eq!(code(&long).chars().count(), MAX_CELL_CHARS + 2);
        assert_eq!(text("bad <b>|</b>\nline"), "bad &lt;b>\\|&lt;/b> line");
    }
}
