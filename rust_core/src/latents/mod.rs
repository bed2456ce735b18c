//! Seeded initial latents: the one request type every entry point builds (Python keyword
//! arguments, the gRPC message, the Open Inference Protocol facade), and the three ways of
//! producing its payload: a typed buffer ([`LatentsRequest::fill`]), the little-endian bytes of a
//! reply written in place ([`LatentsRequest::write_payload`]), and a stream of pieces with
//! bounded memory ([`PayloadStream`]). All three give the same values: the seed policy's noise
//! multiplied by the scale factor with torch's arithmetic.

mod layout;
mod options;
mod payload;
mod request;
mod scale;
mod stream;

pub use options::{gpu_spec, NoiseOptions, OptionValue, NOISE_OPTION_KEYS};
pub use payload::SMALL_ELEMENTS;
pub use request::{check_sigma, LatentsArgs, LatentsRequest, PresetArg, DEFAULT_STEPS};
pub use scale::scale_noise;
pub use stream::PayloadStream;

#[cfg(test)]
mod tests;
