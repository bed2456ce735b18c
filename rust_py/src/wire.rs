//! The gRPC hot path: serialized replies built as one Python `bytes` that the core fills.
//!
//! - `wire_latents_reply` allocates the final `bytes` of a serialized `SampleInitLatentsResponse`
//!   (the small protobuf prefix is computed in Python and passed in), lets the core's seed
//!   policy write the noise straight into the payload region with the GIL released, scales it
//!   by `init_noise_sigma` with torch's arithmetic and copies the prefix in front. No
//!   intermediate array, no copy of the payload.
//! - `BatchStream` streams one logical CPU draw of a whole tensor (`seed_mode="batch"`) as
//!   serialized `LatentsChunk{data}` messages with memory bounded by one chunk, byte-identical
//!   to slicing the unary payload.
//!
//! Alignment: the payload starts at an arbitrary byte offset (CPython's `bytes` data sits 32
//! bytes into a 16-aligned allocation, then the prefix). The noise is written at the aligned
//! address just below the payload (inside the not-yet-written prefix) and moved up by the
//! misalignment while it is scaled, block by block from the end, so there is still no
//! second buffer.

use std::ffi::{c_int, c_void};

use pyo3::exceptions::{PyMemoryError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use sigmaserve_core::rng::dtype::{
    bf16_bits_to_f32, f16_bits_to_f32, f32_to_bf16_bits, f32_to_f16_bits,
};
use sigmaserve_core::rng::torch_cpu::CpuGenerator;
use sigmaserve_core::rng::{
    self, Dtype, Generator, Noise, NoiseRequest, NoiseSliceMut, SeedMode, Source,
};
use sigmaserve_core::CoreError;

use crate::args::{extract_seed, invalid, NoiseArgs};
use crate::errors::PyCoreError;

// ---- torch's scalar multiply, element by element ---------------------------------------------

/// An element type of the payload: how torch multiplies it by a Python float, and its bytes.
trait Elem: Copy + Default + Send + Sync {
    const SIZE: usize;
    /// `x * factor` in torch's opmath type, rounded back to the storage type.
    fn scale(self, dtype: Dtype, factor: f64) -> Self;
    /// Little-endian bytes of `self` written at `dst` (`SIZE` bytes).
    fn put_le(self, dst: &mut [u8]);
    /// Typed view of an aligned buffer as the core's output slice.
    fn noise_slice(v: &mut [Self], dtype: Dtype) -> NoiseSliceMut<'_>;
}

impl Elem for f32 {
    const SIZE: usize = 4;
    #[inline]
    fn scale(self, _: Dtype, factor: f64) -> f32 {
        self * factor as f32
    }
    #[inline]
    fn put_le(self, dst: &mut [u8]) {
        dst.copy_from_slice(&self.to_le_bytes());
    }
    fn noise_slice(v: &mut [f32], _: Dtype) -> NoiseSliceMut<'_> {
        NoiseSliceMut::F32(v)
    }
}

impl Elem for f64 {
    const SIZE: usize = 8;
    #[inline]
    fn scale(self, _: Dtype, factor: f64) -> f64 {
        self * factor
    }
    #[inline]
    fn put_le(self, dst: &mut [u8]) {
        dst.copy_from_slice(&self.to_le_bytes());
    }
    fn noise_slice(v: &mut [f64], _: Dtype) -> NoiseSliceMut<'_> {
        NoiseSliceMut::F64(v)
    }
}

/// float16 or bfloat16 bits: widened to float32 (exact), multiplied by `float32(factor)`,
/// rounded to nearest even (numpy's `astype(float16)`, `bf16.bfloat16_bits_from_float32`).
impl Elem for u16 {
    const SIZE: usize = 2;
    #[inline]
    fn scale(self, dtype: Dtype, factor: f64) -> u16 {
        if dtype == Dtype::BFloat16 {
            f32_to_bf16_bits(bf16_bits_to_f32(self) * factor as f32)
        } else {
            f32_to_f16_bits(f16_bits_to_f32(self) * factor as f32)
        }
    }
    #[inline]
    fn put_le(self, dst: &mut [u8]) {
        dst.copy_from_slice(&self.to_le_bytes());
    }
    fn noise_slice(v: &mut [u16], dtype: Dtype) -> NoiseSliceMut<'_> {
        if dtype == Dtype::BFloat16 {
            NoiseSliceMut::BF16(v)
        } else {
            NoiseSliceMut::F16(v)
        }
    }
}

/// Scales `v` in place like `sigmaserve.latents.scale_noise` (nothing when `factor == 1`).
fn scale_in_place<T: Elem>(v: &mut [T], dtype: Dtype, factor: f64) {
    if factor == 1.0 {
        return;
    }
    for x in v.iter_mut() {
        *x = x.scale(dtype, factor);
    }
}

/// Writes `src` (scaled) as little-endian bytes into `dst` (`src.len() * SIZE` bytes).
fn put_scaled<T: Elem>(src: &mut [T], dst: &mut [u8], dtype: Dtype, factor: f64) {
    scale_in_place(src, dtype, factor);
    for (x, d) in src.iter().zip(dst.chunks_exact_mut(T::SIZE)) {
        x.put_le(d);
    }
}

// ---- filling a payload in place ----------------------------------------------------------------

/// Below this many elements a request in a plain seed mode is drawn on the calling thread: the
/// core's policy runs items on its thread pool, whose hand-off costs more than a small draw.
const INLINE_MAX: usize = 1 << 16;

/// The request's noise into `out`: the core's policy (`sample_noise_into`), or for small
/// requests without batch_index, variation seeds or seed resize the same draws on this thread
/// (one fresh generator per item, or one draw of the whole tensor in batch mode).
fn generate(req: &NoiseRequest, out: NoiseSliceMut<'_>) -> Result<(), CoreError> {
    let plain =
        req.batch_index.is_none() && req.variation.is_none() && req.seed_resize_from.is_none();
    if !plain || out.len() > INLINE_MAX {
        return rng::sample_noise_into(req, out);
    }
    let plan = req.plan()?;
    if out.len() != plan.numel || out.dtype() != req.dtype {
        return rng::sample_noise_into(req, out); // the core reports the mismatch
    }
    if plan.numel == 0 {
        return Ok(());
    }
    macro_rules! draw {
        ($v:expr, $fill:ident) => {{
            if req.seed_mode == SeedMode::Batch {
                rng::Generator::new(plan.seeds[0], req.source).$fill($v);
            } else {
                for (item, seed) in $v.chunks_mut(plan.item).zip(&plan.seeds) {
                    rng::Generator::new(*seed, req.source).$fill(item);
                }
            }
        }};
    }
    match out {
        NoiseSliceMut::F32(v) => draw!(v, fill_f32),
        NoiseSliceMut::F64(v) => draw!(v, fill_f64),
        NoiseSliceMut::F16(v) => draw!(v, fill_f16),
        NoiseSliceMut::BF16(v) => draw!(v, fill_bf16),
    }
    Ok(())
}

/// Elements per block of the scale-and-move pass (cache-resident scratch).
const BLOCK: usize = 4096;

/// Fills `buf[p..]` (exactly `numel * T::SIZE` bytes) with the request's noise, scaled and
/// little-endian. `buf[..p]` is scratch on return (the caller writes the prefix after).
fn fill_payload<T: Elem>(
    buf: &mut [u8],
    p: usize,
    req: &NoiseRequest,
    factor: f64,
) -> Result<(), CoreError> {
    let size = T::SIZE;
    let nbytes = buf.len() - p;
    let numel = nbytes / size;
    let k = (buf.as_ptr() as usize + p) % std::mem::align_of::<T>();
    if k > p || cfg!(target_endian = "big") {
        // No room below the payload to realign (or a big-endian host): a separate buffer.
        let mut v = vec![T::default(); numel];
        generate(req, T::noise_slice(&mut v, req.dtype))?;
        put_scaled(&mut v, &mut buf[p..], req.dtype, factor);
        return Ok(());
    }
    let start = p - k;
    {
        let region = &mut buf[start..start + nbytes];
        // SAFETY: f32, f64 and u16 are valid for every bit pattern; the region's start is
        // aligned for T by construction, so the prefix and suffix of align_to_mut are empty
        // (checked below).
        let (head, typed, tail) = unsafe { region.align_to_mut::<T>() };
        if !head.is_empty() || !tail.is_empty() || typed.len() != numel {
            return Err(CoreError::invalid("out", "could not align the payload"));
        }
        generate(req, T::noise_slice(typed, req.dtype))?;
        if k == 0 {
            scale_in_place(typed, req.dtype, factor);
            return Ok(());
        }
    }
    // Move the values up by k bytes while scaling, last block first: a block's destination
    // only overlaps its own source (already read into the scratch) and the next block's
    // source (already moved).
    let mut scratch = vec![T::default(); BLOCK.min(numel)];
    let mut end = numel;
    while end > 0 {
        let begin = end.saturating_sub(BLOCK);
        let count = end - begin;
        let s = &mut scratch[..count];
        let src = start + begin * size;
        for (x, chunk) in s
            .iter_mut()
            .zip(buf[src..src + count * size].chunks_exact(size))
        {
            // SAFETY: `chunk` holds SIZE bytes of a T written by the core; an unaligned read
            // of a plain-old-data value.
            *x = unsafe { std::ptr::read_unaligned(chunk.as_ptr().cast::<T>()) };
        }
        let dst = p + begin * size;
        put_scaled(s, &mut buf[dst..dst + count * size], req.dtype, factor);
        end = begin;
    }
    Ok(())
}

fn fill_payload_dyn(
    buf: &mut [u8],
    p: usize,
    req: &NoiseRequest,
    factor: f64,
) -> Result<(), CoreError> {
    match req.dtype {
        Dtype::Float32 => fill_payload::<f32>(buf, p, req, factor),
        Dtype::Float64 => fill_payload::<f64>(buf, p, req, factor),
        Dtype::Float16 | Dtype::BFloat16 => fill_payload::<u16>(buf, p, req, factor),
    }
}

/// The same payload through a separate `Vec` (the fallback the in-place fill avoids; kept
/// for measurement): generate, scale, then one copy into `buf[p..]`.
fn fill_payload_via_vec(
    buf: &mut [u8],
    p: usize,
    req: &NoiseRequest,
    factor: f64,
) -> Result<(), CoreError> {
    let mut noise = rng::sample_noise(req)?;
    match &mut noise {
        Noise::F32(v) => scale_in_place(v, req.dtype, factor),
        Noise::F64(v) => scale_in_place(v, req.dtype, factor),
        Noise::F16(v) | Noise::BF16(v) => scale_in_place(v, req.dtype, factor),
    }
    let bytes = noise.to_le_bytes();
    buf[p..].copy_from_slice(&bytes);
    Ok(())
}

// ---- allocating the bytes object ---------------------------------------------------------------

#[cfg(target_os = "linux")]
extern "C" {
    fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
}

/// Asks for transparent huge pages on a large fresh buffer (first-touch page faults are the
/// dominant cost of a new 64 MiB buffer); a hint, failures are ignored.
fn advise_huge(buf: &mut [u8]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        const MADV_HUGEPAGE: c_int = 14;
        if buf.len() < 2 * HUGE {
            return;
        }
        let addr = buf.as_mut_ptr() as usize;
        let first = addr.div_ceil(HUGE) * HUGE;
        let last = (addr + buf.len()) / HUGE * HUGE;
        if last > first {
            // SAFETY: [first, last) lies inside `buf`, which we own; madvise only changes the
            // kernel's paging policy for it.
            unsafe {
                madvise(first as *mut c_void, last - first, MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

/// A new, uninitialised `bytes` of `len` bytes and its buffer. The caller must write every
/// byte before the object is visible to Python code.
fn alloc_bytes(py: Python<'_>, len: usize) -> PyResult<(Bound<'_, PyBytes>, &mut [u8])> {
    let ssize =
        ffi::Py_ssize_t::try_from(len).map_err(|_| PyMemoryError::new_err("reply too large"))?;
    // SAFETY: PyBytes_FromStringAndSize(NULL, n) returns a new reference to a bytes object
    // with n writable bytes (or NULL with an exception set); nothing else references it yet.
    unsafe {
        let ptr = ffi::PyBytes_FromStringAndSize(std::ptr::null(), ssize);
        let obj = Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked::<PyBytes>();
        let data = ffi::PyBytes_AsString(ptr).cast::<u8>();
        if data.is_null() {
            return Err(PyErr::fetch(py));
        }
        Ok((obj, std::slice::from_raw_parts_mut(data, len)))
    }
}

// ---- SampleInitLatents ---------------------------------------------------------------------------

/// The scale factor (`sigma` on the wire) must be a finite, non-negative number.
fn check_sigma(factor: f64) -> PyResult<()> {
    if factor.is_finite() && factor >= 0.0 {
        return Ok(());
    }
    Err(invalid(
        "sigma",
        format!("must be finite and non-negative, got {factor}"),
    )
    .into())
}

/// The serialized `SampleInitLatentsResponse`: `prefix` (everything before the tensor bytes,
/// from `sigmaserve.wire.latents_reply_prefix`) followed by the request's noise scaled by
/// `factor`, written by the core into the reply's own buffer with the GIL released.
/// Arguments as `noise_sample`; `strategy` is `"inplace"` (default), or for measurement
/// `"new_with"` (PyO3's zero-initialised `PyBytes::new_with`) and `"vec"` (a separate buffer
/// and one copy).
#[pyfunction]
#[pyo3(signature = (prefix, factor, shape, seeds, seed_mode = "per_item", source = "cpu", dtype = "float32", cpu_kernel = None, gpu = None, batch_index = None, subseeds = None, subseed_strength = 0.0, seed_resize_from = None, max_elements = None, strategy = "inplace"))]
#[allow(clippy::too_many_arguments)]
fn wire_latents_reply<'py>(
    py: Python<'py>,
    prefix: &[u8],
    factor: f64,
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
    strategy: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    check_sigma(factor)?;
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
    // Validate everything (sizes against max_elements included) before allocating.
    let plan = req.plan().map_err(PyCoreError::from)?;
    let p = prefix.len();
    let len = plan
        .numel
        .checked_mul(req.dtype.itemsize())
        .and_then(|n| n.checked_add(p))
        .ok_or_else(|| PyCoreError(CoreError::too_large("shape", "the reply overflows")))?;
    // Tiny replies: the detach/attach round trip costs more than the work.
    let small = len <= 1 << 18;
    let fill = |buf: &mut [u8]| -> Result<(), CoreError> {
        match strategy {
            "vec" => fill_payload_via_vec(buf, p, &req, factor)?,
            _ => {
                advise_huge(buf);
                fill_payload_dyn(buf, p, &req, factor)?
            }
        }
        buf[..p].copy_from_slice(prefix);
        Ok(())
    };
    match strategy {
        "inplace" | "vec" => {
            let (obj, buf) = alloc_bytes(py, len)?;
            let done = if small {
                fill(buf)
            } else {
                py.detach(|| fill(buf))
            };
            done.map_err(PyCoreError::from)?;
            Ok(obj)
        }
        "new_with" => PyBytes::new_with(py, len, |buf| {
            // The object is not visible to any other code yet, so the GIL can go.
            py.detach(|| fill(buf)).map_err(|e| PyCoreError(e).into())
        }),
        other => Err(PyValueError::new_err(format!(
            "strategy must be \"inplace\", \"new_with\" or \"vec\", got {other:?}"
        ))),
    }
}

// ---- StreamInitLatents, seed_mode="batch" --------------------------------------------------------

const CHUNK_DATA_TAG: u8 = 0x12; // LatentsChunk.data = 2, wire type 2

fn varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Where a [`BatchDraw`]'s values come from.
enum Engine {
    /// torch's CPU generator: a sequential stream, drawn in order (see [`BatchDraw`]).
    Cpu(Box<CpuGenerator>),
    /// The CUDA or NV source: counter-based, so each piece is computed on its own
    /// (`Generator::fill_range`).
    Counter(Generator),
}

/// One `randn` of the whole tensor, produced piece by piece.
///
/// The counter-based sources compute any range directly. For the CPU source:
/// torch's CPU normal fill (16 values or more) turns mt19937 uniforms into normals in
/// independent blocks of 16; a size that is not a multiple of 16 then skips the uniforms of
/// its last partial block and recomputes the last 16 values from 16 fresh uniforms. A fill of
/// a multiple of 16 values is exactly "uniforms, then blocks", so successive fills of 16-value
/// multiples reproduce the full draw's prefix, and the tail block is drawn once the stream
/// reaches it (it overwrites the last 16 values, so those are held back until then).
struct BatchDraw {
    engine: Engine,
    dtype: Dtype,
    numel: usize,
    /// Values [base, frontier) are held in `values`; those below `ready` are final (the last
    /// 16 are not until the tail block is drawn).
    base: usize,
    frontier: usize,
    ready: usize,
    values: Noise,
}

impl BatchDraw {
    fn new(seed: u64, source: Source, dtype: Dtype, numel: usize) -> BatchDraw {
        let engine = match source {
            Source::Cpu(kernel) => Engine::Cpu(Box::new(CpuGenerator::new(seed, kernel))),
            other => Engine::Counter(Generator::new(seed, other)),
        };
        BatchDraw {
            engine,
            dtype,
            numel,
            base: 0,
            frontier: 0,
            ready: 0,
            values: Noise::zeros(dtype, 0),
        }
    }

    /// Makes values [.., target) final (target <= numel).
    fn advance(&mut self, target: usize) -> Result<(), CoreError> {
        let n = self.numel;
        if target <= self.ready {
            return Ok(());
        }
        let gen = match &mut self.engine {
            Engine::Cpu(gen) => gen,
            Engine::Counter(gen) => {
                let (old, grow, start) = (
                    self.frontier - self.base,
                    target - self.frontier,
                    self.frontier,
                );
                macro_rules! range {
                    ($v:expr, $variant:ident, $t:ty) => {{
                        let v = $v;
                        v.resize(old + grow, <$t>::default());
                        gen.fill_range(n, start, NoiseSliceMut::$variant(&mut v[old..]))
                    }};
                }
                match &mut self.values {
                    Noise::F32(v) => range!(v, F32, f32),
                    Noise::F64(v) => range!(v, F64, f64),
                    Noise::F16(v) => range!(v, F16, u16),
                    Noise::BF16(v) => range!(v, BF16, u16),
                }?;
                self.frontier = target;
                self.ready = target;
                return Ok(());
            }
        };
        let full = n / 16 * 16;
        let has_tail = n >= 16 && n != full;
        let goal = if n < 16 || (has_tail && target > n - 16) {
            n
        } else {
            target.div_ceil(16) * 16
        };
        let old = self.frontier - self.base;
        let grow = goal.saturating_sub(self.frontier);
        macro_rules! extend {
            ($v:expr, $fill:ident, $t:ty, $words:expr) => {{
                let v = $v;
                v.resize(old + grow, <$t>::default());
                if n < 16 {
                    gen.$fill(&mut v[old..]);
                } else {
                    let upto = if goal == n { full } else { goal };
                    if upto > self.frontier {
                        gen.$fill(&mut v[old..old + upto - self.frontier]);
                    }
                    if goal == n && has_tail {
                        // The partial block's uniforms are consumed, then the tail block.
                        gen.engine_mut().discard($words * (n - full) as u64);
                        let mut tail = [<$t>::default(); 16];
                        gen.$fill(&mut tail);
                        let at = n - 16 - self.base;
                        v[at..].copy_from_slice(&tail);
                    }
                }
            }};
        }
        match &mut self.values {
            Noise::F32(v) => extend!(v, fill_f32, f32, 1),
            Noise::F64(v) => extend!(v, fill_f64, f64, 2),
            Noise::F16(v) => extend!(v, fill_f16, u16, 0),
            Noise::BF16(v) => extend!(v, fill_bf16, u16, 0),
        }
        self.frontier = self.frontier.max(goal);
        self.ready = if self.frontier == n || !has_tail {
            self.frontier
        } else {
            self.frontier.min(n - 16)
        };
        Ok(())
    }

    /// Drops the values below `keep`.
    fn release(&mut self, keep: usize) {
        let drop = keep
            .saturating_sub(self.base)
            .min(self.frontier - self.base);
        match &mut self.values {
            Noise::F32(v) => drop_front(v, drop),
            Noise::F64(v) => drop_front(v, drop),
            Noise::F16(v) | Noise::BF16(v) => drop_front(v, drop),
        }
        self.base += drop;
    }

    /// Writes the bytes [start, start + out.len()) of the scaled little-endian payload.
    fn write(&mut self, start: usize, out: &mut [u8], factor: f64) -> Result<(), CoreError> {
        let size = self.dtype.itemsize();
        let first = start / size;
        let last = (start + out.len()).div_ceil(size);
        self.advance(last)?;
        let (lo, hi) = (first - self.base, last - self.base);
        let skip = start - first * size;
        let dtype = self.dtype;
        match &self.values {
            Noise::F32(v) => emit(&v[lo..hi], skip, out, dtype, factor),
            Noise::F64(v) => emit(&v[lo..hi], skip, out, dtype, factor),
            Noise::F16(v) | Noise::BF16(v) => emit(&v[lo..hi], skip, out, dtype, factor),
        }
        // Keep the element the next chunk starts in.
        self.release((start + out.len()) / size);
        Ok(())
    }
}

/// Writes `values` scaled, as little-endian bytes, dropping the first `skip` bytes, into
/// `out` (which ends inside or at the end of the last value).
fn emit<T: Elem>(values: &[T], skip: usize, out: &mut [u8], dtype: Dtype, factor: f64) {
    let size = T::SIZE;
    let scaled = |x: T| {
        if factor == 1.0 {
            x
        } else {
            x.scale(dtype, factor)
        }
    };
    let bytes_of = |x: T| {
        let mut b = [0u8; 8];
        scaled(x).put_le(&mut b[..size]);
        b
    };
    let mut values = values;
    let mut out = out;
    if skip > 0 {
        // The value the previous chunk ended inside.
        let b = bytes_of(values[0]);
        let n = (size - skip).min(out.len());
        out[..n].copy_from_slice(&b[skip..skip + n]);
        out = &mut out[n..];
        values = &values[1..];
    }
    let whole = out.len() / size;
    let (body, rest) = out.split_at_mut(whole * size);
    for (x, d) in values.iter().zip(body.chunks_exact_mut(size)) {
        scaled(*x).put_le(d);
    }
    if !rest.is_empty() {
        let b = bytes_of(values[whole]);
        let n = rest.len();
        rest.copy_from_slice(&b[..n]);
    }
}

fn drop_front<T>(v: &mut Vec<T>, n: usize) {
    if n > 0 {
        v.drain(..n);
    }
}

/// `seed_mode="batch"` latents (CPU source, no batch_index or variation seeds) as serialized
/// `LatentsChunk{data}` messages of `chunk_bytes` each (the last one shorter), concatenating to
/// exactly the unary reply's payload, with memory bounded by about one chunk.
#[pyclass(name = "BatchStream", module = "sigmaserve._core")]
struct PyBatchStream {
    draw: BatchDraw,
    factor: f64,
    offset: usize,
    total: usize,
}

#[pymethods]
impl PyBatchStream {
    #[new]
    #[pyo3(signature = (seed, numel, dtype = "float32", factor = 1.0, cpu_kernel = None, source = "cpu", gpu = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        seed: &Bound<'_, PyAny>,
        numel: usize,
        dtype: &str,
        factor: f64,
        cpu_kernel: Option<&str>,
        source: &str,
        gpu: Option<&str>,
    ) -> PyResult<Self> {
        let seed = extract_seed(seed, "seeds")?;
        let dtype = Dtype::parse(dtype).map_err(PyCoreError::from)?;
        let source = Source::parse(source, cpu_kernel, gpu).map_err(PyCoreError::from)?;
        check_sigma(factor)?;
        let total = numel
            .checked_mul(dtype.itemsize())
            .ok_or_else(|| PyCoreError(CoreError::too_large("shape", "the tensor overflows")))?;
        Ok(PyBatchStream {
            draw: BatchDraw::new(seed, source, dtype, numel),
            factor,
            offset: 0,
            total,
        })
    }

    /// The next serialized `LatentsChunk{data}` of at most `chunk_bytes` payload bytes, or
    /// None at the end. Generation runs with the GIL released.
    fn next_chunk<'py>(
        &mut self,
        py: Python<'py>,
        chunk_bytes: usize,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        if chunk_bytes == 0 {
            return Err(PyValueError::new_err("chunk_bytes must be positive"));
        }
        let count = chunk_bytes.min(self.total - self.offset);
        if count == 0 {
            return Ok(None);
        }
        let mut head = vec![CHUNK_DATA_TAG];
        varint(count as u64, &mut head);
        let (obj, buf) = alloc_bytes(py, head.len() + count)?;
        let (h, payload) = buf.split_at_mut(head.len());
        h.copy_from_slice(&head);
        let (start, factor, draw) = (self.offset, self.factor, &mut self.draw);
        py.detach(|| draw.write(start, payload, factor))
            .map_err(PyCoreError::from)?;
        self.offset += count;
        Ok(Some(obj))
    }

    /// Payload bytes in all.
    #[getter]
    fn total_bytes(&self) -> usize {
        self.total
    }

    /// Payload bytes produced so far.
    #[getter]
    fn offset(&self) -> usize {
        self.offset
    }
}

/// Adds this module's functions and classes to `sigmaserve._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(wire_latents_reply, m)?)?;
    m.add_class::<PyBatchStream>()?;
    Ok(())
}
