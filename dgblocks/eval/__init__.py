"""dgblocks.eval: ranking metrics, benchmark evaluation and the DG protocols.

- :func:`evaluate_ranking` (CMC, mAP, mINP; Market-1501 rules), :func:`cmc_curve`
- :func:`evaluate_benchmark`, :func:`format_table`, :func:`worst_domain` (WDA)
- :func:`summarize` (average and worst over targets), :func:`mean_std` (sample std): the one
  metric summary behind the results JSON, the printed table and the sweep tables
- :func:`build_protocol` / :func:`parse_protocol`: Protocol-1/2/3 and direct transfer
"""

from dgblocks.eval.benchmark import (
    encode_dataset,
    evaluate_benchmark,
    format_table,
    summarize_splits,
    worst_domain,
)
from dgblocks.eval.protocols import ProtocolSpec, build_protocol, parse_protocol, target_domain
from dgblocks.eval.ranking import RankingResult, cmc_curve, evaluate_ranking
from dgblocks.eval.summary import mean_std, summarize

__all__ = [
    "evaluate_ranking",
    "RankingResult",
    "cmc_curve",
    "evaluate_benchmark",
    "encode_dataset",
    "format_table",
    "summarize_splits",
    "worst_domain",
    "summarize",
    "mean_std",
    "ProtocolSpec",
    "parse_protocol",
    "build_protocol",
    "target_domain",
]
