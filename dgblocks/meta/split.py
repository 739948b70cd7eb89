"""Meta-train / meta-test domain splits for meta-learning DG (CDVM section 3.5).

Each step holds out ``num_test`` of the source domains as meta-test and keeps the rest as
meta-train. Domains take turns: a random permutation of the domains is walked in order, so
over ``num_domains / num_test`` steps every domain is meta-test once (balanced, unlike
independent draws), then a new permutation starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from dgblocks._checks import (
    ShapeError,
    ValueRangeError,
    check_generator,
    check_index,
    check_int,
    check_shape,
)
from dgblocks._module_checks import check_state_mapping

__all__ = ["MetaDomainSplitter"]


class MetaDomainSplitter:
    """Yields ``(meta_train_domains, meta_test_domains)`` LongTensors, one pair per step.

    Args:
        num_domains: number of source domains (>= 2).
        num_test: domains held out as meta-test per step (default 1, i.e. K-1 vs 1).
        generator: torch generator of the permutations (``None``: seeded with ``seed``).
        seed: used when ``generator`` is ``None``.

    Example:
        >>> s = MetaDomainSplitter(num_domains=3, seed=0)
        >>> sorted(int(s.next()[1]) for _ in range(3))
        [0, 1, 2]
    """

    def __init__(self, *, num_domains: int, num_test: int = 1,
                 generator: torch.Generator | None = None, seed: int = 0) -> None:
        check_int(num_domains, name="num_domains", minimum=2)
        check_int(num_test, name="num_test", minimum=1, maximum=num_domains - 1)
        check_generator(generator)
        check_int(seed, name="seed")
        self.num_domains, self.num_test = num_domains, num_test
        self.generator = generator or torch.Generator().manual_seed(seed)
        self._queue: list[int] = []

    def next(self) -> tuple[Tensor, Tensor]:
        """The next split: ``(train_domains (D - num_test,), test_domains (num_test,))``."""
        while len(self._queue) < self.num_test:
            self._queue += torch.randperm(self.num_domains, generator=self.generator).tolist()
        test, self._queue = self._queue[: self.num_test], self._queue[self.num_test:]
        if len(set(test)) < self.num_test:  # a permutation boundary repeated a domain
            rest = [d for d in range(self.num_domains) if d not in test]
            test = sorted(set(test)) + rest[: self.num_test - len(set(test))]
        train = [d for d in range(self.num_domains) if d not in test]
        return torch.tensor(train), torch.tensor(sorted(test))

    def __iter__(self):
        while True:
            yield self.next()

    def state_dict(self) -> dict[str, Any]:
        """The generator's state and the rest of the current permutation (a checkpoint
        restores both, so a resumed run draws the splits an uninterrupted one does).

        Example:
            >>> a = MetaDomainSplitter(num_domains=3, seed=0)
            >>> _ = a.next()
            >>> b = MetaDomainSplitter(num_domains=3, seed=7)
            >>> b.load_state_dict(a.state_dict())
            >>> [int(a.next()[1]) for _ in range(4)] == [int(b.next()[1]) for _ in range(4)]
            True
        """
        return {"generator": self.generator.get_state(), "queue": list(self._queue)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (an older checkpoint's ``{"state": ...}``, the bare
        generator, restores the generator only). Checked before anything changes."""
        check_state_mapping(state)
        legacy = "state" in state and "generator" not in state
        gen = state["state"] if legacy else check_state_mapping(
            state, keys=("generator", "queue"))["generator"]
        if not (isinstance(gen, torch.Tensor) and gen.dtype == torch.uint8 and gen.dim() == 1):
            got = f"{gen.dtype} {tuple(gen.shape)}" if isinstance(gen, torch.Tensor) else gen
            raise ValueRangeError(f"state['generator']: expected a torch.Generator state (a 1-D"
                                  f" uint8 tensor), got {got!r:.60}")
        queue = [] if legacy else state["queue"]
        if isinstance(queue, (str, bytes)) or not isinstance(queue, Sequence) or any(
                isinstance(d, bool) or not isinstance(d, int) or not 0 <= d < self.num_domains
                for d in queue):
            raise ValueRangeError(f"state['queue']: expected a list of domains in [0,"
                                  f" {self.num_domains}), got {queue!r:.60}")
        try:
            self.generator.set_state(gen)
        except RuntimeError as e:  # a byte tensor that is not a generator state
            raise ValueRangeError(f"state['generator']: not a state of this generator: {e}"
                                  ) from None
        if not legacy:
            self._queue = list(queue)

    @staticmethod
    def masks(domains: Tensor, split: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """Boolean masks of a batch's samples in meta-train and meta-test.

        Shape:
            domains: (N,); outputs: (N,) bool each.

        Example:
            >>> tr, te = MetaDomainSplitter.masks(torch.tensor([0, 1, 2]),
            ...                                   (torch.tensor([0, 2]), torch.tensor([1])))
            >>> tr.tolist(), te.tolist()
            ([True, False, True], [False, True, False])
        """
        check_shape(domains, "N", name="domains")
        check_index(domains, None, name="domains")  # an integer tensor: float ids are a bug
        if not (isinstance(split, (tuple, list)) and len(split) == 2
                and all(isinstance(t, torch.Tensor) for t in split)):
            raise ValueRangeError("split: expected (train_domains, test_domains) tensors as"
                                  f" returned by next(), got {split!r:.60}")
        train, test = split
        tr = torch.isin(domains, train.to(domains.device))
        te = torch.isin(domains, test.to(domains.device))
        if bool((tr & te).any()):
            raise ValueRangeError("split: expected disjoint meta-train and meta-test domains")
        return tr, te

    @staticmethod
    def select_grouped(tensors: Sequence[Tensor], domains: Sequence[int], *,
                       per_domain: int) -> list[Tensor]:
        """The samples of ``domains`` from a batch grouped by domain in domain order with
        ``per_domain`` samples each (as :class:`~dgblocks.data.DomainBalancedSampler` draws
        it), by slicing: unlike boolean masks, nothing is read from the device.

        Shape:
            tensors: each (N, *) with N = num_domains * per_domain; outputs: each
            (len(domains) * per_domain, *).

        Example:
            >>> d = torch.tensor([0, 0, 1, 1, 2, 2])
            >>> MetaDomainSplitter.select_grouped([d], [0, 2], per_domain=2)[0].tolist()
            [0, 0, 2, 2]
        """
        check_int(per_domain, name="per_domain", minimum=1)
        ds = [check_int(d, name="domains", minimum=0) for d in
              (domains.tolist() if isinstance(domains, torch.Tensor) else domains)]
        if not ds:
            raise ValueRangeError("domains: expected at least one domain, got none")
        if isinstance(tensors, torch.Tensor) or not all(isinstance(t, torch.Tensor)
                                                        for t in tensors):
            raise ShapeError("tensors: expected a sequence of (N, *) tensors, got"
                             f" {type(tensors).__name__}")
        for t in tensors:
            if t.shape[0] < (max(ds) + 1) * per_domain or min(ds) < 0:
                raise ShapeError(f"tensors: expected a batch of >= {(max(ds) + 1) * per_domain}"
                                 f" samples grouped by domain, got {t.shape[0]}")
        return [torch.cat([t.narrow(0, d * per_domain, per_domain) for d in ds])
                for t in tensors]

    def __repr__(self) -> str:
        return f"MetaDomainSplitter(num_domains={self.num_domains}, num_test={self.num_test})"
