//! Configuration errors: each one knows the file, line, column and path it is about.

use std::fmt;

/// One problem found in a configuration, located in its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// File name (or other origin, such as `<embedded sandbox.yaml>`) the error is about.
    pub origin: String,
    /// 1-based line of the offending key or value; 0 when the error has no position
    /// (the file could not be read).
    pub line: usize,
    /// 1-based column (in characters) of the offending key or value; 0 when unknown.
    pub column: usize,
    /// Where in the document, like `services[0].options.router_options`; empty for the
    /// document itself.
    pub path: String,
    /// What is wrong, in the user's terms.
    pub message: String,
}

impl ConfigError {
    /// An error at a known position.
    pub fn new(
        origin: impl Into<String>,
        line: usize,
        column: usize,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            origin: origin.into(),
            line,
            column,
            path: path.into(),
            message: message.into(),
        }
    }

    /// An error about the whole file that has no position (e.g. it cannot be read).
    pub fn unlocated(origin: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::new(origin, 0, 0, "", message)
    }
}

impl fmt::Display for ConfigError {
    /// `FILE:LINE:COL: PATH: MESSAGE`; the path is left out when empty, the position when
    /// unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration, in the order they appear in the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// No errors yet.
    pub fn new() -> Self {
        ConfigErrors(Vec::new())
    }

    /// Adds one error.
    pub fn push(&mut self, error: ConfigError) {
        self.0.push(error);
    }

    /// True when there is no error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The errors, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// Orders the errors by file, then position, keeping the order of errors at the same spot.
    pub fn sort(&mut self) {
        self.0
            .sort_by(|a, b| (&a.origin, a.line, a.column).cmp(&(&b.origin, b.line, b.column)));
    }

    /// `Ok(value)` when there is no error, else `Err(self)`.
    pub fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl Extend<ConfigError> for ConfigErrors {
    fn extend<I: IntoIterator<Item = ConfigError>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for ConfigErrors {
    /// One error per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
