"""The transport-agnostic service layer: what NoiseService and the Open Inference Protocol facade
both call. It owns the request plans (validated requests kept for callers that only change their
seeds), the server's size limits and its memory budget; the servicers only adapt messages.

Memory: every unary reply, stream and schedule reserves its working memory from one budget
(``ServerConfig.memory_budget_bytes``) before anything is allocated, and releases it when the call
ends. A request larger than the whole budget is refused as too large (the caller's fault); one
that does not fit beside the calls in flight is refused as overloaded (retry later). Streams hold
about one chunk at a time in every seed mode, so their reservation does not grow with the tensor.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sigmaserve import _core
from sigmaserve.errors import OverloadedError, TooLargeError, invalid
from sigmaserve.latents import latents_request
from sigmaserve.results import Schedule
from sigmaserve.schedules import get_schedule
from sigmaserve.server import protocol
from sigmaserve.server.config import ServerConfig

# Requests kept for callers that repeat everything but the seeds.
PLAN_CACHE_SIZE = 256
# Working memory of a schedule per step (the core's arrays, the reply, its JSON), measured at
# 10**6 steps (about 75 bytes a step) with headroom.
SCHEDULE_BYTES_PER_STEP = 128
# grpc copies a reply's bytes into its own buffers once while sending.
REPLY_COPIES = 2


class Reservation:
    """Bytes taken from a :class:`MemoryBudget`; :meth:`release` (idempotent) gives them back."""

    __slots__ = ("_budget", "nbytes")

    def __init__(self, budget: MemoryBudget | None, nbytes: int) -> None:
        self._budget = budget
        self.nbytes = nbytes

    def release(self, *_: Any) -> None:
        budget, self._budget = self._budget, None
        if budget is not None:
            budget.give_back(self.nbytes)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class MemoryBudget:
    """Bytes of working memory the calls in flight may hold together."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self.peak = 0
        self._lock = threading.Lock()

    def reserve(self, nbytes: int, field: str) -> Reservation:
        """Takes ``nbytes``, or raises: ``TooLargeError`` (on ``field``) when they exceed the
        whole budget, ``OverloadedError`` when they do not fit beside the calls in flight."""
        if nbytes > self.limit:
            raise TooLargeError(
                f"{field}: needs {nbytes} bytes of server memory, over this server's budget of "
                f"{self.limit}",
                field,
            )
        with self._lock:
            if self.in_use + nbytes > self.limit:
                raise OverloadedError(
                    f"server memory budget in use ({self.in_use} of {self.limit} bytes); "
                    "retry later"
                )
            self.in_use += nbytes
            self.peak = max(self.peak, self.in_use)
        return Reservation(self, nbytes)

    def give_back(self, nbytes: int) -> None:
        with self._lock:
            self.in_use -= nbytes


@dataclass
class Reply:
    """A serialized reply and the memory reserved for it until the call ends."""

    data: bytes
    reservation: Reservation


@dataclass
class LatentsStream:
    """StreamInitLatents: the header message, then the payload messages (``next`` does the work
    for one message; call it from a worker thread)."""

    header: bytes
    messages: Iterator[bytes]
    reservation: Reservation


class LatentsService:
    """Latents and schedules for any transport, within the server's limits and budget."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.budget = MemoryBudget(config.memory_budget_bytes)
        self._plans: OrderedDict[bytes, _core.LatentsRequest] = OrderedDict()
        self._lock = threading.Lock()

    # ---- schedules ------------------------------------------------------------------------

    def schedule(self, arguments: Mapping[str, Any]) -> tuple[Schedule, Reservation]:
        """``get_schedule(**arguments)`` (``overrides`` spread), admitted against the budget."""
        kwargs = dict(arguments)
        overrides = kwargs.pop("overrides", None) or {}
        steps = _schedule_length(kwargs.get("num_inference_steps"), overrides)
        reservation = self.budget.reserve(steps * SCHEDULE_BYTES_PER_STEP, "num_inference_steps")
        try:
            return get_schedule(**kwargs, **overrides), reservation
        except BaseException:
            reservation.release()
            raise

    # ---- latents --------------------------------------------------------------------------

    def cached_request(
        self, arguments: Mapping[str, Any], plan_key: bytes
    ) -> _core.LatentsRequest | None:
        """The kept request for ``plan_key`` (every argument but the seeds, encoded) with these
        arguments' seeds, or None: callers that only change their seeds skip the validation and
        the schedule lookup."""
        with self._lock:
            plan = self._plans.get(plan_key)
        if plan is None:
            return None
        return plan.with_seeds(arguments.get("seeds", []))

    def latents_request(
        self, arguments: Mapping[str, Any], plan_key: bytes | None = None
    ) -> _core.LatentsRequest:
        """The validated request for ``sample_init_latents`` arguments, kept under
        ``plan_key`` when one is given (see :meth:`cached_request`)."""
        # A message without seeds still reaches the core, which names the missing field.
        arguments = {"seeds": [], **arguments}
        request = latents_request(**arguments, max_elements=self.config.max_elements)
        if plan_key is not None:
            with self._lock:
                self._plans[plan_key] = request
                while len(self._plans) > PLAN_CACHE_SIZE:
                    self._plans.popitem(last=False)
        return request

    def unary(self, request: _core.LatentsRequest) -> Reply:
        """The serialized SampleInitLatentsResponse, within the unary limit and the budget."""
        return self._unary_bytes(request, lambda: protocol.latents_reply_prefix(request))

    def payload(self, request: _core.LatentsRequest) -> Reply:
        """The scaled little-endian payload alone (the OIP facade's raw output)."""
        return self._unary_bytes(request, lambda: b"")

    def _unary_bytes(self, request: _core.LatentsRequest, prefix: Callable[[], bytes]) -> Reply:
        config = self.config
        request.check_size(config.max_elements, config.max_unary_reply_bytes)
        need = REPLY_COPIES * request.nbytes + request.working_bytes
        reservation = self.budget.reserve(need, "shape")
        try:
            return Reply(request.reply(prefix()), reservation)
        except BaseException:
            reservation.release()
            raise

    def stream(self, request: _core.LatentsRequest) -> LatentsStream:
        """StreamInitLatents' messages, produced with memory bounded by about one chunk."""
        chunk = self.config.stream_chunk_bytes
        request.check_size(self.config.max_elements)
        # The chunk being written, grpc's copy of it, and the draw's read-ahead.
        need = 3 * chunk + request.working_bytes
        reservation = self.budget.reserve(need, "shape")
        try:
            header = protocol.latents_header(request)
            stream = request.stream(chunk, protocol.CHUNK_DATA_KEY)
        except BaseException:
            reservation.release()
            raise
        return LatentsStream(header, _messages(stream.next_message), reservation)


def _messages(next_message: Callable[[], bytes | None]) -> Iterator[bytes]:
    while (message := next_message()) is not None:
        yield message


def _schedule_length(steps: Any, overrides: Mapping[str, Any]) -> int:
    """The length the budget is reserved for: the steps, or the custom arrays' length."""
    if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0:
        return steps
    for key in ("timesteps", "sigmas"):
        custom = overrides.get(key)
        if isinstance(custom, (list, tuple)):
            return max(len(custom), 1)
    if steps is not None and not isinstance(steps, int):
        raise invalid("num_inference_steps", f"must be an integer, got {steps!r}")
    return 50


__all__ = [
    "LatentsService",
    "LatentsStream",
    "MemoryBudget",
    "Reply",
    "Reservation",
]
