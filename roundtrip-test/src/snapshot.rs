//! Snapshot files: a generated output is compared with the copy committed beside the
//! code, and a change fails with a readable line diff.
//!
//! Run with `UPDATE_SNAPSHOTS=1` to write the new output over the committed file, then
//! review the change with `git diff` like any other.

use std::path::Path;

use serde_json::Value;

/// Compares `actual` (pretty-printed) with the file at `path`.
///
/// # Panics
///
/// When they differ (with a diff), or when the file is missing or unreadable, unless
/// `UPDATE_SNAPSHOTS=1` is set, in which case the file is (re)written.
pub fn assert_json_snapshot(path: impl AsRef<Path>, actual: &Value) {
    let path = path.as_ref();
    let mut rendered = match serde_json::to_string_pretty(actual) {
        Ok(text) => text,
        Err(err) => panic!("snapshot {}: cannot render JSON: {err}", path.display()),
    };
    rendered.push('\n');
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        if let Err(err) = std::fs::write(path, &rendered) {
            panic!("snapshot {}: cannot write: {err}", path.display());
        }
        return;
    }
    let expected = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => panic!(
            "snapshot {}: cannot read ({err}); run with UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        ),
    };
    if expected != rendered {
        panic!(
            "snapshot {} is out of date (run with UPDATE_SNAPSHOTS=1 to accept):\n{}",
            path.display(),
            line_diff(&expected, &rendered)
        );
    }
}

/// A unified-style diff of two texts: `-` lines only in `old`, `+` lines only in `new`,
/// with two lines of context around each change.
pub fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Longest common subsequence table; documents are small enough for O(n*m).
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    let changed: Vec<bool> = ops.iter().map(|(k, _)| *k != ' ').collect();
    let near_change = |idx: usize| {
        let lo = idx.saturating_sub(2);
        let hi = (idx + 3).min(ops.len());
        changed[lo..hi].iter().any(|c| *c)
    };
    let mut out = String::new();
    let mut skipped = false;
    for (idx, (kind, line)) in ops.iter().enumerate() {
        if near_change(idx) {
            out.push_str(&format!("{kind} {line}\n"));
            skipped = false;
        } else if !skipped {
            out.push_str("  ...\n");
            skipped = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_changed_lines() {
        let diff = line_diff("a\nb\nc\nd\ne\nf\ng\n", "a\nb\nc\nX\ne\nf\ng\n");
        assert!(diff.contains("- d"), "{diff}");
        assert!(diff.contains("+ X"), "{diff}");
        assert!(!diff.contains("  a"), "{diff}");
    }
}
