//! Terminal tables sized to their content: every column as wide as its
//! widest cell (header included) and two spaces between columns, so a long
//! service name or timestamp never runs into the next column. The last
//! column is never padded (no trailing blanks). Widths count characters and
//! skip ANSI colour sequences, so a painted cell lines up like a plain one.

use std::fmt::Write;

/// How a column's cells sit in its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Columns, then rows of cells; `render` lays them out.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<(String, Align)>,
    rows: Vec<Line>,
    indent: String,
}

#[derive(Debug, Clone)]
enum Line {
    Cells(Vec<String>),
    /// A line of its own between rows (a collapsed run): not part of the widths.
    Note(String),
}

/// Space between two columns.
const GAP: &str = "  ";

impl Table {
    pub fn new(columns: &[(&str, Align)]) -> Table {
        Table {
            columns: columns.iter().map(|(h, a)| (h.to_string(), *a)).collect(),
            rows: Vec::new(),
            indent: String::new(),
        }
    }

    /// Text put before every line (a table nested under a heading).
    pub fn indent(mut self, indent: &str) -> Table {
        self.indent = indent.to_string();
        self
    }

    /// One row; missing cells are empty, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(Line::Cells(cells));
    }

    /// A free line between rows, indented like them.
    pub fn note(&mut self, text: String) {
        self.rows.push(Line::Note(text));
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The header line and one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let n = self.columns.len();
        let mut widths: Vec<usize> = self.columns.iter().map(|(h, _)| width(h)).collect();
        for r in &self.rows {
            let Line::Cells(r) = r else { continue };
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(width(c));
            }
        }
        let mut out = String::new();
        let header = Line::Cells(self.columns.iter().map(|(h, _)| h.clone()).collect());
        for row in std::iter::once(&header).chain(&self.rows) {
            let cells = match row {
                Line::Cells(cells) => cells,
                Line::Note(text) => {
                    let _ = writeln!(out, "{}{text}", self.indent);
                    continue;
                }
            };
            let mut line = self.indent.clone();
            for (i, ((_, align), w)) in self.columns.iter().zip(&widths).enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                let pad = w.saturating_sub(width(cell));
                let last = i + 1 == n;
                if i > 0 {
                    line.push_str(GAP);
                }
                match align {
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(cell);
                    }
                    Align::Left => {
                        line.push_str(cell);
                        if !last {
                            line.extend(std::iter::repeat_n(' ', pad));
                        }
                    }
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

/// Characters as a terminal shows them: ANSI `ESC [ … m` sequences take no room.
pub fn width(s: &str) -> usize {
    let mut n = 0;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell_and_never_touch() {
        let mut t = Table::new(&[
            ("service", Align::Left),
            ("uptime", Align::Right),
            ("cause", Align::Left),
        ]);
        t.row(vec!["NeuroSphere SendText".into(), "100%".into(), "tcp refused".into()]);
        t.row(vec!["db".into(), "99.123%".into(), "-".into()]);
        let out = t.render();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "service                uptime  cause");
        assert_eq!(lines[1], "NeuroSphere SendText     100%  tcp refused");
        assert_eq!(lines[2], "db                    99.123%  -");
    }

    #[test]
    fn colour_takes_no_width_and_the_indent_leads() {
        let mut t = Table::new(&[("a", Align::Left), ("b", Align::Left)]).indent("  ");
        t.row(vec!["\x1b[31mDOWN\x1b[0m".into(), "x".into()]);
        t.row(vec!["UP".into(), "y".into()]);
        let out = t.render();
        assert_eq!(out, "  a     b\n  \x1b[31mDOWN\x1b[0m  x\n  UP    y\n");
        assert_eq!(width("\x1b[31;1mDOWN\x1b[0m"), 4);
    }
}
