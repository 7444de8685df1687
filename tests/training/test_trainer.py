"""Training loop: learning happens, early stopping, and a killed run resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecglatent.models.registry import build_vae
from ecglatent.training.trainer import PhaseSpec, TensorSet, fit_phase


def _data(n: int = 96, seed: int = 0) -> tuple[TensorSet, TensorSet]:
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 64)
    y = (rng.random(n) < 0.3).astype(np.float32)
    amp = 1.0 + y[:, None] * 1.5
    x = np.stack([amp * np.sin(2 * np.pi * 3 * t), amp * np.cos(2 * np.pi * 3 * t)], axis=1)
    x = (x + 0.05 * rng.standard_normal(x.shape)).astype(np.float32)
    rr = rng.standard_normal((n, 2)).astype(np.float32)
    cpu = torch.device("cpu")
    k = int(n * 0.75)
    return (TensorSet.from_numpy(x[:k], rr[:k], y[:k], cpu),
            TensorSet.from_numpy(x[k:], rr[k:], y[k:], cpu))  # fmt: skip


def _model(latent_pred=None, seed: int = 0):
    torch.manual_seed(seed)
    return build_vae("small", 2, 64, 4, latent_pred, 0.0)


def _spec(phase="pretrain", epochs=4, **kw) -> PhaseSpec:
    return PhaseSpec(phase=phase, lr=3e-3, max_epochs=epochs, beta=0.1, gamma=5.0, batch_size=16,
                     patience=10, **kw)  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_pretraining_lowers_validation_loss(tmp_path):
    train, val = _data()
    res = fit_phase(
        _model(), train, val, _spec(epochs=6), tmp_path / "c.ckpt", seed=0, progress=False
    )
    first, best = res.history[0]["val_loss"], res.best_val
    assert best < first
    assert {"train_recon", "train_kl", "val_mse"} <= set(res.history[0])


def test_head_only_phase_leaves_autoencoder_untouched(tmp_path):
    train, val = _data()
    model = _model(latent_pred=2)
    enc_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    fit_phase(model, train, val, _spec("finetune_head", 2, balanced=True), tmp_path / "h.ckpt", 0,
              progress=False)  # fmt: skip
    for k, v in model.encoder.state_dict().items():
        assert torch.equal(v, enc_before[k]), k
    assert any(not torch.equal(v, head_before[k]) for k, v in model.head.state_dict().items())
    assert not model.autoencoder_frozen  # unfrozen again after the phase


def test_early_stopping_stops(tmp_path):
    train, val = _data()
    spec = PhaseSpec(phase="pretrain", lr=0.0, max_epochs=30, beta=0.1, gamma=0.0, batch_size=16,
                     patience=2)  # fmt: skip
    res = fit_phase(_model(), train, val, spec, tmp_path / "e.ckpt", 0, progress=False)
    assert res.stopped_early and len(res.history) == 3  # epoch 0 best, then 2 without gain


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    train, val = _data()
    spec = _spec("finetune", 5, balanced=True)
    ref = _model(latent_pred=2)
    fit_phase(ref, train, val, spec, tmp_path / "ref.ckpt", seed=3, progress=False)

    class Killed(Exception):
        pass

    def kill_at_2(row):
        if row["epoch"] == 2:
            raise Killed

    model = _model(latent_pred=2)
    with pytest.raises(Killed):
        fit_phase(model, train, val, spec, tmp_path / "run.ckpt", seed=3, on_epoch=kill_at_2,
                  progress=False)  # fmt: skip
    fresh = _model(latent_pred=2, seed=99)  # a new process: different init, same checkpoint
    res = fit_phase(fresh, train, val, spec, tmp_path / "run.ckpt", seed=3, progress=False)
    assert res.resumed_from == 2
    assert len(res.history) == 5
    for (k, a), b in zip(ref.state_dict().items(), fresh.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)


def test_same_seed_same_result(tmp_path):
    train, val = _data()
    a, b = _model(), _model()
    ra = fit_phase(a, train, val, _spec(epochs=2), tmp_path / "a.ckpt", 5, progress=False)
    rb = fit_phase(b, train, val, _spec(epochs=2), tmp_path / "b.ckpt", 5, progress=False)
    assert ra.history[-1]["val_loss"] == rb.history[-1]["val_loss"]
