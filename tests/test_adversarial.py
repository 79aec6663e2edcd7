"""The adversarial term: hinge losses, the bridge's critics and the trainer's critic step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_training_support import adversarial_settings, plugin  # noqa: F401 (fixture)
from toy_domains import CriticVectorDomain, VectorDomain, make_domain_class

from flowbridge import Bridge, BridgeConfig, LossWeights
from flowbridge.adversarial import frozen_scores
from flowbridge.checkpoint import load_checkpoint
from flowbridge.config import ConfigError, load_run_config
from flowbridge.training import NonFiniteLossError, Trainer

Other = make_domain_class("other")
CriticOther = type("CriticOther", (CriticVectorDomain,), {"name": "critic-other"})


def make_bridge(domain_a=None, domain_b=None, adversarial=0.0, **config) -> Bridge:
    config = (
        dict(
            shared_features=3,
            shared_steps=2,
            shared_hidden=16,
            residual_steps=2,
            residual_hidden=16,
            weights=LossWeights(adversarial=adversarial),
        )
        | config
    )
    domain_a = domain_a or CriticVectorDomain(features=4)
    return Bridge(domain_a, domain_b or Other(features=6), BridgeConfig(**config))


def batch(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randn(n, 6, generator=g)


def test_frozen_scores_pass_gradients_to_the_input_only():
    critic = CriticVectorDomain().build_discriminator(make_bridge().specs["a"])
    x, shared = torch.randn(3, 4, requires_grad=True), torch.randn(3, 3)
    frozen = frozen_scores(critic, x, shared)
    torch.testing.assert_close(frozen, critic(x, shared))
    frozen.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in critic.parameters())


def test_off_means_no_term_and_the_critic_held_apart():
    bridge = make_bridge()
    assert list(bridge.discriminators) == ["a"]
    critics = set(map(id, bridge.discriminators.parameters()))
    generator = set(map(id, bridge.generator_parameters()))
    assert critics and generator.isdisjoint(critics)
    assert generator | critics == set(map(id, bridge.parameters()))
    terms = bridge.loss(*batch())
    assert not {k for k in terms if k.startswith(("adversarial", "critic"))}
    plain = Bridge(VectorDomain(features=4), Other(features=6), bridge.config)
    assert len(plain.discriminators) == 0


@pytest.mark.parametrize("on", ["cross", "own", "both"])
def test_the_terms_score_what_was_decoded_for_the_code_it_came_from(on):
    bridge = make_bridge(adversarial=2.0, adversarial_on=on, posterior_noise=0.0).eval()
    off = make_bridge(adversarial=0.0, adversarial_on=on, posterior_noise=0.0).eval()
    off.load_state_dict(bridge.state_dict())
    x_a, x_b = batch()
    terms = bridge.loss(x_a, x_b)
    critic, decoder = bridge.discriminators["a"], bridge.decoders["a"]
    with torch.no_grad():
        own = bridge.encoders["a"](x_a)
        crossed, _ = bridge.shared_map.inverse(bridge.encoders["b"](x_b).shared)
        codes = {"own": [own.shared], "cross": [crossed], "both": [own.shared, crossed]}[on]
        generator, hinge = [], []
        for code in codes:
            fake = decoder(code, own.residual)
            generator.append(-critic(fake, code))
            hinge.append(F.relu(1 - critic(x_a, code)) + F.relu(1 + critic(fake, code)))
    expected = torch.stack(generator).mean()
    torch.testing.assert_close(terms["adversarial"], expected)
    torch.testing.assert_close(terms["adversarial_a"], expected)
    torch.testing.assert_close(terms["critic_a"], torch.cat(hinge).mean())
    torch.testing.assert_close(terms["critic"], terms["critic_a"])
    # The term adds weight x value to the total and changes nothing else.
    torch.testing.assert_close(terms["total"], off.loss(x_a, x_b)["total"] + 2.0 * expected)


def test_each_players_loss_reaches_only_its_own_parameters():
    bridge = make_bridge(CriticVectorDomain(features=4), CriticOther(features=6), adversarial=1.0)
    with torch.no_grad():  # zero-initialised output layers would hide dead gradient paths
        for p in bridge.parameters():
            p.add_(0.05 * torch.randn_like(p))
    terms = bridge.loss(*batch())
    assert {"adversarial_a", "adversarial_b", "critic_a", "critic_b"} <= set(terms)
    torch.testing.assert_close(terms["critic"], terms["critic_a"] + terms["critic_b"])
    # Both sides' generator terms share the key "adversarial": they add up.
    torch.testing.assert_close(
        terms["adversarial"], terms["adversarial_a"] + terms["adversarial_b"]
    )
    critics = list(bridge.discriminators.parameters())
    generator = [
        (name, p)
        for name, p in bridge.named_parameters()
        if not name.startswith(("discriminators.", "shared_prior"))  # uniform prior: no params
    ]
    terms["total"].backward()
    assert all(p.grad is None for p in critics)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in generator)
    before = {name: p.grad.clone() for name, p in generator}
    terms["critic"].backward()  # the same forward pass: the graphs are disjoint
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in critics)
    assert all(torch.equal(p.grad, before[name]) for name, p in generator)


def test_the_generator_term_reaches_the_code_through_the_decoder_only():
    """The critic scores a decoded item for its code detached: the encoder learns from the
    term through what the decoder makes of its code, never by moving the code the critic
    reads."""
    bridge = make_bridge(adversarial=1.0, adversarial_on="own", posterior_noise=0.0)
    with torch.no_grad():
        for p in bridge.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x_a, x_b = batch()
    encoder = list(bridge.encoders["a"].parameters())
    got = torch.autograd.grad(bridge.loss(x_a, x_b)["adversarial"], encoder)
    own = bridge.encoders["a"](x_a)
    fake = bridge.decoders["a"](own.shared, own.residual)
    expected = torch.autograd.grad(
        -bridge.discriminators["a"](fake, own.shared.detach()).mean(), encoder
    )
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)


def test_unpaired_batches_have_no_adversarial_term():
    bridge = make_bridge(adversarial=1.0)
    terms = bridge.loss(batch()[0], paired=False)
    assert not {k for k in terms if k.startswith(("adversarial", "critic"))}


def test_bad_adversarial_settings_fail_clearly():
    for value in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="adversarial must be a finite number >= 0"):
            LossWeights(adversarial=value)
    with pytest.raises(ConfigError, match="adversarial_on must be one of"):
        BridgeConfig(adversarial_on="fake")
    with pytest.raises(ConfigError, match="discriminator_lr must be > 0"):
        load_run_config({"train": {"discriminator_lr": 0.0}})
    with pytest.raises(ConfigError, match="model.weights: adversarial must be"):
        load_run_config({"model": {"weights": {"adversarial": -2.0}}})
    with pytest.raises(ValueError, match="neither domain .* builds a discriminator"):
        make_bridge(VectorDomain(features=4), adversarial=1.0)
    unset = {"output_to_batch": VectorDomain.output_to_batch}
    silent = type("Silent", (CriticVectorDomain,), unset)
    make_bridge(silent(features=4))  # off: the critic is never fed decoder output
    with pytest.raises(TypeError, match="does not implement output_to_batch"):
        make_bridge(silent(features=4), adversarial=1.0)
    odd = type("Odd", (VectorDomain,), {"build_discriminator": lambda self, spec: "critic"})
    with pytest.raises(TypeError, match="must return an nn.Module or None, got str"):
        make_bridge(odd(features=4))
    with pytest.raises(ValueError, match="'other' has no discriminator"):
        make_bridge().discriminator_loss("other", *batch(), torch.zeros(5, 3))


@pytest.mark.usefixtures("plugin")
def test_the_trainer_steps_each_player_with_its_own_optimiser(tmp_path):
    trainer = Trainer(load_run_config(adversarial_settings(tmp_path, steps=3, log_every=1)))
    critics = set(map(id, trainer.bridge.discriminators.parameters()))
    assert {id(p) for g in trainer.critic_optimizer.param_groups for p in g["params"]} == critics
    assert critics.isdisjoint(id(p) for g in trainer.optimizer.param_groups for p in g["params"])
    assert trainer.critic_optimizer.param_groups[0]["lr"] == 3e-4
    before = {k: v.clone() for k, v in trainer.bridge.discriminators.state_dict().items()}
    result = trainer.run()
    moved = trainer.bridge.discriminators.state_dict()
    # (Not every tensor: the output bias's hinge gradients cancel while both hinges are active.)
    assert not torch.equal(moved["a.net.0.weight"], before["a.net.0.weight"])
    assert result.terms["critic_grad_norm"] > 0 and "adversarial" in result.terms
    assert load_checkpoint(result.checkpoint)["critic_optimizer"]["state"]
    off = adversarial_settings(tmp_path / "off", steps=1)
    off["model"]["weights"]["adversarial"] = 0.0
    assert Trainer(load_run_config(off)).critic_optimizer is None


@pytest.mark.usefixtures("plugin")
def test_a_non_finite_critic_stops_the_run_before_either_update(tmp_path):
    def poison(trainer, step, terms):
        if step == 2:
            with torch.no_grad():
                trainer.bridge.discriminators["a"].net[2].bias.fill_(float("nan"))

    settings = adversarial_settings(tmp_path, steps=4, checkpoint_every=1)
    trainer = Trainer(load_run_config(settings), callbacks=[poison])
    with pytest.raises(NonFiniteLossError, match="at step 3: .*critic") as caught:
        trainer.run()
    assert {"critic", "critic_a", "adversarial"} <= set(caught.value.terms)
    assert trainer.step == 2 and load_checkpoint(trainer.checkpoint_path)["step"] == 2
    assert all(torch.isfinite(p).all() for p in trainer.bridge.generator_parameters())
