"""The shapes-world vocabulary and a CLIP BPE tokenizer built from it.

:func:`write_tokenizer` writes ``vocab.json`` and ``merges.txt`` in the format
of OpenAI's CLIP tokenizer, so ``transformers.CLIPTokenizer.from_pretrained``
loads it like a real checkpoint's. Every vocabulary word becomes one token;
any other text still tokenizes, character by character.

>>> SYNONYMS["circle"]
('disc', 'round')
>>> len(WORDS), WORDS[:3], "horse" in WORDS
(76, ('circle', 'square', 'triangle'), True)
"""
from __future__ import annotations

import json
from pathlib import Path

from .shapes import CLASSES, COLOURS

SYNONYMS = {
    "circle": ("disc", "round"),
    "square": ("box", "block"),
    "triangle": ("pyramid", "wedge"),
    "diamond": ("rhombus", "lozenge"),
    "star": ("pentagram", "starfish"),
    "cross": ("plus", "x"),
    "heart": ("love", "valentine"),
    "crescent": ("moon", "sickle"),
}
"""Alternative names per class, for prompt experiments."""

BACKGROUND_WORDS = ("background", "ground", "wall", "texture", "pattern", "stripes", "checkerboard", "floor", "surface", "nothing", "empty")

WORDS = tuple(dict.fromkeys(
    list(CLASSES) + [w for syn in SYNONYMS.values() for w in syn] + list(COLOURS) + list(BACKGROUND_WORDS) + [
        "a", "an", "the", "of", "and", "with", "on", "in", "photo", "picture", "image", "drawing", "rendering",
        "shape", "shapes", "object", "objects", "small", "large", "big", "plain", "textured", "scene",
        "there", "is", "are", "one", "two", "three", "some", "this", "that", "it", "horse", "grass",
    ]))
"""Every word that tokenizes to a single token."""

MODEL_MAX_LENGTH = 32
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _bytes_to_unicode() -> dict[int, str]:
    """The byte → printable character table of GPT-2 / CLIP byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _apply_bpe(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Greedy BPE as CLIP applies it: repeatedly merge the lowest-ranked adjacent pair."""
    while len(symbols) > 1:
        pairs = [(ranks.get(p, float("inf")), i) for i, p in enumerate(zip(symbols, symbols[1:]))]
        rank, i = min(pairs)
        if rank == float("inf"):
            break
        first, second = symbols[i], symbols[i + 1]
        merged, j = [], 0
        while j < len(symbols):
            if j < len(symbols) - 1 and symbols[j] == first and symbols[j + 1] == second:
                merged.append(first + second)
                j += 2
            else:
                merged.append(symbols[j])
                j += 1
        symbols = merged
    return symbols


def build_merges(words=WORDS) -> list[tuple[str, str]]:
    """BPE merges under which every word of ``words`` is one token.

    Merges are appended until a fixed point: a word that the current merges
    leave split gets a merge of its first two pieces, which ranks last and so
    only fires once nothing else applies. Shared prefixes cannot split a word.
    ``words`` is a sequence of lower-case words; the default is :data:`WORDS`.

    >>> build_merges(("red", "round"))
    [('r', 'e'), ('re', 'd</w>'), ('r', 'o'), ('ro', 'u'), ('rou', 'n'), ('roun', 'd</w>')]
    """
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    changed = True
    while changed:
        changed = False
        for word in words:
            pieces = _apply_bpe(list(word[:-1]) + [word[-1] + "</w>"], ranks)
            while len(pieces) > 1:
                pair = (pieces[0], pieces[1])
                ranks[pair] = len(merges)
                merges.append(pair)
                changed = True
                pieces = _apply_bpe(list(word[:-1]) + [word[-1] + "</w>"], ranks)
    return merges


def write_tokenizer(directory, model_max_length: int = MODEL_MAX_LENGTH) -> Path:
    """Write a CLIP tokenizer for the shapes world into ``directory`` and return it.

    ``directory`` (a path) is created if needed; existing tokenizer files in it are overwritten.
    ``model_max_length`` is the context the text encoder reads (32 in the shapes world, 77 in real CLIP).

    >>> import tempfile
    >>> from transformers import CLIPTokenizer
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     tokenizer = CLIPTokenizer.from_pretrained(write_tokenizer(tmp))
    >>> tokenizer.tokenize("a red circle"), tokenizer.model_max_length
    (['a</w>', 'red</w>', 'circle</w>'], 32)
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    merges = build_merges()
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + [BOS, EOS]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (directory / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {
        "tokenizer_class": "CLIPTokenizer", "model_max_length": model_max_length,
        "bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS,
        "do_lower_case": True, "clean_up_tokenization_spaces": False,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (directory / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}, indent=2))
    return directory


class UnknownWordWarning(UserWarning):
    """A class name or prompt word the model's tokenizer holds no token for: it reads it letter by letter."""


def unknown_words(tokenizer, words) -> list[str]:
    """The ``words`` that ``tokenizer`` splits into single characters only — words it has no token for, as the
    shapes-world tokenizer does with anything outside :data:`WORDS` (a real CLIP's BPE has tokens for common
    words and pieces of the rest).

    >>> from transformers import CLIPTokenizer
    >>> import tempfile
    >>> tok = CLIPTokenizer.from_pretrained(write_tokenizer(tempfile.mkdtemp()))
    >>> unknown_words(tok, ["circle", "cat", "x", "red heart"])
    ['cat']
    """
    out = []
    for phrase in words:
        for word in phrase.replace(",", " ").replace(".", " ").split():
            pieces = [p.replace("</w>", "") for p in tokenizer.tokenize(word)]
            if len(pieces) > 1 and all(len(p) == 1 for p in pieces) and word not in out:
                out.append(word)
    return out


def warn_unknown_words(tokenizer, words, argument: str) -> None:
    """Warn (:class:`UnknownWordWarning`) when ``argument``'s ``words`` hold words unknown to ``tokenizer``."""
    import warnings

    unknown = unknown_words(tokenizer, words)
    if unknown:
        warnings.warn(f"{argument}: {', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} unknown to "
                      "this model's tokenizer, which reads them letter by letter, so their maps and scores mean little; "
                      "the shapes-world models know only the shapes world's words (foundseg.data.WORDS) — for other "
                      "words use a real model (FOUNDSEG_SCALE=full, or --model)", UnknownWordWarning, stacklevel=3)
