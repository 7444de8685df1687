"""The paper's small VAE and the shared TaskVAE interface (head, freezing, sampling)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ecglatent.models import TaskVAE, build_vae, count_parameters
from ecglatent.training import vae_loss

torch.set_num_threads(1)

SHAPES = [(12, 400), (2, 288), (1, 64), (3, 301)]  # 301: odd T, decoder output must be cropped


def small(n_leads: int = 2, n_samples: int = 64, latent_dim: int = 4, **kw) -> TaskVAE:
    torch.manual_seed(0)
    return build_vae("small", n_leads, n_samples, latent_dim, **kw)


@pytest.mark.parametrize("latent_dim", [2, 10])
@pytest.mark.parametrize(("n_leads", "n_samples"), SHAPES)
def test_output_shapes(n_leads: int, n_samples: int, latent_dim: int) -> None:
    model = small(n_leads, n_samples, latent_dim, latent_pred=latent_dim)
    x = torch.randn(3, n_leads, n_samples)
    out = model(x, torch.randn(3, 2))
    assert out.x_hat.shape == x.shape
    for t in (out.mu, out.logvar, out.z):
        assert t.shape == (3, latent_dim)
    assert out.logit is not None and out.logit.shape == (3,)
    assert torch.isfinite(out.x_hat).all()
    assert model.decode(out.mu).shape == x.shape
    assert (model.n_leads, model.n_samples, model.latent_dim) == (n_leads, n_samples, latent_dim)


def expected_small_count(n_leads: int, n_samples: int, latent_dim: int, head_inputs: int) -> int:
    """Parameters of the layer spec, counted by hand: (1,5) kernels, GroupNorm affine (2·C)."""
    k = 5

    def conv(c_in: int, c_out: int) -> int:  # same count for Conv2d and ConvTranspose2d
        return c_in * c_out * k + c_out

    chans = [1, 8, 16, 32, 64]
    enc = sum(conv(a, b) + 2 * b for a, b in zip(chans[:-1], chans[1:], strict=True))
    res = 3 * (conv(64, 64) + 2 * 64)
    dec = sum(conv(a, b) + 2 * b for a, b in [(64, 32), (32, 16), (16, 8)]) + conv(8, 1)
    t = n_samples
    for _ in range(4):  # stride-2 convs with padding 2: ceil(T / 2) each
        t = math.ceil(t / 2)
    flat = 64 * n_leads * t
    latent = 2 * (flat * latent_dim + latent_dim) + (latent_dim * flat + flat)
    head = head_inputs + 1 if head_inputs else 0
    return enc + 2 * res + dec + latent + head


@pytest.mark.parametrize("latent_dim", [2, 10])
@pytest.mark.parametrize(("n_leads", "n_samples"), [(12, 400), (2, 288)])
def test_parameter_count_follows_layer_spec(n_leads: int, n_samples: int, latent_dim: int) -> None:
    model = small(n_leads, n_samples, latent_dim, latent_pred=latent_dim)
    n = count_parameters(model)
    print(f"small VAE {n_leads}x{n_samples} L={latent_dim}: {n:,} parameters")
    assert n == expected_small_count(n_leads, n_samples, latent_dim, latent_dim + 2)
    naive = small(n_leads, n_samples, latent_dim)
    assert count_parameters(naive) == n - (latent_dim + 3)


def test_parameter_count_matches_paper_scale() -> None:
    # Paper: ~300k at L = 2 on 12 × 400; the flatten-to-latent layers (19,200 wide) add
    # 3 × 19,200 per extra latent, so L = 10 lands around 750k (measured elsewhere: > 500k).
    n2 = count_parameters(small(12, 400, 2, latent_pred=2))
    n10 = count_parameters(small(12, 400, 10, latent_pred=10))
    assert 250_000 <= n2 <= 350_000
    assert 500_000 <= n10 <= 800_000


def test_count_parameters_trainable_only() -> None:
    model = small(latent_pred=2)
    model.freeze_autoencoder(True)
    assert count_parameters(model, trainable_only=True) == 2 + 2 + 1
    assert count_parameters(model) > 100_000


def test_reparameterize_is_mu_in_eval_and_samples_in_train() -> None:
    model = small()
    mu = torch.zeros(20_000, 1)
    logvar = torch.full((20_000, 1), math.log(4.0))
    model.eval()
    assert torch.equal(model.reparameterize(mu, logvar), mu)
    model.train()
    torch.manual_seed(1)
    z1 = model.reparameterize(mu, logvar)
    torch.manual_seed(1)
    z2 = model.reparameterize(mu, logvar)
    assert torch.equal(z1, z2)  # torch's RNG, so seeding reproduces it
    assert abs(z1.std().item() - 2.0) < 0.05  # σ = exp(½ log 4) = 2
    assert abs(z1.mean().item()) < 0.05


def test_forward_is_deterministic_in_eval() -> None:
    model = small(dropout=0.3).eval()
    x = torch.randn(2, 2, 64)
    a, b = model(x), model(x)
    assert torch.equal(a.x_hat, b.x_hat)
    assert torch.equal(a.z, a.mu)


def test_head_uses_only_first_latent_pred_means() -> None:
    model = small(latent_dim=10, latent_pred=2).eval()
    mu = torch.randn(5, 10)
    rr = torch.randn(5, 2)
    base = model.predict_logit(mu, rr)
    assert base is not None and base.shape == (5,)
    tail = mu.clone()
    tail[:, 2:] += 100.0 * torch.randn(5, 8)
    assert torch.equal(model.predict_logit(tail, rr), base)
    head = mu.clone()
    head[:, 1] += 1.0
    assert not torch.allclose(model.predict_logit(head, rr), base)
    assert not torch.allclose(model.predict_logit(mu, rr + 1.0), base)


def test_forward_logit_is_head_of_means() -> None:
    model = small(latent_dim=4, latent_pred=4).train()  # train: z is sampled, head must use μ
    x, rr = torch.randn(3, 2, 64), torch.randn(3, 2)
    torch.manual_seed(0)
    out = model(x, rr)
    assert not torch.equal(out.z, out.mu)
    assert torch.allclose(out.logit, model.predict_logit(out.mu, rr))
    assert model(x).logit is None  # no rr: head skipped, loss refuses labels (see losses)


@pytest.mark.parametrize("latent_pred", [None, 0])
def test_task_naive_has_no_head(latent_pred: int | None) -> None:
    model = small(latent_pred=latent_pred)
    assert model.head is None and model.latent_pred is None
    assert model.predict_logit(torch.randn(2, 4), torch.randn(2, 2)) is None
    assert model(torch.randn(2, 2, 64), torch.randn(2, 2)).logit is None


@pytest.mark.parametrize("latent_pred", [5, -1])
def test_latent_pred_out_of_range(latent_pred: int) -> None:
    with pytest.raises(ValueError, match="latent_pred"):
        small(latent_dim=4, latent_pred=latent_pred)


def test_wrong_input_shape_is_refused() -> None:
    model = small(2, 64, latent_pred=2)
    with pytest.raises(ValueError, match="expected"):
        model(torch.randn(2, 3, 64))
    with pytest.raises(ValueError, match="extra"):
        model.predict_logit(torch.randn(2, 4), torch.randn(2, 3))


def test_freeze_autoencoder_trains_only_the_head() -> None:
    model = small(latent_pred=2, dropout=0.2)
    model.freeze_autoencoder(True)
    model.train()
    assert model.autoencoder_frozen
    assert not model.encoder.training and not model.decoder.training and model.head.training
    x, rr, y = torch.randn(4, 2, 64), torch.randn(4, 2), torch.tensor([0.0, 1.0, 1.0, 0.0])
    loss = vae_loss(model(x, rr), x, y, beta=1.0, gamma=10.0)
    loss.total.backward()
    for part in (model.encoder, model.decoder):
        for p in part.parameters():
            assert not p.requires_grad and p.grad is None
    head_grads = [p.grad for p in model.head.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in head_grads)

    model.freeze_autoencoder(False)
    model.train()
    assert model.encoder.training and model.decoder.training
    assert all(p.requires_grad for p in model.parameters())


def test_frozen_encoder_has_dropout_off() -> None:
    model = small(dropout=0.5).train()
    x = torch.randn(2, 2, 64)
    assert not torch.equal(model.encode(x)[0], model.encode(x)[0])  # dropout active
    model.freeze_autoencoder(True)
    model.train()  # a trainer's usual call must not switch the frozen part back
    assert torch.equal(model.encode(x)[0], model.encode(x)[0])


def test_he_init_of_residual_conv() -> None:
    model = small(12, 400, 2)
    conv = model.encoder.body[4].body[0]  # first residual layer: 64 → 64, kernel (1, 5)
    assert isinstance(conv, nn.Conv2d) and conv.weight.shape == (64, 64, 1, 5)
    expected = math.sqrt(2.0 / (1 + 0.01**2) / (64 * 5))
    assert abs(conv.weight.std().item() / expected - 1.0) < 0.05
    assert torch.count_nonzero(conv.bias) == 0


def test_logvar_is_soft_bounded() -> None:
    model = small().eval()
    with torch.no_grad():
        model.encoder.fc_logvar.bias.fill_(50.0)
    x = torch.randn(2, 2, 64, requires_grad=True)
    _, logvar = model.encode(x)
    assert (logvar <= 10.0).all() and (logvar > 9.0).all()
    logvar.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_registry() -> None:
    model = build_vae("Small", 2, 64, 3, latent_pred=1, dropout=0.1)
    assert model.arch == "small"
    assert model.build_config["latent_pred"] == 1 and model.build_config["dropout"] == 0.1
    with pytest.raises(ValueError, match="unknown VAE architecture"):
        build_vae("transformer", 2, 64, 3)
