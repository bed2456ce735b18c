//! Binding of the core's noise engine: `noise_randn`, the `Generator` class
//! and a few introspection helpers. Arguments are validated and copied into owned Rust
//! values while attached; generation runs detached (`py.detach`); results are moved into
//! numpy arrays without a copy.

use numpy::ndarray::IxDyn;
use numpy::{PyArray, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use sigmaserve_core::latents::gpu_spec;
use sigmaserve_core::rng::{self, wrap_seed, Dtype, Generator, GpuGeometry, NoiseSliceMut, Source};
use sigmaserve_core::CoreError;

use crate::convert::{count_arg, int_arg, ints_arg, invalid, option_value, str_arg};
use crate::errors::{CoreResult, PyCoreError};

/// A shape argument (an int or a sequence of ints) checked by the core.
fn shape_arg(
    shape: &Bound<'_, PyAny>,
    max_elements: Option<u64>,
) -> CoreResult<(Vec<usize>, usize)> {
    let dims = ints_arg(shape, "shape")?;
    Ok(rng::check_shape(&dims, max_elements)?)
}

/// A seed argument, wrapped like `manual_seed`.
fn seed_arg(seed: &Bound<'_, PyAny>) -> CoreResult<u64> {
    Ok(wrap_seed(int_arg(seed, "seed")?, "seed")?)
}

/// The source with its options: `gpu` is a preset name or (sm_count, max_threads_per_sm).
fn source_arg(
    source: &Bound<'_, PyAny>,
    cpu_kernel: Option<&Bound<'_, PyAny>>,
    gpu: Option<&Bound<'_, PyAny>>,
) -> CoreResult<Source> {
    let source = str_arg(source, "source")?;
    let kernel = match cpu_kernel.filter(|k| !k.is_none()) {
        Some(k) => Some(str_arg(k, "cpu_kernel")?),
        None => None,
    };
    let gpu = match gpu.filter(|g| !g.is_none()) {
        Some(g) => gpu_spec(&option_value(g))?,
        None => None,
    };
    Ok(Source::parse(&source, kernel.as_deref(), gpu.as_deref())?)
}

fn dtype_arg(dtype: &Bound<'_, PyAny>) -> CoreResult<Dtype> {
    Ok(Dtype::parse(&str_arg(dtype, "dtype")?)?)
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
                let actual = out
                    .getattr("dtype")
                    .map(|d| d.to_string())
                    .unwrap_or_else(|_| crate::convert::type_name(out));
                invalid(
                    "out",
                    format!(
                        "has dtype {actual}, expected a numpy array of {} for dtype {}",
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
pub(crate) fn filled_or_into<'py, F>(
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
#[pyo3(signature = (shape, seed, source = None, dtype = None, cpu_kernel = None, gpu = None, max_elements = None, out = None))]
#[allow(clippy::too_many_arguments)]
fn noise_randn<'py>(
    py: Python<'py>,
    shape: &Bound<'py, PyAny>,
    seed: &Bound<'py, PyAny>,
    source: Option<&Bound<'py, PyAny>>,
    dtype: Option<&Bound<'py, PyAny>>,
    cpu_kernel: Option<&Bound<'py, PyAny>>,
    gpu: Option<&Bound<'py, PyAny>>,
    max_elements: Option<&Bound<'py, PyAny>>,
    out: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (shape, _) = shape_arg(shape, count_arg(max_elements, "max_elements")?)?;
    let seed = seed_arg(seed)?;
    let source = match source {
        Some(s) => source_arg(s, cpu_kernel, gpu)?,
        None => Source::parse("cpu", None, None).map_err(PyCoreError::from)?,
    };
    let dtype = match dtype {
        Some(d) => dtype_arg(d)?,
        None => Dtype::Float32,
    };
    filled_or_into(py, out, &shape, dtype, |out| {
        Generator::new(seed, source).fill(out);
        Ok(())
    })
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
    #[pyo3(signature = (seed, source = None, cpu_kernel = None, gpu = None))]
    fn new(
        seed: &Bound<'_, PyAny>,
        source: Option<&Bound<'_, PyAny>>,
        cpu_kernel: Option<&Bound<'_, PyAny>>,
        gpu: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let seed = seed_arg(seed)?;
        let source = match source {
            Some(s) => source_arg(s, cpu_kernel, gpu)?,
            None => Source::parse("cpu", None, None).map_err(PyCoreError::from)?,
        };
        Ok(PyGenerator {
            inner: Generator::new(seed, source),
        })
    }

    /// One `randn(shape, dtype)` call on this stream.
    #[pyo3(signature = (shape, dtype = None, max_elements = None, out = None))]
    fn randn<'py>(
        &mut self,
        py: Python<'py>,
        shape: &Bound<'py, PyAny>,
        dtype: Option<&Bound<'py, PyAny>>,
        max_elements: Option<&Bound<'py, PyAny>>,
        out: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (shape, _) = shape_arg(shape, count_arg(max_elements, "max_elements")?)?;
        let dtype = match dtype {
            Some(d) => dtype_arg(d)?,
            None => Dtype::Float32,
        };
        let gen = &mut self.inner;
        filled_or_into(py, out, &shape, dtype, |out| {
            gen.fill(out);
            Ok(())
        })
    }

    /// Advances the stream as `randn(shape, dtype)` would, without computing values.
    #[pyo3(signature = (shape, dtype = None))]
    fn skip(&mut self, shape: &Bound<'_, PyAny>, dtype: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let (_, numel) = shape_arg(shape, None)?;
        let dtype = match dtype {
            Some(d) => dtype_arg(d)?,
            None => Dtype::Float32,
        };
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
    m.add_function(wrap_pyfunction!(noise_gpu_presets, m)?)?;
    m.add_function(wrap_pyfunction!(noise_simd_isa, m)?)?;
    m.add_function(wrap_pyfunction!(noise_set_simd, m)?)?;
    m.add_class::<PyGenerator>()?;
    Ok(())
}
