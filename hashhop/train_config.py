"""`hashhop train`'s configuration: typed fields, a TOML file, `a.b=value` overrides, all checked.

Needs no torch: the whole config is checked, every error naming its field, before `hashhop
train` imports torch (seconds), so a typo costs no wait and no half-started run.

    hashhop train --config configs/identifier.toml --set steps=2000 --set model.n_layers=3
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import Field as DataclassField
from dataclasses import fields
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from hashhop.errors import HashHopError
from hashhop.fit import make_sample
from hashhop.model_config import ModelConfig
from hashhop.task import TaskSpec
from hashhop.tokenize import check_tokenizer_options

DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d+)?)$"
ConfigT = TypeVar("ConfigT", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


TRAINING_MODEL_DEFAULTS = {"arch": "transformer", "positional": "none", "conv_kernel": 3}
"""Where a trained model's shape starts unlike ModelConfig's: no positions, a short conv."""
TOKENIZER_FIELDS = ("n_fixed", "feature_dim")
"""ModelConfig fields that the tokenizer sets, never a config file."""


def _training_setting(field: DataclassField) -> tuple[type, object]:
    """(type, default) of a ModelConfig field as a training setting."""
    default = TRAINING_MODEL_DEFAULTS.get(field.name, field.default)
    return type(default), default


ModelSettings = create_model(
    "ModelSettings",
    __base__=_Strict,
    __doc__="The model's shape: ModelConfig's fields but the tokenizer's, checked by ModelConfig.",
    **{field.name: _training_setting(field) for field in fields(ModelConfig) if field.name not in TOKENIZER_FIELDS},
)


class TaskSettings(_Strict):
    chars: int = 1200
    """Prompt size in characters (the same content whatever the tokenizer)."""
    hops: list[int] = Field([1], min_length=1)
    cot: list[bool] = Field([False], min_length=1)
    hash_len: int = 16
    one_hop_steps: int = Field(0, ge=0)
    """A curriculum: the first steps ask 1-hop questions only, the lookup every chain is made
    of. A 2-layer model fed 1- and 2-hop questions from step 0 stayed at chance (<= 12% after
    3000 steps) where 1-hop alone reached 98% in 1000."""

    def spec(self, hops: int, cot: bool, seed: int) -> TaskSpec:
        """The spec of one training sample."""
        return TaskSpec(size=self.chars, unit="chars", hops=hops, cot=cot, hash_len=self.hash_len, seed=seed)


class TrainConfig(_Strict):
    out_dir: str = "runs/train"
    tokenizer: dict = {"kind": "identifier"}
    model: ModelSettings = ModelSettings()
    task: TaskSettings = TaskSettings()
    batch_size: int = Field(32, ge=1)
    steps: int = Field(1000, ge=1)
    lr: float = Field(3e-3, gt=0)
    warmup_steps: int = Field(50, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = Field(0.01, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    seed: int = Field(0, ge=0, lt=2**64)
    checkpoint_every: int = Field(250, ge=1)
    device: str = Field("auto", pattern=DEVICE_PATTERN)
    init_from: str | None = None
    """A checkpoint or run directory whose weights this run starts from, with a fresh
    optimizer and schedule: a second training stage (configs/memory_cot.toml). Its tokenizer
    and weight shapes must be this config's; loss settings (model.write_cost, model.keep_cost) may differ.
    Ignored once the run has checkpoints of its own (it resumes from them)."""


def load_config(path: Path | None, overrides: list[str]) -> TrainConfig:
    """A checked config from a TOML file (or defaults), with `a.b=value` overrides (values in TOML syntax)."""
    config = checked_config(TrainConfig, read_config_data(path, overrides))
    _check_parts(config)
    return config


def read_config_data(path: Path | None, overrides: list[str]) -> dict:
    """A TOML file's tables (or none) with `a.b=value` overrides applied, unchecked."""
    data: dict = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise HashHopError(f"cannot read config {path}: {error}") from None
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep:
            raise HashHopError(f"override {override!r} is not key=value")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        *parents, leaf = key.strip().split(".")
        node = data
        for parent in parents:
            node = node.setdefault(parent, {})
            if not isinstance(node, dict):
                raise HashHopError(f"override {override!r}: {parent} is a value, not a table of fields")
        node[leaf] = value
    return data


def checked_config(config_class: type[ConfigT], data: dict) -> ConfigT:
    """`config_class(**data)`, its first validation error as one line naming the field."""
    try:
        return config_class(**data)
    except ValidationError as error:
        first = error.errors()[0]
        raise HashHopError(f"config: {'.'.join(map(str, first['loc']))}: {first['msg']} (got {first['input']!r})") from None


def _check_parts(config: TrainConfig) -> None:
    """What field types cannot say: a known tokenizer, a buildable model, samples that fit."""
    options = dict(config.tokenizer)
    with _blaming("tokenizer"):
        check_tokenizer_options(options.pop("kind", None), **options)
    with _blaming("model"):
        ModelConfig(n_fixed=1, feature_dim=0, **config.model.model_dump())  # the tokenizer sets these two
    if config.init_from is not None and not Path(config.init_from).is_dir():
        raise HashHopError(f"init_from: no checkpoint or run directory at {config.init_from}")
    with _blaming("task"):
        for hops in config.task.hops:
            for cot in config.task.cot:
                make_sample(config.task.spec(hops, cot, seed=0))


@contextmanager
def _blaming(field: str) -> Iterator[None]:
    """A HashHopError raised in the block names the config field it is about."""
    try:
        yield
    except HashHopError as error:
        raise HashHopError(f"config: {field}: {error}") from None
