"""Arithmetic precision of SiliconNet's convolution stack: float32, or bfloat16 autocast.

bfloat16 pays only where the hardware multiplies it natively: CPUs with AMX or AVX512-BF16
(a 2048² matmul ran 2.8x faster in bf16 than in fp32 on this project's Xeon) and CUDA GPUs
with bf16 support. Elsewhere torch emulates it, which is slower than fp32. Only the
convolutions of :class:`~ecglatent.models.siliconet.SiliconEmbedding` run in bf16; their
features come back as float32, so the linear classifier, the SimSiam projector/predictor,
losses and probabilities stay float32. The β-VAE has no precision knob: its GroupNorm-heavy
step was ~20 % slower under bf16 autocast on the same CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` multiplies bfloat16 in hardware (AMX/AVX512-BF16, or a bf16 GPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # private but stable probes (torch.cpu, used by inductor); absent ones mean "no"
        probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
    return False


def resolve_precision(name: str, device: torch.device | str) -> str:
    """``'fp32'`` or ``'bf16'`` for the configured ``name``: 'auto' is bf16 where native."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {name!r}")
    if name == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return name


def compute_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a resolved precision (None = plain float32)."""
    return {"fp32": None, "bf16": torch.bfloat16}[precision]


@contextmanager
def embeddings_in(model: nn.Module, precision: str) -> Iterator[nn.Module]:
    """Run every SiliconEmbedding in ``model`` at ``precision`` ('fp32'/'bf16') inside the block.

    Copies made inside (``inference_copy``, ``deepcopy``) keep the setting; ``model`` itself
    gets its previous setting back on exit, so a saved or served model is plain float32.
    """
    from ecglatent.models.siliconet import SiliconEmbedding

    dtype = compute_dtype(precision)
    embeddings = [m for m in model.modules() if isinstance(m, SiliconEmbedding)]
    before = [m.compute_dtype for m in embeddings]
    for m in embeddings:
        m.compute_dtype = dtype
    try:
        yield model
    finally:
        for m, d in zip(embeddings, before, strict=True):
            m.compute_dtype = d
