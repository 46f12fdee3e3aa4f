#!/usr/bin/env python3
"""Writes PyTorch reference vectors for other sizes of the three reference workloads (the
shared files cover one size each), with the same generator as ../shared/peer/make_reference.py.
Usage: make_extra_refs.py PEER_DIR OUT_DIR   (needs Debian's python3-torch; run by hand, the
outputs are committed under tests/data/reference_extra)."""
import json, os, sys
import torch, torch.nn as nn

peer, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, peer)
from make_reference import make
from torch_baseline_models import MLP, CNN, GPT

os.makedirs(out, exist_ok=True)
torch.manual_seed(7)
ce = nn.CrossEntropyLoss()
make("mnist_mlp_small", MLP(d_in=30, hidden=20, classes=7), torch.randn(5, 30), torch.randint(0, 7, (5,)), ce, out,
     {"d_in": 30, "hidden": 20, "classes": 7, "batch": 5})
# cifar_cnn on 1x28x28 images (Fashion-MNIST), as ../shared/peer/torch_fashion.py adapts it.
cnn = CNN(c1=4, c2=6, hidden=12, classes=5)
cnn.c1 = nn.Conv2d(1, 4, 3, padding=1); cnn.f1 = nn.Linear(6 * 7 * 7, 12)
make("cifar_cnn_fashion", cnn, torch.randn(3, 1, 28, 28), torch.randint(0, 5, (3,)), ce, out,
     {"c1": 4, "c2": 6, "hidden": 12, "classes": 5, "batch": 3, "image": [1, 28, 28]})
make("tiny_gpt_3l6h", GPT(V=50, D=48, L=3, H=6, T=12), torch.randint(0, 50, (3, 12)), torch.randint(0, 50, (3, 12)),
     lambda o, y: ce(o.reshape(-1, o.shape[-1]), y.reshape(-1)), out,
     {"vocab": 50, "d_model": 48, "layers": 3, "heads": 6, "seq": 12, "batch": 3})
