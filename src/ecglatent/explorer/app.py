"""`ecglatent explore`: the live explorer, a small Starlette app served by uvicorn on 127.0.0.1.

Routes: ``/`` the page, ``/assets/*`` its scripts, ``/api/meta`` the model description,
``POST /api/decode`` ``{"z": [...], "rr": [...]}`` → beat (mV) and probabilities,
``POST /api/upload`` ``{"files": {name: base64}}`` → the served model's answer for a recording.
"""

from __future__ import annotations

import base64
import binascii
import logging

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ecglatent.errors import EcglatentError
from ecglatent.explorer.model import ExplorerModel
from ecglatent.explorer.page import ASSETS, render
from ecglatent.explorer.upload import upload_frame

log = logging.getLogger(__name__)
HOST = "127.0.0.1"  # never another interface: the page decodes patients' data


def _error(msg: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": msg}, status_code=status)


def create_app(model: ExplorerModel) -> Starlette:
    meta = model.meta()
    page = render({"mode": "live", "meta": meta}, inline=False, title=model.uri)

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def get_meta(request: Request) -> JSONResponse:
        return JSONResponse(meta)

    async def decode(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            z = np.asarray(body["z"], dtype=np.float64)
            rr = np.asarray(body.get("rr", [0.0, 0.0]), dtype=np.float64)
        except (ValueError, KeyError, TypeError) as exc:
            return _error(
                f'expected {{"z": [{model.latent_dim} numbers], "rr": [2 numbers]}}: {exc}'
            )
        if z.shape != (model.latent_dim,) or rr.shape != (2,) or not np.isfinite([*z, *rr]).all():
            return _error(
                f"z must be {model.latent_dim} finite numbers and rr 2, got {z.shape}, {rr.shape}"
            )
        d = model.decode(z, rr)
        # 0.01 µV: far below the page's resolution, and short numbers keep the reply small
        return JSONResponse({"beat": np.round(d.beat, 5).tolist(), "probability": d.probability,
                             "head_probability": d.head_probability})  # fmt: skip

    async def upload(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            files = {str(k): base64.b64decode(v, validate=True) for k, v in body["files"].items()}
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            return _error(f'expected {{"files": {{name: base64 content}}}}: {exc}')
        try:
            name, frame = upload_frame(files, model.feature_model.mode)
            out = model.score(frame).iloc[0]
        except EcglatentError as exc:
            return _error(str(exc))
        except Exception as exc:  # the pyfunc refuses bad input with MlflowException
            return _error(getattr(exc, "message", None) or str(exc))
        L = model.latent_dim
        ok = out["quality"] == "ok"
        z = [float(out[f"latent_{i}"]) for i in range(L)] if ok else None
        rr_s = np.asarray([out["rr_mean_s"], out["rr_std_s"]], dtype=np.float64)
        if model.feature_model.mode == "beat":
            rr_s = np.asarray(frame.iloc[0]["rr"], dtype=np.float64)
        rr = model.normaliser.rr(rr_s[None])[0].astype(float).tolist()
        return JSONResponse({
            "name": name, "quality": str(out["quality"]), "n_beats": int(out["n_beats"]),
            "z": z, "rr": rr, "probability": float(out["probability"]) if ok else None,
        })  # fmt: skip

    routes = [
        Route("/", index),
        Route("/api/meta", get_meta),
        Route("/api/decode", decode, methods=["POST"]),
        Route("/api/upload", upload, methods=["POST"]),
        Mount("/assets", app=StaticFiles(directory=str(ASSETS)), name="assets"),
    ]
    return Starlette(routes=routes)


def serve_explorer(model_uri: str, port: int) -> None:
    """Load the model and serve its explorer on http://127.0.0.1:<port>/ until interrupted."""
    import torch
    import uvicorn

    # One latent vector per request: more threads only add hand-over overhead.
    torch.set_num_threads(1)
    model = ExplorerModel.load(model_uri)
    app = create_app(model)
    print(f"ecglatent explore: {model_uri} on http://{HOST}:{port}/ (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=HOST, port=port, log_level="warning")
