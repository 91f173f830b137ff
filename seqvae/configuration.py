"""Configuration of a sequence VAE: everything needed to rebuild the model from ``config.json``."""

from __future__ import annotations

from transformers import PretrainedConfig

__all__ = ["SeqVAEConfig", "ENCODER_TYPES", "DECODER_TYPES", "REPRESENTATIONS", "BACKBONE_TRAINING", "ENCODER_POOLING"]

ENCODER_TYPES = ("gru", "lstm", "transformer", "pretrained")
DECODER_TYPES = ("gru", "lstm", "transformer", "pretrained")
REPRESENTATIONS = ("smiles", "selfies", "text")
BACKBONE_TRAINING = ("full", "freeze", "lora")
ENCODER_POOLING = ("mean", "cls")


class SeqVAEConfig(PretrainedConfig):
    """Architecture of a :class:`~seqvae.modeling.SeqVAE`.

    Args:
        vocab_size: number of tokens, specials included.
        representation: what the tokens spell: ``"smiles"``, ``"selfies"`` or ``"text"``.
        max_sequence_length: longest sequence in tokens, ``<bos>``/``<eos>`` included; also the
            generation limit.
        embedding_dim: token embedding size (shared by encoder and decoder).
        encoder_type: ``"gru"``, ``"lstm"``, ``"transformer"`` (mean-pooled), or ``"pretrained"``:
            a Hugging Face ``AutoModel`` (``encoder_name_or_path``) pooled by ``encoder_pooling``.
        encoder_hidden_size: RNN hidden size, or Transformer model width.
        encoder_num_layers: stacked layers in the encoder.
        encoder_bidirectional: read the sequence both ways (RNN encoders only).
        latent_dim: size of ``z``; 0 builds no encoder: a plain autoregressive language model
            of the same decoder (the baseline a VAE's likelihood is compared with).
        decoder_type: ``"gru"``, ``"lstm"``, ``"transformer"`` (causal), or ``"pretrained"``: a
            Hugging Face ``AutoModelForCausalLM`` (``decoder_name_or_path``) reading ``z`` as one
            extra key/value in every layer and as an offset on every token embedding (Optimus,
            Li et al. 2020).
        decoder_hidden_size: RNN hidden size, or Transformer model width.
        decoder_num_layers: stacked layers in the decoder.
        num_attention_heads: heads of the Transformer encoder / decoder.
        transformer_ffn_dim: feed-forward width of Transformer layers.
        dropout: dropout between layers and on embeddings.
        property_names: properties the model is conditioned on (empty: an unconditional VAE).
        property_units: unit of each property (``""`` when it has none).
        property_means, property_stds: normalisation statistics of the training set; the
            model reads ``(value - mean) / std``.
        property_min, property_max: training range of each property (targets outside it are
            extrapolation, and the pipeline warns).
        property_labels: for each property, its labels when it is categorical (a text
            attribute such as a sentiment: ``["negative", "positive"]``), ``[]`` when numeric.
            A categorical value is stored as the index of its label and read as a one-hot vector.
        property_rules: for each property, how to compute it from a generated sequence when
            it is not a built-in molecular property: ``"words"`` (word count), ``"contains:TOKEN"``
            (``yes`` / ``no``), or ``""`` (a data column that cannot be computed).
        property_head_hidden_size: width of the MLP predicting the numeric properties from
            ``z`` (0: no property head).
        encoder_name_or_path, decoder_name_or_path: the pretrained backbone: a Hub id, a local
            folder, or (decoder) a seqvae run folder whose decoder is one (e.g. a language model
            trained with ``latent_dim: 0``). Its tokenizer becomes the run's tokenizer.
        encoder_backbone, decoder_backbone: the backbone's Hugging Face config as a dict. Recorded
            when the model is first built, so a saved run rebuilds it offline; given in a recipe
            without a name, a Hugging Face architecture trained from scratch (e.g.
            ``{model_type: gpt2, n_layer: 4, n_embd: 256, n_head: 4}``) on the corpus tokenizer.
        encoder_pooling: ``"mean"`` over real tokens, or ``"cls"`` (the first token's state).
        backbone_training: ``"full"`` (every weight trains), ``"freeze"`` (the backbones' layers
            stay fixed; token embeddings, latent maps and heads train) or ``"lora"`` (low-rank
            adapters of rank ``lora_rank`` on every linear layer, through ``peft``).
    """

    model_type = "seqvae"

    def __init__(
        self,
        vocab_size: int = 32,
        representation: str = "smiles",
        max_sequence_length: int = 128,
        embedding_dim: int = 64,
        encoder_type: str = "gru",
        encoder_hidden_size: int = 256,
        encoder_num_layers: int = 1,
        encoder_bidirectional: bool = True,
        latent_dim: int = 64,
        decoder_type: str = "gru",
        decoder_hidden_size: int = 512,
        decoder_num_layers: int = 1,
        num_attention_heads: int = 4,
        transformer_ffn_dim: int = 512,
        dropout: float = 0.0,
        pad_token_id: int = 0,
        bos_token_id: int = 1,
        eos_token_id: int = 2,
        unk_token_id: int = 3,
        property_names: list[str] | None = None,
        property_units: list[str] | None = None,
        property_means: list[float] | None = None,
        property_stds: list[float] | None = None,
        property_min: list[float] | None = None,
        property_max: list[float] | None = None,
        property_labels: list[list[str]] | None = None,
        property_rules: list[str] | None = None,
        property_head_hidden_size: int = 0,
        encoder_name_or_path: str = "",
        decoder_name_or_path: str = "",
        encoder_backbone: dict | None = None,
        decoder_backbone: dict | None = None,
        encoder_pooling: str = "mean",
        backbone_training: str = "full",
        lora_rank: int = 8,
        **kwargs,
    ):
        _check_choice("encoder_type", encoder_type, ENCODER_TYPES)
        _check_choice("decoder_type", decoder_type, DECODER_TYPES)
        _check_choice("encoder_pooling", encoder_pooling, ENCODER_POOLING)
        _check_choice("backbone_training", backbone_training, BACKBONE_TRAINING)
        for side, kind, name, backbone in [
            ("encoder", encoder_type, encoder_name_or_path, encoder_backbone),
            ("decoder", decoder_type, decoder_name_or_path, decoder_backbone),
        ]:
            if kind == "pretrained" and not (name or backbone):
                raise ValueError(
                    f"{side}_type 'pretrained' needs {side}_name_or_path (a Hub id or folder) or "
                    f"{side}_backbone (a Hugging Face config to train from scratch)"
                )
            if backbone is not None and not (isinstance(backbone, dict) and backbone.get("model_type")):
                raise ValueError(f"{side}_backbone must be a Hugging Face config as a dict with a model_type, got {backbone!r}")
        _check_choice("representation", representation, REPRESENTATIONS)
        for name, value in [
            ("vocab_size", vocab_size),
            ("max_sequence_length", max_sequence_length),
            ("embedding_dim", embedding_dim),
            ("encoder_hidden_size", encoder_hidden_size),
            ("encoder_num_layers", encoder_num_layers),
            ("decoder_hidden_size", decoder_hidden_size),
            ("decoder_num_layers", decoder_num_layers),
            ("num_attention_heads", num_attention_heads),
            ("transformer_ffn_dim", transformer_ffn_dim),
            ("lora_rank", lora_rank),
        ]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(latent_dim, int) or latent_dim < 0:
            raise ValueError(f"latent_dim must be an integer >= 0 (0: a language model without latent), got {latent_dim!r}")
        if latent_dim == 0 and property_head_hidden_size:
            raise ValueError("a property head reads z: it needs latent_dim > 0 (or property_head_hidden_size 0)")
        property_names = list(property_names or [])
        count = len(property_names)
        stats = {
            "property_units": list(property_units) if property_units is not None else [""] * count,
            "property_means": list(property_means) if property_means is not None else [0.0] * count,
            "property_stds": list(property_stds) if property_stds is not None else [1.0] * count,
            "property_min": list(property_min) if property_min is not None else [float("-inf")] * count,
            "property_max": list(property_max) if property_max is not None else [float("inf")] * count,
            "property_labels": [list(labels) for labels in property_labels] if property_labels is not None else [[] for _ in range(count)],
            "property_rules": list(property_rules) if property_rules is not None else [""] * count,
        }
        for name, values in stats.items():
            if len(values) != count:
                raise ValueError(f"{name} has {len(values)} entries for {count} property_names")
        if any(len(labels) == 1 for labels in stats["property_labels"]):
            raise ValueError(f"a categorical property needs at least 2 labels, got {stats['property_labels']}")
        if any(not std > 0 for std in stats["property_stds"]):
            raise ValueError(f"property_stds must be > 0, got {stats['property_stds']}")
        if not isinstance(property_head_hidden_size, int) or property_head_hidden_size < 0:
            raise ValueError(f"property_head_hidden_size must be an integer >= 0, got {property_head_hidden_size!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        for name, width in [("encoder", encoder_hidden_size), ("decoder", decoder_hidden_size)]:
            kind = encoder_type if name == "encoder" else decoder_type
            if kind == "transformer" and width % num_attention_heads:  # a pretrained one has its own
                raise ValueError(
                    f"{name}_hidden_size ({width}) must be divisible by num_attention_heads "
                    f"({num_attention_heads}) for a transformer {name}"
                )
        self.vocab_size = vocab_size
        self.representation = representation
        self.max_sequence_length = max_sequence_length
        self.embedding_dim = embedding_dim
        self.encoder_type = encoder_type
        self.encoder_hidden_size = encoder_hidden_size
        self.encoder_num_layers = encoder_num_layers
        self.encoder_bidirectional = encoder_bidirectional
        self.latent_dim = latent_dim
        self.decoder_type = decoder_type
        self.decoder_hidden_size = decoder_hidden_size
        self.decoder_num_layers = decoder_num_layers
        self.num_attention_heads = num_attention_heads
        self.transformer_ffn_dim = transformer_ffn_dim
        self.dropout = dropout
        self.unk_token_id = unk_token_id
        self.property_names = property_names
        for name, values in stats.items():
            setattr(self, name, values)
        self.property_head_hidden_size = property_head_hidden_size
        self.encoder_name_or_path = encoder_name_or_path
        self.decoder_name_or_path = decoder_name_or_path
        self.encoder_backbone = encoder_backbone
        self.decoder_backbone = decoder_backbone
        self.encoder_pooling = encoder_pooling
        self.backbone_training = backbone_training
        self.lora_rank = lora_rank
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            **kwargs,
        )


    @property
    def num_properties(self) -> int:
        return len(self.property_names)

    @property
    def condition_size(self) -> int:
        """Width of the condition vector: per property a normalised value (numeric) or a one-hot
        label (categorical), and a given/not-given flag each."""
        return sum(len(labels) or 1 for labels in self.property_labels) + self.num_properties

    def describe(self, side: str) -> str:
        """``"lstm"``, or for a Hugging Face backbone where it came from: ``"gpt2 (pretrained)"``,
        ``"gpt2 architecture"`` (trained from scratch)."""
        kind = getattr(self, f"{side}_type")
        if kind != "pretrained":
            return kind
        name = getattr(self, f"{side}_name_or_path")
        return f"{name} (pretrained)" if name else f"{getattr(self, f'{side}_backbone')['model_type']} architecture"

    def labels_of(self, name: str) -> list[str]:
        """A property's labels (``[]``: it is numeric)."""
        return self.property_labels[self.property_names.index(name)]

    def is_categorical(self, name: str) -> bool:
        return bool(self.labels_of(name))


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(allowed)}")
