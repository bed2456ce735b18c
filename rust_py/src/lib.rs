//! `sigmaserve._core`: the thin PyO3 binding of sigmaserve-core.
//!
//! Each submodule extracts Python arguments into owned Rust values, runs the core with the GIL
//! released (`py.detach`), and converts the result back (numpy arrays are moved, not copied).

use pyo3::prelude::*;

mod bytes;
mod convert;
mod ecosystem;
mod errors;
mod latents;
mod noise;
mod schedule;

#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    ecosystem::register(m)?;
    noise::register(m)?;
    schedule::register(m)?;
    latents::register(m)?;
    Ok(())
}
