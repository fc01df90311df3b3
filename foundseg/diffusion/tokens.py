"""Words of a prompt → token positions, with the pipeline's own tokenizer.

:data:`START` and :data:`END` name the special tokens among the words:

>>> from foundseg.models import load_sd
>>> START, END
('<start>', '<end>')
>>> token_indices(load_sd("shapes-sd").tokenizer, "a red circle", [START, "red", END])
[[0], [2], [4]]
"""
from __future__ import annotations

from ..data.vocab import warn_unknown_words

START, END = "<start>", "<end>"
"""Pseudo-words for the start-of-text token and the (first) end-of-text token."""


def token_indices(tokenizer, prompt: str, words) -> list[list[int]]:
    """Positions of each word's tokens in ``prompt`` as the text encoder sees it (position 0 is the start token).

    A word split into several tokens gives several positions; :data:`START` and :data:`END` name the special
    tokens. A word that is not in the prompt raises ``ValueError`` listing the prompt's words.

    ``tokenizer`` is the pipeline's (``pipe.tokenizer``); ``words`` is one word or a list of them.

    >>> from foundseg.models import load_sd
    >>> token_indices(load_sd().tokenizer, "a red circle", ["circle", "<end>"])
    [[3], [4]]
    >>> token_indices(load_sd().tokenizer, "a red circle", [START, "red"])
    [[0], [2]]
    """
    if isinstance(words, str):
        words = [words]
    if not words:
        raise ValueError("words must name at least one word of the prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"prompt must be a non-empty string, got {prompt!r}")
    warn_unknown_words(tokenizer, [prompt], "prompt")
    ids = tokenizer(prompt).input_ids
    if len(ids) > tokenizer.model_max_length:
        raise ValueError(f"prompt is {len(ids)} tokens long; the text encoder reads at most "
                         f"{tokenizer.model_max_length} (start and end tokens included)")
    out = []
    for word in words:
        if word == START:
            out.append([0])
            continue
        if word == END:
            out.append([len(ids) - 1])
            continue
        pieces = tokenizer(word, add_special_tokens=False).input_ids
        hits = [i for i in range(1, len(ids) - len(pieces) + 1) if ids[i:i + len(pieces)] == pieces] if pieces else []
        if not hits:
            raise ValueError(f"word {word!r} is not in the prompt {prompt!r}; its words are "
                             f"{prompt.replace(',', ' ').replace('.', ' ').split()} (or {START!r}, {END!r})")
        out.append(list(range(hits[0], hits[0] + len(pieces))))
    return out
