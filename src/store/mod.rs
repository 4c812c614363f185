//! Tokens, sessions and counters (stub).
