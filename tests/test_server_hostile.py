"""Hostile and careless callers against a real server process: every NoiseService method and the
Open Inference Protocol facade get random raw bytes and random well-formed but hostile messages.

Asserted for every call: a caller's mistake is never INTERNAL or UNKNOWN, every call is answered
before its deadline, and the server's peak memory (VmHWM) stays inside its budget. The issue-12
reproducers (more than 64 dimensions, caller mistakes on streams, the OIP facade's empty and
BYTES-typed inputs, memory beyond the shipped limits) have their own tests below.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
import sigmaserve
from google.protobuf import struct_pb2
from sigmaserve._oip import open_inference_grpc_pb2 as oip
from sigmaserve.errors import InvalidArgumentError
from sigmaserve.v1 import noise_service_pb2 as pb

MIB = 1 << 20
FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DEADLINE_EXCEEDED}
FUZZ_CALLS = 2400
DEADLINE_S = 20.0
# The fuzzed server's limits: small enough that valid requests stay quick.
MAX_ELEMENTS = 1 << 22
BUDGET = 96 * MIB
NOISE = "/sigmaserve.v1.NoiseService/"
OIP = "/inference.GRPCInferenceService/"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``sigmaserve serve`` in a subprocess, with its peak memory read from /proc."""

    def __init__(self, *flags: str) -> None:
        self.port = _free_port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # A file, not a pipe: a full pipe nobody reads would block the server's logging.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sigmaserve", "serve", "--port", str(self.port), *flags],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env=env,
        )
        self.target = f"127.0.0.1:{self.port}"
        with grpc.insecure_channel(self.target) as channel:
            grpc.channel_ready_future(channel).result(timeout=60)

    def memory_kib(self, key: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise AssertionError(f"{key} not in /proc status")

    def stop(self) -> str:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.seek(0)
        text = self.log.read().decode(errors="replace")
        self.log.close()
        return text


@pytest.fixture(scope="module")
def hostile_server():
    server = ServerProcess(
        "--max-elements", str(MAX_ELEMENTS),
        "--max-unary-reply-bytes", str(8 * MIB),
        "--memory-budget-bytes", str(BUDGET),
        "--stream-chunk-bytes", str(256 * 1024),
    )  # fmt: skip
    yield server
    log = server.stop()
    assert "internal error" not in log, log[-4000:]


# ---- random messages -------------------------------------------------------------------------

EDGE_INTS = [0, 1, 2, 3, 7, 64, -1, -(2**31), 2**31, 2**40, 2**62, -(2**63), 2**63 - 1]
SCHEDULERS = [
    "EulerDiscreteScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler",
    "FlowMatchEulerDiscreteScheduler", "comfyui:karras", "a1111:beta", "ays:sd15", "", "x:y",
    "Euler", "\x00", "a" * 300,
]  # fmt: skip
KEYS = [
    "cpu_kernel", "gpu", "batch_index", "subseeds", "subseed_strength", "seed_resize_from",
    "seed_resize_from_w", "seed_resize_from_h", "timestep_spacing", "use_karras_sigmas",
    "beta_start", "shift", "sigmas", "timesteps", "mu", "strength", "bogus", "",
]  # fmt: skip


def _json(rng: random.Random, depth: int = 0):
    kind = rng.randrange(7 if depth < 2 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([*EDGE_INTS, 0.5, 1e308, -1e-300, float("nan"), float("inf")])
    if kind == 3:
        return rng.choice(["avx2", "default", "t4", "", "h100", "82x1536", "x" * 50])
    if kind == 4:
        return rng.randrange(-5, 20)
    if kind == 5:
        return [_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(KEYS): _json(rng, depth + 1) for _ in range(rng.randrange(3))}


def _struct(rng: random.Random) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    for _ in range(rng.randrange(4)):
        value = _json(rng)
        with contextlib.suppress(TypeError, ValueError):
            struct.update({rng.choice(KEYS): value})
    return struct


def _shape(rng: random.Random) -> list[int]:
    if rng.random() < 0.05:
        return [1] * rng.randrange(60, 70)
    dims = [rng.choice([1, 2, 3, 4, 8, 16]) for _ in range(rng.randrange(0, 5))]
    if rng.random() < 0.3 and dims:
        dims[rng.randrange(len(dims))] = rng.choice(EDGE_INTS)
    return dims


def latents_message(rng: random.Random) -> pb.SampleInitLatentsRequest:
    m = pb.SampleInitLatentsRequest()
    if rng.random() < 0.8:
        m.shape.extend(_shape(rng))
    else:
        m.width, m.height = rng.choice([*EDGE_INTS[:6], 64, 128]), rng.choice([0, 64, 72, -8])
        m.batch_size = rng.choice([0, 1, 2, -1, 2**40])
    if rng.random() < 0.5:
        m.preset = rng.choice(["sd15", "sdxl", "flux-dev", "", "nope", "SD15"])
    m.seeds.extend(rng.choice([0, 1, 2**64 - 1, 2**63]) for _ in range(rng.randrange(0, 5)))
    m.seed_mode = rng.choice([0, 1, 2, 3, 7, -1])
    m.source = rng.choice([0, 1, 2, 3, 9])
    m.dtype = rng.choice([0, 1, 2, 3, 4, 5, 11])
    if rng.random() < 0.4:
        m.sigma = rng.choice([0.0, -0.0, 1.0, 14.6, -1.0, float("nan"), float("inf"), 1e308])
    if rng.random() < 0.3:
        m.scheduler = rng.choice(SCHEDULERS)
    if rng.random() < 0.3:
        m.num_inference_steps = rng.choice([-1, 0, 1, 30, 10**4, 2**62])
    if rng.random() < 0.3:
        m.scheduler_overrides.CopyFrom(_struct(rng))
    if rng.random() < 0.5:
        m.noise_options.CopyFrom(_struct(rng))
    m.return_generator_states = rng.random() < 0.2
    return m


def schedule_message(rng: random.Random) -> pb.GetScheduleRequest:
    m = pb.GetScheduleRequest(scheduler=rng.choice(SCHEDULERS))
    if rng.random() < 0.8:
        m.num_inference_steps = rng.choice([-1, 0, 1, 2, 30, 999, 5000, 2**40])
    if rng.random() < 0.5:
        m.preset = rng.choice(["sd15", "sdxl", "sd3", "", "nope"])
    if rng.random() < 0.3:
        m.config.CopyFrom(_struct(rng))
    if rng.random() < 0.4:
        m.overrides.CopyFrom(_struct(rng))
    return m


def _oip_tensor(rng: random.Random, name: str):
    datatype = rng.choice(["INT64", "UINT64", "INT32", "FP32", "FP64", "BYTES", "BOOL", ""])
    count = rng.choice([0, 1, 2, 4, 70])
    tensor = oip.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=[count])
    raw = b""
    if datatype == "BYTES":
        raw = b"".join(struct.pack("<I", 3) + b"abc" for _ in range(count))
    elif datatype in ("INT64", "UINT64", "FP64"):
        raw = np.array([rng.choice([1, 2, 4, 8]) for _ in range(count)], "<i8").tobytes()
    elif datatype in ("INT32", "FP32"):
        raw = np.array([rng.choice([1, 2, 4]) for _ in range(count)], "<i4").tobytes()
    if rng.random() < 0.1:
        raw = raw[: rng.randrange(len(raw) + 1)]
    return tensor, raw


def oip_message(rng: random.Random):
    m = oip.ModelInferRequest(model_name=rng.choice(["init_latents", "schedule", "nope", ""]))
    raws = []
    for name in rng.sample(["SHAPE", "SEED", "SIGMA", "NUM_STEPS", "SCHEDULER", "X"], 3):
        tensor, raw = _oip_tensor(rng, name)
        m.inputs.append(tensor)
        raws.append(raw)
    if rng.random() < 0.9:
        m.raw_input_contents.extend(raws)
    for key in rng.sample(["seed_mode", "source", "dtype", "scheduler", "preset", "gpu"], 2):
        param = m.parameters[key]
        if rng.random() < 0.5:
            param.string_param = rng.choice(["batch", "cuda", "float16", "bogus", ""])
        else:
            param.int64_param = rng.choice([0, -1, 2**40])
    return m


CALLS = [
    (NOISE + "SampleInitLatents", latents_message, False),
    (NOISE + "StreamInitLatents", latents_message, True),
    (NOISE + "GetSchedule", schedule_message, False),
    (NOISE + "GetServerInfo", lambda rng: pb.GetServerInfoRequest(), False),
    (NOISE + "Ping", lambda rng: pb.PingRequest(reply_bytes=rng.choice(EDGE_INTS)), False),
    (OIP + "ModelInfer", oip_message, False),
    (OIP + "ModelMetadata", lambda rng: oip.ModelMetadataRequest(name=rng.choice("x ")), False),
]


def _one(channel: grpc.Channel, rng: random.Random) -> tuple[str, grpc.StatusCode]:
    method, build, streaming = rng.choice(CALLS)
    data = (
        build(rng).SerializeToString()
        if rng.random() < 0.85
        else rng.randbytes(rng.randrange(0, 300))
    )
    identity = {"request_serializer": None, "response_deserializer": None}
    start = time.monotonic()
    try:
        if streaming:
            call = channel.unary_stream(method, **identity)(data, timeout=DEADLINE_S)
            for _ in zip(range(3), call, strict=False):  # a careless reader: first messages
                pass
            call.cancel()
        else:
            channel.unary_unary(method, **identity)(data, timeout=DEADLINE_S)
        code = grpc.StatusCode.OK
    except grpc.RpcError as err:
        code = err.code()
        if code == grpc.StatusCode.CANCELLED and streaming:
            code = grpc.StatusCode.OK
    assert time.monotonic() - start < DEADLINE_S, method
    return method, code


def test_fuzz_every_method_never_internal(hostile_server):
    rng = random.Random(12)
    seeds = [rng.randrange(1 << 30) for _ in range(FUZZ_CALLS)]
    opts = [("grpc.max_receive_message_length", 64 * MIB)]
    with grpc.insecure_channel(hostile_server.target, options=opts) as channel:

        def call(seed: int) -> tuple[str, grpc.StatusCode]:
            return _one(channel, random.Random(seed))

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(call, seeds))
    seen = Counter(code.name for _, code in results)
    bad = [(m, c.name) for m, c in results if c in FORBIDDEN]
    print(f"\nhostile fuzz: {len(results)} calls, statuses {dict(seen)}")
    assert not bad, bad[:20]
    assert len(results) >= 2000
    assert seen["OK"] > 100 and seen["INVALID_ARGUMENT"] > 500
    peak = hostile_server.memory_kib("VmHWM") * 1024
    print(f"hostile fuzz: server peak memory {peak / MIB:.0f} MiB")
    assert peak < BUDGET + 400 * MIB


# ---- issue-12 reproducers ------------------------------------------------------------------


def test_more_than_64_dimensions_everywhere(hostile_server):
    for call in (
        lambda: sigmaserve.randn([1] * 65, 1),
        lambda: sigmaserve.Generator(1).randn([1] * 65),
        lambda: sigmaserve.sample_init_latents(shape=[1] * 65, seeds=1),
    ):
        with pytest.raises(InvalidArgumentError) as info:
            call()
        assert info.value.field == "shape"
    with sigmaserve.Client(hostile_server.target, timeout=10) as client:
        for mode, seeds in (("per_item", 1), ("a1111", 1), ("batch", 1)):
            for method in (client.sample_init_latents, client.stream_init_latents):
                with pytest.raises(InvalidArgumentError, match="64 dimensions"):
                    method(shape=[1] * 65, seeds=seeds, seed_mode=mode)


STREAM_MISTAKES = [
    ({"noise_options": {"seedz": 1}}, "noise_options"),
    ({"seed_mode": "batch", "seeds": 1, "noise_options": {"batch_index": [2**40]}}, "batch_index"),
    ({"seed_mode": "batch", "seeds": 1, "noise_options": {"batch_index": [-1]}}, "batch_index"),
    ({"noise_options": {"seed_resize_from_w": 4, "seed_resize_from_h": 64}}, "seed_resize_from_w"),
    ({"noise_options": {"subseeds": "x", "subseed_strength": 0.5}}, "subseeds"),
]


@pytest.mark.parametrize(("fields", "field"), STREAM_MISTAKES)
def test_caller_mistakes_are_invalid_argument_on_unary_and_stream(hostile_server, fields, field):
    arguments = {"shape": [1, 4, 16, 16], "seeds": [1], **fields}
    with pytest.raises(InvalidArgumentError) as local:
        sigmaserve.sample_init_latents(**arguments)
    assert local.value.field == field
    with sigmaserve.Client(hostile_server.target, timeout=10) as client:
        for method in (client.sample_init_latents, client.stream_init_latents):
            with pytest.raises(InvalidArgumentError) as remote:
                method(**arguments)
            assert remote.value.field == field
            assert str(remote.value) == str(local.value)


def test_a1111_pixel_resize_options_match_latent_resize(hostile_server):
    pixels = {"seed_resize_from_w": 384, "seed_resize_from_h": 256}
    latent = {"seed_resize_from": [48, 32]}
    base = {"shape": [2, 4, 16, 24], "seeds": [5], "seed_mode": "a1111"}
    want = sigmaserve.sample_init_latents(**base, noise_options=latent).array
    got = sigmaserve.sample_init_latents(**base, noise_options=pixels).array
    assert np.array_equal(want, got)
    with sigmaserve.Client(hostile_server.target, timeout=10) as client:
        remote = client.stream_init_latents(**base, noise_options=pixels).array
    assert np.array_equal(want, remote)


def _infer(target: str, request) -> grpc.StatusCode:
    from sigmaserve._oip import open_inference_grpc_pb2_grpc as oip_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
        except grpc.RpcError as err:
            return err.code()
    return grpc.StatusCode.OK


def _tensor(name: str, datatype: str, values) -> tuple:
    tensor = oip.ModelInferRequest.InferInputTensor(
        name=name, datatype=datatype, shape=[len(values)]
    )
    if datatype == "BYTES":
        raw = b"".join(struct.pack("<I", len(v)) + v for v in values)
    else:
        raw = np.array(values, {"INT64": "<i8", "FP64": "<f8"}[datatype]).tobytes()
    return tensor, raw


def _oip_request(model: str, *tensors):
    request = oip.ModelInferRequest(model_name=model)
    for tensor, raw in tensors:
        request.inputs.append(tensor)
        request.raw_input_contents.append(raw)
    return request


OIP_MISTAKES = [
    ("schedule", [("NUM_STEPS", "INT64", [])]),
    ("schedule", [("NUM_STEPS", "INT64", [20]), ("SCHEDULER", "BYTES", [])]),
    ("schedule", [("NUM_STEPS", "BYTES", [b"20"])]),
    ("init_latents", [("SHAPE", "INT64", [1, 4]), ("SEED", "INT64", [1]), ("SIGMA", "FP64", [])]),
    ("init_latents", [("SHAPE", "BYTES", [b"1"]), ("SEED", "INT64", [1])]),
    ("init_latents", [("SHAPE", "INT64", [1, 4]), ("SEED", "BYTES", [b"1"])]),
    ("init_latents", [("SHAPE", "INT64", [1, 4]), ("SEED", "INT64", [1]),
                      ("SIGMA", "BYTES", [b"1"])]),
    ("init_latents", [("SHAPE", "INT64", [1] * 65), ("SEED", "INT64", [1])]),
]  # fmt: skip


@pytest.mark.parametrize(("model", "inputs"), OIP_MISTAKES)
def test_oip_caller_mistakes_are_invalid_argument(hostile_server, model, inputs):
    request = _oip_request(model, *(_tensor(*spec) for spec in inputs))
    assert _infer(hostile_server.target, request) == grpc.StatusCode.INVALID_ARGUMENT


# ---- memory inside the shipped limits ---------------------------------------------------------


def _stream_all(target: str, fields: dict, timeout: float = 120.0) -> int:
    from sigmaserve import wire

    request = wire.latents_request(fields)
    received = 0
    with grpc.insecure_channel(target) as channel:
        stream = channel.unary_stream(NOISE + "StreamInitLatents", response_deserializer=None)
        for message in stream(request.SerializeToString(), timeout=timeout):
            received += len(message)
    return received


def test_streams_of_every_mode_stay_bounded_by_a_chunk():
    """float64 streams of 128 MiB in every seed mode and seed feature, and 8 a1111 streams at
    once: the server's peak memory grows by a few chunks per stream, not by the tensors."""
    server = ServerProcess("--stream-chunk-bytes", str(MIB))
    try:
        base = server.memory_kib("VmRSS") * 1024
        items = 32
        shape = [items, 4, 256, 512]  # 128 MiB of float64
        cases = [
            {"seed_mode": "a1111", "seeds": [1]},
            {"seed_mode": "per_item", "seeds": list(range(items))},
            {"seed_mode": "batch", "seeds": [3]},
            {"seed_mode": "batch", "seeds": [3], "noise_options": {"batch_index": [5, 1] * 16}},
            {"seed_mode": "a1111", "seeds": [1],
             "noise_options": {"subseeds": 9, "subseed_strength": 0.3}},
            {"seed_mode": "a1111", "seeds": [1], "noise_options": {"seed_resize_from": [300, 200]}},
        ] + [{"seed_mode": "a1111", "seeds": [100 + i]} for i in range(8)]  # fmt: skip
        fields = [{"shape": shape, "dtype": "float64", **case} for case in cases]
        with ThreadPoolExecutor(len(fields)) as pool:
            received = list(pool.map(lambda f: _stream_all(server.target, f), fields))
        assert all(r > 128 * MIB for r in received)
        growth = server.memory_kib("VmHWM") * 1024 - base
        print(
            f"\nstreams: {len(fields)} parallel float64 streams of 128 MiB, "
            f"server peak grew by {growth / MIB:.0f} MiB"
        )
        assert growth < 16 * MIB * len(fields)  # a few chunks, an item of working memory
    finally:
        server.stop()


def test_parallel_schedules_and_replies_are_admitted_against_the_budget():
    """32 GetSchedule calls at 10**6 steps and 8 large unary replies at once: the budget
    refuses what does not fit (RESOURCE_EXHAUSTED, never a crash) and memory stays bounded."""
    budget = 256 * MIB
    server = ServerProcess("--memory-budget-bytes", str(budget))
    try:
        base = server.memory_kib("VmRSS") * 1024
        codes: Counter[str] = Counter()
        with grpc.insecure_channel(
            server.target, options=[("grpc.max_receive_message_length", -1)]
        ) as channel:
            schedule = channel.unary_unary(NOISE + "GetSchedule", response_deserializer=None)
            latents = channel.unary_unary(NOISE + "SampleInitLatents", response_deserializer=None)
            big_schedule = pb.GetScheduleRequest(
                scheduler="EulerDiscreteScheduler", num_inference_steps=10**6
            ).SerializeToString()
            big_reply = pb.SampleInitLatentsRequest(
                shape=[1, 4, 2048, 2048], seeds=[1]
            ).SerializeToString()

            def call(job: tuple) -> str:
                method, data = job
                try:
                    method(data, timeout=120)
                    return "OK"
                except grpc.RpcError as err:
                    return err.code().name

            jobs = [(schedule, big_schedule)] * 32 + [(latents, big_reply)] * 8
            with ThreadPoolExecutor(40) as pool:
                codes.update(pool.map(call, jobs))
        growth = server.memory_kib("VmHWM") * 1024 - base
        print(f"\nadmission: {dict(codes)}, server peak grew by {growth / MIB:.0f} MiB")
        assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}
        assert codes["OK"] >= 2
        assert growth < budget + 128 * MIB
    finally:
        server.stop()


def test_default_budget_fits_the_shipped_manifests():
    """The default budget plus the process itself fits the memory limit compose and k8s set."""
    import yaml
    from sigmaserve.server import ServerConfig

    root = Path(__file__).resolve().parent.parent
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    limits = []
    for service in compose["services"].values():
        if "noise" in str(service.get("image", "")):
            limit = service["deploy"]["resources"]["limits"]["memory"]
            limits.append(_bytes(limit))
    deployment = yaml.safe_load((root / "deploy/k8s/noise-deployment.yaml").read_text())
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        limits.append(_bytes(container["resources"]["limits"]["memory"]))
    assert limits
    process_allowance = 384 * MIB  # interpreter, grpc, numpy and the core, measured ~150 MiB
    for limit in limits:
        assert ServerConfig().memory_budget_bytes + process_allowance <= limit


def _bytes(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30}
    text = str(text).strip().lower().removesuffix("b")
    for suffix in sorted(units, key=len, reverse=True):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * units[suffix])
    return int(text)
