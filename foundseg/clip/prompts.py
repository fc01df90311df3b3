"""Text prompts for CLIP: templates, template ensembles, synonyms, background sets, and :class:`ClassPrompts`,
their embeddings encoded once and reused across images."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ..batching import batched
from ..data.vocab import warn_unknown_words
from ..models.clip_embeddings import text_embeddings
from .inputs import check_clip

DEFAULT_TEMPLATES = ("a photo of a {}.",)
ENSEMBLE_TEMPLATES = ("a photo of a {}.", "a picture of a {}.", "an image of a {}.", "a drawing of a {}.",
                      "a rendering of a {}.", "a {}.", "a photo of the {}.", "a small {}.", "a large {}.")
"""A template ensemble in the style of CLIP's ImageNet prompts."""
SHAPES_BACKGROUND = ("a photo of the background.", "a photo of the ground.", "a photo of a wall.",
                     "a photo of a texture.", "a photo of stripes.", "a photo of a checkerboard.",
                     "a photo of a plain surface.")
"""Background prompts for the shapes world."""
CLIP_ES_BACKGROUND = ("a photo of ground.", "a photo of land.", "a photo of grass.", "a photo of tree.",
                      "a photo of building.", "a photo of wall.", "a photo of sky.", "a photo of lake.",
                      "a photo of water.", "a photo of river.", "a photo of sea.", "a photo of railway.",
                      "a photo of railroad.", "a photo of keyboard.", "a photo of helmet.", "a photo of cloud.",
                      "a photo of house.", "a photo of mountain.", "a photo of ocean.", "a photo of road.",
                      "a photo of rock.", "a photo of street.", "a photo of valley.", "a photo of bridge.",
                      "a photo of sign.")
"""CLIP-ES's background prompt set for real photos."""


def check_class_names(class_names) -> list[str]:
    """Validate a list of class names."""
    if isinstance(class_names, str) or not class_names:
        raise ValueError(f"class_names must be a non-empty list of strings, got {class_names!r}")
    names = list(class_names)
    if not all(isinstance(c, str) and c.strip() for c in names):
        raise ValueError(f"class_names must hold non-empty strings, got {names!r}")
    duplicates = sorted({c for c in names if names.count(c) > 1})
    if duplicates:
        raise ValueError(f"class_names must not repeat a class, got {duplicates} more than once")
    return names


def class_prompts(name: str, templates=DEFAULT_TEMPLATES, synonyms=None) -> list[str]:
    """Every prompt for one class: each template filled with the name and each of its synonyms."""
    if isinstance(templates, str) or not templates or not all("{}" in t for t in templates):
        raise ValueError(f"templates must be a non-empty list of strings containing '{{}}', got {templates!r}")
    names = [name] + list((synonyms or {}).get(name, ()))
    return [t.format(n) for t in templates for n in names]


@torch.no_grad()
def class_embeddings(model, tokenizer, class_names, templates=DEFAULT_TEMPLATES, synonyms=None,
                     batch_size: int = 256) -> torch.Tensor:
    """Unit-norm text embedding per class (C, P): the normalised mean over its prompts (CLIP's ensembling).

    ``model`` and ``tokenizer`` are a CLIP's (as :func:`foundseg.models.load_clip` returns them);
    ``templates`` are prompt templates with ``{}`` and ``synonyms`` an optional ``{class: [other names]}``,
    all filled in by :func:`class_prompts`. All prompts of all classes go through the text encoder together,
    ``batch_size`` at a time.

    >>> from foundseg.models import load_clip
    >>> clip = load_clip("shapes-clip")
    >>> text = class_embeddings(clip.model, clip.tokenizer, ["circle", "square"], ENSEMBLE_TEMPLATES)
    >>> text.shape, [round(float(n), 3) for n in text.norm(dim=-1)]
    (torch.Size([2, 64]), [1.0, 1.0])
    """
    names = check_class_names(class_names)
    warn_unknown_words(tokenizer, names + [s for n in names for s in (synonyms or {}).get(n, ())], "class_names")
    per_class = [class_prompts(name, templates, synonyms) for name in names]
    prompts = [p for ps in per_class for p in ps]
    lengths = [len(ids) for ids in tokenizer(prompts).input_ids]
    too_long = [p for p, n in zip(prompts, lengths) if n > tokenizer.model_max_length]
    if too_long:
        raise ValueError(f"class_names: prompt {too_long[0]!r} is longer than the text encoder's "
                         f"{tokenizer.model_max_length} tokens")
    emb = F.normalize(batched(lambda s: text_embeddings(model, tokenizer, prompts[s]), len(prompts), batch_size),
                      dim=-1)
    means = [chunk.mean(0) for chunk in emb.split([len(ps) for ps in per_class])]
    return F.normalize(torch.stack(means), dim=-1)


@torch.no_grad()
def prompt_embeddings(model, tokenizer, prompts) -> torch.Tensor:
    """Unit-norm text embedding per prompt (T, P); an empty list gives (0, P)."""
    if not prompts:
        return torch.zeros(0, model.config.projection_dim, device=model.text_projection.weight.device)
    return F.normalize(text_embeddings(model, tokenizer, list(prompts)), dim=-1)


class ClassPrompts:
    """Class and background prompt embeddings of one CLIP, each class encoded once and reused for every image:
    pass it wherever class names are accepted (:func:`~foundseg.clip.gradcam`, :func:`~foundseg.clip.dense_clip`).

    ``clip`` is a :class:`foundseg.models.CLIP`; ``class_names`` are encoded now, and any other class asked of
    :meth:`embeddings` the first time it is asked; ``templates``, ``synonyms`` and ``background`` are as in
    :func:`class_embeddings` and :func:`~foundseg.clip.gradcam` (background prompts, for CLIP-ES's softmax).

    >>> from foundseg.models import load_clip
    >>> clip = load_clip("shapes-clip")
    >>> prompts = ClassPrompts(clip, ["circle", "square"], background=SHAPES_BACKGROUND)
    >>> prompts.names, tuple(prompts.background.shape)
    (['circle', 'square'], (7, 64))
    >>> bool(torch.equal(prompts.embeddings(["square"])[0], prompts.embeddings(["circle", "square"])[1]))
    True
    """

    def __init__(self, clip, class_names=(), templates=DEFAULT_TEMPLATES, synonyms=None, background=None):
        self.model, self.tokenizer = check_clip(clip)
        templates = DEFAULT_TEMPLATES if templates is None else templates
        class_prompts("class", templates)  # checks the templates
        self.templates, self.synonyms = tuple(templates), dict(synonyms or {})
        self.background = prompt_embeddings(self.model, self.tokenizer, list(background or []))
        self._text: dict[str, torch.Tensor] = {}
        if len(class_names):
            self.embeddings(class_names)

    @property
    def names(self) -> list[str]:
        """The classes encoded so far, in the order they were first asked for."""
        return list(self._text)

    def embeddings(self, class_names) -> torch.Tensor:
        """Unit-norm text embedding per class (C, P) (see :func:`class_embeddings`), encoding only the classes
        not encoded before."""
        names = check_class_names(class_names)
        new = [n for n in names if n not in self._text]
        if new:
            self._text.update(zip(new, class_embeddings(self.model, self.tokenizer, new, self.templates,
                                                        self.synonyms)))
        return torch.stack([self._text[n] for n in names])

    def subset(self, class_names) -> "ClassPrompts":
        """These prompts for ``class_names`` only, in that order (classes not encoded yet are encoded here, and
        kept here too).

        >>> from foundseg.models import load_clip
        >>> ClassPrompts(load_clip("shapes-clip"), ["circle", "square"]).subset(["square", "star"]).names
        ['square', 'star']
        """
        names = check_class_names(class_names)
        text = self.embeddings(names)
        view = copy.copy(self)
        view._text = dict(zip(names, text))
        return view

    def check_model(self, model) -> None:
        """Refuse a CLIP other than the one these prompts were encoded with."""
        if model is not self.model:
            raise ValueError("class_names: these ClassPrompts were encoded with another CLIP model; build them "
                             "with the CLIP you pass")


def resolve_prompts(clip, class_names, templates=None, synonyms=None, background=None):
    """The prompts and class names a localisation method works with: ``class_names`` as given when they are
    :class:`ClassPrompts` (which already hold templates, synonyms and background), else encoded now.
    Returns (ClassPrompts, class names)."""
    if isinstance(class_names, ClassPrompts):
        given = [n for n, v in (("templates", templates), ("synonyms", synonyms), ("background", background))
                 if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: set them when building the ClassPrompts given as class_names")
        class_names.check_model(check_clip(clip)[0])
        if not class_names.names:
            raise ValueError("class_names: these ClassPrompts hold no class yet")
        return class_names, class_names.names
    prompts = ClassPrompts(clip, (), templates, synonyms, background)
    return prompts, check_class_names(class_names)
