"""Checks `rlhf model export` dtypes and shards against transformers and torch; prints a JSON report.

Usage: python check_dtype_exports.py FLOAT32_DIR BF16_DIR F16_DIR SHARDED_DIR

For each half-precision export: whether every stored weight equals torch's own cast of the float32 export's
weight (round to nearest even, bit for bit), the dtype transformers loads it as with dtype="auto", and the
largest logit difference from the float32 model. For the sharded export: whether from_pretrained loads it and
the largest logit difference (0 expected). Also torch's bits for edge values the unit tests name.
"""

import json
import sys

import torch
from transformers import AutoModelForCausalLM

IDS = torch.tensor([[1, 5, 9, 13, 40, 41, 7, 2]])


def logits(model):
    with torch.no_grad():
        return model(IDS).logits.float()


def main():
    f32_dir, bf16_dir, f16_dir, sharded_dir = sys.argv[1:5]
    base = AutoModelForCausalLM.from_pretrained(f32_dir, dtype=torch.float32).eval()
    reference = logits(base)
    state = base.state_dict()
    report = {}
    for name, path, dtype in (("bfloat16", bf16_dir, torch.bfloat16), ("float16", f16_dir, torch.float16)):
        auto = AutoModelForCausalLM.from_pretrained(path, dtype="auto").eval()
        exact = all(
            torch.equal(tensor, state[key].to(dtype)) for key, tensor in auto.state_dict().items()
        )
        diff = float((logits(auto) - reference).abs().max())
        scale = float(reference.abs().max())
        report[name] = {
            "loaded_dtype": str(next(auto.parameters()).dtype).removeprefix("torch."),
            "weights_equal_torch_cast": exact,
            "max_logit_diff": diff,
            "max_abs_logit": scale,
        }
    sharded = AutoModelForCausalLM.from_pretrained(sharded_dir, dtype=torch.float32).eval()
    report["sharded"] = {
        "class": type(sharded).__name__,
        "max_logit_diff": float((logits(sharded) - reference).abs().max()),
    }
    edges = [1 + 2**-8, 1 + 3 * 2**-8, 65520.0, 65519.0, 2**-25, 3 * 2**-25, 2**-24 * 1.5, -0.0,
             float("inf"), 1e-8, 6.1e-5, 3.0e38]
    values = torch.tensor(edges, dtype=torch.float32)
    report["edges"] = {
        # As float32 bit patterns: JSON has no infinity.
        "f32_bits": [int(b) & 0xFFFFFFFF for b in values.view(torch.int32).tolist()],
        "bf16": values.to(torch.bfloat16).view(torch.int16).to(torch.int32).bitwise_and(0xFFFF).tolist(),
        "f16": values.to(torch.float16).view(torch.int16).to(torch.int32).bitwise_and(0xFFFF).tolist(),
    }
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
