//! What the CLI prints: aligned tables for people, JSON for scripts; and the duration syntax.

use serde_json::Value;

/// `15m`, `3600` (seconds), `30d`; units `s`, `m`, `h`, `d`, `w`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {text:?}: expected e.g. 45s, 15m, 12h, 30d, 2w or 3600");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(seconds)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .map(std::time::Duration::from_secs)
        .ok_or_else(bad)
}

/// A comma-separated list (`a,b`), without empty items.
pub fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
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
pub fn print(json: bool, rows: &[Value], columns: &[&str]) {
    if json {
        println!("{}", Value::Array(rows.to_vec()));
        return;
    }
    if rows.is_empty() {
        println!("(none)");
        return;
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
    println!(
        "{}",
        line(columns.iter().map(|c| c.to_uppercase()).collect())
    );
    for row in cells {
        println!("{}", line(row));
    }
}

/// Prints one record: `--json`, or `key: value` lines.
pub fn print_one(json: bool, value: &Value) {
    if json {
        println!("{value}");
        return;
    }
    if let Value::Object(fields) = value {
        for (key, field) in fields {
            match field {
                Value::Object(_) => println!("{key}: {field}"),
                other => println!("{key}: {}", cell(other)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("15m"),
            Ok(std::time::Duration::from_secs(900))
        );
        assert_eq!(
            parse_duration("3600"),
            Ok(std::time::Duration::from_secs(3600))
        );
        assert_eq!(
            parse_duration("30d"),
            Ok(std::time::Duration::from_secs(30 * 86_400))
        );
        for bad in ["", "m", "15x", "-5m", "1.5h", "99999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
