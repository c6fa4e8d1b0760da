//! The documentation against the code: the README stays a front page, every page it moved to
//! `docs/` is reachable from it, relative links resolve, and the reference tables list what
//! the binary has (every setting of `serve --help`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `text` without its code: fenced blocks and inline spans hold regexes and such, not links.
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut kept = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            // Odd pieces between backticks are inline code.
            for (i, piece) in line.split('`').enumerate() {
                if i % 2 == 0 {
                    kept.push_str(piece);
                }
            }
            kept.push('\n');
        }
    }
    kept
}

/// The targets of the Markdown links in `text` that are files of this repository.
fn relative_links(text: &str) -> Vec<String> {
    prose(text)
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|target| target.split('#').next().unwrap_or_default().to_owned())
        .filter(|t| !t.is_empty() && !t.contains("://") && !t.starts_with("mailto:"))
        .collect()
}

fn docs_pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    pages.sort();
    pages
}

#[test]
fn the_readme_is_a_front_page_that_reaches_every_docs_page() {
    let readme = read(&repo().join("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines <= 200,
        "README.md has {lines} lines; move reference material to docs/"
    );
    for section in [
        "## The two commands",
        "## Try it",
        "cargo run --release -- serve",
        "./scripts/test",
    ] {
        assert!(readme.contains(section), "README.md lacks {section:?}");
    }
    let linked: BTreeSet<String> = relative_links(&readme).into_iter().collect();
    for page in docs_pages() {
        let name = format!("docs/{}", page.file_name().unwrap().to_string_lossy());
        assert!(linked.contains(&name), "README.md does not link {name}");
    }
    for file in ["SECURITY.md", "LICENSE", "RELIABILITY.md", "BENCHMARKS.md"] {
        assert!(linked.contains(file), "README.md does not link {file}");
    }
}

#[test]
fn relative_links_resolve() {
    let mut pages = docs_pages();
    for root in [
        "README.md",
        "SECURITY.md",
        "RELIABILITY.md",
        "BENCHMARKS.md",
    ] {
        pages.push(repo().join(root));
    }
    for page in pages {
        let dir = page.parent().unwrap();
        for target in relative_links(&read(&page)) {
            assert!(
                dir.join(&target).exists(),
                "{}: link to {target} does not resolve",
                page.display()
            );
        }
    }
}

#[test]
fn the_license_is_the_one_cargo_declares() {
    let manifest = read(&repo().join("Cargo.toml"));
    assert!(manifest.contains("license = \"Apache-2.0\""));
    let license = read(&repo().join("LICENSE"));
    assert!(
        license.contains("Apache License"),
        "LICENSE is not the Apache License"
    );
    assert!(license.contains("Version 2.0, January 2004"));
}

#[test]
fn the_settings_page_lists_every_setting_of_serve_help() {
    let settings = read(&repo().join("docs/settings.md"));
    let variables = crate::support::binary::serve_help_variables();
    assert!(variables.len() >= 25, "{variables:?}");
    let missing: Vec<&String> = variables
        .iter()
        .filter(|v| !settings.contains(&format!("| `{v}` |")))
        .collect();
    assert!(missing.is_empty(), "docs/settings.md lacks {missing:?}");
    // Playbook settings are an open map, so no `--help` line lists them one by one.
    for open in [
        "| `RESPONDER_CONFIG_<NAME>` |",
        "playbook_config:",
        "responders/playbook-config.yaml",
    ] {
        assert!(settings.contains(open), "docs/settings.md lacks {open:?}");
    }
}
