#!/usr/bin/env python3
"""Writes the seed corpora for fuzz_idx and fuzz_cifar: small valid files and a few near misses.
An fuzz_idx input is an images file (idx3-ubyte) followed by its labels file (idx1-ubyte), or
either alone, plain or gzip; a fuzz_cifar input is a CIFAR-10 binary batch, plain or gzip."""
import gzip
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def save(folder, name, blob):
    assert len(blob) < 4096, name
    os.makedirs(os.path.join(HERE, folder), exist_ok=True)
    with open(os.path.join(HERE, folder, name), "wb") as f:
        f.write(blob)


def images(n, h, w):
    return struct.pack(">I3I", 0x803, n, h, w) + bytes((i * 37) % 256 for i in range(n * h * w))


def labels(n, first=0):
    return struct.pack(">II", 0x801, n) + bytes((first + i) % 10 for i in range(n))


def gz(blob):
    return gzip.compress(blob, mtime=0)


def main():
    pair = images(3, 4, 5) + labels(3)
    save("corpus_idx", "pair.idx", pair)
    save("corpus_idx", "pair_28x28.idx", images(2, 28, 28) + labels(2, 7))
    save("corpus_idx", "images.idx3", images(2, 3, 3))
    save("corpus_idx", "labels.idx1", labels(9))
    save("corpus_idx", "pair.idx.gz", gz(pair))
    save("corpus_idx", "pair_two_members.gz", gz(pair[:20]) + gz(pair[20:]))
    save("corpus_idx", "bad_label.idx", images(2, 2, 2) + struct.pack(">II", 0x801, 2) + b"\x03\x0a")
    save("corpus_idx", "count_mismatch.idx", images(2, 2, 2) + labels(3))
    save("corpus_idx", "truncated.idx", pair[:-3])
    save("corpus_idx", "huge_dims.idx", struct.pack(">I3I", 0x803, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF) + b"\0" * 8)
    rec = bytes([3]) + bytes((i * 11) % 256 for i in range(3072))
    save("corpus_cifar", "one_record.bin", rec)
    save("corpus_cifar", "one_record.bin.gz", gz(rec))
    save("corpus_cifar", "bad_label.bin", bytes([10]) + rec[1:])
    save("corpus_cifar", "truncated.bin", rec[:-1])
    save("corpus_cifar", "trailing.bin", rec + b"\x01\x02")
    save("corpus_cifar", "two_records.bin.gz", gz(rec + bytes([9]) + rec[1:]))


if __name__ == "__main__":
    main()
