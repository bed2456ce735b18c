//! Seeded Gaussian noise, bit-identical to torch's generators.
//!
//! - [`Source::Cpu`]: torch's CPU generator (mt19937 + torch's Box–Muller), bit-identical for
//!   float32, float64, float16 and bfloat16, every size, and successive calls, for both the
//!   AVX2 kernel of x86-64 wheels ([`CpuKernel::Avx2`]) and the generic kernel that torch runs
//!   without AVX2 ([`CpuKernel::Default`]).
//! - [`Source::Cuda`]: torch's CUDA generator (Philox4x32-10, curand's Box–Muller, torch's
//!   launch geometry and offset bookkeeping) computed on the CPU; exact stream, values within
//!   about 1e-6 of a GPU (whose `__sincosf` cannot be reproduced bit for bit).
//! - [`Source::A1111Nv`]: AUTOMATIC1111's "NV" emulation, bit-identical to its formula.
//!
//! [`Generator`] is one stream; [`sample_noise`] applies the seed policies (per item, batch,
//! A1111) and A1111's variation seeds and seed resize.
//!
//! Seeds are `u64`: callers map torch's accepted range [−2^63, 2^64) onto it with
//! [`wrap_seed`] (negative seeds become their two's complement, as `manual_seed` does). The
//! CPU source only uses the low 32 bits (seeds `s` and `s + 2^32` give the same noise, as in
//! torch); the CUDA and NV sources use all 64.

pub mod a1111;
mod cephes;
pub mod dtype;
pub mod mt19937;
pub mod philox;
pub mod policy;
pub mod sequential;
pub mod simd;
pub mod torch_cpu;

pub use dtype::{Dtype, Noise, NoiseSliceMut};
pub use policy::{sample_noise, sample_noise_into, NoiseRequest, Plan, SeedMode, Variation};
pub use sequential::SequentialDraw;

use crate::error::{CoreError, Result};
use dtype::{f32_to_bf16_bits, f32_to_f16_bits};
use philox::{CudaGenerator, NvGenerator};
use torch_cpu::CpuGenerator;

/// Maps an integer seed in torch's accepted range [−2^63, 2^64) to the `u64` torch stores
/// (negative values wrap to two's complement, so −1 ≡ 2^64 − 1). Other values are an error
/// on `field`.
pub fn wrap_seed(seed: i128, field: &str) -> Result<u64> {
    if !(-(1i128 << 63)..(1i128 << 64)).contains(&seed) {
        return Err(CoreError::invalid(
            field,
            format!("seed {seed} is outside torch's range [-2**63, 2**64)"),
        ));
    }
    Ok(seed as u64)
}

/// numpy's limit on array dimensions (`NPY_MAXDIMS`, numpy 2.x): a result with more could not
/// be returned as an array, so no entry point accepts it.
pub const MAX_DIMS: usize = 64;

/// A tensor shape from caller integers (field `"shape"`): at most [`MAX_DIMS`] dimensions,
/// each non-negative, the element count representable and within `max_elements`
/// ([`CoreError::TooLarge`] otherwise). Returns the dimensions and the element count.
pub fn check_shape(dims: &[i128], max_elements: Option<u64>) -> Result<(Vec<usize>, usize)> {
    if dims.len() > MAX_DIMS {
        return Err(CoreError::invalid(
            "shape",
            format!(
                "at most {MAX_DIMS} dimensions (numpy's limit), got {}",
                dims.len()
            ),
        ));
    }
    let shape = dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| {
                CoreError::invalid("shape", format!("dimensions must be >= 0, got {d}"))
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    let numel = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize / 8)
        .ok_or_else(|| CoreError::too_large("shape", "the element count overflows"))?;
    if let Some(max) = max_elements {
        if numel as u64 > max {
            return Err(CoreError::too_large(
                "shape",
                format!("{numel} elements exceed the limit of {max}"),
            ));
        }
    }
    Ok((shape, numel))
}

/// Which of torch's CPU normal kernels to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CpuKernel {
    /// The AVX2 kernel used by x86-64 torch wheels on every CPU with AVX2 (AVX-512 CPUs
    /// included): Cephes log/sincos with GCC's FMA pattern. The default.
    #[default]
    Avx2,
    /// torch's generic kernel (x86-64 without AVX2, `ATEN_CPU_CAPABILITY=default`):
    /// glibc `logf`/`sinf`/`cosf`. Depends on the platform's libm; exact against glibc.
    Default,
}

impl CpuKernel {
    /// The kernel names [`CpuKernel::parse`] accepts.
    pub const NAMES: [&'static str; 2] = ["avx2", "default"];

    /// Parses `"avx2"` or `"default"` (field `"cpu_kernel"`).
    pub fn parse(name: &str) -> Result<CpuKernel> {
        let aliases = [("avx512", "avx2"), ("generic", "default")];
        match crate::names::resolve("cpu_kernel", "CPU kernel", name, &Self::NAMES, &aliases)? {
            "avx2" => Ok(CpuKernel::Avx2),
            _ => Ok(CpuKernel::Default),
        }
    }

    /// The name accepted by [`CpuKernel::parse`].
    pub fn name(self) -> &'static str {
        match self {
            CpuKernel::Avx2 => "avx2",
            CpuKernel::Default => "default",
        }
    }
}

/// The launch geometry of the emulated GPU: torch launches
/// `min(⌈n/256⌉, sm_count·⌊max_threads_per_sm/256⌋)` blocks of 256 threads, which decides
/// the values beyond the thread count. `sm_count == 0` means an unlimited grid (every
/// element gets its own thread: A1111's NV indexing; equal to every real GPU for tensors
/// no larger than that GPU's thread count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GpuGeometry {
    /// Streaming multiprocessors (`multiProcessorCount`); 0 for an unlimited grid.
    pub sm_count: u32,
    /// `maxThreadsPerMultiProcessor` (at least 256 when `sm_count > 0`).
    pub max_threads_per_sm: u32,
}

const fn geo(sm_count: u32, max_threads_per_sm: u32) -> GpuGeometry {
    GpuGeometry {
        sm_count,
        max_threads_per_sm,
    }
}

impl GpuGeometry {
    /// An unlimited grid (the default).
    pub const UNLIMITED: GpuGeometry = geo(0, 0);

    /// Named presets: (name, geometry).
    pub const PRESETS: &'static [(&'static str, GpuGeometry)] = &[
        ("unlimited", geo(0, 0)),
        ("t4", geo(40, 1024)),
        ("rtx2080ti", geo(68, 1024)),
        ("rtx3060", geo(28, 1536)),
        ("rtx3080", geo(68, 1536)),
        ("rtx3090", geo(82, 1536)),
        ("rtx4060", geo(24, 1536)),
        ("rtx4080", geo(76, 1536)),
        ("rtx4090", geo(128, 1536)),
        ("v100", geo(80, 2048)),
        ("a10", geo(72, 1536)),
        ("a10g", geo(80, 1536)),
        ("l4", geo(58, 1536)),
        ("a100", geo(108, 2048)),
        ("h100", geo(132, 2048)),
        ("h100-pcie", geo(114, 2048)),
        ("h200", geo(132, 2048)),
    ];

    /// The preset names.
    pub fn preset_names() -> Vec<&'static str> {
        Self::PRESETS.iter().map(|(n, _)| *n).collect()
    }

    /// A validated geometry (field `"gpu"`): `sm_count` in 1..=65535 and
    /// `max_threads_per_sm` in 256..=65536, or both 0 for an unlimited grid.
    pub fn new(sm_count: u32, max_threads_per_sm: u32) -> Result<GpuGeometry> {
        if sm_count == 0 && max_threads_per_sm == 0 {
            return Ok(Self::UNLIMITED);
        }
        if !(1..=65_535).contains(&sm_count) || !(256..=65_536).contains(&max_threads_per_sm) {
            return Err(CoreError::invalid(
                "gpu",
                format!(
                    "need 1..=65535 SMs and 256..=65536 threads per SM, got {sm_count} x {max_threads_per_sm}"
                ),
            ));
        }
        Ok(geo(sm_count, max_threads_per_sm))
    }

    /// A preset by name (case-insensitive), e.g. `"rtx4090"`.
    pub fn preset(name: &str) -> Result<GpuGeometry> {
        let found = Self::canonical_preset(name)?;
        Self::PRESETS
            .iter()
            .find(|(n, _)| *n == found)
            .map(|(_, g)| *g)
            .ok_or_else(|| CoreError::invalid("gpu", format!("unknown GPU preset {name:?}")))
    }

    /// The canonical spelling of a GPU preset name (case-insensitive; an unknown name suggests
    /// the nearest).
    pub fn canonical_preset(name: &str) -> Result<&'static str> {
        let names = Self::preset_names();
        crate::names::lookup(name.trim(), &names, &[]).ok_or_else(|| {
            let mut err = crate::names::unknown("gpu", "GPU preset", name, &names, &names);
            if let CoreError::InvalidArgument { message, .. } = &mut err {
                message.push_str(" A GPU is also given as \"<SMs>x<threads per SM>\".");
            }
            err
        })
    }

    /// A preset name, or `"<SMs>x<threads per SM>"` such as `"82x1536"`.
    pub fn parse(spec: &str) -> Result<GpuGeometry> {
        if let Some((a, b)) = spec.trim().split_once(['x', 'X', ':']) {
            if let (Ok(sm), Ok(thr)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                return Self::new(sm, thr);
            }
        }
        Self::preset(spec)
    }

    /// Whether the grid is unlimited.
    pub fn is_unlimited(&self) -> bool {
        self.sm_count == 0
    }

    /// The largest grid (blocks of 256), or `None` when unlimited.
    pub fn max_blocks(&self) -> Option<u64> {
        if self.is_unlimited() {
            None
        } else {
            Some(u64::from(self.sm_count) * u64::from(self.max_threads_per_sm / 256).max(1))
        }
    }

    /// The thread count T of a full launch, or `None` when unlimited.
    pub fn max_threads(&self) -> Option<u64> {
        self.max_blocks().map(|b| b * 256)
    }
}

/// Where the noise comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// torch's CPU generator.
    Cpu(CpuKernel),
    /// torch's CUDA generator on a GPU of the given geometry.
    Cuda(GpuGeometry),
    /// AUTOMATIC1111's "NV" formula.
    A1111Nv,
}

impl Default for Source {
    fn default() -> Self {
        Source::Cpu(CpuKernel::Avx2)
    }
}

impl Source {
    /// The accepted source names.
    pub const NAMES: [&'static str; 3] = ["cpu", "cuda", "a1111_nv"];

    /// Parses `source` (`"cpu"`, `"cuda"`, `"a1111_nv"`; field `"source"`) with its options:
    /// `cpu_kernel` (`"avx2"` or `"default"`, only for `"cpu"`) and `gpu` (a preset name or
    /// `"<SMs>x<threads>"`, only for `"cuda"`).
    pub fn parse(source: &str, cpu_kernel: Option<&str>, gpu: Option<&str>) -> Result<Source> {
        let aliases = [("nv", "a1111_nv")];
        let src = match crate::names::resolve(
            "source",
            "noise source",
            source,
            &Self::NAMES,
            &aliases,
        )? {
            "cpu" => Source::Cpu(match cpu_kernel {
                Some(k) => CpuKernel::parse(k)?,
                None => CpuKernel::Avx2,
            }),
            "cuda" => Source::Cuda(match gpu {
                Some(g) => GpuGeometry::parse(g)?,
                None => GpuGeometry::UNLIMITED,
            }),
            _ => Source::A1111Nv,
        };
        if cpu_kernel.is_some() && !matches!(src, Source::Cpu(_)) {
            return Err(CoreError::invalid(
                "cpu_kernel",
                "cpu_kernel only applies to source=\"cpu\"",
            ));
        }
        if gpu.is_some() && !matches!(src, Source::Cuda(_)) {
            return Err(CoreError::invalid(
                "gpu",
                "gpu only applies to source=\"cuda\"",
            ));
        }
        Ok(src)
    }

    /// The source name (`"cpu"`, `"cuda"`, `"a1111_nv"`).
    pub fn name(&self) -> &'static str {
        match self {
            Source::Cpu(_) => "cpu",
            Source::Cuda(_) => "cuda",
            Source::A1111Nv => "a1111_nv",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Inner {
    Cpu(Box<CpuGenerator>),
    Cuda(CudaGenerator),
    Nv(NvGenerator),
}

/// One noise stream, like one seeded `torch.Generator`: successive calls continue the
/// stream exactly as successive `torch.randn(..., generator=g)` calls do.
#[derive(Debug, Clone, PartialEq)]
pub struct Generator {
    seed: u64,
    source: Source,
    inner: Inner,
}

impl Generator {
    /// A fresh generator, like `torch.Generator(device).manual_seed(seed)` (negative seeds
    /// already wrapped, see [`wrap_seed`]).
    pub fn new(seed: u64, source: Source) -> Generator {
        let inner = match source {
            Source::Cpu(k) => Inner::Cpu(Box::new(CpuGenerator::new(seed, k))),
            Source::Cuda(g) => Inner::Cuda(CudaGenerator::new(seed, g)),
            Source::A1111Nv => Inner::Nv(NvGenerator::new(seed)),
        };
        Generator {
            seed,
            source,
            inner,
        }
    }

    /// The seed given at construction (or restored by [`Generator::set_state`]).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The source.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The philox offset (CUDA: torch's `get_offset()`; NV: A1111's call counter);
    /// `None` for the CPU source, which has no offset.
    pub fn offset(&self) -> Option<u64> {
        match &self.inner {
            Inner::Cpu(_) => None,
            Inner::Cuda(g) => Some(g.offset()),
            Inner::Nv(g) => Some(g.offset()),
        }
    }

    /// Draws `numel` values of `dtype` (one `torch.randn(numel, dtype=...)` call).
    pub fn randn(&mut self, numel: usize, dtype: Dtype) -> Result<Noise> {
        if numel.checked_mul(dtype.itemsize()).is_none() || numel > isize::MAX as usize / 8 {
            return Err(CoreError::too_large(
                "shape",
                "the tensor does not fit in memory",
            ));
        }
        let mut noise = Noise::zeros(dtype, numel);
        self.fill(noise.as_slice_mut());
        Ok(noise)
    }

    /// One `randn` call whose size and dtype are those of `out`, written into `out`.
    pub fn fill(&mut self, out: NoiseSliceMut<'_>) {
        match out {
            NoiseSliceMut::F32(v) => self.fill_f32(v),
            NoiseSliceMut::F64(v) => self.fill_f64(v),
            NoiseSliceMut::F16(v) => self.fill_f16(v),
            NoiseSliceMut::BF16(v) => self.fill_bf16(v),
        }
    }

    /// One float32 `randn` call of `out.len()` values into `out`.
    pub fn fill_f32(&mut self, out: &mut [f32]) {
        match &mut self.inner {
            Inner::Cpu(g) => g.fill_f32(out),
            Inner::Cuda(g) => g.fill_f32(out),
            Inner::Nv(g) => g.fill_with(out, |v| v),
        }
    }

    /// One float64 `randn` call into `out`. (NV: A1111's float32 values, widened.)
    pub fn fill_f64(&mut self, out: &mut [f64]) {
        match &mut self.inner {
            Inner::Cpu(g) => g.fill_f64(out),
            Inner::Cuda(g) => g.fill_f64(out),
            Inner::Nv(g) => g.fill_with(out, f64::from),
        }
    }

    /// One float16 `randn` call into `out` (raw bits).
    pub fn fill_f16(&mut self, out: &mut [u16]) {
        match &mut self.inner {
            Inner::Cpu(g) => g.fill_f16(out),
            Inner::Cuda(g) => g.fill_f16(out),
            Inner::Nv(g) => g.fill_with(out, f32_to_f16_bits),
        }
    }

    /// One bfloat16 `randn` call into `out` (raw bits).
    pub fn fill_bf16(&mut self, out: &mut [u16]) {
        match &mut self.inner {
            Inner::Cpu(g) => g.fill_bf16(out),
            Inner::Cuda(g) => g.fill_bf16(out),
            Inner::Nv(g) => g.fill_with(out, f32_to_bf16_bits),
        }
    }

    /// Values `[start, start + out.len())` of the next `randn` of `numel` values of `out`'s
    /// dtype, without consuming it (follow with [`Generator::skip`]). The CUDA and NV streams
    /// are counter-based, so any piece can be computed alone; the CPU stream is sequential and
    /// is an error here.
    pub fn fill_range(&self, numel: usize, start: usize, out: NoiseSliceMut<'_>) -> Result<()> {
        if start.checked_add(out.len()).is_none_or(|end| end > numel) {
            return Err(CoreError::invalid(
                "start",
                format!("the range starting at {start} runs past the {numel} values"),
            ));
        }
        match (&self.inner, out) {
            (Inner::Cpu(_), _) => {
                return Err(CoreError::invalid(
                    "source",
                    "the CPU generator is sequential: ranges need the cuda or a1111_nv source",
                ))
            }
            (Inner::Cuda(g), NoiseSliceMut::F32(v)) => g.range_f32(numel, start, v),
            (Inner::Cuda(g), NoiseSliceMut::F64(v)) => g.range_f64(numel, start, v),
            (Inner::Cuda(g), NoiseSliceMut::F16(v)) => g.range_f16(numel, start, v),
            (Inner::Cuda(g), NoiseSliceMut::BF16(v)) => g.range_bf16(numel, start, v),
            (Inner::Nv(g), NoiseSliceMut::F32(v)) => g.range_with(start, v, |x| x),
            (Inner::Nv(g), NoiseSliceMut::F64(v)) => g.range_with(start, v, f64::from),
            (Inner::Nv(g), NoiseSliceMut::F16(v)) => g.range_with(start, v, f32_to_f16_bits),
            (Inner::Nv(g), NoiseSliceMut::BF16(v)) => g.range_with(start, v, f32_to_bf16_bits),
        }
        Ok(())
    }

    /// Advances the stream exactly as `randn(numel, dtype)` would, without the values.
    pub fn skip(&mut self, numel: usize, dtype: Dtype) {
        match &mut self.inner {
            Inner::Cpu(g) => g.skip(numel, dtype),
            Inner::Cuda(g) => g.skip(numel, if dtype == Dtype::Float64 { 2 } else { 4 }),
            Inner::Nv(g) => g.skip(),
        }
    }

    /// The generator state as bytes: for the CPU source exactly torch's
    /// `Generator.get_state()` (5056 bytes); for CUDA torch's 16-byte (seed, offset); for NV
    /// 16 bytes (seed, call counter).
    pub fn get_state(&self) -> Vec<u8> {
        match &self.inner {
            Inner::Cpu(g) => g.get_state(),
            Inner::Cuda(g) => g.get_state(),
            Inner::Nv(g) => g.get_state(),
        }
    }

    /// Restores a state from [`Generator::get_state`] (or from torch for CPU and CUDA).
    pub fn set_state(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.inner {
            Inner::Cpu(g) => {
                g.set_state(bytes)?;
                self.seed = g.seed();
            }
            Inner::Cuda(g) => {
                g.set_state(bytes)?;
                self.seed = g.seed();
            }
            Inner::Nv(g) => {
                g.set_state(bytes)?;
                self.seed = g.seed();
            }
        }
        Ok(())
    }
}

/// Convenience: one fresh-generator draw, `torch.randn(numel, generator=manual_seed(seed))`.
pub fn randn(numel: usize, seed: u64, source: Source, dtype: Dtype) -> Result<Noise> {
    Generator::new(seed, source).randn(numel, dtype)
}
