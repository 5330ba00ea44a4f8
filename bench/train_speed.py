"""Measure CPU training-step speed: float32 vs bfloat16 autocast, channels_last vs contiguous.

    python bench/train_speed.py [--archs cnn,efficientnet_lite0] [--steps 5]

Decides the trainer's ``--precision auto`` on CPU (fp32 unless bf16 is measurably faster here)
and its use of channels_last. Stop other jobs first: timings on a shared 2-core CPU swing by 10x.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import time
import warnings

import torch
from torch import nn

from fvcore.models.registry import create_model


def step_time(arch: str, size: int, *, bf16: bool, channels_last: bool, steps: int,
              batch: int = 16) -> float:
    """Median seconds of one forward+backward+AdamW step."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = create_model(arch, 34, image_size=size)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    y = torch.randint(0, 34, (batch,))
    times = []
    for i in range(steps + 2):  # two warm-up steps: oneDNN builds its kernels on the first calls
        start = time.perf_counter()
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            loss = nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--archs", default="cnn,efficientnet_lite0,resnet50")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for arch in args.archs.split(","):
        size = 128 if arch.startswith("cnn") else 160
        base = step_time(arch, size, bf16=False, channels_last=False, steps=args.steps)
        cl = step_time(arch, size, bf16=False, channels_last=True, steps=args.steps)
        bf = step_time(arch, size, bf16=True, channels_last=True, steps=args.steps)
        rows.append({"arch": arch, "size": size, "fp32_ms": base * 1e3,
                     "fp32_channels_last_ms": cl * 1e3, "bf16_channels_last_ms": bf * 1e3})
        print(f"{arch:<20} {size}px batch 16: fp32 {base*1e3:.0f} ms, fp32+channels_last "
              f"{cl*1e3:.0f} ms, bf16+channels_last {bf*1e3:.0f} ms")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
