"""scripts/mutation_check.py: every snippet still matches the code, and a run catches a bug."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import mutation_check  # noqa: E402


def test_there_are_enough_named_mutations():
    names = [m.name for m in mutation_check.MUTATIONS]
    assert len(names) >= 15 and len(set(names)) == len(names)


@pytest.mark.parametrize("m", mutation_check.MUTATIONS, ids=lambda m: m.name)
def test_snippet_occurs_exactly_once_and_its_tests_exist(m):
    text = (REPO / "src" / "ecglatent" / m.file).read_text()
    assert text.count(m.old) == 1, f"mutation {m.name}: update its snippet in mutation_check.py"
    for t in m.tests:
        assert (REPO / t.split("::")[0]).exists(), t


def test_stale_snippet_is_a_message_naming_the_mutation(tmp_path):
    m = mutation_check.MUTATIONS[0]
    (tmp_path / "ecglatent" / m.file).parent.mkdir(parents=True)
    (tmp_path / "ecglatent" / m.file).write_text("nothing to see\n")
    with pytest.raises(SystemExit, match=f"mutation '{m.name}'.*occurs 0 times"):
        mutation_check._apply(tmp_path, m)


def test_the_readme_command_catches_a_wrong_class_f1(tmp_path):
    out = tmp_path / "m.json"
    proc = subprocess.run(
        [sys.executable, "scripts/mutation_check.py", "--only", "f1_on_wrong_class",
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads(out.read_text())
    assert res["n"] == 1 and res["caught"] == 1 and res["survived"] == []
    assert res["mutations"][0]["evidence"], "a caught mutation names the failing test"
