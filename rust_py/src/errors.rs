//! Maps core errors onto the Python exception hierarchy of `sigmaserve.errors`.
//!
//! The classes live in Python (so they can subclass both `SigmaserveError` and `ValueError`,
//! which `create_exception!` cannot express); the binding looks them up when raising.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use sigmaserve_core::CoreError;

/// Newtype that lets `?` turn a core error into a `PyErr` (orphan rule).
pub struct PyCoreError(pub CoreError);

impl From<CoreError> for PyCoreError {
    fn from(err: CoreError) -> Self {
        PyCoreError(err)
    }
}

impl From<PyCoreError> for PyErr {
    fn from(err: PyCoreError) -> PyErr {
        let class_name = match err.0 {
            CoreError::InvalidArgument { .. } => "InvalidArgumentError",
            CoreError::TooLarge { .. } => "TooLargeError",
        };
        let message = err.0.to_string();
        let field = err.0.field().to_owned();
        Python::attach(|py| {
            let raised = py
                .import("sigmaserve.errors")
                .and_then(|module| module.getattr(class_name))
                .and_then(|class| class.call1((message.clone(), field)));
            match raised {
                Ok(instance) => PyErr::from_value(instance),
                // The package is always importable next to its own extension module; this
                // fallback only keeps a broken install from masking the original message.
                Err(_) => PyValueError::new_err(message),
            }
        })
    }
}

/// Result alias for binding functions that call into the core.
pub type CoreResult<T> = Result<T, PyCoreError>;
