"""`dvc plots show` with the real dvc.yaml renders every loss curve and figure a pipeline run
wrote: one plot per curve CSV with its declared fields, and every PNG on the HTML page."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def dvc_repo_with(files: dict[str, Path], where: Path) -> Path:
    """A git + DVC repo holding the real dvc.yaml and ``files`` (repo path -> source)."""
    repo = where / "plots-repo"
    repo.mkdir()
    shutil.copyfile(REPO / "dvc.yaml", repo / "dvc.yaml")
    shutil.copyfile(REPO / "params.yaml", repo / "params.yaml")
    for rel, src in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, repo / rel)
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=repo, check=True, capture_output=True, timeout=120)
    return repo


def plots_json(repo: Path) -> dict:
    proc = subprocess.run(["dvc", "plots", "show", "--json"], cwd=repo, capture_output=True,
                          text=True, timeout=300, env=os.environ)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["data"]


def declared_fields(path: str) -> list[str]:
    """The y fields dvc.yaml's top-level plots declare for the entry covering ``path``."""
    for entry in yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]:
        key, props = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        if path == key or path.startswith(key + "/"):
            return list(props.get("y", []))
    raise AssertionError(f"{path} is covered by no top-level plot in dvc.yaml")


def test_every_curve_and_figure_is_rendered(tiny_vae_run, tmp_path):
    work, _ = tiny_vae_run
    repo = dvc_repo_with({"reports/curves": work / "reports/curves",
                          "reports/plots": work / "reports/plots"}, tmp_path)  # fmt: skip
    curves = sorted(
        p.relative_to(repo).as_posix() for p in (repo / "reports/curves").rglob("*.csv")
    )
    pngs = sorted(p.relative_to(repo).as_posix() for p in (repo / "reports/plots").rglob("*.png"))
    # the tiny run: 2 replicates x (2 pretrained + 2 naive + 2 fine-tuned) curves; figures
    assert len(curves) == 12, curves
    assert any("/finetune/" in c for c in curves) and any("_naive" in c for c in curves)
    assert any("traversal_" in p for p in pngs) and any("scatter_" in p for p in pngs), pngs

    data = plots_json(repo)
    assert sorted(data) == sorted(curves + pngs)
    for path in curves:
        (plot,) = data[path]
        assert plot["type"] == "vega"
        drawn = {row["field"] for row in plot["content"]["data"]["values"]}
        assert drawn == set(declared_fields(path)), (path, drawn)
    for path in pngs:
        assert data[path][0]["type"] == "image"

    out = subprocess.run(["dvc", "plots", "show", "-o", "page"], cwd=repo, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    html = (repo / "page/index.html").read_text()
    for path in pngs:
        image = "static/workspace_" + path.replace("/", "_")
        assert image in html and (repo / "page" / image).stat().st_size > 1000, image
    for path in curves:
        assert path in html, path
