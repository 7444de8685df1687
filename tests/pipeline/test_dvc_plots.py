"""`dvc plots show` with the real dvc.yaml renders every loss curve and figure a pipeline run
wrote: one plot per curve CSV with its declared fields, and every PNG on the HTML page."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
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


def _pipeline_outputs(root: Path) -> None:
    """Curves and figures as the stages write them (their own writers and path helpers, a
    tiny model trained for real): 2 datasets x 2 stages x 2 replicates x 2 models."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ecglatent.config import load_params
    from ecglatent.evaluation.plots import factor_traversal, latent_scatter
    from ecglatent.pipeline.vae_common import curve_path, write_curve
    from ecglatent.training.trainer import fit_phase
    from tests.training.test_trainer import _data, _model, _spec

    params = load_params(REPO / "params.yaml")
    train, val = _data()
    fitted = {}
    for phase in ("pretrain", "finetune"):
        model = _model(latent_pred=2)
        res = fit_phase(model, train, val, _spec(phase, 2, balanced=phase == "finetune"),
                        root / f"{phase}.ckpt", 0, progress=False)  # fmt: skip
        fitted[phase] = res.history
    for ds in ("ptbxl", "mitdb"):
        for k in (0, 1):
            for name in ("L2", "L2_naive"):
                write_curve(root / curve_path(params, ds, "pretrain", k, name), fitted["pretrain"])
            for name in ("L2_specific", "L10_split"):
                write_curve(root / curve_path(params, ds, "finetune", k, name), fitted["finetune"])
        out = root / params.tracking.reports_dir / "plots" / ds
        out.mkdir(parents=True)
        z = np.random.default_rng(0).standard_normal((50, 2))
        fig = factor_traversal(lambda m: np.tile(m[:, :1, None], (1, 2, 64)), z.mean(0), z.std(0),
                               ["I", "II"], 3, path=out / "traversal_L2.png")  # fmt: skip
        plt.close(fig)
        fig = latent_scatter(z, (z[:, 0] > 0).astype(float))
        fig.savefig(out / "scatter_L2.png", dpi=120)
        plt.close(fig)


def test_every_curve_and_figure_is_rendered(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    _pipeline_outputs(work)
    repo = dvc_repo_with({"reports/curves": work / "reports/curves",
                          "reports/plots": work / "reports/plots"}, tmp_path)  # fmt: skip
    curves = sorted(
        p.relative_to(repo).as_posix() for p in (repo / "reports/curves").rglob("*.csv")
    )
    pngs = sorted(p.relative_to(repo).as_posix() for p in (repo / "reports/plots").rglob("*.png"))
    assert len(curves) == 16 and len(pngs) == 4, (curves, pngs)
    data = plots_json(repo)
    # SimSiam's history (declared too) is not written here: tested in test_siliconet_pipeline
    assert sorted(set(data) - {"models/siliconet/pretrain/history.csv"}) == curves + pngs
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
