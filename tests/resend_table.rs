//! docs/reliability.md's table of which quests resend (`Resend::Safe`) and
//! which never do (`Resend::Never`) is the specs' own: this reads every
//! `specs!` table under `src/api/` and the docs table, and fails (printing
//! the table to paste) when they differ.

use std::collections::BTreeMap;
use std::path::Path;

/// `wire method -> (area file, class)` from the `specs!` tables.
fn from_specs() -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let code = std::fs::read_to_string(&path).unwrap();
        let area = path.file_stem().unwrap().to_string_lossy().into_owned();
        // The macro's invocations, not its definition in spec.rs.
        let Some(start) = code.find("\nspecs! {") else {
            continue;
        };
        let block = &code[start..];
        let block = &block[..block.find("\n}").expect("the end of specs!")];
        for line in block.lines().skip(1) {
            // `NAME = "method", Class[, timeout ...];` (comments skipped)
            let Some((_, rest)) = line.split_once(" = \"") else {
                continue;
            };
            if line.trim_start().starts_with("//") {
                continue;
            }
            let rest = format!("\"{rest}");
            let mut parts = rest.split(',');
            let method = parts.next().unwrap().trim().trim_matches('"').to_owned();
            let class = parts
                .next()
                .expect("a resend class")
                .trim()
                .trim_end_matches(';')
                .to_owned();
            let previous = out.insert(method.clone(), (area.clone(), class));
            assert!(previous.is_none(), "{method} declared twice");
        }
    }
    out
}

/// The same, from the table in docs/reliability.md.
fn from_docs() -> BTreeMap<String, (String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reliability.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let mut out = BTreeMap::new();
    let mut in_table = false;
    for line in doc.lines() {
        if line.starts_with("| wire method | area | resend |") {
            in_table = true;
            continue;
        }
        if !in_table || line.starts_with("|---") {
            continue;
        }
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().trim_matches('`'))
            .collect();
        assert_eq!(cells.len(), 3, "row {line:?}");
        out.insert(
            cells[0].to_owned(),
            (cells[1].to_owned(), cells[2].to_owned()),
        );
    }
    out
}

#[test]
fn the_resend_table_is_the_specs() {
    let specs = from_specs();
    assert!(specs.len() > 50, "found only {} specs", specs.len());
    assert!(specs.values().any(|(_, c)| c == "Never"));
    let docs = from_docs();
    if specs != docs {
        let mut table = String::from("| wire method | area | resend |\n|---|---|---|\n");
        for (m, (area, class)) in &specs {
            table.push_str(&format!("| `{m}` | {area} | {class} |\n"));
        }
        panic!("docs/reliability.md's table differs from the specs; it should be:\n{table}");
    }
}
