"""The recipes: one module per paper, the AGG baseline and the leaderboard.

Each recipe runs as a script (``python recipes/<name>.py``) or a module
(``python -m recipes.<name>``), and exposes its pieces for tests and benchmarks:
``Config``, ``build_model(cfg, bench)``, ``train_step`` and, where the step takes several
losses, ``make_losses(cfg)``: an ``nn.ModuleDict`` that ``train_step`` reads by name, never by
position::

    from recipes.baseline import Config, build_model, make_losses, train_step
"""
