"""A byte-level CLIP tokenizer made on the spot: no download, deterministic vocabulary."""

from __future__ import annotations

from pathlib import Path

import orjson


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
