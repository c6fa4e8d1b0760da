//! alert-responder: an automated first responder for on-call teams.
//!
//! Flow, downstream only: `sources` (verify, parse, persist, ack) → `dispatch` (claim, route,
//! admit, run) → `responders` (playbooks) → `actions` (Docker, ...) → `store` and `notify`.

pub mod actions;
pub mod alert;
pub mod notify;
pub mod template;
