//! The `rd` redirect check (stub).
