//! Configuration: the service's settings and the catalog of routes and responders.

pub mod catalog;
pub mod lints;
mod settings;

pub use catalog::{Catalog, CatalogError, Problem};
pub use lints::{lints, Lint, Severity};
pub use settings::{
    ConfigError, Problem as SettingProblem, Secret, Settings, SettingsArgs, SlackChatSettings,
    Text, PLAYBOOK_ENV_PREFIX,
};
