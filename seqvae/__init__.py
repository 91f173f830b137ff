"""seqvae: sequence variational autoencoders for molecules (SMILES / SELFIES) and text."""

from transformers import AutoConfig, AutoModel

from .configuration import SeqVAEConfig
from .errors import SeqVAEError
from .modeling import SeqVAE, SeqVAEOutput
from .pipeline import SeqVAEPipeline, load, train

__version__ = "0.1.0"

__all__ = ["SeqVAEConfig", "SeqVAE", "SeqVAEOutput", "SeqVAEPipeline", "SeqVAEError", "load", "train", "__version__"]

AutoConfig.register(SeqVAEConfig.model_type, SeqVAEConfig, exist_ok=True)
AutoModel.register(SeqVAEConfig, SeqVAE, exist_ok=True)
