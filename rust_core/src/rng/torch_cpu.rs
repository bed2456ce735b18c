//! torch's CPU generator (`torch.Generator("cpu")`): mt19937 words, torch's uniform
//! conversions, `normal_fill` for tensors of 16 or more elements and the double-precision
//! scalar path with its cached second value for smaller ones.
//!
//! torch 2.13.0 `aten/src/ATen/native/cpu/DistributionTemplates.h` (`normal_kernel`,
//! `normal_fill`, `normal_fill_AVX2`, `normal_fill_16`), `aten/src/ATen/core/DistributionsHelper.h`
//! (`normal_distribution<double>`), `aten/src/ATen/CPUGeneratorImpl.cpp` (`get_state`,
//! `set_state`).

use rayon::prelude::*;

use crate::error::{CoreError, Result};

use super::cephes;
use super::dtype::{round_to_bf16, round_to_f16, Dtype};
use super::mt19937::{Mt19937, N};
use super::CpuKernel;

/// Values per parallel work item (a multiple of 16).
const CHUNK: usize = 1 << 16;
/// Below this many values everything runs on the calling thread.
const PAR_MIN: usize = 1 << 17;
/// Values per stage of the double-buffered half-precision fill (two float32 buffers of
/// this size; larger stages mean fewer pool hand-offs).
const STAGE: usize = 1 << 18;

/// Size of torch's `CPUGeneratorImplState` (what `Generator.get_state()` returns).
pub const STATE_SIZE: usize = 5056;
/// Size of torch's older `CPUGeneratorImplStateLegacy` (accepted by `set_state`).
pub const STATE_SIZE_LEGACY: usize = 5048;

/// The CPU generator: an mt19937 engine plus torch's cached normal samples.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuGenerator {
    mt: Mt19937,
    next_double: Option<f64>,
    next_float: Option<f32>,
    kernel: CpuKernel,
}

fn transform_f32(data: &mut [f32], kernel: CpuKernel) {
    match kernel {
        CpuKernel::Avx2 => cephes::normal_blocks_avx2_exact(data),
        CpuKernel::Default => cephes::normal_blocks_default(data),
    }
}

/// Rounds float32 values into 16-bit float bits (`dtype::round_to_f16` / `round_to_bf16`).
type RoundHalf = fn(&[f32], &mut [u16]);

impl CpuGenerator {
    /// A generator seeded like `torch.Generator("cpu").manual_seed(seed)`.
    pub fn new(seed: u64, kernel: CpuKernel) -> CpuGenerator {
        CpuGenerator {
            mt: Mt19937::new(seed),
            next_double: None,
            next_float: None,
            kernel,
        }
    }

    /// The initial seed (all 64 bits; the stream depends on the low 32 only).
    pub fn seed(&self) -> u64 {
        self.mt.seed()
    }

    /// The kernel variant this generator emulates.
    pub fn kernel(&self) -> CpuKernel {
        self.kernel
    }

    /// The underlying engine.
    pub fn engine_mut(&mut self) -> &mut Mt19937 {
        &mut self.mt
    }

    /// One sample of `at::normal_distribution<double>(0, 1)`: returns the cached sine
    /// partner if there is one, else draws two 53-bit uniforms (4 words), caches
    /// `r·sin θ` and returns `r·cos θ`, with `r = √(−2·log1p(−u2))`, `θ = 2π·u1`.
    pub fn normal_f64_scalar(&mut self) -> f64 {
        if let Some(v) = self.next_double.take() {
            return v + 0.0;
        }
        let u1 = self.mt.next_uniform_f64();
        let u2 = self.mt.next_uniform_f64();
        let r = (-2.0 * (-u2).ln_1p()).sqrt();
        let theta = std::f64::consts::TAU * u1;
        self.next_double = Some(r * theta.sin());
        r * theta.cos() + 0.0
    }

    /// `randn` into a float32 buffer.
    pub fn fill_f32(&mut self, out: &mut [f32]) {
        let n = out.len();
        if n < 16 {
            for v in out.iter_mut() {
                *v = self.normal_f64_scalar() as f32;
            }
            return;
        }
        let full = n / 16 * 16;
        let kernel = self.kernel;
        if full < PAR_MIN {
            self.mt.fill_uniform_f32(&mut out[..full]);
            transform_f32(&mut out[..full], kernel);
        } else {
            // Draw the (strictly sequential) uniforms chunk by chunk on this thread and hand
            // each finished chunk to the pool for the (independent) Box–Muller blocks.
            let mt = &mut self.mt;
            rayon::scope(|s| {
                let mut rest = &mut out[..full];
                while !rest.is_empty() {
                    let k = CHUNK.min(rest.len());
                    let (head, tail) = std::mem::take(&mut rest).split_at_mut(k);
                    mt.fill_uniform_f32(head);
                    s.spawn(move |_| transform_f32(head, kernel));
                    rest = tail;
                }
            });
        }
        if n != full {
            // Positions full..n received uniforms that the tail block overwrites.
            self.mt.discard((n - full) as u64);
            let tail = &mut out[n - 16..];
            self.mt.fill_uniform_f32(tail);
            transform_f32(tail, kernel);
        }
    }

    /// `randn` into a float64 buffer.
    pub fn fill_f64(&mut self, out: &mut [f64]) {
        let n = out.len();
        if n < 16 {
            for v in out.iter_mut() {
                *v = self.normal_f64_scalar();
            }
            return;
        }
        self.mt.fill_uniform_f64(out);
        let full = n / 16 * 16;
        let blocks = |d: &mut [f64]| {
            for b in d.chunks_exact_mut(16) {
                cephes::normal_block16_f64(b);
            }
        };
        if full < PAR_MIN {
            blocks(&mut out[..full]);
        } else {
            out[..full].par_chunks_mut(CHUNK).for_each(blocks);
        }
        if n != full {
            let tail = &mut out[n - 16..];
            self.mt.fill_uniform_f64(tail);
            cephes::normal_block16_f64(tail);
        }
    }

    /// Half-precision `randn` (torch 2.13.0): float32 math block by block, 16 fresh
    /// uniforms per block (the tail block too), each value rounded to nearest even.
    fn fill_half(&mut self, out: &mut [u16], round: RoundHalf) {
        let n = out.len();
        if n < 16 {
            for v in out.iter_mut() {
                // double → float → half, as `static_cast<c10::Half>(double)` does.
                round(&[self.normal_f64_scalar() as f32], std::slice::from_mut(v));
            }
            return;
        }
        let full = n / 16 * 16;
        let kernel = self.kernel;
        if full < PAR_MIN {
            // Small tensors (SD latents): one thread, no pool round trip.
            let mut buf = vec![0f32; full];
            self.mt.fill_uniform_f32(&mut buf);
            transform_f32(&mut buf, kernel);
            round(&buf, &mut out[..full]);
        } else {
            self.fill_half_pipelined(&mut out[..full], round);
        }
        if n != full {
            let mut tail = [0f32; 16];
            self.mt.fill_uniform_f32(&mut tail);
            transform_f32(&mut tail, kernel);
            round(&tail, &mut out[n - 16..]);
        }
    }

    /// The whole blocks of a large half-precision draw with double buffering: the
    /// (sequential) uniforms of the next chunk are drawn while the pool turns the current
    /// chunk into normals and 16-bit values, so both cores stay busy.
    fn fill_half_pipelined(&mut self, out: &mut [u16], round: RoundHalf) {
        let kernel = self.kernel;
        let finish = |buf: &mut [f32], dst: &mut [u16]| {
            buf.par_chunks_mut(4096)
                .zip(dst.par_chunks_mut(4096))
                .for_each(|(b, d)| {
                    transform_f32(b, kernel);
                    round(b, d);
                });
        };
        let mut buffers = [vec![0f32; STAGE], vec![0f32; STAGE]];
        let mut k = STAGE.min(out.len());
        self.mt.fill_uniform_f32(&mut buffers[0][..k]);
        let mut start = 0;
        while start < out.len() {
            let next_k = STAGE.min(out.len() - start - k);
            let [even, odd] = &mut buffers;
            let (cur, next) = if (start / STAGE).is_multiple_of(2) {
                (even, odd)
            } else {
                (odd, even)
            };
            let dst = &mut out[start..start + k];
            let mt = &mut self.mt;
            rayon::join(
                || finish(&mut cur[..k], dst),
                || mt.fill_uniform_f32(&mut next[..next_k]),
            );
            start += k;
            k = next_k;
        }
    }

    /// `randn` into a float16 buffer (raw bits).
    pub fn fill_f16(&mut self, out: &mut [u16]) {
        self.fill_half(out, round_to_f16)
    }

    /// `randn` into a bfloat16 buffer (raw bits).
    pub fn fill_bf16(&mut self, out: &mut [u16]) {
        self.fill_half(out, round_to_bf16)
    }

    /// Advances the stream exactly as `randn(numel, dtype)` would, without computing values.
    pub fn skip(&mut self, numel: usize, dtype: Dtype) {
        if numel == 0 {
            return;
        }
        if numel < 16 {
            for _ in 0..numel {
                self.normal_f64_scalar();
            }
            return;
        }
        let n = numel as u64;
        let tail = u64::from(!numel.is_multiple_of(16));
        let words = match dtype {
            Dtype::Float32 => n + 16 * tail,
            Dtype::Float64 => 2 * (n + 16 * tail),
            Dtype::Float16 | Dtype::BFloat16 => 16 * n.div_ceil(16),
        };
        self.mt.discard(words);
    }

    /// The state in the byte layout of torch's `Generator.get_state()` (5056 bytes,
    /// `CPUGeneratorImplState` = the 5048-byte legacy `THGeneratorState`, then the float
    /// normal sample and its flag; little-endian x86-64 layout, padding zeroed).
    pub fn get_state(&self) -> Vec<u8> {
        let (seed, left, seeded, next, state) = self.mt.raw_parts();
        let mut b = vec![0u8; STATE_SIZE];
        b[0..8].copy_from_slice(&seed.to_le_bytes());
        b[8..12].copy_from_slice(&left.to_le_bytes());
        b[12..16].copy_from_slice(&i32::from(seeded).to_le_bytes());
        b[16..24].copy_from_slice(&u64::from(next).to_le_bytes());
        for (i, &w) in state.iter().enumerate() {
            let o = 24 + 8 * i;
            b[o..o + 8].copy_from_slice(&u64::from(w).to_le_bytes());
        }
        // normal_x (5016) and normal_rho (5032) stay 0.
        if let Some(y) = self.next_double {
            b[5024..5032].copy_from_slice(&y.to_le_bytes());
            b[5040..5044].copy_from_slice(&1i32.to_le_bytes());
        }
        if let Some(f) = self.next_float {
            b[5048..5052].copy_from_slice(&f.to_le_bytes());
            b[5052] = 1;
        }
        b
    }

    /// Restores a state produced by [`CpuGenerator::get_state`] or by torch's
    /// `Generator.get_state()` (5056 bytes, or the 5048-byte legacy layout).
    pub fn set_state(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.len() != STATE_SIZE && bytes.len() != STATE_SIZE_LEGACY {
            return Err(CoreError::invalid(
                "state",
                format!(
                    "expected a CPU generator state of {STATE_SIZE} bytes (or {STATE_SIZE_LEGACY} legacy), got {}",
                    bytes.len()
                ),
            ));
        }
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&bytes[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let i32_at = |o: usize| {
            let mut a = [0u8; 4];
            a.copy_from_slice(&bytes[o..o + 4]);
            i32::from_le_bytes(a)
        };
        let mut state = [0u32; N];
        for (i, w) in state.iter_mut().enumerate() {
            *w = u64_at(24 + 8 * i) as u32;
        }
        let mt = Mt19937::from_raw_parts(u64_at(0), i32_at(8), i32_at(12) != 0, u64_at(16), state)?;
        let next_double = (i32_at(5040) != 0).then(|| f64::from_bits(u64_at(5024)));
        let next_float = if bytes.len() == STATE_SIZE {
            let mut a = [0u8; 4];
            a.copy_from_slice(&bytes[5048..5052]);
            (bytes[5052] != 0).then(|| f32::from_le_bytes(a))
        } else {
            // The legacy layout has no float sample: torch keeps the current one.
            self.next_float
        };
        self.mt = mt;
        self.next_double = next_double;
        self.next_float = next_float;
        Ok(())
    }
}
