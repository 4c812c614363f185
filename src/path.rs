//! Request-path normalisation (stub).
