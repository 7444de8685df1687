"""A training stage killed (SIGKILL) inside a real `dvc repro` resumes from its last checkpoint
when `dvc repro` runs again, and ends with the weights of an uninterrupted run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from ecglatent.cli import main

REPO = Path(__file__).resolve().parents[2]
STAGE = "pretrain@ptbxl"
MAX_EPOCHS = 12


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _tiny_params(mirror: Path) -> dict:
    """60 PTB-XL records, 2 replicates, one small VAE: 12 pretraining epochs (no early stop)
    and a 2-epoch naive continuation; every path is the default (relative to the repo)."""
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["data"].update(mirror=str(mirror), databases=["ptb-xl"], subset=60)
    p["preprocess"]["n_jobs"] = 1
    p["split"].update(task_name="norm", positive_superclasses=["NORM"], outer_folds=2)
    v = p["vae"]
    v.update(datasets=["ptbxl"], threads=1, patience=MAX_EPOCHS)
    v["pretrain"]["max_epochs"] = MAX_EPOCHS
    v["finetune_head"]["max_epochs"] = 1
    v["finetune"]["max_epochs"] = 1
    v["pretrain_models"] = {"L2": {"latent_dim": 2}}
    v["finetune_models"] = {"L2_specific": {"base": "L2", "latent_pred": 2}}
    return p


@pytest.fixture(scope="module")
def repo(mirror: Path, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A git + DVC repo holding the real dvc.yaml's pretrain stages, beats and splits made."""
    repo = tmp_path_factory.mktemp("resume") / "repo"
    repo.mkdir()
    shutil.copytree(REPO / "src", repo / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))  # fmt: skip
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"pretrain": stages["pretrain"]}}))
    (repo / "params.yaml").write_text(yaml.safe_dump(_tiny_params(mirror)))
    for name in (".gitignore", ".dvcignore"):
        shutil.copyfile(REPO / name, repo / name)
    cwd = Path.cwd()
    os.chdir(repo)
    try:
        for stage in ("fetch", "beats", "split"):
            assert main([stage]) == 0, stage
    finally:
        os.chdir(cwd)
    env = {**os.environ, "ECGLATENT_DATA_MIRROR": str(mirror), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    _run(["git", "init", "-q"], repo, env)
    _run(["dvc", "init", "-q"], repo, env)
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "init"], repo, env)
    return repo, env


def _checkpoint_epoch(path: Path) -> int:
    """The last epoch the checkpoint holds; -1 before the first one is written."""
    if not path.exists():
        return -1
    state = torch.load(path, map_location="cpu", weights_only=False)
    return MAX_EPOCHS if state.get("complete") else int(state["epoch"])


def _weights(root: Path) -> dict[str, dict[str, torch.Tensor]]:
    out = {}
    for path in sorted((root / "models/ptbxl/pretrain").rglob("*.pt")):
        out[str(path.relative_to(root))] = torch.load(path, weights_only=False)["state_dict"]
    return out


def test_killed_repro_resumes_at_its_checkpoint_and_ends_with_the_same_weights(repo):
    root, env = repo
    ckpt = root / "checkpoints/ptbxl/pretrain/rep0/L2.ckpt"
    log = (root.parent / "killed.log").open("w")
    proc = subprocess.Popen(["dvc", "repro", STAGE], cwd=root, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 180
    while _checkpoint_epoch(ckpt) < 2:
        assert proc.poll() is None, (root.parent / "killed.log").read_text()
        assert time.monotonic() < deadline, "no checkpoint at epoch 2 within 180 s"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    log.close()
    last = _checkpoint_epoch(ckpt)
    assert 2 <= last < MAX_EPOCHS - 1, f"killed too late to test a resume (epoch {last})"
    assert not (root / "models/ptbxl/pretrain/rep0/L2.pt").exists()

    out = _run(["dvc", "repro", STAGE], root, env)
    assert f"pretrain: resuming from epoch {last + 1} ({ckpt.relative_to(root)})" in out, out
    assert "resuming from epoch" not in out.replace(f"resuming from epoch {last + 1}", ""), out
    saved = torch.load(root / "models/ptbxl/pretrain/rep0/L2.pt", weights_only=False)
    assert [int(r["epoch"]) for r in saved["history"]] == list(range(MAX_EPOCHS))
    assert "up to date" in _run(["dvc", "status", STAGE], root, env)

    # the same configuration, never interrupted, in a copy without checkpoints
    ref = root.parent / "ref"
    shutil.copytree(root, ref, ignore=shutil.ignore_patterns(
        "checkpoints", "models", "mlflow.db", "mlartifacts", ".dvc", ".git", "reports"))  # fmt: skip
    _run(["ecglatent", "pretrain", "--dataset", "ptbxl"], ref, env)
    got, want = _weights(root), _weights(ref)
    assert sorted(got) == sorted(want) and len(got) == 4, sorted(got)  # 2 replicates x 2 files
    for name, state in want.items():
        for k, v in state.items():
            assert torch.equal(got[name][k], v), (name, k)


def test_a_changed_param_retrains_instead_of_reusing_checkpoints(repo):
    """The checkpoints of the finished run are not reused once a param the stage reads changes."""
    root, env = repo
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["vae"]["pretrain"]["lr"] = 2.0e-3
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    before = _weights(root)
    out = _run(["dvc", "repro", STAGE], root, env)
    assert "written by another configuration" in out, out
    assert "resuming from epoch" not in out and "finished before" not in out, out
    after = _weights(root)
    name = "models/ptbxl/pretrain/rep0/L2.pt"
    assert any(not torch.equal(v, after[name][k]) for k, v in before[name].items())
