"""Pictures of schedules and of initial-noise statistics (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

FIGSIZE = (12.0, 3.6)
DPI = 100


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_sigmas(alphas_cumprod: np.ndarray) -> np.ndarray:
    acp = np.asarray(alphas_cumprod, dtype=np.float64)
    return np.sqrt((1.0 - acp) / acp)


def plot_schedules(schedules: Sequence[Any], path: str) -> None:
    """Three panels: training betas, alphas_cumprod and sigmas, with each schedule's inference
    sigmas marked at the timesteps it feeds the model."""
    plt = _pyplot()
    base = schedules[0]
    fig, (ax_beta, ax_acp, ax_sigma) = plt.subplots(1, 3, figsize=FIGSIZE, dpi=DPI)
    betas = np.asarray(base.betas)
    acp = np.asarray(base.alphas_cumprod)
    if len(betas):
        ax_beta.plot(betas)
        ax_acp.plot(acp)
        ax_sigma.plot(training_sigmas(acp), color="0.6", label="training sigmas")
    else:
        for ax in (ax_beta, ax_acp):
            ax.text(0.5, 0.5, "no training betas", ha="center", transform=ax.transAxes)
    ax_beta.set(title=f"betas ({base.config.get('beta_schedule', '')})", xlabel="timestep")
    ax_acp.set(title="alphas_cumprod", xlabel="timestep")
    for schedule in schedules:
        _mark_inference(ax_sigma, schedule)
    ax_sigma.set(title="sigmas", xlabel="timestep", yscale="log")
    ax_sigma.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _mark_inference(ax: Any, schedule: Any) -> None:
    if schedule.sigmas is None:
        return
    sigmas = np.asarray(schedule.sigmas, dtype=np.float64)
    timesteps = np.asarray(schedule.timesteps, dtype=np.float64)
    count = min(len(sigmas), len(timesteps))
    positive = sigmas[:count] > 0
    label = f"{schedule.scheduler} ({len(timesteps)} steps)"
    ax.plot(timesteps[:count][positive], sigmas[:count][positive], "o-", ms=3, label=label)


def plot_noise_statistics(scales: dict[str, float], noise: np.ndarray, path: str) -> None:
    """Histogram of the initial latents scaled by each factor, against the sigma the sampler
    assumes (a Gaussian of that standard deviation)."""
    plt = _pyplot()
    fig, (ax_hist, ax_std) = plt.subplots(1, 2, figsize=FIGSIZE, dpi=DPI)
    flat = noise.reshape(-1).astype(np.float64)
    names = list(scales)
    for name in names:
        values = flat * scales[name]
        ax_hist.hist(
            values, bins=120, histtype="step", density=True, label=f"{name}: x{scales[name]:.4g}"
        )
    ax_hist.set(title="initial latent values", xlabel="value", ylabel="density", yscale="log")
    ax_hist.legend(fontsize="small")
    stds = [float(np.std(flat * scales[n])) for n in names]
    ax_std.bar(range(len(names)), stds, tick_label=names)
    ax_std.set(title="standard deviation of the initial latents", ylabel="std")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
