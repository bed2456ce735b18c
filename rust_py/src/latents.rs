//! `LatentsRequest`: the core's one latents request as a frozen Python class, built from keyword
//! arguments (the local API, and the server's decoded messages), and what it produces: a numpy
//! array, a serialized unary reply written in place, a stream of serialized chunks, the
//! generator states.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use sigmaserve_core::latents::{
    LatentsArgs, LatentsRequest, PayloadStream, PresetArg, NOISE_OPTION_KEYS,
};
use sigmaserve_core::schedule::presets::DEFAULT_PRESET;
use sigmaserve_core::CoreError;

use crate::bytes::{put_varint, UninitBytes};
use crate::convert::{count_arg, float_arg, int_arg, ints_arg, option_map, str_arg};
use crate::errors::{CoreResult, PyCoreError};
use crate::noise::filled_or_into;
use crate::schedule::to_map;

fn optional<T>(
    obj: Option<&Bound<'_, PyAny>>,
    parse: impl FnOnce(&Bound<'_, PyAny>) -> CoreResult<T>,
) -> CoreResult<Option<T>> {
    match obj {
        Some(o) if !o.is_none() => parse(o).map(Some),
        _ => Ok(None),
    }
}

/// A validated latents request (see `sigmaserve.sample_init_latents`).
#[pyclass(frozen, name = "LatentsRequest", module = "sigmaserve._core")]
pub struct PyLatentsRequest {
    inner: LatentsRequest,
}

#[pymethods]
impl PyLatentsRequest {
    /// Validates the arguments of `sample_init_latents` (every rule lives in the core).
    /// `preset=None` (or "") means none; `dtype` is a name.
    #[new]
    #[pyo3(signature = (
        *, seeds, shape = None, width = None, height = None, batch_size = None, num_frames = None,
        preset = Some(DEFAULT_PRESET.to_owned()), seed_mode = None, source = None, dtype = None,
        sigma = None, scheduler = None, num_inference_steps = None, scheduler_overrides = None,
        noise_options = None, return_generator_states = false, max_elements = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        seeds: &Bound<'_, PyAny>,
        shape: Option<&Bound<'_, PyAny>>,
        width: Option<&Bound<'_, PyAny>>,
        height: Option<&Bound<'_, PyAny>>,
        batch_size: Option<&Bound<'_, PyAny>>,
        num_frames: Option<&Bound<'_, PyAny>>,
        preset: Option<String>,
        seed_mode: Option<&Bound<'_, PyAny>>,
        source: Option<&Bound<'_, PyAny>>,
        dtype: Option<&Bound<'_, PyAny>>,
        sigma: Option<&Bound<'_, PyAny>>,
        scheduler: Option<&Bound<'_, PyAny>>,
        num_inference_steps: Option<&Bound<'_, PyAny>>,
        scheduler_overrides: Option<&Bound<'_, PyAny>>,
        noise_options: Option<&Bound<'_, PyAny>>,
        return_generator_states: bool,
        max_elements: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let args = LatentsArgs {
            shape: optional(shape, |o| ints_arg(o, "shape"))?,
            width: optional(width, |o| int_arg(o, "width"))?,
            height: optional(height, |o| int_arg(o, "height"))?,
            batch_size: optional(batch_size, |o| int_arg(o, "batch_size"))?,
            num_frames: optional(num_frames, |o| int_arg(o, "num_frames"))?,
            preset: match preset {
                Some(name) if !name.is_empty() => PresetArg::Named(name),
                _ => PresetArg::Unset,
            },
            seeds: ints_arg(seeds, "seeds")?,
            seed_mode: optional(seed_mode, |o| str_arg(o, "seed_mode"))?,
            source: optional(source, |o| str_arg(o, "source"))?,
            dtype: optional(dtype, |o| str_arg(o, "dtype"))?,
            sigma: optional(sigma, |o| float_arg(o, "sigma"))?,
            scheduler: optional(scheduler, |o| str_arg(o, "scheduler"))?,
            num_inference_steps: optional(num_inference_steps, |o| {
                int_arg(o, "num_inference_steps")
            })?,
            scheduler_overrides: to_map(scheduler_overrides, "scheduler_overrides")?,
            noise_options: option_map(noise_options, "noise_options")?,
            return_generator_states,
            max_elements: count_arg(max_elements, "max_elements")?,
        };
        let inner = LatentsRequest::new(args).map_err(PyCoreError::from)?;
        Ok(PyLatentsRequest { inner })
    }

    /// The same request for other seeds.
    fn with_seeds(&self, seeds: &Bound<'_, PyAny>) -> PyResult<Self> {
        let seeds = ints_arg(seeds, "seeds")?;
        let inner = self.inner.with_seeds(seeds).map_err(PyCoreError::from)?;
        Ok(PyLatentsRequest { inner })
    }

    /// Refuses the request (`TooLargeError`) over `max_elements` elements or, when given,
    /// `max_bytes` payload bytes.
    #[pyo3(signature = (max_elements, max_bytes = None))]
    fn check_size(&self, max_elements: u64, max_bytes: Option<u64>) -> PyResult<()> {
        self.inner
            .check_size(max_elements, max_bytes)
            .map_err(|e| PyCoreError(e).into())
    }

    /// The scaled latents as a new numpy array (bfloat16 as uint16 bits), or written into
    /// `out` (a writeable C-contiguous array of the shape and storage dtype) and returned.
    #[pyo3(signature = (out = None))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        out: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = &self.inner;
        filled_or_into(py, out, request.shape(), request.dtype(), |buf| {
            request.fill(buf)
        })
    }

    /// `prefix` followed by the scaled little-endian payload, as one new `bytes` (the
    /// serialized unary reply when `prefix` is the message's bytes before the tensor data).
    fn reply<'py>(&self, py: Python<'py>, prefix: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let request = &self.inner;
        let p = prefix.len();
        let len = request
            .nbytes()
            .checked_add(p)
            .ok_or_else(|| PyCoreError(CoreError::too_large("shape", "the reply overflows")))?;
        UninitBytes::new(py, len)?.fill(request.is_small(), |buf| {
            request.write_payload(buf, p)?;
            buf[..p].copy_from_slice(prefix);
            Ok(())
        })
    }

    /// The payload as serialized length-delimited protobuf fields of at most `chunk_bytes`
    /// payload bytes each (`tag` is the field's key bytes), produced with bounded memory.
    fn stream(&self, chunk_bytes: usize, tag: Vec<u8>) -> PyResult<PyPayloadStream> {
        if chunk_bytes == 0 {
            return Err(PyCoreError(CoreError::invalid("chunk_bytes", "must be positive")).into());
        }
        let stream = PayloadStream::new(&self.inner).map_err(PyCoreError::from)?;
        Ok(PyPayloadStream {
            stream,
            chunk_bytes,
            tag,
        })
    }

    /// Each generator's state after the draw, in torch's `get_state()` layout.
    fn generator_states<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let states = self.inner.generator_states().map_err(PyCoreError::from)?;
        PyList::new(py, states.iter().map(|s| PyBytes::new(py, s)))
    }

    /// The latents' shape.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.shape())
    }

    /// The dtype name.
    #[getter]
    fn dtype(&self) -> &'static str {
        self.inner.dtype().name()
    }

    /// The shape the noise is drawn in (before the pipeline's packing).
    #[getter]
    fn drawn_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.drawn_shape())
    }

    /// The dtype the noise is drawn in (float32 for the pipelines that draw float32).
    #[getter]
    fn draw_dtype(&self) -> &'static str {
        self.inner.draw_dtype().name()
    }

    /// Elements.
    #[getter]
    fn numel(&self) -> usize {
        self.inner.numel()
    }

    /// Payload bytes.
    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.nbytes()
    }

    /// The seeds as given.
    #[getter]
    fn seeds(&self) -> Vec<i128> {
        self.inner.seeds().to_vec()
    }

    /// The seeds as torch stores them (negative seeds as their two's complement).
    #[getter]
    fn wrapped_seeds(&self) -> Vec<u64> {
        self.inner.wrapped_seeds().to_vec()
    }

    /// The factor the noise is multiplied by.
    #[getter]
    fn init_noise_sigma(&self) -> f64 {
        self.inner.init_noise_sigma()
    }

    /// The preset, or None.
    #[getter]
    fn preset(&self) -> Option<&str> {
        self.inner.preset()
    }

    /// Whether the generator states after the draw were asked for.
    #[getter]
    fn return_generator_states(&self) -> bool {
        self.inner.wants_generator_states()
    }

    /// Whether producing the payload costs less than handing it to another thread.
    #[getter]
    fn is_small(&self) -> bool {
        self.inner.is_small()
    }

    /// Bytes of working memory the whole payload needs besides itself.
    #[getter]
    fn working_bytes(&self) -> usize {
        self.inner.working_bytes()
    }

    fn __repr__(&self) -> String {
        format!(
            "LatentsRequest(shape={:?}, dtype={:?}, seeds={:?}, init_noise_sigma={})",
            self.inner.shape(),
            self.inner.dtype().name(),
            self.inner.seeds(),
            self.inner.init_noise_sigma()
        )
    }
}

/// A payload in serialized chunks (`LatentsRequest.stream`).
#[pyclass(name = "PayloadStream", module = "sigmaserve._core")]
pub struct PyPayloadStream {
    stream: PayloadStream,
    chunk_bytes: usize,
    tag: Vec<u8>,
}

#[pymethods]
impl PyPayloadStream {
    /// The next serialized field (tag, length, payload bytes), or None at the end. The payload
    /// is computed with the GIL released.
    fn next_message<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let stream = &mut self.stream;
        let count = self.chunk_bytes.min(stream.remaining_bytes());
        if count == 0 {
            return Ok(None);
        }
        let mut head = self.tag.clone();
        put_varint(count as u64, &mut head);
        let h = head.len();
        let message = UninitBytes::new(py, h + count)?.fill(false, |buf| {
            buf[..h].copy_from_slice(&head);
            stream.write_next(&mut buf[h..])
        })?;
        Ok(Some(message))
    }

    /// Payload bytes in all.
    #[getter]
    fn total_bytes(&self) -> usize {
        self.stream.total_bytes()
    }

    /// Payload bytes not produced yet.
    #[getter]
    fn remaining_bytes(&self) -> usize {
        self.stream.remaining_bytes()
    }
}

/// The preset a request uses when it names none.
#[pyfunction]
fn latents_default_preset() -> &'static str {
    DEFAULT_PRESET
}

/// The keys `noise_options` accepts.
#[pyfunction]
fn latents_noise_option_keys() -> Vec<&'static str> {
    NOISE_OPTION_KEYS.to_vec()
}

/// Adds this module's classes to `sigmaserve._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLatentsRequest>()?;
    m.add_class::<PyPayloadStream>()?;
    m.add_function(wrap_pyfunction!(latents_default_preset, m)?)?;
    m.add_function(wrap_pyfunction!(latents_noise_option_keys, m)?)?;
    Ok(())
}
