"""Found by name: the catalog, the one resolver (case, aliases, did-you-mean for every kind of
name), and the version-2 calls through gRPC and both clients (same arguments, same results)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import sigmaserve
from sigmaserve import InvalidArgumentError, catalog, resolve_name, resolve_scheduler
from sigmaserve.catalog import NAME_KINDS

CATALOG = catalog()
PRESET_NAMES = [p["name"] for p in CATALOG["presets"]]


def test_catalog_is_plain_data_and_complete() -> None:
    assert json.loads(json.dumps(CATALOG)) == CATALOG
    tools = {s["tool"] for s in CATALOG["schedulers"]}
    assert tools == {"diffusers", "comfyui", "a1111", "kdiffusion", "ays"}
    families = {f["name"] for f in CATALOG["families"]}
    assert {s["family"] for s in CATALOG["schedulers"]} <= families
    diffusers_names = {s["name"] for s in CATALOG["schedulers"] if s["tool"] == "diffusers"}
    assert diffusers_names == set(sigmaserve.schedules.list_schedulers())
    assert {e["name"] for e in CATALOG["excluded"]}.isdisjoint(diffusers_names)
    for video in (
        "wan2.1",
        "wan2.2",
        "hunyuan-video",
        "ltx-video",
        "cogvideox",
        "cogvideox-1.5",
        "mochi",
    ):
        assert video in PRESET_NAMES
    for preset in CATALOG["presets"]:
        assert preset["scheduler"] in diffusers_names, preset["name"]
        assert preset["config"]["_class_name"] == preset["scheduler"]
        assert preset["steps"] >= 1 and preset["layout"]["channels"] >= 1
        assert (preset["num_frames"] is None) == (preset["layout"]["vae_temporal_factor"] is None)
    for alias in CATALOG["aliases"]:
        assert alias["scheduler"] in diffusers_names, alias
    assert set(CATALOG["names"]) == set(NAME_KINDS) - {"scheduler", "preset"}


def test_every_listed_name_resolves_to_itself() -> None:
    for s in CATALOG["schedulers"]:
        assert resolve_name("scheduler", s["name"]) == s["name"]
        assert resolve_name("scheduler", s["name"].upper()) == s["name"]
    for p in CATALOG["presets"]:
        assert resolve_name("preset", p["name"]) == p["name"]
        for alias in p["aliases"]:
            assert resolve_name("preset", alias) == p["name"]
    for alias in CATALOG["aliases"]:
        name, _tool, options = resolve_scheduler(alias["name"])
        assert (name, options) == (alias["scheduler"], alias["options"]), alias
    for kind, names in CATALOG["names"].items():
        for name in names:
            assert resolve_name(kind, name.upper()) == name


def test_tool_aliases_map_to_diffusers_classes() -> None:
    karras = sigmaserve.get_schedule("DPM++ 2M Karras", 25, preset="sdxl")
    direct = sigmaserve.get_schedule(
        "DPMSolverMultistepScheduler", 25, preset="sdxl", use_karras_sigmas=True
    )
    assert karras == direct
    assert karras.scheduler == "DPMSolverMultistepScheduler"
    pair = sigmaserve.get_schedule("dpmpp_2m_sde/karras", 25, preset="sdxl")
    assert pair.config["algorithm_type"] == "sde-dpmsolver++" and pair.config["use_karras_sigmas"]
    assert sigmaserve.get_schedule("Euler a", 30, preset="sd15").scheduler == (
        "EulerAncestralDiscreteScheduler"
    )
    # Explicit overrides beat the alias's options.
    plain = sigmaserve.get_schedule("DPM++ 2M Karras", 25, preset="sdxl", use_karras_sigmas=False)
    assert plain == sigmaserve.get_schedule("DPMSolverMultistepScheduler", 25, preset="sdxl")
    with pytest.raises(InvalidArgumentError, match="comfyui:ddim_uniform"):
        sigmaserve.get_schedule("euler ddim_uniform", 20)


def test_names_are_case_insensitive_everywhere() -> None:
    assert sigmaserve.get_schedule("eulerdiscretescheduler", 30, preset="SDXL") == (
        sigmaserve.get_schedule("EulerDiscreteScheduler", 30, preset="sdxl")
    )
    a = sigmaserve.sample_init_latents(
        shape=(1, 4, 8, 8), seeds=3, source="CPU", seed_mode="Per-Item", dtype="Float16"
    )
    b = sigmaserve.sample_init_latents(shape=(1, 4, 8, 8), seeds=3, dtype="float16")
    assert np.array_equal(a.array, b.array)
    assert sigmaserve.get_schedule("ComfyUI:Karras", 20).scheduler == "comfyui:karras"


# (call, the field named, a suggestion the message must contain)
UNKNOWN = [
    (
        lambda: sigmaserve.get_schedule("EulerDiscreteSchedular", 20),
        "scheduler",
        "EulerDiscreteScheduler",
    ),
    (lambda: sigmaserve.get_schedule("DPM++ 2M Karas", 20), "scheduler", "DPM++ 2M Karras"),
    (lambda: sigmaserve.get_schedule(None, 20, preset="flux-devv"), "preset", "flux-dev"),
    (lambda: sigmaserve.get_schedule("comfi:karras", 20), "scheduler", "comfyui"),
    (lambda: sigmaserve.get_schedule("comfyui:karas", 20), "scheduler", "karras"),
    (lambda: sigmaserve.get_schedule("comfyui:karras", 20, preset="sdxll"), "preset", "sdxl"),
    (
        lambda: sigmaserve.sample_init_latents(shape=(1, 4), seeds=1, source="cdua"),
        "source",
        "cuda",
    ),
    (
        lambda: sigmaserve.sample_init_latents(shape=(1, 4), seeds=1, seed_mode="per-itme"),
        "seed_mode",
        "per_item",
    ),
    (
        lambda: sigmaserve.sample_init_latents(shape=(1, 4), seeds=1, dtype="bfloat61"),
        "dtype",
        "bfloat16",
    ),
    (
        lambda: sigmaserve.sample_init_latents(
            shape=(1, 4), seeds=1, source="cuda", noise_options={"gpu": "rtx4900"}
        ),
        "gpu",
        "rtx4090",
    ),
    (
        lambda: sigmaserve.sample_init_latents(
            shape=(1, 4), seeds=1, noise_options={"cpu_kernel": "avx"}
        ),
        "cpu_kernel",
        "avx2",
    ),
    (
        lambda: sigmaserve.sample_init_latents(
            shape=(1, 4), seeds=1, noise_options={"subseed": [1]}
        ),
        "noise_options",
        "subseeds",
    ),
    (
        lambda: sigmaserve.get_schedule("EulerDiscreteScheduler", 20, use_karas_sigmas=True),
        "use_karas_sigmas",
        "use_karras_sigmas",
    ),
    (lambda: resolve_name("tool", "comfyi"), "scheduler", "comfyui"),
    (lambda: resolve_name("presets", "sd15"), "kind", "preset"),
]


@pytest.mark.parametrize(("call", "field", "suggestion"), UNKNOWN)
def test_every_unknown_name_suggests_the_nearest(call, field, suggestion) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        call()
    assert info.value.field == field
    assert f'"{suggestion}"' in str(info.value) or f"`{suggestion}`" in str(info.value)
    assert "did you mean" in str(info.value)


def test_scheduler_objects_and_class_names_in_configs() -> None:
    diffusers = pytest.importorskip("diffusers")
    preset = sigmaserve.list_presets()["sd15"]["config"]
    ddim = diffusers.DDIMScheduler.from_config(preset)
    by_object = sigmaserve.get_schedule(ddim, 30, preset=None)
    assert by_object == sigmaserve.get_schedule("DDIMScheduler", 30, preset=None, config=preset)
    # A config's _class_name names the scheduler when none is given.
    by_config = sigmaserve.get_schedule(config=dict(ddim.config), preset=None)
    assert by_config.scheduler == "DDIMScheduler"
    assert by_config.num_inference_steps == 50
    assert sigmaserve.get_schedule(diffusers.EulerDiscreteScheduler, 20, preset="sdxl") == (
        sigmaserve.get_schedule("EulerDiscreteScheduler", 20, preset="sdxl")
    )
    with pytest.raises(InvalidArgumentError, match="scheduler"):
        sigmaserve.get_schedule(object(), 20)


def test_wrong_family_is_an_error_at_the_pipeline_level_and_a_warning_bare() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        sigmaserve.get_schedule("EulerDiscreteScheduler", 28, preset="flux-dev")
    assert info.value.field == "scheduler" and "flow-matching" in str(info.value)
    bare = sigmaserve.get_schedule("EulerDiscreteScheduler", 28, preset="flux-dev", pipeline=False)
    assert any("flow-matching" in w for w in bare.warnings)
    # A flow-matching scheduler ignores a VP preset's betas: its own defaults, with a warning.
    flow = sigmaserve.get_schedule("FlowMatchEulerDiscreteScheduler", 30, preset="sdxl")
    assert any("VP" in w for w in flow.warnings)
    assert np.array_equal(
        flow.sigmas,
        sigmaserve.get_schedule("FlowMatchEulerDiscreteScheduler", 30, preset=None).sigmas,
    )
    with pytest.raises(InvalidArgumentError, match="flow-matching"):
        sigmaserve.sample_init_latents(
            width=64, height=64, seeds=1, preset="sd3", scheduler="EulerDiscreteScheduler"
        )


def test_pipeline_schedule_differs_from_the_bare_one_where_the_pipeline_passes_its_own() -> None:
    flux = sigmaserve.get_schedule(None, 28, preset="flux-dev", width=1024, height=1024)
    bare = sigmaserve.get_schedule(None, 28, preset="flux-dev", pipeline=False, mu=1.15)
    assert flux.scheduler == bare.scheduler == "FlowMatchEulerDiscreteScheduler"
    assert not np.array_equal(flux.sigmas, bare.sigmas)  # linspace(1, 1/N, N) vs the default
    small = sigmaserve.get_schedule(None, 28, preset="flux-dev", width=512, height=512)
    assert small.sigmas[1] < flux.sigmas[1]  # a smaller image, a smaller mu
    sdxl = sigmaserve.get_schedule(None, preset="sdxl")
    assert sdxl.num_inference_steps == 50 and sdxl.scheduler == "EulerDiscreteScheduler"
    assert sdxl == sigmaserve.get_schedule(None, preset="sdxl", pipeline=False)
    with pytest.raises(InvalidArgumentError) as info:
        sigmaserve.get_schedule(None, preset="sdxl", num_frames=9)
    assert info.value.field == "num_frames"


# ---- the same through gRPC and both clients --------------------------------------------------


def test_catalog_through_both_clients(client, target) -> None:
    assert client.catalog() == CATALOG

    async def remote() -> dict:
        async with sigmaserve.AsyncClient(target, timeout=60) as c:
            return await c.catalog()

    assert asyncio.run(remote()) == CATALOG


SCHEDULE_CALLS = [
    ((None, 28), {"preset": "flux-dev", "width": 768, "height": 1360}),
    ((None, None), {"preset": "sdxl"}),
    ((None, 30), {"preset": "ltx-video", "width": 768, "height": 512, "num_frames": 97}),
    ((None, 64), {"preset": "mochi"}),
    (("DPM++ 2M Karras", 25), {"preset": "sdxl"}),
    (("EulerDiscreteScheduler", 28), {"preset": "flux-dev", "pipeline": False}),
    ((None, 20), {"preset": None, "config": {"_class_name": "DDIMScheduler"}}),
    (("comfyui:karras", 20), {"preset": "flux-dev", "width": 1344, "height": 768}),
]


@pytest.mark.parametrize(("args", "kwargs"), SCHEDULE_CALLS)
def test_pipeline_schedules_through_the_client(client, args, kwargs) -> None:
    assert client.get_schedule(*args, **kwargs) == sigmaserve.get_schedule(*args, **kwargs)


def test_scheduler_objects_through_the_client(client) -> None:
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.UniPCMultistepScheduler.from_config(
        sigmaserve.list_presets()["wan2.1"]["config"]
    )
    assert client.get_schedule(scheduler, 30, preset="wan2.1") == sigmaserve.get_schedule(
        scheduler, 30, preset="wan2.1"
    )


LATENTS_CALLS = [
    {"preset": "sdxl", "width": 1024, "height": 1024, "seeds": 1},
    {"preset": "flux-dev", "width": 256, "height": 192, "seeds": [1, 2], "batch_size": 2},
    {"preset": "wan2.1", "width": 128, "height": 96, "num_frames": 17, "seeds": 5},
    {"preset": "ltx-video", "width": 128, "height": 96, "num_frames": 25, "seeds": 5},
    {"preset": "cogvideox-1.5", "width": 64, "height": 48, "num_frames": 13, "seeds": 7},
    {
        "preset": "mochi",
        "width": 64,
        "height": 48,
        "num_frames": 13,
        "seeds": 9,
        "dtype": "bfloat16",
    },
    {
        "preset": "hunyuan-video",
        "width": 64,
        "height": 48,
        "seeds": 9,
        "seed_mode": "batch",
        "batch_size": 2,
    },
]


@pytest.mark.parametrize("kwargs", LATENTS_CALLS)
def test_pipeline_latents_unary_and_streamed_equal_local(client, kwargs) -> None:
    local = sigmaserve.sample_init_latents(**kwargs)
    for remote in (client.sample_init_latents(**kwargs), client.stream_init_latents(**kwargs)):
        assert remote.shape == local.shape and remote.dtype == local.dtype
        assert np.array_equal(remote.array, local.array)
        assert remote.init_noise_sigma == local.init_noise_sigma


def test_names_spelled_loosely_through_the_client(client) -> None:
    kwargs = {"shape": (1, 4, 8, 8), "seeds": 3, "source": "CPU", "seed_mode": "Per-Item"}
    remote = client.sample_init_latents(dtype="Float16", **kwargs)
    local = sigmaserve.sample_init_latents(dtype="Float16", **kwargs)
    assert remote.dtype == local.dtype == "float16" and np.array_equal(remote.array, local.array)


def test_unknown_names_through_grpc(client) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        client.get_schedule("DPM++ 2M Karas", 20)
    assert info.value.field == "scheduler" and "did you mean" in str(info.value)
    with pytest.raises(InvalidArgumentError) as info:
        client.sample_init_latents(width=64, height=64, seeds=1, preset="wan21x")
    assert info.value.field == "preset" and '"wan2.1"' in str(info.value)


def test_readme_python_example_runs_as_written(target) -> None:
    """The README's Python block, against this session's server: same arguments, same results."""
    from pathlib import Path
    from types import SimpleNamespace

    diffusers = pytest.importorskip("diffusers")
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    config = sigmaserve.list_presets()["sd15"]["config"]
    pipe = SimpleNamespace(scheduler=diffusers.EulerDiscreteScheduler.from_config(config))
    namespace: dict = {"pipe": pipe}
    exec(compile(block.replace("127.0.0.1:50051", target), "README.md", "exec"), namespace)
    assert namespace["video"].shape == (2, 16 * 15 * 22, 128)
    assert namespace["lat"].init_noise_sigma == pytest.approx(13.158469, rel=1e-6)
    assert namespace["sdxl"].scheduler == "EulerDiscreteScheduler"
    assert namespace["wan"].scheduler == "UniPCMultistepScheduler"


def test_the_documented_sampler_mapping_is_the_resolvers() -> None:
    """docs/names.md's sampler table, row by row."""
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "names.md").read_text()
    table = text.split("| A1111 sampler |", 1)[1].split("\n\n", 1)[0]
    rows = [line.strip("|").split("|") for line in table.splitlines()[2:] if line.startswith("|")]
    assert len(rows) >= 14
    for a1111, comfy, scheduler, options in ([c.strip() for c in row] for row in rows):
        expected = {}
        for pair in filter(None, (o.strip() for o in options.split(","))):
            key, value = pair.split("=")
            expected[key] = {"True": True, "False": False}.get(value, value)
        for name in filter(None, (a1111, comfy)):
            assert resolve_scheduler(name)[::2] == (scheduler, expected), name
