"""Export the inference encoder to ONNX and TorchScript, checked against PyTorch's outputs.

The ONNX file is checked with ``onnx.checker`` and run with onnxruntime when it is installed,
else with onnx's reference evaluator (pure Python: slow, but needs nothing else).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from dgblocks._checks import check_shape

__all__ = ["ExportMismatch", "export_onnx", "export_torchscript", "run_onnx"]


class ExportMismatch(RuntimeError):
    """The exported model's outputs differ from PyTorch's beyond the tolerance."""


def run_onnx(path: str | Path, x: Tensor) -> np.ndarray:
    """Run an ONNX model on ``x`` (onnxruntime if installed, else ``onnx.reference``)."""
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        return sess.run(None, {name: x.cpu().numpy()})[0]
    except ImportError:
        import onnx
        from onnx.reference import ReferenceEvaluator

        model = onnx.load(str(path))
        sess = ReferenceEvaluator(model)
        return sess.run(None, {model.graph.input[0].name: x.cpu().numpy()})[0]


def _compare(ref: Tensor, got: np.ndarray, what: str, rtol: float, atol: float) -> float:
    got_t = torch.as_tensor(np.asarray(got)).to(ref.dtype)
    if got_t.shape != ref.shape:
        raise ExportMismatch(f"{what}: expected output shape {tuple(ref.shape)}, "
                             f"got {tuple(got_t.shape)}")
    err = float((got_t - ref.cpu()).abs().max()) if ref.numel() else 0.0
    if not torch.allclose(got_t, ref.cpu(), rtol=rtol, atol=atol):
        raise ExportMismatch(f"{what}: max abs difference {err:.3g} exceeds atol={atol}, "
                             f"rtol={rtol}")
    return err


def export_onnx(model: nn.Module, path: str | Path, example: Tensor, *, check: bool = True,
                dynamic_batch: bool = True, opset: int = 18, dynamo: bool = False,
                rtol: float = 1e-3, atol: float = 1e-4) -> Path:
    """Export ``model`` (put in eval mode) to ONNX and check it reproduces PyTorch's output.

    Args:
        model: the inference encoder, ``(B, C, H, W) -> (B, D)``.
        path: the ``.onnx`` file to write.
        example: an input batch; the batch axis is dynamic when ``dynamic_batch``.
        check: run the exported graph on ``example`` and compare (``ExportMismatch`` if not
            within ``rtol``/``atol``).
        dynamo: use the ``torch.export``-based exporter (``dynamo=True``, 10-30 s for a
            MobileNetV2 on CPU) instead of the TorchScript-based one (about 1 s; default).

    Shape:
        example: (B, C, H, W).

    Example:
        >>> import tempfile, os
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> p = export_onnx(net, os.path.join(tempfile.mkdtemp(), "m.onnx"),
        ...                 torch.randn(2, 3, 8, 4))
        >>> p.exists()
        True
    """
    check_shape(example, "B C H W", name="example")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    with torch.no_grad():
        ref = model(example)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            shapes = ({0: torch.export.Dim.DYNAMIC},) if dynamic_batch else None
            program = torch.onnx.export(model, (example,), dynamo=True, opset_version=opset,
                                        input_names=["images"], output_names=["features"],
                                        dynamic_shapes=shapes, verbose=False)
            program.save(str(path))
        else:
            axes = {"images": {0: "batch"}, "features": {0: "batch"}} if dynamic_batch else None
            torch.onnx.export(model, (example,), str(path), dynamo=False,
                              opset_version=min(opset, 17), input_names=["images"],
                              output_names=["features"], dynamic_axes=axes)
    if check:
        import onnx

        onnx.checker.check_model(str(path))
        _compare(ref, run_onnx(path, example), "onnx", rtol, atol)
    return path


def export_torchscript(model: nn.Module, path: str | Path, example: Tensor, *,
                       check: bool = True, rtol: float = 1e-4, atol: float = 1e-5) -> Path:
    """Trace ``model`` (eval mode) to TorchScript, save it, reload it and compare outputs.

    Example:
        >>> import tempfile, os
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        >>> export_torchscript(net, os.path.join(tempfile.mkdtemp(), "m.pt"),
        ...                    torch.randn(2, 3, 8, 4)).exists()
        True
    """
    check_shape(example, "B C H W", name="example")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = model(example)
        traced = torch.jit.trace(model, example, check_trace=False)
        traced.save(str(path))
        if check:
            loaded = torch.jit.load(str(path))
            with torch.jit.optimized_execution(False):  # skip the profiling executor's passes
                _compare(ref, loaded(example).numpy(), "torchscript", rtol, atol)
    return path
