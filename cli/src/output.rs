//! What docker's listings print, shared by the verbs: column-aligned
//! tables in the style of `docker … ls` ([`Table`]: upper-case headers,
//! columns separated by at least three spaces and at least ten characters
//! wide, as docker's `tabwriter` with minimum width 10 and padding 3 lays
//! them out), short IDs ([`truncate_id`]), names in natural order
//! ([`natural_cmp`]), image references as listed ([`display_image`]) and
//! the JSON of `docker … inspect` ([`json_indented`]).

use std::cmp::Ordering;

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

/// Docker's `stringid.TruncateID`: 12 characters.
pub fn truncate_id(id: &str) -> &str {
    let id = id.split_once(':').map_or(id, |(_, rest)| rest);
    id.get(..12).unwrap_or(id)
}

/// Natural order as docker sorts names (`web.2` before `web.10`).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return if da {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        if !da {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (start_a, start_b) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let order = (i - start_a)
            .cmp(&(j - start_b))
            .then_with(|| a[start_a..i].cmp(&b[start_b..j]))
            .then_with(|| start_a.cmp(&start_b));
        if order != Ordering::Equal {
            return order;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// An image reference as docker lists it: a tagged reference loses its
/// digest and the default registry's prefix (`docker.io/library/`).
pub fn display_image(image: &str) -> String {
    let name = image.split_once('@').map_or(image, |(name, _)| name);
    let last = name.rsplit('/').next().unwrap_or(name);
    if !last.contains(':') {
        return image.to_owned();
    }
    let familiar = name
        .strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .or_else(|| name.strip_prefix("index.docker.io/library/"))
        .or_else(|| name.strip_prefix("index.docker.io/"))
        .unwrap_or(name);
    familiar.to_owned()
}

/// JSON indented by four spaces, as `docker … inspect` prints it.
pub fn json_indented(value: &impl serde::Serialize) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    match value.serialize(&mut serializer) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(_) => "[]".to_owned(),
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

    #[test]
    fn names_sort_naturally() {
        let mut names = vec!["web.10", "web.9", "api", "web.1", "web.01"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["api", "web.1", "web.01", "web.9", "web.10"]);
    }

    #[test]
    fn images_lose_digests_like_docker_shows_them() {
        assert_eq!(display_image("whoami:latest@sha256:abc"), "whoami:latest");
        assert_eq!(
            display_image("registry:5000/app:v1"),
            "registry:5000/app:v1"
        );
        assert_eq!(display_image("busybox@sha256:abc"), "busybox@sha256:abc");
        assert_eq!(display_image("docker.io/library/redis:7"), "redis:7");
        assert_eq!(display_image("localhost:5000/app"), "localhost:5000/app");
    }
}
