"""params.yaml's per-phase settings reach the β-VAE trainer (pipeline/vae_train._spec)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ecglatent.config import load_params
from ecglatent.pipeline.vae_train import _spec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def params(tmp_path):
    """Every phase with its own lr and epoch count, distinct from the defaults and each other."""
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    v = p["vae"]
    v.update(beta=2.5, gamma=123.0, batch_size=17, weight_decay=3e-5, grad_clip=0.7, patience=4)
    v["pretrain"] = {"lr": 1.1e-3, "max_epochs": 7}
    v["finetune_head"] = {"lr": 2.2e-2, "max_epochs": 3}
    v["finetune"] = {"lr": 3.3e-4, "max_epochs": 11}
    v["max_train_items"] = {"ptbxl": 0, "mitdb": 999}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    return load_params(path)


@pytest.mark.parametrize(
    ("phase", "lr", "epochs"),
    [("pretrain", 1.1e-3, 7), ("finetune_head", 2.2e-2, 3), ("finetune", 3.3e-4, 11)],
)
def test_each_phase_gets_its_own_lr_epochs_and_the_shared_settings(params, phase, lr, epochs):
    spec = _spec(params, phase, 0.75, "mitdb", phase != "pretrain", False)
    assert spec.phase == phase
    assert (spec.lr, spec.max_epochs) == (lr, epochs)
    assert spec.beta == 0.75  # the model's own β (e.g. the β = 0 ablation), not vae.beta
    assert spec.gamma == 123.0
    assert spec.balanced is (phase != "pretrain")
    assert (spec.batch_size, spec.weight_decay, spec.grad_clip, spec.patience) == (17, 3e-5, 0.7, 4)
    assert spec.max_train_items == 999
    assert _spec(params, phase, 0.75, "ptbxl", False, False).max_train_items == 0
