"""The FactorECG-style VAE: same interface as the small VAE, clearly larger."""

from __future__ import annotations

import pytest
import torch

from ecglatent.models import build_vae, count_parameters
from ecglatent.training import vae_loss

torch.set_num_threads(1)


def factor(n_leads: int = 2, n_samples: int = 288, latent_dim: int = 4, **kw):
    torch.manual_seed(0)
    return build_vae("factorecg", n_leads, n_samples, latent_dim, **kw)


@pytest.mark.parametrize("latent_dim", [2, 10])
@pytest.mark.parametrize(("n_leads", "n_samples"), [(12, 400), (2, 288), (1, 64), (3, 301)])
def test_output_shapes(n_leads: int, n_samples: int, latent_dim: int) -> None:
    model = factor(n_leads, n_samples, latent_dim, latent_pred=latent_dim)
    x = torch.randn(2, n_leads, n_samples)
    out = model(x, torch.randn(2, 2))
    assert out.x_hat.shape == x.shape
    assert out.mu.shape == out.logvar.shape == out.z.shape == (2, latent_dim)
    assert out.logit.shape == (2,)
    assert torch.isfinite(out.x_hat).all()
    assert model.arch == "factorecg"


@pytest.mark.parametrize(("n_leads", "n_samples"), [(12, 400), (2, 288)])
def test_much_larger_than_small(n_leads: int, n_samples: int) -> None:
    for latent_dim in (2, 10):
        n_factor = count_parameters(factor(n_leads, n_samples, latent_dim, latent_pred=latent_dim))
        n_small = count_parameters(
            build_vae("small", n_leads, n_samples, latent_dim, latent_pred=latent_dim)
        )
        print(f"{n_leads}x{n_samples} L={latent_dim}: factorecg {n_factor:,} small {n_small:,}")
        assert 2_000_000 <= n_factor <= 20_000_000
        assert n_factor >= 4 * n_small


def test_leads_are_mixed_in_the_encoder() -> None:
    # The (n_leads, 1) conv must see every lead: changing lead 1 alone moves the latents.
    model = factor(2, 64).eval()
    x = torch.randn(1, 2, 64)
    y = x.clone()
    y[:, 1] += 1.0
    assert not torch.allclose(model.encode(x)[0], model.encode(y)[0])


def test_head_uses_only_first_latent_pred_means() -> None:
    model = factor(latent_dim=6, latent_pred=2).eval()
    mu, rr = torch.randn(3, 6), torch.randn(3, 2)
    base = model.predict_logit(mu, rr)
    moved = mu.clone()
    moved[:, 2:] = 50.0
    assert torch.equal(model.predict_logit(moved, rr), base)
    assert factor(latent_pred=None).predict_logit(mu[:, :4], rr) is None


def test_freeze_autoencoder() -> None:
    model = factor(latent_pred=4, dropout=0.1)
    model.freeze_autoencoder(True)
    model.train()
    x, rr = torch.randn(2, 2, 288), torch.randn(2, 2)
    vae_loss(model(x, rr), x, torch.tensor([1.0, 0.0]), beta=4.0, gamma=500.0).total.backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.decoder.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.head.parameters())


def test_gradients_are_finite() -> None:
    model = factor(latent_pred=4, dropout=0.1).train()
    x, rr = torch.randn(2, 2, 288), torch.randn(2, 2)
    vae_loss(model(x, rr), x, torch.tensor([1.0, 0.0]), beta=4.0, gamma=500.0).total.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
