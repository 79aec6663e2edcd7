"""Speed and fit quality of flowbridge's flows, next to nflows 0.14, zuko and the bare MLPs.

Three parts, all written to one JSON file and echoed on stdout: ``--out`` ending in ``.json``
names that file; any other ``--out`` is a folder (default ``benchmarks/results/``) that gets a
``flows_speed-<UTC time>-<threads>threads-<clock>[-tiny].json``.

1. **Peers.** The same conditional affine-coupling flow (64 features, 32 context features,
   8 couplings, conditioner MLP [32 + 32] → 256 → 256 → 64 with ReLU, 791,040 parameters)
   built with flowbridge (``FlowPrior(actnorm=False, hidden_layers=2)``), with raw nflows 0.14
   (``AffineCouplingTransform`` + masks), with zuko (``NICE``, affine) and as the 8 bare
   conditioner MLPs alone (the compute no coupling flow can avoid; also as flowbridge's own
   ``MLP``, whose ReLUs work in place). Training step (batch 256, Adam), ``log_prob`` and
   sampling (batch 1024, no grad); median over repeats, the contenders interleaved round by
   round so that a busy neighbour slows all of them alike.
2. **Paper scale.** LNFMM's modules (992-d shared bijection, 12 steps, hidden 1024; residual
   priors 32-d / 64-d, 16 steps, hidden 1024 / 512, context 992), each in a fresh process:
   parameters, training step time at batch 128 and peak resident memory.
3. **Quality.** NLL of held-out data after N Adam steps of a conditional ``FlowPrior`` whose
   couplings use the ``"softplus"``, ``"exp"`` or ``"sigmoid"`` scale, on a fixed dataset.

Usage::

    python benchmarks/flows_speed.py                 # everything (about 5 minutes)
    python benchmarks/flows_speed.py --skip-paper    # peers and quality only
    python benchmarks/flows_speed.py --tiny --out /tmp/smoke.json   # a smoke run, toy sizes
    python benchmarks/flows_speed.py --threads 1 --clock cpu   # immune to busy neighbours
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import torch
import zuko
from nflows.distributions import StandardNormal
from nflows.flows import Flow
from nflows.transforms import AffineCouplingTransform, CompositeTransform
from torch import nn

from flowbridge.commands import positive_int
from flowbridge.files import atomic_write_text, check_parent, nearest_existing
from flowbridge.flows import MLP, ConditionalResidualPrior, FlowPrior, SharedBijection
from flowbridge.provenance import load_average, measured, peak_rss_mib, versions

ROOT = Path(__file__).resolve().parent.parent
# perf_counter: elapsed time, what a user waits for, but on a shared machine it includes
# the time other processes hold the cores. thread_time: the CPU time of this thread alone,
# immune to that, and the whole cost only when torch runs on this one thread (CPU autograd
# runs backward on the calling thread too).
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


# ---------------------------------------------------------------------------------------------
# Part 1: the same flow in every library


@dataclass(frozen=True)
class Sizes:
    features: int = 64
    context: int = 32
    couplings: int = 8
    hidden: int = 256
    train_batch: int = 256
    eval_batch: int = 1024


def mlp(in_features: int, out_features: int, hidden: int) -> nn.Sequential:
    """The conditioner of every contender: two hidden ReLU layers."""
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, out_features),
    )


class _ContextMLP(nn.Module):
    """nflows calls its conditioner as ``net(x_identity, context)``."""

    def __init__(self, in_features: int, out_features: int, sizes: Sizes):
        super().__init__()
        self.net = mlp(in_features + sizes.context, out_features, sizes.hidden)

    def forward(self, inputs, context):
        return self.net(torch.cat((inputs, context), dim=1))


@dataclass
class Contender:
    """One implementation: its module and the three operations that are timed."""

    module: nn.Module
    log_prob: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    sample: Callable[[torch.Tensor], torch.Tensor]


def build_flowbridge(sizes: Sizes) -> Contender:
    prior = FlowPrior(
        sizes.features,
        sizes.context,
        steps=sizes.couplings,
        hidden_features=sizes.hidden,
        hidden_layers=2,
        base_scale=1.0,
        actnorm=False,
    )
    return Contender(prior, prior.log_prob, lambda c: prior.sample(1, c))


def build_nflows(sizes: Sizes) -> Contender:
    half = sizes.features // 2
    layers = []
    for i in range(sizes.couplings):
        # Contiguous halves, alternating which one is transformed, as flowbridge does.
        mask = torch.cat((torch.zeros(half), torch.ones(sizes.features - half)))
        layers.append(
            AffineCouplingTransform(
                mask if i % 2 == 0 else 1 - mask,
                lambda i_, o_: _ContextMLP(i_, o_, sizes),
            )
        )
    flow = Flow(CompositeTransform(layers), StandardNormal([sizes.features]))
    return Contender(flow, flow.log_prob, lambda c: flow.sample(1, c))


def build_zuko(sizes: Sizes) -> Contender:
    flow = zuko.flows.NICE(
        sizes.features,
        sizes.context,
        transforms=sizes.couplings,
        hidden_features=(sizes.hidden, sizes.hidden),
    )
    return Contender(flow, lambda x, c: flow(c).log_prob(x), lambda c: flow(c).rsample())


def build_bare_mlps(sizes: Sizes, input_grad: bool = False, own: bool = False) -> Contender:
    """The conditioners alone. With ``input_grad`` their inputs require a gradient, as in a
    flow, where each conditioner's input depends on the layers before it: the backward pass
    then also multiplies into every first layer, work any coupling flow has to do. With
    ``own`` they are flowbridge's own ``MLP`` (ReLUs in place) instead of the plain ``mlp``
    every peer uses: the ratio to them is the flow's overhead over exactly the networks it
    runs."""
    half = sizes.features // 2
    in_features, out_features = half + sizes.context, 2 * (sizes.features - half)
    nets = nn.ModuleList(
        MLP(in_features, out_features, sizes.hidden, hidden_layers=2)
        if own
        else mlp(in_features, out_features, sizes.hidden)
        for _ in range(sizes.couplings)
    )

    def run(x, c):
        # The conditioner inputs a flow would build, without the flow around them.
        inputs = torch.cat((x[:, :half], c), dim=1)
        if input_grad and torch.is_grad_enabled():
            inputs.requires_grad_(True)
        return sum(net(inputs).sum(dim=1) for net in nets)

    return Contender(nets, run, lambda c: run(c.new_zeros(len(c), sizes.features), c))


CONTENDERS = {
    "flowbridge": build_flowbridge,
    "nflows": build_nflows,
    "zuko": build_zuko,
    "bare MLPs": build_bare_mlps,
    "bare MLPs + input grad": lambda sizes: build_bare_mlps(sizes, input_grad=True),
    "flowbridge's MLPs alone": lambda sizes: build_bare_mlps(sizes, own=True),
}
# name -> the key of flowbridge's ratio to it in "targets"
BASELINES = {
    "bare MLPs": "flowbridge_vs_bare_mlps",
    "bare MLPs + input grad": "flowbridge_vs_bare_mlps_with_input_grad",
    "flowbridge's MLPs alone": "flowbridge_vs_its_own_mlps",
}


def _timed(fn: Callable[[], object], clock: Callable[[], float]) -> float:
    start = clock()
    fn()
    return clock() - start


def compare_peers(sizes: Sizes, repeats: int, clock: Callable[[], float], warmup: int = 3) -> dict:
    """Median seconds per operation for every contender, interleaved round by round."""
    torch.manual_seed(0)
    contenders = {name: build(sizes) for name, build in CONTENDERS.items()}
    x_train = torch.randn(sizes.train_batch, sizes.features)
    c_train = torch.randn(sizes.train_batch, sizes.context)
    x_eval = torch.randn(sizes.eval_batch, sizes.features)
    c_eval = torch.randn(sizes.eval_batch, sizes.context)

    operations: dict[str, dict[str, Callable[[], object]]] = {}
    for name, contender in contenders.items():
        optimizer = torch.optim.Adam(contender.module.parameters(), lr=1e-4)

        def train_step(contender=contender, optimizer=optimizer):
            optimizer.zero_grad(set_to_none=True)
            loss = -contender.log_prob(x_train, c_train).mean()
            loss.backward()
            optimizer.step()

        def log_prob(contender=contender):
            with torch.no_grad():
                contender.log_prob(x_eval, c_eval)

        def sample(contender=contender):
            with torch.no_grad():
                contender.sample(c_eval)

        operations[name] = {"train_step": train_step, "log_prob": log_prob, "sample": sample}

    times = {name: {op: [] for op in ops} for name, ops in operations.items()}
    for round_ in range(warmup + repeats):
        for name, ops in operations.items():
            for op, fn in ops.items():
                elapsed = _timed(fn, clock)
                if round_ >= warmup:
                    times[name][op].append(elapsed)

    results = {}
    for name, contender in contenders.items():
        medians = {op: statistics.median(ts) for op, ts in times[name].items()}
        results[name] = {
            "parameters": sum(p.numel() for p in contender.module.parameters()),
            "median_ms": {op: 1e3 * t for op, t in medians.items()},
            "iqr_ms": {op: 1e3 * _iqr(ts) for op, ts in times[name].items()},
            # The least disturbed run: on a shared machine, closest to the compute itself.
            "min_ms": {op: 1e3 * min(ts) for op, ts in times[name].items()},
        }
    for name in results:
        results[name]["ratio_to_nflows"] = _ratios(results, name, "nflows")
        results[name]["ratio_to_bare_mlps"] = _ratios(results, name, "bare MLPs")
    peers = [name for name in results if name != "flowbridge" and name not in BASELINES]
    results["targets"] = {
        f"{op} ({statistic})": {
            "flowbridge_vs_fastest_peer": results["flowbridge"][statistic][op]
            / min(results[p][statistic][op] for p in peers),
            **{
                key: results["flowbridge"][statistic][op] / results[baseline][statistic][op]
                for baseline, key in BASELINES.items()
            },
        }
        for statistic in ("median_ms", "min_ms")
        for op in ("train_step", "log_prob", "sample")
    }
    return results


def _iqr(values: list[float]) -> float:
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]


def _ratios(results: dict, name: str, reference: str) -> dict[str, float]:
    ours, theirs = results[name]["median_ms"], results[reference]["median_ms"]
    return {op: ours[op] / theirs[op] for op in ours}


# ---------------------------------------------------------------------------------------------
# Part 2: paper-scale modules, one fresh process each


def paper_modules(tiny: bool) -> dict[str, Callable[[], tuple[nn.Module, Callable]]]:
    """``name -> build()``; ``build`` returns the module and its loss on one batch."""
    shared, hidden_text, hidden_image = (992, 1024, 512) if not tiny else (16, 32, 16)
    steps_f, steps_prior = (12, 16) if not tiny else (2, 2)

    def bijection():
        f = SharedBijection(shared, steps=steps_f, hidden_features=hidden_text)

        def loss(s_a, s_b):
            # LNFMM's uses: f(s_A) against s_B, and the uniform prior's volume term.
            mapped, logabsdet = f(s_a)
            return (mapped - s_b).square().mean() - logabsdet.mean()

        return f, loss

    def prior(features, hidden):
        def build():
            p = ConditionalResidualPrior(
                features, shared, steps=steps_prior, hidden_features=hidden
            )
            return p, lambda r, c: -p.log_prob(r, c).mean()

        return build

    return {
        f"SharedBijection {shared}-d, {steps_f} steps, hidden {hidden_text}": bijection,
        f"text residual prior 32-d, {steps_prior} steps, hidden {hidden_text}": prior(
            32, hidden_text
        ),
        f"image residual prior 64-d, {steps_prior} steps, hidden {hidden_image}": prior(
            64, hidden_image
        ),
    }


def measure_paper_module(
    name: str, tiny: bool, batch: int, steps: int, clock: Callable[[], float]
) -> dict:
    """Runs in a fresh process so that the peak memory belongs to this module alone."""
    torch.manual_seed(0)
    module, loss_fn = paper_modules(tiny)[name]()
    inputs = [torch.randn(batch, size) for size in _loss_input_sizes(module)]
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)
    # The peak so far, the module and its inputs built: the one figure every system gives.
    baseline = peak_rss_mib()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(*inputs).backward()
        optimizer.step()

    step()  # allocates Adam's state
    times = [_timed(step, clock) for _ in range(steps)]
    peak = peak_rss_mib()
    return {
        "parameters": sum(p.numel() for p in module.parameters()),
        "batch": batch,
        "train_step_ms": {
            "median": 1e3 * statistics.median(times),
            "all": [1e3 * t for t in times],
        },
        "peak_rss_mib": peak,
        "peak_rss_before_first_step_mib": baseline,
        "peak_minus_before_mib": None if peak is None else peak - baseline,
    }


def _loss_input_sizes(module: nn.Module) -> tuple[int, int]:
    if isinstance(module, SharedBijection):
        return module.features, module.features
    return module.features, module.context_features


def paper_scale(tiny: bool, batch: int, steps: int, threads: int, clock: str) -> dict:
    results = {}
    for name in paper_modules(tiny):
        command = [sys.executable, __file__, "--paper-module", name, "--paper-batch", str(batch)]
        command += ["--paper-steps", str(steps), "--threads", str(threads), "--clock", clock]
        command += ["--tiny"] if tiny else []
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(
                f"measuring {name} failed (exit status {done.returncode}):\n{done.stderr.strip()}"
            )
        results[name] = json.loads(done.stdout)
        print(f"  {name}: {json.dumps(results[name]['train_step_ms']['median'])} ms", flush=True)
    return results


# ---------------------------------------------------------------------------------------------
# Part 3: which coupling scale fits better


def quality_dataset(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A fixed conditional 8-d Gaussian density whose scales lie both below and above the
    base scale 0.25 (a residual code's spread is whatever the encoder makes it).

    Context :math:`c \sim \mathcal N(0, I_4)`; :math:`x_{1:4} = 1.5\tanh c + 0.05\,\epsilon`
    (narrow) and :math:`x_{5:8} = x_{1:4}^2 / 2 + \sin 2c + e^{c/2} \epsilon' / 2`
    (heteroscedastic, depending on the first half), with
    :math:`\epsilon, \epsilon' \sim \mathcal N(0, I_4)`. Its conditional entropy, the best
    achievable NLL, is :data:`QUALITY_ENTROPY`.
    """
    context = torch.randn(n, 4, generator=generator)
    narrow = 1.5 * torch.tanh(context) + 0.05 * torch.randn(n, 4, generator=generator)
    noise = torch.randn(n, 4, generator=generator)
    wide = narrow.square() / 2 + torch.sin(2 * context) + torch.exp(context / 2) * noise / 2
    return torch.cat((narrow, wide), dim=1), context


# E[-log p(x | c)]: 4 dims of std 0.05 and 4 of std exp(c/2)/2, whose E[log std] = log(1/2).
_GAUSSIAN_ENTROPY = 0.5 * math.log(2 * math.pi * math.e)
QUALITY_ENTROPY = 4 * (_GAUSSIAN_ENTROPY + math.log(0.05)) + 4 * (_GAUSSIAN_ENTROPY + math.log(0.5))


def compare_scales(steps: int, seeds: int, tiny: bool) -> dict:
    """Held-out NLL (nats per sample) during ``steps`` Adam steps, for each coupling scale."""
    data = torch.Generator().manual_seed(1234)
    x_train, c_train = quality_dataset(512 if tiny else 8192, data)
    x_test, c_test = quality_dataset(256 if tiny else 4096, data)
    # Step 0 is no checkpoint: the NLL is measured after a step (fewer than 4 steps give fewer).
    checkpoints = sorted({steps // 4, steps // 2, steps} - {0})
    results = {}
    for scale in ("softplus", "exp", "sigmoid"):
        curves = []
        for seed in range(seeds):
            torch.manual_seed(seed)
            prior = FlowPrior(8, 4, steps=4, hidden_features=64, scale=scale)
            optimizer = torch.optim.Adam(prior.parameters(), lr=1e-3)
            batches = torch.Generator().manual_seed(seed)
            curve = []
            for step in range(1, steps + 1):
                index = torch.randint(0, len(x_train), (256,), generator=batches)
                optimizer.zero_grad(set_to_none=True)
                (-prior.log_prob(x_train[index], c_train[index]).mean()).backward()
                optimizer.step()
                if step in checkpoints:
                    with torch.no_grad():
                        curve.append(-prior.log_prob(x_test, c_test).mean().item())
            curves.append(curve)
        final = [curve[-1] for curve in curves]
        results[scale] = {
            "test_nll_at_steps": {
                str(step): statistics.mean(c[i] for c in curves)
                for i, step in enumerate(checkpoints)
            },
            "final_test_nll_per_seed": final,
            "mean": statistics.mean(final),
            # None, not NaN, for one seed: NaN is no JSON.
            "stdev": statistics.stdev(final) if len(final) > 1 else None,
        }
    results["best_possible_nll"] = QUALITY_ENTROPY
    results["setup"] = (
        f"FlowPrior(8, context 4, steps=4, hidden 64, base_scale 0.25, ActNorm sigmoid), "
        f"{steps} Adam steps (lr 1e-3, batch 256), {len(x_train)} train / {len(x_test)} "
        f"test samples, seeds 0..{seeds - 1}"
    )
    return results


# ---------------------------------------------------------------------------------------------


def _write_json(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2))


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each default, except ``None``: those options say in words what they default to."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def settings(args: argparse.Namespace) -> dict:
    """The options that made a run, at the top of its file as the other benchmarks write
    theirs, so that ``compare.py`` says where two runs differ in them (the parts left out
    show as parts missing)."""
    return {
        "threads": args.threads,
        "clock": args.clock,
        "tiny": args.tiny,
        "repeats": args.repeats,
        "paper_batch": args.paper_batch,
        "paper_steps": args.paper_steps,
        "quality_steps": args.quality_steps,
        "quality_seeds": args.quality_seeds,
    }


def output_path(out: Path, stamp: str, mode: str) -> Path:
    """``out`` itself if it ends in ``.json``, else a file named by time and mode in ``out``."""
    return out if out.suffix == ".json" else out / f"flows_speed-{stamp}-{mode}.json"


def _check_out(out: Path) -> None:
    """Refuse an ``--out`` that cannot be written before minutes of timing, not after."""
    if out.suffix != ".json":
        blocking = nearest_existing(out)
        if not blocking.is_dir():
            raise NotADirectoryError(
                f"--out {str(out)!r}: {str(blocking)!r} is a file, not a folder"
            )
        return
    check_parent(out)
    if out.is_dir():
        raise IsADirectoryError(f"--out {str(out)!r} is a folder; name a new .json file")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options, each checked before anything is timed."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=_HelpFormatter
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=30,
        help="timed rounds per operation (>= 2: the spread needs two)",
    )
    parser.add_argument("--skip-paper", action="store_true", help="leave out part 2")
    parser.add_argument("--skip-quality", action="store_true", help="leave out part 3")
    parser.add_argument(
        "--quality-steps",
        type=positive_int,
        help="Adam steps per fit in part 3 (default: 1000, or 20 with --tiny)",
    )
    parser.add_argument("--quality-seeds", type=positive_int, default=3, help="fits per scale")
    parser.add_argument(
        "--paper-batch", type=positive_int, default=128, help="batch of part 2's steps"
    )
    parser.add_argument(
        "--paper-steps", type=positive_int, default=5, help="timed steps per module in part 2"
    )
    parser.add_argument("--tiny", action="store_true", help="toy sizes: a smoke run")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch.set_num_threads")
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="wall", help="cpu needs --threads 1"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "benchmarks" / "results",
        help="a .json file to write, or a folder to write a time-stamped one into",
    )
    parser.add_argument("--paper-module", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.clock == "cpu" and args.threads != 1:
        parser.error(
            f"--clock cpu times this thread only: it needs --threads 1, not {args.threads}"
        )
    if args.repeats < 2:
        parser.error(
            f"--repeats must be >= 2 (the interquartile range needs two), got {args.repeats}"
        )
    if args.quality_steps is None:
        args.quality_steps = 20 if args.tiny else 1000
    if not args.paper_module:
        try:
            _check_out(args.out)
        except OSError as exc:
            parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    clock = CLOCKS[args.clock]
    if args.paper_module:  # the child process of part 2
        result = measure_paper_module(
            args.paper_module, args.tiny, args.paper_batch, args.paper_steps, clock
        )
        print(json.dumps(result))
        return result

    sizes = Sizes(8, 4, 2, 16, 32, 64) if args.tiny else Sizes()
    report = {
        **versions(__file__),
        **measured(),
        "nflows": version("nflows"),
        "zuko": version("zuko"),
        **settings(args),
        "peers": {"sizes": vars(sizes), **compare_peers(sizes, args.repeats, clock)},
    }
    print(json.dumps({"peers": report["peers"]["targets"]}, indent=2), flush=True)
    if not args.skip_paper:
        report["paper_scale"] = paper_scale(
            args.tiny, args.paper_batch, args.paper_steps, args.threads, args.clock
        )
    if not args.skip_quality:
        report["scale_quality"] = compare_scales(args.quality_steps, args.quality_seeds, args.tiny)
    report["load_average_at_end"] = load_average()

    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    mode = f"{args.threads}threads-{args.clock}" + ("-tiny" if args.tiny else "")
    path = output_path(args.out, stamp, mode)
    _write_json(path, report)
    print(json.dumps(report, indent=2))
    print(f"written to {path}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
