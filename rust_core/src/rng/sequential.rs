//! One `randn` call read in order, piece by piece, with memory bounded by the pieces.
//!
//! The counter-based sources (CUDA, NV) compute any range of a draw directly
//! ([`Generator::fill_range`]). torch's CPU source is a sequential stream, and its normal fill
//! (16 values or more) is not piecewise: it turns mt19937 uniforms into normals in independent
//! blocks of 16, and when the size is not a multiple of 16 it then skips the uniforms of the
//! last partial block and recomputes the **last 16 values** from 16 fresh uniforms (torch 2.13.0
//! `aten/src/ATen/native/cpu/DistributionTemplates.h`, `normal_fill`). A fill of a multiple of
//! 16 values is exactly "uniforms, then blocks", so successive fills of 16-value multiples
//! reproduce the full draw's prefix; the tail block is drawn once the reader reaches it, and the
//! last 16 values are held back until then (the tail overwrites them).

use crate::error::{CoreError, Result};

use super::dtype::{Dtype, Noise, NoiseSliceMut};
use super::{Generator, Inner};

/// A draw of `numel` values of one dtype from a generator, read front to back.
#[derive(Debug, Clone)]
pub struct SequentialDraw {
    generator: Generator,
    dtype: Dtype,
    numel: usize,
    /// Values `[base, frontier)` are held in `values`; those below `ready` are final.
    base: usize,
    frontier: usize,
    ready: usize,
    /// The next value [`SequentialDraw::read`] returns.
    cursor: usize,
    values: Noise,
}

impl SequentialDraw {
    /// The next `randn(numel, dtype)` call of `generator` (which it consumes).
    pub fn new(generator: Generator, numel: usize, dtype: Dtype) -> SequentialDraw {
        SequentialDraw {
            generator,
            dtype,
            numel,
            base: 0,
            frontier: 0,
            ready: 0,
            cursor: 0,
            values: Noise::zeros(dtype, 0),
        }
    }

    /// Values not read yet.
    pub fn remaining(&self) -> usize {
        self.numel - self.cursor
    }

    /// The dtype of the draw.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Writes the next `out.len()` values of the draw into `out` (whose dtype must be the
    /// draw's) and drops them from memory.
    pub fn read(&mut self, mut out: NoiseSliceMut<'_>) -> Result<()> {
        let end = self.cursor + out.len();
        if end > self.numel || out.dtype() != self.dtype {
            return Err(CoreError::invalid(
                "out",
                format!(
                    "read of {} {} values past a draw of {} {} with {} left",
                    out.len(),
                    out.dtype(),
                    self.numel,
                    self.dtype,
                    self.remaining()
                ),
            ));
        }
        self.advance(end)?;
        let (lo, hi) = (self.cursor - self.base, end - self.base);
        match (&self.values, out.reborrow()) {
            (Noise::F32(v), NoiseSliceMut::F32(o)) => o.copy_from_slice(&v[lo..hi]),
            (Noise::F64(v), NoiseSliceMut::F64(o)) => o.copy_from_slice(&v[lo..hi]),
            (Noise::F16(v), NoiseSliceMut::F16(o)) | (Noise::BF16(v), NoiseSliceMut::BF16(o)) => {
                o.copy_from_slice(&v[lo..hi])
            }
            _ => return Err(CoreError::invalid("out", "dtype mismatch")),
        }
        self.cursor = end;
        self.release(end);
        Ok(())
    }

    /// Makes values `[.., target)` final (`target <= numel`).
    fn advance(&mut self, target: usize) -> Result<()> {
        if target <= self.ready {
            return Ok(());
        }
        let n = self.numel;
        let old = self.frontier - self.base;
        if !matches!(self.generator.inner, Inner::Cpu(_)) {
            let (grow, start) = (target - self.frontier, self.frontier);
            let generator = &self.generator;
            macro_rules! range {
                ($v:expr, $variant:ident, $t:ty) => {{
                    let v = $v;
                    v.resize(old + grow, <$t>::default());
                    generator.fill_range(n, start, NoiseSliceMut::$variant(&mut v[old..]))
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
        let Inner::Cpu(gen) = &mut self.generator.inner else {
            return Err(CoreError::invalid("source", "not a CPU generator"));
        };
        let full = n / 16 * 16;
        let has_tail = n >= 16 && n != full;
        let goal = if n < 16 || (has_tail && target > n - 16) {
            n
        } else {
            target.div_ceil(16) * 16
        };
        let grow = goal.saturating_sub(self.frontier);
        let frontier = self.frontier;
        let base = self.base;
        // Words of the partial block the tail skips: one per float32 value, two per float64;
        // the half-precision fill draws whole blocks and skips none.
        macro_rules! extend {
            ($v:expr, $fill:ident, $t:ty, $words:expr) => {{
                let v = $v;
                v.resize(old + grow, <$t>::default());
                if n < 16 {
                    gen.$fill(&mut v[old..]);
                } else {
                    let upto = if goal == n { full } else { goal };
                    if upto > frontier {
                        gen.$fill(&mut v[old..old + upto - frontier]);
                    }
                    if goal == n && has_tail {
                        gen.engine_mut().discard($words * (n - full) as u64);
                        let mut tail = [<$t>::default(); 16];
                        gen.$fill(&mut tail);
                        let at = n - 16 - base;
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
        let count = keep
            .saturating_sub(self.base)
            .min(self.frontier - self.base);
        if count == 0 {
            return;
        }
        match &mut self.values {
            Noise::F32(v) => drop(v.drain(..count)),
            Noise::F64(v) => drop(v.drain(..count)),
            Noise::F16(v) | Noise::BF16(v) => drop(v.drain(..count)),
        }
        self.base += count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{CpuKernel, GpuGeometry, Source};

    fn whole(seed: u64, source: Source, numel: usize, dtype: Dtype) -> Noise {
        let mut g = Generator::new(seed, source);
        g.randn(numel, dtype).expect("draw")
    }

    fn pieces(seed: u64, source: Source, numel: usize, dtype: Dtype, step: usize) -> Noise {
        let mut draw = SequentialDraw::new(Generator::new(seed, source), numel, dtype);
        let mut out = Noise::zeros(dtype, numel);
        let mut at = 0;
        while at < numel {
            let k = step.min(numel - at);
            draw.read(out.as_slice_mut().sub(at, k)).expect("read");
            at += k;
        }
        out
    }

    #[test]
    fn pieces_equal_whole_draws() {
        let sources = [
            Source::Cpu(CpuKernel::Avx2),
            Source::Cpu(CpuKernel::Default),
            Source::Cuda(GpuGeometry::UNLIMITED),
            Source::Cuda(GpuGeometry::new(2, 256).expect("geometry")),
            Source::A1111Nv,
        ];
        for source in sources {
            for dtype in Dtype::ALL {
                for numel in [1, 7, 15, 16, 17, 31, 33, 100, 257, 1000] {
                    for step in [1, 5, 16, 17, 64, 1000] {
                        assert_eq!(
                            pieces(7, source, numel, dtype, step),
                            whole(7, source, numel, dtype),
                            "{source:?} {dtype} numel {numel} step {step}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn reading_past_the_end_is_an_error() {
        let mut draw = SequentialDraw::new(Generator::new(1, Source::default()), 4, Dtype::Float32);
        let mut five = [0f32; 5];
        assert!(draw.read(NoiseSliceMut::F32(&mut five)).is_err());
    }
}
