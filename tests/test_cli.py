"""The command line as a user runs it: output formats, plots, explain, bulk sampling."""

from __future__ import annotations

import csv
import io
import json
import struct
import subprocess
import sys

import numpy as np
import pytest
import sigmaserve
import torch
from conftest import SD15_SCHEDULER_CONFIG
from diffusers import DDIMScheduler, EulerDiscreteScheduler, LMSDiscreteScheduler
from sigmaserve.cli import main


def run_cli(capsys, *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("command", ["serve", "schedule", "explain", "sample"])
def test_every_command_has_help(command):
    proc = subprocess.run(
        [sys.executable, "-m", "sigmaserve", command, "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "usage: sigmaserve" in proc.stdout
    assert "--" in proc.stdout


def test_every_option_is_explained():
    import argparse

    from sigmaserve.cli import build_parser

    missing = []
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += [
                    f"{name} {opt.option_strings or opt.dest}"
                    for opt in sub._actions
                    if not opt.help and not isinstance(opt, argparse._HelpAction)
                ]
    assert missing == []


def test_schedule_csv_equals_diffusers(capsys):
    out = run_cli(capsys, "schedule", "EulerDiscreteScheduler", "--steps", "20", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    reference = EulerDiscreteScheduler.from_config(SD15_SCHEDULER_CONFIG)
    reference.set_timesteps(20)
    sigmas = reference.sigmas.numpy()
    assert len(rows) == len(sigmas)
    assert [float(r["sigma"]) for r in rows] == pytest.approx(sigmas.tolist(), rel=2e-7)
    timesteps = [float(r["timestep"]) for r in rows if r["timestep"]]
    assert timesteps == reference.timesteps.numpy().tolist()


def test_schedule_json_and_overrides(capsys):
    out = run_cli(
        capsys,
        "schedule",
        "EulerDiscreteScheduler",
        "--steps",
        "10",
        "--format",
        "json",
        "--set",
        "use_karras_sigmas=true",
        "--set",
        "timestep_spacing=trailing",
    )
    data = json.loads(out)
    local = sigmaserve.get_schedule(
        "EulerDiscreteScheduler", 10, use_karras_sigmas=True, timestep_spacing="trailing"
    )
    assert data == json.loads(json.dumps(local.to_dict()))


def test_schedule_table_names_init_noise_sigma(capsys):
    out = run_cli(capsys, "schedule", "LMSDiscreteScheduler", "--steps", "5")
    reference = LMSDiscreteScheduler.from_config(SD15_SCHEDULER_CONFIG)
    reference.set_timesteps(5)
    assert f"init_noise_sigma {float(reference.init_noise_sigma):.6g}" in out
    assert len(out.strip().splitlines()) == 2 + 6


# Matplotlib's default colours, as the plots use them.
C0, C1, C2, C3 = (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)


def colour_pixels(path, colour, box=(0.0, 0.0, 1.0, 1.0)) -> int:
    """Pixels within a few levels of ``colour`` inside ``box`` (fractions of width/height)."""
    from PIL import Image

    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    h, w, _ = image.shape
    x0, y0, x1, y1 = box
    part = image[int(y0 * h) : int(y1 * h), int(x0 * w) : int(x1 * w)]
    return int((np.abs(part - np.array(colour)).max(axis=2) <= 12).sum())


def test_schedule_plot_and_compare(tmp_path, capsys):
    png = tmp_path / "s.png"
    run_cli(
        capsys,
        "schedule",
        "EulerDiscreteScheduler",
        "--steps",
        "12",
        "--plot",
        str(png),
        "--compare",
        "DDIMScheduler",
        "comfyui:karras",
    )
    assert png_size(png) == (1300, 500)
    # Every schedule is drawn in both panels (above the legend band) and named in the legend,
    # which sits below the panels, off the data.
    for colour in (C0, C1, C2):
        assert colour_pixels(png, colour, (0.0, 0.0, 0.6, 0.8)) > 50, colour
        assert colour_pixels(png, colour, (0.6, 0.0, 1.0, 0.8)) > 50, colour
        assert colour_pixels(png, colour, (0.0, 0.85, 1.0, 1.0)) > 10, colour


def test_schedule_plot_of_flow_matching_has_no_empty_panel(tmp_path, capsys):
    png = tmp_path / "sd3.png"
    run_cli(
        capsys,
        "schedule",
        "FlowMatchEulerDiscreteScheduler",
        "--preset",
        "sd3",
        "--steps",
        "10",
        "--plot",
        str(png),
        "--compare",
        "comfyui:simple",
    )
    for colour in (C0, C1):
        assert colour_pixels(png, colour, (0.0, 0.0, 0.6, 0.8)) > 50, colour
        assert colour_pixels(png, colour, (0.6, 0.0, 1.0, 0.8)) > 50, colour


def test_explain_walks_the_real_numbers(tmp_path, capsys):
    png = tmp_path / "derivation.png"
    out = run_cli(capsys, "explain", "--preset", "sd15", "--plot", str(png))
    lms = LMSDiscreteScheduler.from_config(SD15_SCHEDULER_CONFIG)
    lms.set_timesteps(50)
    euler = EulerDiscreteScheduler.from_config(
        {**SD15_SCHEDULER_CONFIG, "timestep_spacing": "leading"}
    )
    euler.set_timesteps(50)
    ddim = DDIMScheduler.from_config(SD15_SCHEDULER_CONFIG)
    ddim.set_timesteps(50)
    assert f"{float(lms.init_noise_sigma):.6g}" == "14.6146"
    assert "= 14.6146  <- sigma_max" in out
    assert f"= {float(euler.init_noise_sigma):.6g}" in out
    assert f"DDIMScheduler: {float(ddim.init_noise_sigma):.6g}" in out
    acp = lms.alphas_cumprod.numpy()
    assert f"acp[999] = {float(acp[-1]):.6g}" in out
    # ComfyUI's full-denoise scale, sqrt(1 + sigma_max^2), from the library's comfyui schedule.
    assert "sqrt(1 + sigma_max^2) = 14.6488" in out
    assert png_size(png) == (1500, 460)
    # sigma_max marked in red and the scheduler's steps in orange on the sigma panel.
    assert colour_pixels(png, C3, (0.66, 0.0, 1.0, 1.0)) > 100
    assert colour_pixels(png, C1, (0.66, 0.0, 1.0, 1.0)) > 200


def test_explain_of_sdxl_uses_its_leading_spacing(capsys):
    out = run_cli(capsys, "explain", "--preset", "sdxl", "--steps", "30")
    config = sigmaserve.list_presets()["sdxl"]["config"]
    euler = EulerDiscreteScheduler.from_config(config)  # SDXL's own: leading spacing
    euler.set_timesteps(30)
    assert f"EulerDiscreteScheduler, 30 steps here: {float(euler.init_noise_sigma):.6g}" in out
    assert "timestep_spacing leading" in out


@pytest.mark.parametrize("preset", ["sd3", "flux-dev", "flux-schnell"])
def test_explain_of_flow_matching_explains_the_shift(preset, tmp_path, capsys):
    png = tmp_path / f"{preset}.png"
    out = run_cli(capsys, "explain", "--preset", preset, "--steps", "28", "--plot", str(png))
    assert "157.407" not in out and "betas[" not in out  # no DDPM derivation
    assert "init_noise_sigma = 1:" in out
    assert "sigma' =" in out
    assert png_size(png) == (1300, 480)
    assert colour_pixels(png, C1) > 200  # the steps
    if preset == "flux-dev":
        from diffusers.pipelines.flux.pipeline_flux import calculate_shift

        # 1024x1024: 4096 tokens of 2x2 patches; mu as FluxPipeline computes it.
        mu = calculate_shift(4096, 256, 4096, 0.5, 1.15)
        assert f"= {mu:.6g}" in out


@pytest.mark.parametrize("preset", ["flux-dev", "wan2.1", "hunyuan-video", "mochi"])
def test_flow_shift_of_every_pipeline_is_its_schedules(preset):
    """The shift explain shows turns the unshifted steps into the pipeline's schedule (Wan's
    flow_shift on UniPC, HunyuanVideo's own sigmas shifted by 7, Flux's mu)."""
    from sigmaserve.commands.explain import explain

    result = explain(preset, 9)
    assert result.flow is not None
    assert np.array_equal(
        result.schedule.sigmas, sigmaserve.get_schedule(None, 9, preset=preset).sigmas
    )
    plain = np.asarray(result.flow.unshifted.sigmas[:-1], dtype=np.float64)
    np.testing.assert_allclose(result.flow.apply(plain), result.schedule.sigmas[:-1], rtol=2e-6)


def test_flow_shift_drawn_is_the_librarys():
    """The shift curve explain draws maps the unshifted steps onto the library's shifted ones."""
    from sigmaserve.commands.explain import explain

    for preset, extra in (("sd3", {"fix_quirks": True}), ("flux-dev", {})):
        result = explain(preset, 12)
        flow = result.flow
        assert flow is not None
        plain = np.asarray(flow.unshifted.sigmas[:-1], dtype=np.float64)
        shifted = (
            sigmaserve.get_schedule(
                "FlowMatchEulerDiscreteScheduler", 12, preset=preset, mu=flow.mu, **extra
            )
            if flow.mu is not None
            else sigmaserve.get_schedule(
                "FlowMatchEulerDiscreteScheduler", 12, preset=preset, **extra
            )
        )
        np.testing.assert_allclose(flow.apply(plain), shifted.sigmas[:-1], rtol=2e-6)
        np.testing.assert_allclose(flow.invert(flow.apply(plain)), plain, rtol=1e-9)


@pytest.mark.parametrize(
    ("flags", "kwargs"),
    [
        (["--preset", "flux-dev", "--width", "512", "--height", "768"],
         {"width": 512, "height": 768}),
        (["--preset", "wan2.1", "--num-frames", "33"], {"num_frames": 33}),
        (["--preset", "sd3", "--bare"], {"pipeline": False}),
    ],
)  # fmt: skip
def test_schedule_at_the_pipeline_level_is_the_librarys(flags, kwargs, capsys):
    """``schedule`` passes the size, frames and --bare on to the library unchanged (the
    library's pipeline-level schedules are checked against the pipelines in test_pipelines)."""
    preset = flags[1]
    data = json.loads(run_cli(capsys, "schedule", "--steps", "7", *flags, "--format", "json"))
    want = sigmaserve.get_schedule(None, 7, preset=preset, **kwargs)
    assert data["scheduler"] == want.scheduler
    assert data["sigmas"] == np.asarray(want.sigmas, dtype=np.float64).tolist()
    assert data["timesteps"] == np.asarray(want.timesteps).tolist()


def test_sample_of_a_video_preset_is_the_librarys(tmp_path, capsys):
    out = tmp_path / "video.npy"
    argv = ["sample", "--seeds", "3,4", "--preset", "Wan 2.1", "--width", "64", "--height", "32",
            "--num-frames", "9", "--dtype", "half", "--out", str(out), "--no-progress"]  # fmt: skip
    run_cli(capsys, *argv)
    want = sigmaserve.sample_init_latents(
        preset="wan2.1", width=64, height=32, num_frames=9, seeds=[3, 4], batch_size=2,
        dtype="float16",
    )  # fmt: skip
    got = np.load(out)
    assert got.shape == want.array.shape == (2, 16, 3, 4, 8)
    assert got.tobytes() == want.array.tobytes()
    manifest = json.loads(out.with_name("video.manifest.json").read_text())["job"]
    assert (manifest["preset"], manifest["dtype"]) == ("wan2.1", "float16")


def test_sample_shards_resume_and_match_the_library(tmp_path, capsys):
    out = tmp_path / "lat.safetensors"
    args = [
        "sample",
        "--seeds",
        "0-4,9",
        "--width",
        "64",
        "--height",
        "64",
        "--shard-size",
        "4",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert "2 shard(s) written, 0 already" in run_cli(capsys, *args)
    first = tmp_path / "lat-00000-of-00002.safetensors"
    second = tmp_path / "lat-00001-of-00002.safetensors"
    second.unlink()  # an interrupted run: resuming writes only what is missing
    assert "1 shard(s) written, 1 already" in run_cli(capsys, *args)
    from safetensors.numpy import load_file

    parts = [load_file(str(p)) for p in (first, second)]
    latents = np.concatenate([p["latents"] for p in parts])
    seeds = np.concatenate([p["seeds"] for p in parts]).tolist()
    assert seeds == [0, 1, 2, 3, 4, 9]
    for i, seed in enumerate(seeds):
        expected = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(seed))
        assert latents[i : i + 1].tobytes() == expected.numpy().tobytes()


def test_sample_refuses_to_mix_arguments(tmp_path, capsys):
    out = tmp_path / "lat.npy"
    base = [
        "sample",
        "--seeds",
        "0-1",
        "--width",
        "64",
        "--height",
        "64",
        "--out",
        str(out),
        "--no-progress",
    ]
    run_cli(capsys, *base)
    assert np.load(out).shape == (2, 4, 8, 8)
    assert main([*base[:2], "0-2", *base[3:]]) == 2
    assert "was written for other arguments" in capsys.readouterr().err


# ---- mistakes: one line, status 2, no traceback (issue 16) --------------------------------------


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """``sigmaserve ARGV`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "sigmaserve", *argv], capture_output=True, text=True, timeout=120
    )


def one_line_error(*argv: str, output: bool = False) -> str:
    """The one stderr line of a refused command (which wrote nothing to stdout, unless
    ``output``: it failed after printing)."""
    proc = cli(*argv)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("sigmaserve")
    assert output or proc.stdout == ""
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["schedule", "Eulr"], ["scheduler", "Eulr", 'did you mean "Euler"']),
        (["schedule", "EulerDiscreteScheduler", "--preset", "sd1.6"], ["preset", "sd15"]),
        (["schedule", "EulerDiscreteScheduler", "--steps", "0"], ["num_inference_steps", "0"]),
        (["schedule", "comfyui:karas"], ["karas", "karras"]),
        (["explain", "--preset", "sd1.6"], ["preset", "sd15"]),
        (["explain", "--scheduler", "Eulr"], ["scheduler", 'did you mean "Euler"']),
        (["sample", "--seeds", "0", "--out", "x.npy", "--preset", "sdx"], ["preset", "sdxl"]),
        (["sample", "--seeds", "0", "--out", "x.npy", "--width", "0"], ["width", "positive"]),
        (["schedule", "EulerDiscreteScheduler", "--set", "use_karas_sigmas=true"], ["use_karas"]),
    ],
)
def test_library_mistakes_are_one_line(argv, expected, tmp_path):
    line = one_line_error(*[str(tmp_path / a) if a == "x.npy" else a for a in argv])
    assert line.startswith("sigmaserve: ")
    for word in expected:
        assert word in line, line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["schedul"], ["invalid choice: 'schedul'", "did you mean 'schedule'?"]),
        (["list", "schedulrs"], ["did you mean 'schedulers'?"]),
        (["schedule", "EulerDiscreteScheduler", "--stpes", "3"], ["--stpes", "--steps?"]),
        (["schedule", "EulerDiscreteScheduler", "--format", "xml"], ["xml", "table"]),
        (["schedule", "EulerDiscreteScheduler", "--steps", "many"], ["--steps", "'many'"]),
        (["schedule", "--steps"], ["--steps", "expected one argument"]),
        (["sample", "--seeds", "3-1", "--out", "x.npy"], ["empty seed range"]),
    ],
)
def test_command_line_mistakes_are_one_line(argv, expected):
    line = one_line_error(*argv)
    for word in expected:
        assert word in line, line


def test_other_mistakes_are_one_line(tmp_path):
    missing = tmp_path / "no" / "such" / "folder" / "x.png"
    line = one_line_error("schedule", "EulerDiscreteScheduler", "--plot", str(missing), output=True)
    assert str(missing) in line and "No such file" in line
    line = one_line_error("schedule", "EulerDiscreteScheduler", "--token", "t")
    assert "--token needs --target" in line
    line = one_line_error("list", "--family", "sigmaa")
    assert "sigma" in line and "flow_match" in line
    empty = tmp_path / "token"
    empty.write_text("\n")
    line = one_line_error(
        "schedule", "EulerDiscreteScheduler", "--target", "127.0.0.1:9", "--token-file", str(empty)
    )
    assert "--token-file" in line and "empty" in line


def test_version():
    proc = cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"sigmaserve {sigmaserve.__version__}"


@pytest.mark.parametrize(
    "text,seeds",
    [("0-3", [0, 1, 2, 3]), ("1,5,9", [1, 5, 9]), ("0-2,10", [0, 1, 2, 10]), ("-2--1", [-2, -1])],
)
def test_seed_ranges(text, seeds):
    from sigmaserve.commands.options import parse_seed_range

    assert parse_seed_range(text) == seeds


# ---- sigmaserve list ---------------------------------------------------------------------------


def test_list_covers_the_library(capsys):
    from sigmaserve.ecosystem import list_ecosystem_schedules
    from sigmaserve.schedules import excluded_schedulers, list_schedulers, scheduler_families

    data = json.loads(run_cli(capsys, "list", "--format", "json", "--excluded"))
    names = [r["name"] for r in data["schedulers"]]
    ecosystem = [f"{t}:{n}" for t, ns in list_ecosystem_schedules().items() for n in ns]
    assert names == [*list_schedulers(), *ecosystem]
    families = scheduler_families()
    assert all(
        r["family"] == families[r["name"]] for r in data["schedulers"] if ":" not in r["name"]
    )
    assert [p["name"] for p in data["presets"]] == list(sigmaserve.list_presets())
    assert {r["name"] for r in data["excluded"]} == set(excluded_schedulers())


def test_list_filters(capsys):
    from sigmaserve.schedules import scheduler_families

    out = run_cli(capsys, "list", "schedulers", "--family", "flow_match", "--tool", "diffusers")
    listed = [line.split()[0] for line in out.splitlines() if line.endswith(" diffusers")]
    assert listed == [n for n, f in scheduler_families().items() if f == "flow_match"]
    data = json.loads(
        run_cli(capsys, "list", "--tool", "comfyui", "--match", "KAR", "--format", "json")
    )
    assert [r["name"] for r in data["schedulers"]] == ["comfyui:karras"]
    assert data["tools"] == {"comfyui": ["karras"]}
    assert "presets" not in data  # presets belong to no ecosystem tool
    data = json.loads(
        run_cli(capsys, "list", "presets", "--family", "flow_match", "--format", "json")
    )
    families = scheduler_families()
    flow = [
        p["name"]
        for p in sigmaserve.catalog()["presets"]
        if families[p["scheduler"]] == "flow_match"
    ]
    assert [p["name"] for p in data["presets"]] == flow
    assert "flux-dev" in flow and "sd15" not in flow
