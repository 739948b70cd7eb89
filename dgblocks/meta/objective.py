r"""Second-order meta-learning step (MAML-style; CDVM section 3.5, MLDG).

Each step splits the source domains into meta-train and meta-test. One inner gradient step on
the meta-train loss gives adapted parameters, and the update minimises the meta-train loss at
the current parameters plus the meta-test loss at the adapted ones:

$$ \theta' = \theta - \eta\, \nabla_\theta L_{mtr}(\theta), \qquad
   L(\theta) = L_{mtr}(\theta) + \gamma\, L_{mte}(\theta') . $$

Its gradient carries the Hessian of the meta-train loss,
$\nabla L = \nabla L_{mtr}(\theta) + \gamma (I - \eta \nabla^2 L_{mtr}(\theta))\,
\nabla L_{mte}(\theta')$, obtained by differentiating through the inner step
(``torch.autograd.grad(create_graph=True)``); ``first_order=True`` drops the Hessian term.
Batch norm is differentiated twice there: the two forward passes run under
:class:`dgblocks.meta.norm.FusedNormDoubleBackward` (``fused_norm=True``), whose closed-form
double backward of batch / instance norm costs a fraction of PyTorch's generic one.

The loss is a function ``loss_fn(params, batch)`` of a ``{name: tensor}`` dict, so any module
plugs in through :func:`torch.func.functional_call` (see :func:`module_loss`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from dgblocks._checks import ShapeError, ValueRangeError, check_nonnegative
from dgblocks.layers.grl import unrolled_reversals
from dgblocks.meta.norm import FusedNormDoubleBackward

__all__ = ["meta_objective", "MetaObjective", "MetaOutput", "module_params", "module_loss"]

LossFn = Callable[[dict[str, Tensor], Any], Tensor]


class MetaOutput(NamedTuple):
    """The meta objective ``loss`` and its parts, and the adapted parameters $\\theta'$."""

    loss: Tensor
    meta_train: Tensor
    meta_test: Tensor
    adapted: dict[str, Tensor]


def _check_loss(value: Any, name: str) -> Tensor:
    if not isinstance(value, Tensor) or value.dim() != 0:
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ShapeError(f"loss_fn: expected a scalar tensor on the {name} batch, got {shape}")
    return value


def meta_objective(loss_fn: LossFn, params: Mapping[str, Tensor], train_batch: Any,
                   test_batch: Any, *, inner_lr: float, first_order: bool = False,
                   test_weight: float = 1.0, fused_norm: bool = True) -> MetaOutput:
    r"""Meta-train loss at $\theta$ plus meta-test loss at the inner-step parameters.

    $$ \theta' = \theta - \eta\, \nabla_\theta L_{mtr}(\theta), \qquad
       L = L_{mtr}(\theta) + \gamma\, L_{mte}(\theta') $$

    with $L_{mtr}$ = ``loss_fn(params, train_batch)`` and $L_{mte}$ =
    ``loss_fn(adapted, test_batch)``. ``loss.backward()`` then gives the second-order gradient
    $\nabla L_{mtr}(\theta) + \gamma (I - \eta H_{mtr})\nabla L_{mte}(\theta')$ on the tensors
    of ``params``. Parameters the meta-train loss does not use keep their value in $\theta'$.

    Args:
        loss_fn: ``loss_fn(params, batch) -> scalar``; evaluates the model with the given
            parameters (``torch.func.functional_call``; see :func:`module_loss`).
        params: the parameters $\theta$ (those with ``requires_grad`` are adapted).
        train_batch: the meta-train batch (anything ``loss_fn`` accepts).
        test_batch: the meta-test batch.
        inner_lr: inner step size $\eta \ge 0$.
        first_order: detach the inner gradient (first-order MAML: no Hessian term).
        test_weight: weight $\gamma \ge 0$ of the meta-test loss.
        fused_norm: run both forward passes under
            :class:`~dgblocks.meta.norm.FusedNormDoubleBackward` (same values; batch norm's
            second derivative in a few fused passes). Only used with ``first_order=False``.

    Shape:
        params: any shapes; output: ``MetaOutput`` with loss, meta_train, meta_test () and
        adapted (the shapes of params).

    Invariants:
        - with inner_lr = 0 the loss is L_mtr(theta) + gamma * L_mte(theta)
        - the gradient equals grad L_mtr + gamma (I - eta H_mtr) grad L_mte(theta')
        - first and second order agree when L_mtr is linear in theta (zero Hessian)
        - with gradient-reversal layers inside L_mtr, the inner step uses the reversed
          gradient and its derivative is the exact derivative of that reversed gradient

    Example:
        >>> w = torch.tensor([1.0], requires_grad=True)
        >>> loss = lambda p, c: ((p["w"] - c) ** 2).sum()  # L_mtr: c=0, L_mte: c=2
        >>> out = meta_objective(loss, {"w": w}, 0.0, 2.0, inner_lr=0.25)
        >>> out.adapted["w"].detach(), out.loss.detach()
        (tensor([0.5000]), tensor(3.2500))
        >>> out.loss.backward(); w.grad  # 2w + (1 - 2*0.25) * 2(w' - 2)
        tensor([0.5000])
    """
    if not callable(loss_fn):
        raise ValueRangeError(f"loss_fn: expected a callable loss_fn(params, batch),"
                              f" got {type(loss_fn).__name__}")
    check_nonnegative(inner_lr, name="inner_lr")
    check_nonnegative(test_weight, name="test_weight")
    if not isinstance(params, Mapping) or not params:
        raise ShapeError(f"params: expected a non-empty {{name: tensor}} mapping, got "
                         f"{type(params).__name__ if not isinstance(params, Mapping) else '{}'}")
    names = [n for n, p in params.items() if isinstance(p, Tensor) and p.requires_grad]
    if not names:
        raise ValueRangeError("params: expected at least one tensor with requires_grad=True,"
                              " got none")
    mode = (FusedNormDoubleBackward if fused_norm and not first_order
            else contextlib.nullcontext)
    with mode(), unrolled_reversals() as reversals:
        loss_tr = _check_loss(loss_fn(dict(params), train_batch), "meta-train")
    if not loss_tr.requires_grad:
        raise ValueRangeError("loss_fn: expected a meta-train loss computed from params (with"
                              " a graph), got a tensor that does not require grad")
    outputs, weights = _reverse(loss_tr, reversals, create_graph=not first_order)
    grads = torch.autograd.grad([loss_tr, *outputs], [params[n] for n in names],
                                grad_outputs=[torch.ones_like(loss_tr), *weights],
                                allow_unused=True, retain_graph=True,
                                create_graph=not first_order)
    adapted = dict(params)
    for n, g in zip(names, grads):
        if g is not None:
            adapted[n] = params[n] - inner_lr * (g.detach() if first_order else g)
    with mode():
        loss_te = _check_loss(loss_fn(adapted, test_batch), "meta-test")
    for o, w in zip(outputs, weights):  # value 0; its gradient reverses as the layer does
        t = (o * w.detach()).sum()
        loss_tr = loss_tr + (t - t.detach())
    return MetaOutput(loss_tr + test_weight * loss_te, loss_tr, loss_te, adapted)


def _reverse(loss: Tensor, reversals: list, *, create_graph: bool
             ) -> tuple[list[Tensor], list[Tensor]]:
    r"""Gradient reversal assembled by hand, so that its derivative is exact.

    The meta-train loss was evaluated with every :func:`~dgblocks.functional.grad_reverse`
    unrolled to the identity (``reversals``: its outputs $h$ and coefficients $\lambda$). The
    reversed gradient is $g = \nabla_\theta L + \sum_h J_h^\top w_h$ with
    $w_h = -(1+\lambda)\,\nabla_h L$: the gradient reaching $\theta$ through $h$ is multiplied
    by $-\lambda$ and every other path is untouched, as with the layer itself, but every
    factor is a true derivative, so differentiating $g$ again is exact. Returns the outputs
    $h$ that the loss reaches and their weights $w_h$.
    """
    if not reversals:
        return [], []
    outs = [o for o, _ in reversals]
    vs = torch.autograd.grad(loss, outs, allow_unused=True, retain_graph=True,
                             create_graph=create_graph)
    used = [(o, -(1 + c) * v) for (o, c), v in zip(reversals, vs) if v is not None]
    return [o for o, _ in used], [w for _, w in used]


def module_params(module: nn.Module) -> dict[str, Tensor]:
    """The trainable parameters of ``module`` as a ``{name: tensor}`` dict ($\\theta$).

    Example:
        >>> sorted(module_params(torch.nn.Linear(2, 1)))
        ['bias', 'weight']
    """
    if not isinstance(module, nn.Module):
        raise ValueRangeError(f"module: expected an nn.Module, got {type(module).__name__}")
    return {n: p for n, p in module.named_parameters() if p.requires_grad}


def module_loss(module: nn.Module, loss: Callable[..., Tensor]) -> LossFn:
    """``loss_fn(params, batch)`` for :func:`meta_objective` from a module and a loss.

    ``loss(call, batch)`` receives ``call(*args, **kwargs)``, which runs ``module`` with the
    given parameters (its own buffers, e.g. BN running statistics, are used and updated).

    Example:
        >>> lin = torch.nn.Linear(2, 1)
        >>> fn = module_loss(lin, lambda call, x: call(x).pow(2).mean())
        >>> bool(fn(module_params(lin), torch.ones(3, 2)) >= 0)
        True
    """
    if not isinstance(module, nn.Module):
        raise ValueRangeError(f"module: expected an nn.Module, got {type(module).__name__}")
    if not callable(loss):
        raise ValueRangeError(f"loss: expected a callable loss(call, batch), got {loss!r}")

    def loss_fn(params: dict[str, Tensor], batch: Any) -> Tensor:
        def call(*args: Any, **kwargs: Any) -> Any:
            return torch.func.functional_call(module, params, args, kwargs, strict=False)
        return loss(call, batch)
    return loss_fn


class MetaObjective(nn.Module):
    """Second-order meta-learning objective; see :func:`dgblocks.functional.meta_objective`.

    ``forward(loss_fn, params, train_batch, test_batch)`` with the step size and order stored.

    Args:
        inner_lr: inner step size $\\eta \\ge 0$.
        first_order: drop the Hessian term (first-order MAML).
        test_weight: weight $\\gamma$ of the meta-test loss.

    Shape:
        params: any shapes; output: :class:`MetaOutput` (scalar losses, adapted parameters).

    Example:
        >>> lin = torch.nn.Linear(3, 1)
        >>> fn = module_loss(lin, lambda call, x: call(x).pow(2).mean())
        >>> meta = MetaObjective(inner_lr=0.1)
        >>> out = meta(fn, module_params(lin), torch.randn(4, 3), torch.randn(4, 3))
        >>> out.loss.backward(); lin.weight.grad.shape
        torch.Size([1, 3])
    """

    functional_name: ClassVar[str | None] = "meta_objective"

    def __init__(self, *, inner_lr: float, first_order: bool = False,
                 test_weight: float = 1.0, fused_norm: bool = True) -> None:
        super().__init__()
        self.fused_norm = bool(fused_norm)
        self.inner_lr = float(check_nonnegative(inner_lr, name="inner_lr"))
        self.first_order = bool(first_order)
        self.test_weight = float(check_nonnegative(test_weight, name="test_weight"))

    def forward(self, loss_fn: LossFn, params: Mapping[str, Tensor], train_batch: Any,
                test_batch: Any, *, inner_lr: float | None = None) -> MetaOutput:
        """The meta objective with the stored settings (:func:`meta_objective`).

        Args:
            loss_fn: ``loss_fn(params, batch) -> scalar`` (see :func:`module_loss`).
            params: the parameters $\\theta$, ``{name: tensor}`` (those with ``requires_grad``
                are adapted).
            train_batch: the meta-train batch.
            test_batch: the meta-test batch.
            inner_lr: this step's inner step size (e.g. following the learning-rate
                schedule); None uses the stored one.

        Returns:
            :class:`MetaOutput` ``(loss, meta_train, meta_test, adapted)``; ``loss.backward()``
            gives the second-order gradient. Training and eval mode do not differ.
        """
        lr = self.inner_lr if inner_lr is None else inner_lr
        return meta_objective(loss_fn, params, train_batch, test_batch, inner_lr=lr,
                              first_order=self.first_order, test_weight=self.test_weight,
                              fused_norm=self.fused_norm)

    def extra_repr(self) -> str:
        return (f"inner_lr={self.inner_lr}, first_order={self.first_order}, "
                f"test_weight={self.test_weight}, fused_norm={self.fused_norm}")
