//! AUTOMATIC1111's seed features: variation seeds (a spherical interpolation between the
//! seed's noise and the subseed's noise) and "resize seed from width/height" (the noise of a
//! smaller or larger image pasted into the centre of full-size noise).
//!
//! AUTOMATIC1111/stable-diffusion-webui v1.10.1 `modules/rng.py` (`slerp`, `ImageRNG.first`)
//! and `modules/processing.py` (per-image seeds and subseeds).

use std::ops::{Add, Div, Mul, Sub};

use crate::error::{CoreError, Result};

/// "Resize seed from": the size of the image whose noise is reused, in **latent** pixels
/// (A1111's pixel values divided by the VAE factor, 8 for Stable Diffusion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedResize {
    /// Latent width of the source noise.
    pub width: usize,
    /// Latent height of the source noise.
    pub height: usize,
}

/// The fewest rows (H) the variation slerp is defined for. A1111 normalises each (c, w)
/// column along H; with one row every column is ±1 after normalising, the dot products are
/// ±1 and A1111's weights become 0/0 (NaN) or ±1/sin(π) (about 1e7): garbage, refused.
pub const MIN_SLERP_ROWS: usize = 2;

/// The float types the slerp runs in: float32 as A1111 does (also for float16 / bfloat16
/// output, which A1111 rounds afterwards), float64 for float64 requests (torch's operation
/// order in float64).
pub trait SlerpFloat:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Send
    + Sync
{
    /// Elements in torch's 32-byte `Vectorized<T>` (8 for float32, 4 for float64): they fix
    /// the order in which torch's CPU `sum` kernel adds.
    const LANES: usize;
    /// Zero.
    const ZERO: Self;
    /// `x` rounded to this type (how torch casts a Python float operand).
    fn of(x: f64) -> Self;
    /// Correctly rounded square root.
    fn sqrt(self) -> Self;
    /// Correctly rounded arc cosine (float32: through float64).
    fn acos(self) -> Self;
    /// Correctly rounded sine (float32: through float64).
    fn sin(self) -> Self;
    /// Whether the value is finite.
    fn is_finite(self) -> bool;
}

impl SlerpFloat for f32 {
    const LANES: usize = 8;
    const ZERO: f32 = 0.0;
    fn of(x: f64) -> f32 {
        x as f32
    }
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }
    fn acos(self) -> f32 {
        f64::from(self).acos() as f32
    }
    fn sin(self) -> f32 {
        f64::from(self).sin() as f32
    }
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
}

impl SlerpFloat for f64 {
    const LANES: usize = 4;
    const ZERO: f64 = 0.0;
    fn of(x: f64) -> f64 {
        x
    }
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
    fn acos(self) -> f64 {
        f64::acos(self)
    }
    fn sin(self) -> f64 {
        f64::sin(self)
    }
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
}

/// A1111's `slerp(val, low, high)` on one `[C, H, W]` item, in torch's float32 CPU operation
/// order (float64 for `T = f64`):
///
/// 1. `low / norm(low, dim=1)` and the same for `high` (torch's norm over a non-last dim adds
///    the squares row by row; over the last dim, in 8 lanes);
/// 2. `dot = (low_n * high_n).sum(1)`, with torch's cascaded column sums;
/// 3. if `dot.mean() > 0.9995`: `low·val + high·(1 − val)` (A1111's fallback, weights as
///    written there);
/// 4. else `ω = acos(dot)`, `a = sin((1 − val)·ω)/sin ω`, `b = sin(val·ω)/sin ω` per column,
///    and `a·low + b·high`.
///
/// Elementwise products, quotients and sums round as torch's do; `sqrt`, `acos` and `sin`
/// are correctly rounded, so the result is torch's wherever its float32 math is (torch's
/// CPU `acos`/`sin` go through MKL on x86 wheels and are up to 1 ulp off there).
///
/// Errors (field `"subseeds"`): fewer than [`MIN_SLERP_ROWS`] rows, buffers that are not
/// `c·h·w` long, or a column whose seed and subseed noise are parallel in float32
/// (`|dot| ≥ 1`), where A1111's weights are NaN or around 1e7.
pub fn slerp_chw<T: SlerpFloat>(
    val: f64,
    low: &[T],
    high: &[T],
    (c, h, w): (usize, usize, usize),
) -> Result<Vec<T>> {
    let n = c.checked_mul(h).and_then(|x| x.checked_mul(w));
    if n != Some(low.len()) || low.len() != high.len() {
        return Err(CoreError::invalid(
            "subseeds",
            format!(
                "the seed and subseed noise must both be C*H*W = {c}*{h}*{w} values, got {} and {}",
                low.len(),
                high.len()
            ),
        ));
    }
    if h < MIN_SLERP_ROWS {
        return Err(CoreError::invalid(
            "subseeds",
            format!("A1111's variation slerp needs at least {MIN_SLERP_ROWS} latent rows, got {h}"),
        ));
    }
    let low_n = normalise_columns(low, (c, h, w));
    let high_n = normalise_columns(high, (c, h, w));
    let prod: Vec<T> = low_n.iter().zip(&high_n).map(|(&a, &b)| a * b).collect();
    let dot = column_sums(&prod, (c, h, w));
    let mean = contiguous_sum(&dot) / T::of(dot.len() as f64);
    if mean > T::of(0.9995) {
        let (v, u) = (T::of(val), T::of(1.0 - val));
        return Ok(low
            .iter()
            .zip(high)
            .map(|(&l, &hh)| l * v + hh * u)
            .collect());
    }
    let (v, u) = (T::of(val), T::of(1.0 - val));
    let mut weights = Vec::with_capacity(dot.len());
    for (col, &d) in dot.iter().enumerate() {
        let omega = d.acos();
        let so = omega.sin();
        let a = (u * omega).sin() / so;
        let b = (v * omega).sin() / so;
        if !(d < T::of(1.0) && d > T::of(-1.0) && a.is_finite() && b.is_finite()) {
            return Err(CoreError::invalid(
                "subseeds",
                format!(
                    "the seed and subseed noise are parallel in column (c={}, w={}) of the \
                     {h}-row slerp (|cos| = 1 in float32), where A1111's slerp gives NaN or \
                     values near 1e7; use other seeds or a taller latent",
                    col / w.max(1),
                    col % w.max(1)
                ),
            ));
        }
        weights.push((a, b));
    }
    let mut out = Vec::with_capacity(low.len());
    for ci in 0..c {
        for hi in 0..h {
            let row = (ci * h + hi) * w;
            for wi in 0..w {
                let (a, b) = weights[ci * w + wi];
                out.push(a * low[row + wi] + b * high[row + wi]);
            }
        }
    }
    Ok(out)
}

/// `x / torch.norm(x, dim=1, keepdim=True)` for a `[C, H, W]` item.
fn normalise_columns<T: SlerpFloat>(x: &[T], (c, h, w): (usize, usize, usize)) -> Vec<T> {
    let norms: Vec<T> = if w == 1 {
        // The reduced dim is then contiguous: torch's last-dim norm kernel
        // (ReduceOpsKernel.cpp), squares summed in LANES lanes, the lanes left to right,
        // then the tail.
        x.chunks(h.max(1)).map(lastdim_norm).collect()
    } else {
        // torch's generic norm reduction (NormTwoOps): the squares added row by row.
        let mut acc = vec![T::ZERO; c * w];
        for ci in 0..c {
            for hi in 0..h {
                let row = &x[(ci * h + hi) * w..(ci * h + hi + 1) * w];
                for (a, &v) in acc[ci * w..(ci + 1) * w].iter_mut().zip(row) {
                    *a = *a + v * v;
                }
            }
        }
        acc.into_iter().map(SlerpFloat::sqrt).collect()
    };
    let mut out = Vec::with_capacity(x.len());
    for ci in 0..c {
        for hi in 0..h {
            let row = &x[(ci * h + hi) * w..(ci * h + hi + 1) * w];
            out.extend(
                row.iter()
                    .zip(&norms[ci * w..(ci + 1) * w])
                    .map(|(&v, &n)| v / n),
            );
        }
    }
    out
}

fn lastdim_norm<T: SlerpFloat>(col: &[T]) -> T {
    let lanes = T::LANES;
    let full = col.len() - col.len() % lanes;
    let mut acc = vec![T::ZERO; lanes];
    for block in col[..full].chunks(lanes) {
        for (a, &v) in acc.iter_mut().zip(block) {
            *a = *a + v * v;
        }
    }
    let mut total = acc[0];
    for &a in &acc[1..] {
        total = total + a;
    }
    for &v in &col[full..] {
        total = total + v * v;
    }
    total.sqrt()
}

/// `x.sum(1)` of a `[C, H, W]` item in the order torch's CPU sum kernel adds
/// (aten/src/ATen/native/cpu/SumKernel.cpp, `cascade_sum`): with W ≥ LANES, the columns of
/// whole groups of 4·LANES are summed by the 4-level cascade, the others by `row_sum`; with
/// fewer columns groups of 4; with one column the reduction is contiguous.
fn column_sums<T: SlerpFloat>(x: &[T], (c, h, w): (usize, usize, usize)) -> Vec<T> {
    if w == 1 {
        return x.chunks(h.max(1)).map(contiguous_sum).collect();
    }
    let group = if w >= T::LANES { 4 * T::LANES } else { 4 };
    let cascaded = w / group * group;
    let mut out = Vec::with_capacity(c * w);
    for ci in 0..c {
        let item = &x[ci * h * w..(ci + 1) * h * w];
        for wi in 0..w {
            let at = |row: usize| item[row * w + wi];
            out.push(if wi < cascaded {
                cascade_sum(h, at)
            } else {
                row_sum(h, at)
            });
        }
    }
    out
}

/// torch's sum of a contiguous run of values (`vectorized_inner_sum`, `scalar_inner_sum`):
/// LANES interleaved `row_sum`s, the scalar tail, then the lanes.
fn contiguous_sum<T: SlerpFloat>(x: &[T]) -> T {
    let lanes = T::LANES;
    if x.len() < lanes {
        return row_sum(x.len(), |i| x[i]);
    }
    let vectors = x.len() / lanes;
    let mut total = T::ZERO;
    for &v in &x[vectors * lanes..] {
        total = total + v;
    }
    for lane in 0..lanes {
        total = total + row_sum(vectors, |k| x[k * lanes + lane]);
    }
    total
}

/// torch's `row_sum`: four interleaved cascades (`ilp_factor` 4), the leftover values into
/// the first, then the four added left to right.
fn row_sum<T: SlerpFloat>(n: usize, at: impl Fn(usize) -> T) -> T {
    const ILP: usize = 4;
    let per = n / ILP;
    let mut parts = [T::ZERO; ILP];
    for (r, part) in parts.iter_mut().enumerate() {
        *part = cascade_sum(per, |k| at(k * ILP + r));
    }
    for i in per * ILP..n {
        parts[0] = parts[0] + at(i);
    }
    let mut total = parts[0];
    for &p in &parts[1..] {
        total = total + p;
    }
    total
}

/// torch's `multi_row_sum` for one column: runs of 2^p values (p = max(4, ⌈log2 n⌉ / 4))
/// go into the first of four accumulators, which carry into the next level whenever a run
/// completes, as in a 4-digit counter.
fn cascade_sum<T: SlerpFloat>(n: usize, at: impl Fn(usize) -> T) -> T {
    const LEVELS: usize = 4;
    let power = (ceil_log2(n) / LEVELS).max(4);
    let step = 1usize << power;
    let mask = step - 1;
    let mut acc = [T::ZERO; LEVELS];
    let mut i = 0;
    while i + step <= n {
        for _ in 0..step {
            acc[0] = acc[0] + at(i);
            i += 1;
        }
        for j in 1..LEVELS {
            acc[j] = acc[j] + acc[j - 1];
            acc[j - 1] = T::ZERO;
            if i & (mask << (j * power)) != 0 {
                break;
            }
        }
    }
    while i < n {
        acc[0] = acc[0] + at(i);
        i += 1;
    }
    let mut total = acc[0];
    for &a in &acc[1..] {
        total = total + a;
    }
    total
}

/// c10 `CeilLog2` (1 for n ≤ 2).
fn ceil_log2(n: usize) -> usize {
    if n <= 2 {
        1
    } else {
        (usize::BITS - (n - 1).leading_zeros()) as usize
    }
}

/// A1111's seed-resize paste: copies the centre of `src` (`[C, hs, ws]`) into the centre of
/// `dst` (`[C, ht, wt]`), cropping the source where it is larger (per axis).
pub fn paste_centered<T: Copy>(
    dst: &mut [T],
    (c, ht, wt): (usize, usize, usize),
    src: &[T],
    (hs, ws): (usize, usize),
) {
    let dx = (wt as i64 - ws as i64).div_euclid(2);
    let dy = (ht as i64 - hs as i64).div_euclid(2);
    let w = if dx >= 0 {
        ws as i64
    } else {
        ws as i64 + 2 * dx
    };
    let h = if dy >= 0 {
        hs as i64
    } else {
        hs as i64 + 2 * dy
    };
    let tx = dx.max(0) as usize;
    let ty = dy.max(0) as usize;
    let sx = (-dx).max(0) as usize;
    let sy = (-dy).max(0) as usize;
    let (w, h) = (w.max(0) as usize, h.max(0) as usize);
    for ci in 0..c {
        for row in 0..h {
            let d0 = (ci * ht + ty + row) * wt + tx;
            let s0 = (ci * hs + sy + row) * ws + sx;
            dst[d0..d0 + w].copy_from_slice(&src[s0..s0 + w]);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paste_smaller_and_larger() {
        // 1 channel, 4x4 target, 2x2 source in the middle.
        let mut dst = vec![0i32; 16];
        paste_centered(&mut dst, (1, 4, 4), &[1, 2, 3, 4], (2, 2));
        assert_eq!(dst, vec![0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0]);
        // 2x2 target, 4x4 source: the centre is cropped.
        let src: Vec<i32> = (0..16).collect();
        let mut dst = vec![0i32; 4];
        paste_centered(&mut dst, (1, 2, 2), &src, (4, 4));
        assert_eq!(dst, vec![5, 6, 9, 10]);
        // Odd difference: A1111's floor division (-1 // 2 == -1) crops 1 on the left.
        let src: Vec<i32> = (0..3).collect();
        let mut dst = vec![0i32; 2];
        paste_centered(&mut dst, (1, 1, 2), &src, (1, 3));
        // dx = (2 - 3) // 2 = -1: w = 3 - 2 = 1, source x from 1, target x 0.
        assert_eq!(dst, vec![1, 0]);
    }

    fn noise(n: usize, k: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7 + k * 13) % 23) as f32 - 11.0) / 3.0)
            .collect()
    }

    #[test]
    fn slerp_endpoints_are_exact() {
        let (low, high) = (noise(24, 1), noise(24, 2));
        assert_eq!(slerp_chw(0.0, &low, &high, (2, 3, 4)).unwrap(), low);
        assert_eq!(slerp_chw(1.0, &low, &high, (2, 3, 4)).unwrap(), high);
        let l64: Vec<f64> = low.iter().map(|&x| f64::from(x)).collect();
        let h64: Vec<f64> = high.iter().map(|&x| f64::from(x)).collect();
        assert_eq!(slerp_chw(1.0, &l64, &h64, (2, 3, 4)).unwrap(), h64);
    }

    #[test]
    fn slerp_keeps_unit_scale_and_falls_back_for_equal_noise() {
        let (low, high) = (noise(4 * 9 * 5, 3), noise(4 * 9 * 5, 8));
        let mid = slerp_chw(0.5, &low, &high, (4, 9, 5)).unwrap();
        let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        // Per column the slerp of two equal-norm directions keeps the norm between theirs.
        assert!(norm(&mid) > 0.5 * norm(&low).min(norm(&high)));
        // Identical noise: mean(dot) > 0.9995, the linear fallback (weights val and 1 - val).
        let same = slerp_chw(0.25, &low, &low, (4, 9, 5)).unwrap();
        for (s, l) in same.iter().zip(&low) {
            assert_eq!(*s, l * 0.25 + l * 0.75);
        }
    }

    #[test]
    fn slerp_refuses_one_row_and_parallel_columns() {
        let (low, high) = (noise(8, 1), noise(8, 2));
        let err = slerp_chw(0.5, &low, &high, (2, 1, 4)).unwrap_err();
        assert_eq!(err.field(), "subseeds");
        assert!(slerp_chw(0.5, &low, &high[..7], (2, 1, 4)).is_err());
        // Column 0 is (3, 0) against (-2, 0): cos = -1 exactly; column 1 is orthogonal.
        let low = vec![3.0f32, 0.0, 0.0, 1.0];
        let high = vec![-2.0f32, 1.0, 0.0, 0.0];
        let err = slerp_chw(0.5, &low, &high, (1, 2, 2)).unwrap_err();
        assert!(err.to_string().contains("parallel"), "{err}");
    }

    #[test]
    fn torch_sum_orders() {
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 8, 9, 17].map(ceil_log2),
            [1, 1, 1, 2, 2, 3, 3, 4, 5]
        );
        // The cascade adds runs of 16 first: 1 + 16 * 2^-24 + ... keeps the small values that
        // a left-to-right sum starting at 1.0 would lose one by one.
        let tiny = 2f32.powi(-24);
        let vals: Vec<f32> = std::iter::once(1.0)
            .chain(std::iter::repeat_n(tiny, 31))
            .collect();
        let left_to_right = vals.iter().fold(0f32, |a, &v| a + v);
        assert_eq!(left_to_right, 1.0);
        let cascaded = cascade_sum(vals.len(), |i| vals[i]);
        assert_eq!(cascaded, 1.0 + 16.0 * tiny);
        // Integers are exact in any order: every path must give the plain total.
        let ints: Vec<f32> = (0..300).map(|i| (i % 17) as f32).collect();
        let total: f32 = ints.iter().sum();
        assert_eq!(contiguous_sum(&ints), total);
        assert_eq!(row_sum(ints.len(), |i| ints[i]), total);
        for w in [1usize, 3, 5, 8, 33, 64, 70] {
            let h = 300 / w;
            let sums = column_sums(&ints[..h * w], (1, h, w));
            for (wi, s) in sums.iter().enumerate() {
                let want: f32 = (0..h).map(|r| ints[r * w + wi]).sum();
                assert_eq!(*s, want, "w={w} column {wi}");
            }
        }
    }
}
