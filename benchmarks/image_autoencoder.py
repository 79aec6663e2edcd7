"""How fast the shapes testbed's image autoencoder, alone, learns to keep an image's attributes.

Text→image accuracy on the testbed is bounded by how well the image decoder draws what a code
says. This trains the testbed's image encoder and decoder with no text and no bridge, so a
decoder change can be judged in a minute instead of a full LNFMM run: the loss is the image
domain's own reconstruction loss of a posterior sample (``z = μ + σε``, σ the testbed's fixed
``posterior_noise``) plus a weak Gaussian penalty :math:`\\tfrac{λ}{2}\\lVert μ \\rVert^2` in
place of the priors (it keeps the codes at the noise's scale). After the given steps the oracle
reads the reconstructions of test images; writes ``results/image_autoencoder.json``: per step
the share of reconstructions that keep all five attributes, their mean squared error, and the
misreadings by object size (``"small: shape diamond->circle": 17``).

    .venv/bin/python benchmarks/image_autoencoder.py                    # 3,000 steps
    .venv/bin/python benchmarks/image_autoencoder.py --hidden 64 --lr 1e-3
    .venv/bin/python benchmarks/image_autoencoder.py --edge-weight 4

The same numbers for the whole bridge are ``image_rec_attributes_kept`` in ``quality.py``.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import torch

from flowbridge.commands import positive_int
from flowbridge.domain import LatentSpec
from flowbridge.files import atomic_write_text, check_parent
from flowbridge.plugins import get_domain
from flowbridge.provenance import measured, versions
from flowbridge_shapes.dataset import ShapesDataset
from flowbridge_shapes.experiment import TESTBED, run_config
from flowbridge_shapes.metrics import attributes_kept, one_pair_per_image
from flowbridge_shapes.oracle import read_images

RESULTS = Path(__file__).parent / "results"


def misreadings(truths: list[dict | None], reads: list[dict | None], meta: list[dict]) -> dict:
    """Counts of ``"<size>: <attribute> <true>-><read>"``, ``"<size>: unreadable"`` and
    ``"<size>: original unreadable"`` over oracle readings (:func:`read_images`) of originals
    and their reconstructions, most frequent first: every reconstruction that is not kept
    whole counts at least once."""
    counts: collections.Counter[str] = collections.Counter()
    for item, truth, read in zip(meta, truths, reads, strict=True):
        size = item["attributes"]["size"]
        if truth is None:
            counts[f"{size}: original unreadable"] += 1
        elif read is None:
            counts[f"{size}: unreadable"] += 1
        else:
            for key, value in truth.items():
                if read[key] != value:
                    counts[f"{size}: {key} {value}->{read[key]}"] += 1
    return dict(counts.most_common())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=positive_int, default=3000)
    parser.add_argument(
        "--at", default="1500,2000,2500,3000", help="comma list of steps to score after"
    )
    parser.add_argument("--lr", type=float, default=TESTBED["train"]["lr"])
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument(
        "--hidden", type=positive_int, default=TESTBED["domains"]["a"]["options"]["hidden"]
    )
    parser.add_argument(
        "--edge-weight",
        type=float,
        default=TESTBED["domains"]["a"]["options"].get("edge_weight", 0.0),
        help="the image domain's edge_weight: edge pixels' loss weighed 1 + w e",
    )
    parser.add_argument("--penalty", type=float, default=0.01, help="λ of the code penalty")
    parser.add_argument(
        "--train-size", type=positive_int, default=TESTBED["data"]["options"]["train_size"]
    )
    parser.add_argument("--inputs", type=positive_int, default=200, help="test images scored")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--out", default=str(RESULTS / "image_autoencoder.json"))
    args = parser.parse_args(argv)
    try:
        at = sorted({int(step) for step in args.at.split(",") if step})
    except ValueError:
        parser.error(f"--at takes a comma list of steps, got {args.at!r}")
    if not at or at[0] < 1 or at[-1] > args.steps:
        parser.error(f"--at needs steps between 1 and --steps ({args.steps}), got {args.at!r}")
    # Before the training, not after it: minutes of work lost to a folder named by mistake.
    try:
        check_parent(args.out)
        if Path(args.out).is_dir():
            raise IsADirectoryError(f"--out {args.out!r} is a folder, not a JSON file")
    except OSError as exc:
        parser.error(str(exc))
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    model = run_config("lnfmm", "unused").model  # the testbed's latent sizes and noise
    spec = LatentSpec(model.shared_features, model.residual_a)
    options = {"hidden": args.hidden, "edge_weight": args.edge_weight}
    domain = get_domain("image", **{**TESTBED["domains"]["a"]["options"], **options})
    encoder, decoder = domain.build_encoder(spec), domain.build_decoder(spec)
    data = ShapesDataset(**{**TESTBED["data"]["options"], "train_size": args.train_size})
    train, test = data.split("train"), data.split("test")
    # Each image once (a split pairs every image with each of its captions).
    images = domain.collate([train.a[i] for i in one_pair_per_image(train.meta)])
    chosen = one_pair_per_image(test.meta)[: args.inputs]
    scored, meta = domain.collate([test.a[i] for i in chosen]), [test.meta[i] for i in chosen]
    truths = read_images(scored)  # the originals' readings, once for every scoring
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)

    report = {
        **versions(__file__),
        **measured(),
        "settings": {**vars(args), "latent": [spec.shared, spec.residual]},
        "points": [],
    }
    trained = 0.0
    for step in range(1, args.steps + 1):
        started = time.perf_counter()
        x = images[torch.randint(len(images), (args.batch_size,), generator=generator)]
        code = encoder(x)
        mean = torch.cat((code.shared, code.residual), dim=1)
        z = mean + model.posterior_noise * torch.randn(mean.shape, generator=generator)
        output = decoder(z[:, : spec.shared], z[:, spec.shared :])
        penalty = 0.5 * args.penalty * mean.square().sum(dim=1)
        loss = (domain.reconstruction_loss(output, x) + penalty).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        trained += time.perf_counter() - started
        if step in at:
            point = {**_score(encoder, decoder, domain, scored, truths, meta), "step": step}
            point["train_seconds"] = round(trained, 1)
            report["points"].append(point)
            print(json.dumps(point), flush=True)
    atomic_write_text(args.out, json.dumps(report, indent=1))  # whole or not at all
    print(f"wrote {args.out}")
    return report


@torch.no_grad()
def _score(encoder, decoder, domain, scored: torch.Tensor, truths: list, meta: list[dict]) -> dict:
    """The oracle on the posterior-mean reconstructions of ``scored`` (``truths``: the
    originals' readings, ``meta``: their attributes)."""
    encoder.eval()
    decoder.eval()
    code = encoder(scored)
    rebuilt = domain.output_to_batch(decoder(code.shared, code.residual)).clamp(0, 1)
    encoder.train()
    decoder.train()
    reads = read_images(rebuilt)
    return {
        "attributes_kept": attributes_kept(truths, reads),
        "mse": round(float((scored - rebuilt).square().mean()), 6),
        "misread": misreadings(truths, reads, meta),
    }


if __name__ == "__main__":
    main()
