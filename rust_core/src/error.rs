//! The one error type of the core. Every public function returns `Result<_, CoreError>`;
//! the binding maps each variant to a Python exception and the server to a gRPC status.

/// An error raised by the core. `field` always names the offending input (`"shape"`,
/// `"num_inference_steps"`, `"beta_start"`, ...) so callers can report it precisely.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoreError {
    /// The caller passed a value that is out of range, of the wrong kind or inconsistent.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// The input at fault.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The request is well-formed but larger than the configured limit.
    #[error("{field}: {message}")]
    TooLarge {
        /// The input at fault.
        field: String,
        /// The limit it exceeds.
        message: String,
    },
}

impl CoreError {
    /// Shorthand for [`CoreError::InvalidArgument`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`CoreError::TooLarge`].
    pub fn too_large(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::TooLarge {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The name of the input this error is about.
    pub fn field(&self) -> &str {
        match self {
            CoreError::InvalidArgument { field, .. } | CoreError::TooLarge { field, .. } => field,
        }
    }
}

/// The core's result type.
pub type Result<T> = std::result::Result<T, CoreError>;
