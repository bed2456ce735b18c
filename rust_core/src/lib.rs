//! sigmaserve-core: diffusion noise schedules (diffusers and the wider ecosystem) and Gaussian
//! noise bit-identical to torch's generators. Pure Rust: no Python, no panics on bad input.
#![deny(missing_docs)]

pub mod error;
pub mod latents;
pub mod names;
pub mod rng;
pub mod schedule;

pub use error::{CoreError, Result};
