"""Configuration of a sequence VAE: everything needed to rebuild the model from ``config.json``."""

from __future__ import annotations

from transformers import PretrainedConfig

__all__ = ["SeqVAEConfig", "ENCODER_TYPES", "DECODER_TYPES", "REPRESENTATIONS"]

ENCODER_TYPES = ("gru", "lstm", "transformer")
DECODER_TYPES = ("gru", "lstm", "transformer")
REPRESENTATIONS = ("smiles", "selfies", "text")


class SeqVAEConfig(PretrainedConfig):
    """Architecture of a :class:`~seqvae.modeling.SeqVAE`.

    Args:
        vocab_size: number of tokens, specials included.
        representation: what the tokens spell: ``"smiles"``, ``"selfies"`` or ``"text"``.
        max_sequence_length: longest sequence in tokens, ``<bos>``/``<eos>`` included; also the
            generation limit.
        embedding_dim: token embedding size (shared by encoder and decoder).
        encoder_type: ``"gru"``, ``"lstm"`` or ``"transformer"`` (mean-pooled).
        encoder_hidden_size: RNN hidden size, or Transformer model width.
        encoder_num_layers: stacked layers in the encoder.
        encoder_bidirectional: read the sequence both ways (RNN encoders only).
        latent_dim: size of ``z``.
        decoder_type: ``"gru"``, ``"lstm"`` or ``"transformer"`` (causal).
        decoder_hidden_size: RNN hidden size, or Transformer model width.
        decoder_num_layers: stacked layers in the decoder.
        num_attention_heads: heads of the Transformer encoder / decoder.
        transformer_ffn_dim: feed-forward width of Transformer layers.
        dropout: dropout between layers and on embeddings.
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
        **kwargs,
    ):
        _check_choice("encoder_type", encoder_type, ENCODER_TYPES)
        _check_choice("decoder_type", decoder_type, DECODER_TYPES)
        _check_choice("representation", representation, REPRESENTATIONS)
        for name, value in [
            ("vocab_size", vocab_size),
            ("max_sequence_length", max_sequence_length),
            ("embedding_dim", embedding_dim),
            ("encoder_hidden_size", encoder_hidden_size),
            ("encoder_num_layers", encoder_num_layers),
            ("latent_dim", latent_dim),
            ("decoder_hidden_size", decoder_hidden_size),
            ("decoder_num_layers", decoder_num_layers),
            ("num_attention_heads", num_attention_heads),
            ("transformer_ffn_dim", transformer_ffn_dim),
        ]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        for name, width in [("encoder", encoder_hidden_size), ("decoder", decoder_hidden_size)]:
            kind = encoder_type if name == "encoder" else decoder_type
            if kind == "transformer" and width % num_attention_heads:
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
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            **kwargs,
        )


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(allowed)}")
