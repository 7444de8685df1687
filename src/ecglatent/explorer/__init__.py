"""Latent explorer: move a β-VAE factor, see the decoded beat and the risk change.

``model`` opens a logged model with its latent summary (``latents``), ``app`` serves the live
page, ``static_page`` writes the self-contained file of the `evaluate` stage, ``page`` fills the
shared template in ``assets/``, ``upload`` turns uploaded files into the model's input rows.
"""
