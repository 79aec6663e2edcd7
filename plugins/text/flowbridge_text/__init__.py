"""flowbridge-text: the text domain plugin for flowbridge (items are ``str``)."""

from .tokenizer import detokenize, tokenize
from .vocabulary import BOS, EOS, PAD, SPECIALS, UNK, Vocabulary

__all__ = ["Vocabulary", "tokenize", "detokenize", "SPECIALS", "PAD", "BOS", "EOS", "UNK"]
