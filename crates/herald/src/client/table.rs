//! Plain-text tables for people: aligned columns, no borders, no colour. Never used for
//! `--json` output, which scripts parse.

/// Prints a header row and `rows` with every column padded to its widest cell.
pub(super) fn print(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut all = vec![headers.iter().map(|header| (*header).to_owned()).collect::<Vec<_>>()];
    all.extend(rows);
    print_plain(all);
}

/// Prints `rows` aligned, without a header.
pub(super) fn print_plain(rows: Vec<Vec<String>>) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter().filter_map(|row| row.get(column)).map(|cell| cell.chars().count()).max().unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[column]));
            }
        }
        println!("{}", line.trim_end());
    }
}
