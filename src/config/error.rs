//! Configuration errors. Each one names the file, the key and what is wrong,
//! and, where the TOML parser knows it, the line. Loading collects every
//! problem it can find rather than stopping at the first.

use std::fmt;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, like `server.listen` or `route[2].upstream`; empty for a
    /// syntax error that is not about one key.
    pub key: String,
    pub message: String,
    pub line: Option<usize>,
}

/// Everything wrong with one configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl ConfigError {
    pub fn single(file: &str, key: &str, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_string(),
            problems: vec![Problem {
                key: key.to_string(),
                message: message.into(),
                line: None,
            }],
        }
    }

    /// True when some problem is about `key`.
    pub fn names(&self, key: &str) -> bool {
        self.problems.iter().any(|p| p.key == key)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file)?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
            }
            if p.key.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": {}: {}", p.key, p.message)?;
            }
        }
        Ok(())
    }
}

/// Collects problems while a file is converted.
#[derive(Debug, Default)]
pub(super) struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
            line: None,
        });
    }

    /// Records the error of `result` under `key` and returns its value.
    pub fn check<T>(&mut self, key: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(m) => {
                self.add(key, m);
                None
            }
        }
    }
}
