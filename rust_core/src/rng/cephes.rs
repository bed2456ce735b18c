//! The float32 Box–Muller arithmetic of torch's x86-64 CPU kernels, bit for bit.
//!
//! torch 2.13.0 `aten/src/ATen/native/cpu/avx_mathfun.h` (`log256_ps`, `sincos256_ps`: Julien
//! Pommier's Cephes-polynomial `sse_mathfun` ported to AVX by G. Garberoglio) and
//! `aten/src/ATen/native/cpu/DistributionTemplates.h` (`normal_fill_16_AVX2`). The x86-64
//! wheel is built by GCC with `-mavx2 -mfma`, and GCC contracted a specific subset of the
//! multiply/add pairs into FMAs (read from the `libtorch_cpu.so` disassembly). We reproduce
//! that pattern exactly: `mul_add` / `_mm256_fmadd_ps` where the compiled code fuses, separate
//! IEEE operations everywhere else. Rust never contracts on its own, so the portable scalar
//! code and the AVX2 code below produce identical bits (checked exhaustively in the tests).
//!
//! The DEFAULT (non-AVX2) kernel of `normal_fill_16<float>` uses libm `logf`/`sinf`/`cosf`
//! and an angle computed in double; see [`normal_block16_default`].

// The constants are the upstream decimal strings verbatim (each rounded to float32 once, as
// the C compiler does); the tests check the bit patterns that matter.
#![allow(clippy::excessive_precision, clippy::approx_constant)]

/// float32(2π) = 6.2831855 (0x40C90FDB).
pub const TWO_PI: f32 = 6.283_185_5;
const MIN_NORM_POS: f32 = f32::MIN_POSITIVE;
const SQRTHF: f32 = 0.707_106_781_186_547_524;
const LOG_P0: f32 = 7.037_683_629_2e-2;
const LOG_P1: f32 = -1.151_461_031_0e-1;
const LOG_P2: f32 = 1.167_699_874_0e-1;
const LOG_P3: f32 = -1.242_014_084_6e-1;
const LOG_P4: f32 = 1.424_932_278_7e-1;
const LOG_P5: f32 = -1.666_805_766_5e-1;
const LOG_P6: f32 = 2.000_071_476_5e-1;
const LOG_P7: f32 = -2.499_999_399_3e-1;
const LOG_P8: f32 = 3.333_333_117_4e-1;
const LOG_Q1: f32 = -2.121_944_40e-4;
const LOG_Q2: f32 = 0.693_359_375;
const FOPI: f32 = 1.273_239_544_735_16;
const DP1: f32 = -0.785_156_25;
const DP2: f32 = -2.418_756_484_985_351_562_5e-4;
const DP3: f32 = -3.774_894_977_445_941_08e-8;
const SIN_P0: f32 = -1.951_529_589_1e-4;
const SIN_P1: f32 = 8.332_160_873_6e-3;
const SIN_P2: f32 = -1.666_665_461_1e-1;
const COS_P0: f32 = 2.443_315_711_809_948e-5;
const COS_P1: f32 = -1.388_731_625_493_765e-3;
const COS_P2: f32 = 4.166_664_568_298_827e-2;
const SIGN: u32 = 0x8000_0000;

/// Natural log of `a > 0`, as `log256_ps` computes it lane by lane (with GCC's FMAs).
#[inline(always)]
pub fn log_f32(a: f32) -> f32 {
    // _mm256_max_ps(x, min_norm): returns the second operand when x is NaN; a > 0 here.
    let a = if a > MIN_NORM_POS { a } else { MIN_NORM_POS };
    let bits = a.to_bits();
    let k = (bits >> 23) as i32 - 0x7F;
    let mut m = f32::from_bits((bits & !0x7F80_0000) | 0x3F00_0000);
    let mut e = k as f32 + 1.0;
    let small = m < SQRTHF;
    let tmp = if small { m } else { 0.0 };
    m -= 1.0;
    e -= if small { 1.0 } else { 0.0 };
    m += tmp;
    let z = m * m;
    let mut y = LOG_P0.mul_add(m, LOG_P1);
    y = y.mul_add(m, LOG_P2);
    y = y.mul_add(m, LOG_P3);
    y = y.mul_add(m, LOG_P4);
    y = y.mul_add(m, LOG_P5);
    y = y.mul_add(m, LOG_P6);
    y = y.mul_add(m, LOG_P7);
    y = y.mul_add(m, LOG_P8);
    y *= m;
    let t = e * LOG_Q1;
    y = y.mul_add(z, t);
    y = (-z).mul_add(0.5, y);
    m += y;
    e.mul_add(LOG_Q2, m)
}

/// `(sin θ, cos θ)` as `sincos256_ps` computes it lane by lane (with GCC's FMAs).
/// Exact twin of the AVX2 code for |θ| < 2^31 / (4/π) (the conversion range of `cvttps`).
#[inline(always)]
pub fn sincos_f32(theta: f32) -> (f32, f32) {
    let sign_in = theta.to_bits() & SIGN;
    let a = f32::from_bits(theta.to_bits() & !SIGN);
    let mut j = (a * FOPI) as i32;
    j = j.wrapping_add(1) & !1;
    let y = j as f32;
    let swap_sin = ((j & 4) as u32) << 29;
    let poly_sin = (j & 2) == 0;
    let mut x = y.mul_add(DP1, a);
    x = DP2.mul_add(y, x);
    x = y.mul_add(DP3, x);
    let sign_cos = ((!j.wrapping_sub(2) & 4) as u32) << 29;
    let sign_sin = sign_in ^ swap_sin;
    let z = x * x;
    let h = z * 0.5;
    let mut c = COS_P0.mul_add(z, COS_P1);
    c = c.mul_add(z, COS_P2);
    c *= z;
    c = z.mul_add(c, -h);
    c += 1.0;
    let mut s = SIN_P0.mul_add(z, SIN_P1);
    s = s.mul_add(z, SIN_P2);
    s *= z;
    s = x.mul_add(s, x);
    // The vector code selects with and/andnot and then adds and subtracts the masked
    // parts; mirror it literally so the signs of zeros agree.
    let (ysin2, ysin1) = if poly_sin { (s, 0.0) } else { (0.0, c) };
    let s_rest = s - ysin2;
    let c_rest = c - ysin1;
    let sin_r = ysin1 + ysin2;
    let cos_r = c_rest + s_rest;
    (
        f32::from_bits(sin_r.to_bits() ^ sign_sin),
        f32::from_bits(cos_r.to_bits() ^ sign_cos),
    )
}

/// One 16-value Box–Muller block of torch's AVX2 kernel, portable version:
/// `d[j], d[j+8] ← r·cos θ, r·sin θ` with `r = √(−2 ln(1 − d[j]))`, `θ = 2π·d[j+8]`.
#[inline(always)]
pub fn normal_block16_avx2_exact(d: &mut [f32; 16]) {
    for j in 0..8 {
        let u1 = 1.0 - d[j];
        let u2 = d[j + 8];
        let r = (-2.0 * log_f32(u1)).sqrt();
        let theta = TWO_PI * u2;
        let (s, c) = sincos_f32(theta);
        // fma(n, std = 1, mean = 0): the product is exact, the +0 turns −0 into +0.
        d[j] = r * c + 0.0;
        d[j + 8] = r * s + 0.0;
    }
}

/// One 16-value block of torch's DEFAULT (non-AVX2) kernel, `normal_fill_16<float>`:
/// libm `logf`, `sinf`, `cosf`, and θ = float(2π·u2 computed in double).
#[inline]
pub fn normal_block16_default(d: &mut [f32; 16]) {
    for j in 0..8 {
        let u1 = 1.0 - d[j];
        let u2 = d[j + 8];
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = (std::f64::consts::TAU * f64::from(u2)) as f32;
        d[j] = r * theta.cos() + 0.0;
        d[j + 8] = r * theta.sin() + 0.0;
    }
}

/// One 16-value block of `normal_fill_16<double>`: libm `log`, `sin`, `cos` in double.
#[inline]
pub fn normal_block16_f64(d: &mut [f64]) {
    for j in 0..8 {
        let u1 = 1.0 - d[j];
        let u2 = d[j + 8];
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        d[j] = r * theta.cos() + 0.0;
        d[j + 8] = r * theta.sin() + 0.0;
    }
}

/// AVX2 + FMA versions of the functions above.
#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    /// `log256_ps` with GCC's FMA pattern.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub fn log256(x: __m256) -> __m256 {
        log256x([x])[0]
    }

    /// `sincos256_ps` with GCC's FMA pattern; returns `(sin, cos)`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub fn sincos256(x: __m256) -> (__m256, __m256) {
        let (s, c) = sincos256x([x]);
        (s[0], c[0])
    }

    /// [`log256`] on `K` independent registers, step by step across the registers so the
    /// dependency chains interleave (same operations per lane, so the same bits).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub fn log256x<const K: usize>(x: [__m256; K]) -> [__m256; K] {
        let one = _mm256_set1_ps(1.0);
        let mut m = [one; K];
        let mut e = [one; K];
        for k in 0..K {
            let xk = _mm256_max_ps(x[k], _mm256_set1_ps(MIN_NORM_POS));
            let imm0 = _mm256_sub_epi32(
                _mm256_srli_epi32::<23>(_mm256_castps_si256(xk)),
                _mm256_set1_epi32(0x7F),
            );
            let mk = _mm256_and_ps(xk, _mm256_castsi256_ps(_mm256_set1_epi32(!0x7F80_0000)));
            let mk = _mm256_or_ps(mk, _mm256_set1_ps(0.5));
            let ek = _mm256_add_ps(_mm256_cvtepi32_ps(imm0), one);
            let mask = _mm256_cmp_ps::<_CMP_LT_OS>(mk, _mm256_set1_ps(SQRTHF));
            let tmp = _mm256_and_ps(mk, mask);
            e[k] = _mm256_sub_ps(ek, _mm256_and_ps(one, mask));
            m[k] = _mm256_add_ps(_mm256_sub_ps(mk, one), tmp);
        }
        let mut z = [one; K];
        let mut y = [one; K];
        for k in 0..K {
            z[k] = _mm256_mul_ps(m[k], m[k]);
            y[k] = _mm256_fmadd_ps(_mm256_set1_ps(LOG_P0), m[k], _mm256_set1_ps(LOG_P1));
        }
        for p in [LOG_P2, LOG_P3, LOG_P4, LOG_P5, LOG_P6, LOG_P7, LOG_P8] {
            for k in 0..K {
                y[k] = _mm256_fmadd_ps(y[k], m[k], _mm256_set1_ps(p));
            }
        }
        let mut out = [one; K];
        for k in 0..K {
            let yk = _mm256_mul_ps(y[k], m[k]);
            let t = _mm256_mul_ps(e[k], _mm256_set1_ps(LOG_Q1));
            let yk = _mm256_fmadd_ps(yk, z[k], t);
            let yk = _mm256_fnmadd_ps(z[k], _mm256_set1_ps(0.5), yk);
            let mk = _mm256_add_ps(m[k], yk);
            out[k] = _mm256_fmadd_ps(e[k], _mm256_set1_ps(LOG_Q2), mk);
        }
        out
    }

    /// [`sincos256`] on `K` independent registers, interleaved like [`log256x`].
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub fn sincos256x<const K: usize>(x: [__m256; K]) -> ([__m256; K], [__m256; K]) {
        let zero = _mm256_setzero_ps();
        let sign_mask = _mm256_castsi256_ps(_mm256_set1_epi32(SIGN as i32));
        let mut xr = [zero; K];
        let mut sign_sin = [zero; K];
        let mut sign_cos = [zero; K];
        let mut poly_mask = [zero; K];
        for k in 0..K {
            let sign_in = _mm256_and_ps(x[k], sign_mask);
            let a = _mm256_andnot_ps(sign_mask, x[k]);
            let mut j = _mm256_cvttps_epi32(_mm256_mul_ps(a, _mm256_set1_ps(FOPI)));
            j = _mm256_add_epi32(j, _mm256_set1_epi32(1));
            j = _mm256_and_si256(j, _mm256_set1_epi32(!1));
            let y = _mm256_cvtepi32_ps(j);
            let swap_sin = _mm256_castsi256_ps(_mm256_slli_epi32::<29>(_mm256_and_si256(
                j,
                _mm256_set1_epi32(4),
            )));
            poly_mask[k] = _mm256_castsi256_ps(_mm256_cmpeq_epi32(
                _mm256_and_si256(j, _mm256_set1_epi32(2)),
                _mm256_setzero_si256(),
            ));
            let mut r = _mm256_fmadd_ps(y, _mm256_set1_ps(DP1), a);
            r = _mm256_fmadd_ps(_mm256_set1_ps(DP2), y, r);
            xr[k] = _mm256_fmadd_ps(y, _mm256_set1_ps(DP3), r);
            sign_cos[k] = _mm256_castsi256_ps(_mm256_slli_epi32::<29>(_mm256_andnot_si256(
                _mm256_sub_epi32(j, _mm256_set1_epi32(2)),
                _mm256_set1_epi32(4),
            )));
            sign_sin[k] = _mm256_xor_ps(sign_in, swap_sin);
        }
        let mut sin_out = [zero; K];
        let mut cos_out = [zero; K];
        for k in 0..K {
            let z = _mm256_mul_ps(xr[k], xr[k]);
            let h = _mm256_mul_ps(z, _mm256_set1_ps(0.5));
            let mut c = _mm256_fmadd_ps(_mm256_set1_ps(COS_P0), z, _mm256_set1_ps(COS_P1));
            let mut s = _mm256_fmadd_ps(_mm256_set1_ps(SIN_P0), z, _mm256_set1_ps(SIN_P1));
            c = _mm256_fmadd_ps(c, z, _mm256_set1_ps(COS_P2));
            s = _mm256_fmadd_ps(s, z, _mm256_set1_ps(SIN_P2));
            c = _mm256_mul_ps(z, c);
            s = _mm256_mul_ps(z, s);
            c = _mm256_fmsub_ps(z, c, h);
            s = _mm256_fmadd_ps(xr[k], s, xr[k]);
            c = _mm256_add_ps(c, _mm256_set1_ps(1.0));
            let ysin2 = _mm256_and_ps(poly_mask[k], s);
            let ysin1 = _mm256_andnot_ps(poly_mask[k], c);
            let s_rest = _mm256_sub_ps(s, ysin2);
            let c_rest = _mm256_sub_ps(c, ysin1);
            let sin_r = _mm256_add_ps(ysin1, ysin2);
            let cos_r = _mm256_add_ps(c_rest, s_rest);
            sin_out[k] = _mm256_xor_ps(sin_r, sign_sin[k]);
            cos_out[k] = _mm256_xor_ps(cos_r, sign_cos[k]);
        }
        (sin_out, cos_out)
    }

    /// `normal_fill_16_AVX2` on one block of 16 values.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub fn normal_block16(d: &mut [f32; 16]) {
        // SAFETY: `d` is 16 contiguous f32; unaligned loads read d[0..8] and d[8..16].
        let (lo, hi) = unsafe {
            (
                _mm256_loadu_ps(d.as_ptr()),
                _mm256_loadu_ps(d.as_ptr().add(8)),
            )
        };
        let u1 = _mm256_sub_ps(_mm256_set1_ps(1.0), lo);
        let r = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0), log256(u1)));
        let theta = _mm256_mul_ps(_mm256_set1_ps(TWO_PI), hi);
        let (s, c) = sincos256(theta);
        let zero = _mm256_setzero_ps();
        let n1 = _mm256_add_ps(_mm256_mul_ps(r, c), zero);
        let n2 = _mm256_add_ps(_mm256_mul_ps(r, s), zero);
        // SAFETY: same 16 values as loaded above.
        unsafe {
            _mm256_storeu_ps(d.as_mut_ptr(), n1);
            _mm256_storeu_ps(d.as_mut_ptr().add(8), n2);
        }
    }

    /// Two blocks of 16 at once (32 values), interleaved for instruction-level parallelism.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub fn normal_block32(d: &mut [f32; 32]) {
        let p = d.as_mut_ptr();
        // SAFETY: `d` holds 32 contiguous f32; the four unaligned loads read 8 each.
        let (a_lo, a_hi, b_lo, b_hi) = unsafe {
            (
                _mm256_loadu_ps(p),
                _mm256_loadu_ps(p.add(8)),
                _mm256_loadu_ps(p.add(16)),
                _mm256_loadu_ps(p.add(24)),
            )
        };
        let one = _mm256_set1_ps(1.0);
        let logs = log256x([_mm256_sub_ps(one, a_lo), _mm256_sub_ps(one, b_lo)]);
        let two_pi = _mm256_set1_ps(TWO_PI);
        let (s, c) = sincos256x([_mm256_mul_ps(two_pi, a_hi), _mm256_mul_ps(two_pi, b_hi)]);
        let minus_two = _mm256_set1_ps(-2.0);
        let zero = _mm256_setzero_ps();
        let r0 = _mm256_sqrt_ps(_mm256_mul_ps(minus_two, logs[0]));
        let r1 = _mm256_sqrt_ps(_mm256_mul_ps(minus_two, logs[1]));
        // SAFETY: the same 32 values as loaded above.
        unsafe {
            _mm256_storeu_ps(p, _mm256_add_ps(_mm256_mul_ps(r0, c[0]), zero));
            _mm256_storeu_ps(p.add(8), _mm256_add_ps(_mm256_mul_ps(r0, s[0]), zero));
            _mm256_storeu_ps(p.add(16), _mm256_add_ps(_mm256_mul_ps(r1, c[1]), zero));
            _mm256_storeu_ps(p.add(24), _mm256_add_ps(_mm256_mul_ps(r1, s[1]), zero));
        }
    }

    /// Transforms every 16-value block of `data` (`data.len()` a multiple of 16).
    #[target_feature(enable = "avx2,fma")]
    pub fn normal_blocks(data: &mut [f32]) {
        let mut pairs = data.chunks_exact_mut(32);
        for pair in pairs.by_ref() {
            if let Ok(b) = <&mut [f32; 32]>::try_from(pair) {
                normal_block32(b);
            }
        }
        for block in pairs.into_remainder().chunks_exact_mut(16) {
            if let Ok(b) = <&mut [f32; 16]>::try_from(block) {
                normal_block16(b);
            }
        }
    }
}

/// Transforms every 16-value block of `data` with torch's AVX2 arithmetic, using the SIMD
/// code when the CPU has AVX2 + FMA and the portable twin otherwise (same bits).
pub fn normal_blocks_avx2_exact(data: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::simd::avx2_fma() {
        // SAFETY: AVX2 and FMA support was checked at run time.
        unsafe { avx2::normal_blocks(data) };
        return;
    }
    for block in data.chunks_exact_mut(16) {
        if let Ok(b) = <&mut [f32; 16]>::try_from(block) {
            normal_block16_avx2_exact(b);
        }
    }
}

/// Transforms every 16-value block of `data` with torch's DEFAULT kernel arithmetic.
pub fn normal_blocks_default(data: &mut [f32]) {
    for block in data.chunks_exact_mut(16) {
        if let Ok(b) = <&mut [f32; 16]>::try_from(block) {
            normal_block16_default(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_bits() {
        assert_eq!(SQRTHF.to_bits(), 0x3F35_04F3);
        assert_eq!(FOPI.to_bits(), 0x3FA2_F983);
        assert_eq!(TWO_PI.to_bits(), 0x40C9_0FDB);
    }

    #[test]
    fn scalar_close_to_libm() {
        for i in 1..1000 {
            let a = i as f32 / 1000.0;
            assert!((log_f32(a) - a.ln()).abs() <= 2e-7 * a.ln().abs().max(1.0));
            let t = a * TWO_PI;
            let (s, c) = sincos_f32(t);
            assert!((s - t.sin()).abs() < 1e-6 && (c - t.cos()).abs() < 1e-6);
        }
    }

    /// Every float32 uniform torch can produce (2^24 of them), in both roles of the block,
    /// gives identical bits through the AVX2 code and the portable code.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn simd_equals_portable_exhaustive() {
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return;
        }
        let n = 1usize << 24;
        let mut a = vec![0f32; n * 2];
        // Block b holds uniforms 8b..8b+8 in both halves, so every uniform is used once as
        // the log input and once as the angle input.
        for (b, block) in a.chunks_exact_mut(16).enumerate() {
            for j in 0..8 {
                let u = ((b * 8 + j) as f32) * (1.0 / 16_777_216.0);
                block[j] = u;
                block[j + 8] = u;
            }
        }
        let mut p = a.clone();
        // SAFETY: feature support checked above.
        unsafe { avx2::normal_blocks(&mut a) };
        for block in p.chunks_exact_mut(16) {
            let b: &mut [f32; 16] = block.try_into().expect("16");
            normal_block16_avx2_exact(b);
        }
        let diff = a
            .iter()
            .zip(&p)
            .filter(|(x, y)| x.to_bits() != y.to_bits())
            .count();
        assert_eq!(diff, 0);
    }
}
