"""Tokenizers made on the spot, no download: a byte-level CLIP tokenizer for the tiny models, and the real CLIP
and T5 tokenizers of the published models from the vocabulary files shipped in ``profkit/data/models``."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

import orjson

MODELS_DATA = Path(__file__).resolve().parent.parent / "data" / "models"
CLIP_FILES = MODELS_DATA / "tokenizers" / "clip"
T5_SPIECE = MODELS_DATA / "tokenizers" / "t5" / "spiece.model"


def _bytes_to_unicode() -> dict[int, str]:
    """The reversible byte -> printable-character map CLIP's BPE vocabulary is written in."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    codes = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes), strict=True))


def write_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """Write ``vocab.json`` and ``merges.txt`` of a CLIP tokenizer with a one-character-per-token vocabulary."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    tokens = [*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"]
    vocab_path = folder / "vocab.json"
    merges_path = folder / "merges.txt"
    vocab_path.write_bytes(orjson.dumps({token: index for index, token in enumerate(tokens)}))
    merges_path.write_text("#version: 0.2\n", encoding="utf-8")
    return vocab_path, merges_path


def make_clip_tokenizer(folder: Path, max_length: int = 77):  # -> transformers.CLIPTokenizer
    from transformers import CLIPTokenizer

    vocab_path, merges_path = write_tokenizer_files(folder)
    return CLIPTokenizer(str(vocab_path), str(merges_path), model_max_length=max_length)


def clip_tokenizer(config: dict[str, Any]):  # -> transformers.CLIPTokenizer
    """The real CLIP BPE tokenizer (49,408 tokens) with a published ``tokenizer_config.json``'s settings."""
    from transformers import CLIPTokenizer

    vocab = orjson.loads(gzip.decompress((CLIP_FILES / "vocab.json.gz").read_bytes()))
    lines = gzip.decompress((CLIP_FILES / "merges.txt.gz").read_bytes()).decode("utf-8").splitlines()
    merges = [tuple(line.split()) for line in lines[1:] if line]
    tokens = {key: _token(config.get(key)) for key in ("unk_token", "bos_token", "eos_token", "pad_token")}
    return CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        model_max_length=int(config.get("model_max_length", 77)),
        **{key: value for key, value in tokens.items() if value is not None},
    )


def _token(value: Any) -> str | None:
    return value.get("content") if isinstance(value, dict) else value


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes):  # yields (field number, wire type, value)
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def spiece_pieces(data: bytes) -> list[tuple[str, float]]:
    """The (piece, score) list of a SentencePiece ``ModelProto`` (field 1: pieces {1 piece, 2 score}), read with a
    minimal protobuf reader so neither sentencepiece nor protobuf is needed."""
    pieces = []
    for number, wire, value in _fields(data):
        if number != 1 or wire != 2:
            continue
        piece, score = "", 0.0
        for sub_number, _sub_wire, sub_value in _fields(value):
            if sub_number == 1:
                piece = sub_value.decode("utf-8")
            elif sub_number == 2:
                score = struct.unpack("<f", sub_value)[0]
        pieces.append((piece, score))
    return pieces


def t5_tokenizer(config: dict[str, Any]):  # -> transformers.T5Tokenizer
    """The T5 (SentencePiece unigram, 32,000 pieces + 100 extra ids) tokenizer of SD3 and Flux."""
    from transformers import T5Tokenizer

    pieces = spiece_pieces(T5_SPIECE.read_bytes())
    return T5Tokenizer(
        vocab=pieces,
        extra_ids=int(config.get("extra_ids", 100)),
        model_max_length=int(config.get("model_max_length", 512)),
    )
