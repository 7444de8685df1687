"""Figures of the paper's Fig. 3: latent factor traversals and latent-space scatter plots.

Figures are built on matplotlib's object API with an Agg canvas, never through pyplot: no
global backend switch, no figure registry to leak memory in long runs, and it works headless.
The decoder is any ``decode(z) -> beats`` callable, so the caller wraps the torch model::

    def decode(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.decode(torch.from_numpy(z).to(device)).cpu().numpy()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

__all__ = [
    "factor_traversal",
    "latent_scatter",
    "save_figure",
    "traversal_grid",
]

TRAVERSAL_SIGMAS = 3.0


def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 150) -> Path:
    """Write ``fig`` as PNG (parents created) and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, format="png")
    return out


def traversal_grid(
    latent_mean: np.ndarray, latent_std: np.ndarray, n_steps: int = 7
) -> tuple[np.ndarray, np.ndarray]:
    """Latent points of a factor traversal and the step offsets in units of σ.

    Returns ``(z, offsets)``: ``z`` has shape (L * n_steps, L), block ``i`` (rows
    ``i*n_steps:(i+1)*n_steps``) moves latent ``i`` from μ−3σ to μ+3σ with all other latents
    at their mean; ``offsets`` are the n_steps multiples of σ, −3 … 3.
    """
    mu = np.asarray(latent_mean, dtype=np.float64).ravel()
    sd = np.asarray(latent_std, dtype=np.float64).ravel()
    if mu.shape != sd.shape or mu.size == 0:
        raise ValueError(
            f"latent_mean and latent_std must be equal non-empty 1-D, got {mu.shape}, {sd.shape}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sd).all()) or (sd < 0).any():
        raise ValueError("latent_mean must be finite and latent_std finite and >= 0")
    if n_steps < 2:
        raise ValueError(f"n_steps must be >= 2, got {n_steps}")
    offsets = np.linspace(-TRAVERSAL_SIGMAS, TRAVERSAL_SIGMAS, n_steps)
    n_latent = mu.size
    z = np.tile(mu, (n_latent * n_steps, 1))
    for i in range(n_latent):
        z[i * n_steps : (i + 1) * n_steps, i] = mu[i] + offsets * sd[i]
    return z, offsets


def _lead_indices(
    lead_names: Sequence[str], leads_to_show: Sequence[str | int] | None
) -> list[int]:
    if leads_to_show is None:
        return list(range(len(lead_names)))
    names = list(lead_names)
    out = []
    for lead in leads_to_show:
        if isinstance(lead, str):
            if lead not in names:
                raise ValueError(f"lead {lead!r} not in lead_names {names}")
            out.append(names.index(lead))
        else:
            if not 0 <= int(lead) < len(names):
                raise ValueError(f"lead index {lead} out of range for {len(names)} leads")
            out.append(int(lead))
    if not out:
        raise ValueError("leads_to_show is empty")
    return out


def factor_traversal(
    decode: Callable[[np.ndarray], np.ndarray],
    latent_mean: np.ndarray,
    latent_std: np.ndarray,
    lead_names: Sequence[str],
    n_steps: int = 7,
    leads_to_show: Sequence[str | int] | None = None,
    fs: float | None = None,
    path: str | Path | None = None,
    title: str | None = None,
    cmap: str = "coolwarm",
) -> Figure:
    """Factor traversal: each latent swept from μ−3σ to μ+3σ, the others at their mean.

    ``latent_mean``/``latent_std`` are per-latent statistics of the encoded (e.g. training)
    set. ``decode`` is called once with the whole grid of :func:`traversal_grid`, a float32
    array of shape (L * n_steps, L), and must return (L * n_steps, n_leads, n_samples) (or
    (L * n_steps, n_samples) for one lead). The figure has one row per latent and one column
    per shown lead, steps coloured from blue (−3σ) to red (+3σ), and a shared colour bar.
    ``fs`` (Hz) puts the x axis in ms, else in samples. Saved as PNG when ``path`` is given.
    """
    names = list(lead_names)
    z, offsets = traversal_grid(latent_mean, latent_std, n_steps)
    n_latent = z.shape[1]
    out = np.asarray(decode(z.astype(np.float32)), dtype=np.float64)
    if out.ndim == 2:
        out = out[:, None, :]
    if out.ndim != 3 or out.shape[0] != z.shape[0]:
        raise ValueError(
            f"decode returned shape {out.shape}; expected ({z.shape[0]}, n_leads, n_samples)"
        )
    if out.shape[1] != len(names):
        raise ValueError(f"decode returned {out.shape[1]} leads but {len(names)} lead_names")
    leads = _lead_indices(names, leads_to_show)

    n_samples = out.shape[2]
    t = np.arange(n_samples) * (1000.0 / fs) if fs else np.arange(n_samples)
    colours = colormaps[cmap](np.linspace(0.0, 1.0, n_steps))
    fig = _new_figure((max(2.2 * len(leads), 4.0) + 0.8, 1.5 * n_latent + 0.8))
    axes = fig.subplots(n_latent, len(leads), squeeze=False, sharex=True, sharey="col")
    for i in range(n_latent):
        block = out[i * n_steps : (i + 1) * n_steps]
        for j, lead in enumerate(leads):
            ax = axes[i, j]
            for k in range(n_steps):
                ax.plot(t, block[k, lead], color=colours[k], linewidth=1.0)
            if i == 0:
                ax.set_title(names[lead])
            if j == 0:
                ax.set_ylabel(f"z{i}")
            if i == n_latent - 1:
                ax.set_xlabel("time (ms)" if fs else "sample")
    mappable = ScalarMappable(norm=Normalize(offsets[0], offsets[-1]), cmap=colormaps[cmap])
    fig.colorbar(mappable, ax=axes, label="step (σ from mean)", shrink=0.8)
    fig.suptitle(title or f"Factor traversal, μ ± {TRAVERSAL_SIGMAS:g}σ per latent")
    if path is not None:
        save_figure(fig, path)
    return fig


def latent_scatter(
    z: np.ndarray,
    y: np.ndarray,
    dims: tuple[int, int] = (0, 1),
    label_names: tuple[str, str] = ("rest", "positive"),
    path: str | Path | None = None,
    title: str | None = None,
) -> Figure:
    """Scatter of two latent dimensions coloured by a binary label (Fig. 3a–c).

    Positives are drawn last so a minority class is not buried under the majority.
    """
    za = np.asarray(z, dtype=np.float64)
    ya = np.asarray(y).ravel()
    if za.ndim != 2 or za.shape[0] != ya.shape[0]:
        raise ValueError(f"z must be (n, L) matching y of length n; got {za.shape}, {ya.shape}")
    d0, d1 = dims
    if not (0 <= d0 < za.shape[1] and 0 <= d1 < za.shape[1]):
        raise ValueError(f"dims {dims} out of range for L = {za.shape[1]}")
    if not np.isin(np.unique(ya), [0, 1]).all():
        raise ValueError("y must hold only 0 and 1")

    fig = _new_figure((5.0, 4.5))
    ax = fig.add_subplot()
    for value, name, colour in ((0, label_names[0], "tab:blue"), (1, label_names[1], "tab:red")):
        sel = ya == value
        ax.scatter(
            za[sel, d0],
            za[sel, d1],
            s=6,
            alpha=0.5,
            color=colour,
            label=f"{name} (n={int(sel.sum())})",
            rasterized=True,
        )
    ax.set_xlabel(f"z{d0}")
    ax.set_ylabel(f"z{d1}")
    ax.legend(loc="best", markerscale=2)
    ax.set_title(title or f"Latent space, z{d0} vs z{d1}")
    if path is not None:
        save_figure(fig, path)
    return fig
