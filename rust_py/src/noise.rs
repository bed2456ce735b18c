//! Binding of the core's noise functions.

use pyo3::prelude::*;

/// Adds this module's functions and classes to `sigmaserve._core`.
pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
