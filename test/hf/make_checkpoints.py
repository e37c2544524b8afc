"""Small random checkpoints of the model families the engine imports, made and saved by transformers, with
what transformers computes on them.

Usage: python make_checkpoints.py OUT_DIR
Writes OUT_DIR/<case>/ (save_pretrained of the model and of a Llama-3-shaped tokenizer from
make_tokenizers.py) and prints JSON: {case: {"prompt", "ids": tokenizer(prompt) by AutoTokenizer, "logits": the
model's logits at every position of ids (flattened), "greedy": 8 tokens picked by argmax of the model's
own forward pass, one at a time} or, for a sequence-classification head, {"prompt", "ids", "score"}}.
"""

import json
import os
import sys

import torch
from transformers import (
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    MistralConfig,
    MistralForCausalLM,
    PreTrainedTokenizerFast,
)

sys.path.insert(0, os.path.dirname(__file__))
from make_tokenizers import llama3  # noqa: E402

PROMPT = "the movie was great and the plot"
STEPS = 8


def shape(vocab):
    # head_dim 16 with hidden 48 and 4 heads: an explicit head_dim that is not hidden / heads.
    return dict(
        vocab_size=vocab,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        rms_norm_eps=1e-5,
        initializer_range=0.2,
    )


def cases(vocab, ids):
    bos, eos = ids["bos"], ids["eos"]
    tokens = dict(bos_token_id=bos, eos_token_id=eos, pad_token_id=eos)
    llama3_scaling = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 16,
    }
    return {
        "llama3-rope": lambda: LlamaForCausalLM(
            LlamaConfig(**shape(vocab), **tokens, head_dim=16, rope_scaling=llama3_scaling, rope_theta=500000.0)
        ),
        "linear-rope": lambda: LlamaForCausalLM(
            LlamaConfig(**shape(vocab), **tokens, rope_scaling={"rope_type": "linear", "factor": 4.0}, tie_word_embeddings=True)
        ),
        "dynamic-rope": lambda: LlamaForCausalLM(
            LlamaConfig(**shape(vocab), **tokens, rope_scaling={"rope_type": "dynamic", "factor": 2.0})
        ),
        "mistral": lambda: MistralForCausalLM(MistralConfig(**shape(vocab), **tokens, head_dim=16, sliding_window=None)),
        "reward": lambda: LlamaForSequenceClassification(LlamaConfig(**shape(vocab), **tokens, num_labels=1)),
    }


def main():
    out = sys.argv[1]
    tok, specials, template = llama3()
    vocab = tok.get_vocab_size()
    special_ids = {"bos": tok.token_to_id(specials["bos_token"]), "eos": tok.token_to_id(specials["eos_token"])}
    result = {}
    for i, (name, make) in enumerate(cases(vocab, special_ids).items()):
        torch.manual_seed(i)
        model = make().eval()
        directory = os.path.join(out, name)
        model.save_pretrained(directory)
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, **specials)
        fast.chat_template = template
        fast.save_pretrained(directory)
        hf_tok = AutoTokenizer.from_pretrained(directory)
        ids = hf_tok(PROMPT)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
            if name == "reward":
                result[name] = {"prompt": PROMPT, "ids": ids, "score": float(logits[0])}
                continue
            seq = list(ids)
            for _ in range(STEPS):
                seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
        result[name] = {"prompt": PROMPT, "ids": ids, "logits": logits.flatten().tolist(), "greedy": seq[len(ids):]}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
