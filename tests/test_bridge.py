"""The two-domain model: loss terms, conditioning, translation and joint sampling."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from toy_domains import VectorDomain, make_domain_class

from flowbridge import Bridge, BridgeConfig, LossWeights
from flowbridge.domain import EncoderOutput
from flowbridge.posterior import sample_posterior

Other = make_domain_class("other")


def make_bridge(**config) -> Bridge:
    config.setdefault("shared_features", 3)
    config.setdefault("shared_hidden", 16)
    config.setdefault("residual_hidden", 16)
    config.setdefault("residual_steps", 2)
    config.setdefault("shared_steps", 2)
    return Bridge(VectorDomain(features=4), Other(features=6), BridgeConfig(**config))


def batch(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randn(n, 6, generator=g)


CONFIGS = [
    {},
    {"posterior": "learned", "shared_prior": "gaussian"},
    {"shared_prior": "flow", "shared_map": "affine"},
    {"shared_prior": "gaussian", "residual_prior": "gaussian"},
    {"residual_prior": "standard"},
    {"residual_prior": "none"},
    {"weights": LossWeights(align=1.0, cross=0.0)},
    {"weights": LossWeights(contrastive=1.0), "contrastive_temperature": 0.5},
    {"residual_components": 3, "shared_prior": "gaussian"},
    {"weights": LossWeights(prior_nce_a=1.0, prior_nce_b=1.0), "prior_nce_negatives": 2},
]


@pytest.mark.parametrize("config", CONFIGS)
def test_paired_loss_terms_are_finite_and_reach_every_parameter(config):
    bridge = make_bridge(**config)
    # Perturb the zero-initialised output layers so every gradient path is live.
    with torch.no_grad():
        for p in bridge.parameters():
            p.add_(0.05 * torch.randn_like(p))
    terms = bridge.loss(*batch())
    expected = {"shared", "prior_a", "prior_b", "rec_a", "rec_b", "align", "total"}
    assert expected <= set(terms)
    assert ("cross" in terms) == bool(bridge.config.weights.cross)
    assert all(torch.isfinite(v) and v.dim() == 0 for v in terms.values())
    terms["total"].backward()
    unused = {"shared_prior"} if bridge.config.shared_prior != "flow" else set()
    for name, p in bridge.named_parameters():
        if name.split(".")[0] in unused:
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"


def test_total_is_the_weighted_sum_of_the_terms():
    weights = LossWeights(
        shared=0.5,
        prior_a=2.0,
        prior_b=3.0,
        rec_a=0.1,
        rec_b=0.2,
        cross=0.7,
        align=1.5,
        contrastive=0.4,
        prior_nce_a=0.3,
        prior_nce_b=0.6,
    )
    bridge = make_bridge(weights=weights)
    torch.manual_seed(1)
    terms = bridge.loss(*batch())
    assert "adversarial" not in terms  # off: no domain has a discriminator
    # Back-translation belongs to unpaired batches (below).
    paired = [k for k in vars(weights) if k not in {"adversarial", "back_a", "back_b"}]
    total = sum(getattr(weights, k) * terms[k] for k in paired)
    torch.testing.assert_close(terms["total"], total)


def test_paired_priors_are_cross_conditioned_and_unpaired_self_conditioned(monkeypatch):
    bridge = make_bridge(posterior_noise=0.0)
    x_a, x_b = batch()
    seen = {}
    for side in ("a", "b"):
        prior = bridge.priors[side]
        original = prior.log_prob

        def spy(r, context, _side=side, _original=original):
            seen[_side] = context.detach().clone()
            return _original(r, context)

        monkeypatch.setattr(prior, "log_prob", spy)
    with torch.no_grad():
        s_a, s_b = bridge.encode(x_a, "a").shared, bridge.encode(x_b, "b").shared
        bridge.loss(x_a, x_b)
        torch.testing.assert_close(seen["b"], bridge.shared_map(s_a)[0])
        torch.testing.assert_close(seen["a"], bridge.shared_map.inverse(s_b)[0])
        bridge.loss(x_a, x_b, paired=False)
        torch.testing.assert_close(seen["a"], s_a)
        torch.testing.assert_close(seen["b"], s_b)


@pytest.mark.parametrize("shared_map", ["additive", "affine"])
@pytest.mark.parametrize("shared_prior", ["uniform", "gaussian", "flow"])
def test_every_paired_term_is_the_one_the_module_docstring_writes(shared_prior, shared_map):
    """Each term recomputed from the model's parts, in float64 and without posterior noise,
    the volume term from autograd's Jacobian of f: a flipped or dropped log-determinant, a
    prior conditioned on the wrong code or a mean for a sum shows here."""
    torch.manual_seed(0)
    weights = LossWeights(align=0.7, cross_a=0.4)
    bridge = make_bridge(
        shared_prior=shared_prior, shared_map=shared_map, posterior_noise=0.0, weights=weights
    ).double()
    with torch.no_grad():
        for p in bridge.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x_a, x_b = (x.double() for x in batch())
    terms = bridge.loss(x_a, x_b)

    (s_a, r_a), (s_b, r_b) = (
        (e.shared, e.residual) for e in (bridge.encode(x_a, "a"), bridge.encode(x_b, "b"))
    )
    with torch.no_grad():
        f_s_a, f_inv_s_b = bridge.shared_map(s_a)[0], bridge.shared_map.inverse(s_b)[0]
    jacobians = torch.stack(
        [
            torch.autograd.functional.jacobian(lambda v: bridge.shared_map(v[None])[0][0], s)
            for s in s_a
        ]
    )
    volume = torch.linalg.slogdet(jacobians).logabsdet
    log_p = {
        "uniform": lambda z: torch.zeros(len(z), dtype=z.dtype),
        "gaussian": lambda z: torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1),
        "flow": lambda z: bridge.shared_prior.log_prob(z),
    }[shared_prior]

    def gaussian_nll(side, shared, residual, x):  # the vector domains' loss
        return (0.5 * (bridge.decoders[side](shared, residual) - x).square().sum(1)).mean()

    with torch.no_grad():
        expected = {
            "shared": (-(log_p(f_s_a) + volume) - log_p(s_b)).mean(),
            "prior_a": -bridge.priors["a"].log_prob(r_a, f_inv_s_b).mean(),
            "prior_b": -bridge.priors["b"].log_prob(r_b, f_s_a).mean(),
            "rec_a": gaussian_nll("a", s_a, r_a, x_a),
            "rec_b": gaussian_nll("b", s_b, r_b, x_b),
            "cross_a": gaussian_nll("a", f_inv_s_b, r_a, x_a),
            "cross_b": gaussian_nll("b", f_s_a, r_b, x_b),
            "align": (f_s_a - s_b).square().sum(1).mean(),
        }
    for key, value in expected.items():
        torch.testing.assert_close(terms[key], value, rtol=1e-10, atol=1e-10, msg=key)
    total = (
        expected["shared"]
        + expected["prior_a"]
        + expected["prior_b"]
        + expected["rec_a"]
        + expected["rec_b"]
        + 1.4 * expected["cross_a"]
        + expected["cross_b"]
        + 0.7 * expected["align"]
    )
    torch.testing.assert_close(terms["total"], total, rtol=1e-10, atol=1e-10)
    for side in ("a", "b"):  # nats per sample to bits per dimension
        bits = expected[f"prior_{side}"] / (bridge.specs[side].residual * math.log(2))
        torch.testing.assert_close(terms[f"prior_{side}_bpd"], bits, rtol=1e-10, atol=1e-10)


def test_sampling_conditions_each_residual_prior_on_its_own_sides_code(monkeypatch):
    bridge = make_bridge(shared_prior="gaussian")
    x_a, x_b = batch(3)
    seen = {}
    for side in ("a", "b"):
        prior = bridge.priors[side]

        def spy(samples, context, _side=side, _original=prior.sample, **options):
            seen[_side] = context.detach().clone()
            return _original(samples, context, **options)

        monkeypatch.setattr(prior, "sample", spy)
    with torch.no_grad():
        s_a, s_b = bridge.encode(x_a, "a").shared, bridge.encode(x_b, "b").shared
        bridge.translate(x_a, "a", samples=2)
        assert set(seen) == {"b"}  # the target's prior, given the carried code
        torch.testing.assert_close(seen.pop("b"), bridge.shared_map(s_a)[0])
        bridge.translate(x_b, "b", samples=2)
        assert set(seen) == {"a"}
        torch.testing.assert_close(seen.pop("a"), bridge.shared_map.inverse(s_b)[0])
        generator = torch.Generator().manual_seed(0)
        bridge.sample_joint(4, generator=generator)
        drawn_b = bridge.shared_prior.sample(4, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(seen["b"], drawn_b)
        torch.testing.assert_close(seen["a"], bridge.shared_map.inverse(drawn_b)[0])


def test_unpaired_batches_only_touch_their_own_domain():
    bridge = make_bridge()
    x_a, _ = batch()
    terms = bridge.loss(x_a=x_a)
    assert {"shared", "prior_a", "rec_a", "total"} <= set(terms)
    assert not {"prior_b", "rec_b", "cross", "align"} & set(terms)
    terms["total"].backward()
    assert all(p.grad is None for p in bridge.decoders["b"].parameters())


def test_back_translation_rebuilds_an_unpaired_input_from_its_own_translation():
    # Deterministic residuals and posterior: the term can be computed by hand.
    weights = LossWeights(back_a=0.5)
    bridge = make_bridge(residual_prior="none", posterior_noise=0.0, weights=weights)
    with torch.no_grad():
        for p in bridge.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x_a, x_b = batch()
    terms = bridge.loss(x_a=x_a)
    with torch.no_grad():
        own = bridge.encode(x_a, "a")
        in_b, _ = bridge.map_shared(own.shared, "a")
        partner = bridge.domains["b"].generate(bridge.decoders["b"], in_b, in_b[:, :0])
        back, _ = bridge.map_shared(bridge.encode(partner, "b").shared, "b")
        rebuilt = bridge.decoders["a"](back, own.residual, x_a)
        expected = bridge.domains["a"].reconstruction_loss(rebuilt, x_a).mean()
    torch.testing.assert_close(terms["back_a"], expected)
    total = sum(getattr(weights, k) * terms[k] for k in ("shared", "prior_a", "rec_a", "back_a"))
    torch.testing.assert_close(terms["total"], total)
    # Only side a's unpaired inputs are back-translated, and never a paired batch.
    assert "back_b" not in bridge.loss(x_b=x_b) and "back_a" not in bridge.loss(x_a, x_b)


def test_back_translation_trains_the_way_back_not_the_generation():
    bridge = make_bridge(weights=LossWeights(back_b=1.0))
    with torch.no_grad():
        for p in bridge.parameters():
            p.add_(0.05 * torch.randn_like(p))
    _, x_b = batch()
    bridge.loss(x_b=x_b)["back_b"].backward()
    reached = {
        part: any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
        for part, module in {
            "encoder a": bridge.encoders["a"],
            "f": bridge.shared_map,
            "decoder b": bridge.decoders["b"],
            "decoder a": bridge.decoders["a"],
            "prior a": bridge.priors["a"],
        }.items()
    }
    # The partner (decoder a, sampled from prior a) is data; the path back is trained.
    assert reached == {
        "encoder a": True,
        "f": True,
        "decoder b": True,
        "decoder a": False,
        "prior a": False,
    }
    assert bridge.training  # generation ran in eval mode and left the mode as it was


def test_training_lowers_the_loss():
    torch.manual_seed(0)
    bridge = make_bridge()
    g = torch.Generator().manual_seed(3)
    latent = torch.randn(64, 2, generator=g)
    # Paired data with a shared cause and domain-specific noise.
    x_a = torch.cat((latent, torch.randn(64, 2, generator=g)), dim=1)
    x_b = torch.cat((latent.repeat(1, 2), 0.1 * torch.randn(64, 2, generator=g)), dim=1)
    optimizer = torch.optim.Adam(bridge.parameters(), lr=3e-3)
    first = bridge.loss(x_a, x_b)["total"].item()
    for _ in range(150):
        optimizer.zero_grad()
        bridge.loss(x_a, x_b)["total"].backward()
        optimizer.step()
    last = bridge.loss(x_a, x_b)["total"].item()
    assert last < 0.5 * first


@given(n=st.integers(1, 4), k=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_translation_returns_k_outputs_identical_only_without_residual(n, k, seed):
    torch.manual_seed(seed)
    x_a, _ = batch(n, seed)
    for residual_prior in ("none", "flow"):
        bridge = make_bridge(residual_prior=residual_prior)
        with torch.no_grad():  # a non-trivial decoder, so residual changes show
            for p in bridge.decoders.parameters():
                p.add_(torch.randn_like(p))
        outputs = bridge.translate(x_a, source="vector", samples=k)
        assert len(outputs) == n and all(len(row) == k for row in outputs)
        assert all(item.shape == (6,) for row in outputs for item in row)
        for row in outputs:
            spread = torch.stack(row).std(dim=0).max() if k > 1 else torch.tensor(0.0)
            if residual_prior == "none" or k == 1:
                assert spread == 0
            else:
                assert spread > 1e-4


def test_translation_is_seedable_and_accepts_items_both_ways():
    bridge = make_bridge()
    x_a, x_b = batch(2)
    first = bridge.translate(x_a, "a", samples=3, generator=torch.Generator().manual_seed(7))
    again = bridge.translate(
        list(x_a), "vector", "other", samples=3, generator=torch.Generator().manual_seed(7)
    )
    for row, row_again in zip(first, again, strict=True):
        torch.testing.assert_close(torch.stack(row), torch.stack(row_again))
    back = bridge.translate(x_b, "other", samples=2)
    assert all(item.shape == (4,) for row in back for item in row)
    assert bridge.training  # translate restores the mode it found


def test_the_translation_generator_reaches_a_domain_that_draws_while_decoding():
    class Noisy(Other):
        """Decodes with noise of its own, drawn from the ``generator`` it declares."""

        def generate(self, decoder, shared, residual, generator=None):
            mean = decoder(shared, residual).detach()
            return list((mean + torch.randn(mean.shape, generator=generator)).unbind(0))

    bridge = Bridge(VectorDomain(features=4), Noisy(features=6), make_bridge().config)
    x_a, _ = batch(2)

    def translate(seed):
        rows = bridge.translate(x_a, "a", samples=2, generator=torch.Generator().manual_seed(seed))
        return torch.stack([torch.stack(row) for row in rows])

    assert torch.equal(translate(3), translate(3))
    assert not torch.allclose(translate(3), translate(4))
    joint_config = make_bridge(shared_prior="flow").config
    joint = Bridge(VectorDomain(features=4), Noisy(features=6), joint_config)
    first = joint.sample_joint(2, generator=torch.Generator().manual_seed(5))
    again = joint.sample_joint(2, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(x, y) for x, y in zip(first[1], again[1], strict=True))


def test_a_component_temperature_tempers_only_a_mixtures_choice_of_component():
    torch.manual_seed(0)
    bridge = make_bridge(residual_components=4, shared_prior="flow")
    with torch.no_grad():  # unequal mixture weights: tempering equal ones changes nothing
        for parameter in bridge.priors.parameters():
            parameter.add_(0.5 * torch.randn_like(parameter))
    x_a, _ = batch(3)

    def translate(**options):
        generator = torch.Generator().manual_seed(7)
        rows = bridge.translate(
            x_a, "a", samples=20, temperature=0.5, generator=generator, **options
        )
        return torch.stack([torch.stack(row) for row in rows])

    assert torch.equal(translate(), translate(component_temperature=0.5))  # None: τc = τ
    assert not torch.allclose(translate(), translate(component_temperature=1.0))

    def joint(**options):
        generator = torch.Generator().manual_seed(5)
        return torch.stack(bridge.sample_joint(30, 0.5, generator, **options)[1])

    assert torch.equal(joint(), joint(component_temperature=0.5))
    assert not torch.allclose(joint(), joint(component_temperature=1.0))
    with pytest.raises(ValueError, match="ConditionalResidualPrior has no mixture"):
        make_bridge().translate(x_a, "a", samples=2, component_temperature=1.0)


def test_candidates_keep_the_draw_that_rebuilds_the_input_best():
    torch.manual_seed(0)
    bridge = make_bridge()
    with torch.no_grad():  # a non-trivial decoder, so the draws differ
        for p in bridge.decoders.parameters():
            p.add_(torch.randn_like(p))
    x_a, _ = batch(3)
    k, m = 4, 3

    def draws(samples, candidates=1):
        generator = torch.Generator().manual_seed(7)
        rows = bridge.translate(
            x_a, "a", samples=samples, generator=generator, candidates=candidates
        )
        return torch.stack([torch.stack(row) for row in rows])

    assert torch.equal(draws(k, 1), draws(k))  # one candidate: the plain draws, bit for bit
    every = draws(k * m).reshape(3, k, m, 6)  # the same generator draws every candidate
    kept = draws(k, m)
    # By hand: each candidate's shared code, carried back by f⁻¹, with the input's own
    # residual, rebuilds the input; the kept one is the candidate with the smallest loss.
    with torch.no_grad():
        carried, _ = bridge.shared_map.inverse(bridge.encode(every.reshape(-1, 6), "b").shared)
        own = bridge.encode(x_a, "a").residual.repeat_interleave(k * m, dim=0)
        target = x_a.repeat_interleave(k * m, dim=0)
        output = bridge.decoders["a"](carried, own, target)
        loss = bridge.domains["a"].reconstruction_loss(output, target).reshape(3, k, m)
    best = loss.argmin(dim=2)
    expected = every.gather(2, best[..., None, None].expand(3, k, 1, 6)).squeeze(2)
    torch.testing.assert_close(kept, expected)
    assert not torch.equal(kept, every[:, :, 0])  # not simply the first draws
    # Named as the caller wrote them (samples, not the prior's num_samples it becomes).
    for name in ("samples", "candidates"):
        for bad in (0, -1):
            with pytest.raises(ValueError, match=f"^{name} must be >= 1, got {bad}"):
                bridge.translate(x_a, "a", **{"samples": 2, "candidates": 2, name: bad})
        for bad in (1.5, True, "2"):
            with pytest.raises(TypeError, match=f"^{name} must be an int"):
                bridge.translate(x_a, "a", **{"samples": 2, "candidates": 2, name: bad})


def test_many_outputs_are_made_in_batches_of_generate_batch_rows(monkeypatch):
    """samples × candidates outputs are decoded (and, for candidates, encoded back) at most
    generate_batch rows at a time, and the outputs are those of one batch (to rounding)."""
    torch.manual_seed(0)
    bridge = make_bridge(shared_prior="gaussian")
    with torch.no_grad():
        for p in bridge.decoders.parameters():
            p.add_(torch.randn_like(p))
    x_a, x_b = batch(3)

    def outputs():
        generator = torch.Generator().manual_seed(7)
        rows = bridge.translate(x_a, "a", samples=4, generator=generator, candidates=3)
        joint = bridge.sample_joint(7, generator=generator)
        return [*(item for row in rows for item in row), *joint[0], *joint[1]] + list(
            bridge.reconstruct(x_b, "b")
        )

    whole = outputs()
    seen = []
    for side in ("a", "b"):
        for part in (bridge.encoders[side], bridge.decoders[side]):
            part.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[0]))
    monkeypatch.setattr(bridge, "generate_batch", 5)
    batched = outputs()
    assert max(seen) == 5  # of the 36 candidates, the 7 joint pairs
    # The same draws and the same choices; a matrix product of another batch size may round
    # its last bits differently.
    torch.testing.assert_close(batched, whole)
    for bad, error in ((0, ValueError), (-1, ValueError), (2.5, TypeError)):
        monkeypatch.setattr(bridge, "generate_batch", bad)
        with pytest.raises(error, match=r"^Bridge\.generate_batch must be"):
            bridge.translate(x_a, "a")


def test_reconstruct_and_joint_sampling():
    bridge = make_bridge(shared_prior="flow")
    x_a, _ = batch(3)
    assert len(bridge.reconstruct(x_a, "vector")) == 3
    items_a, items_b = bridge.sample_joint(4)
    assert [i.shape for i in items_a] == [(4,)] * 4 and [i.shape for i in items_b] == [(6,)] * 4
    with pytest.raises(ValueError, match="proper shared prior"):
        make_bridge().sample_joint(2)
    with pytest.raises(ValueError, match="^n must be >= 1, got 0"):
        bridge.sample_joint(0)
    for bad in (2.0, True):
        with pytest.raises(TypeError, match="^n must be an int"):
            bridge.sample_joint(bad)


def test_bad_inputs_fail_clearly():
    bridge = make_bridge()
    x_a, x_b = batch()
    with pytest.raises(ValueError, match="unknown domain 'audio'"):
        bridge.translate(x_a, "audio")
    with pytest.raises(ValueError, match="other domain") as refused:
        bridge.translate(x_a, "vector", target="vector")
    # Which domains the bridge has, and which one is the target.
    assert "so the target of 'vector' is 'other'" in str(refused.value)
    with pytest.raises(ValueError, match="as many a-rows as b-rows"):
        bridge.loss(x_a, x_b[:3])
    with pytest.raises(ValueError, match="needs x_a, x_b"):
        bridge.loss()
    with pytest.raises(TypeError, match="non-empty list of vector items, got str"):
        bridge.translate("not a batch", "vector")
    with pytest.raises(TypeError, match="got an empty list"):
        bridge.translate([], "vector")
    with pytest.raises(TypeError, match="Domain instance"):
        Bridge(VectorDomain(), "text")
    # A seed where a generator belongs: named, on every sampling path.
    message = r"^generator must be a torch.Generator, e.g. .*, got int \(0\)"
    with pytest.raises(TypeError, match=message):
        bridge.translate(x_a, "vector", generator=0)
    with pytest.raises(TypeError, match=message):
        make_bridge(shared_prior="flow").sample_joint(2, generator=0)


def test_batch_tensors_a_user_hands_over_are_checked_by_their_domain():
    class Checked(VectorDomain):
        seen = 0

        def check_batch(self, x):
            Checked.seen += 1
            if (x.abs() > 100).any():
                raise ValueError("vector batch values must be within [-100, 100]")
            return x.clamp(-1, 1)  # what the bridge goes on with is what check_batch returns

    bridge = Bridge(Checked(features=4), Other(features=6), BridgeConfig(shared_features=3))
    x_a, x_b = batch(3)
    for call in (
        lambda x: bridge.translate(x, "vector"),
        lambda x: bridge.encode(x, "vector"),
        lambda x: bridge.reconstruct(x, "vector"),
        # The loss is a public API for a training loop of one's own: checked too.
        lambda x: bridge.loss(x, x_b),
        lambda x: bridge.loss(x),
    ):
        with pytest.raises(ValueError, match="within"):
            call(x_a * 1000)
    torch.testing.assert_close(
        bridge.encode(x_a * 10, "a").shared,
        bridge.encode(list((x_a * 10).clamp(-1, 1)), "a").shared,
    )
    # The trainer's batches come from collate: batch_loss does not check them again.
    Checked.seen = 0
    bridge.batch_loss(x_a * 1000, x_b)
    bridge.batch_loss(x_a * 1000, None)
    assert Checked.seen == 0
    # A numpy array is a list of items, as in a PairedSplit.
    torch.testing.assert_close(
        bridge.encode(x_a.numpy(), "a").shared, bridge.encode(list(x_a), "a").shared
    )


def test_one_item_handed_over_as_a_batch_is_named_by_the_default_check_batch():
    bridge = make_bridge()
    x_a, _ = batch(3)
    message = r"^a vector batch tensor has 2 dimensions, the first the batch's; got shape "
    with pytest.raises(ValueError, match=message + r"\[4\]: one item is x\[None\]"):
        bridge.translate(x_a[0], "a")
    with pytest.raises(ValueError, match=message + r"\[1, 3, 4\]"):
        bridge.encode(x_a[None], "a")
    assert len(bridge.translate(x_a[0][None], "a")) == 1


def test_two_domains_of_one_kind_are_told_apart_by_side():
    bridge = Bridge(VectorDomain(features=4), VectorDomain(features=6), BridgeConfig())
    x_a, _ = batch(3)
    assert len(bridge.translate(x_a, "a", samples=2)) == 3
    assert len(bridge.translate(x_a, "a", target="b")) == 3
    with pytest.raises(
        ValueError, match="both sides of this bridge are 'vector' domains.*'a' or 'b'"
    ):
        bridge.translate(x_a, "vector")


def test_a_domain_named_like_the_other_side_is_routed_by_its_name():
    # Domain "b" sits on side a and domain "a" on side b (valid names): the public methods
    # resolve the name once, and the internals, which pass sides, must not resolve it again.
    class NamedB(VectorDomain):
        name = "b"

    class NamedA(VectorDomain):
        name = "a"

    config = BridgeConfig(shared_steps=1, residual_steps=1, shared_hidden=8, residual_hidden=8)
    torch.manual_seed(0)
    crossed = Bridge(NamedB(features=4), NamedA(features=6), config)
    torch.manual_seed(0)
    plain = Bridge(VectorDomain(features=4), make_domain_class("other")(features=6), config)
    x_a, _ = batch(3)
    torch.testing.assert_close(crossed.reconstruct(x_a, "b"), plain.reconstruct(x_a, "vector"))

    def translated(bridge, source, **options):
        generator = torch.Generator().manual_seed(1)
        return bridge.translate(x_a, source, samples=2, generator=generator, **options)

    # Translating from domain "b" (side a) carries its code by f, not f⁻¹, and keeping the
    # best of two candidates encodes them in domain "a" (side b).
    for options in ({}, {"candidates": 2}):
        got, expected = translated(crossed, "b", **options), translated(plain, "vector", **options)
        for row, row_expected in zip(got, expected, strict=True):
            torch.testing.assert_close(torch.stack(row), torch.stack(row_expected))


def test_a_broken_encoder_is_named():
    class Broken(VectorDomain):
        name = "broken"

        def build_encoder(self, spec):
            inner = super().build_encoder(spec)

            class Wrong(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.inner = inner

                def forward(self, x):
                    out = self.inner(x)
                    return EncoderOutput(out.shared[:, :-1], out.residual, None)

            return Wrong()

    bridge = Bridge(Broken(), Other(features=6), BridgeConfig(shared_features=3))
    with pytest.raises(ValueError, match="'broken' encoder returned shared of shape"):
        bridge.loss(*batch())


@pytest.mark.parametrize(
    "loss, got",
    [
        (lambda output, x: 0.5 * (output - x).square().sum(), r"got \[\]"),
        (lambda output, x: 0.5 * (output - x).square(), r"got \[10, 4\]"),
        (lambda output, x: (output - x).square().sum().item(), "got float"),
    ],
)
def test_a_reconstruction_loss_that_is_not_per_sample_is_named(loss, got):
    class Summed(VectorDomain):
        name = "summed"

        def reconstruction_loss(self, output, x):
            return loss(output, x)

    bridge = Bridge(Summed(), Other(features=6), BridgeConfig(shared_features=3))
    # 10 rows: the five own reconstructions and the five crossed ones, decoded together.
    message = r"'summed' domain's reconstruction_loss must return one loss per sample, shape "
    message += rf"\[10\], {got}; sum it over every dimension but the batch's"
    with pytest.raises(ValueError, match=message):
        bridge.loss(*batch())


class NarrowOutput(VectorDomain):
    """Its decoder output is a tuple whose mean is one column short of the batch."""

    name = "narrow"

    def build_decoder(self, spec):
        decoder = super().build_decoder(spec)
        forward = decoder.forward
        decoder.forward = lambda shared, residual, x=None: (forward(shared, residual)[:, :3], 1)
        return decoder

    def reconstruction_loss(self, output, x):
        return super().reconstruction_loss(output[0], x)


@pytest.mark.skipif(not hasattr(Exception, "add_note"), reason="exception notes: Python 3.11")
def test_an_error_in_a_domains_loss_names_domain_side_term_and_shapes():
    bridge = Bridge(Other(features=6), NarrowOutput(), BridgeConfig(shared_features=3))
    x_b, x_a = batch()
    with pytest.raises(RuntimeError, match="size of tensor a") as info:
        bridge.loss(x_a, x_b)
    # 10 rows: the five own reconstructions and the five crossed ones, decoded together.
    assert info.value.__notes__ == [
        "in the 'narrow' domain's reconstruction_loss (side b, computing rec_b and cross_b, "
        "stacked) of decoder output ([10, 3], int) against x [10, 4]"
    ]
    with pytest.raises(RuntimeError) as info:
        bridge.loss(x_b=x_b)
    assert info.value.__notes__[0].startswith(
        "in the 'narrow' domain's reconstruction_loss (side b, computing rec_b)"
    )


@pytest.mark.skipif(not hasattr(Exception, "add_note"), reason="exception notes: Python 3.11")
def test_an_error_in_a_decoder_names_domain_side_term_and_shapes():
    class Failing(VectorDomain):
        name = "failing"

        def build_decoder(self, spec):
            decoder = super().build_decoder(spec)

            def forward(shared, residual, x=None):
                raise IndexError("index 7 is out of bounds")

            decoder.forward = forward
            return decoder

    bridge = Bridge(Failing(), Other(features=6), BridgeConfig(shared_features=3))
    with pytest.raises(IndexError) as info:
        bridge.loss(*batch(), paired=False)
    assert info.value.__notes__ == [
        "in the 'failing' domain's decoder (side a, computing rec_a) of shared [5, 3], "
        "residual [5, 2] and x [5, 4]"
    ]


class Miscounting(VectorDomain):
    """Its generate drops the last item: one fewer than the latents it was given."""

    name = "miscounting"

    def generate(self, decoder, shared, residual, **options):
        return super().generate(decoder, shared, residual)[:-1]


def test_a_generate_that_makes_the_wrong_number_of_items_is_named_not_cut_to_fit():
    bridge = Bridge(Other(features=6), Miscounting(), BridgeConfig(shared_features=3))
    x4, x6 = batch()
    message = r"the 'miscounting' domain's generate made 14 items from 15 latents; it must "
    with pytest.raises(ValueError, match=message + "return one item per latent row"):
        bridge.translate(x6, "other", samples=3)
    with pytest.raises(ValueError, match="generate made 4 items from 5 latents"):
        bridge.reconstruct(x4, "miscounting")
    # Back-translation generates partners the same way, checked the same way.
    back = Bridge(
        Other(features=6),
        Miscounting(),
        BridgeConfig(shared_features=3, weights=LossWeights(back_a=1.0)),
    )
    with pytest.raises(ValueError, match="generate made 4 items from 5 latents"):
        back.loss(torch.randn(5, 6), paired=False)


@pytest.mark.skipif(not hasattr(Exception, "add_note"), reason="exception notes: Python 3.11")
def test_an_error_in_an_encoder_or_in_generate_names_domain_side_and_shapes():
    bridge = Bridge(Other(features=6), VectorDomain(features=4), BridgeConfig(shared_features=3))
    x4, x6 = batch()
    with pytest.raises(RuntimeError, match="cannot be multiplied") as info:
        bridge.translate(x6, "vector")  # 6 features where the encoder takes 4
    assert info.value.__notes__ == ["in the 'vector' domain's encoder (side b) of x [5, 6]"]

    class Failing(VectorDomain):
        name = "failing"

        def generate(self, decoder, shared, residual, **options):
            raise KeyError("no such voice")

    bridge = Bridge(Other(features=6), Failing(), BridgeConfig(shared_features=3))
    with pytest.raises(KeyError) as info:
        bridge.translate(x6, "other", samples=2)
    assert info.value.__notes__ == [
        "in the 'failing' domain's generate (side b) of shared [10, 3] and residual [10, 2]"
    ]


def test_a_log_variance_of_the_wrong_width_is_named():
    class Narrow(VectorDomain):
        name = "narrow"

        def build_encoder(self, spec):
            encoder = super().build_encoder(spec)
            forward = encoder.forward

            def narrow(x):
                shared, residual, log_var = forward(x)
                return EncoderOutput(shared, residual, log_var[:, :4])

            encoder.forward = narrow
            return encoder

    config = BridgeConfig(shared_features=3, posterior="learned", shared_prior="gaussian")
    bridge = Bridge(Narrow(), Other(features=6), config)
    with pytest.raises(ValueError, match=r"'narrow' encoder returned log_var of shape \[5, 4\], "):
        bridge.loss(*batch())
    with pytest.raises(ValueError, match=r"expected \[5, 5\]"):
        bridge.encode(batch()[0], "narrow")


def test_learned_posterior_needs_a_log_variance():
    class NoVariance(VectorDomain):
        name = "novar"

        def build_encoder(self, spec):
            import dataclasses

            return super().build_encoder(dataclasses.replace(spec, learned_variance=False))

    config = BridgeConfig(shared_features=3, posterior="learned", shared_prior="gaussian")
    # Named with its domain and side, as the encoder's other errors are.
    message = (
        r"the 'novar' encoder \(side {}\) returned no log-variance \(EncoderOutput.log_var is "
        r"None\), but posterior 'learned' needs one: return log_var of shape \[5, 5\]"
    )
    with pytest.raises(ValueError, match=message.format("a")):
        Bridge(NoVariance(), Other(), config).loss(*batch())
    x_a, x_b = batch()
    with pytest.raises(ValueError, match=message.format("b")):
        Bridge(Other(features=6), NoVariance(), config).loss(x_b, x_a)


def test_encode_gives_the_eval_mode_codes_without_gradients():
    class Dropping(VectorDomain):
        def build_encoder(self, spec):
            encoder = super().build_encoder(spec)
            encoder.net.insert(0, torch.nn.Dropout(0.5))
            return encoder

    torch.manual_seed(0)
    bridge = Bridge(Dropping(features=4), Other(features=6), BridgeConfig(shared_features=3))
    x_a, _ = batch(8)
    assert bridge.training  # as a freshly trained bridge is
    first, second = bridge.encode(x_a, "a"), bridge.encode(x_a, "a")
    torch.testing.assert_close(first.shared, second.shared, rtol=0, atol=0)
    bridge.eval()
    with torch.no_grad():
        expected = bridge.encoders["a"](x_a)
    torch.testing.assert_close(first.shared, expected.shared, rtol=0, atol=0)
    assert not first.shared.requires_grad
    bridge.train()
    assert bridge.training  # the mode is put back


def test_an_empty_batch_tensor_is_refused_like_an_empty_list():
    bridge = make_bridge()
    x_a, x_b = batch(3)
    for call in (
        lambda: bridge.translate(x_a[:0], "a"),
        lambda: bridge.encode(x_a[:0], "a"),
        lambda: bridge.loss(x_a[:0], x_b[:0]),
        lambda: bridge.loss(x_b=x_b[:0]),
    ):
        with pytest.raises(ValueError, match=r"a batch of (vector|other) items, got 0 rows"):
            call()


def test_a_float64_batch_is_computed_in_the_models_float32():
    bridge = make_bridge()
    x_a, x_b = batch(3)
    torch.testing.assert_close(
        bridge.encode(x_a.double(), "a").shared, bridge.encode(x_a, "a").shared, rtol=0, atol=0
    )
    assert torch.isfinite(bridge.loss(x_a.double(), x_b.double())["total"])
    # Integer batches (token ids) are left as they are.
    assert bridge._batch(torch.arange(3)[:, None], "a").dtype == torch.int64


def test_a_learned_posterior_adds_its_log_densities_to_the_shared_and_prior_terms():
    """With ``posterior = "learned"`` the shared term is ``-log p(s) + log q(s|x)`` per side and
    each prior term ``log q(r|x) - log p(r|c)``: the terms recomputed from the same posterior
    draws, in float64."""
    bridge = make_bridge(posterior="learned", shared_prior="gaussian").double()
    with torch.no_grad():
        for p in bridge.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x_a, x_b = (x.double() for x in batch())
    torch.manual_seed(5)
    terms = bridge.loss(x_a, x_b)
    torch.manual_seed(5)  # the same draws, side a first
    with torch.no_grad():
        qa, qb = (
            sample_posterior(bridge.encoders[side](x), "learned", bridge.config.posterior_noise)
            for side, x in (("a", x_a), ("b", x_b))
        )
        f_s_a, volume = bridge.shared_map(qa.shared)
        f_inv_s_b = bridge.shared_map.inverse(qb.shared)[0]

        def log_p(z):
            return torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)

        expected = {
            "shared": (
                -(log_p(f_s_a) + volume) + qa.log_q_shared - log_p(qb.shared) + qb.log_q_shared
            ).mean(),
            "prior_a": (
                qa.log_q_residual - bridge.priors["a"].log_prob(qa.residual, f_inv_s_b)
            ).mean(),
            "prior_b": (qb.log_q_residual - bridge.priors["b"].log_prob(qb.residual, f_s_a)).mean(),
        }
    for key, value in expected.items():
        torch.testing.assert_close(terms[key], value, rtol=1e-10, atol=1e-10, msg=key)


def test_unpaired_batches_of_both_sides_add_up_each_sides_terms():
    """Two unpaired batches: each side's terms as the module docstring writes them (its prior
    conditioned on its own shared code), and the shared term the sum of both sides'."""
    weights = LossWeights(shared=0.5, prior_a=2.0, prior_b=3.0, rec_a=0.1, rec_b=0.2)
    bridge = make_bridge(shared_prior="gaussian", posterior_noise=0.0, weights=weights).double()
    with torch.no_grad():
        for p in bridge.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x_a, x_b = (x.double() for x in batch())
    terms = bridge.loss(x_a, x_b, paired=False)
    with torch.no_grad():
        (s_a, r_a), (s_b, r_b) = (
            (e.shared, e.residual) for e in (bridge.encode(x_a, "a"), bridge.encode(x_b, "b"))
        )
        f_s_a, volume = bridge.shared_map(s_a)

        def log_p(z):
            return torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)

        def rec(side, shared, residual, x):
            return (0.5 * (bridge.decoders[side](shared, residual) - x).square().sum(1)).mean()

        expected = {
            "shared": (-(log_p(f_s_a) + volume)).mean() + (-log_p(s_b)).mean(),
            "prior_a": -bridge.priors["a"].log_prob(r_a, s_a).mean(),
            "prior_b": -bridge.priors["b"].log_prob(r_b, s_b).mean(),
            "rec_a": rec("a", s_a, r_a, x_a),
            "rec_b": rec("b", s_b, r_b, x_b),
        }
    assert not {"align", "cross", "cross_a", "cross_b"} & set(terms)
    for key, value in expected.items():
        torch.testing.assert_close(terms[key], value, rtol=1e-10, atol=1e-10, msg=key)
    total = sum(getattr(weights, key) * value for key, value in expected.items())
    torch.testing.assert_close(terms["total"], total, rtol=1e-10, atol=1e-10)
