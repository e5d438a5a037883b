"""DeepLearnToolbox's CNN 6c-2s-12c-2s training step: samples/s against
batch size.

The workload (test_example_CNN): 28x28 inputs, 5x5 'valid' convolutions to
6 then 12 sigmoid maps, each followed by 2x2 mean-pool subsampling, a
fully-connected sigmoid output of 10, loss 0.5 * sum(e^2) / batch, plain SGD
with alpha = 1. One step = forward, backward and update. fastgrad runs it
as fastgrad.models.cnn.CNN (Tensor ops + autodiff + optim.SGD); with
`--compare torch` the identical network in PyTorch eager (nn.Conv2d,
nn.Sigmoid, nn.AvgPool2d, nn.Linear, torch.optim.SGD, same initial weights)
runs side by side in the same process, in turn A B A B, and the table shows
the ratio fastgrad / torch.
"""
import numpy as np

from bench import common

NAME = "cnn"
DEFAULT_BATCH_SIZES = [1, 10, 50, 100, 256]
QUICK_BATCH_SIZES = [1, 50]
ALPHA = 1.0
LAYERS = [{"type": "i"},
          {"type": "c", "output_maps": 6, "kernel_size": 5},
          {"type": "s", "scale": 2},
          {"type": "c", "output_maps": 12, "kernel_size": 5},
          {"type": "s", "scale": 2}]
#: Distinct mini-batches cycled through during timing.
MAX_BATCHES = 16


def make_fastgrad(dtype, seed):
    from fastgrad.models.cnn import CNN
    return CNN(LAYERS, n_outputs=10, dtype=dtype, seed=seed)


class TorchCNN:
    """The same network in PyTorch eager, initialised from the fastgrad
    model's parameters."""

    def __init__(self, torch, model, dtype):
        nn = torch.nn
        self.torch = torch
        self.dtype = getattr(torch, np.dtype(dtype).name)
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.Sigmoid(), nn.AvgPool2d(2),
            nn.Conv2d(6, 12, 5), nn.Sigmoid(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(192, 10), nn.Sigmoid()).to(self.dtype)
        with torch.no_grad():
            sources = [p.data for p in model.params]
            targets = [self.net[0].weight, self.net[0].bias,
                       self.net[3].weight, self.net[3].bias,
                       self.net[7].weight, self.net[7].bias]
            for target, source in zip(targets, sources):
                target.copy_(torch.from_numpy(source.copy()))
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=ALPHA)

    def to_torch(self, x, y):
        return (self.torch.from_numpy(np.ascontiguousarray(x)),
                self.torch.from_numpy(np.ascontiguousarray(y)))

    def step(self, x, y):
        self.optimizer.zero_grad()
        error = self.net(x) - y
        loss = 0.5 * (error * error).sum() / x.shape[0]
        loss.backward()
        self.optimizer.step()
        return loss


def _prepared(data, batch_size, dtype, seed):
    x = data.x_train.reshape(len(data.x_train), 1, 28, 28).astype(dtype)
    y = np.eye(10, dtype=dtype)[data.y_train]
    return common.batches(x, y, batch_size, MAX_BATCHES, seed=seed)


def make_impls(cfg, batch_size, data, torch):
    dtype = np.dtype(cfg.dtype)
    seed = getattr(cfg, "seed", 0) or 0
    prepared = _prepared(data, batch_size, dtype, seed)
    model = make_fastgrad(dtype, seed)
    impls = [common.cycling_impl(
        "fastgrad", lambda x, y: model.train_step(x, y, alpha=ALPHA),
        prepared)]
    if torch is not None:
        torch_model = TorchCNN(torch, model, dtype)
        impls.append(common.cycling_impl(
            "torch", torch_model.step,
            [torch_model.to_torch(x, y) for x, y in prepared]))
    return impls


def run(cfg):
    progress = cfg.progress
    batch_sizes = cfg.batch_sizes or (QUICK_BATCH_SIZES if cfg.quick
                                      else DEFAULT_BATCH_SIZES)
    data = common.get_dataset(cfg)
    print(f"CNN 6c-2s-12c-2s (DeepLearnToolbox test_example_CNN) on "
          f"{data.describe()}")
    torch = None
    if "torch" in cfg.compare:
        torch = common.optional_import("torch")
        if torch is None:
            print("note: PyTorch is not installed; --compare torch skipped")
    for peer in sorted(set(cfg.compare) - {"torch"}):
        print(f"note: no {peer} CNN to compare with; skipped")
    rows = []
    for n_threads in cfg.threads:
        with common.threads(n_threads):
            for batch_size in batch_sizes:
                impls = make_impls(cfg, batch_size, data, torch)
                progress(f"cnn: {n_threads} thread(s), batch {batch_size} "
                         f"({', '.join(i.name for i in impls)})")
                timings = common.time_alternating(impls, quick=cfg.quick)
                for impl in impls:
                    rows.append(common.throughput_row(
                        NAME, impl.name, batch_size, cfg.dtype, n_threads,
                        timings[impl.name], data=data.name))
    common.add_speedups(rows)
    frameworks = [f for f in ("fastgrad", "torch")
                  if any(r["framework"] == f for r in rows)]
    for framework in frameworks:
        common.print_table(
            f"CNN 6c-2s-12c-2s training step, {framework}, {cfg.dtype} "
            f"({data.name})",
            [r for r in rows if r["framework"] == framework],
            common.THROUGHPUT_COLUMNS)
    if len(frameworks) > 1:
        pivot = common.pivot_frameworks(rows, frameworks)
        common.print_table(
            "CNN side by side (samples/s; ratio = fastgrad / torch, same run)",
            pivot, common.side_by_side_columns(frameworks))
        for row in rows:
            match = [p for p in pivot if p["batch_size"] == row["batch_size"]
                     and p["threads"] == row["threads"]]
            if match and "fastgrad/torch" in match[0]:
                row["ratio_vs_torch"] = match[0]["fastgrad/torch"]
    return rows
