"""The text domain: captions as word sequences, a GRU encoder and an LSTM decoder.

Conventions (what every other part of flowbridge may rely on):

* An item is a ``str``. :func:`~flowbridge_text.tokenizer.tokenize` lowercases it and splits
  words and punctuation marks; a word missing from the vocabulary becomes ``<unk>``.
* A batch is a LongTensor ``[batch, T]``: ``<bos> w_1 … w_n <eos> <pad> …`` with
  ``n <= max_length`` tokens (longer texts lose their tail tokens but keep the ``<eos>``, so
  the decoder always learns where a caption stops) and ``T`` the longest row (``n + 2``). An
  empty or blank string is ``<bos> <eos>``.
* The decoder's output is logits ``[batch, T-1, V]``; the reconstruction loss is the summed
  token negative log-likelihood of ``w_1 … w_n <eos>`` (``[batch]``, padding ignored).
* Generation returns strings; a generated ``<unk>`` shows as the text ``<unk>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange

from flowbridge.checks import check_positive_int, check_positive_number
from flowbridge.domain import Domain, LatentSpec

from ._checks import check_tokens
from .decoder import TextDecoder
from .encoder import TextEncoder
from .markdown import write_markdown
from .search import beam_search, check_search_options, greedy_search, sample_search
from .tokenizer import detokenize, tokenize
from .vocabulary import BOS, EOS, PAD, SPECIALS, Vocabulary, check_max_size

__all__ = ["NotFittedError", "TextDomain", "EXAMPLE_WORDS", "METHODS"]

# The vocabulary example_batch installs on a domain that has none, so the contract checks can
# build and run a fresh domain without training data.
EXAMPLE_WORDS = (
    "a", "the", "small", "large", "red", "green", "blue", "circle",
    "square", "triangle", "on", "left", "right", "top", "bottom", ".",
)  # fmt: skip

#: The decoding methods :meth:`TextDomain.generate` accepts (see :mod:`flowbridge_text.search`).
METHODS = ("greedy", "sample", "beam")


class NotFittedError(ValueError):
    """The text domain was used before it had a vocabulary (``fit`` or ``load_state_dict``)."""


def _check_probability(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1], got {type(value).__name__}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


class TextDomain(Domain):
    """Text items (``str``) for flowbridge.

    Sizes default to the original LNFMM captioning model; tests and small data want far
    smaller ones (e.g. ``embedding=16, hidden=32, decoder_hidden=32``; the core's ``small``
    preset gives the shapes testbed's).

    Args:
        embedding: word embedding size (encoder and decoder each have their own table).
        hidden: encoder GRU width per direction.
        decoder_hidden: decoder LSTM width.
        layers: encoder GRU layers.
        decoder_layers: decoder LSTM layers.
        max_length: most tokens (words and punctuation marks) kept per text, ``<bos>`` and
            ``<eos>`` not counted; also the default most tokens :meth:`generate` produces.
        min_count: a word enters the vocabulary if :meth:`fit` sees it this often.
        max_size: largest vocabulary, the 4 special tokens included (``None``: no limit).
        word_dropout: probability that a decoder input word becomes ``<unk>`` while training.
        embedding_dropout: dropout on the decoder's input word embeddings while training.
        encoder_dropout: dropout on the encoder's input word embeddings while training (0 in
            the original; a guard against memorising the wordings of a small caption set).

    Raises:
        TypeError, ValueError: an option of the wrong type or out of range.
    """

    name = "text"
    default_residual_features = 32

    def __init__(
        self,
        *,
        embedding: int = 300,
        hidden: int = 1024,
        decoder_hidden: int = 512,
        layers: int = 2,
        decoder_layers: int = 1,
        max_length: int = 40,
        min_count: int = 4,
        max_size: int | None = None,
        word_dropout: float = 0.8,
        embedding_dropout: float = 0.5,
        encoder_dropout: float = 0.0,
    ):
        for key, value in [
            ("embedding", embedding),
            ("hidden", hidden),
            ("decoder_hidden", decoder_hidden),
            ("layers", layers),
            ("decoder_layers", decoder_layers),
            ("max_length", max_length),
            ("min_count", min_count),
        ]:
            check_positive_int(value, key)
        check_max_size(max_size)
        self.embedding, self.hidden, self.decoder_hidden = embedding, hidden, decoder_hidden
        self.layers, self.decoder_layers, self.max_length = layers, decoder_layers, max_length
        self.min_count, self.max_size = min_count, max_size
        self.word_dropout = _check_probability(word_dropout, "word_dropout")
        self.embedding_dropout = _check_probability(embedding_dropout, "embedding_dropout")
        self.encoder_dropout = _check_probability(encoder_dropout, "encoder_dropout")
        self.options = {
            "embedding": embedding,
            "hidden": hidden,
            "decoder_hidden": decoder_hidden,
            "layers": layers,
            "decoder_layers": decoder_layers,
            "max_length": max_length,
            "min_count": min_count,
            "max_size": max_size,
            "word_dropout": self.word_dropout,
            "embedding_dropout": self.embedding_dropout,
            "encoder_dropout": self.encoder_dropout,
        }
        self._vocabulary: Vocabulary | None = None

    # -- vocabulary --------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        """Whether the domain has a vocabulary."""
        return self._vocabulary is not None

    @property
    def vocabulary(self) -> Vocabulary:
        """The fitted :class:`Vocabulary`; :class:`NotFittedError` before ``fit``."""
        if self._vocabulary is None:
            raise NotFittedError(
                "the text domain has no vocabulary yet: call fit(training_texts) first, or "
                "load_state_dict(...) from a saved model"
            )
        return self._vocabulary

    def fit(self, items: Sequence[str]) -> None:
        """Build the vocabulary from training texts (``min_count``, ``max_size`` apply);
        ``ValueError`` if no word occurs ``min_count`` times."""
        self._vocabulary = Vocabulary.build(
            (tokenize(t) for t in self._check_items(items)), self.min_count, self.max_size
        )

    def state_dict(self) -> dict[str, Any]:
        """``{"words": [...]}`` (every token in id order), or ``{}`` before ``fit``."""
        return {} if self._vocabulary is None else self._vocabulary.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s vocabulary (``{}`` restores the unfitted domain)."""
        self._vocabulary = Vocabulary.from_state_dict(state) if state else None

    # -- model parts -------------------------------------------------------------------------
    def build_encoder(self, spec: LatentSpec) -> TextEncoder:
        return TextEncoder(
            len(self.vocabulary),
            spec,
            self.embedding,
            self.hidden,
            self.layers,
            self.encoder_dropout,
        )

    def build_decoder(self, spec: LatentSpec) -> TextDecoder:
        return TextDecoder(
            len(self.vocabulary),
            spec,
            self.embedding,
            self.decoder_hidden,
            self.decoder_layers,
            self.word_dropout,
            self.embedding_dropout,
        )

    def reconstruction_loss(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r"""Summed token NLL ``[batch]`` of ``x[:, 1:]`` under logits ``output [batch, T-1, V]``
        (floating point, ``V`` the vocabulary's size: what the decoder returns for ``x``).

        .. math:: \ell(x) = -\sum_{t=1}^{T-1} [x_t \ne \texttt{<pad>}] \log p(x_t \mid x_{<t}, z)
        """
        check_tokens(x, len(self.vocabulary))
        expected = (x.shape[0], x.shape[1] - 1, len(self.vocabulary))
        if not isinstance(output, torch.Tensor):
            raise TypeError(
                f"output must be the decoder's logits, a torch.Tensor of shape "
                f"{list(expected)}, got {type(output).__name__}"
            )
        if output.shape != expected:
            raise ValueError(
                f"output must be decoder logits [batch, T-1, V] = {list(expected)} for x of "
                f"shape {list(x.shape)} and this domain's {expected[2]}-token vocabulary, got "
                f"{list(output.shape)}; pass decoder(shared, residual, x) of a decoder this "
                f"domain built"
            )
        if not output.is_floating_point():
            raise TypeError(
                f"output must be floating-point logits, got dtype {output.dtype}; pass the "
                f"decoder's output (or convert with .float())"
            )
        nll = F.cross_entropy(
            rearrange(output, "b t v -> b v t"), x[:, 1:], ignore_index=PAD, reduction="none"
        )
        return nll.sum(dim=1)

    # -- data --------------------------------------------------------------------------------
    @staticmethod
    def _check_items(items: object) -> list[str]:
        if isinstance(items, str) or not isinstance(items, Sequence):
            raise TypeError(
                f"expected a list of str, got {type(items).__name__}; wrap a single text in a list"
            )
        if len(items) == 0:
            raise ValueError("expected at least one text, got an empty list")
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise TypeError(
                    f"text items must be str, got {type(item).__name__} at index {i} ({item!r:.80})"
                )
        return list(items)

    @staticmethod
    def _pad(sequences: list[list[int]]) -> torch.Tensor:
        """``<bos> ids <eos>`` per row, right-padded to the longest row: ``[batch, T]``."""
        x = torch.full((len(sequences), 2 + max(map(len, sequences))), PAD, dtype=torch.long)
        for row, ids in zip(x, sequences, strict=True):
            row[: len(ids) + 2] = torch.tensor([BOS, *ids, EOS])
        return x

    def collate(self, items: Sequence[str]) -> torch.Tensor:
        """Token ids ``[batch, T]`` of ``items``: ``<bos> w_1 … w_n <eos> <pad>…``,
        ``n <= max_length`` (the text's first ``max_length`` tokens)."""
        vocabulary = self.vocabulary
        texts = self._check_items(items)
        return self._pad([vocabulary.encode(tokenize(t)[: self.max_length]) for t in texts])

    def check_batch(self, x: torch.Tensor) -> torch.Tensor:
        """A batch tensor must be token ids as :meth:`collate` makes them (``[batch, T]``,
        ``<bos>`` first, ids in the vocabulary)."""
        return check_tokens(x, len(self.vocabulary), "a text batch tensor")

    def to_text(self, x: torch.Tensor) -> list[str]:
        """Strings of a batch ``x [batch, T]`` (the words between ``<bos>`` and ``<eos>``)."""
        vocabulary = self.vocabulary
        check_tokens(x, len(vocabulary))
        texts = []
        for ids in x[:, 1:].tolist():
            ids = ids[: ids.index(EOS)] if EOS in ids else ids
            texts.append(detokenize(vocabulary.decode(i for i in ids if i != PAD)))
        return texts

    def example_batch(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` random word sequences of 0 to ``min(8, max_length)`` words.

        A domain without a vocabulary first gets one made of :data:`EXAMPLE_WORDS` (a later
        :meth:`fit` or :meth:`load_state_dict` replaces it), so a freshly built domain can be
        exercised without training data.
        """
        check_positive_int(n, "n")
        if self._vocabulary is None:
            self._vocabulary = Vocabulary(EXAMPLE_WORDS)
        lengths = torch.randint(0, min(8, self.max_length) + 1, (n,), generator=generator)
        words = len(self._vocabulary) - len(SPECIALS)
        return self._pad(
            [
                (torch.randint(words, (int(k),), generator=generator) + len(SPECIALS)).tolist()
                for k in lengths
            ]
        )

    # -- generation --------------------------------------------------------------------------
    def generate_ids(
        self,
        decoder: TextDecoder,
        shared: torch.Tensor,
        residual: torch.Tensor,
        *,
        method: str = "greedy",
        beam_size: int = 2,
        word_temperature: float = 1.0,
        max_length: int | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode latents into token ids ``[n, L]`` (collate's layout) and their log-probability
        ``[n]`` under the decoder; arguments as :meth:`generate`. ``n = 0`` latents give
        ``[0, 2]`` ids and ``[0]`` log-probabilities."""
        max_length = self.max_length if max_length is None else max_length
        # Every option is checked whatever the method, so a typo fails before a long run.
        check_positive_number(word_temperature, "word_temperature")
        check_search_options(decoder, max_length, beam_size, word_temperature, generator)
        if decoder.vocab_size != len(self.vocabulary):
            raise ValueError(
                f"the decoder has {decoder.vocab_size} token ids but this domain's vocabulary "
                f"has {len(self.vocabulary)}; load the vocabulary the decoder was trained with"
            )
        if method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")

        was_training = decoder.training
        decoder.eval()  # dropout and word dropout are for training only
        try:
            with torch.no_grad():
                if method == "greedy":
                    return greedy_search(decoder, shared, residual, max_length)
                if method == "sample":
                    return sample_search(
                        decoder, shared, residual, max_length, word_temperature, generator
                    )
                return beam_search(decoder, shared, residual, max_length, beam_size)
        finally:
            decoder.train(was_training)

    def generate(
        self,
        decoder: TextDecoder,
        shared: torch.Tensor,
        residual: torch.Tensor,
        *,
        method: str = "greedy",
        beam_size: int = 2,
        word_temperature: float = 1.0,
        max_length: int | None = None,
        generator: torch.Generator | None = None,
    ) -> list[str]:
        """Decode latents ``shared [n, d_s]``, ``residual [n, d_r]`` into ``n`` strings.

        All ``n`` latents decode together (beam search over ``n × beam_size`` rows); each text
        stops at ``<eos>`` or after ``max_length`` tokens. ``n = 0`` latents give ``[]``.

        Args:
            decoder: the module :meth:`build_decoder` made (its train/eval mode is restored).
            shared, residual: the latents.
            method: ``"greedy"`` (deterministic), ``"sample"`` (ancestral sampling, uses
                ``word_temperature`` and ``generator``) or ``"beam"`` (deterministic,
                ``beam_size``).
            beam_size: beams per latent for ``"beam"`` (2 in the original).
            word_temperature: ``τ_w > 0`` for ``"sample"``: each step samples from
                ``p^(1/τ_w)``. Named apart from the residual noise's ``temperature`` of
                :meth:`flowbridge.Bridge.translate`, which passes this one through
                (``bridge.translate(x, "image", method="sample", word_temperature=0.7)``;
                ``flowbridge translate --option word_temperature=0.7``).
            max_length: most tokens (words and punctuation marks) per text, ``<eos>`` not
                counted; default the domain's ``max_length``. Each token is one decoder step
                over all rows, and a decoder that seldom emits ``<eos>`` (an untrained one)
                takes them all, so a huge value runs for a long time.
            generator: random generator for ``"sample"`` (on any device; the bridge passes
                the one that drew the latents).
        """
        tokens, _ = self.generate_ids(
            decoder,
            shared,
            residual,
            method=method,
            beam_size=beam_size,
            word_temperature=word_temperature,
            max_length=max_length,
            generator=generator,
        )
        # to_text refuses an empty batch (a collate mistake there); no latents, no texts.
        return self.to_text(tokens) if len(tokens) else []

    # -- files a person reads ----------------------------------------------------------------
    def read_item(self, source: str) -> str:
        """A text argument is the item itself."""
        if not isinstance(source, str):
            raise TypeError(f"a text source must be a str, got {type(source).__name__}")
        return source

    def write_items(self, items: Sequence[Sequence[str]], path: Path) -> Path:
        """Write a Markdown file ``path.md`` atomically: one section per input, its texts
        numbered (see :func:`~flowbridge_text.markdown.write_markdown`)."""
        return write_markdown(items, path)
