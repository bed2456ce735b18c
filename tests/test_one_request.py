"""One latents request, one owner per rule: the drifts issue 12 found between the copies stay
fixed, and the package boundaries hold."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sigmaserve
from sigmaserve import _core
from sigmaserve.errors import InvalidArgumentError

SEED_MISTAKES = [2**64, -(2**63) - 1, 1.5, "7", True, None]


def test_noise_source_names_agree_between_the_binding_and_the_package():
    """Once `_core.noise_randn(source="nv")` worked while `sigmaserve.randn` refused it."""
    via_core = _core.noise_randn([2, 3], 5, source="nv")
    assert np.array_equal(sigmaserve.randn((2, 3), 5, source="nv"), via_core)
    assert np.array_equal(sigmaserve.randn((2, 3), 5, source="a1111_nv"), via_core)
    for call in (sigmaserve.randn, _core.noise_randn):
        with pytest.raises(InvalidArgumentError) as info:
            call([2], 1, source="gpu")
        assert info.value.field == "source"


@pytest.mark.parametrize("seed", SEED_MISTAKES)
def test_one_seed_rule_for_every_local_entry_point(seed):
    messages = set()
    for call in (
        lambda: sigmaserve.randn(4, seed),
        lambda: sigmaserve.Generator(seed),
        lambda: sigmaserve.sample_init_latents(shape=(1, 4), seeds=[seed]),
    ):
        with pytest.raises(InvalidArgumentError) as info:
            call()
        messages.add(info.value.message.partition(":")[2])
    assert len(messages) <= 2  # `seed` and `seeds` name their own field


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1, 1.5, "7", True])
def test_remote_seed_mistakes_are_invalid_arguments(client, seed):
    with pytest.raises(InvalidArgumentError) as info:
        client.sample_init_latents(shape=(1, 4), seeds=[seed])
    assert info.value.field == "seeds"


def test_negative_seeds_echo_as_given_locally_and_remotely(client):
    local = sigmaserve.sample_init_latents(shape=(2, 4), seeds=[-1, 5])
    remote = client.sample_init_latents(shape=(2, 4), seeds=[-1, 5])
    assert local.seeds == remote.seeds == (-1, 5)
    assert np.array_equal(local.array, remote.array)
    assert np.array_equal(
        local.array[0], sigmaserve.randn((1, 4), 2**64 - 1)[0]
    )  # -1 is torch's 2**64 - 1


def test_client_schedule_defaults_equal_the_local_ones(client):
    """The client once sent 50 steps where the local call has a sentinel, so custom sigmas
    failed remotely only."""
    sigmas = [14.6, 7.0, 3.0, 1.0, 0.1]
    local = sigmaserve.get_schedule("EulerDiscreteScheduler", sigmas=sigmas)
    assert client.get_schedule("EulerDiscreteScheduler", sigmas=sigmas) == local
    assert client.get_schedule() == sigmaserve.get_schedule()
    assert client.get_schedule(preset=None) == sigmaserve.get_schedule(preset=None)


def test_dtype_objects_are_coerced_the_same_way_locally_and_remotely(client):
    import torch

    for dtype in (np.float16, torch.bfloat16, "float64"):
        local = sigmaserve.sample_init_latents(shape=(1, 4, 3), seeds=3, dtype=dtype)
        remote = client.sample_init_latents(shape=(1, 4, 3), seeds=3, dtype=dtype)
        assert local.dtype == remote.dtype
        assert local.array.tobytes() == remote.array.tobytes()


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_import_sigmaserve_does_not_import_grpc():
    done = _python(
        "import sys, sigmaserve\n"
        "assert 'grpc' not in sys.modules, sorted(m for m in sys.modules if 'grpc' in m)\n"
        "sigmaserve.Client\n"
        "assert 'grpc' in sys.modules\n"
    )
    assert done.returncode == 0, done.stderr


CLIENT_MODULES = (
    "sigmaserve.wire",
    "sigmaserve.client.common",
    "sigmaserve.client.sync",
    "sigmaserve.client.aio",
)


def _imports(module: str) -> set[str]:
    """The sigmaserve modules ``module`` imports (at any depth inside it, lazy ones included)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    with open(spec.origin, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
            found.update(n for n in [node.module, *names] if n.startswith("sigmaserve"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("sigmaserve"))
    return found


def _is_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False  # ``package.module.attribute``: the module is listed on its own


def test_client_protocol_code_does_not_reach_the_core():
    """The client side of the protocol encodes and decodes without the compiled core: no
    module it imports, directly or through others, imports ``sigmaserve._core``."""
    seen: set[str] = set()
    todo = list(CLIENT_MODULES)
    while todo:
        module = todo.pop()
        if module in seen or not _is_module(module):
            continue
        seen.add(module)
        if module == "sigmaserve" or module.startswith("sigmaserve.v1"):
            continue  # the package itself (the local API) and generated code
        todo.extend(_imports(module))
    assert "sigmaserve._core" not in seen, sorted(seen)
    request = sigmaserve.wire.latents_request(
        {"shape": [1, 4], "seeds": [-1], "dtype": "bfloat16", "preset": None, "cpu": 1}
    )
    assert list(request.seeds) == [2**64 - 1] and request.HasField("preset")
    assert request.preset == "" and dict(request.scheduler_overrides) == {"cpu": 1.0}
