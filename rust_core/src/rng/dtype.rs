//! Output element types and the buffers that hold generated noise.

use crate::error::Result;

/// The floating-point type of generated noise.
///
/// `Float16` and `BFloat16` values are carried as their raw IEEE / bfloat16 bit patterns
/// (`u16`), because neither Rust nor numpy has a native bfloat16 type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// IEEE-754 binary32 (`torch.float32`).
    Float32,
    /// IEEE-754 binary64 (`torch.float64`).
    Float64,
    /// IEEE-754 binary16 (`torch.float16`), as raw bits.
    Float16,
    /// Brain floating point (`torch.bfloat16`), as raw bits.
    BFloat16,
}

impl Dtype {
    /// Every dtype, in a stable order.
    pub const ALL: [Dtype; 4] = [
        Dtype::Float32,
        Dtype::Float64,
        Dtype::Float16,
        Dtype::BFloat16,
    ];

    /// Parses `"float32"`, `"float64"`, `"float16"` or `"bfloat16"` (also the torch aliases
    /// `"float"`, `"double"`, `"half"`); anything else is an error on field `"dtype"`.
    pub fn parse(name: &str) -> Result<Dtype> {
        let valid = ["float32", "float64", "float16", "bfloat16"];
        // torch's own aliases only: the clients encode dtypes without the core.
        let aliases = [
            ("float", "float32"),
            ("double", "float64"),
            ("half", "float16"),
        ];
        Ok(
            match crate::names::resolve("dtype", "dtype", name, &valid, &aliases)? {
                "float32" => Dtype::Float32,
                "float64" => Dtype::Float64,
                "float16" => Dtype::Float16,
                _ => Dtype::BFloat16,
            },
        )
    }

    /// Bytes per element.
    pub fn itemsize(self) -> usize {
        match self {
            Dtype::Float32 => 4,
            Dtype::Float64 => 8,
            Dtype::Float16 | Dtype::BFloat16 => 2,
        }
    }

    /// The canonical name (`"float32"`, ...), as accepted by [`Dtype::parse`].
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Float32 => "float32",
            Dtype::Float64 => "float64",
            Dtype::Float16 => "float16",
            Dtype::BFloat16 => "bfloat16",
        }
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Generated noise, owning its values. Half-precision variants hold raw bit patterns.
#[derive(Debug, Clone, PartialEq)]
pub enum Noise {
    /// float32 values.
    F32(Vec<f32>),
    /// float64 values.
    F64(Vec<f64>),
    /// float16 bit patterns.
    F16(Vec<u16>),
    /// bfloat16 bit patterns.
    BF16(Vec<u16>),
}

impl Noise {
    /// A zero-filled buffer of `len` elements of `dtype`.
    pub fn zeros(dtype: Dtype, len: usize) -> Noise {
        match dtype {
            Dtype::Float32 => Noise::F32(vec![0.0; len]),
            Dtype::Float64 => Noise::F64(vec![0.0; len]),
            Dtype::Float16 => Noise::F16(vec![0; len]),
            Dtype::BFloat16 => Noise::BF16(vec![0; len]),
        }
    }

    /// Changes the length to `len` (new elements are zero).
    pub fn resize(&mut self, len: usize) {
        match self {
            Noise::F32(v) => v.resize(len, 0.0),
            Noise::F64(v) => v.resize(len, 0.0),
            Noise::F16(v) | Noise::BF16(v) => v.resize(len, 0),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Noise::F32(v) => v.len(),
            Noise::F64(v) => v.len(),
            Noise::F16(v) | Noise::BF16(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        match self {
            Noise::F32(_) => Dtype::Float32,
            Noise::F64(_) => Dtype::Float64,
            Noise::F16(_) => Dtype::Float16,
            Noise::BF16(_) => Dtype::BFloat16,
        }
    }

    /// A mutable view of the whole buffer.
    pub fn as_slice_mut(&mut self) -> NoiseSliceMut<'_> {
        match self {
            Noise::F32(v) => NoiseSliceMut::F32(v),
            Noise::F64(v) => NoiseSliceMut::F64(v),
            Noise::F16(v) => NoiseSliceMut::F16(v),
            Noise::BF16(v) => NoiseSliceMut::BF16(v),
        }
    }

    /// The values as little-endian bytes (the wire layout of the gRPC tensor message).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Noise::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Noise::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Noise::F16(v) | Noise::BF16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    /// Each value widened to f64 (half types decoded), for tests and diagnostics.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            Noise::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Noise::F64(v) => v.clone(),
            Noise::F16(v) => v.iter().map(|&b| f16_bits_to_f64(b)).collect(),
            Noise::BF16(v) => v.iter().map(|&b| bf16_bits_to_f64(b)).collect(),
        }
    }
}

/// A mutable, typed view of a caller-owned output buffer (the in-place fill target).
#[derive(Debug)]
pub enum NoiseSliceMut<'a> {
    /// float32 output.
    F32(&'a mut [f32]),
    /// float64 output.
    F64(&'a mut [f64]),
    /// float16 output (raw bits).
    F16(&'a mut [u16]),
    /// bfloat16 output (raw bits).
    BF16(&'a mut [u16]),
}

impl NoiseSliceMut<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            NoiseSliceMut::F32(v) => v.len(),
            NoiseSliceMut::F64(v) => v.len(),
            NoiseSliceMut::F16(v) | NoiseSliceMut::BF16(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        match self {
            NoiseSliceMut::F32(_) => Dtype::Float32,
            NoiseSliceMut::F64(_) => Dtype::Float64,
            NoiseSliceMut::F16(_) => Dtype::Float16,
            NoiseSliceMut::BF16(_) => Dtype::BFloat16,
        }
    }

    /// Reborrows the view for a shorter lifetime.
    pub fn reborrow(&mut self) -> NoiseSliceMut<'_> {
        match self {
            NoiseSliceMut::F32(v) => NoiseSliceMut::F32(v),
            NoiseSliceMut::F64(v) => NoiseSliceMut::F64(v),
            NoiseSliceMut::F16(v) => NoiseSliceMut::F16(v),
            NoiseSliceMut::BF16(v) => NoiseSliceMut::BF16(v),
        }
    }

    /// The elements `[start, start + len)` (the caller keeps the range in bounds).
    pub(crate) fn sub(&mut self, start: usize, len: usize) -> NoiseSliceMut<'_> {
        let range = start..start + len;
        match self {
            NoiseSliceMut::F32(v) => NoiseSliceMut::F32(&mut v[range]),
            NoiseSliceMut::F64(v) => NoiseSliceMut::F64(&mut v[range]),
            NoiseSliceMut::F16(v) => NoiseSliceMut::F16(&mut v[range]),
            NoiseSliceMut::BF16(v) => NoiseSliceMut::BF16(&mut v[range]),
        }
    }
}

/// float32 → float16 bits, round to nearest even (c10::Half's conversion).
#[inline]
pub fn f32_to_f16_bits(x: f32) -> u16 {
    half::f16::from_f32(x).to_bits()
}

/// float32 → bfloat16 bits, round to nearest even (c10::BFloat16's conversion).
#[inline]
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}

/// `dst[i] = f32_to_f16_bits(src[i])` over the shorter of the two, eight at a time with F16C
/// (`vcvtps2ph`, round to nearest even: the same bits, NaNs included).
pub fn round_to_f16(src: &[f32], dst: &mut [u16]) {
    let n = src.len().min(dst.len());
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if super::simd::f16c() {
        // SAFETY: F16C support was checked at run time.
        done = unsafe { vector::to_f16(&src[..n], &mut dst[..n]) };
    }
    for (d, &x) in dst[done..n].iter_mut().zip(&src[done..n]) {
        *d = f32_to_f16_bits(x);
    }
}

/// `dst[i] = f32_to_bf16_bits(src[i])` over the shorter of the two, sixteen at a time with
/// AVX2 integer rounding (the same bits, NaNs included).
pub fn round_to_bf16(src: &[f32], dst: &mut [u16]) {
    let n = src.len().min(dst.len());
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if super::simd::avx2_fma() {
        // SAFETY: AVX2 support was checked at run time.
        done = unsafe { vector::to_bf16(&src[..n], &mut dst[..n]) };
    }
    for (d, &x) in dst[done..n].iter_mut().zip(&src[done..n]) {
        *d = f32_to_bf16_bits(x);
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use vector::bf16_lanes;

#[cfg(target_arch = "x86_64")]
mod vector {
    use std::arch::x86_64::*;

    /// Converts the leading multiple of eight; returns how many values it converted.
    #[target_feature(enable = "avx,f16c")]
    pub(super) fn to_f16(src: &[f32], dst: &mut [u16]) -> usize {
        let whole = src.len() / 8 * 8;
        let mut i = 0;
        while i < whole {
            // SAFETY: i + 8 <= whole <= both lengths.
            unsafe {
                let v = _mm256_loadu_ps(src.as_ptr().add(i));
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
                _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), h);
            }
            i += 8;
        }
        whole
    }

    /// bfloat16 bits of eight floats in the low 16 bits of each 32-bit lane: NaN → the top
    /// half with the quiet bit set, otherwise `(x + 0x7FFF + lsb) >> 16` (round to nearest
    /// even, overflowing to infinity), as `half::bf16::from_f32` does.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) fn bf16_lanes(x: __m256i) -> __m256i {
        let top = _mm256_srli_epi32::<16>(x);
        let lsb = _mm256_and_si256(top, _mm256_set1_epi32(1));
        let bias = _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), lsb);
        let rounded = _mm256_srli_epi32::<16>(_mm256_add_epi32(x, bias));
        let magnitude = _mm256_and_si256(x, _mm256_set1_epi32(0x7FFF_FFFF));
        let nan = _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x7F80_0000));
        let quiet = _mm256_or_si256(top, _mm256_set1_epi32(0x0040));
        _mm256_blendv_epi8(rounded, quiet, nan)
    }

    /// Converts the leading multiple of sixteen; returns how many values it converted.
    #[target_feature(enable = "avx2")]
    pub(super) fn to_bf16(src: &[f32], dst: &mut [u16]) -> usize {
        let whole = src.len() / 16 * 16;
        let mut i = 0;
        while i < whole {
            // SAFETY: i + 16 <= whole <= both lengths.
            unsafe {
                let a = bf16_lanes(_mm256_loadu_si256(src.as_ptr().add(i).cast()));
                let b = bf16_lanes(_mm256_loadu_si256(src.as_ptr().add(i + 8).cast()));
                // packus interleaves the 128-bit halves: (a0 b0 a1 b1) → reorder to (a b).
                let packed = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi32(a, b));
                _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), packed);
            }
            i += 16;
        }
        whole
    }
}

/// float16 bits → f64.
#[inline]
pub fn f16_bits_to_f64(b: u16) -> f64 {
    half::f16::from_bits(b).to_f64()
}

/// bfloat16 bits → f64.
#[inline]
pub fn bf16_bits_to_f64(b: u16) -> f64 {
    half::bf16::from_bits(b).to_f64()
}

/// float16 bits → f32 (exact).
#[inline]
pub fn f16_bits_to_f32(b: u16) -> f32 {
    half::f16::from_bits(b).to_f32()
}

/// bfloat16 bits → f32 (exact).
#[inline]
pub fn bf16_bits_to_f32(b: u16) -> f32 {
    half::bf16::from_bits(b).to_f32()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        for d in Dtype::ALL {
            assert_eq!(Dtype::parse(d.name()), Ok(d));
        }
        let Err(err) = Dtype::parse("int8") else {
            panic!("int8 is not a noise dtype");
        };
        assert_eq!(err.field(), "dtype");
    }

    /// The vector conversions equal the scalar ones on a sweep of every bit pattern class:
    /// all patterns at a prime stride, and every pattern near the rounding, subnormal,
    /// overflow and NaN boundaries.
    #[test]
    fn slice_rounding_equals_scalar() {
        let mut bits: Vec<u32> = (0..=u32::MAX).step_by(4093).collect();
        for centre in [
            0x3380_0000u32, // f16 subnormal range
            0x3880_0000,    // f16 smallest normal
            0x477F_E000,    // f16 max finite
            0x4780_0000,    // f16 overflow
            0x7F7F_8000,    // bf16 rounding into infinity
            0x7F80_0000,    // infinity / NaN
            0x3F80_8000,    // bf16 tie
            0x3F80_1000,    // f16 tie
        ] {
            for sign in [0, 0x8000_0000] {
                bits.extend((centre - 40_000..centre + 40_000).map(|b| b | sign));
            }
        }
        let src: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b)).collect();
        let (mut h, mut b) = (vec![0u16; src.len()], vec![0u16; src.len()]);
        round_to_f16(&src, &mut h);
        round_to_bf16(&src, &mut b);
        for (i, &x) in src.iter().enumerate() {
            assert_eq!(h[i], f32_to_f16_bits(x), "f16 of {:#x}", bits[i]);
            assert_eq!(b[i], f32_to_bf16_bits(x), "bf16 of {:#x}", bits[i]);
        }
    }

    #[test]
    fn half_rounding_is_nearest_even() {
        // 1 + 2^-11 is exactly halfway between two float16 values: ties to even (1.0).
        assert_eq!(f32_to_f16_bits(1.0 + 2f32.powi(-11)), 0x3C00);
        // 1 + 3*2^-11 is halfway: rounds up to the even 1 + 2^-9.
        assert_eq!(f32_to_f16_bits(1.0 + 3.0 * 2f32.powi(-11)), 0x3C02);
        assert_eq!(f32_to_bf16_bits(1.0 + 2f32.powi(-8)), 0x3F80);
        assert_eq!(f32_to_bf16_bits(1.0 + 3.0 * 2f32.powi(-8)), 0x3F82);
    }
}
