"""Tiny, randomly initialised diffusers pipelines, built in code (no download, no weights).

One per pipeline family the worker runs: SD 1.5 (``build_tiny_pipeline``), SDXL, SD3, Flux and
Wan 2.1 (video). They keep the real models' latent layouts (latent channels, VAE factors, Flux's
2x2 packing, SD3's 2x2 patches, Wan's 4x temporal factor and float32 draw) and the scheduler
config each model ships, so the hand-off is exercised on the real shapes, packing, scaling and
schedule conventions; everything else is as small as diffusers' own pipeline tests make it
(tests/pipelines/*/test_*.py ``get_dummy_components``, diffusers 0.42).

Used by the hand-off tests and by the compose ``cpu`` profile's smoke test::

    python -m sigmaserve.worker.tiny --out /models/tiny [--family sdxl]

writes a pipeline folder (``save_pretrained`` layout, safetensors weights) that
``DiffusionPipeline.from_pretrained`` loads. Weights come from ``torch.manual_seed(seed)``,
so the same seed gives the same model on every machine with the same torch.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def _preset_config(preset: str) -> dict[str, Any]:
    """The ``scheduler_config.json`` the preset's model repository ships, as the core holds it
    (without ``_class_name``)."""
    import sigmaserve

    config = dict(sigmaserve.list_presets()[preset]["config"])
    config.pop("_class_name", None)
    return config


# SD 1.5's scheduler/scheduler_config.json (PNDM, scaled_linear betas): what the real model ships.
SD15_SCHEDULER_CONFIG: dict[str, Any] = _preset_config("sd15")

# 8x downsampling like SD (4 VAE blocks), so a 32x32 image has 4x4 latents.
IMAGE_SIZE = 32

# Wan's temporal VAE factor is 4: 9 frames are 3 latent frames (the shortest clip with motion).
VIDEO_FRAMES = 9


def _byte_vocab() -> tuple[dict[str, int], list[str]]:
    """A byte-level BPE vocabulary (CLIP's byte-to-unicode map, no merges) made in code."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("\xa1"), ord("\xac") + 1))
        + list(range(ord("\xae"), ord("\xff") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    chars = [chr(c) for c in codes]
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(tokens)}, ["#version: 0.2"]


def _clip_tokenizer() -> Any:
    """A CLIPTokenizer over the byte vocabulary, 16 tokens long."""
    from transformers import CLIPTokenizer

    vocab, merges = _byte_vocab()
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = Path(tmp, "vocab.json")
        merges_file = Path(tmp, "merges.txt")
        vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
        merges_file.write_text("\n".join(merges) + "\n", encoding="utf-8")
        tokenizer = CLIPTokenizer(vocab=str(vocab_file), merges=str(merges_file))
        tokenizer.model_max_length = 16
    return tokenizer


def _clip_config(tokenizer: Any) -> Any:
    """A two-layer CLIP text encoder config (hidden size 32, projection 32)."""
    from transformers import CLIPTextConfig

    vocab = tokenizer.get_vocab()
    return CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
        projection_dim=32,
    )


def _t5_tokenizer() -> Any:
    """A T5 (Unigram) tokenizer over lower-case letters and digits, made in code."""
    from transformers import T5Tokenizer

    symbols = "abcdefghijklmnopqrstuvwxyz0123456789"
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [("\u2581" + s, -2.5) for s in symbols] + [(s, -3.0) for s in symbols]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def _t5_encoder(tokenizer: Any, d_model: int, *, umt5: bool = False) -> Any:
    """A two-layer T5 (or UMT5, Wan's) encoder without dropout."""
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    settings: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "d_model": d_model,
        "d_ff": 37,
        "d_kv": 8,
        "num_heads": 4,
        "num_layers": 2,
        "dropout_rate": 0.0,
        "relative_attention_num_buckets": 8,
        "relative_attention_max_distance": 32,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if umt5:
        return UMT5EncoderModel(UMT5Config(**settings))
    return T5EncoderModel(T5Config(**settings))


def _image_vae(latent_channels: int, **kwargs: Any) -> Any:
    """A four-block AutoencoderKL: 8x spatial factor, as SD, SDXL, SD3 and Flux have."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=8,
        sample_size=IMAGE_SIZE,
        **kwargs,
    )


def _preset_scheduler(preset: str) -> Any:
    """The scheduler the preset's model repository ships, built ``from_config`` of its
    ``scheduler_config.json`` (like loading the file)."""
    import diffusers

    import sigmaserve

    class_name = str(sigmaserve.list_presets()[preset]["class_name"])
    return getattr(diffusers, class_name).from_config(_preset_config(preset))


def _ready(pipe: Any) -> Any:
    """Inference mode for every module (T5's dropout would make runs differ), no progress bar."""
    import torch

    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_tiny_pipeline(seed: int = 0) -> Any:
    """A StableDiffusionPipeline with tiny random weights (float32, CPU, no safety checker)."""
    import torch
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    tokenizer = _clip_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    torch.manual_seed(seed + 1)
    vae = _image_vae(4)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(_clip_config(tokenizer))
    # from_config, like loading the real scheduler_config.json (PNDM ignores clip_sample).
    scheduler = PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)  # type: ignore[attr-defined]
    return pipe


def build_tiny_sdxl_pipeline(seed: int = 0) -> Any:
    """A StableDiffusionXLPipeline: two CLIP encoders (the second with projection), the
    ``text_time`` UNet conditioning, SDXL-base's EulerDiscreteScheduler config."""
    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer, tokenizer_2 = _clip_tokenizer(), _clip_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        # six time ids of 8 features plus text_encoder_2's 32 projected features
        projection_class_embeddings_input_dim=6 * 8 + 32,
        cross_attention_dim=64,  # both encoders' hidden states side by side
        norm_num_groups=8,
    )
    torch.manual_seed(seed + 1)
    vae = _image_vae(4)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(_clip_config(tokenizer))
    torch.manual_seed(seed + 3)
    text_encoder_2 = CLIPTextModelWithProjection(_clip_config(tokenizer_2))
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=_preset_scheduler("sdxl"),
        add_watermarker=False,
    )
    return _ready(pipe)


def build_tiny_sd3_pipeline(seed: int = 0) -> Any:
    """A StableDiffusion3Pipeline: two CLIP encoders with projection and a T5, a 16-channel VAE,
    a transformer with SD3's 2x2 patches, SD3-medium's FlowMatchEulerDiscreteScheduler config."""
    import torch
    from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection

    tokenizer, tokenizer_2, tokenizer_3 = _clip_tokenizer(), _clip_tokenizer(), _t5_tokenizer()
    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(
        sample_size=IMAGE_SIZE // 8,
        patch_size=2,
        in_channels=16,
        out_channels=16,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        joint_attention_dim=64,  # T5's width; the CLIP pair (2 x 32) is padded to it
        caption_projection_dim=32,
        pooled_projection_dim=64,  # both CLIP projections side by side
        pos_embed_max_size=16,
    )
    torch.manual_seed(seed + 1)
    vae = _image_vae(
        16,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModelWithProjection(_clip_config(tokenizer))
    torch.manual_seed(seed + 3)
    text_encoder_2 = CLIPTextModelWithProjection(_clip_config(tokenizer_2))
    torch.manual_seed(seed + 4)
    text_encoder_3 = _t5_encoder(tokenizer_3, 64)
    pipe = StableDiffusion3Pipeline(
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        text_encoder_3=text_encoder_3,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        tokenizer_3=tokenizer_3,
        scheduler=_preset_scheduler("sd3"),
    )
    return _ready(pipe)


def build_tiny_flux_pipeline(seed: int = 0) -> Any:
    """A FluxPipeline (FLUX.1-dev style: guidance embedding): CLIP and T5 encoders, a 16-channel
    VAE, latents packed 2x2 into 64 features, FLUX.1-dev's scheduler config."""
    import torch
    from diffusers import FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel

    tokenizer, tokenizer_2 = _clip_tokenizer(), _t5_tokenizer()
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,  # 16 latent channels x a 2x2 patch
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=64,  # T5's width
        pooled_projection_dim=32,  # CLIP's pooled output
        guidance_embeds=True,
        axes_dims_rope=(4, 4, 8),
    )
    torch.manual_seed(seed + 1)
    vae = _image_vae(
        16,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.1159,
        scaling_factor=0.3611,
    )
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(_clip_config(tokenizer))
    torch.manual_seed(seed + 3)
    text_encoder_2 = _t5_encoder(tokenizer_2, 64)
    pipe = FluxPipeline(
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        scheduler=_preset_scheduler("flux-dev"),
    )
    return _ready(pipe)


def build_tiny_wan_pipeline(seed: int = 0) -> Any:
    """A WanPipeline (Wan 2.1 text-to-video): UMT5 encoder, the Wan VAE (8x spatial, 4x temporal,
    16 channels), a two-layer transformer with (1, 2, 2) patches, and the UniPC flow scheduler
    the Wan-AI Diffusers repositories ship (the core's "wan2.1" preset)."""
    import torch
    from diffusers import AutoencoderKLWan, WanPipeline, WanTransformer3DModel

    tokenizer = _t5_tokenizer()
    torch.manual_seed(seed)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    torch.manual_seed(seed + 2)
    text_encoder = _t5_encoder(tokenizer, 32, umt5=True)
    pipe = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=_preset_scheduler("wan2.1"),
    )
    return _ready(pipe)


# The tiny pipeline of each family the worker runs (handoff.pipeline_kind's family names).
BUILDERS: dict[str, Callable[[int], Any]] = {
    "sd": build_tiny_pipeline,
    "sdxl": build_tiny_sdxl_pipeline,
    "sd3": build_tiny_sd3_pipeline,
    "flux": build_tiny_flux_pipeline,
    "wan": build_tiny_wan_pipeline,
}


def build_tiny(family: str, seed: int = 0) -> Any:
    """The tiny pipeline of ``family`` (one of ``BUILDERS``)."""
    if family not in BUILDERS:
        from sigmaserve.errors import invalid

        raise invalid("family", f"unknown family {family!r}; expected one of {sorted(BUILDERS)}")
    return BUILDERS[family](seed)


def write_tiny_pipeline(out: str | Path, seed: int = 0, family: str = "sd") -> Path:
    """Save the tiny pipeline of ``family`` to ``out`` (a diffusers model folder)."""
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    build_tiny(family, seed).save_pretrained(path, safe_serialization=True)
    if family == "sd":
        # save_pretrained writes every default (timestep_spacing "leading", ...); the real SD
        # 1.5 folder omits them, which is what makes Euler.from_config(...) fall back to
        # "linspace".
        config = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0"}
        config.update(SD15_SCHEDULER_CONFIG)
        Path(path, "scheduler", "scheduler_config.json").write_text(
            json.dumps(config, indent=2) + "\n", encoding="utf-8"
        )
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sigmaserve.worker.tiny",
        description="Write a tiny random diffusers pipeline folder (for smoke tests).",
    )
    parser.add_argument("--out", required=True, help="folder to write (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    parser.add_argument(
        "--family",
        default="sd",
        choices=sorted(BUILDERS),
        help="pipeline family (default sd: SD 1.5 style)",
    )
    parser.add_argument(
        "--if-missing", action="store_true", help="do nothing when OUT already holds a pipeline"
    )
    args = parser.parse_args(argv)
    if args.if_missing and Path(args.out, "model_index.json").is_file():
        print(f"tiny pipeline already in {args.out}")
        return 0
    path = write_tiny_pipeline(args.out, args.seed, args.family)
    print(f"tiny pipeline written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
