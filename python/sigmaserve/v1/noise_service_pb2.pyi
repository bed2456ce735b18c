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
    __slots__ = ("scheduler", "num_inference_steps", "preset", "config", "overrides", "width", "height", "num_frames", "pipeline", "tensor_values")
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    TENSOR_VALUES_FIELD_NUMBER: _ClassVar[int]
    scheduler: str
    num_inference_steps: int
    preset: str
    config: _struct_pb2.Struct
    overrides: _struct_pb2.Struct
    width: int
    height: int
    num_frames: int
    pipeline: bool
    tensor_values: bool
    def __init__(self, scheduler: _Optional[str] = ..., num_inference_steps: _Optional[int] = ..., preset: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., overrides: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., num_frames: _Optional[int] = ..., pipeline: _Optional[bool] = ..., tensor_values: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("shape", "width", "height", "batch_size", "preset", "seeds", "seed_mode", "source", "dtype", "sigma", "scheduler", "num_inference_steps", "scheduler_overrides", "noise_options", "return_generator_states", "num_frames", "signed_seeds", "tensor_values")
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
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
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
    num_frames: int
    signed_seeds: _containers.RepeatedScalarFieldContainer[int]
    tensor_values: bool
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., batch_size: _Optional[int] = ..., preset: _Optional[str] = ..., seeds: _Optional[_Iterable[int]] = ..., seed_mode: _Optional[_Union[SeedMode, str]] = ..., source: _Optional[_Union[NoiseSource, str]] = ..., dtype: _Optional[_Union[DataType, str]] = ..., sigma: _Optional[float] = ..., scheduler: _Optional[str] = ..., num_inference_steps: _Optional[int] = ..., scheduler_overrides: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., noise_options: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., return_generator_states: _Optional[bool] = ..., num_frames: _Optional[int] = ..., signed_seeds: _Optional[_Iterable[int]] = ..., tensor_values: _Optional[bool] = ...) -> None: ...

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

class GetCatalogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CatalogScheduler(_message.Message):
    __slots__ = ("name", "family", "tool")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    name: str
    family: str
    tool: str
    def __init__(self, name: _Optional[str] = ..., family: _Optional[str] = ..., tool: _Optional[str] = ...) -> None: ...

class CatalogAlias(_message.Message):
    __slots__ = ("name", "tool", "scheduler", "options")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    tool: str
    scheduler: str
    options: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., tool: _Optional[str] = ..., scheduler: _Optional[str] = ..., options: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class LatentLayout(_message.Message):
    __slots__ = ("channels", "vae_scale_factor", "vae_temporal_factor", "pack_factor", "packing", "axes", "noise_dtype", "frames", "size_multiple", "scales_by_init_noise_sigma")
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    VAE_SCALE_FACTOR_FIELD_NUMBER: _ClassVar[int]
    VAE_TEMPORAL_FACTOR_FIELD_NUMBER: _ClassVar[int]
    PACK_FACTOR_FIELD_NUMBER: _ClassVar[int]
    PACKING_FIELD_NUMBER: _ClassVar[int]
    AXES_FIELD_NUMBER: _ClassVar[int]
    NOISE_DTYPE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    SIZE_MULTIPLE_FIELD_NUMBER: _ClassVar[int]
    SCALES_BY_INIT_NOISE_SIGMA_FIELD_NUMBER: _ClassVar[int]
    channels: int
    vae_scale_factor: int
    vae_temporal_factor: int
    pack_factor: int
    packing: str
    axes: str
    noise_dtype: str
    frames: str
    size_multiple: int
    scales_by_init_noise_sigma: bool
    def __init__(self, channels: _Optional[int] = ..., vae_scale_factor: _Optional[int] = ..., vae_temporal_factor: _Optional[int] = ..., pack_factor: _Optional[int] = ..., packing: _Optional[str] = ..., axes: _Optional[str] = ..., noise_dtype: _Optional[str] = ..., frames: _Optional[str] = ..., size_multiple: _Optional[int] = ..., scales_by_init_noise_sigma: _Optional[bool] = ...) -> None: ...

class CatalogPreset(_message.Message):
    __slots__ = ("name", "repo", "pipeline", "pipeline_file", "scheduler", "steps", "width", "height", "num_frames", "model", "convention", "layout", "aliases", "config_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REPO_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    PIPELINE_FILE_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CONVENTION_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    repo: str
    pipeline: str
    pipeline_file: str
    scheduler: str
    steps: int
    width: int
    height: int
    num_frames: int
    model: str
    convention: str
    layout: LatentLayout
    aliases: _containers.RepeatedScalarFieldContainer[str]
    config_json: str
    def __init__(self, name: _Optional[str] = ..., repo: _Optional[str] = ..., pipeline: _Optional[str] = ..., pipeline_file: _Optional[str] = ..., scheduler: _Optional[str] = ..., steps: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., num_frames: _Optional[int] = ..., model: _Optional[str] = ..., convention: _Optional[str] = ..., layout: _Optional[_Union[LatentLayout, _Mapping]] = ..., aliases: _Optional[_Iterable[str]] = ..., config_json: _Optional[str] = ...) -> None: ...

class CatalogExcluded(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CatalogFamily(_message.Message):
    __slots__ = ("name", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class NameList(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class GetCatalogResponse(_message.Message):
    __slots__ = ("schedulers", "aliases", "presets", "excluded", "families", "names")
    class NamesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: NameList
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[NameList, _Mapping]] = ...) -> None: ...
    SCHEDULERS_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    PRESETS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    FAMILIES_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    schedulers: _containers.RepeatedCompositeFieldContainer[CatalogScheduler]
    aliases: _containers.RepeatedCompositeFieldContainer[CatalogAlias]
    presets: _containers.RepeatedCompositeFieldContainer[CatalogPreset]
    excluded: _containers.RepeatedCompositeFieldContainer[CatalogExcluded]
    families: _containers.RepeatedCompositeFieldContainer[CatalogFamily]
    names: _containers.MessageMap[str, NameList]
    def __init__(self, schedulers: _Optional[_Iterable[_Union[CatalogScheduler, _Mapping]]] = ..., aliases: _Optional[_Iterable[_Union[CatalogAlias, _Mapping]]] = ..., presets: _Optional[_Iterable[_Union[CatalogPreset, _Mapping]]] = ..., excluded: _Optional[_Iterable[_Union[CatalogExcluded, _Mapping]]] = ..., families: _Optional[_Iterable[_Union[CatalogFamily, _Mapping]]] = ..., names: _Optional[_Mapping[str, NameList]] = ...) -> None: ...
