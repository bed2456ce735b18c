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
        "LMSDiscreteScheduler",
    )
    assert png_size(png) == (1200, 360)
    assert png.stat().st_size > 10_000


def test_explain_walks_the_real_numbers(tmp_path, capsys):
    png = tmp_path / "noise.png"
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
    assert "14.6146" in out
    assert f"{float(euler.init_noise_sigma):.6g}" in out
    assert f"DDIMScheduler: {float(ddim.init_noise_sigma):.6g}" in out
    acp = lms.alphas_cumprod.numpy()
    assert f"acp[999] = {float(acp[-1]):.6g}" in out
    assert png_size(png) == (1200, 360)


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
    with pytest.raises(SystemExit):
        main([*base[:2], "0-2", *base[3:]])
