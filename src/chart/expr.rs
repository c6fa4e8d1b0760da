//! The alert's expression, from Prometheus' graph link (`generatorURL`, whose `g0.expr` is the
//! rule's PromQL), and the sides of a comparison, each worth plotting on its own: the chart of
//! `a > b` shows `a` and the threshold `b`, not the 0/1 (or filtered) result of the comparison.

/// The PromQL comparison operators, longest first so `>=` is not read as `>`.
const COMPARISONS: &[&str] = &[">=", "<=", "==", "!=", ">", "<"];

/// `g0.expr` of a Prometheus graph link, percent-decoded; `None` when it has none.
pub fn from_generator_url(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(key, value)| key == "g0.expr" && !value.trim().is_empty())
        .map(|(_, value)| value.trim().to_owned())
}

/// The queries to plot for `expr`: both sides of a top-level comparison (the `bool` modifier
/// and vector matching after the operator dropped), else the expression itself.
pub fn sides(expr: &str) -> Vec<String> {
    match split_comparison(expr) {
        Some((left, right)) => vec![left, right],
        None => vec![expr.trim().to_owned()],
    }
}

/// The two sides of the first comparison outside brackets, quotes and braces.
fn split_comparison(expr: &str) -> Option<(String, String)> {
    let bytes = expr.as_bytes();
    let (mut depth, mut quote) = (0usize, None::<u8>);
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), b'\\') => i += 1,
            (Some(_), _) => {}
            (None, b'"' | b'\'' | b'`') => quote = Some(c),
            (None, b'(' | b'[' | b'{') => depth += 1,
            (None, b')' | b']' | b'}') => depth = depth.saturating_sub(1),
            (None, _) if depth == 0 => {
                if let Some(op) = COMPARISONS.iter().find(|op| expr[i..].starts_with(**op)) {
                    let left = expr[..i].trim();
                    let right = strip_modifiers(expr[i + op.len()..].trim());
                    return (!left.is_empty() && !right.is_empty())
                        .then(|| (left.to_owned(), right.to_owned()));
                }
            }
            (None, _) => {}
        }
        i += 1;
    }
    None
}

/// The right side without `bool` and `on(...)`/`ignoring(...)`/`group_left(...)` prefixes,
/// which belong to the operator, not to the operand.
fn strip_modifiers(mut side: &str) -> &str {
    loop {
        let before = side;
        if let Some(rest) = keyword(side, "bool") {
            side = rest;
        }
        for word in ["on", "ignoring", "group_left", "group_right"] {
            let Some(rest) = keyword(side, word) else {
                continue;
            };
            match rest.strip_prefix('(').and_then(|args| args.split_once(')')) {
                Some((_, after)) => side = after.trim_start(),
                // `group_left` may stand without labels; `on` and `ignoring` may not.
                None if word.starts_with("group") => side = rest,
                None => {}
            }
        }
        if side == before {
            return side;
        }
    }
}

/// `text` after the keyword `word` (a whole word), trimmed; `None` when it does not start so.
fn keyword<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(word)?;
    let whole = !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':');
    whole.then(|| rest.trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expression_comes_from_the_graph_link() {
        let url = "http://prometheus:9090/graph?g0.expr=container_memory_usage_bytes%7Bname%3D%22k2-a%22%7D+%2F+1e6+%3E+90&g0.tab=1";
        assert_eq!(
            from_generator_url(url).as_deref(),
            Some("container_memory_usage_bytes{name=\"k2-a\"} / 1e6 > 90")
        );
        assert_eq!(from_generator_url("http://prometheus:9090/graph"), None);
        assert_eq!(from_generator_url("http://p/graph?g0.tab=1"), None);
        assert_eq!(
            from_generator_url("http://p/graph?g0.expr=up#x").as_deref(),
            Some("up")
        );
    }

    #[test]
    fn comparisons_split_at_the_top_level_only() {
        let table: &[(&str, &[&str])] = &[
            ("up", &["up"]),
            ("mem / limit * 100 > 90", &["mem / limit * 100", "90"]),
            ("a >= bool 3", &["a", "3"]),
            (
                "lag > on(topic) group_left threshold",
                &["lag", "threshold"],
            ),
            (
                "sum(rate(x{code=~\"5..|>\"}[5m])) < 1",
                &["sum(rate(x{code=~\"5..|>\"}[5m]))", "1"],
            ),
            (
                "max_over_time(x[5m] offset 1m) != 0",
                &["max_over_time(x[5m] offset 1m)", "0"],
            ),
            ("(a > b)", &["(a > b)"]),
            ("a > boolean_limit", &["a", "boolean_limit"]),
            ("a < online", &["a", "online"]),
        ];
        for (expr, want) in table {
            assert_eq!(sides(expr), *want, "{expr}");
        }
    }
}
