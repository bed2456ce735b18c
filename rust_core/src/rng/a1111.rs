//! AUTOMATIC1111's seed features: variation seeds (a spherical interpolation between the
//! seed's noise and the subseed's noise) and "resize seed from width/height" (the noise of a
//! smaller or larger image pasted into the centre of full-size noise).
//!
//! AUTOMATIC1111/stable-diffusion-webui 1.10 `modules/rng.py` (`slerp`, `ImageRNG.first`)
//! and `modules/processing.py` (per-image seeds and subseeds).

/// "Resize seed from": the size of the image whose noise is reused, in **latent** pixels
/// (A1111's pixel values divided by the VAE factor, 8 for Stable Diffusion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedResize {
    /// Latent width of the source noise.
    pub width: usize,
    /// Latent height of the source noise.
    pub height: usize,
}

/// A1111's `slerp(val, low, high)` on one `[C, H, W]` item: both tensors are normalised
/// along **H** (dim 1), `d` is the per-(c, w) dot product; when `mean(d) > 0.9995` the result
/// is `low·val + high·(1 − val)` (A1111's inverted fallback weights), otherwise
/// `sin((1−val)ω)/sin ω · low + sin(val·ω)/sin ω · high` with `ω = acos d` per column.
///
/// Evaluated in float64 (A1111 runs it in float32 torch ops, so results agree to float32
/// rounding, about 1e-6, not bit for bit). `d` is clamped to [−1, 1] and a column with
/// `sin ω = 0` uses the linear weights, where A1111 would produce NaN.
pub fn slerp_chw(val: f64, low: &[f64], high: &[f64], c: usize, h: usize, w: usize) -> Vec<f64> {
    let at = |ci: usize, hi: usize, wi: usize| (ci * h + hi) * w + wi;
    let cols = c * w;
    let mut dot = vec![0f64; cols];
    for ci in 0..c {
        for wi in 0..w {
            let (mut nl, mut nh) = (0f64, 0f64);
            for hi in 0..h {
                let i = at(ci, hi, wi);
                nl += low[i] * low[i];
                nh += high[i] * high[i];
            }
            let (nl, nh) = (nl.sqrt(), nh.sqrt());
            let mut d = 0f64;
            for hi in 0..h {
                let i = at(ci, hi, wi);
                d += (low[i] / nl) * (high[i] / nh);
            }
            dot[ci * w + wi] = d;
        }
    }
    let mean = if cols == 0 {
        0.0
    } else {
        dot.iter().sum::<f64>() / cols as f64
    };
    let mut out = vec![0f64; low.len()];
    if mean > 0.9995 {
        for (o, (&l, &hh)) in out.iter_mut().zip(low.iter().zip(high)) {
            *o = l * val + hh * (1.0 - val);
        }
        return out;
    }
    for ci in 0..c {
        for wi in 0..w {
            let d = dot[ci * w + wi];
            let d = if d.is_nan() { 0.0 } else { d.clamp(-1.0, 1.0) };
            let omega = d.acos();
            let so = omega.sin();
            let (a, b) = if so.abs() < 1e-300 {
                (1.0 - val, val)
            } else {
                (((1.0 - val) * omega).sin() / so, (val * omega).sin() / so)
            };
            for hi in 0..h {
                let i = at(ci, hi, wi);
                out[i] = a * low[i] + b * high[i];
            }
        }
    }
    out
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

    #[test]
    fn slerp_endpoints() {
        let low: Vec<f64> = (0..24).map(|i| ((i * 7 % 11) as f64) - 5.0).collect();
        let high: Vec<f64> = (0..24).map(|i| ((i * 5 % 13) as f64) - 6.0).collect();
        let a = slerp_chw(0.0, &low, &high, 2, 3, 4);
        let b = slerp_chw(1.0, &low, &high, 2, 3, 4);
        for i in 0..24 {
            assert!((a[i] - low[i]).abs() < 1e-9 && (b[i] - high[i]).abs() < 1e-9);
        }
    }
}
