//! The alert-responder binary (wiring lands with the app module).
fn main() {}
