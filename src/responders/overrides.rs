//! Modes set at runtime (`/responder mode live|dry-run [responder]`): persisted in the store so
//! they survive restarts, held here so every plan reads them without a query.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::{Mode, Responder};

/// A mode set at runtime, as the store keeps it; `scope` is `None` for the global mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeOverrideRow {
    /// `None`: global; otherwise a responder name.
    pub scope: Option<String>,
    /// `live` or `dry-run`.
    pub mode: String,
    /// Who set it.
    pub set_by: String,
    /// RFC 3339.
    pub set_at: String,
}

/// The configured global mode plus the overrides set at runtime.
#[derive(Debug)]
pub struct ModeOverrides {
    configured: Mode,
    set: RwLock<Set>,
}

#[derive(Debug, Default)]
struct Set {
    global: Option<Mode>,
    responders: BTreeMap<String, Mode>,
}

impl ModeOverrides {
    /// The settings' global mode and the overrides the store holds.
    pub fn new(configured: Mode, rows: &[ModeOverrideRow]) -> Self {
        let mut set = Set::default();
        for row in rows {
            // A row written by this service always parses; anything else is ignored, not fatal.
            let Some(mode) = Mode::parse(&row.mode) else {
                continue;
            };
            match &row.scope {
                None => set.global = Some(mode),
                Some(name) => {
                    set.responders.insert(name.clone(), mode);
                }
            }
        }
        Self {
            configured,
            set: RwLock::new(set),
        }
    }

    /// The global mode: the runtime override, else the configured one.
    pub fn global(&self) -> Mode {
        self.read().global.unwrap_or(self.configured)
    }

    /// The mode a run of `responder` uses: its override, else its playbook's mode, else live;
    /// made stricter by the global mode.
    pub fn effective(&self, responder: &Responder) -> Mode {
        let set = self.read();
        let own = set
            .responders
            .get(&responder.name)
            .copied()
            .or(responder.mode)
            .unwrap_or(Mode::Live);
        own.strictest(set.global.unwrap_or(self.configured))
    }

    /// Replaces the overrides with the store's (set through any replica).
    pub fn replace(&self, rows: &[ModeOverrideRow]) {
        let fresh = Self::new(self.configured, rows);
        let fresh = fresh.set.into_inner().unwrap_or_else(|e| e.into_inner());
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = fresh;
    }

    /// Applies an override the store has recorded (`None`: global).
    pub fn set(&self, scope: Option<&str>, mode: Mode) {
        let mut set = self.set.write().unwrap_or_else(|e| e.into_inner());
        match scope {
            None => set.global = Some(mode),
            Some(name) => {
                set.responders.insert(name.to_owned(), mode);
            }
        }
    }

    /// One line for replies, e.g. `global dry-run (set at runtime); high-memory live`.
    pub fn describe(&self) -> String {
        let set = self.read();
        let mut parts = vec![match set.global {
            Some(mode) => format!("global *{mode}* (set at runtime)"),
            None => format!("global *{}* (RESPONDER_MODE)", self.configured),
        }];
        parts.extend(
            set.responders
                .iter()
                .map(|(name, mode)| format!("{name} *{mode}*")),
        );
        parts.join("; ")
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Set> {
        self.set.read().unwrap_or_else(|e| e.into_inner())
    }
}
