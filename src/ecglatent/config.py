"""params.yaml, read once into frozen, typed dataclasses."""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ecglatent.errors import ConfigError

MIRROR_ENV = "ECGLATENT_DATA_MIRROR"
PARAMS_ENV = "ECGLATENT_PARAMS"


@dataclass(frozen=True)
class DataConfig:
    mirror: str | None = None
    raw_dir: str = "data/raw"
    databases: tuple[str, ...] = ("ptb-xl", "mitdb")
    subset: int = 0
    ptbxl_rate: int = 500
    physionet_versions: dict[str, str] = field(
        default_factory=lambda: {"ptb-xl": "1.0.3", "mitdb": "1.0.0", "incartdb": "1.0.0"}
    )

    def mirror_dir(self) -> Path | None:
        """The mirror folder: the param wins, then the environment, else None (download)."""
        value = self.mirror or os.environ.get(MIRROR_ENV)
        return Path(value).expanduser() if value else None


@dataclass(frozen=True)
class PreprocessConfig:
    out_dir: str = "data/beats"
    bandpass_hz: tuple[float, float] = (0.5, 40.0)
    filter_order: int = 2
    target_fs: dict[str, int] = field(
        default_factory=lambda: {"ptb-xl": 500, "mitdb": 360, "incartdb": 257}
    )
    beat_before_ms: float = 400.0
    beat_after_ms: float = 400.0
    min_duration_s: float = 8.0
    flat_lead_std_mv: float = 0.005
    magnitude_threshold_mv: float = 0.02
    autocorr_mean_threshold: float = 0.7
    autocorr_max_threshold: float = 0.85
    min_beats: int = 4
    # How a record's filtered beats become its one beat: "mean" (the VAE paper) or "median".
    beat_average: str = "mean"

    def __post_init__(self) -> None:
        if self.beat_average not in ("mean", "median"):
            raise ConfigError(
                f"params.yaml: preprocess.beat_average: {self.beat_average!r}; use 'mean' or 'median'"
            )
    rpeak_detector: str = "ecglatent"
    mitdb_leads: tuple[str, ...] = ("MLII", "other")
    # Worker processes for the beats stage; 0 = one per CPU core.
    n_jobs: int = 0

    def window(self, fs: float) -> tuple[int, int]:
        """Samples before and after the R peak at rate ``fs``."""
        return round(self.beat_before_ms * fs / 1000), round(self.beat_after_ms * fs / 1000)


@dataclass(frozen=True)
class SplitConfig:
    out_dir: str = "data/splits"
    task_name: str = "mi"
    positive_superclasses: tuple[str, ...] = ("MI",)
    positive_codes: tuple[str, ...] = ()
    min_likelihood: float = 0.0
    # PTB-XL replicates: outer cross-validation folds made of PTB-XL's own (patient-separated)
    # strat_fold 1-10, so every record is a test record once.
    outer_folds: int = 5
    # inner CV folds of replicate 0's training part (for `ecglatent tune`)
    n_folds: int = 5
    val_fraction: float = 0.15
    mitdb_val_fraction: float = 0.2
    mitdb_positive_class: str = "V"
    # MIT-BIH replicates: DS1/DS2 is fixed, so replicates differ by seed (init, sampling and
    # the DS1 validation records).
    mitdb_replicates: int = 5

    def __post_init__(self) -> None:
        if not 2 <= self.outer_folds <= 10:
            raise ConfigError(
                f"params.yaml: split.outer_folds={self.outer_folds}; PTB-XL has 10 strat_folds, "
                "so use 2-10 (5 in the paper)"
            )
        if self.mitdb_replicates < 1:
            raise ConfigError("params.yaml: split.mitdb_replicates must be >= 1")


@dataclass(frozen=True)
class PhaseConfig:
    """One training phase: learning rate and epoch cap (early stopping may end it sooner)."""

    lr: float = 1e-3
    max_epochs: int = 20


@dataclass(frozen=True)
class PretrainModel:
    latent_dim: int = 10
    beta: float | None = None  # None: vae.beta


@dataclass(frozen=True)
class FinetuneModel:
    base: str = "L10"  # a key of vae.pretrain_models
    latent_pred: int = 10


@dataclass(frozen=True)
class VAEConfig:
    arch: str = "small"
    dropout: float = 0.1
    beta: float = 4.0
    gamma: float = 500.0
    batch_size: int = 64
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    patience: int = 25
    pretrain: PhaseConfig = field(default_factory=lambda: PhaseConfig(1e-3, 200))
    finetune_head: PhaseConfig = field(default_factory=lambda: PhaseConfig(1e-2, 50))
    finetune: PhaseConfig = field(default_factory=lambda: PhaseConfig(3e-4, 200))
    pretrain_models: dict[str, PretrainModel] = field(
        default_factory=lambda: {"L2": PretrainModel(2), "L10": PretrainModel(10)}
    )
    finetune_models: dict[str, FinetuneModel] = field(
        default_factory=lambda: {"L2_specific": FinetuneModel("L2", 2)}
    )
    datasets: tuple[str, ...] = ("ptbxl", "mitdb")
    # Items drawn per training epoch and items used for validation, per dataset (0 = all).
    max_train_items: dict[str, int] = field(default_factory=dict)
    max_val_items: dict[str, int] = field(default_factory=dict)
    models_dir: str = "models"
    # per-epoch checkpoints, outside every DVC out (DVC deletes a stage's outs before it runs)
    checkpoint_dir: str = "checkpoints"
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch CPU threads; 0 = all cores
    amp: bool = False  # bf16 autocast on CUDA
    compile: bool = False  # torch.compile (pays 20-30 s up front)
    traversal_steps: int = 7
    # record-level bootstrap resamples for MIT-BIH's naive-vs-specific test in each replicate
    bootstrap_samples: int = 2000
    # evaluate: train+val items the probes learn from, per dataset (random sample; 0 = all)
    probe_max_items: dict[str, int] = field(default_factory=dict)
    # evaluate: test items decoded for reconstruction MSE/correlation (random sample; 0 = all)
    recon_max_items: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TrackingConfig:
    tracking_uri: str = "sqlite:///mlflow.db"
    artifact_root: str = "mlartifacts"
    experiment: str = "ecglatent-vae"
    model_prefix: str = "ecg-task-vae"
    register: bool = True
    reports_dir: str = "reports"


@dataclass(frozen=True)
class SearchDim:
    """One dimension of an Optuna search space: int/float range (optionally log) or categorical."""

    type: str = "float"  # float | int | categorical
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class TuneConfig:
    dataset: str = "ptbxl"
    storage: str = "sqlite:///optuna.db"
    sampler: str = "tpe"  # tpe | random (nsga2 for two objectives)
    pruner: str = "median"  # median | hyperband | none
    # Objective: mean validation AUROC over the first n_folds CV folds of split.n_folds.
    n_folds: int = 2
    # Second objective: validation reconstruction MSE (minimised); the Pareto front is reported.
    multi_objective: bool = False
    pretrain_epochs: int = 5
    finetune_head_epochs: int = 2
    finetune_epochs: int = 4
    heartbeat_interval: int = 30
    grace_period: int = 90
    max_retry: int = 1
    space: dict[str, SearchDim] = field(default_factory=dict)
    reports_dir: str = "reports/tune"


@dataclass(frozen=True)
class SiliconPretrainConfig:
    lr: float = 1e-3
    batch_size: int = 256
    max_epochs: int = 100
    patience: int = 20
    lr_step_epochs: int = 10
    lr_gamma: float = 0.75
    weight_decay: float = 1e-2


@dataclass(frozen=True)
class SiliconDownstreamConfig:
    max_epochs: int = 50
    schedule_epochs: int = 50
    patience: int = 20
    batch_size: int = 128
    weight_decay: float = 1e-2
    weighted_loss: bool = True
    tune_threshold: bool = False
    # epoch cap of the frozen-embedding configurations (randfeatures, finetune), whose epochs
    # only train the linear layer on precomputed features; 0 = max_epochs
    frozen_max_epochs: int = 0


@dataclass(frozen=True)
class SiliconConfig:
    """SiliconNet (Aublin et al.): SimSiam lead-invariant pretraining, N-vs-V downstream."""

    out_dir: str = "data/siliconet"
    models_dir: str = "models/siliconet"
    reports_dir: str = "reports"
    fs: float = 250.0
    before_s: float = 1.0
    after_s: float = 0.2
    bandpass_hz: tuple[float, float] = (0.5, 60.0)
    rpeak_detector: str = "ecglatent"
    train_lead: str = "MLII"
    test_leads: tuple[str, ...] = ("MLII", "other")
    ds1_val_fraction: float = 0.5
    split_by_record: bool = False
    pretrain_val_fraction: float = 0.2
    # 12-lead corpora for SimSiam: ptb-xl and/or challenge-2021 (each must be in data.databases)
    pretrain_databases: tuple[str, ...] = ("ptb-xl",)
    # evenly spaced beats kept per pretraining record (0 = all); long records would dominate
    pretrain_beats_per_record: int = 0
    projector_dim: int = 256
    projector_layers: int = 2
    predictor_hidden: int = 64
    pretrain: SiliconPretrainConfig = field(default_factory=SiliconPretrainConfig)
    downstream: SiliconDownstreamConfig = field(default_factory=SiliconDownstreamConfig)
    configs: tuple[str, ...] = ("randfeatures", "randinit", "pretrained", "finetune", "2lr")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    max_pretrain_beats: int = 0
    max_train_beats: int = 0
    max_val_beats: int = 0
    # beats scored per DS2 set and per INCART lead, stratified by lead and class; 0 = all
    max_test_beats: int = 0
    # a test lead gets its own F1 row only with at least this many V beats
    min_v_beats: int = 20
    device: str = "auto"
    # the embedding's convolutions: auto (bf16 where the CPU/GPU has it natively) | fp32 | bf16
    precision: str = "auto"
    threads: int = 0
    # torch threads for scoring in siliconet-evaluate (no training runs beside it); 0 = all cores
    eval_threads: int = 0
    experiment: str = "ecglatent-siliconet"
    model_name: str = "ecg-beat-classifier"


@dataclass(frozen=True)
class Params:
    seed: int = 42
    data: DataConfig = field(default_factory=DataConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    siliconet: SiliconConfig = field(default_factory=SiliconConfig)


def _build(cls: type, raw: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys with their path."""
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"params.yaml: '{where}' must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(
            f"params.yaml: unknown key(s) {unknown} under '{where or 'top level'}'; "
            f"known: {sorted(names)}"
        )
    kwargs = {}
    for name, value in raw.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}".lstrip("."))
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"params.yaml: '{where}' must be a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_coerce(item, v, where) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"params.yaml: '{where}' must be a mapping, got {value!r}")
        return {str(k): _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    try:
        if hint is bool and not isinstance(value, bool):
            raise TypeError
        if hint in (int, float, str, bool):
            if hint is int and isinstance(value, float) and not value.is_integer():
                raise TypeError
            return hint(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"params.yaml: '{where}' must be {hint.__name__}, got {value!r}"
        ) from None
    return value


def load_params(path: str | os.PathLike[str] | None = None) -> Params:
    """Read params.yaml (or ``$ECGLATENT_PARAMS``) into :class:`Params`."""
    path = Path(path or os.environ.get(PARAMS_ENV, "params.yaml"))
    if not path.exists():
        raise ConfigError(f"{path} not found: run from the repository root or pass --params PATH")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    params = _build(Params, raw, "")
    _validate(params)
    return params


def _validate(p: Params) -> None:
    lo, hi = p.preprocess.bandpass_hz
    if not 0 <= lo < hi:
        raise ConfigError(
            f"params.yaml: preprocess.bandpass_hz must be [low, high] with low < high, got {[lo, hi]}"
        )
    if not 0 < p.split.val_fraction < 1:
        raise ConfigError("params.yaml: split.val_fraction must lie in (0, 1)")
    if p.data.subset < 0:
        raise ConfigError("params.yaml: data.subset must be 0 (all) or a positive count")
    for name, ft in p.vae.finetune_models.items():
        base = p.vae.pretrain_models.get(ft.base)
        if base is None:
            raise ConfigError(
                f"params.yaml: vae.finetune_models.{name}.base '{ft.base}' is not one of "
                f"vae.pretrain_models {sorted(p.vae.pretrain_models)}"
            )
        if not 1 <= ft.latent_pred <= base.latent_dim:
            raise ConfigError(
                f"params.yaml: vae.finetune_models.{name}.latent_pred must be in 1..{base.latent_dim}"
            )
    unknown = set(p.data.databases) - {"ptb-xl", "mitdb", "incartdb", "challenge-2021"}
    if unknown:
        raise ConfigError(f"params.yaml: data.databases has unknown database(s) {sorted(unknown)}")
    corpora = p.siliconet.pretrain_databases
    bad = sorted(set(corpora) - {"ptb-xl", "challenge-2021"})
    if bad or not corpora:
        raise ConfigError(
            f"params.yaml: siliconet.pretrain_databases {list(corpora)}: use ptb-xl and/or "
            f"challenge-2021"
        )
    if p.siliconet.precision not in ("auto", "fp32", "bf16"):
        raise ConfigError(
            f"params.yaml: siliconet.precision {p.siliconet.precision!r}: use auto, fp32 or bf16"
        )
    if p.siliconet.pretrain_beats_per_record < 0:
        raise ConfigError(
            "params.yaml: siliconet.pretrain_beats_per_record must be 0 (all) or more"
        )
