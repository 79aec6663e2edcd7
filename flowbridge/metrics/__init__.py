"""Domain-agnostic metrics: caption diversity among an input's samples (each metric, or the
literature's six at once: :func:`caption_diversity`), caption accuracy against references (BLEU,
METEOR, ROUGE-L, CIDEr-D through pycocoevalcap, best-of-N and mean-of-N), CIDEr-D similarities of
many captions to many at once (:class:`CiderD`), and :func:`accuracy_at_diversity` /
:func:`accuracy_gap`, which compare models at equal diversity along temperature sweeps.

Every caption function takes ``captions[i][k]``: sample ``k`` of input ``i`` (strings; they are
lowercased and split into words of any script by :func:`tokenize`, punctuation dropped). This
is close to, but not the same as, the COCO evaluation's PTBTokenizer: hyphenated words and
decimals are split, contractions are kept whole, and scripts written without spaces count
one word per run of characters (see :mod:`flowbridge.metrics.text`). Diversity metrics need no
extra package except :func:`mbleu` (and so :func:`caption_diversity`), which, like
:func:`caption_scores`, needs ``pip install 'flowbridge[metrics]'`` (pycocoevalcap).
"""

from .captions import caption_scores
from .cider import CiderD
from .diversity import (
    caption_diversity,
    div_n,
    mbleu,
    novel_fraction,
    self_cider,
    unique_fraction,
)
from .text import ngrams, tokenize
from .tradeoff import accuracy_at_diversity, accuracy_gap

__all__ = [
    "CiderD",
    "accuracy_at_diversity",
    "accuracy_gap",
    "caption_diversity",
    "caption_scores",
    "div_n",
    "mbleu",
    "ngrams",
    "novel_fraction",
    "self_cider",
    "tokenize",
    "unique_fraction",
]
