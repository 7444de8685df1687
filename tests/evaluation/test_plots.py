"""Tests for ecglatent.evaluation.plots: factor traversals and latent scatter plots."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from ecglatent.evaluation.plots import factor_traversal, latent_scatter, traversal_grid

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LEADS = ["I", "II", "V1"]


class RecordingDecoder:
    """A stand-in for the caller's torch wrapper: a deterministic map z -> (n, leads, samples)."""

    def __init__(self, n_latent: int, n_leads: int = 3, n_samples: int = 40) -> None:
        self.calls: list[np.ndarray] = []
        rng = np.random.default_rng(0)
        self.weights = rng.normal(size=(n_latent, n_leads))
        self.t = np.linspace(0, 2 * np.pi, n_samples)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        self.calls.append(np.array(z, copy=True))
        amp = z @ self.weights  # (n, leads)
        return amp[:, :, None] * np.sin(self.t)[None, None, :] + np.arange(amp.shape[1])[:, None]


def test_traversal_grid_moves_one_latent_at_a_time():
    mu, sd = np.array([0.5, -1.0]), np.array([2.0, 0.1])
    z, offsets = traversal_grid(mu, sd, n_steps=5)
    np.testing.assert_allclose(offsets, [-3, -1.5, 0, 1.5, 3])
    assert z.shape == (10, 2)
    np.testing.assert_allclose(z[:5, 0], mu[0] + offsets * sd[0])
    np.testing.assert_allclose(z[:5, 1], mu[1])
    np.testing.assert_allclose(z[5:, 1], mu[1] + offsets * sd[1])
    np.testing.assert_allclose(z[5:, 0], mu[0])


def test_factor_traversal_calls_decode_with_grid_and_draws_its_output(tmp_path):
    n_latent, n_steps = 4, 5
    mu = np.linspace(-1, 1, n_latent)
    sd = np.linspace(0.5, 2, n_latent)
    decode = RecordingDecoder(n_latent)
    out_png = tmp_path / "figs" / "traversal.png"
    fig = factor_traversal(decode, mu, sd, LEADS, n_steps=n_steps, fs=500.0, path=out_png)

    assert len(decode.calls) == 1
    z = decode.calls[0]
    expected_z, _ = traversal_grid(mu, sd, n_steps)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z, expected_z, rtol=1e-6)

    # One panel per (latent, lead) plus the shared colour bar.
    assert len(fig.axes) == n_latent * len(LEADS) + 1
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == n_latent * len(LEADS)
    decoded = decode(expected_z.astype(np.float32))
    # Row 2 (latent 2), column 1 (lead II): its n_steps lines are decode's block 2, lead 1.
    ax = panels[2 * len(LEADS) + 1]
    lines = ax.get_lines()
    assert len(lines) == n_steps
    for k, line in enumerate(lines):
        np.testing.assert_allclose(line.get_ydata(), decoded[2 * n_steps + k, 1])
    np.testing.assert_allclose(lines[0].get_xdata()[:2], [0.0, 2.0])  # ms at 500 Hz
    # Colour gradient across steps: blue at -3σ, red at +3σ.
    first, last = to_rgba(lines[0].get_color()), to_rgba(lines[-1].get_color())
    assert first[2] > first[0] and last[0] > last[2]
    assert panels[0].get_title() == "I" and panels[0].get_ylabel() == "z0"

    assert out_png.stat().st_size > 1000
    assert out_png.read_bytes()[:8] == PNG_MAGIC


def test_factor_traversal_subset_of_leads():
    decode = RecordingDecoder(2)
    fig = factor_traversal(decode, np.zeros(2), np.ones(2), LEADS, leads_to_show=["V1"])
    assert len(fig.axes) == 2 * 1 + 1
    assert fig.axes[0].get_title() == "V1"
    assert fig.axes[0].get_xlabel() == ""  # only the bottom row carries the x label
    assert fig.axes[1].get_xlabel() == "sample"


def test_factor_traversal_rejects_mismatched_decoder():
    decode = RecordingDecoder(2, n_leads=2)
    with pytest.raises(ValueError, match="lead_names"):
        factor_traversal(decode, np.zeros(2), np.ones(2), LEADS)
    with pytest.raises(ValueError, match="not in lead_names"):
        factor_traversal(RecordingDecoder(2), np.zeros(2), np.ones(2), LEADS, leads_to_show=["X"])


def test_latent_scatter_colours_by_label_and_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 4))
    y = (rng.random(300) < 0.2).astype(int)
    out_png = tmp_path / "scatter.png"
    fig = latent_scatter(z, y, dims=(2, 3), label_names=("normal", "MI"), path=out_png)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    neg, pos = ax.collections
    np.testing.assert_allclose(neg.get_offsets(), z[y == 0][:, [2, 3]])
    np.testing.assert_allclose(pos.get_offsets(), z[y == 1][:, [2, 3]])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"normal (n={(y == 0).sum()})", f"MI (n={(y == 1).sum()})"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("z2", "z3")
    assert out_png.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="dims"):
        latent_scatter(z, y, dims=(0, 4))


def test_evaluation_imports_no_torch_or_tracking_stack():
    # The caller wraps the torch decoder; evaluation itself must stay importable without the
    # training/tracking stack (torch, MLflow, DVC, Optuna) so probes can be served lightly.
    code = (
        "import sys, ecglatent.evaluation, ecglatent.evaluation.plots; "
        "print(sorted(m for m in ('torch', 'mlflow', 'dvc', 'optuna') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
