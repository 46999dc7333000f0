//! What the CLI prints: aligned tables for people, JSON for scripts; and the lists it reads.

use serde_json::Value;
use tower_agent_auth::ceiling::CapabilitySet;

/// A comma-separated list given to `option` (`a,b`): an empty list or an empty item (`a,,b`) is
/// refused, never taken for "none".
pub fn list(option: &str, text: &str) -> Result<Vec<String>, String> {
    let items: Vec<String> = text.split(',').map(|s| s.trim().to_owned()).collect();
    if text.trim().is_empty() {
        return Err(format!(
            "{option} is empty: name at least one (e.g. {option} a,b)"
        ));
    }
    if items.iter().any(String::is_empty) {
        return Err(format!("{option} {text:?} has an empty item"));
    }
    Ok(items)
}

/// The capabilities given to `option` (`--capabilities`, `--deny`).
pub fn capabilities(option: &str, text: &str) -> Result<CapabilitySet, Box<dyn std::error::Error>> {
    Ok(CapabilitySet::parse(list(option, text)?)?)
}

/// `count` and `noun`, plural unless one: `1 token`, `2 tokens`.
pub fn count(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Writes `text` and a newline to stdout. A failure (stdout closed: `| head`) is returned, not
/// a panic as with `println!`; `main` ends quietly on a closed pipe.
pub fn out(text: impl std::fmt::Display) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    stdout.flush()
}

/// Writes `line` to stderr; a closed stderr is ignored (there is nowhere left to say it).
pub fn warn(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// A JSON scalar as table text.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            if items.is_empty() {
                "-".into()
            } else {
                items.iter().map(cell).collect::<Vec<_>>().join(",")
            }
        }
        other => other.to_string(),
    }
}

/// Prints `rows` (JSON objects) as `--json` or as a table of `columns`.
pub fn print(json: bool, rows: &[Value], columns: &[&str]) -> std::io::Result<()> {
    if json {
        return out(Value::Array(rows.to_vec()));
    }
    if rows.is_empty() {
        return out("(none)");
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| columns.iter().map(|c| cell(&row[*c])).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(c.len())
        })
        .collect();
    let line = |items: Vec<String>| {
        items
            .iter()
            .zip(&widths)
            .map(|(item, width)| format!("{item:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut table = line(columns.iter().map(|c| c.to_uppercase()).collect());
    for row in cells {
        table.push('\n');
        table.push_str(&line(row));
    }
    out(table)
}

/// Prints one record: `--json`, or `key: value` lines.
pub fn print_one(json: bool, value: &Value) -> std::io::Result<()> {
    if json {
        return out(value);
    }
    let Value::Object(fields) = value else {
        return out(cell(value));
    };
    let lines: Vec<String> = fields
        .iter()
        .map(|(key, field)| match field {
            Value::Object(_) => format!("{key}: {field}"),
            other => format!("{key}: {}", cell(other)),
        })
        .collect();
    out(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_refuse_empty_items() {
        assert_eq!(list("--x", " a , b ").unwrap(), ["a", "b"]);
        for bad in ["", " ", "a,,b", "a,", ",a"] {
            assert!(list("--x", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(count(0, "token"), "0 tokens");
        assert_eq!(count(1, "token"), "1 token");
        assert_eq!(count(2, "child agent"), "2 child agents");
    }
}
