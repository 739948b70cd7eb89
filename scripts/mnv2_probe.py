"""Probe for issue 19 item 2 (MobileNetV2 from scratch): the AGG baseline recipe with a patched
MobileNetV2, plus the spread of the pooled feature (train- and eval-mode BN) and the loss
trajectory. The table in docs/decisions.md ("MobileNetV2 from scratch") was made with it.

    VARIANT=stem1,relu python scripts/mnv2_probe.py --backbone mobilenetv2 --threads 1 --seed 0

VARIANT (comma-separated): stem1 (stem stride 1), s24_1 / s32_1 / os8 (stride 1 in the 24- /
32- / 64-channel stage), depth1 (drop every residual block: one block per stage), nohead (no
1x1 head conv: the 320-stage's linear output), dense (dense 3x3 convs instead of depthwise),
rstem (ResNet stem: 7x7 s2 + max-pool, 24-stage stride 1), relu (ReLU for ReLU6), nozero
(residual BN scale 1), fanin (Kaiming fan_in for every conv), scaleX (every conv init x X),
wdnobn (no weight decay on 1-d parameters), trainbn / prebn (evaluate with batch statistics /
the pre-BN feature). Diagnostic only: not a recipe.
"""

import os
import sys
import time

import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "recipes"))
import baseline as B  # noqa: E402

from dgblocks.backbones import mobilenetv2 as M  # noqa: E402
from dgblocks.data import image_size  # noqa: E402
from dgblocks.data.transforms import train_transform  # noqa: E402
from dgblocks.engine import setup, warmup_cosine  # noqa: E402

V = set(filter(None, os.environ.get("VARIANT", "").split(",")))
orig_build = B.build_backbone


def build(name, **kw):
    net = orig_build(name, **kw)
    if name != "mobilenetv2":
        return net
    f = net.features
    if "stem1" in V:
        f[0][0].stride = (1, 1)

    def set_stride(block, s):
        for m in block.conv:
            c = m[0] if isinstance(m, nn.Sequential) else m
            if isinstance(c, nn.Conv2d) and c.groups > 1:
                c.stride = (s, s)
        block.stride = s

    if "s24_1" in V:
        set_stride(f[2], 1)
    if "s32_1" in V:
        set_stride(f[4], 1)
    if "os8" in V:
        set_stride(f[7], 1)
    if "depth1" in V:
        keep = [m for m in f if not (isinstance(m, M.InvertedResidual) and m.use_res_connect)]
        net.features = nn.Sequential(*keep)
    if "nores" in V:
        for m in net.modules():
            if isinstance(m, M.InvertedResidual) and m.use_res_connect:
                nn.init.ones_(m.conv[-1].weight)
    if "nohead" in V:
        net.features = nn.Sequential(*list(net.features)[:-1])
        net.out_channels = net.features[-1].out_channels
    if "headrelu" in V:  # head without BN: conv -> relu (features un-normalised)
        net.features[-1][1] = nn.Identity()
    if "dense" in V:
        for m in net.modules():
            for n, ch in m.named_children():
                if isinstance(ch, nn.Conv2d) and ch.groups > 1:
                    c = nn.Conv2d(ch.in_channels, ch.out_channels, 3, ch.stride, 1, bias=False)
                    nn.init.kaiming_normal_(c.weight, mode="fan_out")
                    setattr(m, n, c)
    if "fanin" in V:
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in")
    for k in V:
        if k.startswith("scale"):
            for m in net.modules():
                if isinstance(m, nn.Conv2d):
                    m.weight.data.mul_(float(k[5:]))
    if "rstem" in V:  # ResNet stem (7x7 s2 + BN + ReLU + maxpool s2), 24-ch stage stride 1
        c = f[0][0]
        f[0] = nn.Sequential(
            nn.Conv2d(c.in_channels, c.out_channels, 7, 2, 3, bias=False),
            nn.BatchNorm2d(c.out_channels),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        nn.init.kaiming_normal_(f[0][0].weight, mode="fan_out")
        set_stride(f[2], 1)
    if "relu" in V:
        for mod in net.modules():
            for n, ch in mod.named_children():
                if isinstance(ch, nn.ReLU6):
                    setattr(mod, n, nn.ReLU(inplace=True))
    if "nozero" in V:
        for m in net.modules():
            if isinstance(m, M.InvertedResidual) and m.use_res_connect:
                nn.init.ones_(m.conv[-1].weight)
    if "dwfanout" in V:
        for m in net.modules():
            if isinstance(m, nn.Conv2d) and m.groups > 1:
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
    return net


B.build_backbone = build

LOG = []
orig_step = B.train_step


def step(model, batch, **kw):
    out = orig_step(model, batch, **kw)
    LOG.append({k: float(v) for k, v in out.items()})
    return out


B.train_step = step


@torch.no_grad()
def feat_stats(model, x, tag):
    was = model.training
    bb = model.backbone
    model.eval()
    f_eval = bb(B.normalize_input(x))
    model.train()
    f_tr = bb(B.normalize_input(x))
    model.train(was)
    for nm, f in (("eval", f_eval), ("train", f_tr)):
        print(
            f"[{tag}] pooled feat {nm}: mean {f.mean():.4f} "
            f"batch-std(mean over dims) {f.std(0).mean():.5f}"
            f" rel {f.std(0).mean() / f.abs().mean().clamp_min(1e-9):.4f}"
        )


def main(argv):
    t0 = time.time()
    cfg, run = setup(B.Config, argv, name="baseline", description="")
    bench = run.benchmark()
    batches = run.batches(
        bench.train, batch_size=cfg.batch_size, sampler="identity", num_instances=cfg.num_instances
    )
    model = B.build_model(cfg, bench).to(run.device)
    if "wdnobn" in V:
        decay = [p for n, p in model.named_parameters() if p.dim() > 1]
        nod = [p for n, p in model.named_parameters() if p.dim() <= 1]
        opt = torch.optim.Adam(
            [{"params": decay}, {"params": nod, "weight_decay": 0}],
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
        )
    else:
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: warmup_cosine(s, total=cfg.steps, warmup=cfg.warmup)
    )
    run.register(model=model, opt=opt, sched=sched)
    augment = train_transform(image_size(bench.train), jitter=True, erase=0.5)
    losses = B.make_losses(cfg)
    model.train()
    xs = None
    for _s, batch in run.steps(batches, total=cfg.steps):
        if xs is None:
            xs = batch[0][:64].clone()
        B.train_step(model, batch, augment=augment, losses=losses, opt=opt, sched=sched, cfg=cfg)
    for i in range(0, len(LOG), 25):
        l = LOG[i]
        print(f"step {i}: l_id {l['l_id']:.3f} l_tri {l['l_tri']:.3f} lr {l['lr']:.2e}")
    if LOG:
        print(f"last: l_id {LOG[-1]['l_id']:.3f} l_tri {LOG[-1]['l_tri']:.3f}")
    if xs is not None:
        feat_stats(model, xs, "end")
    time.time() - t0
    model.eval()
    enc = model
    if "trainbn" in V:

        def enc(x):
            model.train()
            out = model.neck(model.backbone(B.normalize_input(x)), return_all=True)
            model.eval()
            return model.neck.bn(out.feat_pre_bn) if hasattr(model.neck, "bn") else out.feat_pre_bn

    if "prebn" in V:

        def enc(x):
            return model.backbone(B.normalize_input(x))

    res = run.finish(encode=enc, classify=model.classify, title="exp " + ",".join(sorted(V)))
    s = res["summary"]["average"]
    print(
        f"RESULT variant={','.join(sorted(V)) or 'none'} argv={' '.join(argv)} "
        f"R1 {s['R1']:.1f} mAP {s['mAP']:.1f} wall {time.time() - t0:.0f}s"
    )
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
