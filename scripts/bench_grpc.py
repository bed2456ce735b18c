#!/usr/bin/env python
"""End-to-end gRPC benchmark, everything side by side in one run (servers in subprocesses).

1. SD1.5 latents (1x4x64x64 float32, 64 KiB) with 1 and 64 concurrent callers: requests per
   second and p50/p99 for sigmaserve SampleInitLatents, a no-op RPC (Ping) on the same server,
   and a naive server (torch.randn + a protobuf bytes field).
2. 64 MiB replies: SampleInitLatents (1x4x2048x2048 float32) against plain grpcio bytes of the
   same size (identity serializers, a prebuilt bytes object) and Ping with 64 MiB.
3. Peak server memory (VmHWM) while streaming a 1 GiB tensor with StreamInitLatents, per_item
   (64 generators) and batch (one generator, one logical draw continued chunk by chunk) for the
   CPU source, and batch for the CUDA (gpu=h100) and NV sources (computed range by range).
4. In-process cost of building one reply (no gRPC): the core writing the payload into the
   reply's own bytes (aligned and misaligned payload) vs the local numpy array and one copy.

    .venv/bin/python scripts/bench_grpc.py [--seconds 3] [--skip-stream | --only-stream]

The clients read replies with identity deserializers (bytes), so the figures measure the
servers and the transport, not client-side parsing. Loopback, client and servers on one host.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time

import grpc

MIB = 1 << 20


# ---- the naive and plain-bytes servers (run with --naive-server PORT) ----------------------


def naive_server(port: int) -> None:
    import numpy as np
    import torch
    from sigmaserve.v1 import noise_service_pb2 as pb

    blobs: dict[int, bytes] = {}

    async def latents(
        request: pb.SampleInitLatentsRequest, context
    ) -> pb.SampleInitLatentsResponse:
        def work():
            g = torch.Generator().manual_seed(int(request.seeds[0]))
            t = torch.randn(tuple(request.shape), generator=g, dtype=torch.float32)
            return pb.SampleInitLatentsResponse(
                seeds=list(request.seeds),
                latents=pb.Tensor(
                    dtype=pb.DATA_TYPE_FP32, shape=list(request.shape), data=t.numpy().tobytes()
                ),
            )

        return await asyncio.to_thread(work)

    async def raw(request: bytes, context) -> bytes:
        size = int.from_bytes(request or b"\0", "little")
        if size not in blobs:
            blobs[size] = np.random.default_rng(0).bytes(size)
        return blobs[size]

    async def main() -> None:
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 4 * MIB)])
        handlers = {
            "SampleInitLatents": grpc.unary_unary_rpc_method_handler(
                latents,
                request_deserializer=pb.SampleInitLatentsRequest.FromString,
                response_serializer=pb.SampleInitLatentsResponse.SerializeToString,
            ),
            "Raw": grpc.unary_unary_rpc_method_handler(raw),
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("naive.Naive", handlers),)
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(main())


# ---- client side ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on {port} exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(port)


async def rate(
    channel: grpc.aio.Channel, method: str, payload: bytes, callers: int, seconds: float
) -> dict[str, float]:
    call = channel.unary_unary(method)
    for _ in range(20):  # warm-up
        await call(payload, timeout=60)
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def caller() -> None:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            await call(payload, timeout=60)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


async def throughput(
    channel: grpc.aio.Channel, method: str, payload: bytes, repeats: int
) -> tuple[float, int]:
    call = channel.unary_unary(method)
    size = len(await call(payload, timeout=120))  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        reply = await call(payload, timeout=120)
        times.append(time.perf_counter() - t0)
        assert len(reply) == size
    return size / statistics.median(times) / 1e9, size


def vm_hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


async def bench(args: argparse.Namespace) -> None:
    from sigmaserve.v1 import noise_service_pb2 as pb

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if args.only_stream:
        await all_stream_memory(env)
        return
    sig_port, naive_port = free_port(), free_port()
    sig = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sigmaserve",
            "serve",
            "--port",
            str(sig_port),
            "--max-concurrent-rpcs",
            "1000",
            "--max-unary-reply-bytes",
            str(64 * MIB),
            "--log-level",
            "WARNING",
        ],
        env=env,
    )
    naive = subprocess.Popen([sys.executable, __file__, "--naive-server", str(naive_port)], env=env)
    try:
        wait_port(sig_port, sig)
        wait_port(naive_port, naive)
        time.sleep(1.0)
        opts = [("grpc.max_receive_message_length", -1)]
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{sig_port}", options=opts) as sch,
            grpc.aio.insecure_channel(f"127.0.0.1:{naive_port}", options=opts) as nch,
        ):
            sd15 = pb.SampleInitLatentsRequest(shape=[1, 4, 64, 64], seeds=[42]).SerializeToString()
            sd15_reply = await sch.unary_unary("/sigmaserve.v1.NoiseService/SampleInitLatents")(
                sd15, timeout=60
            )
            ping = pb.PingRequest().SerializeToString()
            ping64k = pb.PingRequest(reply_bytes=len(sd15_reply)).SerializeToString()
            print(f"## SD1.5 latents 1x4x64x64 float32 ({args.seconds:.0f} s per row)")
            print("| callers | server | req/s | p50 ms | p99 ms |")
            print("|---|---|---|---|---|")
            for callers in (1, 64):
                rows = [
                    (
                        "sigmaserve SampleInitLatents",
                        sch,
                        "/sigmaserve.v1.NoiseService/SampleInitLatents",
                        sd15,
                    ),
                    ("sigmaserve Ping (no-op)", sch, "/sigmaserve.v1.NoiseService/Ping", ping),
                    (
                        "sigmaserve Ping, same-size reply",
                        sch,
                        "/sigmaserve.v1.NoiseService/Ping",
                        ping64k,
                    ),
                    ("naive torch.randn + protobuf", nch, "/naive.Naive/SampleInitLatents", sd15),
                ]
                results = {}
                for name, channel, method, payload in rows:
                    r = await rate(channel, method, payload, callers, args.seconds)
                    results[name] = r
                    print(
                        f"| {callers} | {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
                        f"{r['p99_ms']:.2f} |"
                    )
                s = results["sigmaserve SampleInitLatents"]["rps"]
                print(
                    f"| {callers} | sigmaserve / no-op | "
                    f"{100 * s / results['sigmaserve Ping (no-op)']['rps']:.0f} % | | |"
                )
                print(
                    f"| {callers} | sigmaserve / same-size Ping | "
                    f"{100 * s / results['sigmaserve Ping, same-size reply']['rps']:.0f} % | | |"
                )
                print(
                    f"| {callers} | sigmaserve / naive | "
                    f"{100 * s / results['naive torch.randn + protobuf']['rps']:.0f} % | | |"
                )

            if args.only_small:
                return
            print("\n## 64 MiB replies (median of 5, client reads bytes)")
            big = pb.SampleInitLatentsRequest(shape=[1, 4, 2048, 2048], seeds=[1])
            size = 64 * MIB
            raw_gbs, _ = await throughput(nch, "/naive.Naive/Raw", size.to_bytes(8, "little"), 5)
            sig_gbs, n = await throughput(
                sch, "/sigmaserve.v1.NoiseService/SampleInitLatents", big.SerializeToString(), 5
            )
            ping_gbs, _ = await throughput(
                sch,
                "/sigmaserve.v1.NoiseService/Ping",
                pb.PingRequest(reply_bytes=size).SerializeToString(),
                5,
            )
            naive_gbs, _ = await throughput(
                nch, "/naive.Naive/SampleInitLatents", big.SerializeToString(), 5
            )
            print("| path | GB/s |")
            print("|---|---|")
            print(f"| plain grpcio bytes (prebuilt) | {raw_gbs:.2f} |")
            print(
                f"| sigmaserve SampleInitLatents ({n} bytes, generated per call) | "
                f"{sig_gbs:.2f} ({100 * sig_gbs / raw_gbs:.0f} % of plain) |"
            )
            print(
                f"| sigmaserve Ping 64 MiB (reply built per call) | {ping_gbs:.2f} "
                f"({100 * ping_gbs / raw_gbs:.0f} % of plain) |"
            )
            print(f"| naive torch.randn + protobuf | {naive_gbs:.2f} |")

    finally:
        for proc in (sig, naive):
            proc.terminate()
        for proc in (sig, naive):
            proc.wait(timeout=30)
    if not args.skip_stream:
        await all_stream_memory(env)
    build_costs()


async def all_stream_memory(env: dict[str, str]) -> None:
    await stream_memory(env, "per_item")
    await stream_memory(env, "batch")
    await stream_memory(env, "batch", "cuda", {"gpu": "h100"})
    await stream_memory(env, "batch", "a1111_nv")


def build_costs() -> None:
    """Median time to build one serialized reply in this process (no transport): the core
    writing the payload into the reply's own bytes, against the local array plus one copy."""
    from sigmaserve.latents import latents_request, sample_init_latents

    def median_ms(fn, repeats: int) -> float:
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return 1000 * statistics.median(times)

    print("\n## Building one reply in-process (ms, median; factor 14.6 so scaling runs)")
    print("| shape | in place, aligned | in place, misaligned | array + copy |")
    print("|---|---|---|---|")
    for shape, repeats in (([1, 4, 64, 64], 300), ([1, 4, 2048, 2048], 7)):
        request = latents_request(shape=shape, seeds=[1], sigma=14.6)
        row = [median_ms(lambda p=b"p" * plen, r=request: r.reply(p), repeats) for plen in (24, 21)]

        def reference(shape=shape):
            array = sample_init_latents(shape=shape, seeds=[1], sigma=14.6).array
            return b"".join((b"p" * 21, array.data.cast("B")))

        row.append(median_ms(reference, repeats))
        print(f"| {'x'.join(map(str, shape))} | " + " | ".join(f"{v:.3f}" for v in row) + " |")


async def stream_memory(
    env: dict[str, str], seed_mode: str, source: str = "cpu", options: dict | None = None
) -> None:
    """A fresh server streams 1 GiB; its peak RSS is read from /proc before and after."""
    from sigmaserve.v1 import noise_service_pb2 as pb

    sources = {
        "cpu": pb.NOISE_SOURCE_CPU,
        "cuda": pb.NOISE_SOURCE_CUDA,
        "a1111_nv": pb.NOISE_SOURCE_A1111_NV,
    }

    port = free_port()
    sig = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sigmaserve",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "WARNING",
        ],
        env=env,
    )
    try:
        wait_port(port, sig)
        time.sleep(1.0)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as sch:
            before = vm_hwm_kib(sig.pid)
            request = pb.SampleInitLatentsRequest(
                shape=[64, 4, 1024, 1024],
                seeds=list(range(64)) if seed_mode == "per_item" else [7],
                seed_mode=pb.SEED_MODE_PER_ITEM if seed_mode == "per_item" else pb.SEED_MODE_BATCH,
                source=sources[source],
            )
            if options:
                request.noise_options.update(options)
            stream = sch.unary_stream("/sigmaserve.v1.NoiseService/StreamInitLatents")
            t0 = time.perf_counter()
            total = 0
            async for chunk in stream(request.SerializeToString(), timeout=600):
                total += len(chunk)
            elapsed = time.perf_counter() - t0
            after = vm_hwm_kib(sig.pid)
            label = f"{seed_mode}, source={source}" + (f" {options}" if options else "")
            print(f"\n## StreamInitLatents, 64x4x1024x1024 float32 (1 GiB), {label}")
            print(
                f"received {total / 2**30:.3f} GiB in {elapsed:.1f} s "
                f"({total / elapsed / 1e9:.2f} GB/s); server peak RSS (VmHWM) "
                f"{before / 1024:.0f} MB before, {after / 1024:.0f} MB after "
                f"(+{(after - before) / 1024:.0f} MB)"
            )
    finally:
        sig.terminate()
        sig.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--only-stream", action="store_true", help="only the 1 GiB stream rows")
    parser.add_argument("--only-small", action="store_true", help="only the SD1.5 rows")
    parser.add_argument("--naive-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_server:
        naive_server(args.naive_server)
        return
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
