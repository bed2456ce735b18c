"""``sigmaserve explain``: where init_noise_sigma (SD v1's famous 14.6146) comes from.

DDPM-style presets get the derivation from betas to sigma_max and each scheduler family's
initial scale; flow-matching presets (SD3, Flux) get their sigma(t) and the shift instead. Every
number is the library's (or the server's, with ``--target``); the formulas printed beside them
are only shown, the values come from the schedules.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sigmaserve.commands.options import add_target_arguments, noise_source

BETA_FORMULAS = {
    "scaled_linear": "betas = linspace(sqrt(beta_start), sqrt(beta_end), N) ** 2",
    "linear": "betas = linspace(beta_start, beta_end, N)",
    "squaredcos_cap_v2": "betas from the cosine alpha-bar (Nichol & Dhariwal), capped at 0.999",
    "sigmoid": "betas = sigmoid(linspace(-6, 6, N)) * (beta_end - beta_start) + beta_start",
}
# The scheduler whose steps a DDPM-style preset's explanation follows when none is named.
DEFAULT_VP_SCHEDULER = "EulerDiscreteScheduler"
# ComfyUI's full-denoise scale, sqrt(1 + sigma_max^2), as the library computes it.
COMFYUI_EXAMPLE = "comfyui:karras"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "explain",
        help="walk the derivation of init_noise_sigma with the actual numbers",
        description="Derive a model family's training sigmas and init_noise_sigma step by step "
        "(betas, alphas, their cumulative product, sigma = sqrt((1 - acp) / acp)), show the "
        "value each scheduler family starts from and where a scheduler's steps sit; for "
        "flow-matching presets (SD3, Flux), their sigma(t) and the shift.",
    )
    parser.add_argument("--preset", default="sd15", help="model family (default sd15)")
    parser.add_argument(
        "--scheduler",
        help="the scheduler whose steps are followed (default: EulerDiscreteScheduler, or the "
        "preset's own class for flow-matching presets); '<tool>:<name>' works too",
    )
    parser.add_argument("--steps", type=int, default=50, help="num_inference_steps (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample noise (default 0)")
    parser.add_argument(
        "--width",
        type=int,
        help="image width for a resolution-dependent shift (Flux, LTX; default: the pipeline's)",
    )
    parser.add_argument(
        "--height",
        type=int,
        help="image height for a resolution-dependent shift (default: the pipeline's)",
    )
    parser.add_argument(
        "--num-frames",
        type=int,
        help="video frames for a video preset's shift (default: the pipeline's)",
    )
    parser.add_argument(
        "--plot",
        metavar="PNG",
        help="draw betas, alphas_cumprod and sigma over the training steps with sigma_max and "
        "the scheduler's steps marked (flow matching: sigma(t) and the shift)",
    )
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with noise_source(args) as source:
        result = explain(
            args.preset,
            args.steps,
            args.seed,
            scheduler=args.scheduler,
            width=args.width,
            height=args.height,
            num_frames=args.num_frames,
            source=source,
        )
    sys.stdout.write(result.text)
    if args.plot:
        from sigmaserve.plots import plot_explanation

        plot_explanation(result, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


@dataclass(frozen=True)
class FlowShift:
    """How a flow-matching preset shifts its sigmas: ``shift`` (static) or ``mu`` (dynamic,
    ``sigma' = e^mu / (e^mu + 1/sigma - 1)``), and the same steps without it."""

    shift: float
    mu: float | None
    unshifted: Any  # Schedule of the same scheduler and steps without the shift

    def apply(self, sigma: np.ndarray) -> np.ndarray:
        """The shifted sigma of each unshifted ``sigma`` in (0, 1]."""
        sigma = np.asarray(sigma, dtype=np.float64)
        if self.mu is not None:
            growth = math.exp(self.mu)
            return growth / (growth + (1.0 / sigma - 1.0))
        return self.shift * sigma / (1.0 + (self.shift - 1.0) * sigma)

    def invert(self, shifted: np.ndarray) -> np.ndarray:
        """The unshifted sigma each ``shifted`` sigma in (0, 1] comes from."""
        shifted = np.asarray(shifted, dtype=np.float64)
        factor = math.exp(self.mu) if self.mu is not None else self.shift
        return shifted / (factor - (factor - 1.0) * shifted)


@dataclass(frozen=True)
class Explanation:
    """The text of ``sigmaserve explain`` and what its plot draws."""

    text: str
    preset: str
    schedule: Any  # the followed scheduler's Schedule
    num_train_timesteps: int
    betas: np.ndarray | None = None  # DDPM-style presets: the training arrays (float64)
    alphas_cumprod: np.ndarray | None = None
    flow: FlowShift | None = None  # flow-matching presets
    scales: dict[str, float] = field(default_factory=dict)

    @property
    def sigmas(self) -> np.ndarray | None:
        """The training sigmas, sqrt((1 - acp) / acp) (DDPM-style presets)."""
        if self.alphas_cumprod is None:
            return None
        return training_sigmas(self.alphas_cumprod)


def training_sigmas(alphas_cumprod: np.ndarray) -> np.ndarray:
    acp = np.asarray(alphas_cumprod, dtype=np.float64)
    return np.sqrt((1.0 - acp) / acp)


def explain(
    preset: str,
    steps: int,
    seed: int = 0,
    *,
    scheduler: str | None = None,
    width: int | None = None,
    height: int | None = None,
    num_frames: int | None = None,
    source: Any = None,
) -> Explanation:
    """The explanation for ``preset`` (any spelling the library takes); ``source`` is the
    ``sigmaserve`` module (default) or a ``sigmaserve.Client``."""
    if source is None:
        import sigmaserve as source
    from sigmaserve.catalog import resolve_name
    from sigmaserve.schedules import list_presets

    # The one resolver: "SD 1.5" is sd15, an unknown name names the nearest presets.
    preset = resolve_name("preset", preset)
    info = list_presets()[preset]
    if info["model"] == "flow_match":
        size = {"width": width, "height": height, "num_frames": num_frames}
        return _explain_flow(source, preset, info, steps, seed, scheduler, size)
    return _explain_vp(source, preset, info, steps, seed, scheduler or DEFAULT_VP_SCHEDULER)


def _explain_vp(
    source: Any, preset: str, info: dict[str, Any], steps: int, seed: int, scheduler: str
) -> Explanation:
    def schedule(name: str, **overrides: Any) -> Any:
        return source.get_schedule(name, steps, preset=preset, **overrides)

    linspace = schedule("EulerDiscreteScheduler", timestep_spacing="linspace")
    leading = schedule("EulerDiscreteScheduler", timestep_spacing="leading")
    ddim = schedule("DDIMScheduler")
    comfy = schedule(COMFYUI_EXAMPLE)
    chosen = schedule(scheduler)
    config = linspace.config
    betas = np.asarray(linspace.betas, dtype=np.float64)
    acp = np.asarray(linspace.alphas_cumprod, dtype=np.float64)
    sigmas = training_sigmas(acp)
    n = len(betas)
    kind = str(config.get("beta_schedule"))
    sigma_max = float(sigmas[-1])
    lead_t, lead_sigma = float(leading.timesteps[0]), float(leading.sigmas[0])
    out = [
        f"Preset {preset} ({info['repo']}): a DDPM-style model, {n} training steps, "
        f"beta_schedule={kind}, beta_start={config.get('beta_start')}, "
        f"beta_end={config.get('beta_end')}",
        "",
        f"1. {BETA_FORMULAS.get(kind, 'betas as configured')}",
        f"   betas[0] = {betas[0]:.6g}, betas[{n - 1}] = {betas[-1]:.6g}",
        "2. alphas = 1 - betas; alphas_cumprod (acp) = cumprod(alphas), the signal fraction left",
        f"   acp[0] = {acp[0]:.6g}, acp[{n - 1}] = {acp[-1]:.6g}",
        "3. sigma_t = sqrt((1 - acp_t) / acp_t), the noise-to-signal ratio at step t",
        f"   sigma_0 = {sigmas[0]:.6g}, sigma_{n - 1} = sqrt((1 - {acp[-1]:.6g}) / "
        f"{acp[-1]:.6g}) = {sigma_max:.6g}  <- sigma_max",
        f"4. Sampling walks this table backwards. {_steps_line(chosen, sigmas)}",
        "5. init_noise_sigma, the factor unit Gaussian noise is scaled by before the first step:",
        f"   - sigma space, linspace or trailing spacing (first timestep "
        f"{_number(linspace.timesteps[0])}): sigma_max itself = {linspace.init_noise_sigma:.6g}",
        f"   - sigma space, leading spacing (first timestep {_number(lead_t)}): "
        f"sqrt(sigma_{_number(lead_t)}^2 + 1) = sqrt({lead_sigma:.6g}^2 + 1) = "
        f"{leading.init_noise_sigma:.6g}",
        "   - alpha space (DDIM, DDPM, PNDM, DPM-Solver, UniPC ...; x_T ~ N(0, 1)): "
        f"DDIMScheduler: {ddim.init_noise_sigma:.6g}",
        f"   - ComfyUI at full denoise ({COMFYUI_EXAMPLE}): sqrt(1 + sigma_max^2) = "
        f"{comfy.init_noise_sigma:.6g}",
        f"   {chosen.scheduler}, {steps} steps here: {chosen.init_noise_sigma:.6g}",
    ]
    scales = {
        "1 (alpha space)": 1.0,
        "sigma_max": sigma_max,
        "sqrt(1 + sigma_max^2)": float(comfy.init_noise_sigma),
    }
    out += [
        "6. What another initial scale does: the sampler treats its input as "
        "x_0 + sigma_max * noise.",
        "   Scaled by 1.0 the latent is far too quiet for sigma_max, so the first steps remove "
        "noise",
        "   that is not there and images come out flat and washed out; scaled by more, residual",
        "   noise survives to the end. Measured on the seed's noise:",
        *_measured(source, seed, scales),
        *[f"warning: {w}" for w in chosen.warnings],
    ]
    return Explanation(
        text="\n".join(out) + "\n",
        preset=preset,
        schedule=chosen,
        num_train_timesteps=n,
        betas=betas,
        alphas_cumprod=acp,
        scales=scales,
    )


def _explain_flow(
    source: Any,
    preset: str,
    info: dict[str, Any],
    steps: int,
    seed: int,
    scheduler: str | None,
    size: dict[str, int | None],
) -> Explanation:
    from sigmaserve.schedules import pipeline_call

    # What the preset's pipeline passes to set_timesteps, and the numbers it derives them from
    # (the core's conventions); the schedules themselves come from the source.
    call = pipeline_call(
        preset,
        scheduler,
        steps,
        width=size["width"],
        height=size["height"],
        num_frames=size["num_frames"],
    )
    shifted = source.get_schedule(scheduler, steps, preset=preset, **size)
    name = shifted.scheduler
    config = shifted.config
    n = int(config.get("num_train_timesteps", 1000))
    at = f"{call['width']}x{call['height']}" + (
        f", {call['num_frames']} frames" if call["num_frames"] is not None else ""
    )
    out = [
        f"Preset {preset} ({info['repo']}): flow matching (rectified flow), "
        f"{info['pipeline']} with {name}, {n} training steps, {at}",
        "",
        "No betas and no sigma_max = 14.6146 here: the model is trained on",
        "x_t = (1 - sigma_t) * x_0 + sigma_t * noise with sigma_t in [0, 1], so sigma = 1 is "
        "pure noise.",
        f"1. Training sigmas: sigma_t = t / {n} for t = 1 ... {n}; the model is fed the "
        f"timestep sigma * {n}.",
    ]
    bare: dict[str, Any] = {"preset": preset, "pipeline": False, **size}
    if call["sigmas"] is not None:
        bare["sigmas"] = call["sigmas"]
    if config.get("shift_terminal"):
        bare["shift_terminal"] = None  # unshifted means unstretched too
    # The pipeline computes mu whenever its convention does (FluxPipeline always); the scheduler
    # uses it only with use_dynamic_shifting, else its static shift.
    dynamic = call["shift"] if config.get("use_dynamic_shifting") else None
    if dynamic is not None:
        mu = float(dynamic["mu"])
        plain = source.get_schedule(name, call["num_inference_steps"], mu=0.0, **bare)
        shift = FlowShift(shift=math.exp(mu), mu=mu, unshifted=plain)
        out += _dynamic_shift_lines(dynamic, at)
    else:
        key = "flow_shift" if config.get("use_flow_sigmas") else "shift"
        factor = float(config.get(key, 1.0))
        plain = source.get_schedule(name, call["num_inference_steps"], **{key: 1.0}, **bare)
        shift = FlowShift(shift=factor, mu=None, unshifted=plain)
        examples = ", ".join(
            f"{s:g} -> {float(shift.apply(np.array(s))):.3g}" for s in (0.5, 0.25, 0.1)
        )
        out += [
            "2. The shift spends more of the steps at high noise (what large images need):",
            f"   sigma' = shift * sigma / (1 + (shift - 1) * sigma), {key} = {factor:g}: "
            f"{examples}",
        ]
    terminal = config.get("shift_terminal")
    if terminal:
        out.append(
            f"   Then the shifted sigmas are stretched so that the last one is shift_terminal = "
            f"{terminal:g} (FlowMatchEulerDiscreteScheduler.stretch_shift_to_terminal)."
        )
    passed = (
        f"{call['pipeline']} passes its own sigmas ({_span(call['sigmas'])}) to set_timesteps"
        if call["sigmas"] is not None
        else f"the scheduler's own spacing (the pipeline passes no sigmas to {name})"
    )
    out += [
        f"3. {_steps_line(shifted, None)}",
        f"   Without the shift the same steps would run {_span(plain.sigmas)}: {passed}.",
        f"4. init_noise_sigma = {shifted.init_noise_sigma:.6g}: the first step's input is the "
        f"unit noise itself; {call['pipeline']} never scales it.",
        "5. Measured on the seed's noise:",
        *_measured(source, seed, {"1": float(shifted.init_noise_sigma)}),
        *[f"warning: {w}" for w in shifted.warnings],
    ]
    return Explanation(
        text="\n".join(out) + "\n",
        preset=preset,
        schedule=shifted,
        num_train_timesteps=n,
        flow=shift,
        scales={"1": float(shifted.init_noise_sigma)},
    )


def _dynamic_shift_lines(shift: dict[str, Any], at: str) -> list[str]:
    """How the pipeline's calculate_shift got mu (the core's numbers)."""
    mu, tokens = float(shift["mu"]), int(shift["image_seq_len"])
    base, top = shift["base_shift"], shift["max_shift"]
    low, high = shift["base_image_seq_len"], shift["max_image_seq_len"]
    return [
        "2. The shift spends more of the steps at high noise, more so for larger images:",
        "   sigma' = e^mu / (e^mu + 1/sigma - 1), mu from the latents' token count "
        "(the pipeline's calculate_shift):",
        f"   {at} -> {tokens} tokens; "
        f"mu = {base:g} + ({top:g} - {base:g}) * ({tokens} - {low:g}) / ({high:g} - {low:g}) = "
        f"{mu:.6g}",
        f"   (like a static shift of e^mu = {math.exp(mu):.4g})",
    ]


def _measured(source: Any, seed: int, scales: dict[str, float]) -> list[str]:
    unit = source.sample_init_latents(shape=(1, 4, 64, 64), seeds=seed, preset=None).array
    return [
        f"   x{value:<10.6g} ({name}): std {float(np.std(unit * value)):.5g}"
        for name, value in scales.items()
    ]


def _steps_line(schedule: Any, training: np.ndarray | None) -> str:
    """Where a schedule's steps go: timesteps and sigmas, first to last."""
    timesteps = np.asarray(schedule.timesteps)
    spacing = schedule.config.get("timestep_spacing")
    head = f"{schedule.scheduler}, {len(timesteps)} steps" + (
        f" (timestep_spacing {spacing})" if spacing else ""
    )
    walk = f"feeds the model timesteps {_number(timesteps[0])} ... {_number(timesteps[-1])}"
    if schedule.sigmas is not None:
        return f"{head} {walk} at sigmas {_span(schedule.sigmas)}."
    if training is not None:
        at = training[np.clip(timesteps.astype(np.int64), 0, len(training) - 1)]
        return (
            f"{head} {walk} (alpha space: no sigmas; the table gives {at[0]:.6g} ... "
            f"{at[-1]:.6g} there)."
        )
    return f"{head} {walk}."


def _span(sigmas: Any) -> str:
    values = np.asarray(sigmas, dtype=np.float64)
    if len(values) > 1 and values[-1] == 0:
        return f"{values[0]:.6g} ... {values[-2]:.6g}, then 0"
    return f"{values[0]:.6g} ... {values[-1]:.6g}"


def _number(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:.6g}"
