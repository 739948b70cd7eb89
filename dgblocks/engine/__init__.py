"""Everything a recipe needs that is not an algorithm: config -> CLI, seeds, resumable
batches, atomic checkpoints, logging, DDP, evaluation and outputs, export.

A recipe calls :func:`setup` and drives a :class:`Run` (see ``docs/engine.md``).
"""

from dgblocks.engine.batches import Batches, default_workers, random_sampler
from dgblocks.engine.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_latest_checkpoint,
    previous_path,
    save_checkpoint,
)
from dgblocks.engine.config import (
    ConfigError,
    SharedArgs,
    arg,
    config_dict,
    load_overrides,
    parse_config,
)
from dgblocks.engine.distributed import (
    DistInfo,
    gathered_encode,
    init_distributed,
    resolve_device,
    shard,
    shutdown_distributed,
    wrap_ddp,
)
from dgblocks.engine.evaluation import finish_run, plot_run
from dgblocks.engine.export import ExportMismatch, export_onnx, export_torchscript, run_onnx
from dgblocks.engine.inputs import image_size, normalize_input
from dgblocks.engine.logging import MetricsLogger, read_jsonl
from dgblocks.engine.lr import warmup_cosine
from dgblocks.engine.progress import progress_bar
from dgblocks.engine.results import environment, git_commit, write_json
from dgblocks.engine.run import Run, setup
from dgblocks.engine.seeding import derive_seed, rng_state, seed_everything, set_rng_state
from dgblocks.engine.stage_cache import StageCache, settings_key
from dgblocks.engine.validation import validation_error

__all__ = [
    "setup", "Run", "warmup_cosine",
    "arg", "SharedArgs", "parse_config", "config_dict", "load_overrides",
    "Batches", "random_sampler", "default_workers",
    "save_checkpoint", "load_checkpoint", "CheckpointError", "load_latest_checkpoint",
    "previous_path", "ConfigError",
    "seed_everything", "rng_state", "set_rng_state", "derive_seed",
    "MetricsLogger", "read_jsonl", "progress_bar",
    "DistInfo", "init_distributed", "shutdown_distributed", "resolve_device", "shard",
    "gathered_encode", "wrap_ddp",
    "finish_run", "plot_run", "write_json", "git_commit", "environment",
    "export_onnx", "export_torchscript", "run_onnx", "ExportMismatch",
    "normalize_input", "image_size", "StageCache", "settings_key",
    "validation_error",
]
