"""The README's throughput command runs: ``python benchmarks/training_throughput.py --quick``.

A smoke run on small slices of the mirror (the real figures come from the full run on an idle
machine); it checks that every row is measured, old and new, and that the FLOP counts are the
architectures' own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "training_throughput.py"


@pytest.fixture(scope="module")
def result(tmp_path_factory, mirror) -> dict:
    out = tmp_path_factory.mktemp("bench") / "throughput.json"
    env = {**os.environ, "ECGLATENT_DATA_MIRROR": str(mirror)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--precision", "bf16",
         "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert f"wrote {out}" in proc.stdout
    return json.loads(out.read_text())


def test_every_step_row_is_measured_old_and_new(result):
    assert result["quick"] is True and result["threads"] == 1
    assert result["siliconet_precision"] == "bf16"
    assert result["matmul_2048_fp32_gflops"] > 0
    rows = {r["model"]: r for r in result["training_step"]}
    assert len(rows) == 9  # 2 β-VAE shapes (one at two batches), 3 SiliconNet, SimSiam; + bf16:
    assert sum(name.endswith("[new: bf16]") for name in rows) == 3  # SiliconNet ×2, SimSiam
    assert [r["model"].endswith("[new: bf16]") for r in result["scoring"]] == [False, True]
    for r in result["training_step"] + result["scoring"]:
        assert r["old_samples_per_s"] > 0 and r["new_samples_per_s"] > 0, r
        assert r["speedup"] == pytest.approx(r["new_samples_per_s"] / r["old_samples_per_s"],
                                             abs=0.006)  # fmt: skip
        assert 0 < r["new_share_of_matmul"] < 1.5, r


def test_flop_counts_are_the_architectures(result):
    rows = {(r["model"], r["batch"]): r for r in result["training_step"]}
    # forward + backward per sample, from torch.utils.flop_counter (the table)
    assert rows[("small β-VAE 12×400 (PTB-XL), L=2", 32)]["mflop_per_sample"] == pytest.approx(
        287.3, rel=0.01
    )
    assert rows[("small β-VAE 2×288 (MIT-BIH), L=2", 32)]["mflop_per_sample"] == pytest.approx(
        34.5, rel=0.01
    )
    assert rows[("SiliconNet CNN 1×301", 256)]["mflop_per_sample"] == pytest.approx(153.7, rel=0.01)


def test_every_training_stage_has_an_end_to_end_epoch(result):
    stages = [r["stage"] for r in result["epoch_end_to_end"]]
    for name in ("vae pretrain ptbxl", "vae pretrain mitdb", "vae finetune ptbxl",
                 "vae finetune mitdb"):  # fmt: skip
        assert name in stages
    assert sum(s.startswith("siliconet pretrain") for s in stages) == 3  # fp32 ×2, bf16
    assert sum(s.startswith("siliconet downstream") for s in stages) == 5  # fp32 ×3, bf16 ×2
    for r in result["epoch_end_to_end"]:
        old = r.get("old_samples_per_s", r.get("old_beats_per_s"))
        new = r.get("new_samples_per_s", r.get("new_beats_per_s"))
        assert old > 0 and new > 0 and r["n_train"] > 0, r
