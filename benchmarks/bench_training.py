"""Images per second of MedViewer's training steps against a plain timm training loop, same batch.

Run: ``python benchmarks/bench_training.py [--batch 16] [--seconds 20] [--device cpu|cuda] [--json OUT]``.

Measured, each on the same random batch (224 px, 3 channels):

- ``timm_plain``: ``timm.create_model(vit_tiny_patch16_224)``, BCE, AdamW: the
  peer every step is compared with;
- ``finetune_vit``: one ``models.train`` step on the same ViT (masked BCE,
  gradient clipping, AdamW, the recipe's schedule);
- ``finetune_hybrid_frozen``: the hybrid ViT with its ImageNet
  EfficientNet-Lite0 stem frozen (``--freeze-stem``);
- ``pretrain_peac`` / ``pretrain_isimed``: one ``models.pretrain`` step (two
  views, EMA teacher; ISImed's 6 crops) on the same ViT.

On CUDA the steps use the runs' autocast (bf16 for pretraining, fp16 +
GradScaler for fine-tuning), the plain loop bf16 autocast.  Each figure is the
best of its timed steps (other processes only slow a step down).  The
ratio ``step / timm_plain`` says what MedViewer's extra work costs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def best_rate(step, batch: int, seconds: float, sync) -> float:
    """Return the best images/s of ``step`` over timed calls (after one warm-up call)."""
    step()
    sync()
    rates, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 2:
        t0 = time.perf_counter()
        step()
        sync()
        rates.append(batch / (time.perf_counter() - t0))
    return float(max(rates))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seconds", type=float, default=15.0, help="timed seconds per step kind")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int)
    p.add_argument("--json")
    args = p.parse_args(argv)

    import timm
    import torch
    import torch.nn.functional as F

    from models.data import TaskSpec
    from models.pretrain import PretrainConfig, PretrainModel, combined_loss
    from models.train import loss_fn
    from models.vit import ArchConfig, build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.manual_seed(0)
    b = args.batch
    x = torch.randn(b, 3, 224, 224, device=device)
    y = (torch.rand(b, 3, device=device) > 0.5).float()
    mask = torch.ones_like(y)
    spec = TaskSpec("multilabel", ["A", "B", "C"])
    arch = dict(model="vit_tiny_patch16_224", num_outputs=3, img_size=224)
    figures: dict[str, float] = {}

    plain = timm.create_model("vit_tiny_patch16_224", num_classes=3).to(device).train()
    opt = torch.optim.AdamW(plain.parameters(), lr=1e-4)

    def timm_step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.binary_cross_entropy_with_logits(plain(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    figures["timm_plain"] = best_rate(timm_step, b, args.seconds, sync)

    def finetune_step_for(model):
        params = [q for q in model.parameters() if q.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4)
        scaler = torch.amp.GradScaler("cuda", enabled=cuda)

        def step():
            with torch.autocast(device.type, dtype=torch.float16, enabled=cuda):
                raw = model.raw_head(model.pre_logits(model.forward_features(x)))
            loss = loss_fn(raw, y, mask, spec, model)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            scaler.step(optimizer)
            scaler.update()
        return step

    vit = build_model(ArchConfig(**arch)).to(device).train()
    figures["finetune_vit"] = best_rate(finetune_step_for(vit), b, args.seconds, sync)
    try:
        hybrid = build_model(ArchConfig(model="custom", embed_dim=192, depth=4, num_heads=3, num_outputs=3,
                                        img_size=224, stem="efficientnet_lite0"), stem_pretrained=True)
        for q in hybrid.vit.patch_embed.cnn_parameters():
            q.requires_grad = False
        hybrid = hybrid.to(device).train()
        hybrid.vit.patch_embed.eval()
        figures["finetune_hybrid_frozen"] = best_rate(finetune_step_for(hybrid), b, args.seconds, sync)
    except Exception as exc:  # the weights package may be absent: the other figures still stand
        print(f"hybrid skipped: {exc}")
    for method in ("peac", "isimed"):
        net = PretrainModel(build_model(ArchConfig(**arch)), proj_dim=256).to(device)
        cfg = PretrainConfig(method=method, arch=ArchConfig(**arch))
        params = [q for q in net.parameters() if q.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4)
        rng = np.random.default_rng(0)
        spacing = torch.full((b,), 0.5, device=device)

        def pre_step(net=net, cfg=cfg, params=params, optimizer=optimizer, rng=rng):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                grid_a = net.student.grid_tokens(x)
                with torch.no_grad():
                    grid_b = net.teacher.grid_tokens(x.flip(0))
                loss, _ = combined_loss(net, cfg, grid_a, grid_b, spacing, 8, 16.0, rng)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 3.0)
            optimizer.step()
            net.update_teacher(0.996)

        figures[f"pretrain_{method}"] = best_rate(pre_step, b, args.seconds, sync)
    ratios = {k: round(v / figures["timm_plain"], 3) for k, v in figures.items() if k != "timm_plain"}
    info = {"device": str(device), "batch": b, "images_per_second": {k: round(v, 2) for k, v in figures.items()},
            "ratio_to_timm_plain": ratios, "torch": torch.__version__, "timm": timm.__version__}
    try:
        import os

        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    for k, v in figures.items():
        print(f"{k:26} {v:8.2f} images/s" + (f"   {ratios[k]:.2f}x timm_plain" if k in ratios else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(info, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
