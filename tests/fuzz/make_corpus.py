#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_safetensors: small valid files and a few near misses."""
import json
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_safetensors")


def image(header, data, pad=True):
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def save(name, blob):
    assert len(blob) < 4096
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(blob)


def main():
    os.makedirs(HERE, exist_ok=True)
    data = struct.pack("<4f", 1.0, -2.5, 0.0, 3.0) + struct.pack("<3i", -1, 0, 7) + struct.pack("<q", 1 << 40)
    valid = {
        "__metadata__": {"format": "pt", "config": "{\"hidden\": 4}"},
        "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "idx": {"dtype": "I32", "shape": [3], "data_offsets": [16, 28]},
        "step": {"dtype": "I64", "shape": [], "data_offsets": [28, 36]},
        "none": {"dtype": "F32", "shape": [0, 5], "data_offsets": [36, 36]},
    }
    save("valid_small.safetensors", image(valid, data))
    save("valid_empty.safetensors", image({}, b""))
    save("truncated.safetensors", image(valid, data)[:-5])
    overlap = {
        "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "b": {"dtype": "I32", "shape": [2], "data_offsets": [12, 20]},
    }
    save("bad_overlap.safetensors", image(overlap, bytes(20)))
    half = {"h": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]}}
    save("bad_dtype_f16.safetensors", image(half, bytes(12), pad=False))


if __name__ == "__main__":
    main()
