//! The img2img truncation pipelines apply for a `strength`.

use super::catalog::Family;
use super::classes::SchedulerClass;
use super::{Built, Img2Img};

/// `t_start` and the start timestep as the diffusers pipelines compute them.
///
/// SD / SD2 / SDXL img2img (every scheduler outside the flow-matching family): `init =
/// min(int(n * strength), n)`, `t_start = max(n - init, 0)`. SD3 / Flux img2img (the
/// flow-matching family): `t_start = int(max(n - n * strength, 0))`, effectively one more step
/// whenever `n * strength` is fractional.
// diffusers 0.42.1 pipelines/stable_diffusion/pipeline_stable_diffusion_img2img.py: get_timesteps;
// pipelines/stable_diffusion_3/pipeline_stable_diffusion_3_img2img.py: get_timesteps.
pub(crate) fn truncate(
    class: SchedulerClass,
    built: &Built,
    requested_steps: Option<usize>,
    strength: f64,
    order: usize,
) -> Img2Img {
    let n = requested_steps.unwrap_or(built.num_inference_steps);
    let t_start = match class.family() {
        Family::FlowMatch => {
            let nf = n as f64;
            (nf - nf * strength).max(0.0) as usize
        }
        _ => {
            let init = ((n as f64 * strength) as usize).min(n);
            n.saturating_sub(init)
        }
    };
    let total = built.timesteps.len();
    // Unclamped, as the pipeline passes it to set_begin_index (it can exceed the length when
    // strength is 0 for a second-order scheduler).
    let begin_index = t_start * order;
    Img2Img {
        strength,
        begin_index,
        num_timesteps: total.saturating_sub(begin_index),
        start_timestep: built.timesteps.get_f64(begin_index),
    }
}
