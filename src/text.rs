//! Cutting text for people: untrusted or long text (log lines, command output, error
//! bodies) shown in a thread, a page or a table, cut at a character boundary (never inside
//! a UTF-8 sequence) and marked when cut.

/// The first `max` characters of `text`, then `…` when anything was cut.
pub fn cut(text: &str, max: usize) -> String {
    cut_marked(text, max, "…")
}

/// The first `max` characters of `text`, then `mark` when anything was cut.
pub fn cut_marked(text: &str, max: usize, mark: &str) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}{mark}", &text[..end]),
        None => text.to_owned(),
    }
}

/// `text` in at most `max` characters, the `…` marking a cut included (for table cells).
pub fn fit(text: &str, max: usize) -> String {
    if text.chars().nth(max).is_none() {
        return text.to_owned();
    }
    cut(text, max.saturating_sub(1))
}

/// The first line of `text`, at most `max` characters, then `…` when anything was left out
/// (the rest of the line or the lines after it).
pub fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    let shown = cut(line, max);
    if shown.len() == line.len() && line.len() < text.trim_end().len() {
        format!("{line}…")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_at_characters_and_marked_only_when_cut() {
        assert_eq!(cut("héllo", 5), "héllo");
        assert_eq!(cut("héllo wörld", 5), "héllo…");
        assert_eq!(cut("ééé", 1), "é…", "never inside a character");
        assert_eq!(cut_marked("abcdef", 3, "\n…"), "abc\n…");
        assert_eq!(cut("", 0), "");
    }

    #[test]
    fn fit_keeps_the_mark_within_the_width() {
        assert_eq!(fit("abcd", 4), "abcd");
        assert_eq!(fit("abcde", 4), "abc…");
        assert_eq!(fit("abcde", 4).chars().count(), 4);
        assert_eq!(fit("ab", 0), "…", "nothing fits but the mark");
    }

    #[test]
    fn first_line_says_when_lines_were_left_out() {
        assert_eq!(first_line("one line", 20), "one line");
        assert_eq!(
            first_line("one line\n", 20),
            "one line",
            "a trailing newline is no loss"
        );
        assert_eq!(first_line("first\nsecond", 20), "first…");
        assert_eq!(first_line("a long first line\nsecond", 6), "a long…");
        assert_eq!(first_line("", 6), "");
    }
}
