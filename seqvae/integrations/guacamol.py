"""GuacaMol distribution-learning benchmarks (Brown et al. 2019) for a trained model.

    from seqvae.integrations.guacamol import SeqVAEGuacaMolGenerator, assess_distribution_learning

    generator = SeqVAEGuacaMolGenerator("runs/x", seed=0)
    generator.generate(10_000)       # exactly 10,000 SMILES from the prior, invalid ones included
    assess_distribution_learning("runs/x", "guacamol_v1_train.smiles", "guacamol.json")

GuacaMol is optional (``pip install "seqvae[guacamol]" && pip install --no-deps guacamol==0.5.5``:
its own requirements would replace RDKit) and is imported only when it is used,
never when this module is imported. Its generator interface,
``DistributionMatchingGenerator``, is an abstract base class whose one method is
``generate(self, number_samples: int) -> List[str]``; this adapter implements that method and,
when GuacaMol is importable, registers itself as a virtual subclass (``ABCMeta.register``), so
``isinstance(generator, DistributionMatchingGenerator)`` holds without a hard dependency.

The benchmarks score validity themselves, so ``generate`` returns every sample, invalid ones
included; filtering them would inflate the validity score.
"""

# No ``from __future__ import annotations``: GuacaMol reads ``generate``'s annotations as
# objects (``List[str]``, exactly as its interface declares them), not strings.

import json
import numbers
import os
import random
from pathlib import Path
from typing import List  # noqa: UP035  GuacaMol's interface is declared with typing.List

from ..conditions import check_condition
from ..errors import SeqVAEError
from ..pipeline import SeqVAEPipeline, load

__all__ = ["SeqVAEGuacaMolGenerator", "assess_distribution_learning", "GUACAMOL_SAMPLES"]

GUACAMOL_SAMPLES = 10_000  # what GuacaMol's public assess_distribution_learning draws per benchmark


class SeqVAEGuacaMolGenerator:
    """A trained model as a GuacaMol ``DistributionMatchingGenerator``: SMILES from ``z ~ N(0, I)``.

    Randomness: with ``seed=None`` every call draws from torch's global random state, so
    successive calls give different samples. With a seed, each batch is decoded from a seed drawn
    from one stream started at ``seed``: successive calls still differ, and a new generator with
    the same seed repeats the same sequence of calls exactly (same ``number_samples`` and
    ``batch_size`` in the same order).

    Args:
        model: a run folder (loaded with :func:`seqvae.load`) or a loaded
            :class:`~seqvae.pipeline.SeqVAEPipeline`.
        batch_size: molecules decoded at once; ``generate`` splits larger requests.
        temperature: softmax temperature of the decoder's sampling (> 0; 1 is the model's own
            distribution, which GuacaMol's distribution-matching scores expect).
        seed: see "Randomness" above.
        condition: ``{property: target}`` for conditional models (default: no condition).
    """

    def __init__(
        self,
        model: str | os.PathLike | SeqVAEPipeline,
        batch_size: int = 1000,
        temperature: float = 1.0,
        seed: int | None = None,
        condition: dict | None = None,
    ):
        self.vae = _as_pipeline(model)
        if self.vae.representation == "text":
            raise SeqVAEError(
                f"GuacaMol benchmarks molecules, but the model from {self.vae.source!r} generates text; "
                "use a model trained on SMILES or SELFIES"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise SeqVAEError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not temperature > 0:
            raise SeqVAEError(f"temperature must be a number > 0, got {temperature!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise SeqVAEError(f"seed must be an integer or None, got {seed!r}")
        self.batch_size = int(batch_size)
        self.temperature = float(temperature)
        self.seed = seed
        self.condition = check_condition(self.vae.config, condition) or None  # fail here, not mid-benchmark
        self._batch_seeds = None if seed is None else random.Random(int(seed))
        _register_with_guacamol()

    def __repr__(self) -> str:
        return (
            f"SeqVAEGuacaMolGenerator(model={self.vae.source!r}, batch_size={self.batch_size}, "
            f"temperature={self.temperature}, seed={self.seed!r}, condition={self.condition!r})"
        )

    def generate(self, number_samples: int) -> List[str]:  # noqa: UP006  GuacaMol's exact signature
        """Sample ``number_samples`` SMILES strings, invalid ones included (GuacaMol scores them).

        Args:
            number_samples: how many strings to return (an integer >= 0; 0 returns ``[]``).

        Returns:
            Exactly ``number_samples`` strings, decoded in batches of ``batch_size``.
        """
        count = _checked_number_samples(number_samples)
        samples: list[str] = []
        while len(samples) < count:
            size = min(self.batch_size, count - len(samples))
            samples.extend(
                self.vae.sample(
                    size,
                    seed=self._next_batch_seed(),
                    condition=self.condition,
                    temperature=self.temperature,
                    batch_size=size,
                )
            )
        return samples

    def _next_batch_seed(self) -> int | None:
        return None if self._batch_seeds is None else self._batch_seeds.getrandbits(63)


def assess_distribution_learning(
    model: str | os.PathLike | SeqVAEPipeline | SeqVAEGuacaMolGenerator,
    chembl_training_file: str | os.PathLike,
    json_output_file: str | os.PathLike = "output_distribution_learning.json",
    number_samples: int = GUACAMOL_SAMPLES,
    *,
    benchmark_version: str = "v1",
    batch_size: int = 1000,
    temperature: float = 1.0,
    seed: int | None = None,
    condition: dict | None = None,
) -> dict:
    """Run GuacaMol's distribution-learning suite (validity, uniqueness, novelty, KL divergence,
    FCD) on a model and write GuacaMol's JSON report.

    Args:
        model: a run folder, a loaded pipeline, or a ready :class:`SeqVAEGuacaMolGenerator`
            (then ``batch_size``, ``temperature``, ``seed`` and ``condition`` are not used).
        chembl_training_file: GuacaMol's training SMILES (``guacamol_v1_train.smiles``), used for
            novelty, KL divergence and FCD.
        json_output_file: where GuacaMol writes its report.
        number_samples: molecules per benchmark; 10,000 is the published protocol. Other values
            go through GuacaMol's internal ``_assess_distribution_learning``.
        benchmark_version: GuacaMol's suite version (``"v1"`` or ``"v2"``).
        batch_size, temperature, seed, condition: see :class:`SeqVAEGuacaMolGenerator`.

    Returns:
        The report GuacaMol wrote, as a dict.

    Raises:
        SeqVAEError: GuacaMol is not installed, the training file is missing, or an argument is
            out of range.
    """
    assessment = _import_guacamol_assessment()
    chembl_training_file = Path(chembl_training_file)
    if not chembl_training_file.is_file():
        raise SeqVAEError(
            f"GuacaMol training file not found: {chembl_training_file}; download guacamol_v1_train.smiles "
            "(see the GuacaMol README) and pass its path"
        )
    count = _checked_number_samples(number_samples)
    if count < 1:
        raise SeqVAEError(f"number_samples must be at least 1 for a benchmark, got {number_samples!r}")
    generator = model if isinstance(model, SeqVAEGuacaMolGenerator) else SeqVAEGuacaMolGenerator(
        model, batch_size=batch_size, temperature=temperature, seed=seed, condition=condition
    )
    arguments = {
        "model": generator,
        "chembl_training_file": str(chembl_training_file),
        "json_output_file": str(json_output_file),
        "benchmark_version": benchmark_version,
    }
    if count == GUACAMOL_SAMPLES:
        assessment.assess_distribution_learning(**arguments)
    else:
        flexible = getattr(assessment, "_assess_distribution_learning", None)
        if flexible is None:
            raise SeqVAEError(
                f"this GuacaMol version only runs {GUACAMOL_SAMPLES} samples per benchmark; "
                f"use number_samples={GUACAMOL_SAMPLES}"
            )
        flexible(**arguments, number_samples=count)
    return json.loads(Path(json_output_file).read_text())


# ------------------------------------------------------------------------------------ helpers


def _as_pipeline(model) -> SeqVAEPipeline:
    if isinstance(model, SeqVAEPipeline):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load(model)
    raise SeqVAEError(
        f"model must be a run folder or a loaded SeqVAEPipeline (seqvae.load(...)), got {type(model).__name__}"
    )


def _checked_number_samples(number_samples) -> int:
    # numbers.Integral lets NumPy integers through; bool is an int but never a count.
    if isinstance(number_samples, bool) or not isinstance(number_samples, numbers.Integral) or number_samples < 0:
        raise SeqVAEError(f"number_samples must be an integer >= 0, got {number_samples!r}")
    return int(number_samples)


def _register_with_guacamol() -> bool:
    """Register the adapter as a virtual subclass of GuacaMol's interface, when GuacaMol is
    importable; ``False`` when it is not (the adapter works the same either way)."""
    try:
        from guacamol.distribution_matching_generator import DistributionMatchingGenerator
    except ImportError:
        return False
    DistributionMatchingGenerator.register(SeqVAEGuacaMolGenerator)
    return True


def _import_guacamol_assessment():
    """GuacaMol's assessment module, made to run on current SciPy and FCD (see
    :func:`_patch_for_current_dependencies`)."""
    try:
        _patch_for_current_dependencies()
        import guacamol.assess_distribution_learning as assessment
    except ImportError as error:
        raise SeqVAEError(
            f"the GuacaMol benchmarks need the guacamol package, which cannot be imported ({error}); install it "
            f"with `{GUACAMOL_INSTALL}` (--no-deps: its rdkit-pypi requirement would replace your RDKit)"
        ) from None
    try:
        import guacamol.standard_benchmarks as standard_benchmarks
    except ImportError:
        return assessment  # a GuacaMol without this module builds no FCD benchmark to fix
    standard_benchmarks.FrechetBenchmark = _frechet_benchmark_class()
    return assessment


# GuacaMol 0.5.5 (its last release) requires rdkit-pypi, which would overwrite a current RDKit, and
# FCD >= 1.1; the `guacamol` extra installs FCD and joblib, this installs GuacaMol itself.
GUACAMOL_INSTALL = 'pip install "seqvae[guacamol]" && pip install --no-deps guacamol==0.5.5'
CHEMNET_FILE = "ChemNet_v0.13_pretrained.pt"  # the name FCD >= 1.2 ships its ChemNet under


def _patch_for_current_dependencies() -> None:
    """GuacaMol imports ``scipy.histogram``, an alias of ``numpy.histogram`` that SciPy removed:
    give SciPy the alias back (the same function) before GuacaMol is imported."""
    import numpy
    import scipy

    if not hasattr(scipy, "histogram"):
        scipy.histogram = numpy.histogram


def _frechet_benchmark_class():
    """GuacaMol's FCD benchmark asks FCD for ``ChemNet_v0.13_pretrained.h5``; FCD >= 1.2 ships
    the same network as ``.pt`` (BenevolentAI/guacamol#30). A subclass that asks for the file FCD
    has; unchanged when FCD still ships the ``.h5``."""
    import pkgutil

    from guacamol.frechet_benchmark import FrechetBenchmark

    default = FrechetBenchmark.__init__.__defaults__[0]
    try:
        has_default = pkgutil.get_data("fcd", default) is not None
    except OSError:
        has_default = False
    if has_default:
        return FrechetBenchmark

    class FrechetBenchmarkWithCurrentFCD(FrechetBenchmark):
        def __init__(self, training_set, chemnet_model_filename=CHEMNET_FILE, sample_size=10000):
            super().__init__(training_set, chemnet_model_filename=chemnet_model_filename, sample_size=sample_size)

    return FrechetBenchmarkWithCurrentFCD