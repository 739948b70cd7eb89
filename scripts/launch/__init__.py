"""The launcher: many recipe runs as subprocesses, resumable, tabulated.

    python -m scripts.launch leaderboard ...   # every method on one protocol and budget
    python -m scripts.launch sweep ...         # one recipe over variants x seeds
    python -m scripts.launch run-times ...     # every recipe's smoke, default, untrained run

All three run their grid through :mod:`dgblocks.engine.sweep` (a run whose JSON exists is
skipped; ``--parallel`` runs at a time). The hyper-parameter search is ``scripts/search.py``.
"""
