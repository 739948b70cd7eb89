"""``python -m scripts.launch {leaderboard,sweep,run-times} [flags]`` (see ``scripts.launch``)."""

from __future__ import annotations

import sys

COMMANDS = {"leaderboard": "scripts.launch.leaderboard", "sweep": "scripts.launch.sweep",
            "run-times": "scripts.launch.run_times"}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        raise SystemExit(f"usage: python -m scripts.launch {{{','.join(COMMANDS)}}} [flags]"
                         f"{'' if not argv else f'; got {argv[0]!r}'}")
    import importlib

    importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    main()
