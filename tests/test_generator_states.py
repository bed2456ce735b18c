"""Generator states after the initial draw: what torch's generator holds after randn_tensor."""

from __future__ import annotations

import pytest
import sigmaserve
import torch
from sigmaserve.errors import InvalidArgumentError


def torch_state_after(seed: int, shape) -> bytes:
    generator = torch.Generator("cpu").manual_seed(seed)
    torch.randn(shape, generator=generator)
    return bytes(generator.get_state().numpy().tobytes())


@pytest.mark.parametrize("remote", [False, True])
def test_per_item_states_equal_torch(client, remote):
    kwargs = dict(shape=(3, 4, 8, 8), seeds=[5, 6, 2**40], return_generator_states=True)
    result = (
        client.sample_init_latents(**kwargs) if remote else sigmaserve.sample_init_latents(**kwargs)
    )
    assert result.generator_states == tuple(
        torch_state_after(s, (1, 4, 8, 8)) for s in [5, 6, 2**40]
    )


def test_batch_state_and_stream(client, server):
    kwargs = dict(shape=(2, 4, 8, 9), seeds=11, seed_mode="batch", return_generator_states=True)
    expected = (torch_state_after(11, (2, 4, 8, 9)),)
    assert client.sample_init_latents(**kwargs).generator_states == expected
    assert client.stream_init_latents(**kwargs).generator_states == expected


def test_states_continue_the_stream():
    latents = sigmaserve.sample_init_latents(
        shape=(1, 4, 8, 8), seeds=3, return_generator_states=True
    )
    generator = torch.Generator("cpu")
    generator.set_state(torch.frombuffer(bytearray(latents.generator_states[0]), dtype=torch.uint8))
    reference = torch.Generator("cpu").manual_seed(3)
    torch.randn((1, 4, 8, 8), generator=reference)
    assert torch.equal(torch.randn(7, generator=generator), torch.randn(7, generator=reference))


def test_states_refused_where_undefined():
    with pytest.raises(InvalidArgumentError) as info:
        sigmaserve.sample_init_latents(
            shape=(2, 4, 8, 8), seeds=1, seed_mode="a1111", return_generator_states=True
        )
    assert info.value.field == "return_generator_states"
