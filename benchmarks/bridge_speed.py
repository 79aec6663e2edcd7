"""Bridge speed: batched translation vs a per-sample loop; training steps at two scales.

    .venv/bin/python benchmarks/bridge_speed.py            # everything (~2-4 min on 2 CPU cores)
    .venv/bin/python benchmarks/bridge_speed.py --skip-paper --out /tmp/bridge_speed.json

Writes ``benchmarks/results/bridge_speed.json`` (or ``--out``) and prints it. The domains are
the tests' toy ``VectorDomain`` (an MLP encoder and decoder on real vectors), so the numbers
measure the bridge (encoders, shared map, residual priors, losses, optimiser) with stand-in
encoders, not the image and text plugins' networks. At paper scale the vectors are sized like
the original's inputs to the latent (text 1024, image features 4096) with encoder/decoder
hidden width 1024.

Each training measurement runs in a fresh subprocess so its peak resident memory (or peak
CUDA memory) is its own; the resident figure includes the Python + torch baseline, which is
reported next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the toy vector domains

from toy_domains import make_domain_class  # noqa: E402

from flowbridge import Bridge, hookimpl  # noqa: E402
from flowbridge.commands import positive_int  # noqa: E402
from flowbridge.config import load_run_config  # noqa: E402
from flowbridge.distributed import resolve_device  # noqa: E402
from flowbridge.domain import PairedSplit  # noqa: E402
from flowbridge.files import atomic_write_text, check_parent  # noqa: E402
from flowbridge.plugins import register  # noqa: E402
from flowbridge.provenance import measured, peak_rss_mib, versions  # noqa: E402
from flowbridge.training import Trainer  # noqa: E402

# Named apart from the real plugins, so the presets' text/image options do not apply to them.
Text = make_domain_class("text-vector")
Image = make_domain_class("image-vector")

# name -> (preset, text vector size, image vector size, encoder/decoder hidden)
SCALES = {
    "small": ("small", 64, 256, 128),
    "paper": ("captioning", 1024, 4096, 1024),
}
# Steps left out of the timing (allocations, lazy imports), and the fewest timed steps whose
# median says more than one step's time.
WARMUP_STEPS, MIN_TIMED_STEPS = 2, 3


class BenchPlugin:
    @hookimpl
    def flowbridge_register_domains(self, register):
        register(Text)
        register(Image)


def run_config(scale: str, out: str, steps: int, device: str):
    preset, text, image, hidden = SCALES[scale]
    return load_run_config(
        {
            "preset": preset,
            "domains": {
                "a": {"name": Text.name, "options": {"features": text, "hidden": hidden}},
                "b": {"name": Image.name, "options": {"features": image, "hidden": hidden}},
            },
            "train": {
                "steps": steps,
                "out": out,
                "device": device,
                "progress": False,
                "validate_every": 0,
                "checkpoint_every": 0,
                "log_every": steps,
            },
        }
    )


def random_split(n: int, text: int, image: int) -> PairedSplit:
    g = torch.Generator().manual_seed(0)
    return PairedSplit(
        list(torch.randn(n, text, generator=g)), list(torch.rand(n, image, generator=g))
    )


def measure_training(scale: str, steps: int, device: str) -> dict:
    """Per-step wall time (median after ``WARMUP_STEPS``) and peak memory of one scale."""
    register(BenchPlugin(), name="bench")
    baseline_rss = peak_rss_mib()
    with tempfile.TemporaryDirectory() as out:
        config = run_config(scale, out, steps, device)
        _, text, image, _ = SCALES[scale]
        split = random_split(4 * config.train.batch_size, text, image)
        times: list[float] = []
        trainer = Trainer(
            config, train_data=split, callbacks=[lambda *_: times.append(time.perf_counter())]
        )
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(trainer.device)
        started = time.perf_counter()
        trainer.run()
        if trainer.device.type == "cuda":
            torch.cuda.synchronize(trainer.device)
    step_times = [b - a for a, b in zip([started, *times[:-1]], times, strict=True)]
    step_times = step_times[WARMUP_STEPS:]
    result = {
        "scale": scale,
        "preset": config.preset,
        "batch_size": config.train.batch_size,
        "parameters": sum(p.numel() for p in trainer.bridge.parameters()),
        "flow_parameters": sum(
            p.numel()
            for part in (trainer.bridge.shared_map, trainer.bridge.priors)
            for p in part.parameters()
        ),
        "step_seconds_median": statistics.median(step_times),
        "step_seconds_all": step_times,
        "peak_rss_mib": peak_rss_mib(),
        "baseline_rss_mib": baseline_rss,
        "device": str(trainer.device),
    }
    if trainer.device.type == "cuda":
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated(trainer.device) / 2**20
    return result


def measure_translation(n: int, k: int, repeats: int) -> dict:
    """N inputs × K samples as one batch vs a Python loop over inputs and samples."""
    config = run_config("small", "unused", 1, "cpu")
    torch.manual_seed(0)
    bridge = Bridge(
        Text(**config.domains.a.options), Image(**config.domains.b.options), config.model
    ).eval()
    x = torch.randn(n, config.domains.a.options["features"])

    def batched():
        return bridge.translate(x, "a", samples=k)

    def looped():
        return [bridge.translate(x[i : i + 1], "a", samples=1) for i in range(n) for _ in range(k)]

    assert len(batched()) == n and len(looped()) == n * k
    timings = {}
    for name, fn in (("batched", batched), ("loop", looped)):
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
        timings[name] = statistics.median(runs)
    return {
        "inputs": n,
        "samples": k,
        "batched_seconds": timings["batched"],
        "loop_seconds": timings["loop"],
        "batched_outputs_per_second": n * k / timings["batched"],
        "loop_outputs_per_second": n * k / timings["loop"],
        "speedup": timings["loop"] / timings["batched"],
    }


def measure_in_child(scale: str, steps: int, device: str, threads: int) -> dict:
    """:func:`measure_training` in a fresh process, so that its peak memory is its own.

    Raises:
        SystemExit: the child failed; the message carries the child's own error output.
    """
    command = [sys.executable, __file__, "--child", scale, "--steps", str(steps)]
    command += ["--device", device, "--threads", str(threads)]
    child = subprocess.run(command, capture_output=True, text=True)
    if child.returncode != 0:
        raise SystemExit(
            f"the {scale}-scale training measurement failed (exit status {child.returncode}):\n"
            f"{child.stderr.strip()}"
        )
    return json.loads(child.stdout.strip().splitlines()[-1])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options, each checked before anything is timed."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--skip-paper", action="store_true", help="only the small scale")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (training)")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch threads")
    parser.add_argument(
        "--steps",
        type=positive_int,
        default=8,
        help=f"training steps per scale: {WARMUP_STEPS} warm-up steps, then at least "
        f"{MIN_TIMED_STEPS} timed ones",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "bridge_speed.json",
        help="the JSON file to write (replaced)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < WARMUP_STEPS + MIN_TIMED_STEPS:
        parser.error(
            f"--steps must be >= {WARMUP_STEPS + MIN_TIMED_STEPS} ({WARMUP_STEPS} warm-up "
            f"steps are not timed, and the median needs {MIN_TIMED_STEPS}), got {args.steps}"
        )
    try:
        resolve_device(args.device)
        if not args.child:
            check_parent(args.out)
            if args.out.is_dir():
                raise IsADirectoryError(f"--out {str(args.out)!r} is a folder, not a JSON file")
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("FLOWBRIDGE_LOAD_PLUGINS", "")
    if args.child:  # one training measurement, in its own process
        result = measure_training(args.child, args.steps, args.device)
        print(json.dumps(result))
        return result
    register(BenchPlugin(), name="bench")
    results = {
        **versions(__file__),
        **measured(),
        "threads": args.threads,
        "steps": args.steps,
        "translation": measure_translation(n=64, k=10, repeats=3),
        "training": [
            measure_in_child(scale, args.steps, args.device, args.threads)
            for scale in ["small"] + ([] if args.skip_paper else ["paper"])
        ],
    }
    text = json.dumps(results, indent=2) + "\n"
    atomic_write_text(args.out, text)
    print(text, end="")
    return results


if __name__ == "__main__":
    main()
