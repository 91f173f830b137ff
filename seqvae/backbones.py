"""Hugging Face backbones inside a SeqVAE: loading them, rebuilding them offline, and how they train.

A backbone is loaded once, when a model is first built, from a Hub id or a local folder; its
Hugging Face config is then recorded in the SeqVAE config (``encoder_backbone`` /
``decoder_backbone``), so a saved run rebuilds the same architecture from ``config.json`` alone and
reads every weight from its own ``model.safetensors``: no download and no unpickling after that.

The run's tokenizer is the backbone's (the decoder's when both sides are pretrained), so the token
ids the model reads are the ids the backbone was trained on; an encoder whose vocabulary differs
from the decoder's would read them as other words, and is refused (:func:`check_shared_vocabulary`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .errors import SeqVAEError

__all__ = [
    "check_backbone_fits",
    "check_loadable",
    "is_causal",
    "load_backbone",
    "build_backbone",
    "is_seqvae_run",
    "set_backbone_training",
    "check_shared_vocabulary",
    "backbone_tokenizer_name",
]

# What each side loads: any encoder model, or a language model with a causal LM head.
ROLES = {"encoder": "AutoModel", "decoder": "AutoModelForCausalLM"}


def is_seqvae_run(name_or_path: str) -> bool:
    """Whether ``name_or_path`` is a local seqvae run folder (its config names model_type seqvae)."""
    config = Path(name_or_path) / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("model_type") == "seqvae"
    except (OSError, json.JSONDecodeError):
        return False


def load_backbone(role: str, name_or_path: str) -> nn.Module:
    """The pretrained ``role`` (``"encoder"`` / ``"decoder"``) model ``name_or_path``, in float32.

    Raises:
        SeqVAEError: one line naming the backbone when it cannot be loaded, or when a decoder has
            no causal language-model head.
    """
    import transformers

    auto_class = getattr(transformers, ROLES[role])
    try:
        model = auto_class.from_pretrained(name_or_path, dtype=torch.float32)
    except ValueError as error:  # an architecture the auto class does not cover
        raise SeqVAEError(_not_loadable(role, name_or_path, error, hint=_role_hint(role))) from None
    except (OSError, RuntimeError) as error:
        raise SeqVAEError(_not_loadable(role, name_or_path, error)) from None
    if role == "decoder":
        _check_causal_head(name_or_path, model)
    return model


def check_loadable(role: str, name_or_path: str) -> None:
    """Fail fast (before any data is read) when ``name_or_path`` has no loadable config."""
    from transformers import AutoConfig

    if is_seqvae_run(name_or_path):
        return
    try:
        AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise SeqVAEError(_not_loadable(role, name_or_path, error)) from None


def build_backbone(role: str, backbone_config: dict) -> nn.Module:
    """A ``role`` model with random weights from a recorded (or recipe-given) config dict."""
    import transformers

    settings = dict(backbone_config)
    model_type = settings.pop("model_type")
    if role == "decoder":
        settings["is_decoder"] = True  # encoder families (BERT) attend left to right only when told
    try:
        config = transformers.AutoConfig.for_model(model_type, **settings)
        return getattr(transformers, ROLES[role]).from_config(config, dtype=torch.float32)
    except (ValueError, TypeError) as error:
        raise SeqVAEError(f"{role}_backbone of model_type {model_type!r} cannot be built: {_first_line(error)}") from None


def set_backbone_training(backbone: nn.Module, mode: str, lora_rank: int) -> nn.Module:
    """``full``: unchanged. ``freeze``: the layers stop training. ``lora``: the backbone wrapped by
    peft with rank-``lora_rank`` adapters on every linear layer. In both, the token embeddings
    (and a separate output matrix) keep training: the run's added special tokens start from
    random rows that must be learnt."""
    if mode == "full":
        return backbone
    if mode == "lora":
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise SeqVAEError(
                "backbone_training: lora needs peft, which is not installed: pip install peft "
                "(or pip install 'seqvae[lora]')"
            ) from None
        backbone = get_peft_model(backbone, LoraConfig(r=lora_rank, lora_alpha=2 * lora_rank, target_modules="all-linear"))
    else:
        backbone.requires_grad_(False)
    for embeddings in (backbone.get_input_embeddings(), backbone.get_output_embeddings()):
        if embeddings is not None:
            embeddings.weight.requires_grad_(True)
    return backbone


def check_shared_vocabulary(encoder_name: str, decoder_name: str) -> None:
    """Refuse an encoder/decoder pair whose tokenizers disagree: the encoder reads the decoder's
    token ids, and would read them as other tokens."""
    from transformers import AutoTokenizer

    vocabularies = {}
    for side, name in (("encoder", encoder_name), ("decoder", decoder_name)):
        try:
            vocabularies[side] = AutoTokenizer.from_pretrained(name).get_vocab()
        except (OSError, ValueError) as error:
            raise SeqVAEError(f"{side}_name_or_path {name!r}: its tokenizer cannot be loaded ({_first_line(error)})") from None
    encoder, decoder = vocabularies["encoder"], vocabularies["decoder"]
    # the decoder may hold more (the special tokens a seqvae run added), never other ids
    differing = sorted(set(encoder.items()) - set(decoder.items()))[:3]
    if differing:
        raise SeqVAEError(
            f"the tokenizers of encoder {encoder_name!r} ({len(encoder):,} tokens) and decoder "
            f"{decoder_name!r} ({len(decoder):,} tokens) disagree (encoder tokens the decoder numbers "
            f"otherwise: {differing}); the encoder "
            "reads the decoder's token ids, so choose an encoder sharing the decoder's tokenizer "
            "(the same family), or a seqvae encoder (encoder_type lstm, gru or transformer)"
        )


def backbone_tokenizer_name(model_settings: dict) -> str | None:
    """The tokenizer a recipe's backbones impose on the run: the pretrained decoder's, else the
    pretrained encoder's; ``None`` when no side is loaded by name (the corpus tokenizer serves)."""
    if model_settings.get("decoder_type") == "pretrained" and model_settings.get("decoder_name_or_path"):
        return model_settings["decoder_name_or_path"]
    if model_settings.get("encoder_type") == "pretrained" and model_settings.get("latent_dim", 1):
        return model_settings.get("encoder_name_or_path") or None
    return None


def is_causal(model: nn.Module) -> bool:
    """Whether a backbone reads left to right only (GPT-2, Llama, ...) rather than both ways (BERT)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    config = model.config
    model_type = config.model_type
    return bool(getattr(config, "is_decoder", False)) or (model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES)


def check_backbone_fits(role: str, model: nn.Module, max_sequence_length: int, pooling: str = "mean") -> None:
    """Refuse a backbone that cannot read the run's sequences: positions fewer than
    ``max_length``, or (encoder) first-token pooling of a left-to-right model, whose first
    state has seen only ``<bos>``."""
    positions = getattr(model.config.get_text_config(), "max_position_embeddings", None)
    if positions is not None and max_sequence_length > positions:
        raise SeqVAEError(
            f"the {role} backbone has {positions} positions, fewer than max_length {max_sequence_length}; "
            f"lower max_length to {positions} or choose a backbone with more positions"
        )
    if role == "encoder" and pooling == "cls" and is_causal(model):
        raise SeqVAEError(
            "encoder_pooling: cls reads the first token's state, which in a left-to-right encoder "
            f"({model.config.model_type}) has seen only <bos>; use encoder_pooling: mean"
        )


def _check_causal_head(name: str, model: nn.Module) -> None:
    architectures = getattr(model.config, "architectures", None) or []
    if architectures and not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        raise SeqVAEError(
            f"decoder_name_or_path {name!r} is a {architectures[0]}, without a causal language-model "
            "head; the decoder must be a left-to-right LM (e.g. gpt2, or a *ForCausalLM checkpoint)"
        )


def _role_hint(role: str) -> str:
    if role == "decoder":
        return "; the decoder must be a causal language model (AutoModelForCausalLM)"
    return ""


def _not_loadable(role: str, name: str, error: Exception, hint: str = "") -> str:
    return (
        f"{role}_name_or_path {name!r} cannot be loaded ({_first_line(error)}){hint}. A Hub name "
        "needs network access (or a copy in the Hugging Face cache); a folder must hold config.json and the weights"
    )


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
