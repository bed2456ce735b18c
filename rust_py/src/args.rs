//! Argument conversion shared by the noise functions of the binding (`noise_sample`,
//! `wire_latents_reply`): Python values in, a validated core `NoiseRequest` out.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};
use sigmaserve_core::rng::{
    self, a1111::SeedResize, Dtype, NoiseRequest, SeedMode, Source, Variation,
};
use sigmaserve_core::CoreError;

use crate::errors::{CoreResult, PyCoreError};

/// An `InvalidArgumentError` naming `field`.
pub(crate) fn invalid(field: &str, msg: impl Into<String>) -> PyCoreError {
    PyCoreError(CoreError::invalid(field, msg))
}

/// An int in [-2**63, 2**64) (not a bool), wrapped to u64 like `manual_seed`.
pub(crate) fn extract_seed(obj: &Bound<'_, PyAny>, field: &str) -> CoreResult<u64> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        let ty = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "object".into());
        return Err(invalid(
            field,
            format!("a seed must be an int in [-2**63, 2**64), got {ty}"),
        ));
    }
    let v: i128 = obj
        .extract()
        .map_err(|_| invalid(field, "seed is outside torch's range [-2**63, 2**64)"))?;
    Ok(rng::wrap_seed(v, field)?)
}

/// Every seed of a list, as [`extract_seed`].
pub(crate) fn extract_seeds(seeds: &[Bound<'_, PyAny>], field: &str) -> CoreResult<Vec<u64>> {
    seeds.iter().map(|s| extract_seed(s, field)).collect()
}

/// Non-negative integers of a list argument (shape dimensions, batch indices).
pub(crate) fn extract_sizes(values: Vec<i64>, field: &str) -> CoreResult<Vec<usize>> {
    values
        .into_iter()
        .map(|d| {
            usize::try_from(d).map_err(|_| invalid(field, format!("values must be >= 0, got {d}")))
        })
        .collect()
}

/// The Python arguments of a seed-policy draw (see `sigmaserve.noise.sample_noise`).
pub(crate) struct NoiseArgs<'a, 'py> {
    pub shape: Vec<i64>,
    pub seeds: &'a [Bound<'py, PyAny>],
    pub seed_mode: &'a str,
    pub source: &'a str,
    pub dtype: &'a str,
    pub cpu_kernel: Option<&'a str>,
    pub gpu: Option<&'a str>,
    pub batch_index: Option<Vec<i64>>,
    pub subseeds: Option<&'a [Bound<'py, PyAny>]>,
    pub subseed_strength: f64,
    pub seed_resize_from: Option<(i64, i64)>,
    pub max_elements: Option<u64>,
}

impl NoiseArgs<'_, '_> {
    /// The core request, every argument checked (sizes are checked by `NoiseRequest::plan`).
    pub(crate) fn into_request(self) -> CoreResult<NoiseRequest> {
        let subseeds = self
            .subseeds
            .map(|v| extract_seeds(v, "subseeds"))
            .transpose()?;
        if subseeds.is_none() && self.subseed_strength != 0.0 {
            return Err(invalid("subseeds", "subseed_strength needs subseeds"));
        }
        let seed_resize_from = self
            .seed_resize_from
            .map(|(w, h)| match (usize::try_from(w), usize::try_from(h)) {
                (Ok(width), Ok(height)) => Ok(SeedResize { width, height }),
                _ => Err(invalid(
                    "seed_resize_from",
                    format!("width and height must be >= 0, got ({w}, {h})"),
                )),
            })
            .transpose()?;
        Ok(NoiseRequest {
            shape: extract_sizes(self.shape, "shape")?,
            seeds: extract_seeds(self.seeds, "seeds")?,
            seed_mode: SeedMode::parse(self.seed_mode)?,
            source: Source::parse(self.source, self.cpu_kernel, self.gpu)?,
            dtype: Dtype::parse(self.dtype)?,
            batch_index: self
                .batch_index
                .map(|v| extract_sizes(v, "batch_index"))
                .transpose()?,
            variation: subseeds.map(|subseeds| Variation {
                subseeds,
                strength: self.subseed_strength,
            }),
            seed_resize_from,
            max_elements: self.max_elements,
        })
    }
}
