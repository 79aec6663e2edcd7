"""Domain-agnostic caption metrics: diversity among an input's samples, and accuracy against
references (BLEU, METEOR, ROUGE-L, CIDEr-D through pycocoevalcap, best-of-N and mean-of-N).

Every function takes ``captions[i][k]``: sample ``k`` of input ``i`` (strings; they are
lowercased and split into words by :func:`tokenize`, punctuation dropped, as the COCO
evaluation does). Diversity metrics need no extra package except :func:`mbleu`, which, like
:func:`caption_scores`, needs ``pip install 'flowbridge[metrics]'`` (pycocoevalcap).
"""

from .captions import caption_scores
from .diversity import div_n, mbleu, novel_fraction, self_cider, unique_fraction
from .text import ngrams, tokenize

__all__ = [
    "caption_scores",
    "div_n",
    "mbleu",
    "ngrams",
    "novel_fraction",
    "self_cider",
    "tokenize",
    "unique_fraction",
]
