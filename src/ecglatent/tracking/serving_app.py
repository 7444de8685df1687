"""MLflow's own scoring server behind a request-size limit; what `ecglatent serve` runs.

    python -m ecglatent.tracking.serving_app --model MODEL_URI [--host H] [--port P]
        [--workers N] [--max-request-mb MB]

`mlflow models serve --env-manager local` downloads the model and runs uvicorn on
``mlflow.pyfunc.scoring_server``'s FastAPI app; so does this, with one ASGI layer in front:
a body larger than the limit is answered 413 before MLflow parses a byte of it (a 120 MB
request otherwise costs ~20 s of JSON parsing). Every route, the JSON formats, the 400s for
malformed input and the request timeout (``MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT``) are MLflow's.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

MAX_BYTES_ENV = "ECGLATENT_MAX_REQUEST_BYTES"
DEFAULT_MAX_REQUEST_MB = 64.0
# An oversized body is read and thrown away (so the client can read the 413 instead of a reset
# connection) up to this many times the limit; beyond that the connection is simply closed.
DRAIN_FACTOR = 16

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodySizeLimit:
    """ASGI middleware: HTTP requests whose body exceeds ``max_bytes`` get a 413 JSON error."""

    def __init__(self, app: Callable, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _reply(send, 400, "BAD_REQUEST", "Content-Length is not a number")
                return
            if size > self.max_bytes:
                await self._refuse(size, receive, send)
                return
            await self.app(scope, receive, send)
            return
        # no declared length (chunked upload): read up to the limit, then hand the body on
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            total += len(chunks[-1])
            if total > self.max_bytes:
                await self._refuse(total, receive, send, more=message.get("more_body", False))
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, size: int, receive: Receive, send: Send, more: bool = True) -> None:
        read = 0
        while more and read < DRAIN_FACTOR * self.max_bytes:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            read += len(message.get("body", b""))
            more = message.get("more_body", False)
        await _reply(
            send,
            413,
            "REQUEST_TOO_LARGE",
            f"request body of {size / 1e6:.1f} MB exceeds the server's limit of "
            f"{self.max_bytes / 1e6:.1f} MB; send fewer recordings per request "
            f"(or start the server with a larger `ecglatent serve --max-request-mb`)",
        )


async def _reply(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error_code": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app() -> BodySizeLimit:
    """MLflow's scoring app for the model at ``$__pyfunc_model_path__``, size-limited."""
    from mlflow.pyfunc import scoring_server

    model = scoring_server.load_model_with_mlflow_config(
        os.environ[scoring_server._SERVER_MODEL_PATH]
    )
    limit = int(os.environ.get(MAX_BYTES_ENV, int(DEFAULT_MAX_REQUEST_MB * 1e6)))
    return BodySizeLimit(scoring_server.init(model), limit)


def main(argv: list[str] | None = None) -> None:
    import uvicorn
    from mlflow.pyfunc import scoring_server
    from mlflow.tracking.artifact_utils import _download_artifact_from_uri

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True, help="model URI (models:/name@alias, runs:/, path)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5001)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--max-request-mb", type=float, default=DEFAULT_MAX_REQUEST_MB)
    args = ap.parse_args(argv)
    # the same steps as `mlflow models serve --env-manager local`: a local copy of the model,
    # its path in the environment (inherited by every uvicorn worker), MLflow's app
    os.environ[scoring_server._SERVER_MODEL_PATH] = _download_artifact_from_uri(args.model)
    os.environ[MAX_BYTES_ENV] = str(int(args.max_request_mb * 1e6))
    uvicorn.run(
        "ecglatent.tracking.serving_app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
    )


if __name__ == "__main__":
    main()
