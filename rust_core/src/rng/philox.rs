//! Philox4x32-10 and the Gaussian streams built on it: torch's CUDA generator
//! (`torch.Generator("cuda")`, emulated on the CPU) and AUTOMATIC1111's "NV" source.
//!
//! References: curand `curand_philox4x32_x.h` (round function, constants, key schedule),
//! `curand_kernel.h` (`curand_init`, `curand4`), `curand_normal.h` (`_curand_box_muller`,
//! `curand_normal4`, `_curand_box_muller_double`, `curand_normal2_double`); torch 2.13.0
//! `aten/src/ATen/native/cuda/DistributionTemplates.h` (`calc_execution_policy`,
//! `distribution_nullary_kernel`, grid-stride element mapping) and
//! `aten/src/ATen/cuda/CUDAGeneratorImpl.cpp` (seed, philox offset bookkeeping);
//! AUTOMATIC1111/stable-diffusion-webui 1.10 `modules/rng_philox.py` (the NV formula).
//!
//! What is exact and what is a model:
//! - The Philox words, the counter/subsequence layout, the element → (iteration, component,
//!   thread) mapping and the offset increments are exact.
//! - The CUDA float transform runs on the GPU in float32 with the approximate `__sincosf`
//!   intrinsic, which a CPU cannot reproduce bit for bit. We compute the GPU's inputs exactly
//!   (`u = float(x)·2^-32 + 2^-33`, `v = fma(float(y), 2π·2^-32, π·2^-32)`) and use the
//!   accurate float32 Cephes log and sincos; expect |Δ| of order 1e-7..1e-6 against a GPU.
//! - The NV source is A1111's float64 numpy formula, rounded to float32 (bit-identical).

use rayon::prelude::*;

use super::cephes;
use super::dtype::{f32_to_bf16_bits, f32_to_f16_bits};
use super::GpuGeometry;

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Elements per parallel work item.
const CHUNK: usize = 1 << 14;
/// Below this many elements everything runs on the calling thread.
const PAR_MIN: usize = 1 << 15;

/// One Philox4x32-10 block: 10 rounds of `(c0,c1,c2,c3) ← (hi(M1·c2)⊕c1⊕k0, lo(M1·c2),
/// hi(M0·c0)⊕c3⊕k1, lo(M0·c0))`, the key bumped by (W0, W1) between rounds.
#[inline(always)]
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k = key;
    for round in 0..10 {
        let p0 = u64::from(M0) * u64::from(c[0]);
        let p1 = u64::from(M1) * u64::from(c[2]);
        c = [
            ((p1 >> 32) as u32) ^ c[1] ^ k[0],
            p1 as u32,
            ((p0 >> 32) as u32) ^ c[3] ^ k[1],
            p0 as u32,
        ];
        if round < 9 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
    }
    c
}

/// The Philox key of a 64-bit seed: (low word, high word). No truncation.
#[inline]
pub fn key_of(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// 2^-32 as the float32 literal `2.3283064e-10f` (curand `CURAND_2POW32_INV`).
const INV32: f32 = 2.328_306_4e-10;
/// `CURAND_2POW32_INV_2PI` = 2.3283064e-10f · 6.2831855f.
const INV32_2PI: f32 = 1.462_918_1e-9;

/// `_curand_box_muller(x, y)` → `(s·sin v, s·cos v)` (float32 model of the GPU arithmetic).
#[inline(always)]
pub fn box_muller_f32(x: u32, y: u32) -> (f32, f32) {
    let u = (x as f32) * INV32 + INV32 / 2.0;
    let v = (y as f32).mul_add(INV32_2PI, INV32_2PI / 2.0);
    let s = (-2.0 * cephes::log_f32(u)).sqrt();
    let (sn, cs) = cephes::sincos_f32(v);
    // torch's `rand * std + mean` with std 1, mean 0: the +0 turns −0 into +0.
    (s * sn + 0.0, s * cs + 0.0)
}

/// `_curand_box_muller_double(x, y, z, w)` → `(s·sin πv, s·cos πv)`.
#[inline]
pub fn box_muller_f64(x: u32, y: u32, z: u32, w: u32) -> (f64, f64) {
    const INV53: f64 = 1.0 / 9_007_199_254_740_992.0;
    let a = u64::from(x) ^ (u64::from(y) << 21);
    let u = a as f64 * INV53 + INV53 / 2.0;
    let b = u64::from(z) ^ (u64::from(w) << 21);
    let v = b as f64 * (INV53 * 2.0) + INV53;
    let s = (-2.0 * u.ln()).sqrt();
    let (sn, cs) = (std::f64::consts::PI * v).sin_cos();
    (s * sn, s * cs)
}

/// A1111's NV formula for one element: float32(√(−2 ln u)·sin v) evaluated in float64,
/// `u = x·c + c/2`, `v = y·c′ + c′/2` with the float32 constants c = 2.3283064e-10 and
/// c′ = float32(2.3283064e-10 · 6.2831855) promoted to float64 (numpy's uint32 × float32).
#[inline]
pub fn nv_value(x: u32, y: u32) -> f32 {
    let c = f64::from(INV32);
    let c_half = f64::from(INV32 / 2.0);
    let cp = f64::from(INV32_2PI);
    let cp_half = f64::from(INV32_2PI / 2.0);
    let u = f64::from(x) * c + c_half;
    let v = f64::from(y) * cp + cp_half;
    let s = (-2.0 * u.ln()).sqrt();
    (s * v.sin()) as f32
}

/// The number of CUDA threads torch launches for `n` elements on `geometry`
/// (`calc_execution_policy`: blocks of 256, grid capped at SMs · ⌊threads per SM / 256⌋).
pub fn launch_threads(n: u64, geometry: GpuGeometry) -> u64 {
    let blocks = n.div_ceil(256).max(1);
    let cap = geometry.max_blocks().unwrap_or(u64::MAX);
    256 * blocks.min(cap)
}

/// The philox offset increment of one CUDA `randn` of `n` elements with `unroll` values
/// per curand call (4 for float32/float16/bfloat16, 2 for float64).
pub fn offset_increment(n: u64, unroll: u64, geometry: GpuGeometry) -> u64 {
    if n == 0 {
        return 0;
    }
    let t = launch_threads(n, geometry);
    4 * ((n - 1) / (t * unroll) + 1)
}

/// Output rows of one (iteration, thread range) work item: row `ii` receives component `ii`.
struct Rows<'a, T> {
    counter: u64,
    idx0: u64,
    rows: Vec<&'a mut [T]>,
}

/// Splits `out` into work items following torch's grid-stride mapping: element
/// `e = q·(U·T) + ii·T + idx` is component `ii` of the curand call of thread `idx` in
/// iteration `q`.
fn split_rows<T>(out: &mut [T], t: usize, unroll: usize, base: u64) -> Vec<Rows<'_, T>> {
    let mut items = Vec::new();
    let stride = t * unroll;
    for (q, block) in out.chunks_mut(stride).enumerate() {
        let mut row_chunks: Vec<std::slice::ChunksMut<'_, T>> = block
            .chunks_mut(t)
            .map(|row| row.chunks_mut(CHUNK))
            .collect();
        let mut c = 0usize;
        loop {
            let rows: Vec<&mut [T]> = row_chunks.iter_mut().map_while(|it| it.next()).collect();
            if rows.is_empty() {
                break;
            }
            items.push(Rows {
                counter: base.wrapping_add(q as u64),
                idx0: (c * CHUNK) as u64,
                rows,
            });
            c += 1;
        }
    }
    items
}

/// How an [`Emit`] stores eight lanes in the AVX2 path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lanes {
    /// A float32 vector store.
    F32,
    /// F16C `vcvtps2ph` (round to nearest even), then a 128-bit store.
    F16Bits,
    /// AVX2 integer rounding to bfloat16, then a 128-bit store.
    Bf16Bits,
}

/// How float32 values land in an output of `T`: a scalar conversion, and how eight lanes are
/// stored at once.
///
/// # Safety
/// `LANES` promises the element type and conversion the AVX2 path writes through a cast
/// pointer: `F32` needs `T = f32` and the identity, `F16Bits` needs `T = u16`
/// and [`f32_to_f16_bits`], `Bf16Bits` needs `T = u16` and [`f32_to_bf16_bits`].
unsafe trait Emit<T>: Copy + Send + Sync {
    const LANES: Lanes;
    fn one(self, v: f32) -> T;
}

/// float32 output, stored as computed.
#[derive(Clone, Copy)]
struct Identity;

// SAFETY: T is f32 and `one` is the identity.
unsafe impl Emit<f32> for Identity {
    const LANES: Lanes = Lanes::F32;
    #[inline(always)]
    fn one(self, v: f32) -> f32 {
        v
    }
}

/// float16 bits, rounded to nearest even.
#[derive(Clone, Copy)]
struct HalfBits;

// SAFETY: T is u16 and `one` is f32_to_f16_bits.
unsafe impl Emit<u16> for HalfBits {
    const LANES: Lanes = Lanes::F16Bits;
    #[inline(always)]
    fn one(self, v: f32) -> u16 {
        f32_to_f16_bits(v)
    }
}

/// bfloat16 bits, rounded to nearest even.
#[derive(Clone, Copy)]
struct BHalfBits;

// SAFETY: T is u16 and `one` is f32_to_bf16_bits.
unsafe impl Emit<u16> for BHalfBits {
    const LANES: Lanes = Lanes::Bf16Bits;
    #[inline(always)]
    fn one(self, v: f32) -> u16 {
        f32_to_bf16_bits(v)
    }
}

#[inline(always)]
fn ctr(counter: u64, idx: u64) -> [u32; 4] {
    [
        counter as u32,
        (counter >> 32) as u32,
        idx as u32,
        (idx >> 32) as u32,
    ]
}

fn fill_rows_f32<T: Copy, E: Emit<T>>(item: &mut Rows<'_, T>, key: [u32; 2], emit: E) {
    let need_second = item.rows.len() > 2;
    let len = item.rows[0].len();
    #[cfg(target_arch = "x86_64")]
    if super::simd::f16c() {
        // SAFETY: AVX2, FMA and F16C support was checked at run time.
        unsafe { simd::fill_rows_f32(item, key, emit, need_second, len) };
        return;
    }
    let conv = |v| emit.one(v);
    for i in 0..len {
        let w = philox4x32_10(ctr(item.counter, item.idx0 + i as u64), key);
        let (a, b) = box_muller_f32(w[0], w[1]);
        item.rows[0][i] = conv(a);
        if let Some(r) = item.rows.get_mut(1) {
            if i < r.len() {
                r[i] = conv(b);
            }
        }
        if need_second && i < item.rows[2].len() {
            let (c, d) = box_muller_f32(w[2], w[3]);
            item.rows[2][i] = conv(c);
            if let Some(r) = item.rows.get_mut(3) {
                if i < r.len() {
                    r[i] = conv(d);
                }
            }
        }
    }
}

fn run_items<T: Send>(items: Vec<Rows<'_, T>>, n: usize, f: impl Fn(&mut Rows<'_, T>) + Sync) {
    if n < PAR_MIN {
        for mut it in items {
            f(&mut it);
        }
    } else {
        items.into_par_iter().for_each(|mut it| f(&mut it));
    }
}

/// torch's CUDA generator state: the full 64-bit seed and the philox offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CudaGenerator {
    seed: u64,
    offset: u64,
    geometry: GpuGeometry,
}

impl CudaGenerator {
    /// `torch.Generator("cuda").manual_seed(seed)` on a GPU of the given geometry.
    pub fn new(seed: u64, geometry: GpuGeometry) -> CudaGenerator {
        CudaGenerator {
            seed,
            offset: 0,
            geometry,
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The philox offset (torch's `get_offset()`, a multiple of 4).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Sets the philox offset (torch requires a multiple of 4; so do we).
    pub fn set_offset(&mut self, offset: u64) -> crate::Result<()> {
        if !offset.is_multiple_of(4) {
            return Err(crate::CoreError::invalid(
                "offset",
                format!("the CUDA philox offset must be a multiple of 4, got {offset}"),
            ));
        }
        self.offset = offset;
        Ok(())
    }

    /// The emulated GPU.
    pub fn geometry(&self) -> GpuGeometry {
        self.geometry
    }

    fn fill4<T: Copy + Send, E: Emit<T>>(&mut self, out: &mut [T], emit: E) {
        let n = out.len();
        if n == 0 {
            return;
        }
        let t = launch_threads(n as u64, self.geometry) as usize;
        let key = key_of(self.seed);
        let base = self.offset / 4;
        self.offset = self
            .offset
            .wrapping_add(offset_increment(n as u64, 4, self.geometry));
        let items = split_rows(out, t, 4, base);
        run_items(items, n, |it| fill_rows_f32(it, key, emit));
    }

    /// `randn` float32 into `out`.
    pub fn fill_f32(&mut self, out: &mut [f32]) {
        self.fill4(out, Identity)
    }

    /// `randn` float16 into `out` (the float32 values rounded to nearest even).
    pub fn fill_f16(&mut self, out: &mut [u16]) {
        self.fill4(out, HalfBits)
    }

    /// `randn` bfloat16 into `out` (the float32 values rounded to nearest even).
    pub fn fill_bf16(&mut self, out: &mut [u16]) {
        self.fill4(out, BHalfBits)
    }

    /// `randn` float64 into `out` (`curand_normal2_double`, two values per curand call).
    pub fn fill_f64(&mut self, out: &mut [f64]) {
        let n = out.len();
        if n == 0 {
            return;
        }
        let t = launch_threads(n as u64, self.geometry) as usize;
        let key = key_of(self.seed);
        let base = self.offset / 4;
        self.offset = self
            .offset
            .wrapping_add(offset_increment(n as u64, 2, self.geometry));
        let items = split_rows(out, t, 2, base);
        run_items(items, n, |it| {
            let len = it.rows[0].len();
            for i in 0..len {
                let w = philox4x32_10(ctr(it.counter, it.idx0 + i as u64), key);
                let (a, b) = box_muller_f64(w[0], w[1], w[2], w[3]);
                it.rows[0][i] = a + 0.0;
                if let Some(r) = it.rows.get_mut(1) {
                    if i < r.len() {
                        r[i] = b + 0.0;
                    }
                }
            }
        });
    }

    /// Values `[start, start + out.len())` of the next float32-family `randn` of `numel`
    /// values, without consuming it: piece by piece, a long draw needs memory for one piece
    /// only. Each run of elements sharing an iteration and a component is computed for its
    /// threads (the components below it too, as the Box–Muller pairs come together).
    fn range4<T: Copy, E: Emit<T>>(&self, numel: usize, start: usize, out: &mut [T], emit: E) {
        let t = launch_threads(numel as u64, self.geometry) as usize;
        let key = key_of(self.seed);
        let base = self.offset / 4;
        // Every run below is at most this long (its threads, the rest of `out`, one chunk).
        let width = CHUNK.min(t).min(out.len());
        let mut scratch = vec![0f32; 4 * width];
        let mut done = 0;
        while done < out.len() {
            let e = start + done;
            let (q, r) = (e / (4 * t), e % (4 * t));
            let (component, idx) = (r / t, r % t);
            let len = (t - idx).min(out.len() - done).min(CHUNK);
            let rows = scratch[..(component + 1) * len].chunks_mut(len).collect();
            let mut item = Rows {
                counter: base.wrapping_add(q as u64),
                idx0: idx as u64,
                rows,
            };
            fill_rows_f32(&mut item, key, Identity);
            let values = &scratch[component * len..(component + 1) * len];
            for (d, &v) in out[done..done + len].iter_mut().zip(values) {
                *d = emit.one(v);
            }
            done += len;
        }
    }

    /// float32 values `[start, start + out.len())` of the next `randn` of `numel` values.
    pub fn range_f32(&self, numel: usize, start: usize, out: &mut [f32]) {
        self.range4(numel, start, out, Identity)
    }

    /// float16 bits `[start, start + out.len())` of the next `randn` of `numel` values.
    pub fn range_f16(&self, numel: usize, start: usize, out: &mut [u16]) {
        self.range4(numel, start, out, HalfBits)
    }

    /// bfloat16 bits `[start, start + out.len())` of the next `randn` of `numel` values.
    pub fn range_bf16(&self, numel: usize, start: usize, out: &mut [u16]) {
        self.range4(numel, start, out, BHalfBits)
    }

    /// float64 values `[start, start + out.len())` of the next `randn` of `numel` values.
    pub fn range_f64(&self, numel: usize, start: usize, out: &mut [f64]) {
        let t = launch_threads(numel as u64, self.geometry) as usize;
        let key = key_of(self.seed);
        let base = self.offset / 4;
        for (k, d) in out.iter_mut().enumerate() {
            let e = start + k;
            let (q, r) = (e / (2 * t), e % (2 * t));
            let w = philox4x32_10(ctr(base.wrapping_add(q as u64), (r % t) as u64), key);
            let (a, b) = box_muller_f64(w[0], w[1], w[2], w[3]);
            *d = if r < t { a } else { b } + 0.0;
        }
    }

    /// Advances the offset as a `randn` of `numel` values of `unroll`-type would.
    pub fn skip(&mut self, numel: usize, unroll: u64) {
        self.offset =
            self.offset
                .wrapping_add(offset_increment(numel as u64, unroll, self.geometry));
    }

    /// The state in the layout of torch's CUDA `get_state()`: seed (u64) then offset (i64),
    /// little-endian, 16 bytes.
    pub fn get_state(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16);
        b.extend_from_slice(&self.seed.to_le_bytes());
        b.extend_from_slice(&self.offset.to_le_bytes());
        b
    }

    /// Restores a 16-byte state from [`CudaGenerator::get_state`] or torch.
    pub fn set_state(&mut self, bytes: &[u8]) -> crate::Result<()> {
        let (seed, offset) = parse_state16(bytes)?;
        self.seed = seed;
        self.set_offset(offset)
    }
}

fn parse_state16(bytes: &[u8]) -> crate::Result<(u64, u64)> {
    if bytes.len() != 16 {
        return Err(crate::CoreError::invalid(
            "state",
            format!(
                "expected a 16-byte philox state (seed, offset), got {} bytes",
                bytes.len()
            ),
        ));
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[..8]);
    let seed = u64::from_le_bytes(a);
    a.copy_from_slice(&bytes[8..]);
    Ok((seed, u64::from_le_bytes(a)))
}

/// AUTOMATIC1111's NV generator: (seed, offset), offset + 1 per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NvGenerator {
    seed: u64,
    offset: u64,
}

impl NvGenerator {
    /// `rng_philox.Generator(seed)`.
    pub fn new(seed: u64) -> NvGenerator {
        NvGenerator { seed, offset: 0 }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The call counter (A1111's `offset`).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// One `randn` call into float32 values, converted by `conv`. The element index is
    /// A1111's uint32 counter word (so it wraps at 2^32, as theirs does).
    pub fn fill_with<T: Copy + Send, C: Fn(f32) -> T + Copy + Sync>(
        &mut self,
        out: &mut [T],
        conv: C,
    ) {
        self.range_with(0, out, conv);
        self.offset = self.offset.wrapping_add(1);
    }

    /// Values `[start, start + out.len())` of the next `randn` call, without consuming it
    /// (each value depends only on its element index).
    pub fn range_with<T: Copy + Send, C: Fn(f32) -> T + Copy + Sync>(
        &self,
        start: usize,
        out: &mut [T],
        conv: C,
    ) {
        let key = key_of(self.seed);
        let c0 = self.offset as u32;
        let c1 = (self.offset >> 32) as u32;
        let avx2 = super::simd::avx2_fma();
        let work = |start: usize, chunk: &mut [T]| {
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                for (b, block) in chunk.chunks_mut(8).enumerate() {
                    let first = (start + 8 * b) as u32;
                    // SAFETY: AVX2 and FMA support was checked at run time.
                    let (x, y) = unsafe { simd::nv_words8(c0, c1, first, key) };
                    for (k, v) in block.iter_mut().enumerate() {
                        *v = conv(nv_value(x[k], y[k]));
                    }
                }
                return;
            }
            let _ = avx2;
            for (i, v) in chunk.iter_mut().enumerate() {
                let w = philox4x32_10([c0, c1, (start + i) as u32, 0], key);
                *v = conv(nv_value(w[0], w[1]));
            }
        };
        if out.len() < PAR_MIN {
            work(start, out);
        } else {
            out.par_chunks_mut(CHUNK)
                .enumerate()
                .for_each(|(c, chunk)| work(start + c * CHUNK, chunk));
        }
    }

    /// Advances the call counter by one (any size).
    pub fn skip(&mut self) {
        self.offset = self.offset.wrapping_add(1);
    }

    /// 16 bytes: seed then call counter, little-endian.
    pub fn get_state(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16);
        b.extend_from_slice(&self.seed.to_le_bytes());
        b.extend_from_slice(&self.offset.to_le_bytes());
        b
    }

    /// Restores a 16-byte state from [`NvGenerator::get_state`].
    pub fn set_state(&mut self, bytes: &[u8]) -> crate::Result<()> {
        let (seed, offset) = parse_state16(bytes)?;
        self.seed = seed;
        self.offset = offset;
        Ok(())
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    //! Eight Philox streams per AVX2 register; the Box–Muller uses the same Cephes code as
    //! the CPU source, so every lane matches the portable code bit for bit.
    use super::*;
    use crate::rng::cephes::avx2::{log256, log256x, sincos256, sincos256x};
    use std::arch::x86_64::*;

    const ODD: i32 = 0b1010_1010;

    /// (hi, lo) 32-bit halves of the eight 32×32→64 products `a · m`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn mulhilo(a: __m256i, m: __m256i) -> (__m256i, __m256i) {
        let even = _mm256_mul_epu32(a, m);
        let odd = _mm256_mul_epu32(_mm256_srli_epi64::<32>(a), m);
        let lo = _mm256_blend_epi32::<ODD>(even, _mm256_slli_epi64::<32>(odd));
        let hi = _mm256_blend_epi32::<ODD>(_mm256_srli_epi64::<32>(even), odd);
        (hi, lo)
    }

    /// The ten round keys, broadcast.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn round_keys(key: [u32; 2]) -> [[__m256i; 2]; 10] {
        let (mut k0, mut k1) = (key[0], key[1]);
        let mut out = [[_mm256_setzero_si256(); 2]; 10];
        for rk in out.iter_mut() {
            *rk = [_mm256_set1_epi32(k0 as i32), _mm256_set1_epi32(k1 as i32)];
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        out
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn round(c: [__m256i; 4], rk: &[__m256i; 2]) -> [__m256i; 4] {
        let (hi0, lo0) = mulhilo(c[0], _mm256_set1_epi32(M0 as i32));
        let (hi1, lo1) = mulhilo(c[2], _mm256_set1_epi32(M1 as i32));
        [
            _mm256_xor_si256(_mm256_xor_si256(hi1, c[1]), rk[0]),
            lo1,
            _mm256_xor_si256(_mm256_xor_si256(hi0, c[3]), rk[1]),
            lo0,
        ]
    }

    /// Philox4x32-10 on eight counters at once.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn philox8(mut c: [__m256i; 4], rks: &[[__m256i; 2]; 10]) -> [__m256i; 4] {
        for rk in rks {
            c = round(c, rk);
        }
        c
    }

    /// Two independent groups of eight counters, interleaved so that one group's
    /// multiplications overlap the other's latency.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn philox8x2(
        mut a: [__m256i; 4],
        mut b: [__m256i; 4],
        rks: &[[__m256i; 2]; 10],
    ) -> ([__m256i; 4], [__m256i; 4]) {
        for rk in rks {
            a = round(a, rk);
            b = round(b, rk);
        }
        (a, b)
    }

    /// [`philox8x2`] on the counters `(counter, idx + k)`, k = 0..16, when the sixteen lanes
    /// share words 0, 1 and 3 (no carry into the high index word). Words 2 and 3 of round 1
    /// and word 1 of round 2 are then the same in every lane and come from scalar
    /// multiplications; the other words follow the regular rounds.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn philox16_shared(
        counter: u64,
        idx: u64,
        key: [u32; 2],
        rks: &[[__m256i; 2]; 10],
    ) -> ([__m256i; 4], [__m256i; 4]) {
        let (c0, c1, c3) = (counter as u32, (counter >> 32) as u32, (idx >> 32) as u32);
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let c2a = _mm256_add_epi32(_mm256_set1_epi32(idx as u32 as i32), lanes);
        let c2b = _mm256_add_epi32(c2a, _mm256_set1_epi32(8));
        let bc = |v: u32| _mm256_set1_epi32(v as i32);
        // Round 1: lane-invariant (hi, lo) of M0·c0.
        let p0 = u64::from(M0) * u64::from(c0);
        let s2 = ((p0 >> 32) as u32) ^ c3 ^ key[1];
        let s3 = p0 as u32;
        let m1 = bc(M1);
        let m0 = bc(M0);
        let r1 = |c2: __m256i| {
            let (hi, lo) = mulhilo(c2, m1);
            (_mm256_xor_si256(hi, bc(c1 ^ key[0])), lo)
        };
        let (a0, a1) = r1(c2a);
        let (b0, b1) = r1(c2b);
        // Round 2: lane-invariant (hi, lo) of M1·s2.
        let k2 = [key[0].wrapping_add(W0), key[1].wrapping_add(W1)];
        let p1 = u64::from(M1) * u64::from(s2);
        let t0 = bc(((p1 >> 32) as u32) ^ k2[0]);
        let t1 = bc(p1 as u32);
        let t3 = bc(s3 ^ k2[1]);
        let r2 = |w0: __m256i, w1: __m256i| {
            let (hi, lo) = mulhilo(w0, m0);
            [_mm256_xor_si256(w1, t0), t1, _mm256_xor_si256(hi, t3), lo]
        };
        let mut a = r2(a0, a1);
        let mut b = r2(b0, b1);
        // Rounds 3 to 10, written out: as a loop the compiler kept the counter and reloads.
        macro_rules! rounds {
            ($($r:literal)*) => {$(
                a = round(a, &rks[$r]);
                b = round(b, &rks[$r]);
            )*};
        }
        rounds!(2 3 4 5 6 7 8 9);
        (a, b)
    }

    /// Exact round-to-nearest u32 → f32: both 16-bit halves convert exactly and the one
    /// addition rounds once, like `x as f32`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn u32_to_f32(x: __m256i) -> __m256 {
        let hi = _mm256_cvtepi32_ps(_mm256_srli_epi32::<16>(x));
        let lo = _mm256_cvtepi32_ps(_mm256_and_si256(x, _mm256_set1_epi32(0xFFFF)));
        _mm256_add_ps(_mm256_mul_ps(hi, _mm256_set1_ps(65536.0)), lo)
    }

    /// `_curand_box_muller` on `K` groups of eight (x, y) pairs, interleaved.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn box_muller8x<const K: usize>(
        x: [__m256i; K],
        y: [__m256i; K],
    ) -> ([__m256; K], [__m256; K]) {
        let zero = _mm256_setzero_ps();
        let mut u = [zero; K];
        let mut v = [zero; K];
        for k in 0..K {
            u[k] = _mm256_add_ps(
                _mm256_mul_ps(u32_to_f32(x[k]), _mm256_set1_ps(INV32)),
                _mm256_set1_ps(INV32 / 2.0),
            );
            v[k] = _mm256_fmadd_ps(
                u32_to_f32(y[k]),
                _mm256_set1_ps(INV32_2PI),
                _mm256_set1_ps(INV32_2PI / 2.0),
            );
        }
        let logs = log256x(u);
        let (sn, cs) = sincos256x(v);
        let mut a = [zero; K];
        let mut b = [zero; K];
        for k in 0..K {
            let s = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0), logs[k]));
            a[k] = _mm256_add_ps(_mm256_mul_ps(s, sn[k]), zero);
            b[k] = _mm256_add_ps(_mm256_mul_ps(s, cs[k]), zero);
        }
        (a, b)
    }

    /// `_curand_box_muller` on eight (x, y) pairs → (s·sin v, s·cos v).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn box_muller8(x: __m256i, y: __m256i) -> (__m256, __m256) {
        let u = _mm256_add_ps(
            _mm256_mul_ps(u32_to_f32(x), _mm256_set1_ps(INV32)),
            _mm256_set1_ps(INV32 / 2.0),
        );
        let v = _mm256_fmadd_ps(
            u32_to_f32(y),
            _mm256_set1_ps(INV32_2PI),
            _mm256_set1_ps(INV32_2PI / 2.0),
        );
        let s = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0), log256(u)));
        let (sn, cs) = sincos256(v);
        let zero = _mm256_setzero_ps();
        (
            _mm256_add_ps(_mm256_mul_ps(s, sn), zero),
            _mm256_add_ps(_mm256_mul_ps(s, cs), zero),
        )
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn counters(counter: u64, idx: u64) -> [__m256i; 4] {
        let (c2, c3) = if (idx as u32) <= u32::MAX - 7 {
            (
                _mm256_add_epi32(
                    _mm256_set1_epi32(idx as u32 as i32),
                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                ),
                _mm256_set1_epi32((idx >> 32) as u32 as i32),
            )
        } else {
            // The low word wraps inside this group: build the lanes one by one.
            let mut lo = [0i32; 8];
            let mut hi = [0i32; 8];
            for k in 0..8 {
                let i = idx.wrapping_add(k as u64);
                lo[k] = i as u32 as i32;
                hi[k] = (i >> 32) as u32 as i32;
            }
            // SAFETY: both arrays hold 8 i32.
            unsafe {
                (
                    _mm256_loadu_si256(lo.as_ptr().cast()),
                    _mm256_loadu_si256(hi.as_ptr().cast()),
                )
            }
        };
        [
            _mm256_set1_epi32(counter as u32 as i32),
            _mm256_set1_epi32((counter >> 32) as u32 as i32),
            c2,
            c3,
        ]
    }

    #[inline]
    fn put<T: Copy, C: Fn(f32) -> T>(
        row: Option<&mut &mut [T]>,
        i: usize,
        vals: &[f32; 8],
        conv: C,
    ) {
        if let Some(row) = row {
            if i + 8 <= row.len() {
                let dst: &mut [T; 8] = match (&mut row[i..i + 8]).try_into() {
                    Ok(d) => d,
                    Err(_) => return,
                };
                for k in 0..8 {
                    dst[k] = conv(vals[k]);
                }
            } else if i < row.len() {
                for (d, &v) in row[i..].iter_mut().zip(vals) {
                    *d = conv(v);
                }
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn store(v: __m256) -> [f32; 8] {
        let mut a = [0f32; 8];
        // SAFETY: `a` holds 8 f32.
        unsafe { _mm256_storeu_ps(a.as_mut_ptr(), v) };
        a
    }

    /// Box–Muller of one group of eight threads into the work item's rows.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn emit_checked<T: Copy, C: Fn(f32) -> T + Copy>(
        item: &mut Rows<'_, T>,
        i: usize,
        w: [__m256i; 4],
        conv: C,
        need_second: bool,
    ) {
        if need_second && i < item.rows[2].len() {
            let (s, c) = box_muller8x([w[0], w[2]], [w[1], w[3]]);
            put(item.rows.get_mut(0), i, &store(s[0]), conv);
            put(item.rows.get_mut(1), i, &store(c[0]), conv);
            put(item.rows.get_mut(2), i, &store(s[1]), conv);
            put(item.rows.get_mut(3), i, &store(c[1]), conv);
            return;
        }
        let (a, b) = box_muller8(w[0], w[1]);
        put(item.rows.get_mut(0), i, &store(a), conv);
        if item.rows.len() > 1 {
            put(item.rows.get_mut(1), i, &store(b), conv);
        }
    }

    /// Box–Muller of two groups of eight threads when only the first pair is used (every
    /// element its own thread: n ≤ T).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn emit_first_x2<T: Copy, C: Fn(f32) -> T + Copy>(
        item: &mut Rows<'_, T>,
        i: usize,
        wa: [__m256i; 4],
        wb: [__m256i; 4],
        conv: C,
    ) {
        let (s, c) = box_muller8x([wa[0], wb[0]], [wa[1], wb[1]]);
        put(item.rows.get_mut(0), i, &store(s[0]), conv);
        put(item.rows.get_mut(0), i + 8, &store(s[1]), conv);
        if item.rows.len() > 1 {
            put(item.rows.get_mut(1), i, &store(c[0]), conv);
            put(item.rows.get_mut(1), i + 8, &store(c[1]), conv);
        }
    }

    /// Eight lanes to `dst` in one vector store (16-bit floats converted in registers).
    ///
    /// # Safety
    /// `dst` is valid for eight writes of `T`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn put8<T: Copy, E: Emit<T>>(dst: *mut T, v: __m256) {
        // SAFETY (all arms): `LANES` fixes T as the trait's contract says; dst holds 8 values.
        match E::LANES {
            Lanes::F32 => unsafe { _mm256_storeu_ps(dst.cast(), v) },
            Lanes::F16Bits => unsafe {
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
                _mm_storeu_si128(dst.cast(), h);
            },
            Lanes::Bf16Bits => unsafe {
                let b = crate::rng::dtype::bf16_lanes(_mm256_castps_si256(v));
                let packed =
                    _mm_packus_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256::<1>(b));
                _mm_storeu_si128(dst.cast(), packed);
            },
        }
    }

    /// The CUDA float rows of one work item, eight threads at a time: sixteen threads per
    /// step through raw row pointers while every row has room, then the checked path for
    /// the short last row of a tensor.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn fill_rows_f32<T: Copy, E: Emit<T>>(
        item: &mut Rows<'_, T>,
        key: [u32; 2],
        emit: E,
        need_second: bool,
        len: usize,
    ) {
        let rks = round_keys(key);
        let rows = item.rows.len().min(4);
        let room = item.rows.iter().map(|r| r.len()).min().unwrap_or(0);
        let mut ptr = [std::ptr::null_mut::<T>(); 4];
        for (p, row) in ptr.iter_mut().zip(item.rows.iter_mut()) {
            *p = row.as_mut_ptr();
        }
        let mut i = 0;
        while i + 16 <= room {
            let idx = item.idx0 + i as u64;
            let (wa, wb) = if (idx as u32) <= u32::MAX - 15 {
                philox16_shared(item.counter, idx, key, &rks)
            } else {
                philox8x2(
                    counters(item.counter, idx),
                    counters(item.counter, idx + 8),
                    &rks,
                )
            };
            // SAFETY: i + 16 <= room, the length of the shortest of the `rows` rows.
            unsafe {
                if rows > 2 {
                    let (s, c) =
                        box_muller8x([wa[0], wa[2], wb[0], wb[2]], [wa[1], wa[3], wb[1], wb[3]]);
                    put8::<T, E>(ptr[0].add(i), s[0]);
                    put8::<T, E>(ptr[0].add(i + 8), s[2]);
                    put8::<T, E>(ptr[1].add(i), c[0]);
                    put8::<T, E>(ptr[1].add(i + 8), c[2]);
                    put8::<T, E>(ptr[2].add(i), s[1]);
                    put8::<T, E>(ptr[2].add(i + 8), s[3]);
                    if rows > 3 {
                        put8::<T, E>(ptr[3].add(i), c[1]);
                        put8::<T, E>(ptr[3].add(i + 8), c[3]);
                    }
                } else {
                    let (s, c) = box_muller8x([wa[0], wb[0]], [wa[1], wb[1]]);
                    put8::<T, E>(ptr[0].add(i), s[0]);
                    put8::<T, E>(ptr[0].add(i + 8), s[1]);
                    if rows > 1 {
                        put8::<T, E>(ptr[1].add(i), c[0]);
                        put8::<T, E>(ptr[1].add(i + 8), c[1]);
                    }
                }
            }
            i += 16;
        }
        let conv = |v| emit.one(v);
        while i + 16 <= len {
            let (wa, wb) = philox8x2(
                counters(item.counter, item.idx0 + i as u64),
                counters(item.counter, item.idx0 + i as u64 + 8),
                &rks,
            );
            if need_second {
                emit_checked(item, i, wa, conv, need_second);
                emit_checked(item, i + 8, wb, conv, need_second);
            } else {
                emit_first_x2(item, i, wa, wb, conv);
            }
            i += 16;
        }
        while i < len {
            let w = philox8(counters(item.counter, item.idx0 + i as u64), &rks);
            emit_checked(item, i, w, conv, need_second);
            i += 8;
        }
    }

    /// The first two Philox words of counters (c0, c1, start + k, 0), k = 0..8 (NV source).
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn nv_words8(c0: u32, c1: u32, start: u32, key: [u32; 2]) -> ([u32; 8], [u32; 8]) {
        let c2 = _mm256_add_epi32(
            _mm256_set1_epi32(start as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        );
        let w = philox8(
            [
                _mm256_set1_epi32(c0 as i32),
                _mm256_set1_epi32(c1 as i32),
                c2,
                _mm256_setzero_si256(),
            ],
            &round_keys(key),
        );
        let mut x = [0u32; 8];
        let mut y = [0u32; 8];
        // SAFETY: both arrays hold 8 u32.
        unsafe {
            _mm256_storeu_si256(x.as_mut_ptr().cast(), w[0]);
            _mm256_storeu_si256(y.as_mut_ptr().cast(), w[1]);
        }
        (x, y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curand_constants_bits() {
        assert_eq!(INV32.to_bits(), 0x2F80_0000);
        assert_eq!(INV32_2PI.to_bits(), 0x30C9_0FDB);
        assert_eq!((INV32 * cephes::TWO_PI).to_bits(), INV32_2PI.to_bits());
    }

    #[test]
    fn random123_known_answers() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    /// The AVX2 path (eight Philox lanes, vector Box–Muller) equals the portable path.
    #[test]
    fn simd_rows_equal_portable() {
        let geos = [
            GpuGeometry::UNLIMITED,
            GpuGeometry {
                sm_count: 1,
                max_threads_per_sm: 512,
            },
        ];
        for geo in geos {
            for n in [1usize, 7, 8, 9, 1000, 4096 + 13, 70_001] {
                let run = |simd: bool| {
                    crate::rng::simd::set_simd_enabled(simd);
                    let mut g = CudaGenerator::new(0xDEAD_BEEF_0000_0001, geo);
                    let mut a = vec![0f32; n];
                    g.fill_f32(&mut a);
                    let mut nv = NvGenerator::new(77);
                    let mut b = vec![0f32; n];
                    nv.fill_with(&mut b, |v| v);
                    let mut halves = vec![0u16; 2 * n];
                    let (h, bh) = halves.split_at_mut(n);
                    g.fill_f16(h);
                    g.fill_bf16(bh);
                    crate::rng::simd::set_simd_enabled(true);
                    (a, b, halves)
                };
                let (fast, fast_nv, fast_halves) = run(true);
                let (slow, slow_nv, slow_halves) = run(false);
                assert_eq!(fast_halves, slow_halves, "float16/bfloat16, n={n}");
                assert!(
                    fast.iter()
                        .zip(&slow)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "n={n}"
                );
                assert!(fast_nv
                    .iter()
                    .zip(&slow_nv)
                    .all(|(x, y)| x.to_bits() == y.to_bits()));
            }
        }
    }

    /// The shared-word Philox shortcut equals the plain block function lane by lane, for
    /// counters and thread indices with high words set.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn philox16_shared_equals_scalar() {
        use std::arch::x86_64::*;
        if !crate::rng::simd::avx2_fma() {
            return;
        }
        let mut state = 0x0DDB_A11C_AFE0_0001u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..2000 {
            let key = [next() as u32, next() as u32];
            let counter = if case % 3 == 0 {
                next() & 0xFFFF
            } else {
                next()
            };
            let mut idx = if case % 2 == 0 {
                next() & 0xFFFF_FFFF
            } else {
                next()
            };
            if (idx as u32) > u32::MAX - 15 {
                idx -= 16;
            }
            // SAFETY: AVX2 and FMA support checked above.
            let (a, b) = unsafe {
                let rks = simd::round_keys(key);
                simd::philox16_shared(counter, idx, key, &rks)
            };
            let mut words = [[0u32; 8]; 8];
            for (w, v) in words.iter_mut().zip(a.iter().chain(b.iter())) {
                // SAFETY: `w` holds eight u32.
                unsafe { _mm256_storeu_si256(w.as_mut_ptr().cast(), *v) };
            }
            for k in 0..16 {
                let want = philox4x32_10(ctr(counter, idx + k as u64), key);
                let group = 4 * (k / 8);
                let got = [0, 1, 2, 3].map(|j| words[group + j][k % 8]);
                assert_eq!(got, want, "case {case} lane {k}");
            }
        }
    }

    /// Random words through the vector and scalar Box–Muller: identical bits.
    #[cfg(target_arch = "x86_64")]
    #[test]
    #[allow(clippy::needless_range_loop)]
    fn simd_box_muller_equals_scalar() {
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c"))
        {
            return;
        }
        let mut state = 0x1234_5678_9ABC_DEF0u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u32
        };
        let key = [7, 9];
        for block in 0..(1u64 << 16) {
            // Counter words of 8 lanes; special words in the first blocks.
            let base = if block < 4 {
                [0u32, u32::MAX, 1 << 24, (1 << 24) + 1][block as usize]
            } else {
                next()
            };
            let idx0 = u64::from(next());
            let mut r = [[0f32; 8]; 4];
            {
                let [r0, r1, r2, r3] = &mut r;
                let mut item = Rows {
                    counter: u64::from(base),
                    idx0,
                    rows: vec![&mut r0[..], &mut r1[..], &mut r2[..], &mut r3[..]],
                };
                // SAFETY: feature support checked above.
                unsafe { simd::fill_rows_f32(&mut item, key, Identity, true, 8) };
            }
            for k in 0..8 {
                let w = philox4x32_10(ctr(u64::from(base), idx0 + k as u64), key);
                let (a, b) = box_muller_f32(w[0], w[1]);
                let (c, d) = box_muller_f32(w[2], w[3]);
                assert_eq!(
                    [a, b, c, d].map(f32::to_bits),
                    [r[0][k], r[1][k], r[2][k], r[3][k]].map(f32::to_bits)
                );
            }
        }
    }
}
