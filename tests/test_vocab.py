import json

import pytest
from transformers import CLIPTokenizer

from foundseg.data import WORDS, sample, write_tokenizer
from foundseg.data.vocab import build_merges


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return CLIPTokenizer.from_pretrained(write_tokenizer(tmp_path_factory.mktemp("tok")))


def test_files_are_clip_tokenizer_files(tmp_path):
    d = write_tokenizer(tmp_path)
    assert {"vocab.json", "merges.txt"} <= {p.name for p in d.iterdir()}
    assert not (d / "tokenizer.json").exists()
    vocab = json.loads((d / "vocab.json").read_text())
    assert "<|startoftext|>" in vocab and "<|endoftext|>" in vocab
    assert (d / "merges.txt").read_text().startswith("#version")


def test_every_word_is_one_token(tokenizer):
    assert [w for w in WORDS if len(tokenizer.tokenize(w)) != 1] == []


def test_every_caption_tokenizes_to_whole_words(tokenizer):
    for i in range(300):
        caption = sample("train", i).caption
        words = caption.replace(",", " ,").split()
        assert len(tokenizer.tokenize(caption)) == len(words), caption


def test_special_tokens_and_unknown_words(tokenizer):
    ids = tokenizer("a red circle").input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id and len(ids) == 5
    assert len(tokenizer.tokenize("zebra")) > 1  # unknown words fall back to characters


def test_merges_are_deterministic():
    assert build_merges() == build_merges()
