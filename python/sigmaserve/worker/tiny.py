"""A tiny, randomly initialised Stable Diffusion 1.5-style pipeline, built in code (no download).

Used by the hand-off tests and by the compose ``cpu`` profile's smoke test::

    python -m sigmaserve.worker.tiny --out /models/tiny

writes a pipeline folder (``save_pretrained`` layout, safetensors weights) that
``StableDiffusionPipeline.from_pretrained`` loads. Weights come from ``torch.manual_seed(seed)``,
so the same seed gives the same model on every machine with the same torch.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# SD 1.5's scheduler/scheduler_config.json (PNDM, scaled_linear betas): what the real model ships.
SD15_SCHEDULER_CONFIG: dict[str, Any] = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}

# 8x downsampling like SD (4 VAE blocks), so a 32x32 image has 4x4 latents.
IMAGE_SIZE = 32


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


def build_tiny_pipeline(seed: int = 0) -> Any:
    """A StableDiffusionPipeline with tiny random weights (float32, CPU, no safety checker)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab, merges = _byte_vocab()
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = Path(tmp, "vocab.json")
        merges_file = Path(tmp, "merges.txt")
        vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
        merges_file.write_text("\n".join(merges) + "\n", encoding="utf-8")
        tokenizer = CLIPTokenizer(vocab=str(vocab_file), merges=str(merges_file))
        tokenizer.model_max_length = 16

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
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=IMAGE_SIZE,
    )
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
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
    )
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


def write_tiny_pipeline(out: str | Path, seed: int = 0) -> Path:
    """Save the tiny pipeline to ``out`` (a diffusers model folder); returns the folder."""
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    build_tiny_pipeline(seed).save_pretrained(path, safe_serialization=True)
    # save_pretrained writes every default (timestep_spacing "leading", ...); the real SD 1.5
    # folder omits them, which is what makes Euler.from_config(...) fall back to "linspace".
    config = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0"}
    config.update(SD15_SCHEDULER_CONFIG)
    Path(path, "scheduler", "scheduler_config.json").write_text(
        json.dumps(config, indent=2) + "\n", encoding="utf-8"
    )
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sigmaserve.worker.tiny",
        description="Write a tiny random SD1.5-style diffusers pipeline folder (for smoke tests).",
    )
    parser.add_argument("--out", required=True, help="folder to write (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    parser.add_argument(
        "--if-missing", action="store_true", help="do nothing when OUT already holds a pipeline"
    )
    args = parser.parse_args(argv)
    if args.if_missing and Path(args.out, "model_index.json").is_file():
        print(f"tiny pipeline already in {args.out}")
        return 0
    path = write_tiny_pipeline(args.out, args.seed)
    print(f"tiny pipeline written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
