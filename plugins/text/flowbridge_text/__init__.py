"""flowbridge-text: the text domain plugin for flowbridge (items are ``str``)."""

from .decoder import TextDecoder
from .encoder import TextEncoder
from .search import beam_search, greedy_search, sample_search
from .tokenizer import detokenize, tokenize
from .vocabulary import BOS, EOS, PAD, SPECIALS, UNK, Vocabulary

__all__ = [
    "TextEncoder",
    "TextDecoder",
    "Vocabulary",
    "tokenize",
    "detokenize",
    "greedy_search",
    "sample_search",
    "beam_search",
    "SPECIALS",
    "PAD",
    "BOS",
    "EOS",
    "UNK",
]
