"""The sequence VAE, readable top to bottom.

    input_ids ─► embedding ─► encoder (GRU / LSTM / Transformer) ─► posterior head ─► mu, logvar
                                                                                        │
                                               z = mu + sigma * eps  ◄──────────────────┘
                                                │
    <bos> x1 .. xT-1 ─► embedding ─► decoder(z, c) ─► logits over x1 .. xT (<eos> included)

Conditional VAE (Lim et al. 2018), when the config names properties: the condition vector ``c``
holds each property's normalised value and a flag saying whether it is given. ``c`` joins the
encoder summary before the posterior head (q(z|x,c)) and joins ``z`` wherever the decoder reads
it (p(x|z,c)). Properties left out have value 0 and flag 0, so one model serves any subset of
conditions, including none; training hides properties at random to teach it that.

Property head (optional, Gomez-Bombarelli et al. 2018): an MLP predicting the normalised
properties from ``z``, trained jointly; it ranks candidates and steers latent optimisation.
It learns only from examples encoded with *no* condition: there ``z`` must carry the
properties itself, while with conditions given the KL term is free to move them out of ``z``
into ``c`` (so a prior ``z`` does not argue with the target). Ranking and optimisation
therefore encode without conditions too.

How ``z`` reaches the decoder:

* RNN decoders: ``z`` sets the initial hidden state (through a linear map) and is concatenated to
  the token embedding at every step, so the decoder cannot forget it over long sequences.
* Transformer decoder: ``z`` is projected to one prefix position that every token attends to,
  and also added to every token embedding (an offset), as in Optimus-style latent injection.
* Pretrained decoder (any Hugging Face causal LM, Optimus: Li et al. 2020): ``z`` is projected to
  one key and one value in every attention layer, handed to the model as the cache of an
  already-read "memory" token, and added to every token embedding.

Pretrained encoders and decoders read their own token embeddings (the run's tokenizer is the
backbone's); the others share one embedding table. Loading backbones and choosing which of their
weights train belongs to :mod:`seqvae.backbones`.

The model computes the plain ELBO pieces (reconstruction, KL per dimension, the property
head's error). The training objective that weights them (KL schedules, free bits, MMD, word
dropout, condition hiding) is composed once, in :mod:`seqvae.objectives`.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import DynamicCache, PreTrainedModel
from transformers.utils import ModelOutput

from .backbones import build_backbone, check_backbone_fits, is_seqvae_run, load_backbone, set_backbone_training
from .configuration import SeqVAEConfig
from .errors import SeqVAEError

__all__ = ["SeqVAE", "SeqVAEOutput", "eval_mode", "target_token_nll", "gaussian_kl_per_dim"]


@dataclass
class SeqVAEOutput(ModelOutput):
    """What :meth:`SeqVAE.forward` returns.

    Attributes:
        loss: ``recon_loss + kl`` (+ ``property_loss``): the negative ELBO per sequence, unweighted.
        recon_loss: reconstruction NLL summed over tokens, averaged over sequences.
        recon_loss_per_token: the same NLL averaged over all target tokens.
        kl: KL(q(z|x) || N(0, I)) summed over dimensions, averaged over sequences.
        kl_per_dim: ``[latent_dim]`` KL of each dimension, averaged over sequences.
        mu, logvar: ``[B, latent_dim]`` posterior parameters.
        z: ``[B, latent_dim]`` the latent the decoder read.
        logits: ``[B, T-1, vocab_size]`` next-token scores for positions 1..T-1.
        num_target_tokens: number of non-padding target tokens in the batch.
        property_loss: mean squared error of the property head (normalised units) over the
            examples encoded without conditions (zero when there are none).
        predicted_properties: ``[B, num_properties]`` the head's predictions (property units).
        condition: ``[B, condition_size]`` the condition vector the model read (conditional
            models; all zero for rows trained without conditions).
    """

    loss: torch.Tensor | None = None
    recon_loss: torch.Tensor | None = None
    recon_loss_per_token: torch.Tensor | None = None
    kl: torch.Tensor | None = None
    kl_per_dim: torch.Tensor | None = None
    mu: torch.Tensor | None = None
    logvar: torch.Tensor | None = None
    z: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    num_target_tokens: torch.Tensor | None = None
    property_loss: torch.Tensor | None = None
    predicted_properties: torch.Tensor | None = None
    condition: torch.Tensor | None = None


# ----------------------------------------------------------------------------------- encoders


class RNNEncoder(nn.Module):
    """GRU or LSTM over the embedded sequence; returns the final hidden state at the last real token.

    Bidirectional encoders run a second stack over each sequence reversed within its own length
    (padding stays at the end), and concatenate both summaries. This avoids packed sequences,
    whose backward pass is about twice as slow on CPU; batches are grouped by length, so little
    work is spent on padding.
    """

    def __init__(self, config: SeqVAEConfig):
        super().__init__()
        rnn_class = nn.GRU if config.encoder_type == "gru" else nn.LSTM

        def stack():
            return rnn_class(
                config.embedding_dim,
                config.encoder_hidden_size,
                num_layers=config.encoder_num_layers,
                dropout=config.dropout if config.encoder_num_layers > 1 else 0.0,
                batch_first=True,
            )

        self.forward_rnn = stack()
        self.backward_rnn = stack() if config.encoder_bidirectional else None
        directions = 2 if config.encoder_bidirectional else 1
        self.output_size = config.encoder_hidden_size * directions

    def forward(self, embedded: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[B, T, E]`` embeddings, ``[B, T]`` mask -> ``[B, output_size]`` summary."""
        lengths = attention_mask.sum(dim=1).clamp(min=1)
        last = (lengths - 1).view(-1, 1, 1)
        summaries = [self._final_output(self.forward_rnn, embedded, last)]
        if self.backward_rnn is not None:
            summaries.append(self._final_output(self.backward_rnn, _reverse_within_length(embedded, lengths), last))
        return torch.cat(summaries, dim=-1)

    @staticmethod
    def _final_output(rnn: nn.Module, embedded: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        outputs, _ = rnn(embedded)  # [B, T, H]; the output at the last real token is its summary
        return outputs.gather(1, last.expand(-1, 1, outputs.size(-1))).squeeze(1)


def _reverse_within_length(embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's first ``length`` positions, leaving its padding in place."""
    positions = torch.arange(embedded.size(1), device=embedded.device).unsqueeze(0)
    reversed_positions = lengths.unsqueeze(1) - 1 - positions
    index = torch.where(reversed_positions >= 0, reversed_positions, positions)
    return embedded.gather(1, index.unsqueeze(-1).expand(-1, -1, embedded.size(-1)))


def transformer_stack(config: SeqVAEConfig, width: int, num_layers: int) -> nn.TransformerEncoder:
    """Pre-norm self-attention layers; causality is decided by the mask passed at call time."""
    layer = nn.TransformerEncoderLayer(
        width,
        config.num_attention_heads,
        config.transformer_ffn_dim,
        dropout=config.dropout,
        batch_first=True,
        norm_first=True,
    )
    return nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)


class TransformerEncoder(nn.Module):
    """Transformer layers over embeddings + learned positions, mean-pooled over real tokens."""

    def __init__(self, config: SeqVAEConfig):
        super().__init__()
        width = config.encoder_hidden_size
        self.input_projection = nn.Linear(config.embedding_dim, width)
        self.positions = nn.Embedding(config.max_sequence_length, width)
        self.layers = transformer_stack(config, width, config.encoder_num_layers)
        self.output_size = width

    def forward(self, embedded: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(embedded.size(1), device=embedded.device)
        hidden = self.input_projection(embedded) + self.positions(positions)
        hidden = self.layers(hidden, src_key_padding_mask=attention_mask == 0)
        return masked_mean(hidden, attention_mask)


class PretrainedEncoder(nn.Module):
    """A Hugging Face encoder (BERT, RoBERTa, ... any ``AutoModel``) over the run's token ids,
    mean-pooled over real tokens or read at the first token (``encoder_pooling: cls``)."""

    def __init__(self, config: SeqVAEConfig):
        super().__init__()
        self.backbone = build_backbone("encoder", config.encoder_backbone)
        check_backbone_fits("encoder", self.backbone, config.max_sequence_length, config.encoder_pooling)
        self.pooling = config.encoder_pooling
        self.output_size = self.backbone.config.get_text_config().hidden_size

    def start_from(self, pretrained: nn.Module) -> None:
        self.backbone.load_state_dict(pretrained.state_dict())

    def forward(self, embedded: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(inputs_embeds=embedded, attention_mask=attention_mask).last_hidden_state
        return hidden[:, 0] if self.pooling == "cls" else masked_mean(hidden, attention_mask)


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``[B, T, H]`` states averaged over the real tokens of ``[B, T]`` ``attention_mask``."""
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


# ----------------------------------------------------------------------------------- decoders


class RNNDecoder(nn.Module):
    """GRU or LSTM reading ``[token embedding; z]`` at each step, started from ``z``.

    Here and in the Transformer decoder, ``z`` stands for the latent code ``[z; c]`` when the
    model is conditional. The recurrent state is the decoder state carried between
    generation steps.
    """

    def __init__(self, config: SeqVAEConfig):
        super().__init__()
        self.is_lstm = config.decoder_type == "lstm"
        self.num_layers = config.decoder_num_layers
        self.hidden_size = config.decoder_hidden_size
        rnn_class = nn.LSTM if self.is_lstm else nn.GRU
        code_size = config.latent_dim + config.condition_size
        self.rnn = rnn_class(
            config.embedding_dim + code_size,
            config.decoder_hidden_size,
            num_layers=config.decoder_num_layers,
            dropout=config.dropout if config.decoder_num_layers > 1 else 0.0,
            batch_first=True,
        )
        states_per_layer = 2 if self.is_lstm else 1
        self.latent_to_state = nn.Linear(
            code_size, config.decoder_hidden_size * config.decoder_num_layers * states_per_layer
        )
        self.output = nn.Linear(config.decoder_hidden_size, config.vocab_size)

    def initial_state(self, z: torch.Tensor):
        """``[B, latent_dim]`` -> recurrent state ``[layers, B, H]`` (a pair for LSTM)."""
        state = torch.tanh(self.latent_to_state(z))
        state = state.view(z.size(0), -1, self.hidden_size).transpose(0, 1).contiguous()
        if self.is_lstm:
            hidden, cell = state.chunk(2, dim=0)
            return hidden.contiguous(), cell.contiguous()
        return state

    def forward(self, embedded: torch.Tensor, z: torch.Tensor, state=None):
        """``[B, T, E]`` embeddings -> (``[B, T, V]`` logits, state after the last step)."""
        if state is None:
            state = self.initial_state(z)
        latent = z.unsqueeze(1).expand(-1, embedded.size(1), -1)
        hidden, state = self.rnn(torch.cat([embedded, latent], dim=-1), state)
        return self.output(hidden), state

    # Rows of a recurrent state are independent: generation may drop finished rows and append
    # new ones at any step.
    rows_can_join = True

    @staticmethod
    def select_rows(state, index: torch.Tensor):
        """The state of rows ``index`` (batch axis 1: ``[layers, B, H]``, or a pair for LSTM)."""
        if isinstance(state, tuple):
            return tuple(part[:, index] for part in state)
        return state[:, index]

    @staticmethod
    def join_rows(first, second):
        """Two states' rows in one batch."""
        if isinstance(first, tuple):
            return tuple(torch.cat(parts, dim=1) for parts in zip(first, second))
        return torch.cat([first, second], dim=1)


class TransformerDecoder(nn.Module):
    """Causal Transformer over ``[z prefix, tokens]``, with ``z`` also added to every embedding.

    The decoder state between generation steps is the embedded prefix read so far.
    """

    def __init__(self, config: SeqVAEConfig):
        super().__init__()
        width = config.decoder_hidden_size
        self.input_projection = nn.Linear(config.embedding_dim, width)
        self.positions = nn.Embedding(config.max_sequence_length + 1, width)  # +1 for the z prefix
        code_size = config.latent_dim + config.condition_size
        self.latent_prefix = nn.Linear(code_size, width)
        self.latent_offset = nn.Linear(code_size, width)
        self.layers = transformer_stack(config, width, config.decoder_num_layers)
        self.final_norm = nn.LayerNorm(width)
        self.output = nn.Linear(width, config.vocab_size)

    def initial_state(self, z: torch.Tensor) -> torch.Tensor:
        return self.latent_prefix(z).unsqueeze(1)  # [B, 1, width]

    def forward(self, embedded: torch.Tensor, z: torch.Tensor, state=None):
        if state is None:
            state = self.initial_state(z)
        tokens = self.input_projection(embedded) + self.latent_offset(z).unsqueeze(1)
        sequence = torch.cat([state, tokens], dim=1)
        length = sequence.size(1)
        hidden = sequence + self.positions(torch.arange(length, device=sequence.device))
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=sequence.device)
        hidden = self.layers(hidden, mask=causal, is_causal=True)
        logits = self.output(self.final_norm(hidden[:, -embedded.size(1) :]))
        return logits, sequence

    # The state is the prefix read so far, one length for the whole batch: a row that starts late
    # cannot join rows that are mid-way.
    rows_can_join = False

    @staticmethod
    def select_rows(state: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The prefixes of rows ``index`` (``[B, L, width]``, batch axis 0)."""
        return state[index]


class PretrainedDecoder(nn.Module):
    """A Hugging Face causal LM reading ``z`` as a memory token and an embedding offset.

    The memory is one key and one value per layer (per key/value head), put in the model's own
    cache before the first token, so every position attends to it through the model's unchanged
    attention; positions are counted from the first real token, as the LM was trained. The
    decoder state between generation steps is that cache.
    """

    def __init__(self, config: SeqVAEConfig):
        super().__init__()
        self.backbone = build_backbone("decoder", config.decoder_backbone)
        check_backbone_fits("decoder", self.backbone, config.max_sequence_length)
        text = self.backbone.config.get_text_config()
        heads = text.num_attention_heads
        self.num_layers = text.num_hidden_layers
        self.memory_shape = (
            self.num_layers,
            2,  # key, value
            getattr(text, "num_key_value_heads", None) or heads,
            1,  # one memory position
            getattr(text, "head_dim", None) or text.hidden_size // heads,
        )
        code_size = config.latent_dim + config.condition_size
        self.latent_memory = nn.Linear(code_size, math.prod(self.memory_shape))
        self.latent_offset = nn.Linear(code_size, self.backbone.get_input_embeddings().embedding_dim)
        # transformers 5 names the cache argument ``cache``; earlier versions ``past_key_values``
        parameters = inspect.signature(self.backbone.forward).parameters
        self.cache_argument = "cache" if "cache" in parameters else "past_key_values"

    def start_from(self, pretrained: nn.Module) -> None:
        """The weights of a pretrained LM, or of a seqvae LM run's decoder: then also its learned
        memory and offset (the biases of the maps from z), with the maps' weights at zero, so the
        VAE starts as exactly that LM and learns how z moves it."""
        if isinstance(pretrained, PretrainedDecoder):
            for name in ("latent_memory", "latent_offset"):
                mine, theirs = getattr(self, name), getattr(pretrained, name)
                with torch.no_grad():
                    mine.bias.copy_(theirs.bias)
                    mine.weight.zero_()
            pretrained = _unwrapped(pretrained.backbone)
        self.backbone.load_state_dict(pretrained.state_dict())

    def initial_state(self, z: torch.Tensor) -> DynamicCache:
        memory = self.latent_memory(z).view(z.size(0), *self.memory_shape)
        cache = DynamicCache(config=self.backbone.config)
        for layer in range(self.num_layers):
            cache.update(memory[:, layer, 0], memory[:, layer, 1], layer)
        return cache

    def forward(self, embedded: torch.Tensor, z: torch.Tensor, state=None):
        if state is None:
            state = self.initial_state(z)
        batch, length = embedded.shape[:2]
        read = state.get_seq_length()  # the memory and the tokens read so far
        positions = torch.arange(read - 1, read - 1 + length, device=embedded.device).expand(batch, -1)
        output = self.backbone(
            inputs_embeds=embedded + self.latent_offset(z).unsqueeze(1),
            attention_mask=torch.ones(batch, read + length, dtype=torch.long, device=embedded.device),
            position_ids=positions,
            use_cache=True,
            **{self.cache_argument: state},
        )
        return output.logits, state

    # One cache length for the whole batch, as for the Transformer decoder.
    rows_can_join = False

    @staticmethod
    def select_rows(state: DynamicCache, index: torch.Tensor) -> DynamicCache:
        """The cache of rows ``index`` (in place: callers replace the state they pass)."""
        state.batch_select_indices(index)
        return state


ENCODERS = {"gru": RNNEncoder, "lstm": RNNEncoder, "transformer": TransformerEncoder, "pretrained": PretrainedEncoder}
DECODERS = {"gru": RNNDecoder, "lstm": RNNDecoder, "transformer": TransformerDecoder, "pretrained": PretrainedDecoder}


# -------------------------------------------------------------------------------------- model


class SeqVAE(PreTrainedModel):
    """Sequence VAE with a Gaussian latent; see the module docstring for the data flow."""

    config_class = SeqVAEConfig
    base_model_prefix = "seqvae"
    main_input_name = "input_ids"

    def __init__(self, config: SeqVAEConfig):
        super().__init__(config)
        pretrained = _load_named_backbones(config)  # first build only; records their configs
        self.embedding = None  # shared by the sides that are not pretrained
        if config.decoder_type != "pretrained" or (config.latent_dim and config.encoder_type != "pretrained"):
            self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.encoder = self.posterior = None  # latent_dim 0: a language model, nothing to encode
        if config.latent_dim:
            self.encoder = ENCODERS[config.encoder_type](config)
            self.posterior = nn.Linear(self.encoder.output_size + config.condition_size, 2 * config.latent_dim)
        with warnings.catch_warnings():
            # latent_dim 0 (a language model): the maps from z have no inputs, only their biases
            # remain (a learned start state), and torch warns that it cannot initialise the rest.
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            self.decoder = DECODERS[config.decoder_type](config)
        self.property_head = None
        if config.property_head_hidden_size and config.num_properties:
            self.property_head = nn.Sequential(
                nn.Linear(config.latent_dim, config.property_head_hidden_size),
                nn.GELU(),
                nn.Linear(config.property_head_hidden_size, config.num_properties),
            )
        self.post_init()
        for side, weights in pretrained.items():
            getattr(self, side).start_from(weights)
        for side in (self.encoder, self.decoder):
            if isinstance(side, (PretrainedEncoder, PretrainedDecoder)):
                side.backbone = set_backbone_training(side.backbone, config.backbone_training, config.lora_rank)

    def _init_weights(self, module: nn.Module) -> None:
        # PyTorch's default initialisation suits RNNs and small Transformers; keep it.
        return

    def _embedding_of(self, side: nn.Module) -> nn.Module:
        """The token embedding ``side`` reads: a backbone's own, or the shared table."""
        if isinstance(side, (PretrainedEncoder, PretrainedDecoder)):
            return side.backbone.get_input_embeddings()
        return self.embedding

    # --- conditions

    def property_scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(means, stds)`` of the training properties, read from the config (the one source)."""
        as_tensor = lambda values: torch.tensor(values, dtype=torch.float32, device=self.device)  # noqa: E731
        return as_tensor(self.config.property_means), as_tensor(self.config.property_stds)

    def condition_vector(self, properties: torch.Tensor | None, batch_size: int) -> torch.Tensor | None:
        """``[B, num_properties]`` values in property units (NaN: not given) -> ``[B, 2P]``.

        ``None`` for an unconditional model; all-zero (nothing given) when ``properties`` is
        ``None``.
        """
        if not self.config.num_properties:
            return None
        if properties is None:
            return torch.zeros(batch_size, self.config.condition_size, device=self.device)
        properties = properties.to(self.device, torch.float32)
        means, stds = self.property_scale()
        given = ~torch.isnan(properties)
        normalised = torch.where(given, (properties - means) / stds, 0.0)
        columns = []  # numeric: the normalised value; categorical: the label one-hot (all 0 when not given)
        for index, labels in enumerate(self.config.property_labels):
            value = normalised[:, index : index + 1]
            if labels:
                value = F.one_hot(value.squeeze(1).long().clamp(0, len(labels) - 1), len(labels)) * given[:, index : index + 1]
            columns.append(value.float())
        return torch.cat([*columns, given.float()], dim=-1)

    def numeric_properties(self) -> torch.Tensor:
        """``[num_properties]`` bool: which properties are numbers (the head predicts those)."""
        return torch.tensor([not labels for labels in self.config.property_labels], device=self.device)

    def predict_properties(self, z: torch.Tensor) -> torch.Tensor:
        """The property head's prediction for ``[B, latent_dim]`` latents, in property units."""
        if self.property_head is None:
            raise ValueError("this model has no property head (property_head_hidden_size=0)")
        means, stds = self.property_scale()
        return self.property_head(z) * stds + means

    def property_head_loss(
        self, z: torch.Tensor, properties: torch.Tensor, rows: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean squared error (normalised units) of the head on ``z`` over the known numeric
        values of ``rows`` (default: all), and the detached predictions in property units."""
        means, stds = self.property_scale()
        predicted = self.property_head(z)
        targets = (properties.to(predicted) - means) / stds
        known = ~torch.isnan(targets) & self.numeric_properties()
        if rows is not None:
            known &= rows.unsqueeze(1)
        loss = F.mse_loss(predicted[known], targets[known]) if known.any() else predicted.sum() * 0
        return loss, predicted.detach() * stds + means

    def _latent_code(self, z: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        if not self.config.num_properties:
            return z
        if condition is None:
            condition = z.new_zeros(z.size(0), self.config.condition_size)
        return torch.cat([z, condition], dim=-1)

    # --- encoding

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, T]`` token ids (and condition vector) -> posterior ``mu, logvar``, each ``[B, latent_dim]``."""
        if self.encoder is None:
            empty = torch.zeros(input_ids.size(0), 0, device=input_ids.device)
            return empty, empty
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_token_id).long()
        embedded = self.embedding_dropout(self._embedding_of(self.encoder)(input_ids))
        summary = self._latent_code(self.encoder(embedded, attention_mask), condition)
        mu, logvar = self.posterior(summary).chunk(2, dim=-1)
        return mu, logvar

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """``z = mu + noise * exp(logvar / 2)``: a differentiable draw of ``N(mu, exp(logvar))``.

        ``noise`` (standard normal, broadcastable to ``mu``) is drawn when not given; callers
        pass their own for seeded or repeated draws.
        """
        if noise is None:
            noise = torch.randn_like(mu)
        return mu + noise * torch.exp(0.5 * logvar)

    # --- decoding

    def initial_decoder_state(self, z: torch.Tensor, condition: torch.Tensor | None = None):
        """The decoder state before any token is read (used by step-by-step generation)."""
        return self.decoder.initial_state(self._latent_code(z, condition))

    def decode_logits(
        self,
        decoder_input_ids: torch.Tensor,
        z: torch.Tensor,
        state=None,
        condition: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, object]:
        """Teacher-forced (or one-step) decoding.

        Args:
            decoder_input_ids: ``[B, T]`` tokens read by the decoder (``<bos>`` first).
            z: ``[B, latent_dim]``.
            state: decoder state to continue from; ``None`` starts from ``z``.
            condition: ``[B, condition_size]`` from :meth:`condition_vector` (conditional models).

        Returns:
            ``[B, T, vocab_size]`` logits and the state after the last token.
        """
        embedded = self.embedding_dropout(self._embedding_of(self.decoder)(decoder_input_ids))
        return self.decoder(embedded, self._latent_code(z, condition), state)

    # --- the ELBO

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        use_posterior_mean: bool = False,
        properties: torch.Tensor | None = None,
        condition_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> SeqVAEOutput:
        """Encode, sample ``z``, reconstruct, and return the ELBO's terms.

        ``loss`` is the unweighted sum of the terms (the negative ELBO per sequence, plus the
        property head's error): what a plain VAE minimises. seqvae's training objective weights
        the terms (KL schedule, free bits, MMD, loss reduction) in :func:`seqvae.objectives.vae_loss`,
        the one place they are composed.

        Args:
            input_ids: ``[B, T]`` ``<bos> tokens <eos>`` padded with ``pad_token_id``.
            attention_mask: ``[B, T]`` 1 for real tokens; derived from padding when omitted.
            decoder_input_ids: ``[B, T-1]`` what the decoder reads; defaults to
                ``input_ids[:, :-1]`` (word dropout passes a corrupted copy).
            use_posterior_mean: decode from ``mu`` instead of a sample.
            properties: ``[B, num_properties]`` true values in property units (NaN: unknown),
                the property head's targets and the conditions.
            condition_mask: ``[B, num_properties]`` bool, which known properties to condition
                on (default: all); the trainer hides some, or all, at random.
        """
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_token_id).long()
        conditions = properties
        if properties is not None and condition_mask is not None:
            conditions = properties.masked_fill(~condition_mask.bool(), float("nan"))
        condition = self.condition_vector(conditions, input_ids.size(0))
        unconditioned = None if conditions is None else torch.isnan(conditions).all(dim=1)
        mu, logvar = self.encode(input_ids, attention_mask, condition)
        z = mu if use_posterior_mean else self.reparameterize(mu, logvar)
        if decoder_input_ids is None:
            decoder_input_ids = input_ids[:, :-1]
        logits, _ = self.decode_logits(decoder_input_ids, z, condition=condition)

        token_nll = target_token_nll(logits, input_ids, attention_mask)
        num_target_tokens = attention_mask[:, 1:].sum()
        recon_loss = token_nll.sum(dim=1).mean()
        recon_loss_per_token = token_nll.sum() / num_target_tokens.clamp(min=1)

        kl_per_dim = gaussian_kl_per_dim(mu, logvar).mean(dim=0)
        kl = kl_per_dim.sum()
        loss = recon_loss + kl
        property_loss = predicted = None
        if self.property_head is not None and properties is not None:
            property_loss, predicted = self.property_head_loss(z, properties, rows=unconditioned)
            loss = loss + property_loss
        return SeqVAEOutput(
            loss=loss,
            recon_loss=recon_loss,
            recon_loss_per_token=recon_loss_per_token,
            kl=kl,
            kl_per_dim=kl_per_dim,
            mu=mu,
            logvar=logvar,
            z=z,
            logits=logits,
            num_target_tokens=num_target_tokens,
            property_loss=property_loss,
            predicted_properties=predicted,
            condition=condition,
        )


def _load_named_backbones(config: SeqVAEConfig) -> dict[str, nn.Module]:
    """``{"encoder" | "decoder": pretrained model}`` for the sides named by path whose config is not
    recorded yet (a model's first build); a side given as a config alone is sized to the run's
    vocabulary. Each is resized to the run's vocabulary (which adds
    the special tokens a backbone lacks), and its config is recorded in ``config`` so that the
    saved model rebuilds offline."""
    loaded = {}
    sides = [("decoder", config.decoder_type, config.decoder_name_or_path, "decoder_backbone")]
    if config.latent_dim:
        sides.append(("encoder", config.encoder_type, config.encoder_name_or_path, "encoder_backbone"))
    for side, kind, name, recorded in sides:
        if kind != "pretrained":
            continue
        if getattr(config, recorded) is not None:  # rebuilt, or an architecture from scratch
            setattr(config, recorded, {**getattr(config, recorded), **_run_vocabulary(config)})
            continue
        if side == "decoder" and is_seqvae_run(name):
            loaded[side] = _decoder_of_run(name)
            model = loaded[side].backbone = _unwrapped(loaded[side].backbone)
        else:
            model = loaded[side] = load_backbone(side, name)
        if model.get_input_embeddings().num_embeddings != config.vocab_size:
            model.resize_token_embeddings(config.vocab_size, mean_resizing=False)
        setattr(config, recorded, {**model.config.to_dict(), **_run_vocabulary(config)})
    return loaded


def _run_vocabulary(config: SeqVAEConfig) -> dict:
    """What a backbone's config takes from the run: its vocabulary size and special token ids. An
    output matrix tied to the input embeddings becomes a copy (the saved file then holds every
    tensor once under its own name, and loading needs no re-tying)."""
    return {
        "vocab_size": config.vocab_size,
        "pad_token_id": config.pad_token_id,
        "bos_token_id": config.bos_token_id,
        "eos_token_id": config.eos_token_id,
        "tie_word_embeddings": False,
    }


def _decoder_of_run(folder: str) -> "PretrainedDecoder":
    """The Hugging Face decoder of a seqvae run (e.g. a language model trained with latent_dim 0)."""
    run = SeqVAE.from_pretrained(folder, use_safetensors=True)
    if not isinstance(run.decoder, PretrainedDecoder):
        raise SeqVAEError(
            f"decoder_name_or_path {folder!r} is a seqvae run whose decoder is {run.config.decoder_type}, "
            "not a Hugging Face model; train it with decoder_type: pretrained"
        )
    return run.decoder


def _unwrapped(backbone: nn.Module) -> nn.Module:
    """A backbone with LoRA adapters merged into its weights (peft), or the backbone itself."""
    return backbone.merge_and_unload() if hasattr(backbone, "merge_and_unload") else backbone


def target_token_nll(logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``[B, T-1]`` NLL of each target token (``input_ids[:, 1:]``) under ``logits``; 0 at padding."""
    targets = input_ids[:, 1:].masked_fill(attention_mask[:, 1:] == 0, -100)
    return F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")


def gaussian_kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) for each sequence and dimension, ``[B, latent_dim]``."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Dropout off inside the block; the caller's training / eval mode is restored afterwards,
    also when the block raises."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
