"""vae_loss and its terms against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from ecglatent.models import VAEOutput, build_vae
from ecglatent.training import (
    kl_divergence,
    kl_per_sample,
    masked_bce_with_logits,
    mse_per_element,
    reconstruction_loss,
    vae_loss,
)

torch.set_num_threads(1)


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def bce_by_hand(logit: float, y: float, pos_weight: float = 1.0) -> float:
    p = sigmoid(logit)
    return -(pos_weight * y * math.log(p) + (1.0 - y) * math.log(1.0 - p))


def fake_output(x_hat, mu, logvar, logit=None) -> VAEOutput:
    return VAEOutput(x_hat=x_hat, mu=mu, logvar=logvar, z=mu, logit=logit)


def test_kl_hand_values() -> None:
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)], [0.0, 0.0]])
    # Sample 0: latent 0 gives ½(μ²) = 0.5; latent 1 gives ½(σ² − 1 − log σ²) = ½(4 − 1 − log 4).
    kl0 = 0.5 * 1.0 + 0.5 * (4.0 - 1.0 - math.log(4.0))
    assert kl_per_sample(mu, logvar).tolist() == pytest.approx([kl0, 0.0], abs=1e-6)
    assert kl_divergence(mu, logvar).item() == pytest.approx(kl0 / 2, abs=1e-6)  # batch mean
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, torch.exp(0.5 * logvar)), torch.distributions.Normal(0, 1)
    )
    assert torch.allclose(kl_per_sample(mu, logvar), ref.sum(1), atol=1e-6)


def test_kl_zero_only_at_standard_normal() -> None:
    assert kl_divergence(torch.zeros(3, 5), torch.zeros(3, 5)).item() == 0.0
    torch.manual_seed(0)
    assert (kl_per_sample(torch.randn(4, 3), torch.randn(4, 3)) > 0).all()


def test_reconstruction_per_lead_sum_mean_over_batch() -> None:
    """Summed over leads × time, divided by the number of leads (the paper's code: / 12)."""
    x = torch.zeros(2, 2, 3)
    x_hat = torch.zeros(2, 2, 3)
    x_hat[0, 0, 0] = 1.0  # sample 0: 1² + 2² = 5
    x_hat[0, 1, 2] = -2.0
    x_hat[1] = 3.0  # sample 1: 6 · 9 = 54
    assert reconstruction_loss(x_hat, x).item() == pytest.approx((5.0 + 54.0) / 2 / 2)
    assert mse_per_element(x_hat, x).item() == pytest.approx((5.0 + 54.0) / 12)


def test_reconstruction_of_12_leads_matches_the_reference_code() -> None:
    """The reference divides the summed squared error of a 12-lead beat by 12: the same error
    on every lead costs one lead's error, for 12 leads as for 2."""
    torch.manual_seed(0)
    one_lead = torch.randn(4, 1, 400)
    x12, x2 = torch.zeros(4, 12, 400), torch.zeros(4, 2, 400)
    ref = ((one_lead.expand(4, 12, 400) - x12) ** 2).sum() / 12 / 4
    assert reconstruction_loss(one_lead.expand(4, 12, 400), x12).item() == pytest.approx(
        ref.item(), rel=1e-6
    )
    assert reconstruction_loss(one_lead.expand(4, 2, 400), x2).item() == pytest.approx(
        ref.item(), rel=1e-6
    )


def test_reconstruction_refuses_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="shape"):
        reconstruction_loss(torch.zeros(2, 1, 5), torch.zeros(2, 3, 5))


def test_bce_against_formula() -> None:
    logits, labels = [2.0, -1.0, 0.5], [1.0, 0.0, 1.0]
    loss, n = masked_bce_with_logits(torch.tensor(logits), torch.tensor(labels))
    expected = sum(bce_by_hand(v, y) for v, y in zip(logits, labels, strict=True)) / 3
    assert n == 3
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_bce_pos_weight() -> None:
    logits, labels = [0.3, -2.0], [1.0, 0.0]
    loss, _ = masked_bce_with_logits(torch.tensor(logits), torch.tensor(labels), pos_weight=7.0)
    expected = (bce_by_hand(0.3, 1.0, 7.0) + bce_by_hand(-2.0, 0.0, 7.0)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_bce_masks_nan_labels() -> None:
    logit = torch.tensor([2.0, 0.7, -1.0], requires_grad=True)
    y = torch.tensor([1.0, float("nan"), 0.0])
    loss, n = masked_bce_with_logits(logit, y)
    assert n == 2
    assert loss.item() == pytest.approx((bce_by_hand(2.0, 1.0) + bce_by_hand(-1.0, 0.0)) / 2)
    loss.backward()
    assert torch.isfinite(logit.grad).all()
    assert logit.grad[1].item() == 0.0
    # d/dl of mean BCE = (σ(l) − y) / n_labelled
    assert logit.grad[0].item() == pytest.approx((sigmoid(2.0) - 1.0) / 2, rel=1e-5)


def test_bce_column_labels_accepted() -> None:
    loss, n = masked_bce_with_logits(torch.zeros(2), torch.tensor([[1.0], [0.0]]))
    assert n == 2 and loss.item() == pytest.approx(math.log(2.0))


def test_all_unlabelled_gives_zero_bce_and_finite_grads() -> None:
    x = torch.randn(2, 1, 4)
    x_hat = torch.randn(2, 1, 4, requires_grad=True)
    mu = torch.randn(2, 3, requires_grad=True)
    logvar = torch.randn(2, 3, requires_grad=True)
    logit = torch.randn(2, requires_grad=True)
    y = torch.full((2,), float("nan"))
    terms = vae_loss(fake_output(x_hat, mu, logvar, logit), x, y, beta=2.0, gamma=500.0)
    assert terms.bce.item() == 0.0 and terms.n_labelled == 0
    assert torch.isfinite(terms.total)
    terms.total.backward()
    for t in (x_hat, mu, logvar):
        assert torch.isfinite(t.grad).all()
    assert logit.grad is None or torch.count_nonzero(logit.grad) == 0


def test_total_is_recon_plus_beta_kl_plus_gamma_bce() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 2, 8)
    out = fake_output(torch.randn(4, 2, 8), torch.randn(4, 3), torch.randn(4, 3), torch.randn(4))
    y = torch.tensor([1.0, 0.0, float("nan"), 1.0])
    beta, gamma = 4.0, 500.0
    terms = vae_loss(out, x, y, beta=beta, gamma=gamma)
    recon = ((out.x_hat - x) ** 2).sum(dim=(1, 2)).mean() / 2  # 2 leads
    kl = (-0.5 * (1 + out.logvar - out.mu**2 - out.logvar.exp())).sum(1).mean()
    idx = [0, 1, 3]
    bce = sum(bce_by_hand(out.logit[i].item(), y[i].item()) for i in idx) / 3
    assert terms.recon.item() == pytest.approx(recon.item(), rel=1e-6)
    assert terms.kl.item() == pytest.approx(kl.item(), rel=1e-6)
    assert terms.bce.item() == pytest.approx(bce, rel=1e-5)
    assert terms.n_labelled == 3
    assert terms.total.item() == pytest.approx(recon.item() + beta * kl.item() + gamma * bce, 1e-5)
    assert terms.kl_per_dim.shape == (3,)
    assert terms.kl_per_dim.sum().item() == pytest.approx(kl.item(), rel=1e-5)
    assert terms.mse.item() == pytest.approx(recon.item() / 8, rel=1e-6)
    assert set(terms.as_floats()) == {"loss", "recon", "kl", "bce", "mse"}


def test_no_labels_means_no_bce() -> None:
    x = torch.randn(2, 1, 4)
    out = fake_output(torch.zeros(2, 1, 4), torch.zeros(2, 2), torch.zeros(2, 2), None)
    terms = vae_loss(out, x, None, beta=1.0, gamma=500.0)
    assert terms.bce.item() == 0.0 and terms.kl.item() == 0.0
    assert terms.total.item() == pytest.approx((x**2).sum().item() / 2, rel=1e-6)


def test_labels_without_logit_are_refused() -> None:
    x = torch.randn(2, 1, 4)
    out = fake_output(torch.zeros(2, 1, 4), torch.zeros(2, 2), torch.zeros(2, 2), None)
    with pytest.raises(ValueError, match="no logit"):
        vae_loss(out, x, torch.tensor([1.0, 0.0]), beta=1.0, gamma=500.0)
    assert vae_loss(out, x, torch.tensor([1.0, 0.0]), beta=1.0, gamma=0.0).bce.item() == 0.0


@pytest.mark.parametrize("arch", ["small", "factorecg"])
def test_loss_gradient_is_finite(arch: str) -> None:
    torch.manual_seed(0)
    model = build_vae(arch, 2, 64, 4, latent_pred=2, dropout=0.1).train()
    x, rr = torch.randn(3, 2, 64), torch.randn(3, 2)
    terms = vae_loss(model(x, rr), x, torch.tensor([1.0, float("nan"), 0.0]), beta=4.0, gamma=500)
    terms.total.backward()
    assert torch.isfinite(terms.total)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_a_few_steps_reduce_the_loss() -> None:
    torch.manual_seed(0)
    model = build_vae("small", 2, 64, 4, latent_pred=2, dropout=0.0)
    t = torch.linspace(0, 1, 64)
    x = torch.stack(
        [
            torch.stack([torch.sin(6.28 * f * t), torch.cos(6.28 * f * t)])
            for f in (1, 2, 3, 4, 5, 6, 7, 8)
        ]
    )
    rr = torch.randn(8, 2)
    y = torch.tensor([0.0, 1.0] * 4)

    def eval_loss() -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            terms = vae_loss(model(x, rr), x, y, beta=0.1, gamma=10.0)
        return terms.total.item(), terms.bce.item()

    before, bce_before = eval_loss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(30):
        opt.zero_grad()
        vae_loss(model(x, rr), x, y, beta=0.1, gamma=10.0).total.backward()
        opt.step()
    after, bce_after = eval_loss()
    assert after < 0.7 * before
    assert bce_after < bce_before
