"""The default params.yaml carries the evidence design of issue 12: the paper's loss weights,
replicates, equal budgets, SiliconNet's seeds and full test set, the paper's beat average."""

from __future__ import annotations

from pathlib import Path

from ecglatent.config import load_params
from ecglatent.pipeline.vae_common import naive_epochs, replicates
from ecglatent.pipeline.vae_train import naive_spec

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def test_paper_loss_weights_and_beat_average():
    p = load_params(PARAMS)
    assert (p.vae.beta, p.vae.gamma) == (4.0, 500.0)  # no γ chosen on test data
    assert p.preprocess.beat_average == "mean"


def test_every_table1_row_has_at_least_five_replicates():
    p = load_params(PARAMS)
    assert p.split.outer_folds == 5 and len(replicates(p, "ptbxl")) == 5
    assert len(replicates(p, "mitdb")) >= 5


def test_naive_and_specific_get_the_same_epoch_cap():
    p = load_params(PARAMS)
    spec = naive_spec(p, p.vae.beta, "ptbxl", cuda=False)
    assert spec.max_epochs == naive_epochs(p)
    assert spec.max_epochs == p.vae.finetune_head.max_epochs + p.vae.finetune.max_epochs
    assert spec.phase == "pretrain" and spec.patience == p.vae.patience  # same objective, same stop


def test_siliconet_seeds_and_test_set():
    s = load_params(PARAMS).siliconet
    assert len(s.seeds) >= 6 and len(set(s.seeds)) == len(s.seeds)
    assert s.max_test_beats == 0  # every DS2 beat scored
    assert s.min_v_beats >= 20
    assert s.max_train_beats == 0 or s.max_train_beats >= 2000  # the old 800 decided nothing
