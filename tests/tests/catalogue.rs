//! The behaviour catalogue (`BEHAVIOUR.md`) and the code agree: every behaviour id cited in the
//! workspace's Rust sources has an entry, every entry is well formed and names tests that
//! exist, and so does every test that `ARCHITECTURE.md` names (on its `Tests:` lines).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the repository")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("can't read {}: {e}", path.display()))
}

/// Behaviour ids in `text`: 2 to 6 capitals, a dash and exactly two digits, standing alone
/// (so `SHA-256` and `UTF-8` are not ids).
fn ids_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let word = |i: usize| {
        bytes
            .get(i)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
    };
    let mut ids = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !word(i - 1);
        if !(starts_word && bytes[i].is_ascii_uppercase()) {
            i += 1;
            continue;
        }
        let mut end = i;
        while end < bytes.len() && bytes[end].is_ascii_uppercase() {
            end += 1;
        }
        let digits = bytes.get(end + 1..end + 3);
        if (2..=6).contains(&(end - i))
            && bytes.get(end) == Some(&b'-')
            && digits.is_some_and(|d| d.iter().all(u8::is_ascii_digit))
            && !word(end + 3)
        {
            ids.push(text[i..end + 3].to_string());
        }
        i = end.max(i + 1);
    }
    ids
}

/// Test references in `line`: backticked `path/to/file.rs::test_name`.
fn test_refs(line: &str) -> Vec<String> {
    line.split('`')
        .skip(1)
        .step_by(2)
        .filter(|quoted| quoted.contains(".rs::"))
        .map(str::to_string)
        .collect()
}

/// The catalogue: each entry's id and the tests it names. Panics on a malformed entry.
fn catalogue() -> BTreeMap<String, Vec<String>> {
    let mut entries = BTreeMap::new();
    for line in read(&repo_root().join("BEHAVIOUR.md")).lines() {
        let Some(rest) = line.strip_prefix("- **") else {
            continue;
        };
        let (id, what) = rest
            .split_once("** ")
            .unwrap_or_else(|| panic!("an entry must start with `- **ID** `: {line}"));
        assert_eq!(ids_in(id), [id], "not a behaviour id: {id}");
        let (_, tests) = what
            .split_once(" Tests: ")
            .unwrap_or_else(|| panic!("{id} must end with ` Tests: ` and its tests"));
        let tests = test_refs(tests);
        assert!(!tests.is_empty(), "{id} names no test");
        assert!(
            entries.insert(id.to_string(), tests).is_none(),
            "{id} has two entries"
        );
    }
    assert!(!entries.is_empty(), "BEHAVIOUR.md has no entries");
    entries
}

/// Every `.rs` file of the workspace, build outputs and hidden directories left out.
fn rust_sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            rust_sources(&path, found);
        } else if name.ends_with(".rs") {
            found.push(path);
        }
    }
}

/// Checks that `reference` (`file.rs::name`) is a test: the file has `fn name`, right below an
/// attribute that makes it one.
fn check_test_exists(reference: &str) -> Result<(), String> {
    let (file, name) = reference.split_once("::").unwrap();
    let path = repo_root().join(file);
    let source = fs::read_to_string(&path).map_err(|_| format!("{reference}: no file {file}"))?;
    let lines: Vec<&str> = source.lines().collect();
    let found = lines.iter().position(|line| {
        let line = line.trim_start();
        let line = line.strip_prefix("async ").unwrap_or(line);
        line.strip_prefix("fn ")
            .and_then(|rest| rest.strip_prefix(name))
            .is_some_and(|rest| rest.starts_with('(') || rest.starts_with('<'))
    });
    let at = found.ok_or_else(|| format!("{reference}: no fn {name} in {file}"))?;
    let is_test = lines[..at]
        .iter()
        .rev()
        .take_while(|line| line.trim_start().starts_with("#["))
        .any(|attribute| attribute.contains("test"));
    if is_test {
        Ok(())
    } else {
        Err(format!("{reference}: fn {name} is not a test"))
    }
}

#[test]
fn ids_are_recognised() {
    let text =
        "// CONN-08, SHUT-10: and CHAOS-01..08 (SHA-256, UTF-8, conn_08, CONN-080, xCONN-08)";
    assert_eq!(ids_in(text), ["CONN-08", "SHUT-10", "CHAOS-01"]);
}

#[test]
fn every_cited_id_has_an_entry() {
    let catalogue = catalogue();
    let root = repo_root();
    let mut sources = Vec::new();
    rust_sources(&root, &mut sources);
    assert!(sources.len() > 50, "found only {} sources", sources.len());
    let mut missing = BTreeSet::new();
    for path in sources {
        for id in ids_in(&read(&path)) {
            if !catalogue.contains_key(&id) {
                let file = path.strip_prefix(&root).unwrap().display().to_string();
                missing.insert(format!("{id} (cited in {file})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ids with no entry in BEHAVIOUR.md: {missing:#?}"
    );
}

#[test]
fn every_named_test_exists() {
    let mut named: Vec<String> = catalogue().into_values().flatten().collect();
    // ARCHITECTURE.md names code too (`setup.rs::set_up`): only its `Tests:` lines name tests
    let architecture = read(&repo_root().join("ARCHITECTURE.md"));
    let test_lines = architecture.lines().filter_map(|l| l.split_once("Tests:"));
    named.extend(test_lines.flat_map(|(_, tests)| test_refs(tests)));
    let broken: Vec<String> = named
        .iter()
        .filter_map(|reference| check_test_exists(reference).err())
        .collect();
    assert!(
        broken.is_empty(),
        "named tests that don't exist: {broken:#?}"
    );
}
