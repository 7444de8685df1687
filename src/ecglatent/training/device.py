"""Device choice and CPU threading, decided once per process."""

from __future__ import annotations

import os

import torch


def pick_device(name: str = "auto") -> torch.device:
    """'auto' → CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("vae.device asks for CUDA but torch sees no GPU; use 'auto' or 'cpu'")
    return torch.device(name)


def set_threads(n: int) -> None:
    """Use ``n`` intra-op threads; 0 means one per CPU this process may run on."""
    # The affinity mask, not os.cpu_count(): under taskset, cgroups or a CI runner the
    # machine's core count oversubscribes, and oversubscribed conv steps slow 5-10x.
    torch.set_num_threads(n or len(os.sched_getaffinity(0)) or 1)
