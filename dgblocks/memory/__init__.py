"""Stateful banks: memories whose state is the block (``functional_name = None``)."""

from dgblocks.memory.id_pool import IDPool, PoolNeighbours

__all__ = [
    "IDPool",
    "PoolNeighbours",
]
