"""Shared fixtures: tiny model sizes, small molecule files, one tiny trained run per session.

Everything here is sized so that the default suite runs in a few minutes on 2 CPU cores:
models have ``embedding_dim=16``, hidden size 32 and ``latent_dim=8``; the training corpus is
the first 300 molecules of RDKit's NCI ``first_5K.smi``; training runs take about 20 steps.
"""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

# The thread governor (seqvae.threads) would change torch's thread count when other processes
# load the machine, and with it the last bits of some sums: tests keep torch's own count so that
# seeded results repeat. test_threads.py tests the governor itself.
os.environ.setdefault("SEQVAE_NUM_THREADS", "fixed")

TINY_MODEL = {
    "embedding_dim": 16,
    "encoder_hidden_size": 32,
    "decoder_hidden_size": 32,
    "latent_dim": 8,
    "num_attention_heads": 4,
    "transformer_ffn_dim": 32,
}


def training_overrides(data, **extra) -> dict:
    """Recipe overrides for a fast run: tiny model, ~20 steps, small evaluation, no TensorBoard."""
    overrides = {
        "data": str(data),
        "max_length": 80,
        "validation_fraction": 0.1,
        "max_steps": 20,
        "per_device_train_batch_size": 16,
        "per_device_eval_batch_size": 64,
        "logging_steps": 1,
        "save_steps": 10,
        "report_to": "none",
        "seed": 0,
        "kl_schedule": "linear",
        "kl_start_step": 0,
        "kl_warmup_steps": 10,
        "num_prior_samples": 20,
        "num_reconstruction_molecules": 10,
        **TINY_MODEL,
    }
    overrides.update(extra)
    return overrides


@pytest.fixture
def restore_logging():
    """``main`` configures the root logger; undo it so tests stay independent."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="session")
def tiny_model_kwargs() -> dict:
    """Model sizes for fast tests (copy: tests may change it)."""
    return dict(TINY_MODEL)


@pytest.fixture
def tiny_config():
    """Factory of tiny :class:`SeqVAEConfig` objects: ``tiny_config(encoder_type="lstm")``."""
    from seqvae import SeqVAEConfig

    def make(**overrides):
        kwargs = {"vocab_size": 16, "max_sequence_length": 24, **TINY_MODEL}
        kwargs.update(overrides)
        return SeqVAEConfig(**kwargs)

    return make


@pytest.fixture(scope="session")
def make_overrides():
    """The :func:`training_overrides` helper, as a fixture."""
    return training_overrides


@pytest.fixture
def write_file(tmp_path):
    """Write ``content`` (str or bytes) to ``tmp_path / name``; ``.gz`` names are gzipped."""

    def write(name: str, content) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8") if isinstance(content, str) else content
        if name.endswith(".gz"):
            data = gzip.compress(data)
        path.write_bytes(data)
        return path

    return write


@pytest.fixture(scope="session")
def nci_smiles() -> list[str]:
    """The first 300 SMILES of RDKit's NCI ``first_5K.smi`` (raw, as in the file)."""
    from seqvae.data import bundled_corpus_files

    nci = bundled_corpus_files()[0]
    lines = nci.read_text().splitlines()[:300]
    return [line.split()[0] for line in lines if line.strip()]


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory, nci_smiles) -> Path:
    """A CSV (``smiles,id``) of ~300 NCI molecules, ~290 of them usable at max_length 80."""
    path = tmp_path_factory.mktemp("corpus") / "tiny.csv"
    rows = ["smiles,id"] + [f"{smiles},nci{i}" for i, smiles in enumerate(nci_smiles)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="session")
def bundled_molecules():
    """``load_molecules("bundled")`` (~15k molecules, ~5 s): loaded once per session."""
    from seqvae.data import load_molecules

    return load_molecules("bundled")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_csv):
    """One tiny run through ``train_and_evaluate`` (20 steps), shared by training and CLI tests.

    Also records the model's parameters just before training starts (``initial_state``), so that
    tests can check that training changed them.
    """
    from seqvae.training import SeqVAETrainer
    from seqvae.workflow import train_and_evaluate

    output_dir = tmp_path_factory.mktemp("trained") / "run"
    overrides = training_overrides(tiny_csv)
    initial_state = {}
    original_train = SeqVAETrainer.train

    def recording_train(self, *args, **kwargs):
        initial_state.update(
            {key: value.detach().cpu().clone() for key, value in self.model.state_dict().items()}
        )
        return original_train(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SeqVAETrainer, "train", recording_train)
        metrics = train_and_evaluate(None, overrides, output_dir)
    return SimpleNamespace(
        output_dir=output_dir, metrics=metrics, initial_state=initial_state, overrides=overrides
    )


@pytest.fixture(scope="session")
def conditional_corpus(tmp_path_factory) -> Path:
    """The first 3,000 NCI molecules with a made-up numeric ``activity`` column."""
    from seqvae.data import bundled_corpus_files

    lines = bundled_corpus_files()[0].read_text().splitlines()[:3000]
    rows = ["smiles,activity"] + [f"{line.split()[0]},{i % 7 * 0.5}" for i, line in enumerate(lines) if line.strip()]
    path = tmp_path_factory.mktemp("conditional") / "nci3k.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="session")
def conditional_run(tmp_path_factory, conditional_corpus):
    """A small conditional VAE (logP and QED, with a property head): 500 steps, ~30 s.

    Big enough that conditioning visibly moves the generated molecules' properties, which the
    behaviour tests check against RDKit.
    """
    from seqvae.pipeline import load
    from seqvae.workflow import train_and_evaluate

    output_dir = tmp_path_factory.mktemp("conditional_run") / "run"
    overrides = training_overrides(
        conditional_corpus,
        properties=["logP", "qed"],
        property_head_hidden_size=32,
        embedding_dim=32,
        encoder_hidden_size=64,
        latent_dim=16,
        decoder_hidden_size=128,
        per_device_train_batch_size=32,
        learning_rate=2.0e-3,
        max_steps=500,
        kl_warmup_steps=250,
        logging_steps=50,
        save_steps=100000,
        num_prior_samples=50,
        num_reconstruction_molecules=20,
    )
    metrics = train_and_evaluate(None, overrides, output_dir)
    return SimpleNamespace(output_dir=output_dir, metrics=metrics, vae=load(output_dir, device="cpu"))
