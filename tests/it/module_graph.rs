//! Imports run one way: no cycle between the top-level modules of `src/` (DESIGN.md, "The flow:
//! one way, downstream only"). The same reading as `scripts/module-graph`, in Rust so the test
//! needs nothing but cargo: an edge `a -> b` is a `crate::b` path (or a `use crate::{b, ..}`
//! group, or a `super::` chain climbing out of `a`) in a file of `a`. Comments, strings and
//! `#[cfg(test)]` code do not count: a doc link is not an import, and a test may build its
//! fixtures with a module above the one it tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The length of the identifier starting at `i` (0 when none does).
fn ident_len(b: &[u8], i: usize) -> usize {
    if i >= b.len() || !(b[i].is_ascii_alphabetic() || b[i] == b'_') {
        return 0;
    }
    b[i..].iter().take_while(|&&c| is_ident(c)).count()
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// A raw string opening at `i` (`r"`, `r#"`, `br"`...): its hashes and where its text starts.
fn raw_open(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if i > 0 && is_ident(b[i - 1]) {
        return None;
    }
    let mut j = i + usize::from(b.get(i) == Some(&b'b'));
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
    (b.get(j + hashes) == Some(&b'"')).then_some((hashes, j + hashes + 1))
}

/// The length of the char literal at `i` (`'a'`, `'\n'`, `'\u{..}'`), or `None` for a lifetime.
fn char_literal(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    let body = match b.get(i + 1)? {
        b'\\' if b.get(i + 2) == Some(&b'u') => b[i..].iter().position(|&c| c == b'}')?,
        b'\\' => 2,
        b'\'' => return None,
        _ => text[i + 1..].chars().next()?.len_utf8(),
    };
    (b.get(i + 1 + body) == Some(&b'\'')).then_some(body + 2)
}

/// The source with comments, string and char literals blanked out, offsets kept.
fn strip(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let n = b.len();
    let mut out = b.to_vec();
    let mut i = 0;
    while i < n {
        let end = if b[i..].starts_with(b"//") {
            b[i..].iter().position(|&c| c == b'\n').map_or(n, |p| i + p)
        } else if b[i..].starts_with(b"/*") {
            let (mut depth, mut j) = (1, i + 2);
            while j < n && depth > 0 {
                if b[j..].starts_with(b"/*") {
                    (depth, j) = (depth + 1, j + 2);
                } else if b[j..].starts_with(b"*/") {
                    (depth, j) = (depth - 1, j + 2);
                } else {
                    j += 1;
                }
            }
            j
        } else if let Some((hashes, from)) = raw_open(b, i) {
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            b[from..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(n, |p| from + p + close.len())
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < n && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(n)
        } else if b[i] == b'\'' {
            match char_literal(text, i) {
                Some(len) => i + len,
                None => i + 1,
            }
        } else {
            i += 1;
            continue;
        };
        out[i..end].fill(b' ');
        i = end;
    }
    out
}

/// The end of the balanced `{..}` block opening at `i`.
fn block_end(b: &[u8], i: usize) -> usize {
    let mut depth = 0usize;
    for (j, &c) in b.iter().enumerate().skip(i) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
    }
    b.len()
}

/// Blanks every `#[cfg(test)]` item; returns the names of `#[cfg(test)] mod x;` files.
fn drop_tests(b: &mut [u8]) -> BTreeSet<String> {
    const CFG: &[u8] = b"#[cfg(test)]";
    let mut children = BTreeSet::new();
    let mut i = 0;
    while let Some(p) = b[i..].windows(CFG.len()).position(|w| w == CFG) {
        let start = i + p;
        let mut j = start + CFG.len();
        while j < b.len() && b[j] != b';' && b[j] != b'{' {
            j += 1;
        }
        let end = if b.get(j) == Some(&b';') {
            let header = String::from_utf8_lossy(&b[start + CFG.len()..j]).into_owned();
            let words: Vec<&str> = header.split_whitespace().collect();
            if let [.., "mod", name] = words.as_slice() {
                children.insert((*name).to_owned());
            }
            j + 1
        } else {
            block_end(b, j)
        };
        b[start..end].fill(b' ');
        i = end;
    }
    children
}

/// The first identifier of each item of the `{..}` group opening at `i`.
fn group_heads(b: &[u8], mut i: usize) -> Vec<String> {
    let (mut heads, mut depth, mut want) = (Vec::new(), 0usize, true);
    while i < b.len() {
        match b[i] {
            b'{' => {
                depth += 1;
                want = depth == 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            b',' if depth == 1 => want = true,
            _ if want && depth == 1 && ident_len(b, i) > 0 => {
                let len = ident_len(b, i);
                heads.push(String::from_utf8_lossy(&b[i..i + len]).into_owned());
                want = false;
                i += len;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    heads
}

/// How many inline `mod x { .. }` blocks enclose each offset (they deepen `super::`).
fn inline_depths(b: &[u8]) -> Vec<usize> {
    let mut opens = BTreeSet::new();
    for i in 0..b.len() {
        if b[i..].starts_with(b"mod") && (i == 0 || !is_ident(b[i - 1])) {
            let name = skip_space(b, i + 3);
            let len = ident_len(b, name);
            let brace = skip_space(b, name + len);
            if name > i + 3 && len > 0 && b.get(brace) == Some(&b'{') {
                opens.insert(brace);
            }
        }
    }
    let (mut stack, mut depth, mut at) = (Vec::new(), 0usize, Vec::with_capacity(b.len()));
    for (i, &c) in b.iter().enumerate() {
        if c == b'{' {
            depth += 1;
            if opens.contains(&i) {
                stack.push(depth);
            }
        } else if c == b'}' {
            if stack.last() == Some(&depth) {
                stack.pop();
            }
            depth = depth.saturating_sub(1);
        }
        at.push(stack.len());
    }
    at
}

/// The top-level modules one file (at module path `path`) names.
fn targets(b: &[u8], path: &[String]) -> BTreeSet<String> {
    let depths = inline_depths(b);
    let mut found = BTreeSet::new();
    for i in 0..b.len() {
        if i > 0 && (is_ident(b[i - 1]) || b[i - 1] == b':') {
            continue;
        }
        let mut j = i;
        let mut climbs = 0;
        if b[i..].starts_with(b"crate::") {
            j += "crate::".len();
        } else {
            while b[j..].starts_with(b"super::") {
                (climbs, j) = (climbs + 1, j + "super::".len());
            }
            if climbs == 0 || climbs != path.len() + depths[i] {
                continue; // not a path, or one that stays inside its own top-level module
            }
        }
        let j = skip_space(b, j);
        let names = if b.get(j) == Some(&b'{') {
            group_heads(b, j)
        } else {
            let len = ident_len(b, j);
            vec![String::from_utf8_lossy(&b[j..j + len]).into_owned()]
        };
        found.extend(
            names
                .into_iter()
                .filter(|n| !["", "self", "super", "crate"].contains(&n.as_str())),
        );
    }
    found
}

/// src-relative file -> module path: `a/b.rs` is `[a, b]`, `a/mod.rs` is `[a]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().map(String::as_str) == Some("mod") {
        parts.pop();
    }
    parts
}

/// The graph of `(src-relative path, text)` files; `lib.rs` and `main.rs` are crate roots.
fn graph(files: &[(PathBuf, String)]) -> Graph {
    let mut texts = BTreeMap::new();
    let mut tests = BTreeSet::new();
    for (rel, text) in files {
        if rel == Path::new("lib.rs") || rel == Path::new("main.rs") {
            continue;
        }
        let path = module_path(rel);
        let mut stripped = strip(text);
        for child in drop_tests(&mut stripped) {
            tests.insert([path.clone(), vec![child]].concat());
        }
        texts.insert(path, stripped);
    }
    let mut edges: Graph = texts
        .keys()
        .map(|p| (p[0].clone(), BTreeSet::new()))
        .collect();
    for (path, text) in &texts {
        if (1..=path.len()).any(|k| tests.contains(&path[..k])) {
            continue;
        }
        for target in targets(text, path) {
            if edges.contains_key(&target) && target != path[0] {
                edges
                    .get_mut(&path[0])
                    .expect("every module has a row")
                    .insert(target);
            }
        }
    }
    edges
}

/// Every module `from` reaches.
fn reach(edges: &Graph, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_owned()];
    while let Some(m) = todo.pop() {
        for next in &edges[&m] {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

/// The edges that lie on a cycle, as `a -> b`.
fn cyclic_edges(edges: &Graph) -> Vec<String> {
    let reached: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|m| (m, reach(edges, m))).collect();
    let mut out = Vec::new();
    for (a, targets) in edges {
        for b in targets {
            if reached[b].contains(a) {
                out.push(format!("{a} -> {b}"));
            }
        }
    }
    out
}

fn rust_files(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, String)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.strip_prefix(root).unwrap().to_path_buf(), text));
        }
    }
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &src, &mut files);
    let edges = graph(&files);
    assert!(edges.len() > 10, "src/ was read: {edges:?}");
    assert!(edges["app"].contains("store"), "edges are found: {edges:?}");
    let cyclic = cyclic_edges(&edges);
    assert!(
        cyclic.is_empty(),
        "imports must run one way (scripts/module-graph shows the graph); edges on a cycle:\n{}",
        cyclic.join("\n")
    );
}

fn files(list: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
    list.iter()
        .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
        .collect()
}

#[test]
fn the_reader_finds_paths_and_groups_and_climbs_but_not_comments_strings_or_tests() {
    let edges = graph(&files(&[
        ("lib.rs", "pub mod a; pub mod b; use crate::c;"),
        ("a.rs", "use crate::{b::X, c::{self, Y}};\nfn f() { super::d::g() }"),
        (
            "b/mod.rs",
            "// crate::a\n/// [`crate::a`]\nconst S: &str = \"crate::a\";\nconst R: &str = r#\"crate::a\"#;\nfn l<'a>(x: &'a str) -> char { 'c' }\n#[cfg(test)]\nmod tests { use crate::a; }\n#[cfg(test)]\nmod more;\nmod inner { fn f() { super::super::e::h() } }",
        ),
        ("b/more.rs", "use crate::a;"),
        ("b/sub.rs", "use super::x; use $crate::c::Z;"),
        ("c.rs", "pub(crate) fn f() {}"),
        ("d.rs", ""),
        ("e.rs", ""),
    ]));
    let named = |m: &str| edges[m].iter().cloned().collect::<Vec<_>>();
    assert_eq!(named("a"), ["b", "c", "d"]);
    assert_eq!(named("b"), ["c", "e"]);
    assert!(named("c").is_empty());
    assert!(cyclic_edges(&edges).is_empty());
}

#[test]
fn a_cycle_is_reported_with_its_edges() {
    let edges = graph(&files(&[
        ("a.rs", "use crate::b::X;"),
        ("b/mod.rs", "fn f() { crate::c::g() }"),
        ("c.rs", "use crate::a::Y; use crate::d;"),
        ("d.rs", ""),
    ]));
    assert_eq!(cyclic_edges(&edges), ["a -> b", "b -> c", "c -> a"]);
}
