"""Pictures of schedules and of the init_noise_sigma derivation (matplotlib, Agg backend).

Every value drawn comes from a ``Schedule`` or an ``Explanation``; the only curves computed
here are the formulas the explanation prints (sigma from alphas_cumprod, the flow shift).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DPI = 100
# Matplotlib's default colour cycle, named so a schedule keeps its colour in both panels.
COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
# x position of the init_noise_sigma markers, left of step 0.
INIT_X = -1.5


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_sigmas(alphas_cumprod: np.ndarray) -> np.ndarray:
    acp = np.asarray(alphas_cumprod, dtype=np.float64)
    return np.sqrt((1.0 - acp) / acp)


# ---- schedule --plot [--compare] ---------------------------------------------------------------


def plot_schedules(schedules: Sequence[Any], path: str) -> None:
    """Sigma against the step index (log scale) and the timesteps, one line per schedule, with
    each init_noise_sigma marked left of step 0 and the legend below the panels.

    Against the step index, schedules that share a training curve (Euler and LMS on SD's
    sigma table) still come apart where their spacing differs; alpha-space schedulers (DDIM,
    PNDM), which have no sigmas, are drawn at the training sigma of their timesteps (dashed).
    Each schedule has its own marker, drawn smaller than the ones before it, so a schedule
    equal to an earlier one stays visible on top of it (and says so in the legend)."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    fig, (ax_sigma, ax_time) = plt.subplots(
        1, 2, figsize=(13.0, 5.0), dpi=DPI, gridspec_kw={"width_ratios": [3, 2]}
    )
    count = len(schedules)
    longest = 1
    drawn: list[tuple[str, np.ndarray | None, np.ndarray]] = []
    for index, schedule in enumerate(schedules):
        color = COLORS[index % len(COLORS)]
        marker = MARKERS[index % len(MARKERS)]
        size = max(3.0, 7.0 - 1.2 * index)
        width = max(1.0, 2.6 - 0.5 * index)
        sigmas, derived = _sigmas_per_step(schedule)
        timesteps = np.asarray(schedule.timesteps, dtype=np.float64)
        label = f"{schedule.scheduler}: init_noise_sigma {schedule.init_noise_sigma:.6g}"
        if derived:
            label += " (no sigmas: training sigma at its timesteps)"
        same = next(
            (name for name, s, t in drawn if _same(s, sigmas) and _same(t, timesteps)), None
        )
        if same is not None:
            label += f" (same steps as {same})"
        drawn.append((schedule.scheduler, sigmas, timesteps))
        style = {
            "color": color,
            "marker": marker,
            "ms": size,
            "lw": width,
            "mec": "black",
            "mew": 0.3,
        }
        if sigmas is not None:
            steps = np.arange(len(sigmas))
            shown = sigmas > 0  # the final 0 has no place on a log axis
            line = "--" if derived else "-"
            ax_sigma.plot(steps[shown], sigmas[shown], ls=line, label=label, **style)
            longest = max(longest, len(sigmas))
        else:
            ax_sigma.plot([], [], label=label + " (no sigmas)", **style)
        # Side by side left of step 0, so equal and close values both show.
        x = INIT_X + 0.35 * (index - (count - 1) / 2)
        ax_sigma.plot(
            [x], [schedule.init_noise_sigma], "*", color=color, ms=13, mec="black", mew=0.5
        )
        ax_time.plot(np.arange(len(timesteps)), timesteps, **style)
        longest = max(longest, len(timesteps))
    ax_sigma.axvline(-0.5, color="0.75", lw=0.8)
    left = INIT_X - 0.35 * count / 2 - 0.6
    ax_sigma.set(
        title="sigma at each step (log scale; the final 0 is not drawn)",
        xlabel="step index",
        ylabel="sigma",
        yscale="log",
        xlim=(left, longest - 0.5),
    )
    ax_sigma.xaxis.set_major_locator(MaxNLocator(integer=True))
    ticks = [t for t in ax_sigma.get_xticks() if 0 <= t < longest]
    ax_sigma.set_xticks([INIT_X, *ticks], ["init\nnoise", *[f"{t:g}" for t in ticks]])
    ax_sigma.grid(True, which="major", alpha=0.3)
    ax_time.set(title="timestep fed to the model at each step", xlabel="step index")
    ax_time.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_time.grid(True, alpha=0.3)
    columns = 1 if count < 3 else 2
    rows = -(-count // columns)
    fig.legend(loc="lower center", ncol=columns, fontsize="small", frameon=False)
    fig.tight_layout(rect=(0.0, 0.02 + 0.045 * rows, 1.0, 1.0))
    fig.savefig(path)
    plt.close(fig)


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return a is not None and b is not None and a.shape == b.shape and bool(np.array_equal(a, b))


def _sigmas_per_step(schedule: Any) -> tuple[np.ndarray | None, bool]:
    """The schedule's sigmas, or for alpha-space schedules the training sigma at each of its
    timesteps (``True`` when derived so)."""
    if schedule.sigmas is not None:
        return np.asarray(schedule.sigmas, dtype=np.float64), False
    acp = getattr(schedule, "alphas_cumprod", None)
    if acp is None or not len(acp):
        return None, False
    table = training_sigmas(acp)
    index = np.clip(np.asarray(schedule.timesteps, dtype=np.int64), 0, len(table) - 1)
    return table[index], True


# ---- explain --plot ------------------------------------------------------------------------------


def plot_explanation(explanation: Any, path: str) -> None:
    """The derivation as ``sigmaserve explain`` prints it: DDPM-style presets get betas,
    alphas_cumprod and sigma over the training steps; flow-matching presets their shift."""
    if explanation.flow is not None:
        _plot_flow(explanation, path)
    else:
        _plot_derivation(explanation, path)


def _plot_derivation(explanation: Any, path: str) -> None:
    plt = _pyplot()
    fig, (ax_beta, ax_acp, ax_sigma) = plt.subplots(1, 3, figsize=(15.0, 4.6), dpi=DPI)
    betas = np.asarray(explanation.betas, dtype=np.float64)
    acp = np.asarray(explanation.alphas_cumprod, dtype=np.float64)
    sigmas = training_sigmas(acp)
    t = np.arange(len(betas))
    last = len(betas) - 1
    kind = explanation.schedule.config.get("beta_schedule", "")

    ax_beta.plot(t, betas, color="C0", lw=2)
    margin = 0.02 * last
    ax_beta.set(
        title=f"1. beta_t ({kind})",
        xlabel="training step t",
        ylabel="beta_t",
        xlim=(-margin, last + margin),
    )
    _note(ax_beta, f"beta_0 = {betas[0]:.6g}", (0, betas[0]), (0.08, 0.25))
    _note(ax_beta, f"beta_{last} = {betas[-1]:.6g}", (last, betas[-1]), (0.45, 0.85))

    ax_acp.plot(t, acp, color="C2", lw=2)
    ax_acp.set(
        title="2. alphas_cumprod_t = prod(1 - beta)",
        xlabel="training step t",
        ylabel="alphas_cumprod_t (log scale)",
        yscale="log",
        xlim=(-margin, last + margin),
    )
    _note(ax_acp, f"acp_{last} = {acp[-1]:.6g}", (last, acp[-1]), (0.35, 0.2))

    ax_sigma.plot(t, sigmas, color="0.35", lw=2, label="sigma_t = sqrt((1 - acp_t) / acp_t)")
    sigma_max = float(sigmas[-1])
    ax_sigma.axhline(sigma_max, color="C3", ls="--", lw=1)
    _note(
        ax_sigma,
        f"sigma_max = sigma_{last} = {sigma_max:.6g}\n= sqrt((1 - acp_{last}) / acp_{last})",
        (last, sigma_max),
        (0.03, 0.87),
        color="C3",
        weight="bold",
    )
    schedule = explanation.schedule
    x, y = _steps_on_training_curve(schedule, sigmas)
    ax_sigma.plot(
        x,
        y,
        "o",
        color="C1",
        ms=5,
        mec="black",
        mew=0.4,
        label=f"{schedule.scheduler}, {len(schedule.timesteps)} steps",
    )
    init = float(schedule.init_noise_sigma)
    if abs(init - sigma_max) > 1e-4 * sigma_max:
        ax_sigma.axhline(init, color="C1", ls=":", lw=1.2, label=f"its init_noise_sigma {init:.6g}")
    else:
        ax_sigma.plot([], [], " ", label=f"its init_noise_sigma {init:.6g} = sigma_max")
    ax_sigma.set(
        title="3. sigma_t over the training steps",
        xlabel="training step t",
        ylabel="sigma_t (log scale)",
        yscale="log",
        xlim=(-margin, last + margin),
        ylim=(sigmas[0] / 1.6, sigma_max * 12),
    )
    ax_sigma.legend(loc="lower right", fontsize="small")
    for ax in (ax_beta, ax_acp, ax_sigma):
        ax.grid(True, alpha=0.3)
    fig.suptitle(
        f"{explanation.preset}: where sigma_max = {sigma_max:.6g}, the init_noise_sigma of "
        "sigma-space schedulers, comes from",
        y=0.99,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _steps_on_training_curve(schedule: Any, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(timestep, sigma) of each step whose timestep lies on the training curve: the schedule's
    own sigma, or for alpha-space schedules the table's sigma at that timestep."""
    timesteps = np.asarray(schedule.timesteps, dtype=np.float64)
    if schedule.sigmas is not None:
        sigmas = np.asarray(schedule.sigmas, dtype=np.float64)[: len(timesteps)]
        timesteps = timesteps[: len(sigmas)]
    else:
        index = np.clip(timesteps.astype(np.int64), 0, len(table) - 1)
        sigmas = table[index]
    keep = (timesteps >= 0) & (timesteps <= len(table) - 1) & (sigmas > 0)
    return timesteps[keep], sigmas[keep]


def _plot_flow(explanation: Any, path: str) -> None:
    plt = _pyplot()
    fig, (ax_shift, ax_steps) = plt.subplots(1, 2, figsize=(13.0, 4.8), dpi=DPI)
    flow = explanation.flow
    schedule = explanation.schedule
    n = explanation.num_train_timesteps
    what = (
        f"mu = {flow.mu:.4g} (like shift {flow.shift:.4g})"
        if flow.mu is not None
        else f"shift = {flow.shift:g}"
    )

    sigma = np.linspace(1.0 / n, 1.0, 400)
    ax_shift.plot(sigma, sigma, "--", color="0.6", lw=1.2, label="no shift (shift = 1)")
    ax_shift.plot(sigma, flow.apply(sigma), color="C0", lw=2, label=f"shifted: {what}")
    shifted = np.asarray(schedule.sigmas, dtype=np.float64)
    shifted = shifted[(shifted > 0) & (shifted <= 1)]
    ax_shift.plot(
        flow.invert(shifted),
        shifted,
        "o",
        color="C1",
        ms=5,
        mec="black",
        mew=0.4,
        label=f"{schedule.scheduler}, {len(schedule.timesteps)} steps",
    )
    example = 0.5
    _note(
        ax_shift,
        f"sigma {example:g} -> {float(flow.apply(np.array(example))):.3g}",
        (example, float(flow.apply(np.array(example)))),
        (0.55, 0.3),
    )
    ax_shift.set(
        title="1. sigma(t): the shift moves the steps toward noise",
        xlabel=f"sigma before the shift (= t / {n})",
        ylabel="sigma the model sees",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    ax_shift.legend(loc="lower right", fontsize="small")

    plain = np.asarray(flow.unshifted.sigmas, dtype=np.float64)
    for values, color, label in (
        (np.asarray(schedule.sigmas, dtype=np.float64), "C1", f"with the shift ({what})"),
        (plain, "0.55", "without the shift"),
    ):
        steps = np.arange(len(values))
        shown = values > 0
        ax_steps.plot(steps[shown], values[shown], "o-", color=color, ms=3.5, label=label)
    init = float(schedule.init_noise_sigma)
    ax_steps.plot(
        [INIT_X],
        [init],
        "*",
        color="C1",
        ms=13,
        mec="black",
        mew=0.5,
        label=f"init_noise_sigma {init:.6g} (noise used as drawn)",
    )
    ax_steps.axvline(-0.5, color="0.75", lw=0.8)
    count = len(schedule.sigmas)
    ax_steps.set(
        title="2. sigma at each step (log scale; the final 0 is not drawn)",
        xlabel="step index",
        ylabel="sigma",
        yscale="log",
        xlim=(INIT_X - 1.0, count - 0.5),
    )
    ticks = [t for t in ax_steps.get_xticks() if 0 <= t < count]
    ax_steps.set_xticks([INIT_X, *ticks], ["init\nnoise", *[f"{t:g}" for t in ticks]])
    ax_steps.legend(loc="lower left", fontsize="small")
    for ax in (ax_shift, ax_steps):
        ax.grid(True, alpha=0.3)
    fig.suptitle(
        f"{explanation.preset}: flow matching, x_t = (1 - sigma) x_0 + sigma noise; "
        "no sigma_max beyond 1",
        y=0.99,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _note(
    ax: Any,
    text: str,
    point: tuple[float, float],
    where: tuple[float, float],
    color: str = "black",
    weight: str = "normal",
) -> None:
    """``text`` at axes fraction ``where`` with an arrow to the data ``point``."""
    ax.annotate(
        text,
        xy=point,
        xytext=where,
        textcoords="axes fraction",
        color=color,
        fontsize="small",
        fontweight=weight,
        arrowprops={"arrowstyle": "->", "color": color, "lw": 0.8},
    )
