//! The mail queue and transports (stub).
