//! `latents * init_noise_sigma` with torch's CPU arithmetic, and the little-endian bytes of the
//! result.
//!
//! torch multiplies a tensor by a Python float in the tensor's "opmath" type: float32 for
//! float32, float16 and bfloat16 tensors (the scalar rounded to float32, the product rounded
//! back to the storage type, nearest-even), float64 for float64 (torch 2.13.0
//! `aten/src/ATen/native/cpu/BinaryOpsKernel.cpp`, `mul_kernel` with a scalar operand;
//! `at::opmath_type`). A factor of exactly 1.0 leaves every value unchanged.

use crate::rng::dtype::{
    bf16_bits_to_f32, f16_bits_to_f32, f32_to_bf16_bits, f32_to_f16_bits, Dtype,
};
use crate::rng::NoiseSliceMut;

/// An element type of generated noise: torch's scalar multiply and its wire bytes.
pub(crate) trait Elem: Copy + Default + Send + Sync + 'static {
    /// Bytes per element.
    const SIZE: usize;
    /// `x * factor` in torch's opmath type, rounded back to the storage type.
    fn scaled(self, dtype: Dtype, factor: f64) -> Self;
    /// The little-endian bytes of `self` into `dst` (`SIZE` bytes).
    fn put_le(self, dst: &mut [u8]);
    /// `values` as the typed output of a `dtype` draw.
    fn noise_slice(values: &mut [Self], dtype: Dtype) -> NoiseSliceMut<'_>;
}

impl Elem for f32 {
    const SIZE: usize = 4;
    #[inline]
    fn scaled(self, _: Dtype, factor: f64) -> f32 {
        self * factor as f32
    }
    #[inline]
    fn put_le(self, dst: &mut [u8]) {
        dst.copy_from_slice(&self.to_le_bytes());
    }
    fn noise_slice(values: &mut [f32], _: Dtype) -> NoiseSliceMut<'_> {
        NoiseSliceMut::F32(values)
    }
}

impl Elem for f64 {
    const SIZE: usize = 8;
    #[inline]
    fn scaled(self, _: Dtype, factor: f64) -> f64 {
        self * factor
    }
    #[inline]
    fn put_le(self, dst: &mut [u8]) {
        dst.copy_from_slice(&self.to_le_bytes());
    }
    fn noise_slice(values: &mut [f64], _: Dtype) -> NoiseSliceMut<'_> {
        NoiseSliceMut::F64(values)
    }
}

/// float16 or bfloat16 bits: widened to float32 (exact), multiplied by `float32(factor)`,
/// rounded to nearest even.
impl Elem for u16 {
    const SIZE: usize = 2;
    #[inline]
    fn scaled(self, dtype: Dtype, factor: f64) -> u16 {
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
    fn noise_slice(values: &mut [u16], dtype: Dtype) -> NoiseSliceMut<'_> {
        if dtype == Dtype::BFloat16 {
            NoiseSliceMut::BF16(values)
        } else {
            NoiseSliceMut::F16(values)
        }
    }
}

/// Multiplies `values` by `factor` in place, torch's way (nothing when `factor == 1`).
pub(crate) fn scale_in_place<T: Elem>(values: &mut [T], dtype: Dtype, factor: f64) {
    if factor == 1.0 {
        return;
    }
    for x in values.iter_mut() {
        *x = x.scaled(dtype, factor);
    }
}

/// [`scale_in_place`] on a typed buffer of any dtype.
pub fn scale_noise(values: NoiseSliceMut<'_>, factor: f64) {
    match values {
        NoiseSliceMut::F32(v) => scale_in_place(v, Dtype::Float32, factor),
        NoiseSliceMut::F64(v) => scale_in_place(v, Dtype::Float64, factor),
        NoiseSliceMut::F16(v) => scale_in_place(v, Dtype::Float16, factor),
        NoiseSliceMut::BF16(v) => scale_in_place(v, Dtype::BFloat16, factor),
    }
}

/// Writes `values` scaled by `factor` as little-endian bytes into `dst`
/// (`values.len() * T::SIZE` bytes).
pub(crate) fn put_scaled<T: Elem>(values: &[T], dst: &mut [u8], dtype: Dtype, factor: f64) {
    for (x, d) in values.iter().zip(dst.chunks_exact_mut(T::SIZE)) {
        let x = if factor == 1.0 {
            *x
        } else {
            x.scaled(dtype, factor)
        };
        x.put_le(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_rounds_the_float32_product() {
        // 1.5 in float16 times 1/3: float32 product 0.5, exact in float16 (0x3800).
        let x = f32_to_f16_bits(1.5);
        assert_eq!(x.scaled(Dtype::Float16, 1.0 / 3.0), 0x3800);
        let mut v = [x; 3];
        scale_in_place(&mut v, Dtype::Float16, 1.0);
        assert_eq!(v, [x; 3]);
    }
}
