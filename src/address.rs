//! Strict parsing and normalisation of one email address (stub).
