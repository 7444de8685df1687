"""The search space of `ecglatent tune`, read from ``tune.space`` in params.yaml.

Each dimension names one knob of the β-VAE recipe. A knob left out of the space keeps the
pipeline's value (``vae.*``), so a study can tune any subset of them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import optuna

from ecglatent.config import Params, SearchDim
from ecglatent.errors import EcglatentError

# The knobs the objective understands; anything else in tune.space is a typo.
KNOWN_DIMS: dict[str, str] = {
    "latent_dim": "latent size L",
    "latent_pred": "latents read by the head, clipped to L (L_pred < L: split task)",
    "beta": "β, weight of the KL term",
    "gamma": "γ, weight of the BCE term while fine-tuning",
    "pretrain_lr": "learning rate of pretraining",
    "finetune_lr": "learning rate of the end-to-end fine-tune",
}
TYPES = ("float", "int", "categorical")


@dataclass(frozen=True)
class Settings:
    """One point of the space, as the objective trains it (latent_pred already clipped to L)."""

    latent_dim: int
    latent_pred: int
    beta: float
    gamma: float
    pretrain_lr: float
    finetune_lr: float

    @property
    def split_task(self) -> bool:
        return self.latent_pred < self.latent_dim

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bad(name: str, why: str) -> EcglatentError:
    return EcglatentError(f"params.yaml: tune.space.{name}: {why}")


def validate_space(space: dict[str, SearchDim]) -> dict[str, SearchDim]:
    """Check every dimension; returns the space unchanged or raises with the fix."""
    if not space:
        raise EcglatentError(
            "params.yaml: tune.space is empty; declare at least one dimension, e.g. "
            "`beta: {type: float, low: 0.1, high: 10.0, log: true}` "
            f"(known: {', '.join(KNOWN_DIMS)})"
        )
    for name, dim in space.items():
        if name not in KNOWN_DIMS:
            raise _bad(name, f"unknown dimension; known: {', '.join(KNOWN_DIMS)}")
        kind = dim.type.strip().lower()
        if kind not in TYPES:
            raise _bad(name, f"unknown type {dim.type!r}; use one of {', '.join(TYPES)}")
        if kind == "categorical":
            if not dim.choices:
                raise _bad(name, "a categorical dimension needs `choices: [...]`")
            continue
        if not (math.isfinite(dim.low) and math.isfinite(dim.high)) or dim.low >= dim.high:
            raise _bad(name, f"needs low < high, got low={dim.low}, high={dim.high}")
        if dim.log and dim.low <= 0:
            raise _bad(name, f"a log-scaled range needs low > 0, got {dim.low}")
        if kind == "int" and (dim.low != int(dim.low) or dim.high != int(dim.high)):
            raise _bad(name, f"an int range needs whole bounds, got {dim.low}..{dim.high}")
    for name in ("latent_dim", "latent_pred"):
        dim = space.get(name)
        if dim is None:
            continue
        categorical = dim.type.strip().lower() == "categorical"
        values = dim.choices if categorical else (dim.low, dim.high)
        if any(not isinstance(v, (int, float)) or v < 1 or v != int(v) for v in values):
            raise _bad(name, f"must be whole numbers >= 1, got {list(values)}")
    return space


def suggest(trial: optuna.Trial, space: dict[str, SearchDim], params: Params) -> Settings:
    """Ask ``trial`` for every dimension of ``space``; the rest come from ``params.vae``."""
    values: dict[str, Any] = {}
    for name, dim in space.items():
        kind = dim.type.strip().lower()
        if kind == "float":
            values[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.log)
        elif kind == "int":
            values[name] = trial.suggest_int(name, int(dim.low), int(dim.high), log=dim.log)
        else:
            values[name] = trial.suggest_categorical(name, list(dim.choices))
    return settings_from(values, params)


def settings_from(values: dict[str, Any], params: Params) -> Settings:
    """Sampled values (a trial's ``params``) completed with the pipeline's defaults."""
    v = params.vae
    if "latent_dim" in values:
        latent_dim = int(values["latent_dim"])
    else:
        # The pipeline's first fine-tuned model is the reference when L is not tuned.
        first = next(iter(v.finetune_models.values()), None)
        latent_dim = v.pretrain_models[first.base].latent_dim if first else 2
    latent_pred = min(int(values.get("latent_pred", latent_dim)), latent_dim)
    return Settings(
        latent_dim=latent_dim,
        latent_pred=latent_pred,
        beta=float(values.get("beta", v.beta)),
        gamma=float(values.get("gamma", v.gamma)),
        pretrain_lr=float(values.get("pretrain_lr", v.pretrain.lr)),
        finetune_lr=float(values.get("finetune_lr", v.finetune.lr)),
    )


def model_keys(s: Settings) -> tuple[str, str]:
    """Names of the tuned model in ``vae.pretrain_models`` and ``vae.finetune_models``."""
    base = f"tuned_L{s.latent_dim}"
    return base, f"{base}_{'split' if s.split_task else 'specific'}"


def dvc_args(s: Settings) -> list[str]:
    """`dvc exp run` arguments that put ``s`` into the pipeline's params.

    β, γ and both learning rates are global in ``vae`` (every Table 1 row uses them); L and
    L_pred become one extra pretrained model and one extra fine-tuned model named after them
    (``++`` adds the key, or overwrites it when a previous experiment already added it), so
    the paper's rows keep their names and meaning.
    """
    base, tuned = model_keys(s)
    return [
        f"vae.beta={s.beta:.6g}",
        f"vae.gamma={s.gamma:.6g}",
        f"vae.pretrain.lr={s.pretrain_lr:.6g}",
        f"vae.finetune.lr={s.finetune_lr:.6g}",
        f"++vae.pretrain_models.{base}={{latent_dim:{s.latent_dim}}}",
        f"++vae.finetune_models.{tuned}={{base:{base},latent_pred:{s.latent_pred}}}",
    ]
