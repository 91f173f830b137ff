"""Adapters to other toolkits' interfaces. Each one imports its toolkit lazily, so the toolkit
stays an optional extra: importing :mod:`seqvae` never needs it.

* :mod:`seqvae.integrations.guacamol`: GuacaMol distribution-learning benchmarks
  (``pip install guacamol``).
"""

__all__: list[str] = []
