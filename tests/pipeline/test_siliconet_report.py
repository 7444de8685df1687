"""Tests for pipeline/siliconet_report.py's "what these numbers can and cannot show" notes."""

from __future__ import annotations

from ecglatent.pipeline.siliconet_report import ReportContext, limits


def _ctx(seeds: tuple[int, ...], n_train: int, pretrain_beats: int | None = None) -> ReportContext:
    return ReportContext(primary="DS2 MLII", seeds=seeds, max_epochs=5, patience=2,
                         n_train=n_train, n_val=400, test_sizes={"DS2 MLII": 1000},
                         max_test_beats=0, device="cpu", pretrain_beats=pretrain_beats,
                         pretrain_epochs=None, pretrain_max_epochs=0)  # fmt: skip


def test_limits_name_the_units_and_this_runs_size():
    notes = limits(_ctx((0, 1, 2, 3, 4, 5), 800))
    text = " ".join(notes)
    assert "over 6 seed(s)" in text and "DS2 is 22 records (patients)" in text
    assert "800 training beats per model" in text and "10 seeds" in text
    assert "DS1 validation beats come from the training patients" in text
    assert "over 3 seed(s)" in " ".join(limits(_ctx((0, 1, 2), 50_000)))


def test_limits_say_the_pretraining_is_one_run_shared_by_every_seed():
    shared = "start from the same SimSiam pretraining run"
    with_pretraining = limits(_ctx((0, 1, 2), 800, pretrain_beats=4281))
    assert any(shared in n for n in with_pretraining)
    assert len(with_pretraining) == len(limits(_ctx((0, 1, 2), 800))) + 1
    # without a SimSiam model (randinit/randfeatures only) there is nothing shared to warn about
    assert not any(shared in n for n in limits(_ctx((0, 1, 2), 800)))
