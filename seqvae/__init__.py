"""seqvae: sequence variational autoencoders for molecules (SMILES / SELFIES) and text.

``import seqvae`` loads the model, its configuration and the notebook facade; the training
stack, the metric stacks (MOSES: numba, fcd_torch) and plotting load on first use.
"""

from transformers import AutoConfig, AutoModel

from ._version import __version__
from .configuration import SeqVAEConfig
from .errors import SeqVAEError
from .modeling import SeqVAE, SeqVAEOutput
from .pipeline import SeqVAEPipeline, load, shipped_models, train

__all__ = ["SeqVAEConfig", "SeqVAE", "SeqVAEOutput", "SeqVAEPipeline", "SeqVAEError", "load", "shipped_models", "train", "__version__"]

AutoConfig.register(SeqVAEConfig.model_type, SeqVAEConfig, exist_ok=True)
AutoModel.register(SeqVAEConfig, SeqVAE, exist_ok=True)
