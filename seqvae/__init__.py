"""seqvae: sequence variational autoencoders for molecules (SMILES / SELFIES) and text.

``import seqvae`` loads the model and its configuration only (torch and transformers). The
notebook facade (:func:`load`, :func:`train`, :class:`SeqVAEPipeline`, :func:`to_sdf`...), and
with it RDKit, pandas and the corpus stack, loads on first use of one of its names; the metric
stacks (MOSES: numba, fcd_torch) and plotting load when a metric or picture is asked for.
"""

import importlib

from transformers import AutoConfig, AutoModel

from ._version import __version__
from .configuration import SeqVAEConfig
from .errors import SeqVAEError
from .modeling import SeqVAE, SeqVAEOutput

# The facade's names and the module of each, imported when first used (PEP 562).
_LAZY = {
    "SeqVAEPipeline": "pipeline",
    "load": "pipeline",
    "shipped_models": "pipeline",
    "train": "pipeline",
    "to_sdf": "frames",
    "to_csv": "frames",
    "molecule_frame": "frames",
    "interactive_grid": "frames",
}

__all__ = ["SeqVAEConfig", "SeqVAE", "SeqVAEOutput", "SeqVAEError", "__version__", *_LAZY]

AutoConfig.register(SeqVAEConfig.model_type, SeqVAEConfig, exist_ok=True)
AutoModel.register(SeqVAEConfig, SeqVAE, exist_ok=True)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'seqvae' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
