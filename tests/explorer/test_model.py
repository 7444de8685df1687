"""The explorer's model side without a browser: latent summary, grid encoding, uploads, errors."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import urllib.error
import urllib.request

import mlflow
import numpy as np
import pytest
import yaml

from ecglatent.config import load_params
from ecglatent.datasets.arrays import load_dataset
from ecglatent.errors import EcglatentError
from ecglatent.explorer.latents import ARTIFACT
from ecglatent.explorer.model import ExplorerModel
from ecglatent.explorer.static_page import SCALE_MV, encode_beats, traversal_grid
from ecglatent.explorer.upload import upload_frame


def test_summary_holds_the_training_latent_statistics_and_test_encodings(tiny_vae_run,
                                                                         explorer_model):  # fmt: skip
    _, params_path = tiny_vae_run
    m = explorer_model
    data = load_dataset("ptbxl", load_params(str(params_path)))
    net, norm = m.network, m.normaliser
    import torch

    with torch.no_grad():
        dev = np.isin(data.role, ["train", "val"])
        mu_dev = net.encode(torch.as_tensor(norm.x(data.x[dev])))[0].numpy()
        test = data.role == "test"
        mu_te = net.encode(torch.as_tensor(norm.x(data.x[test])))[0].numpy()
    s = m.summary
    np.testing.assert_allclose(s.train_mean, mu_dev.mean(0), atol=1e-5)
    np.testing.assert_allclose(s.train_sd, mu_dev.std(0), atol=1e-5)
    np.testing.assert_allclose(s.test_z, mu_te, atol=1e-5)
    np.testing.assert_array_equal(s.test_y, data.y[test])
    assert list(s.test_ids) == data.meta.loc[test, "record_id"].astype(str).tolist()
    lo, hi = m.slider_ranges()
    np.testing.assert_allclose(hi - lo, 6 * s.train_sd)


def test_grid_is_single_factor_moves_and_survives_its_encoding(explorer_model):
    m = explorer_model
    g = traversal_grid(m, steps=5)
    L = m.latent_dim
    assert g["beats"].shape == (L, 5, 12, 400)
    mid = m.decode(m.summary.train_mean).beat
    for k in range(L):
        np.testing.assert_allclose(g["beats"][k, 2], mid, atol=1e-6)  # step 0 sd = the mean
    z = m.summary.train_mean.copy()
    z[1] -= 3 * m.summary.train_sd[1]
    np.testing.assert_allclose(g["beats"][1, 0], m.decode(z).beat, atol=1e-6)
    raw = np.frombuffer(gzip.decompress(base64.b64decode(encode_beats(g["beats"]))), "<i2")
    back = np.cumsum(raw.reshape(g["beats"].shape).astype(np.int64), axis=-1) * SCALE_MV
    assert np.abs(back - g["beats"]).max() <= SCALE_MV / 2 + 1e-9


def test_model_without_latent_summary_is_refused_with_the_fix(explorer_model, tmp_path):
    local = mlflow.artifacts.download_artifacts(artifact_uri=explorer_model.uri)
    copy = tmp_path / "model"
    shutil.copytree(local, copy)
    assert ExplorerModel.load(str(copy)).latent_dim == explorer_model.latent_dim  # a folder works
    mlmodel = yaml.safe_load((copy / "MLmodel").read_text())
    del mlmodel["flavors"]["python_function"]["artifacts"][ARTIFACT]
    (copy / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(EcglatentError, match="re-run `ecglatent evaluate`"):
        ExplorerModel.load(str(copy))
    with pytest.raises(EcglatentError, match="cannot load"):
        ExplorerModel.load(str(tmp_path / "nothing-here"))


@pytest.mark.parametrize(
    ("files", "mode", "match"),
    [
        ({}, "record", "no file uploaded"),
        ({"a.json": b"{not json"}, "record", "not valid JSON"),
        ({"a.json": b'{"signal": [[0]], "fs": 500}'}, "record", r"missing field\(s\) \['leads'\]"),
        ({"a.json": b'[{"beat": 1, "rr": 1}, {"beat": 1, "rr": 1}]'}, "beat", "one recording"),
        ({"r.dat": b"\0\0"}, "record", "exactly one .hea"),
        ({"r.hea": b"r 1 500 10\n", "r.dat": b""}, "beat", "single-beat model"),
        ({"../x.hea": b""}, "record", "characters other than"),
    ],
)
def test_bad_uploads_get_a_message(files, mode, match):
    with pytest.raises(EcglatentError, match=match):
        upload_frame(files, mode)


def test_app_answers_bad_requests_with_400_and_a_reason(explore_url, explorer_model):
    def post(path: str, body: bytes) -> tuple[int, dict]:
        req = urllib.request.Request(explore_url + path, data=body,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    L = explorer_model.latent_dim
    status, body = post("api/decode", json.dumps({"z": [0.0] * (L + 1), "rr": [0, 0]}).encode())
    assert status == 400 and f"z must be {L} finite numbers" in body["error"]
    status, body = post("api/decode", b"{oops")
    assert status == 400 and "expected" in body["error"]
    status, body = post("api/upload", json.dumps({"files": {"a.json": "%%%"}}).encode())
    assert status == 400 and "base64" in body["error"]
    status, body = post("api/decode", json.dumps({"z": [0.0] * L}).encode())
    assert status == 200 and len(body["beat"]) == 12 and 0 <= body["probability"] <= 1
