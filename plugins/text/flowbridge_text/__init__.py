"""flowbridge-text: the text domain plugin for flowbridge (items are ``str``).

See :class:`TextDomain` for the options and conventions, :mod:`flowbridge_text.search` for
decoding.
"""

from .decoder import TextDecoder
from .domain import EXAMPLE_WORDS, NotFittedError, TextDomain
from .encoder import TextEncoder
from .search import beam_search, greedy_search, sample_search
from .tokenizer import detokenize, tokenize
from .vocabulary import BOS, EOS, PAD, SPECIALS, UNK, Vocabulary

__all__ = [
    "TextDomain",
    "TextEncoder",
    "TextDecoder",
    "Vocabulary",
    "NotFittedError",
    "tokenize",
    "detokenize",
    "greedy_search",
    "sample_search",
    "beam_search",
    "EXAMPLE_WORDS",
    "SPECIALS",
    "PAD",
    "BOS",
    "EOS",
    "UNK",
]
