"""One loader for both worlds: shipped shapes-world models and real checkpoints.

``shapes-clip``, ``shapes-sd`` and ``shapes-dit`` resolve to directories inside the package;
any other name is a local directory or a hub id handed to transformers /
diffusers ``from_pretrained``. Weights are read from safetensors only.

>>> SHIPPED["shapes-clip"], SHIPPED["shapes-dit"]
('clip', 'sd')
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import torch


ZOO_DIR = Path(__file__).parent / "zoo"
SHIPPED = {"shapes-clip": "clip", "shapes-sd": "sd", "shapes-dit": "sd"}
"""The models shipped inside the package, by name, with their kind (``clip`` or ``sd``: shapes-dit is a Stable
Diffusion 3 pipeline)."""
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


class ModelUnavailableError(OSError):
    """A model that is neither shipped, nor a local directory, nor in the local hub cache while offline.

    :func:`load_clip`, :func:`load_sd` and :func:`load` raise it; it is an ``OSError``, so code that catches hub
    download errors catches it too.

    >>> issubclass(ModelUnavailableError, OSError)
    True
    """


class CLIP(NamedTuple):
    """A CLIP model and its tokenizer, as :func:`load_clip` returns them.

    ``model`` is a ``transformers.CLIPModel`` and ``tokenizer`` its ``transformers.CLIPTokenizer``; the
    pair unpacks like a tuple.

    >>> clip = load_clip("shapes-clip")
    >>> type(clip.model).__name__, type(clip.tokenizer).__name__
    ('CLIPModel', 'CLIPTokenizer')
    >>> model, tokenizer = clip
    """

    model: "transformers.CLIPModel"  # noqa: F821
    tokenizer: "transformers.CLIPTokenizer"  # noqa: F821


def _check_weights(component: Path, label: str) -> None:
    """Refuse pickle checkpoints and unreadable safetensors in one component directory."""
    from safetensors import safe_open

    tensors = sorted(component.glob("*.safetensors"))
    pickles = [p.name for p in component.iterdir() if p.suffix in PICKLE_SUFFIXES]
    if not tensors:
        found = f" (found pickle checkpoint {', '.join(pickles)}; foundseg loads safetensors only)" if pickles else ""
        raise ValueError(f"{label}: no .safetensors weights in {component}{found}")
    for path in tensors:
        try:
            with safe_open(str(path), framework="pt") as f:  # checks the header against the file size
                f.keys()
        except Exception as err:  # safetensors raises its own error types
            raise ValueError(f"{label}: corrupt or truncated weight file {path} ({err})") from None


KINDS = {"clip": "a CLIP model", "sd": "a Stable Diffusion pipeline"}


def _is_clip_config(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("model_type") == "clip"
    except (OSError, ValueError, AttributeError):
        return False


def _check_local(path: Path, kind: str) -> None:
    label = f"model {str(path)!r}"
    if not path.is_dir():
        raise ValueError(f"{label} is a file; give the model's directory")
    found = "sd" if (path / "model_index.json").is_file() else "clip" if _is_clip_config(path / "config.json") else None
    if found is not None and found != kind:
        raise ValueError(f"{label} is {KINDS[found]}; {KINDS[kind]} is needed here")
    if kind == "clip":
        if not (path / "config.json").is_file():
            raise ValueError(f"{label}: missing config.json")
        _check_weights(path, label)
        return
    index = path / "model_index.json"
    if not index.is_file():
        raise ValueError(f"{label}: missing model_index.json (not a diffusers pipeline directory)")
    for name, spec in json.loads(index.read_text()).items():
        if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        component = path / name
        if not component.is_dir():
            raise ValueError(f"{label}: component {name!r} listed in model_index.json is missing")
        if name in ("unet", "transformer", "vae", "text_encoder", "text_encoder_2", "safety_checker", "image_encoder"):
            if not (component / "config.json").is_file():
                raise ValueError(f"{label}: component {name!r} has no config.json")
            _check_weights(component, f"{label} component {name!r}")


def looks_local(name: str) -> bool:
    """Whether ``name`` can only be a path, never a hub id (``owner/model``): it starts with ``.``, ``~`` or a
    separator, holds a backslash or more than one ``/``, or names something in an existing directory.

    >>> looks_local("./clip-copy"), looks_local("~/models/clip"), looks_local("openai/clip-vit-base-patch16")
    (True, True, False)
    """
    parent = Path(name).expanduser().parent
    return (name.startswith((".", "~", "/")) or "\\" in name or name.count("/") > 1
            or (parent != Path(".") and parent.is_dir()))


def resolve(name, kind: str) -> str:
    """Directory or hub id for ``name``; validates shipped and local directories.

    ``name`` is a shipped name, a local directory or a hub id; ``kind`` (``clip`` or ``sd``) is the kind of
    model expected. A hub id is returned unchanged, without any network access.

    >>> Path(resolve("shapes-sd", "sd")).name
    'shapes-sd'
    >>> resolve("openai/clip-vit-base-patch16", "clip")
    'openai/clip-vit-base-patch16'
    """
    if not isinstance(name, (str, os.PathLike)) or not str(name):
        raise ValueError(f"name must be a model name, directory or hub id; got {name!r}")
    name = str(name)
    if name in SHIPPED:
        if SHIPPED[name] != kind:
            raise ValueError(f"model {name!r} is {KINDS[SHIPPED[name]]}; {KINDS[kind]} is needed here")
        path = ZOO_DIR / name
        if not path.is_dir():
            raise ModelUnavailableError(f"shipped model {name!r} is missing from {ZOO_DIR}; "
                                        "reinstall foundseg or run `foundseg zoo train`")
    elif Path(name).expanduser().exists():
        path = Path(name).expanduser()
    elif name.startswith("shapes-"):
        raise ValueError(f"unknown model name {name!r}; shipped models: {sorted(SHIPPED)}")
    elif looks_local(name):
        raise FileNotFoundError(f"model directory {name!r} does not exist")
    else:
        return name  # a hub id
    _check_local(path, kind)
    return str(path)


def _from_pretrained(loader, target: str, name: str, **kwargs):
    """Call ``loader(target)``, turning a hub miss into one :class:`ModelUnavailableError`."""
    from huggingface_hub.errors import HFValidationError

    try:
        return loader(target, **kwargs)
    except HFValidationError:
        raise ValueError(f"name {name!r} is neither a shipped model {sorted(SHIPPED)}, an existing directory, "
                         "nor a valid hub id") from None
    except OSError as err:
        if Path(target).exists():
            raise
        raise ModelUnavailableError(
            f"model {name!r} is not available here: it is not shipped, not a local directory, and could not be "
            f"fetched from the Hugging Face hub ({type(err).__name__}). Download it where the hub is reachable "
            f"(`hf download {name}`), then pass the local directory or set HF_HOME to that cache."
        ) from None


def load_clip(name: str = "shapes-clip", device=None, dtype=torch.float32) -> CLIP:
    """Load a ``transformers.CLIPModel`` and its tokenizer, in eval mode.

    ``name`` is a shipped name (``shapes-clip``), a local directory or a hub id; the model is moved to
    ``device`` (default CPU) and loaded in ``dtype``.

    >>> clip = load_clip("shapes-clip")
    >>> clip.model.config.vision_config.image_size, clip.model.training
    (64, False)
    >>> clip = load_clip("openai/clip-vit-base-patch16", device="cuda")  # doctest: +SKIP
    """
    from transformers import CLIPModel, CLIPTokenizer

    target = resolve(name, "clip")
    model = _from_pretrained(CLIPModel.from_pretrained, target, name, dtype=dtype, use_safetensors=True)
    tokenizer = _from_pretrained(CLIPTokenizer.from_pretrained, target, name)
    return CLIP(model.to(device).eval(), tokenizer)


def load_sd(name: str = "shapes-sd", device=None, dtype=torch.float32, **components):
    """Load a Stable Diffusion pipeline (1.x / 2.x: ``StableDiffusionPipeline`` without safety checker; 3:
    ``StableDiffusion3Pipeline``); progress bars off.

    ``name`` is a shipped name (``shapes-sd``, ``shapes-dit``), a local pipeline directory or a hub id; the
    pipeline is moved to ``device`` (default CPU) and loaded in ``dtype``. ``components`` replace the
    pipeline's own, e.g. ``text_encoder_3=None, tokenizer_3=None`` to run SD3 without its T5 encoder (SD3
    then gives zero embeddings in T5's place, as shapes-dit is trained to expect).

    >>> pipe = load_sd("shapes-sd")
    >>> type(pipe.unet).__name__, pipe.safety_checker
    ('UNet2DConditionModel', None)
    >>> type(load_sd("shapes-dit").transformer).__name__
    'SD3Transformer2DModel'
    >>> pipe = load_sd("stable-diffusion-v1-5/stable-diffusion-v1-5", "cuda", torch.float16)  # doctest: +SKIP
    >>> pipe = load_sd("stabilityai/stable-diffusion-3-medium-diffusers", "cuda", torch.float16,
    ...                text_encoder_3=None, tokenizer_3=None)  # doctest: +SKIP
    """
    from diffusers import DiffusionPipeline

    target = resolve(name, "sd")
    index = (json.loads((Path(target) / "model_index.json").read_text()) if Path(target).is_dir()
             else _from_pretrained(DiffusionPipeline.load_config, target, name))
    absent = {k: None for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and v[0] is None}
    if "safety_checker" in index:
        absent.update(safety_checker=None, requires_safety_checker=False)
    pipe = _from_pretrained(DiffusionPipeline.from_pretrained, target, name, dtype=dtype, use_safetensors=True,
                            **{**absent, **components})
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load(name: str, kind: str | None = None, device=None, dtype=torch.float32):
    """Load a CLIP (returns :class:`CLIP`) or a Stable Diffusion pipeline.

    ``kind`` (``"clip"`` or ``"sd"``) is read from shipped names and local directories; hub ids need it.
    ``name``, ``device`` and ``dtype`` are as in :func:`load_clip` and :func:`load_sd`.

    >>> type(load("shapes-clip")).__name__, type(load("shapes-sd")).__name__
    ('CLIP', 'StableDiffusionPipeline')
    >>> pipe = load("stable-diffusion-v1-5/stable-diffusion-v1-5", kind="sd")  # doctest: +SKIP
    """
    if kind is None:
        if str(name) in SHIPPED:
            kind = SHIPPED[str(name)]
        elif Path(str(name)).is_dir():
            kind = "sd" if (Path(name) / "model_index.json").is_file() else "clip"
        else:
            raise ValueError(f"kind must be given ('clip' or 'sd') for hub id {name!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    return (load_sd if kind == "sd" else load_clip)(name, device, dtype)
