//! Docker step kinds (placeholder until implemented).
