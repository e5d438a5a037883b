"""RBM CD-1 training step: samples/s against batch size, 784-100 and 784-500.

The workload is DeepLearnToolbox's rbmtrain CD-1 update on MNIST-shaped
[0, 1] inputs, float32:
    h1 = sigmrnd(c + v1 W^T); v2 = sigmrnd(b + h1 W); h2 = sigm(c + v2 W^T)
    vW = m vW + a (h1^T v1 - h2^T v2) / B; vb, vc likewise; W += vW ...
fastgrad runs it as fastgrad.models.rbm.RBM.step (the fused Gibbs kernel
and the fused update kernel, both skipping the zeros of sparse inputs). `--compare torch` adds the same CD-1 written
in PyTorch eager (torch.rand for the Bernoulli draws), `--compare sklearn`
adds scikit-learn's BernoulliRBM.partial_fit on the same batches, which
runs PERSISTENT CD (one Gibbs step of a chain kept between calls, hidden
probabilities in both phases), the closest thing it offers. All are timed in
turn (A B A B ...) in the same run; the ratio columns are fastgrad / peer.
"""
import numpy as np

from bench import common

NAME = "rbm"
DEFAULT_BATCH_SIZES = [1, 10, 100, 1000]
QUICK_BATCH_SIZES = [1, 100]
HIDDEN_SIZES = (100, 500)
N_VISIBLE = 784
LEARNING_RATE, MOMENTUM = 0.1, 0.5
#: Distinct mini-batches cycled through during timing.
MAX_BATCHES = 16


class TorchCD1:
    """DeepLearnToolbox's CD-1 in PyTorch eager, under no_grad, in place."""

    def __init__(self, torch, n_visible, n_hidden, seed=0):
        self.torch = torch
        generator = np.random.default_rng(seed)
        self.W = torch.tensor(0.01 * generator.standard_normal(
            (n_hidden, n_visible)), dtype=torch.float32)
        self.b = torch.zeros(n_visible)
        self.c = torch.zeros(n_hidden)
        self.vW = torch.zeros_like(self.W)
        self.vb = torch.zeros_like(self.b)
        self.vc = torch.zeros_like(self.c)
        torch.manual_seed(seed)

    def step(self, v1):
        torch = self.torch
        with torch.no_grad():
            batch = v1.shape[0]
            p1 = torch.sigmoid(torch.addmm(self.c, v1, self.W.t()))
            h1 = (p1 > torch.rand_like(p1)).to(v1.dtype)
            p2 = torch.sigmoid(torch.addmm(self.b, h1, self.W))
            v2 = (p2 > torch.rand_like(p2)).to(v1.dtype)
            h2 = torch.sigmoid(torch.addmm(self.c, v2, self.W.t()))
            scale = LEARNING_RATE / batch
            self.vW.mul_(MOMENTUM).addmm_(h1.t(), v1, alpha=scale)
            self.vW.addmm_(h2.t(), v2, alpha=-scale)
            self.vb.mul_(MOMENTUM).add_((v1 - v2).sum(0), alpha=scale)
            self.vc.mul_(MOMENTUM).add_((h1 - h2).sum(0), alpha=scale)
            self.W.add_(self.vW)
            self.b.add_(self.vb)
            self.c.add_(self.vc)
            return ((v1 - v2) ** 2).sum() / batch


def _inputs(data, dtype):
    x = np.asarray(data.x_train, dtype=np.float64).reshape(
        len(data.x_train), -1)
    if x.max() > 1.0:
        x = x / 255.0
    return np.ascontiguousarray(np.clip(x, 0.0, 1.0), dtype=dtype)


def make_impls(cfg, n_hidden, batch_size, x, torch, sklearn_rbm):
    dtype = np.dtype(cfg.dtype)
    prepared = [batch for batch, _ in common.batches(
        x, np.zeros(len(x)), batch_size, MAX_BATCHES, seed=cfg.seed)]
    impls = []
    from fastgrad.models.rbm import RBM
    model = RBM(N_VISIBLE, n_hidden, learning_rate=LEARNING_RATE,
                momentum=MOMENTUM, init="normal", dtype=dtype,
                seed=cfg.seed)
    impls.append(common.cycling_impl("fastgrad", model.step,
                                     [(b,) for b in prepared]))
    if torch is not None:
        torch_model = TorchCD1(torch, N_VISIBLE, n_hidden, seed=cfg.seed)
        impls.append(common.cycling_impl(
            "torch", torch_model.step,
            [(torch.from_numpy(b.astype(np.float32)),) for b in prepared]))
    if sklearn_rbm is not None:
        sk_model = sklearn_rbm(n_components=n_hidden,
                               learning_rate=LEARNING_RATE,
                               batch_size=batch_size,
                               random_state=cfg.seed)
        impls.append(common.cycling_impl("sklearn", sk_model.partial_fit,
                                         [(b,) for b in prepared]))
    return impls


def run(cfg):
    progress = cfg.progress
    batch_sizes = cfg.batch_sizes or (QUICK_BATCH_SIZES if cfg.quick
                                      else DEFAULT_BATCH_SIZES)
    data = common.get_dataset(cfg)
    x = _inputs(data, np.dtype(cfg.dtype))
    print(f"RBM CD-1 (DeepLearnToolbox rbmtrain) on {data.describe()}, "
          f"{cfg.dtype}")
    torch = None
    if "torch" in cfg.compare:
        torch = common.optional_import("torch")
        if torch is None:
            print("note: PyTorch is not installed; --compare torch skipped")
    sklearn_rbm = None
    if "sklearn" in cfg.compare:
        try:
            from sklearn.neural_network import BernoulliRBM
        except ImportError:
            BernoulliRBM = None
        if BernoulliRBM is None:
            print("note: scikit-learn is not installed; --compare sklearn "
                  "skipped")
        else:
            sklearn_rbm = BernoulliRBM
            print("note: scikit-learn's BernoulliRBM.partial_fit runs "
                  "PERSISTENT CD-1 (hidden probabilities, a chain kept "
                  "between calls), not DeepLearnToolbox's CD-1; same shapes "
                  "and batches")
    if "numpy" in cfg.compare:
        print("note: no hand-written NumPy RBM peer; scikit-learn's "
              "BernoulliRBM is NumPy (--compare sklearn)")
    rows = []
    for n_threads in cfg.threads:
        with common.threads(n_threads):
            for n_hidden in HIDDEN_SIZES:
                sizes = f"{N_VISIBLE}-{n_hidden}"
                for batch_size in batch_sizes:
                    impls = make_impls(cfg, n_hidden, batch_size, x, torch,
                                       sklearn_rbm)
                    progress(f"rbm {sizes}: {n_threads} thread(s), batch "
                             f"{batch_size} "
                             f"({', '.join(i.name for i in impls)})")
                    timings = common.time_alternating(impls,
                                                      quick=cfg.quick)
                    for impl in impls:
                        rows.append(common.throughput_row(
                            NAME, impl.name, batch_size, cfg.dtype,
                            n_threads, timings[impl.name], sizes=sizes,
                            data=data.name))
    common.add_speedups(rows, by=("suite", "framework", "threads", "dtype",
                                  "sizes"))
    frameworks = [f for f in ("fastgrad", "torch", "sklearn")
                  if any(r["framework"] == f for r in rows)]
    for sizes in [f"{N_VISIBLE}-{h}" for h in HIDDEN_SIZES]:
        for framework in frameworks:
            common.print_table(
                f"RBM {sizes} CD-1 step, {framework}, {cfg.dtype}",
                [r for r in rows if r["framework"] == framework
                 and r["sizes"] == sizes], common.THROUGHPUT_COLUMNS)
        if len(frameworks) > 1:
            common.print_table(
                f"RBM {sizes} side by side (samples/s; x peer = fastgrad / "
                f"peer, same run; sklearn = persistent CD)",
                common.pivot_frameworks(
                    [r for r in rows if r["sizes"] == sizes], frameworks),
                common.side_by_side_columns(frameworks))
    return rows
