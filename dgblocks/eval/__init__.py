"""dgblocks.eval: ranking metrics and the evaluation of a benchmark's targets.

- :func:`evaluate_ranking` (CMC, mAP, mINP; Market-1501 rules), :func:`cmc_curve`
- :func:`rank_features`: the same metrics from features, a block of queries at a time (never
  the full query x gallery matrix)
- :func:`evaluate_benchmark` (optionally with each split's features and ranking,
  :class:`SplitEvaluation`), :func:`encode_dataset`, :func:`format_table`, :func:`worst_domain`
  (WDA)
- :func:`summarize` (average and worst over targets), :func:`mean_std` (sample std): the one
  metric summary behind the results JSON, the printed table and the sweep tables
- :func:`paired_difference`: a method against a reference over the same seeds, with a t interval
- :func:`validation_error`: 1 - R1 on held-out identities (a schedule that switches on it)

The protocols (what trains, what is evaluated) are in :mod:`dgblocks.protocols`.
"""

from dgblocks.eval.encode import encode_dataset
from dgblocks.eval.evaluate import (
    SplitEvaluation,
    evaluate_benchmark,
    format_table,
    summarize_splits,
    worst_domain,
)
from dgblocks.eval.paired import PairedDifference, paired_difference
from dgblocks.eval.ranking import RankingResult, cmc_curve, evaluate_ranking
from dgblocks.eval.streaming import rank_features
from dgblocks.eval.summary import mean_std, summarize
from dgblocks.eval.validation import validation_error

__all__ = [
    "evaluate_ranking",
    "rank_features",
    "RankingResult",
    "cmc_curve",
    "evaluate_benchmark",
    "encode_dataset",
    "SplitEvaluation",
    "format_table",
    "summarize_splits",
    "worst_domain",
    "summarize",
    "mean_std",
    "paired_difference",
    "PairedDifference",
    "validation_error",
]
