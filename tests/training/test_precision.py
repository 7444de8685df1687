"""SiliconNet's precision knob: bf16 autocast on the embedding only, float32 everywhere else."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from ecglatent.config import load_params
from ecglatent.errors import ConfigError
from ecglatent.models.siliconet import BEAT_SAMPLES, BeatClassifier, SimSiam, inference_copy
from ecglatent.training.precision import (
    embeddings_in,
    native_bf16,
    resolve_precision,
)
from ecglatent.training.simsiam import predict_proba, pretrain_simsiam, train_classifier


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _beats(n: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(BEAT_SAMPLES)
    y = (np.arange(n) % 4 == 0).astype(np.int64)
    narrow = np.exp(-0.5 * ((t - 250) / 3.0) ** 2)
    wide = -np.exp(-0.5 * ((t - 245) / 12.0) ** 2)
    x = np.where(y[:, None] == 1, wide, narrow)[:, None, :]
    return (x + 0.05 * rng.standard_normal((n, 1, BEAT_SAMPLES))).astype(np.float32), y


def test_resolve_precision():
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu") == ("bf16" if native_bf16("cpu") else "fp32")
    assert resolve_precision("auto", "meta") == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16", "cpu")


def test_bad_precision_in_params_names_the_key(tmp_path):
    text = (Path(__file__).resolve().parents[2] / "params.yaml").read_text()
    bad = tmp_path / "params.yaml"
    bad.write_text(text.replace("  precision: auto", "  precision: half"))
    with pytest.raises(ConfigError, match="siliconet.precision"):
        load_params(bad)


def test_bf16_runs_only_the_embedding_and_is_restored():
    torch.manual_seed(0)
    model = BeatClassifier().eval()
    x = torch.randn(16, 1, BEAT_SAMPLES)
    with torch.no_grad():
        ref = model(x)
        with embeddings_in(model, "bf16"):
            assert model.embedding.compute_dtype == torch.bfloat16
            copied = inference_copy(model)  # copies made inside keep the precision
            out = model(x)
            feats = model.embedding(x)
        assert model.embedding.compute_dtype is None  # back to float32 on exit
        assert copied.embedding.compute_dtype == torch.bfloat16
        plain = model(x)
    assert out.dtype == feats.dtype == torch.float32  # features come back as float32
    assert torch.equal(plain, ref)
    assert not torch.equal(out, ref)  # the convolutions really ran in bf16 ...
    rel = float((out - ref).norm() / ref.norm())
    assert rel < 5e-2  # ... to bf16's ~3 significant digits
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_bf16_training_learns_is_deterministic_and_returns_a_float32_model():
    x, y = _beats(96, seed=1)

    def fit():
        return train_classifier("randinit", x[:64], y[:64], x[64:], y[64:], max_epochs=10,
                                batch_size=16, seed=0, progress=False, precision="bf16")  # fmt: skip

    a, b = fit(), fit()
    assert a.best_val_f1 > 0.9  # separable toy beats: float32 reaches 1.0 at epoch 8 too
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
    assert a.model.embedding.compute_dtype is None
    fp32 = predict_proba(a.model, x[64:])
    bf16 = predict_proba(a.model, x[64:], precision="bf16")
    assert bf16.dtype == fp32.dtype == np.float32
    assert np.abs(bf16 - fp32).max() < 0.05
    # the frozen-embedding path computes its features at the same precision
    frozen = train_classifier("randfeatures", x[:64], y[:64], x[64:], y[64:], max_epochs=2,
                              batch_size=16, seed=0, progress=False, precision="bf16")  # fmt: skip
    assert frozen.model.embedding.compute_dtype is None and len(frozen.history) == 2


def test_bf16_simsiam_pretraining_trains():
    rng = np.random.default_rng(0)
    beats = rng.standard_normal((48, 3, BEAT_SAMPLES)).astype(np.float32)
    model = SimSiam()
    before = copy.deepcopy(model.embedding.state_dict())
    res = pretrain_simsiam(model, beats[:40], beats[40:], batch_size=16, max_epochs=2,
                           progress=False, precision="bf16")  # fmt: skip
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["val_loss"]) for r in res.history)
    assert model.embedding.compute_dtype is None
    moved = [not torch.equal(before[k], v) for k, v in model.embedding.state_dict().items()]
    assert any(moved)
