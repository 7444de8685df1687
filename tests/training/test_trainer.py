"""Training loop: learning happens, early stopping, and a killed run resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecglatent.models.registry import build_vae
from ecglatent.training.trainer import PhaseSpec, TensorSet, _epoch_indices, fit_phase


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
    fresh = _model(latent_pred=2)  # a new process: the same seeded init, same checkpoint
    res = fit_phase(fresh, train, val, spec, tmp_path / "run.ckpt", seed=3, progress=False)
    assert res.resumed_from == 2 and not res.reused
    assert len(res.history) == 5
    for (k, a), b in zip(ref.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    # the phase has finished: a re-run of the same configuration trains nothing, same weights
    again = _model(latent_pred=2)
    res = fit_phase(again, train, val, spec, tmp_path / "run.ckpt", seed=3, progress=False)
    assert res.reused and len(res.history) == 5
    for (k, a), b in zip(ref.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("change", ["init", "seed", "spec", "data"])
def test_a_checkpoint_of_another_configuration_is_not_resumed(tmp_path, change, caplog):
    """Params, seed, data or base model changed: the old checkpoint is overwritten, epoch 0."""
    train, val = _data()
    spec = _spec("finetune", 3, balanced=True)
    ckpt = tmp_path / "c.ckpt"

    class Killed(Exception):
        pass

    def kill_at_1(row):
        if row["epoch"] == 1:
            raise Killed

    with pytest.raises(Killed):
        fit_phase(_model(latent_pred=2), train, val, spec, ckpt, seed=3, on_epoch=kill_at_1,
                  progress=False)  # fmt: skip
    init = 99 if change == "init" else 0
    seed = 4 if change == "seed" else 3
    model = _model(latent_pred=2, seed=init)
    if change == "spec":
        spec = _spec("finetune", 3, balanced=True, grad_clip=0.5)
    if change == "data":
        train, val = _data(seed=1)
    ref = _model(latent_pred=2, seed=init)
    fit_phase(ref, train, val, spec, tmp_path / "ref.ckpt", seed=seed, progress=False)
    with caplog.at_level("INFO", logger="ecglatent.training.trainer"):
        res = fit_phase(model, train, val, spec, ckpt, seed=seed, progress=False)
    assert res.resumed_from is None and not res.reused and len(res.history) == 3
    assert "another configuration" in caplog.text
    for (k, a), b in zip(ref.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_same_seed_same_result(tmp_path):
    train, val = _data()
    a, b = _model(), _model()
    ra = fit_phase(a, train, val, _spec(epochs=2), tmp_path / "a.ckpt", 5, progress=False)
    rb = fit_phase(b, train, val, _spec(epochs=2), tmp_path / "b.ckpt", 5, progress=False)
    assert ra.history[-1]["val_loss"] == rb.history[-1]["val_loss"]


# ------------------------------------------------------------------ the science of one phase


def _val_loss_by_hand(model, val: TensorSet, beta: float, gamma: float) -> float:
    """Validation loss recomputed here: Σ(x̂−x)² per item / number of leads (the reference
    code's reduction) + β·KL + γ·BCE, item-weighted mean."""
    model.eval()
    with torch.no_grad():
        out = model(val.x, val.rr)
        recon = (out.x_hat - val.x).pow(2).flatten(1).sum(1).mean() / val.x.shape[1]
        kl = (-0.5 * (1 + out.logvar - out.mu.pow(2) - out.logvar.exp())).sum(1).mean()
        bce = torch.nn.functional.binary_cross_entropy_with_logits(out.logit.flatten(), val.y)
    return float(recon + beta * kl + gamma * bce)


def test_the_best_epoch_weights_are_kept_not_the_last(tmp_path):
    """With a real learning rate the last epoch is not the best one; the model must hold the
    best epoch's weights (its validation loss, recomputed by hand, is the best row's)."""
    train, val = _data()
    spec = PhaseSpec(phase="finetune", lr=0.05, max_epochs=6, beta=0.1, gamma=5.0, batch_size=16,
                     patience=10, balanced=True)  # fmt: skip
    model = _model(latent_pred=2)
    res = fit_phase(model, train, val, spec, tmp_path / "b.ckpt", seed=0, progress=False)
    losses = [r["val_loss"] for r in res.history]
    assert res.best_epoch == int(np.argmin(losses)) and res.best_val == min(losses)
    assert res.best_epoch < len(losses) - 1, losses  # precondition: the last epoch is worse
    assert losses[-1] > res.best_val * 1.01
    kept = _val_loss_by_hand(model, val, spec.beta, spec.gamma)
    assert kept == pytest.approx(res.best_val, rel=1e-4)
    assert kept != pytest.approx(losses[-1], rel=1e-3)


@pytest.mark.parametrize(("beta", "gamma"), [(0.1, 5.0), (3.0, 0.5)])
def test_beta_and_gamma_reach_the_loss_that_is_minimised(tmp_path, beta, gamma):
    """Every logged loss is recon + β·KL + γ·BCE with the phase's own β and γ."""
    train, val = _data()
    spec = PhaseSpec(phase="finetune", lr=3e-3, max_epochs=2, beta=beta, gamma=gamma,
                     batch_size=16, patience=10, balanced=True)  # fmt: skip
    res = fit_phase(_model(latent_pred=2), train, val, spec, tmp_path / "g.ckpt", 0, progress=False)
    for row in res.history:
        for part in ("train", "val"):
            assert row[f"{part}_bce"] > 0.01 and row[f"{part}_kl"] > 0
            expected = row[f"{part}_recon"] + beta * row[f"{part}_kl"] + gamma * row[f"{part}_bce"]
            assert row[f"{part}_loss"] == pytest.approx(expected, rel=1e-5)


def test_pretraining_has_no_classification_term(tmp_path):
    train, val = _data()
    res = fit_phase(_model(latent_pred=2), train, val, _spec(epochs=1), tmp_path / "p.ckpt", 0,
                    progress=False)  # fmt: skip
    row = res.history[0]
    assert row["train_bce"] == 0.0
    assert row["train_loss"] == pytest.approx(row["train_recon"] + 0.1 * row["train_kl"], rel=1e-5)


def test_learning_rate_and_epochs_reach_the_optimiser(tmp_path):
    """lr = 0 leaves the weights as they were; a positive lr moves them by about lr per step
    (Adam's first step is lr·sign(g)); max_epochs is the number of epochs run."""
    train, val = _data()
    for lr, epochs in ((0.0, 2), (1e-3, 3)):
        model = _model()
        before = {k: v.clone() for k, v in model.state_dict().items()}
        spec = PhaseSpec(phase="pretrain", lr=lr, max_epochs=epochs, beta=0.1, gamma=0.0,
                         batch_size=96, weight_decay=0.0, grad_clip=0.0, patience=10)  # fmt: skip
        res = fit_phase(model, train, val, spec, tmp_path / f"lr{lr}.ckpt", 0, progress=False)
        assert len(res.history) == epochs
        w = "encoder.body.0.0.weight"  # the first convolution
        # one step per epoch (batch = all 72 items); best epoch's weights are kept
        steps = res.best_epoch + 1
        moved = (model.state_dict()[w] - before[w]).abs().max().item()
        if lr == 0.0:
            assert moved == 0.0
        else:
            assert 0.5 * lr <= moved <= steps * lr * 1.01, (moved, steps)


def test_balanced_sampling_draws_both_classes_equally():
    n = 1000
    y = torch.full((n,), float("nan"))
    y[:50] = 1.0  # 5 % positives, 45 % negatives, half unlabelled
    y[50:500] = 0.0
    spec = PhaseSpec(phase="finetune", lr=1e-3, max_epochs=1, beta=1.0, gamma=1.0,
                     max_train_items=4000, balanced=True)  # fmt: skip
    idx = _epoch_indices(n, spec, y, torch.Generator().manual_seed(0))
    drawn = y[idx]
    assert len(idx) == 4000 and not torch.isnan(drawn).any()
    frac_pos = float((drawn == 1).float().mean())
    assert abs(frac_pos - 0.5) < 0.03, frac_pos
    plain = _epoch_indices(n, PhaseSpec(phase="finetune", lr=1e-3, max_epochs=1, beta=1.0,
                                        gamma=1.0), y, torch.Generator().manual_seed(0))  # fmt: skip
    assert sorted(plain.tolist()) == list(range(n))  # unbalanced: a permutation of everything
