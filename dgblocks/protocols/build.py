"""``build_benchmark``: one entry point for the embedded benchmarks and the real protocols."""

from __future__ import annotations

from dgblocks._checks import ValueRangeError, check_choice
from dgblocks.data._validate import check_flag, check_path, check_seed, check_text
from dgblocks.data.base import Benchmark, check_image_size
from dgblocks.protocols.real import build_protocol

__all__ = ["build_benchmark"]


def build_benchmark(data: str = "synthetic", *, root: str | None = None,
                    protocol: str | None = None, smoke: bool = False, seed: int = 0,
                    image_size: tuple[int, int] = (64, 32)) -> Benchmark:
    """Build a :class:`~dgblocks.data.Benchmark`.

    Args:
        data: ``"synthetic"`` (synthetic_reid), ``"digits"`` (rotated_digits) or ``"real"``
            (datasets under ``root``, arranged by ``protocol``).
        root: folder holding the real datasets (``data="real"`` only).
        protocol: for real data, ``"protocol1"``, ``"protocol1-ms"``,
            ``"protocol1-episodic"``, ``"protocol2:<target>"``, ``"protocol3:<target>"`` or
            ``"direct:<source>-><target>"``, optionally followed by ``",grid_gallery=1025"``
            (see :mod:`dgblocks.protocols.real`).
        smoke: tiny version of an embedded benchmark (seconds; for tests and CI).
        seed: generation / split seed of the embedded benchmarks.
        image_size: ``(H, W)`` of the images (synthetic and real; digits are 28x28).

    A ``protocol`` given with embedded data is refused (it arranges real datasets only; the
    embedded layouts are :func:`~dgblocks.protocols.leave_one_out` and
    :func:`~dgblocks.protocols.single_source`).

    Example:
        >>> build_benchmark("synthetic", smoke=True).task
        'reid'
    """
    check_choice(data, ("synthetic", "digits", "real"), name="data")
    check_flag(smoke, name="smoke")
    check_seed(seed)
    image_size = check_image_size(image_size, name="image_size")
    if protocol is not None:
        check_text(protocol, name="protocol")
        if data != "real":
            raise ValueRangeError(f"protocol: arranges the real datasets (data='real'), got "
                                  f"protocol={protocol!r} with data={data!r}")
    if data == "synthetic":
        from dgblocks.data.synthetic_reid import synthetic_reid

        return synthetic_reid(seed=seed, smoke=smoke, image_size=tuple(image_size))
    if data == "digits":
        from dgblocks.data.rotated_digits import rotated_digits

        return rotated_digits(seed=seed, smoke=smoke)
    if root is None:
        raise ValueRangeError("root: expected the folder of the real datasets for data='real',"
                              " got None")
    protocol = protocol or "protocol1"
    if protocol.startswith("direct:") and "+" in protocol.partition("->")[2]:
        from dgblocks.protocols.real import real_direct  # one source, several targets

        return real_direct(protocol, check_path(root), image_size=tuple(image_size))
    return build_protocol(protocol, root=check_path(root), image_size=image_size)
