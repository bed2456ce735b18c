//! Output element types and the buffers that hold generated noise.

use crate::error::{CoreError, Result};

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
        match name {
            "float32" | "float" => Ok(Dtype::Float32),
            "float64" | "double" => Ok(Dtype::Float64),
            "float16" | "half" => Ok(Dtype::Float16),
            "bfloat16" => Ok(Dtype::BFloat16),
            other => Err(CoreError::invalid(
                "dtype",
                format!(
                    "unknown dtype {other:?}; expected one of \"float32\", \"float64\", \"float16\", \"bfloat16\""
                ),
            )),
        }
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
