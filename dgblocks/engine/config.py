"""A recipe's ``@dataclass`` config as a command line.

Every field becomes a flag (``lambda_1`` -> ``--lambda-1`` and ``--lambda_1``) whose help text is
the field's ``help`` metadata; :func:`arg` declares a field with its help and its value under
``--smoke``. Values resolve in this order, later winning: field defaults, smoke values (with
``--smoke``), the ``--config`` file (JSON or TOML), flags given on the command line.

Every value is then checked against its field's type and range, and a bad one raises
:class:`ConfigError` naming the flag (``--log-every: expected an integer >= 1, got 0``).
Ranges come from ``arg(..., minimum=...)`` or, for integer fields, from the name: ``steps``
and ``*_steps`` >= 0 (0 steps: the untrained reference), ``batch_size``, ``num_instances``,
``*_samples``, ``*_every`` >= 1 (or the field's default, when that is lower: 0 = automatic).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dgblocks.engine.config_checks import ConfigError, _hints, _validate, validate

__all__ = ["arg", "SharedArgs", "parse_config", "config_dict", "load_overrides", "ConfigError",
           "validate"]

_MISSING = dataclasses.MISSING


def arg(default: Any, help: str, *, smoke: Any = _MISSING, choices: Sequence[Any] | None = None,
        minimum: float | None = None, maximum: float | None = None) -> Any:
    """A dataclass field with its help text and (optionally) its ``--smoke`` value.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Config:
        ...     steps: int = arg(600, "training steps", smoke=20)
        >>> cfg, _ = parse_config(Config, ["--smoke"])
        >>> cfg.steps
        20
    """
    meta: dict[str, Any] = {"help": help}
    if smoke is not _MISSING:
        meta["smoke"] = smoke
    if choices is not None:
        meta["choices"] = tuple(choices)
    if minimum is not None:
        meta["minimum"] = minimum
    if maximum is not None:
        meta["maximum"] = maximum
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass
class SharedArgs:
    """Flags every recipe shares (``dgblocks.engine.setup`` adds them to the recipe's own)."""

    smoke: bool = arg(False, "tiny data and a few steps: a check that runs in seconds")
    seed: int = arg(0, "seed of every RNG (torch, numpy, random, samplers)")
    out: str = arg("", "results JSON; checkpoint, metrics and plots are written beside it "
                   "(default runs/<recipe>/results.json)")
    resume: str = arg("", "resume from this checkpoint ('auto': the one beside --out, "
                      "if any)")
    device: str = arg("auto", "cpu | cuda | cuda:N | auto (cuda when available)")
    data: str = arg("synthetic", "synthetic | digits | real (needs --data-root)")
    data_root: str = arg("", "folder holding the real datasets")
    protocol: str = arg("", "evaluation protocol of the real data (protocol1, ...)")
    config: str = arg("", "JSON or TOML file of overrides (config fields and these flags)")
    threads: int = arg(0, "torch CPU threads (0: leave torch's default)", minimum=0)
    deterministic: bool = arg(False, "deterministic algorithms (bitwise-reproducible CPU runs)")
    ckpt_every: int = arg(50, "save a checkpoint every N steps (and at the end of each phase)")
    log_every: int = arg(10, "log metrics every N steps")
    workers: int = arg(-1, "DataLoader worker processes; -1: automatic (none for in-memory "
                       "images, some for image files); the batches do not depend on it",
                       minimum=-1)
    plots: bool = arg(True, "write t-SNE, retrieval-grid, CMC and training-curve PNGs")
    eval_batch_size: int = arg(128, "batch size of evaluation")
    source_val_every: int = arg(0, "evaluate the source-validation split (held-out identities "
                                "of the sources) every N steps of the last stage: learning "
                                "curves, search pruning; 0: only at the end", minimum=0)
    curve_targets: bool = arg(False, "with --source-val-every: evaluate the unseen targets too "
                              "at each check (learning curves only; never for selection)")
    source_val_ids: int = arg(0, "hold this many training identities out of the sources as "
                              "the source-validation split when the benchmark has none (real "
                              "data); 0: none", minimum=0)
    amp: str = arg("none", "mixed precision of the training steps: none | bf16 (autocast; "
                   "CUDA or CPU)", choices=("none", "bf16"))
    compile: bool = arg(False, "torch.compile the modules the recipe hands to run.prepare")
    compile_backend: str = arg("inductor", "torch.compile backend (aot_eager: a quick check)")
    overwrite: bool = arg(False, "replace an earlier run's checkpoint, metrics and results in "
                          "--out's folder (a fresh run refuses to, naming them)")
    resume_changed: bool = arg(False, "resume even though the checkpoint was written with "
                               "other settings (they are listed; the new ones apply)")
    stage_cache: str = arg("", "folder of the stage caches: a stage that an earlier run with the "
                           "same data, settings, seed and device trained is loaded from it "
                           "('': stage_cache/ beside --out)")
    check_data: bool = arg(False, "scan the dataset (every image decodes, every name parses), "
                           "list every problem and exit")


def _flag_type(tp: Any) -> tuple[Any, dict[str, Any]]:
    """argparse ``type`` and extra keywords for a field annotation."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _flag_type(inner[0])
    if tp is bool:
        return None, {"action": argparse.BooleanOptionalAction}
    if origin is typing.Literal:
        return type(args[0]), {"choices": args}
    if origin in (tuple, list, Sequence) and args:
        return args[0], {"nargs": "+"}
    if tp in (int, float, str):
        return tp, {}
    return str, {}


def _add_fields(parser: argparse.ArgumentParser, cls: type, title: str) -> None:
    group = parser.add_argument_group(title)
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        type_, extra = _flag_type(hints[f.name])
        default = f.default if f.default is not _MISSING else f.default_factory()  # type: ignore[misc]
        helptext = f.metadata.get("help", "")
        if "smoke" in f.metadata:
            helptext += f" [smoke: {f.metadata['smoke']}]"
        if "choices" in f.metadata:
            extra["choices"] = f.metadata["choices"]
        names = {"--" + f.name.replace("_", "-"), "--" + f.name}
        kwargs = {"dest": f.name, "default": argparse.SUPPRESS,
                  "help": f"{helptext} (default: {default!r})", **extra}
        if type_ is not None:
            kwargs["type"] = type_
        group.add_argument(*sorted(names), **kwargs)


def load_overrides(path: str | Path) -> dict[str, Any]:
    """Read a JSON or TOML file of ``{field: value}`` overrides; the error names the file."""
    path = Path(path)
    try:
        text = path.read_text()
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (OSError, ValueError) as err:
        raise ConfigError(f"--config: cannot read {str(path)!r}: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"--config: expected a mapping in {str(path)!r}, "
                         f"got {type(data).__name__}")
    data = data.get("config", data) | {k: v for k, v in data.get("shared", {}).items()}
    return {k.replace("-", "_"): v for k, v in data.items() if k != "shared"}


def _build(cls: type, values: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    hints = _hints(cls)
    kwargs = {}
    for k, v in values.items():
        if k in names:
            if typing.get_origin(hints[k]) is tuple and isinstance(v, list):
                v = tuple(v)
            kwargs[k] = v
    return cls(**kwargs)


def parse_config(config_cls: type | None, argv: Sequence[str] | None = None, *,
                 description: str | None = None) -> tuple[Any, SharedArgs]:
    """Parse ``argv`` into ``(config_cls instance, SharedArgs)``.

    Unknown keys in a ``--config`` file raise, naming the key and the file.
    """
    if argv is not None and (isinstance(argv, str) or not isinstance(argv, Sequence)
                             or not all(isinstance(a, str) for a in argv)):
        raise ConfigError(f"argv: expected a list of strings (the flags), got {argv!r}")
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_fields(parser, SharedArgs, "shared flags")
    if config_cls is not None:
        _add_fields(parser, config_cls, "recipe config")
    given = vars(parser.parse_args(argv))
    own = {f.name for f in dataclasses.fields(config_cls)} if config_cls else set()
    shared_names = {f.name for f in dataclasses.fields(SharedArgs)}
    overrides: dict[str, Any] = {}
    if given.get("config"):
        overrides = load_overrides(given["config"])
        unknown = sorted(set(overrides) - own - shared_names)
        if unknown:
            raise ConfigError(f"--config: unknown keys {unknown} in {given['config']!r}")
    smoke = bool(given.get("smoke", overrides.get("smoke", False)))
    values: dict[str, Any] = {}
    if smoke and config_cls is not None:
        values |= {f.name: f.metadata["smoke"] for f in dataclasses.fields(config_cls)
                   if "smoke" in f.metadata}
    values |= overrides | given
    shared = _build(SharedArgs, values)
    cfg = _build(config_cls, values) if config_cls is not None else None
    for obj in (shared, cfg):
        if obj is not None:
            _validate(obj)
    if shared.protocol and shared.data != "real":
        raise ConfigError(f"--protocol: only read with --data real, got --data {shared.data} "
                          f"and --protocol {shared.protocol!r}")
    return cfg, shared


def config_dict(obj: Any) -> dict[str, Any]:
    """A dataclass instance as a JSON-ready dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(obj), default=str))
