//! RFD4ProteinaScheduler (RFdiffusion-style protein backbones with Proteina's sampler): times
//! ascend from ~0 (noise) to 1 (data) on a power or log grid, optionally refined near the data
//! end (`tail_steps`), optionally starting part-way (`start_time`). Float32 timesteps, no
//! sigmas, no `init_noise_sigma`.

use super::primitives::{r32, torch_linspace_f32};
use super::{reject_extras, required_steps, Built, FloatArray, Request, Timesteps};
use crate::error::{CoreError, Result};

/// The `start` upstream passes to its grid.
const GRID_START: f64 = 0.001;
/// The longest grid accepted (`start_time` densifies the grid a hundredfold).
const MAX_GRID: usize = 10_000_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Power,
    Log,
}

/// The grid of `set_timesteps`: its mode and tail refinement.
#[derive(Clone, Copy)]
struct GridSpec {
    mode: Mode,
    tail_steps: usize,
    tail_multiplier: usize,
}

/// Builds the schedule of RFD4Proteina.
// diffusers 0.42.1 schedulers/scheduling_rfd4_proteina.py: _schedule, set_timesteps.
pub(crate) fn build(req: Request<'_>, _warnings: &mut [String]) -> Result<Built> {
    reject_extras(req.class, req.extras, &["start_time"])?;
    let n = required_steps(req.steps)?;
    let cfg = &*req.cfg;
    let spec = GridSpec {
        mode: if cfg.text("schedule_mode")? == "power" {
            Mode::Power
        } else {
            Mode::Log
        },
        tail_steps: cfg.count("tail_steps")?,
        tail_multiplier: cfg.count("tail_step_multiplier")?,
    };
    let times = match req.extras.start_time {
        None => grid(spec, n)?,
        Some(start) => partial(spec, n, start)?,
    };
    let timesteps = times[..times.len().saturating_sub(1)].to_vec();
    Ok(Built {
        timesteps: Timesteps::F32(timesteps),
        sigmas: None,
        init_noise_sigma: 1.0,
        betas: FloatArray::default(),
        alphas_cumprod: FloatArray::default(),
        num_inference_steps: n,
    })
}

/// `steps + 1` times; with a tail, a grid `tail_multiplier` times finer whose first part is
/// subsampled back to the coarse spacing.
fn grid(spec: GridSpec, steps: usize) -> Result<Vec<f32>> {
    if steps > MAX_GRID {
        return Err(CoreError::too_large(
            "num_inference_steps",
            format!("the grid would have {steps} points (at most {MAX_GRID})"),
        ));
    }
    if spec.tail_steps == 0 {
        return Ok(base_grid(spec.mode, steps));
    }
    let m = spec.tail_multiplier;
    if m < 2 {
        return Err(CoreError::invalid(
            "tail_step_multiplier",
            "must be an integer >= 2",
        ));
    }
    let tail = spec.tail_steps;
    let base = (steps + tail).checked_sub(m * tail).filter(|&b| b >= tail);
    let Some(base) = base else {
        return Err(CoreError::invalid(
            "num_inference_steps",
            format!(
                "must be at least tail_steps * tail_step_multiplier = {}",
                tail * m
            ),
        ));
    };
    let fine = grid(
        GridSpec {
            tail_steps: 0,
            ..spec
        },
        base * m,
    )?;
    let tail_start = (base - tail) * m;
    Ok((0..tail_start)
        .step_by(m)
        .chain(tail_start..fine.len())
        .map(|i| fine[i])
        .collect())
}

/// `linspace(sqrt(start), 1, steps + 1) ** 2` (power) or `1 - flip(logspace(-2, start, steps +
/// 1))` moved to start at `start` and divided by its maximum (log); float32.
fn base_grid(mode: Mode, steps: usize) -> Vec<f32> {
    match mode {
        Mode::Power => torch_linspace_f32(GRID_START.sqrt(), 1.0, steps + 1)
            .into_iter()
            .map(|x| x * x)
            .collect(),
        Mode::Log => {
            let mut times: Vec<f32> = torch_logspace_f32(-2.0, GRID_START, steps + 1)
                .into_iter()
                .rev()
                .map(|x| 1.0 - x)
                .collect();
            let min = times.iter().copied().fold(f32::INFINITY, f32::min);
            let offset = min - r32(GRID_START);
            for t in &mut times {
                *t -= offset;
            }
            let max = times.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            times.iter().map(|&t| t / max).collect()
        }
    }
}

/// `torch.logspace(start, end, steps)` (base 10, float32) on CPU: the exponent difference in
/// float32, the step and exponents in float64 from both ends, `pow` in float64, rounded once.
// torch 2.13 aten/src/ATen/native/RangeFactories.cpp: logspace_out (checked against torch).
fn torch_logspace_f32(start: f64, end: f64, steps: usize) -> Vec<f32> {
    let (s, e) = (r32(start), r32(end));
    if steps == 1 {
        return vec![r32(10f64.powf(f64::from(s)))];
    }
    let step = f64::from(e - s) / (steps - 1) as f64;
    let half = steps / 2;
    (0..steps)
        .map(|i| {
            let exponent = if i < half {
                f64::from(s) + step * i as f64
            } else {
                f64::from(e) - step * (steps - i - 1) as f64
            };
            r32(10f64.powf(exponent))
        })
        .collect()
}

/// `start_time`: find where a grid a hundredfold denser reaches `start_time`, scale the step
/// count so that `n` steps remain from there, and keep the last `n + 1` times.
fn partial(spec: GridSpec, n: usize, start_time: f64) -> Result<Vec<f32>> {
    if !(0.0..1.0).contains(&start_time) {
        return Err(CoreError::invalid(
            "start_time",
            format!("must be in [0, 1), got {start_time}"),
        ));
    }
    let dense = (n.saturating_mul(100)).max(1000);
    let threshold = r32(start_time - 1e-6);
    let first = grid(spec, dense)?
        .iter()
        .position(|&t| t >= threshold)
        .unwrap_or(dense);
    let points_above = (dense - first).max(1);
    let steps = (n as f64 * dense as f64 / points_above as f64).round_ties_even() as usize;
    let full = grid(spec, steps)?;
    Ok(full[full.len().saturating_sub(n + 1)..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_ascend_to_one() {
        for mode in [Mode::Power, Mode::Log] {
            let g = base_grid(mode, 20);
            assert_eq!(g.len(), 21);
            assert!(g.windows(2).all(|w| w[1] > w[0]));
            assert_eq!(g[20], 1.0);
            // Power starts at `start`; log at `start / max` before the division (~1.007e-3).
            assert!((f64::from(g[0]) - GRID_START).abs() < 1e-5);
        }
        let spec = GridSpec {
            mode: Mode::Power,
            tail_steps: 10,
            tail_multiplier: 2,
        };
        assert_eq!(grid(spec, 30).expect("valid").len(), 31);
        assert!(grid(spec, 19).is_err());
    }
}
