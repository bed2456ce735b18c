//! Binding of the core's noise engine: `noise_randn`, `noise_sample`, the `Generator` class
//! and a few introspection helpers. Arguments are validated and copied into owned Rust
//! values while attached; generation runs detached (`py.detach`); results are moved into
//! numpy arrays without a copy.

use numpy::ndarray::IxDyn;
use numpy::{PyArray, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use sigmaserve_core::rng::{self, Dtype, Generator, GpuGeometry, NoiseSliceMut, Source};
use sigmaserve_core::CoreError;

use crate::args::{extract_seed, extract_sizes, invalid, NoiseArgs};
use crate::errors::{CoreResult, PyCoreError};

fn numel_of(shape: &[usize], max_elements: Option<u64>) -> CoreResult<usize> {
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| PyCoreError(CoreError::too_large("shape", "the element count overflows")))?;
    if let Some(max) = max_elements {
        if n as u64 > max {
            return Err(PyCoreError(CoreError::too_large(
                "shape",
                format!("{n} elements exceed the limit of {max}"),
            )));
        }
    }
    Ok(n)
}

/// Allocates the result with numpy (whose allocator asks the kernel for huge pages on
/// large arrays, which makes first-touch page faults far cheaper than for a fresh `Vec`),
/// then fills it in place with the GIL released. No copy either way.
fn numpy_filled<'py, F>(
    py: Python<'py>,
    shape: &[usize],
    dtype: Dtype,
    fill: F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: for<'a> FnOnce(NoiseSliceMut<'a>) -> Result<(), CoreError> + Send,
{
    let arr = match dtype {
        Dtype::Float32 => PyArray::<f32, IxDyn>::zeros(py, IxDyn(shape), false).into_any(),
        Dtype::Float64 => PyArray::<f64, IxDyn>::zeros(py, IxDyn(shape), false).into_any(),
        Dtype::Float16 | Dtype::BFloat16 => {
            PyArray::<u16, IxDyn>::zeros(py, IxDyn(shape), false).into_any()
        }
    };
    fill_into(&arr, shape, dtype, fill)?;
    if dtype == Dtype::Float16 {
        // numpy has float16: the u16 bits are reinterpreted (a view, no copy).
        return arr.call_method1("view", ("float16",));
    }
    Ok(arr)
}

/// Fills the caller's array `out` in place with the GIL released. `out` must be a writeable,
/// C-contiguous numpy array of exactly `shape` whose element type matches `dtype` (float16
/// and bfloat16 as uint16 bit patterns; the Python layer makes those views). Reusing one
/// buffer skips the allocation and first-touch page faults of a fresh array, which cost a
/// third of the time of a large CUDA-source call.
fn fill_into<'py, F>(
    out: &Bound<'py, PyAny>,
    shape: &[usize],
    dtype: Dtype,
    fill: F,
) -> PyResult<()>
where
    F: for<'a> FnOnce(NoiseSliceMut<'a>) -> Result<(), CoreError> + Send,
{
    let py = out.py();
    macro_rules! into {
        ($t:ty, $variant:ident, $np:literal) => {{
            let arr = out.cast::<PyArrayDyn<$t>>().map_err(|_| {
                invalid(
                    "out",
                    format!(
                        "must be a numpy array of {} for dtype {}",
                        $np,
                        dtype.name()
                    ),
                )
            })?;
            if arr.shape() != shape {
                return Err(invalid(
                    "out",
                    format!("has shape {:?}, expected {:?}", arr.shape(), shape),
                )
                .into());
            }
            let mut guard = arr
                .try_readwrite()
                .map_err(|_| invalid("out", "must be writeable and not borrowed elsewhere"))?;
            let slice = guard
                .as_slice_mut()
                .map_err(|_| invalid("out", "must be C-contiguous"))?;
            py.detach(|| fill(NoiseSliceMut::$variant(slice)))
                .map_err(PyCoreError::from)?;
        }};
    }
    match dtype {
        Dtype::Float32 => into!(f32, F32, "float32"),
        Dtype::Float64 => into!(f64, F64, "float64"),
        Dtype::Float16 => into!(u16, F16, "uint16 (float16 bits)"),
        Dtype::BFloat16 => into!(u16, BF16, "uint16 (bfloat16 bits)"),
    }
    Ok(())
}

/// A new filled array, or `out` filled in place and returned.
fn filled_or_into<'py, F>(
    py: Python<'py>,
    out: Option<Bound<'py, PyAny>>,
    shape: &[usize],
    dtype: Dtype,
    fill: F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: for<'a> FnOnce(NoiseSliceMut<'a>) -> Result<(), CoreError> + Send,
{
    match out {
        Some(out) => {
            fill_into(&out, shape, dtype, fill)?;
            Ok(out)
        }
        None => numpy_filled(py, shape, dtype, fill),
    }
}

/// `randn(shape, seed)` from a fresh generator; returns a numpy array (bfloat16 as uint16),
/// or fills `out` in place and returns it.
#[pyfunction]
#[pyo3(signature = (shape, seed, source = "cpu", dtype = "float32", cpu_kernel = None, gpu = None, max_elements = None, out = None))]
#[allow(clippy::too_many_arguments)]
fn noise_randn<'py>(
    py: Python<'py>,
    shape: Vec<i64>,
    seed: &Bound<'py, PyAny>,
    source: &str,
    dtype: &str,
    cpu_kernel: Option<&str>,
    gpu: Option<&str>,
    max_elements: Option<u64>,
    out: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let seed = extract_seed(seed, "seed")?;
    let shape = extract_sizes(shape, "shape")?;
    numel_of(&shape, max_elements)?;
    let source = Source::parse(source, cpu_kernel, gpu).map_err(PyCoreError::from)?;
    let dtype = Dtype::parse(dtype).map_err(PyCoreError::from)?;
    filled_or_into(py, out, &shape, dtype, |out| {
        Generator::new(seed, source).fill(out);
        Ok(())
    })
}

/// Seed policies, variation seeds and seed resize over a batch; see `sigmaserve.sample_noise`.
#[pyfunction]
#[pyo3(signature = (shape, seeds, seed_mode = "per_item", source = "cpu", dtype = "float32", cpu_kernel = None, gpu = None, batch_index = None, subseeds = None, subseed_strength = 0.0, seed_resize_from = None, max_elements = None))]
#[allow(clippy::too_many_arguments)]
fn noise_sample<'py>(
    py: Python<'py>,
    shape: Vec<i64>,
    seeds: Vec<Bound<'py, PyAny>>,
    seed_mode: &str,
    source: &str,
    dtype: &str,
    cpu_kernel: Option<&str>,
    gpu: Option<&str>,
    batch_index: Option<Vec<i64>>,
    subseeds: Option<Vec<Bound<'py, PyAny>>>,
    subseed_strength: f64,
    seed_resize_from: Option<(i64, i64)>,
    max_elements: Option<u64>,
) -> PyResult<Bound<'py, PyAny>> {
    let req = NoiseArgs {
        shape,
        seeds: &seeds,
        seed_mode,
        source,
        dtype,
        cpu_kernel,
        gpu,
        batch_index,
        subseeds: subseeds.as_deref(),
        subseed_strength,
        seed_resize_from,
        max_elements,
    }
    .into_request()?;
    let shape = req.shape.clone();
    // Validate everything (sizes against max_elements included) before allocating.
    req.plan().map_err(PyCoreError::from)?;
    let dtype = req.dtype;
    numpy_filled(py, &shape, dtype, |out| rng::sample_noise_into(&req, out))
}

/// The GPU presets: a list of (name, sm_count, max_threads_per_sm).
#[pyfunction]
fn noise_gpu_presets() -> Vec<(&'static str, u32, u32)> {
    GpuGeometry::PRESETS
        .iter()
        .map(|(n, g)| (*n, g.sm_count, g.max_threads_per_sm))
        .collect()
}

/// The active SIMD kernel set: "avx2+fma" or "portable".
#[pyfunction]
fn noise_simd_isa() -> &'static str {
    rng::simd::active_isa()
}

/// Enables or disables the SIMD fast paths (results are identical; for tests and benchmarks).
#[pyfunction]
fn noise_set_simd(enabled: bool) {
    rng::simd::set_simd_enabled(enabled)
}

/// One noise stream (`sigmaserve.Generator` wraps it).
#[pyclass(name = "Generator", module = "sigmaserve._core")]
struct PyGenerator {
    inner: Generator,
}

#[pymethods]
impl PyGenerator {
    #[new]
    #[pyo3(signature = (seed, source = "cpu", cpu_kernel = None, gpu = None))]
    fn new(
        seed: &Bound<'_, PyAny>,
        source: &str,
        cpu_kernel: Option<&str>,
        gpu: Option<&str>,
    ) -> PyResult<Self> {
        let seed = extract_seed(seed, "seed")?;
        let source = Source::parse(source, cpu_kernel, gpu).map_err(PyCoreError::from)?;
        Ok(PyGenerator {
            inner: Generator::new(seed, source),
        })
    }

    /// One `randn(shape, dtype)` call on this stream.
    #[pyo3(signature = (shape, dtype = "float32", max_elements = None, out = None))]
    fn randn<'py>(
        &mut self,
        py: Python<'py>,
        shape: Vec<i64>,
        dtype: &str,
        max_elements: Option<u64>,
        out: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let shape = extract_sizes(shape, "shape")?;
        numel_of(&shape, max_elements)?;
        let dtype = Dtype::parse(dtype).map_err(PyCoreError::from)?;
        let gen = &mut self.inner;
        filled_or_into(py, out, &shape, dtype, |out| {
            gen.fill(out);
            Ok(())
        })
    }

    /// Advances the stream as `randn(shape, dtype)` would, without computing values.
    #[pyo3(signature = (shape, dtype = "float32"))]
    fn skip(&mut self, shape: Vec<i64>, dtype: &str) -> PyResult<()> {
        let shape = extract_sizes(shape, "shape")?;
        let numel = numel_of(&shape, None)?;
        let dtype = Dtype::parse(dtype).map_err(PyCoreError::from)?;
        self.inner.skip(numel, dtype);
        Ok(())
    }

    /// The state bytes (CPU: torch's `Generator.get_state()` layout).
    fn get_state<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.get_state())
    }

    /// Restores state bytes from `get_state()` (or torch's for CPU / CUDA).
    fn set_state(&mut self, state: &[u8]) -> PyResult<()> {
        self.inner.set_state(state).map_err(PyCoreError::from)?;
        Ok(())
    }

    /// The seed (all 64 bits, as torch's `initial_seed()`).
    #[getter]
    fn seed(&self) -> u64 {
        self.inner.seed()
    }

    /// The source name.
    #[getter]
    fn source(&self) -> &'static str {
        self.inner.source().name()
    }

    /// The CPU kernel name ("avx2" / "default"), or None for other sources.
    #[getter]
    fn cpu_kernel(&self) -> Option<&'static str> {
        match self.inner.source() {
            Source::Cpu(k) => Some(k.name()),
            _ => None,
        }
    }

    /// The emulated GPU as (sm_count, max_threads_per_sm), (0, 0) for unlimited; None
    /// unless the source is "cuda".
    #[getter]
    fn gpu(&self) -> Option<(u32, u32)> {
        match self.inner.source() {
            Source::Cuda(g) => Some((g.sm_count, g.max_threads_per_sm)),
            _ => None,
        }
    }

    /// The philox offset (CUDA) or call counter (NV); None for the CPU source.
    #[getter]
    fn offset(&self) -> Option<u64> {
        self.inner.offset()
    }

    fn __repr__(&self) -> String {
        format!(
            "Generator(seed={}, source={:?})",
            self.inner.seed(),
            self.inner.source().name()
        )
    }
}

/// Adds this module's functions and classes to `sigmaserve._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(noise_randn, m)?)?;
    m.add_function(wrap_pyfunction!(noise_sample, m)?)?;
    m.add_function(wrap_pyfunction!(noise_gpu_presets, m)?)?;
    m.add_function(wrap_pyfunction!(noise_simd_isa, m)?)?;
    m.add_function(wrap_pyfunction!(noise_set_simd, m)?)?;
    m.add_class::<PyGenerator>()?;
    Ok(())
}
