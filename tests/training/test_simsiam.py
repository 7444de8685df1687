"""SimSiam loss and stop-gradient, the pretraining loop, the five downstream configurations, and a
tiny real-data run (PTB-XL pretraining → MIT-BIH N vs V) logged to a real MLflow store."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from ecglatent.config import TrackingConfig
from ecglatent.datasets.single_lead import (
    fit_normaliser,
    mitdb_nv_splits,
    normalise,
    pretrain_split,
    ptbxl_multilead_beats,
    stratified_subsample,
)
from ecglatent.evaluation.beat_metrics import beat_metrics
from ecglatent.models.siliconet import BEAT_SAMPLES, SimSiam
from ecglatent.tracking.runs import configure, epoch_logger, run
from ecglatent.training.simsiam import (
    CONFIGS,
    build_classifier,
    class_weights,
    negative_cosine,
    predict,
    pretrain_simsiam,
    simsiam_loss,
    train_classifier,
)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _beats(n: int = 96, seed: int = 0, leads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Separable toy beats: N = narrow positive spike at 250, V = wide negative wave."""
    rng = np.random.default_rng(seed)
    t = np.arange(BEAT_SAMPLES)
    y = (np.arange(n) % 4 == 0).astype(np.int64)  # 25 % V
    narrow = np.exp(-0.5 * ((t - 250) / 3.0) ** 2)
    wide = -np.exp(-0.5 * ((t - 245) / 12.0) ** 2)
    x = np.where(y[:, None] == 1, wide, narrow)[:, None, :] * np.ones((1, leads, 1))
    x = x + 0.05 * rng.standard_normal((n, leads, BEAT_SAMPLES))
    return x.astype(np.float32), y


# ------------------------------------------------------------------------------------ loss


def test_loss_matches_hand_computation():
    p1 = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    z2 = torch.tensor([[0.0, 3.0], [1.0, 0.0]])  # cos 0 and 1
    p2 = torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    z1 = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # cos 1/sqrt(2) and -1
    d1 = -(0.0 + 1.0) / 2
    d2 = -(1 / math.sqrt(2) - 1.0) / 2
    expected = 0.5 * d1 + 0.5 * d2
    assert float(simsiam_loss(p1, p2, z1, z2)) == pytest.approx(expected, abs=1e-6)
    same = torch.randn(7, 16)
    assert float(simsiam_loss(same, same, same, same)) == pytest.approx(-1.0, abs=1e-6)


def test_loss_stops_the_gradient_into_targets_even_when_not_detached_by_the_caller():
    torch.manual_seed(0)
    online = torch.nn.Linear(8, 8)
    target = torch.nn.Linear(8, 8)
    a = torch.randn(5, 8, requires_grad=True)
    b = torch.randn(5, 8, requires_grad=True)
    p1, p2 = online(a), online(a + 1)
    z1, z2 = target(b), target(b - 1)  # deliberately NOT detached
    simsiam_loss(p1, p2, z1, z2).backward()
    assert b.grad is None
    assert target.weight.grad is None and target.bias.grad is None
    assert a.grad is not None and online.weight.grad is not None
    # and the gradient w.r.t. p equals that of the loss with explicit constant targets
    p = torch.randn(3, 4, requires_grad=True)
    z = torch.randn(3, 4, requires_grad=True)
    negative_cosine(p, z).backward()
    assert z.grad is None and p.grad is not None


# ------------------------------------------------------------------------------ pretraining


def test_pretraining_lowers_validation_loss_and_restores_best():
    x, _ = _beats(64, leads=4)
    rows = []
    res = pretrain_simsiam(SimSiam(), x[:48], x[48:], max_epochs=3, batch_size=16, seed=0,
                           on_epoch=rows.append, progress=False)  # fmt: skip
    assert len(res.history) == 3 and rows == res.history
    assert {"train_loss", "val_loss", "val_z_std", "lr", "seconds"} <= set(res.history[0])
    assert res.best_val_loss == min(r["val_loss"] for r in res.history)
    assert -1.0 <= res.best_val_loss <= 1.0


def test_pretraining_step_schedule():
    x, _ = _beats(16, leads=2)
    res = pretrain_simsiam(SimSiam(), x[:12], x[12:], max_epochs=3, batch_size=8, lr=1e-3,
                           lr_step_epochs=2, lr_gamma=0.75, progress=False)  # fmt: skip
    assert [r["lr"] for r in res.history] == pytest.approx([1e-3, 1e-3, 7.5e-4])


# ------------------------------------------------------------------------------- downstream


def test_configurations_follow_table_1():
    assert set(CONFIGS) == {"randinit", "randfeatures", "pretrained", "finetune", "2lr"}
    assert [c.pretrained for c in CONFIGS.values()] == [False, False, True, True, True]
    assert not CONFIGS["randfeatures"].train_embedding and not CONFIGS["finetune"].train_embedding
    assert CONFIGS["2lr"].lr_embedding == 1e-5 and CONFIGS["2lr"].lr_classifier == 1e-2
    with pytest.raises(ValueError, match="pretrained embedding"):
        build_classifier("finetune")
    with pytest.raises(ValueError, match="unknown configuration"):
        build_classifier("nope")
    x, y = _beats(16)
    with pytest.raises(ValueError, match="no positive"):
        train_classifier("randinit", x, y, x, np.zeros_like(y), max_epochs=1, progress=False)


def test_class_weights_balance_the_classes():
    w = class_weights(np.array([0, 0, 0, 1]))
    assert w.tolist() == pytest.approx([4 / 6, 2.0])


@pytest.mark.parametrize("name", ["randfeatures", "finetune"])
def test_frozen_configurations_leave_the_embedding_untouched(name):
    x, y = _beats(64)
    pre = SimSiam().embedding
    pre_state = {k: v.clone() for k, v in pre.state_dict().items()}
    res = train_classifier(name, x[:32], y[:32], x[32:], y[32:], pretrained_embedding=pre,
                           max_epochs=2, batch_size=16, progress=False)  # fmt: skip
    emb = res.model.embedding
    assert all(not p.requires_grad and p.grad is None for p in emb.parameters())
    assert all(r["lr_embedding"] == 0.0 for r in res.history)
    for k, v in pre.state_dict().items():  # the shared pretrained embedding is never modified
        assert torch.equal(v, pre_state[k]), k
    if name == "finetune":  # weights and BatchNorm statistics exactly the pretrained ones
        for k, v in emb.state_dict().items():
            assert torch.equal(v, pre_state[k]), k


def test_trained_embedding_learns_with_its_own_learning_rate():
    x, y = _beats(64)
    pre = SimSiam().embedding
    res = train_classifier("2lr", x[:32], y[:32], x[32:], y[32:], pretrained_embedding=pre,
                           max_epochs=2, batch_size=16, progress=False)  # fmt: skip
    first = res.history[0]
    assert first["lr_embedding"] == pytest.approx(1e-5)
    assert first["lr_classifier"] == pytest.approx(1e-2)
    assert res.history[1]["lr_classifier"] < 1e-2  # cosine decay has started
    w0 = pre.features[1].weight
    assert not torch.equal(res.model.embedding.features[1].weight, w0)


def test_cosine_schedule_reaches_the_final_rate():
    x, y = _beats(32)
    res = train_classifier("finetune", x[:16], y[:16], x[16:], y[16:],
                           pretrained_embedding=SimSiam().embedding, max_epochs=5,
                           schedule_epochs=4, patience=10, batch_size=8, progress=False)  # fmt: skip
    lrs = [r["lr_classifier"] for r in res.history]
    assert lrs[0] == pytest.approx(1e-3)
    assert lrs[2] == pytest.approx(1e-3 * (0.8 + 0.2 * 0.5))  # halfway down the cosine
    assert lrs[4] == pytest.approx(8e-4)  # 1e-3 → 8e-4, then flat


@pytest.mark.parametrize("name", ["randinit", "randfeatures"])  # full model, precomputed features
def test_returned_model_is_the_best_validation_epoch_and_early_stopping(name):
    x, y = _beats(96, seed=1)
    res = train_classifier(name, x[:48], y[:48], x[48:], y[48:], max_epochs=8, patience=2,
                           batch_size=16, seed=0, progress=False)  # fmt: skip
    f1s = [r["val_f1"] for r in res.history]
    assert res.best_val_f1 == max(f1s) and f1s[res.best_epoch] == res.best_val_f1
    again = beat_metrics(y[48:], predict(res.model, x[48:])).f1
    assert again == pytest.approx(res.best_val_f1)
    if res.stopped_early:
        assert len(f1s) == res.best_epoch + 1 + 2


def test_threshold_tuned_on_validation_only():
    x, y = _beats(64, seed=2)
    res = train_classifier("randfeatures", x[:32], y[:32], x[32:], y[32:], max_epochs=3,
                           batch_size=16, tune_threshold=True, progress=False)  # fmt: skip
    assert 0.0 <= res.threshold <= 1.0
    tuned = beat_metrics(y[32:], predict(res.model, x[32:], res.threshold)).f1
    assert tuned >= res.best_val_f1 - 1e-9  # at least as good on validation as argmax


# --------------------------------------------------------- tiny real-data run into MLflow


def test_tiny_real_run_logs_losses_and_f1_per_epoch(mirror, tmp_path):
    beats, table = ptbxl_multilead_beats(mirror / "ptb-xl", list(range(1, 13)))
    tr, va = pretrain_split(table, 0.25, seed=0)
    mean, std = fit_normaliser(beats[tr])
    beats = normalise(beats, mean, std)
    splits = mitdb_nv_splits(mirror / "mitdb", train_records=("119", "208"),
                             test_records=("233",), test_leads=("MLII",))  # fmt: skip
    train = stratified_subsample(splits.train, 256)
    val = stratified_subsample(splits.val, 256)
    test = stratified_subsample(splits.tests["MLII"], 256)
    assert set(train.table["record"]) <= {"119", "208"}

    cfg = TrackingConfig(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
                         artifact_root=str(tmp_path / "mlartifacts"),
                         experiment="test-siliconet")  # fmt: skip
    configure(cfg)
    with run("simsiam-pretrain", params={"lr": 1e-3, "epochs": 2}) as pre_run:
        pre = pretrain_simsiam(SimSiam(), beats[tr], beats[va], max_epochs=2, batch_size=64,
                               on_epoch=epoch_logger("pretrain"), progress=False)  # fmt: skip
    with run("downstream-pretrained", params={"config": "pretrained"}) as down_run:
        res = train_classifier("pretrained", train.x, train.y, val.x, val.y,
                               pretrained_embedding=pre.model.embedding, max_epochs=2,
                               batch_size=64, on_epoch=epoch_logger("downstream"),
                               progress=False)  # fmt: skip
        m = beat_metrics(test.y, predict(res.model, test.x, res.threshold))
        import mlflow

        mlflow.log_metrics({"test/f1": m.f1, "test/se": m.se, "test/ppv": m.ppv})

    client = MlflowClient()
    pre_id, down_id = pre_run.info.run_id, down_run.info.run_id
    for key in ("pretrain/train_loss", "pretrain/val_loss"):
        hist = client.get_metric_history(pre_id, key)
        assert [h.step for h in hist] == [0, 1]
        assert all(math.isfinite(h.value) for h in hist)
    for key in ("downstream/train_loss", "downstream/val_loss", "downstream/val_f1"):
        assert [h.step for h in client.get_metric_history(down_id, key)] == [0, 1]
    logged = client.get_run(down_id).data
    assert logged.params["config"] == "pretrained"
    assert 0.0 <= logged.metrics["test/f1"] <= 1.0
    assert (tmp_path / "mlflow.db").exists()


def _simsiam_val_by_hand(model: SimSiam, val: np.ndarray, seed: int) -> float:
    """Validation loss recomputed here: the loop's two views (its seed + 1 draw), eval mode,
    the symmetric negative cosine ½(D(p1, z2) + D(p2, z1)) averaged over beats."""
    from ecglatent.datasets.single_lead import sample_two_leads

    v1, v2 = sample_two_leads(torch.as_tensor(val), np.random.default_rng(seed + 1))
    model.eval()
    with torch.no_grad():
        p1, p2, z1, z2 = model(v1, v2)
        cos = torch.nn.functional.cosine_similarity
        return float(-0.5 * (cos(p1, z2, dim=1) + cos(p2, z1, dim=1)).mean())


def test_pretraining_keeps_the_best_epoch_weights():
    """A high learning rate makes later epochs worse; the returned weights are the best epoch's."""
    x, _ = _beats(64, leads=4)
    torch.manual_seed(0)  # the init, else it depends on what ran before in the session
    model = SimSiam()
    res = pretrain_simsiam(model, x[:48], x[48:], max_epochs=4, batch_size=16, lr=0.05, seed=0,
                           patience=10, progress=False)  # fmt: skip
    losses = [r["val_loss"] for r in res.history]
    assert res.best_epoch == int(np.argmin(losses))
    assert res.best_epoch < len(losses) - 1, losses  # precondition: the last epoch is worse
    kept = _simsiam_val_by_hand(model, x[48:], seed=0)
    assert kept == pytest.approx(res.best_val_loss, abs=1e-5)
    assert abs(kept - losses[-1]) > 1e-3


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_each_configuration_starts_from_what_it_says(name):
    """pretrained/finetune/2lr start from a copy of the pretrained embedding (weights and
    BatchNorm statistics), randinit/randfeatures from a fresh one; the pretrained one is never
    shared, and frozen means no parameter of the embedding is trainable."""
    torch.manual_seed(123)
    pre = SimSiam().embedding
    model = build_classifier(name, pretrained_embedding=pre, seed=0)
    same = [torch.equal(a, b) for a, b in zip(model.embedding.state_dict().values(),
                                              pre.state_dict().values(), strict=True)]  # fmt: skip
    weights = [torch.equal(a, b) for a, b in zip(model.embedding.parameters(), pre.parameters(),
                                                 strict=True)]  # fmt: skip
    if CONFIGS[name].pretrained:
        assert all(same)
        assert model.embedding is not pre
        assert all(a.data_ptr() != b.data_ptr()
                   for a, b in zip(model.embedding.parameters(), pre.parameters(), strict=True))  # fmt: skip
    else:
        assert not any(w for w, p in zip(weights, pre.parameters(), strict=True) if p.dim() > 1)
    trainable = [p.requires_grad for p in model.embedding.parameters()]
    assert all(trainable) if CONFIGS[name].train_embedding else not any(trainable)
    assert all(p.requires_grad for p in model.classifier.parameters())
