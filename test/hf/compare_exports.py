"""Loads pairs of checkpoints with transformers and prints, as JSON, the largest difference of their logits on
a fixed id sequence and the class transformers chose for the second of each pair.

Usage: python compare_exports.py ORIGINAL_DIR EXPORTED_DIR [ORIGINAL_DIR EXPORTED_DIR ...]
"""

import json
import sys

import torch
from transformers import AutoModelForCausalLM


def main():
    paths = sys.argv[1:]
    out = []
    for original, exported in zip(paths[::2], paths[1::2]):
        a = AutoModelForCausalLM.from_pretrained(original).eval()
        b = AutoModelForCausalLM.from_pretrained(exported).eval()
        ids = torch.tensor([[0, 5, 9, 13, 40, 41, 7]])
        with torch.no_grad():
            diff = float((a(ids).logits - b(ids).logits).abs().max())
        out.append({"exported": exported, "class": type(b).__name__, "max_diff": diff})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
