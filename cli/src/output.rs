//! Column-aligned tables in the style of `docker … ls`: upper-case headers,
//! columns separated by at least three spaces and at least ten characters
//! wide, as docker's `tabwriter` (minimum width 10, padding 3) lays them
//! out.

/// Docker's `tabwriter` minimum cell width, padding included.
const MIN_WIDTH: usize = 10;
/// Docker's `tabwriter` padding.
const PADDING: usize = 3;

/// A table being built row by row.
#[derive(Debug)]
pub struct Table<const N: usize> {
    header: [String; N],
    rows: Vec<[String; N]>,
}

impl<const N: usize> Table<N> {
    /// A table with these column headers.
    pub fn new(header: [&str; N]) -> Self {
        Self {
            header: header.map(str::to_owned),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: [String; N]) {
        self.rows.push(cells);
    }

    /// Renders the table, one line per row, trailing spaces trimmed.
    pub fn render(&self) -> String {
        let mut widths = [MIN_WIDTH; N];
        for line in std::iter::once(&self.header).chain(&self.rows) {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count() + PADDING);
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate() {
                text.push_str(cell);
                if i + 1 < N {
                    text.push_str(&" ".repeat(widths[i] - cell.chars().count()));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let mut t = Table::new(["ID", "NAME", "MODE"]);
        t.row(["abc".into(), "x".into(), "m".into()]);
        t.row(["a".into(), "much longer".into(), "n".into()]);
        assert_eq!(
            t.render(),
            "\
ID        NAME          MODE
abc       x             m
a         much longer   n
"
        );
    }
}
