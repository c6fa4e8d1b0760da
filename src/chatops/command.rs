//! The slash command's text, parsed into a closed set of subcommands. Pure.

use crate::responders::Mode;

/// What a person asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `help` (or nothing).
    Help,
    /// `status [container|all]`: `None` is every reported container.
    Status(Option<String>),
    /// `incidents [open]`.
    Incidents {
        /// Only open ones.
        open_only: bool,
    },
    /// `run <responder> [target]`: without a target, a scheduled responder runs now on
    /// the target its file declares.
    Run {
        /// Responder name.
        responder: String,
        /// Target (container name); `None` for a scheduled responder's own.
        target: Option<String>,
    },
    /// `schedule`: the scheduled responders and their next slots.
    Schedule,
    /// `approve <incident>`.
    Approve(i64),
    /// `deny <incident>`.
    Deny(i64),
    /// `mode`: show; `mode live|dry-run [responder]`: set.
    Mode(Option<(Mode, Option<String>)>),
    /// `trust <responder> <target>`: its fixes there that did not hold no longer make its
    /// destructive steps wait for an approval.
    Trust {
        /// Responder name.
        responder: String,
        /// Target (container name).
        target: String,
    },
}

/// What a subcommand needs beyond using the command at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// `run`: SLACK_RUN_ALLOWED.
    Run,
    /// `approve`, `deny`, buttons: SLACK_APPROVE_ALLOWED.
    Approve,
    /// Setting the mode, and `trust`: SLACK_MODE_ALLOWED.
    Mode,
}

impl Permission {
    /// The setting that lists who has it.
    pub fn setting(self) -> &'static str {
        match self {
            Permission::Run => "SLACK_RUN_ALLOWED",
            Permission::Approve => "SLACK_APPROVE_ALLOWED",
            Permission::Mode => "SLACK_MODE_ALLOWED",
        }
    }
}

impl Command {
    /// The subcommand's name, as the audit records it.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Help => "help",
            Command::Status(_) => "status",
            Command::Incidents { .. } => "incidents",
            Command::Run { .. } => "run",
            Command::Schedule => "schedule",
            Command::Approve(_) => "approve",
            Command::Deny(_) => "deny",
            Command::Mode(_) => "mode",
            Command::Trust { .. } => "trust",
        }
    }

    /// The permission it needs; `None` for read-only subcommands anyone may use.
    pub fn permission(&self) -> Option<Permission> {
        match self {
            Command::Run { .. } => Some(Permission::Run),
            Command::Approve(_) | Command::Deny(_) => Some(Permission::Approve),
            Command::Mode(Some(_)) | Command::Trust { .. } => Some(Permission::Mode),
            Command::Help
            | Command::Status(_)
            | Command::Incidents { .. }
            | Command::Schedule
            | Command::Mode(None) => None,
        }
    }
}

/// The usage text, for `help` and for anything that does not parse.
pub fn usage(command: &str) -> String {
    format!(
        "*{command}* subcommands:\n\
         • `{command} status [container|all]`: state, uptime, memory, restarts, health\n\
         • `{command} incidents [open]`: recent (or open) incidents\n\
         • `{command} run <responder> <target>`: run a responder now (same budgets and allow-lists); a scheduled one needs no target\n\
         • `{command} schedule`: the scheduled responders and their next slots\n\
         • `{command} approve <incident>` / `{command} deny <incident>`: decide a waiting step\n\
         • `{command} mode [live|dry-run] [responder]`: show or set the mode\n\
         • `{command} trust <responder> <target>`: its fixes there that did not hold no longer require approvals\n\
         • `{command} help`"
    )
}

/// Parses the text after the command. `Err` says what is wrong, in one line.
pub fn parse(text: &str) -> Result<Command, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some((first, rest)) = words.split_first() else {
        return Ok(Command::Help);
    };
    match (first.to_ascii_lowercase().as_str(), rest) {
        ("help", []) => Ok(Command::Help),
        ("status", []) => Ok(Command::Status(None)),
        ("status", [which]) if which.eq_ignore_ascii_case("all") => Ok(Command::Status(None)),
        ("status", [container]) => Ok(Command::Status(Some(name(container, "container")?))),
        ("incidents", []) => Ok(Command::Incidents { open_only: false }),
        ("incidents", [open]) if open.eq_ignore_ascii_case("open") => {
            Ok(Command::Incidents { open_only: true })
        }
        ("run", [responder]) => Ok(Command::Run {
            responder: name(responder, "responder")?,
            target: None,
        }),
        ("run", [responder, target]) => Ok(Command::Run {
            responder: name(responder, "responder")?,
            target: Some(name(target, "target")?),
        }),
        ("run", _) => Err(
            "`run` takes a responder and a target (none for a scheduled one), e.g. `run high-memory k2-api`"
                .into(),
        ),
        ("schedule", []) => Ok(Command::Schedule),
        ("approve", [id]) => Ok(Command::Approve(incident(id)?)),
        ("deny", [id]) => Ok(Command::Deny(incident(id)?)),
        ("approve" | "deny", _) => Err(format!("`{first}` takes one incident number")),
        ("mode", []) => Ok(Command::Mode(None)),
        ("mode", [mode, scope @ ..]) if scope.len() <= 1 => {
            let mode = Mode::parse(mode)
                .ok_or_else(|| format!("mode {mode:?}: use `live` or `dry-run`"))?;
            let scope = scope.first().map(|r| name(r, "responder")).transpose()?;
            Ok(Command::Mode(Some((mode, scope))))
        }
        ("trust", [responder, target]) => Ok(Command::Trust {
            responder: name(responder, "responder")?,
            target: name(target, "target")?,
        }),
        ("trust", _) => Err(
            "`trust` takes a responder and a target, e.g. `trust high-memory k2-api`".into(),
        ),
        (sub, _) => Err(format!("cannot read `{}`", one_line(sub, rest))),
    }
}

/// A responder, container or target name: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 128 chars.
fn name(word: &str, what: &str) -> Result<String, String> {
    let mut chars = word.chars();
    let ok = word.len() <= 128
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(word.to_owned())
    } else {
        Err(format!(
            "{what} {word:?} is not a name (letters, digits, `_.-`)"
        ))
    }
}

/// An incident number, with or without `#`.
fn incident(word: &str) -> Result<i64, String> {
    word.trim_start_matches('#')
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{word:?} is not an incident number"))
}

/// The words again, cut to 80 characters (not bytes: a cut inside a multi-byte character
/// panicked, found by fuzz/slack).
fn one_line(sub: &str, rest: &[&str]) -> String {
    std::iter::once(sub)
        .chain(rest.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(80)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_words_are_cut_at_a_character_not_inside_one() {
        let word = "Ӎ".repeat(100);
        // "-- " is 3 bytes, so byte 80 falls inside a 2-byte 'Ӎ'.
        let echoed = one_line("--", &[word.as_str()]);
        assert_eq!(echoed.chars().count(), 80);
        assert!(echoed.starts_with("-- ӍӍ"));
        // Like the input fuzz/slack found: one unknown word, byte 80 inside a 'Ӎ'.
        let text = format!("-{}-{}9999", "|".repeat(53), "Ӎ".repeat(20));
        assert!(parse(&text).is_err());
    }

    #[test]
    fn subcommands_parse() {
        let cases: &[(&str, Command)] = &[
            ("", Command::Help),
            ("  help ", Command::Help),
            ("status", Command::Status(None)),
            ("status ALL", Command::Status(None)),
            ("status k2-api", Command::Status(Some("k2-api".into()))),
            ("incidents", Command::Incidents { open_only: false }),
            ("incidents open", Command::Incidents { open_only: true }),
            (
                "run high-memory k2-api",
                Command::Run {
                    responder: "high-memory".into(),
                    target: Some("k2-api".into()),
                },
            ),
            (
                "run daily-health",
                Command::Run {
                    responder: "daily-health".into(),
                    target: None,
                },
            ),
            ("schedule", Command::Schedule),
            ("approve 12", Command::Approve(12)),
            ("deny #7", Command::Deny(7)),
            ("mode", Command::Mode(None)),
            (
                "trust high-memory k2-api",
                Command::Trust {
                    responder: "high-memory".into(),
                    target: "k2-api".into(),
                },
            ),
            ("mode dry-run", Command::Mode(Some((Mode::DryRun, None)))),
            (
                "Mode live high-memory",
                Command::Mode(Some((Mode::Live, Some("high-memory".into())))),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).as_ref(), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn nonsense_is_refused_with_a_reason() {
        for text in [
            "reboot everything",
            "run",
            "run high-memory k2-api extra",
            "schedule all",
            "run high-memory $(rm -rf /)",
            "run ../etc k2-api",
            "approve twelve",
            "approve 0",
            "deny",
            "mode fast",
            "mode live a b",
            "status a b",
            "incidents closed",
        ] {
            let err = parse(text).expect_err(text);
            assert!(!err.is_empty(), "{text}");
        }
    }

    #[test]
    fn only_changes_need_a_permission() {
        assert_eq!(
            parse("run r t").unwrap().permission(),
            Some(Permission::Run)
        );
        assert_eq!(
            parse("approve 1").unwrap().permission(),
            Some(Permission::Approve)
        );
        assert_eq!(
            parse("deny 1").unwrap().permission(),
            Some(Permission::Approve)
        );
        assert_eq!(
            parse("mode live").unwrap().permission(),
            Some(Permission::Mode)
        );
        assert_eq!(
            parse("trust high-memory k2-api").unwrap().permission(),
            Some(Permission::Mode),
            "trusting a responder again is authorized like setting its mode"
        );
        assert!(parse("trust high-memory").is_err());
        for read_only in ["mode", "status", "incidents open", "help", "schedule"] {
            assert_eq!(parse(read_only).unwrap().permission(), None, "{read_only}");
        }
    }
}
