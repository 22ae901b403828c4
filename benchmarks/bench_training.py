"""Training throughput: hepml's Trainer against a plain DataLoader(TensorDataset) loop.

Both train the talk's FCNN ([37, 15, 10, 4], ReLU, dropout 0.1) from the same initial weights with
Adam (lr 5e-4), batch size 700 and the same weighted cross entropy on the same events, in this
process, in alternating rounds (best round of each counts), after a short warm-up of each (the first
optimizer step of a process imports torch._dynamo, about a second, which would otherwise be charged
to whichever runs first).

Run:  python benchmarks/bench_training.py [--epochs 3] [--events 178000] [--repeats 3] [--device auto]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from hepml_core.models.registry import build_model  # noqa: E402
from hepml_core.training.data import TensorData  # noqa: E402
from hepml_core.training.trainer import Trainer, resolve_device  # noqa: E402

__all__ = ["main"]

N_FEATURES, N_CLASSES, BATCH, LR = 37, 4, 700, 5e-4


def _events(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian features with a class-dependent shift (so there is something to learn), MC-like weights."""
    rng = np.random.default_rng(seed)
    y = rng.choice(N_CLASSES, size=n, p=[0.14, 0.025, 0.53, 0.305])  # the talk's composition
    x = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    x[:, :N_CLASSES] += 1.5 * np.eye(N_CLASSES, dtype=np.float32)[y]
    w = rng.uniform(0.5, 1.5, size=n)
    return x, y, w


def _dataloader_loop(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, w: np.ndarray,
                     epochs: int, device: torch.device, adam_kwargs: dict) -> float:
    """The loop most tutorials write; returns seconds."""
    t0 = time.perf_counter()
    model.to(device)
    dataset = TensorDataset(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(w.astype(np.float32)))
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, **adam_kwargs)
    for _ in range(epochs):
        model.train()
        total, count = 0.0, 0
        for xb, yb, wb in loader:
            xb, yb, wb = xb.to(device), yb.to(device), wb.to(device)
            optimizer.zero_grad()
            loss = (F.cross_entropy(model(xb), yb, reduction="none") * wb).sum() / wb.sum()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(xb)
            count += len(xb)
    return time.perf_counter() - t0


def _trainer(model: torch.nn.Module, data: TensorData, epochs: int, device: torch.device) -> float:
    t0 = time.perf_counter()
    Trainer(epochs=epochs, batch_size=BATCH, lr=LR, early_stopping=None, device=device).fit(model, data)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> float:
    """Run the comparison, print the ratio line, return the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--events", type=int, default=178_000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds; the best of each counts")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)

    x, y, w = _events(args.events, args.seed)
    data = TensorData(x, y, w)
    torch.manual_seed(args.seed)
    template = build_model("mlp_classifier", N_FEATURES, N_CLASSES, layers=[37, 15, 10, 4], dropout=0.1)

    # Warm-up on a slice: one-time imports and kernel selection, paid by neither measurement.
    few = slice(0, 20 * BATCH)
    _trainer(copy.deepcopy(template), TensorData(x[few], y[few], w[few]), 1, device)
    _dataloader_loop(copy.deepcopy(template), x[few], y[few], w[few], 1, device, {})

    # Alternate the contenders and keep each one's best round: on a shared machine a burst of load
    # from another process would otherwise decide the ratio (timeit's "min of repeats" rule).
    contenders = {
        "trainer": lambda: _trainer(copy.deepcopy(template), data, args.epochs, device),
        "peer": lambda: _dataloader_loop(copy.deepcopy(template), x, y, w, args.epochs, device, {}),
        # the same peer with the fused Adam the Trainer uses: shows how much of the gap is the batching
        "peer_fused": lambda: _dataloader_loop(copy.deepcopy(template), x, y, w, args.epochs, device,
                                               {"fused": True}),
    }
    best = {name: float("inf") for name in contenders}
    for r in range(args.repeats):
        names = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in names:
            best[name] = min(best[name], contenders[name]())

    n = args.events * args.epochs
    ours, peer, peer_fused = (n / best[k] for k in ("trainer", "peer", "peer_fused"))
    print(f"device: {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.events} events x {args.epochs} epochs, batch {BATCH}, best of {args.repeats} "
          f"alternating rounds")
    print(f"  (same loop with Adam(fused=True): {peer_fused:,.0f} events/s -> Trainer is "
          f"{ours / peer_fused:.1f}x)")
    print(f"Trainer: {ours:,.0f} events/s, DataLoader(TensorDataset) loop: {peer:,.0f} events/s "
          f"-> {ours / peer:.1f}x")
    return ours / peer


if __name__ == "__main__":
    main()
