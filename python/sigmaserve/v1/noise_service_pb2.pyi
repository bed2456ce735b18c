from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DataType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_TYPE_UNSPECIFIED: _ClassVar[DataType]
    DATA_TYPE_FP32: _ClassVar[DataType]
    DATA_TYPE_FP64: _ClassVar[DataType]
    DATA_TYPE_FP16: _ClassVar[DataType]
    DATA_TYPE_BF16: _ClassVar[DataType]
    DATA_TYPE_INT64: _ClassVar[DataType]

class NoiseSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOISE_SOURCE_UNSPECIFIED: _ClassVar[NoiseSource]
    NOISE_SOURCE_CPU: _ClassVar[NoiseSource]
    NOISE_SOURCE_CUDA: _ClassVar[NoiseSource]
    NOISE_SOURCE_A1111_NV: _ClassVar[NoiseSource]

class SeedMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEED_MODE_UNSPECIFIED: _ClassVar[SeedMode]
    SEED_MODE_PER_ITEM: _ClassVar[SeedMode]
    SEED_MODE_BATCH: _ClassVar[SeedMode]
    SEED_MODE_A1111: _ClassVar[SeedMode]
DATA_TYPE_UNSPECIFIED: DataType
DATA_TYPE_FP32: DataType
DATA_TYPE_FP64: DataType
DATA_TYPE_FP16: DataType
DATA_TYPE_BF16: DataType
DATA_TYPE_INT64: DataType
NOISE_SOURCE_UNSPECIFIED: NoiseSource
NOISE_SOURCE_CPU: NoiseSource
NOISE_SOURCE_CUDA: NoiseSource
NOISE_SOURCE_A1111_NV: NoiseSource
SEED_MODE_UNSPECIFIED: SeedMode
SEED_MODE_PER_ITEM: SeedMode
SEED_MODE_BATCH: SeedMode
SEED_MODE_A1111: SeedMode

class Tensor(_message.Message):
    __slots__ = ("dtype", "shape", "data", "values")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    dtype: DataType
    shape: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, dtype: _Optional[_Union[DataType, str]] = ..., shape: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class GetScheduleRequest(_message.Message):
    __slots__ = ("scheduler", "num_inference_steps", "preset", "config", "overrides", "tensor_values")
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    TENSOR_VALUES_FIELD_NUMBER: _ClassVar[int]
    scheduler: str
    num_inference_steps: int
    preset: str
    config: _struct_pb2.Struct
    overrides: _struct_pb2.Struct
    tensor_values: bool
    def __init__(self, scheduler: _Optional[str] = ..., num_inference_steps: _Optional[int] = ..., preset: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., overrides: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tensor_values: _Optional[bool] = ...) -> None: ...

class GetScheduleResponse(_message.Message):
    __slots__ = ("scheduler", "init_noise_sigma", "config_json", "warnings", "extras_json", "timesteps", "sigmas", "betas", "alphas_cumprod")
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    INIT_NOISE_SIGMA_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    EXTRAS_JSON_FIELD_NUMBER: _ClassVar[int]
    TIMESTEPS_FIELD_NUMBER: _ClassVar[int]
    SIGMAS_FIELD_NUMBER: _ClassVar[int]
    BETAS_FIELD_NUMBER: _ClassVar[int]
    ALPHAS_CUMPROD_FIELD_NUMBER: _ClassVar[int]
    scheduler: str
    init_noise_sigma: float
    config_json: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    extras_json: str
    timesteps: Tensor
    sigmas: Tensor
    betas: Tensor
    alphas_cumprod: Tensor
    def __init__(self, scheduler: _Optional[str] = ..., init_noise_sigma: _Optional[float] = ..., config_json: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ..., extras_json: _Optional[str] = ..., timesteps: _Optional[_Union[Tensor, _Mapping]] = ..., sigmas: _Optional[_Union[Tensor, _Mapping]] = ..., betas: _Optional[_Union[Tensor, _Mapping]] = ..., alphas_cumprod: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...

class SampleInitLatentsRequest(_message.Message):
    __slots__ = ("shape", "width", "height", "batch_size", "preset", "seeds", "seed_mode", "source", "dtype", "sigma", "scheduler", "num_inference_steps", "scheduler_overrides", "noise_options", "return_generator_states", "signed_seeds", "tensor_values")
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    SEED_MODE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SIGMA_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    NOISE_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    RETURN_GENERATOR_STATES_FIELD_NUMBER: _ClassVar[int]
    SIGNED_SEEDS_FIELD_NUMBER: _ClassVar[int]
    TENSOR_VALUES_FIELD_NUMBER: _ClassVar[int]
    shape: _containers.RepeatedScalarFieldContainer[int]
    width: int
    height: int
    batch_size: int
    preset: str
    seeds: _containers.RepeatedScalarFieldContainer[int]
    seed_mode: SeedMode
    source: NoiseSource
    dtype: DataType
    sigma: float
    scheduler: str
    num_inference_steps: int
    scheduler_overrides: _struct_pb2.Struct
    noise_options: _struct_pb2.Struct
    return_generator_states: bool
    signed_seeds: _containers.RepeatedScalarFieldContainer[int]
    tensor_values: bool
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., batch_size: _Optional[int] = ..., preset: _Optional[str] = ..., seeds: _Optional[_Iterable[int]] = ..., seed_mode: _Optional[_Union[SeedMode, str]] = ..., source: _Optional[_Union[NoiseSource, str]] = ..., dtype: _Optional[_Union[DataType, str]] = ..., sigma: _Optional[float] = ..., scheduler: _Optional[str] = ..., num_inference_steps: _Optional[int] = ..., scheduler_overrides: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., noise_options: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., return_generator_states: _Optional[bool] = ..., signed_seeds: _Optional[_Iterable[int]] = ..., tensor_values: _Optional[bool] = ...) -> None: ...

class SampleInitLatentsResponse(_message.Message):
    __slots__ = ("init_noise_sigma", "seeds", "latents", "generator_states")
    INIT_NOISE_SIGMA_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    LATENTS_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_STATES_FIELD_NUMBER: _ClassVar[int]
    init_noise_sigma: float
    seeds: _containers.RepeatedScalarFieldContainer[int]
    latents: Tensor
    generator_states: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, init_noise_sigma: _Optional[float] = ..., seeds: _Optional[_Iterable[int]] = ..., latents: _Optional[_Union[Tensor, _Mapping]] = ..., generator_states: _Optional[_Iterable[bytes]] = ...) -> None: ...

class LatentsChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: LatentsHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[LatentsHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class LatentsHeader(_message.Message):
    __slots__ = ("dtype", "shape", "init_noise_sigma", "seeds", "total_bytes", "generator_states")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    INIT_NOISE_SIGMA_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_STATES_FIELD_NUMBER: _ClassVar[int]
    dtype: DataType
    shape: _containers.RepeatedScalarFieldContainer[int]
    init_noise_sigma: float
    seeds: _containers.RepeatedScalarFieldContainer[int]
    total_bytes: int
    generator_states: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, dtype: _Optional[_Union[DataType, str]] = ..., shape: _Optional[_Iterable[int]] = ..., init_noise_sigma: _Optional[float] = ..., seeds: _Optional[_Iterable[int]] = ..., total_bytes: _Optional[int] = ..., generator_states: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetServerInfoResponse(_message.Message):
    __slots__ = ("version", "max_elements", "max_unary_reply_bytes", "stream_chunk_bytes", "max_concurrent_rpcs")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    MAX_UNARY_REPLY_BYTES_FIELD_NUMBER: _ClassVar[int]
    STREAM_CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_RPCS_FIELD_NUMBER: _ClassVar[int]
    version: str
    max_elements: int
    max_unary_reply_bytes: int
    stream_chunk_bytes: int
    max_concurrent_rpcs: int
    def __init__(self, version: _Optional[str] = ..., max_elements: _Optional[int] = ..., max_unary_reply_bytes: _Optional[int] = ..., stream_chunk_bytes: _Optional[int] = ..., max_concurrent_rpcs: _Optional[int] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ("reply_bytes",)
    REPLY_BYTES_FIELD_NUMBER: _ClassVar[int]
    reply_bytes: int
    def __init__(self, reply_bytes: _Optional[int] = ...) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...
