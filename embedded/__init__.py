"""The embedded default model: a small flow-matching UNet trained on natural-image crops.

- ``data``: seeded 64x64 RGB crops of scikit-image's sample photographs (training / held-out split)
- ``model``: ``EmbeddedDenoiser`` (k-diffusion denoiser, CONST frame) and ``load_default_model``
- ``train``: the time-budgeted trainer (``python -m spectral_progressive.embedded.train``)
- ``measure_spectrum`` / ``sample_grid``: the shipped spectrum.json and samples_grid.png
"""
