"""scripts/compare_runs.py: two runs' reports, every comparison checked for a contradiction."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import compare_runs  # noqa: E402


def _entry(diff: float, lo: float, hi: float, p: float) -> dict:
    return {"auroc": 0.8, "across_replicates": {"diff": diff, "lo": lo, "hi": hi, "p_value": p,
                                                "method": "paired t over 5 replicates"}}  # fmt: skip


def _write_run(root: Path, l2: tuple, l10: tuple, silico_shift: float) -> Path:
    reports = root / "reports"
    reports.mkdir(parents=True)
    metrics = {"mitdb": {"L2": {"auroc": 0.9}, "L2_specific": _entry(*l2),
                         "L10_specific": _entry(*l10)}}  # fmt: skip
    (reports / "metrics.json").write_text(json.dumps(metrics))
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(6):
        for config, base in (("randinit", 0.7), ("pretrained", 0.7 + silico_shift)):
            for ev in ("DS2 MLII", "DS2 V1"):
                rows.append({"config": config, "seed": seed, "eval": ev,
                             "f1": base + rng.normal(0, 0.01)})  # fmt: skip
    pd.DataFrame(rows).to_csv(reports / "siliconet_results.csv", index=False)
    return root


def test_same_sign_significant_in_both_holds(tmp_path: Path) -> None:
    a = _write_run(tmp_path / "a", (0.02, 0.01, 0.03, 0.01), (0.0, -0.02, 0.02, 0.9), 0.1)
    b = _write_run(tmp_path / "b", (0.03, 0.01, 0.05, 0.02), (0.01, -0.01, 0.03, 0.3), 0.1)
    checks = {
        (c.family, c.comparison): c for c in compare_runs.compare(a / "reports", b / "reports")
    }
    assert checks[("Table 1 mitdb", "L2_specific − naive, across replicates")].verdict == "holds"
    assert (
        checks[("Table 1 mitdb", "L10_specific − naive, across replicates")].verdict == "consistent"
    )
    silico = checks[("SiliconNet DS2 MLII F1", "pretrained − randinit")]
    assert silico.verdict == "holds" and silico.a.diff == pytest.approx(0.1, abs=0.02)
    assert ("SiliconNet DS2 every lead F1", "pretrained − randinit") in checks


def test_opposite_sign_or_disjoint_interval_is_a_contradiction(tmp_path: Path) -> None:
    a = _write_run(tmp_path / "a", (0.02, 0.01, 0.03, 0.01), (0.05, 0.04, 0.06, 0.001), 0.1)
    # L2: not significant here but opposite sign -> contradiction; L10: same sign, disjoint CIs
    b = _write_run(tmp_path / "b", (-0.01, -0.03, 0.01, 0.4), (0.2, 0.15, 0.25, 0.001), -0.1)
    checks = {(c.family, c.comparison): c.verdict
              for c in compare_runs.compare(a / "reports", b / "reports")}  # fmt: skip
    assert checks[("Table 1 mitdb", "L2_specific − naive, across replicates")] == "contradiction"
    assert checks[("Table 1 mitdb", "L10_specific − naive, across replicates")] == "contradiction"
    assert checks[("SiliconNet DS2 MLII F1", "pretrained − randinit")] == "contradiction"


def test_cli_writes_both_files_and_exit_code_flags_a_contradiction(tmp_path: Path) -> None:
    a = _write_run(tmp_path / "a", (0.02, 0.01, 0.03, 0.01), (0.0, -0.02, 0.02, 0.9), 0.1)
    b = _write_run(tmp_path / "b", (0.02, 0.0, 0.04, 0.04), (0.0, -0.02, 0.02, 0.8), 0.1)
    c = _write_run(tmp_path / "c", (-0.02, -0.03, -0.01, 0.01), (0.0, -0.02, 0.02, 0.8), 0.1)
    script = ROOT / "scripts" / "compare_runs.py"
    ok = subprocess.run([sys.executable, str(script), str(a), str(b), "--out",
                         str(tmp_path / "out" / "rep")], capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    doc = json.loads((tmp_path / "out" / "rep.json").read_text())
    assert {c["verdict"] for c in doc["checks"]} <= {"holds", "consistent"}
    assert "0 contradictions" in (tmp_path / "out" / "rep.md").read_text()
    bad = subprocess.run([sys.executable, str(script), str(a), str(c), "--out",
                          str(tmp_path / "out" / "bad")], capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 1
    missing = subprocess.run([sys.executable, str(script), str(a), str(tmp_path / "none")],
                             capture_output=True, text=True)  # fmt: skip
    assert missing.returncode == 2 and "dvc repro" in missing.stderr
