"""Everything a method needs that is not an algorithm: the one training loop, config -> CLI,
seeds, resumable batches, atomic checkpoints and stage caches, logging, DDP, evaluation and
outputs, export.

A recipe is ``train(MyMethod)`` (see ``docs/engine.md``); a script of one's own calls
:func:`setup`, builds a :class:`dgblocks.methods.Method` and runs :func:`fit` then
``run.finish``. Everything else lives in the submodules (``dgblocks.engine.checkpoint``,
``.batches``, ``.sweep``, ...) and is not needed to write a method.
"""

from dgblocks.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from dgblocks.engine.config import ConfigError, SharedArgs, arg, parse_config
from dgblocks.engine.export import export_onnx, export_torchscript
from dgblocks.engine.logging import read_jsonl
from dgblocks.engine.loop import NonFiniteLoss, fit, train
from dgblocks.engine.lr import lr_factor, warmup_cosine
from dgblocks.engine.run import Run, setup
from dgblocks.engine.seeding import derive_seed, seed_everything

__all__ = [
    "train", "fit", "setup", "Run", "NonFiniteLoss",
    "arg", "parse_config", "SharedArgs", "ConfigError",
    "lr_factor", "warmup_cosine", "derive_seed", "seed_everything",
    "save_checkpoint", "load_checkpoint", "CheckpointError", "read_jsonl",
    "export_onnx", "export_torchscript",
]
