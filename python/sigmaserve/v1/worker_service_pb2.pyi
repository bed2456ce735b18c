from google.protobuf import struct_pb2 as _struct_pb2
from sigmaserve.v1 import noise_service_pb2 as _noise_service_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenerateRequest(_message.Message):
    __slots__ = ("prompt", "negative_prompt", "seeds", "num_inference_steps", "scheduler", "guidance_scale", "width", "height", "scheduler_overrides", "source", "seed_mode", "batch_size", "signed_seeds", "num_frames")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SEED_MODE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    SIGNED_SEEDS_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    negative_prompt: str
    seeds: _containers.RepeatedScalarFieldContainer[int]
    num_inference_steps: int
    scheduler: str
    guidance_scale: float
    width: int
    height: int
    scheduler_overrides: _struct_pb2.Struct
    source: _noise_service_pb2.NoiseSource
    seed_mode: _noise_service_pb2.SeedMode
    batch_size: int
    signed_seeds: _containers.RepeatedScalarFieldContainer[int]
    num_frames: int
    def __init__(self, prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., seeds: _Optional[_Iterable[int]] = ..., num_inference_steps: _Optional[int] = ..., scheduler: _Optional[str] = ..., guidance_scale: _Optional[float] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., scheduler_overrides: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., source: _Optional[_Union[_noise_service_pb2.NoiseSource, str]] = ..., seed_mode: _Optional[_Union[_noise_service_pb2.SeedMode, str]] = ..., batch_size: _Optional[int] = ..., signed_seeds: _Optional[_Iterable[int]] = ..., num_frames: _Optional[int] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("png", "seed", "width", "height")
    PNG_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    png: bytes
    seed: int
    width: int
    height: int
    def __init__(self, png: _Optional[bytes] = ..., seed: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class Video(_message.Message):
    __slots__ = ("frames", "seed", "width", "height")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedScalarFieldContainer[bytes]
    seed: int
    width: int
    height: int
    def __init__(self, frames: _Optional[_Iterable[bytes]] = ..., seed: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("images", "seeds", "scheduler", "timesteps", "sigmas", "init_noise_sigma", "num_inference_steps", "device", "dtype", "pipeline", "warnings", "videos", "num_frames")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    TIMESTEPS_FIELD_NUMBER: _ClassVar[int]
    SIGMAS_FIELD_NUMBER: _ClassVar[int]
    INIT_NOISE_SIGMA_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    VIDEOS_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    seeds: _containers.RepeatedScalarFieldContainer[int]
    scheduler: str
    timesteps: _noise_service_pb2.Tensor
    sigmas: _noise_service_pb2.Tensor
    init_noise_sigma: float
    num_inference_steps: int
    device: str
    dtype: str
    pipeline: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    videos: _containers.RepeatedCompositeFieldContainer[Video]
    num_frames: int
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., seeds: _Optional[_Iterable[int]] = ..., scheduler: _Optional[str] = ..., timesteps: _Optional[_Union[_noise_service_pb2.Tensor, _Mapping]] = ..., sigmas: _Optional[_Union[_noise_service_pb2.Tensor, _Mapping]] = ..., init_noise_sigma: _Optional[float] = ..., num_inference_steps: _Optional[int] = ..., device: _Optional[str] = ..., dtype: _Optional[str] = ..., pipeline: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ..., videos: _Optional[_Iterable[_Union[Video, _Mapping]]] = ..., num_frames: _Optional[int] = ...) -> None: ...
