"""A larger FactorECG-style VAE (after van de Leur et al. 2022), the paper's second architecture.

Not a reproduction of the 50M-parameter FactorECG network: a deeper, wider encoder/decoder
with the same interface as the small VAE, a few million parameters, and affordable on CPU.

Encoder: a strided (1, 7) stem, then two 2-D stages (32, 64 channels) whose (1, 5) kernels run
along time within each lead, then a (n_leads, 1) convolution that mixes the leads into one row,
then two 1-D stages (128, 256 channels; a height-1 map with (1, 5) kernels is a 1-D conv).
Every stage starts with a stride-(1, 2) conv and holds residual basic blocks (two convs each).
Time shrinks 32× in all, so T ≥ 64 leaves at least 2 positions at the bottleneck. Mixing leads
after the 2-D stages keeps the expensive wide stages cheap (they see 1 row instead of 12).
The decoder mirrors it with transposed convs; the last one is linear (signed ECG output).
"""

from __future__ import annotations

from torch import nn

from ecglatent.models.small_vae import (
    LOGVAR_BOUND,
    ConvBlock,
    ResBlock,
    TaskVAE,
    UpBlock,
    transposed_conv,
)

FACTOR_WIDTHS: tuple[int, int, int, int] = (32, 64, 128, 256)
FACTOR_BLOCKS: tuple[int, int, int, int] = (1, 1, 2, 2)  # residual basic blocks per stage
STEM_KERNEL = 7
KERNEL = 5


def factor_bodies(
    n_leads: int,
    dropout: float = 0.0,
    widths: tuple[int, int, int, int] = FACTOR_WIDTHS,
    blocks: tuple[int, int, int, int] = FACTOR_BLOCKS,
) -> tuple[nn.Sequential, nn.Sequential]:
    """Encoder and decoder conv bodies of the FactorECG-style VAE (see the module docstring)."""
    if len(widths) != 4 or len(blocks) != 4:
        raise ValueError("widths and blocks need 4 entries (two 2-D stages, two 1-D stages)")
    k = (1, KERNEL)
    ks = (1, STEM_KERNEL)
    down = (1, 2)
    w0, w1, w2, w3 = widths

    def res(c: int, n: int) -> list[nn.Module]:
        return [ResBlock(c, k, n_convs=2, dropout=dropout) for _ in range(n)]

    enc: list[nn.Module] = [ConvBlock(1, w0, ks, stride=down, dropout=dropout)]
    enc += [ConvBlock(w0, w0, k, stride=down, dropout=dropout), *res(w0, blocks[0])]
    enc += [ConvBlock(w0, w1, k, stride=down, dropout=dropout), *res(w1, blocks[1])]
    # Lead mixing: (B, w1, n_leads, t) → (B, w2, 1, t).
    enc.append(ConvBlock(w1, w2, (n_leads, 1), padding=(0, 0), dropout=dropout))
    enc += [ConvBlock(w2, w2, k, stride=down, dropout=dropout), *res(w2, blocks[2])]
    enc += [ConvBlock(w2, w3, k, stride=down, dropout=dropout), *res(w3, blocks[3])]

    dec: list[nn.Module] = [*res(w3, blocks[3]), UpBlock(w3, w2, k, stride=down, dropout=dropout)]
    dec += [*res(w2, blocks[2]), UpBlock(w2, w2, k, stride=down, dropout=dropout)]
    # Lead un-mixing: (B, w2, 1, t) → (B, w1, n_leads, t).
    dec.append(UpBlock(w2, w1, (n_leads, 1), stride=(1, 1), dropout=dropout))
    dec += [*res(w1, blocks[1]), UpBlock(w1, w0, k, stride=down, dropout=dropout)]
    dec += [*res(w0, blocks[0]), UpBlock(w0, w0, k, stride=down, dropout=dropout)]
    dec.append(transposed_conv(w0, 1, ks, down))
    return nn.Sequential(*enc), nn.Sequential(*dec)


def build_factor_vae(
    n_leads: int,
    n_samples: int,
    latent_dim: int,
    latent_pred: int | None = None,
    dropout: float = 0.0,
    n_extra: int = 2,
    widths: tuple[int, int, int, int] = FACTOR_WIDTHS,
    blocks: tuple[int, int, int, int] = FACTOR_BLOCKS,
    logvar_bound: float | None = LOGVAR_BOUND,
) -> TaskVAE:
    """The FactorECG-style VAE (~4M parameters on 12 × 400 inputs with the default widths)."""
    enc, dec = factor_bodies(n_leads, dropout=dropout, widths=widths, blocks=blocks)
    return TaskVAE(
        enc,
        dec,
        n_leads,
        n_samples,
        latent_dim,
        latent_pred,
        n_extra,
        arch="factorecg",
        logvar_bound=logvar_bound,
    )
