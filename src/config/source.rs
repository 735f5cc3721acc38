//! A loaded text file that maps byte offsets to line:column, so every config error and warning
//! can name the exact place.

use std::path::{Path, PathBuf};

use crate::error::Location;

/// The text of a user file plus the start offset of every line.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceText {
    pub fn new(path: &Path, text: String) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceText {
            path: path.to_path_buf(),
            text,
            line_starts,
        }
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let column = self.text[start..offset].chars().count() + 1;
        Location {
            path: self.path.clone(),
            line: line + 1,
            column,
        }
    }
}

/// The known name a typo most likely meant: equal up to case and `-`/`_`, or within a small
/// edit distance; for "did you mean" hints.
pub fn did_you_mean<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let normal = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], "");
    let lowered = word.to_ascii_lowercase();
    known
        .iter()
        .copied()
        .filter(|name| {
            normal(word) == normal(name) || edit_distance(&lowered, name) <= (name.len() / 4).max(1)
        })
        .min_by_key(|name| edit_distance(&lowered, name))
}

/// Edit distance over characters where swapping two adjacent characters counts as one edit
/// (optimal string alignment), since transpositions are the commonest typo.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_columns() {
        let s = SourceText::new(Path::new("q.toml"), "a = 1\nbé = 2\n".into());
        assert_eq!((s.location(0).line, s.location(0).column), (1, 1));
        assert_eq!((s.location(6).line, s.location(6).column), (2, 1));
        // 'é' is two bytes but one column
        assert_eq!(s.location(9).column, 3);
    }
}
