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
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen2ForSequenceClassification,
)

sys.path.insert(0, os.path.dirname(__file__))
from make_tokenizers import llama3, qwen2  # noqa: E402

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


def cases():
    """Each case: (tokenizer builder, model builder given the tokenizer's vocab size and special ids)."""

    def tokens(t):
        return dict(bos_token_id=t["bos"], eos_token_id=t["eos"], pad_token_id=t["eos"])

    llama3_scaling = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 16,
    }
    return {
        "llama3-rope": (llama3, lambda v, t: LlamaForCausalLM(
            LlamaConfig(**shape(v), **tokens(t), head_dim=16, rope_scaling=llama3_scaling, rope_theta=500000.0)
        )),
        "linear-rope": (llama3, lambda v, t: LlamaForCausalLM(
            LlamaConfig(**shape(v), **tokens(t), rope_scaling={"rope_type": "linear", "factor": 4.0}, tie_word_embeddings=True)
        )),
        "dynamic-rope": (llama3, lambda v, t: LlamaForCausalLM(
            LlamaConfig(**shape(v), **tokens(t), rope_scaling={"rope_type": "dynamic", "factor": 2.0})
        )),
        "biases": (llama3, lambda v, t: LlamaForCausalLM(
            LlamaConfig(**shape(v), **tokens(t), attention_bias=True, mlp_bias=True)
        )),
        "mistral": (llama3, lambda v, t: MistralForCausalLM(
            MistralConfig(**shape(v), **tokens(t), head_dim=16, sliding_window=None)
        )),
        "qwen2": (qwen2, lambda v, t: Qwen2ForCausalLM(
            Qwen2Config(**shape(v), bos_token_id=None, eos_token_id=t["eos"], pad_token_id=t["pad"], tie_word_embeddings=True)
        )),
        "reward": (llama3, lambda v, t: LlamaForSequenceClassification(
            LlamaConfig(**shape(v), **tokens(t), num_labels=1)
        )),
        # Two labels (not preferred, preferred): the reward is logit[1] - logit[0].
        "two-label-reward": (llama3, lambda v, t: LlamaForSequenceClassification(
            LlamaConfig(**shape(v), **tokens(t), num_labels=2)
        )),
        "qwen2-reward": (qwen2, lambda v, t: Qwen2ForSequenceClassification(
            Qwen2Config(**shape(v), bos_token_id=None, eos_token_id=t["eos"], pad_token_id=t["pad"], num_labels=1)
        )),
    }


def main():
    out = sys.argv[1]
    result = {}
    for i, (name, (tokenizer, make)) in enumerate(cases().items()):
        tok, specials, template = tokenizer()
        special_ids = {
            role: tok.token_to_id(specials[f"{role}_token"]) if specials.get(f"{role}_token") else None
            for role in ("bos", "eos", "pad")
        }
        torch.manual_seed(i)
        model = make(tok.get_vocab_size(), special_ids).eval()
        # HF initialises biases to zero; random ones make the test see whether they are added.
        with torch.no_grad():
            for param_name, param in model.named_parameters():
                if param_name.endswith(".bias"):
                    param.normal_(0.0, 0.5)
        directory = os.path.join(out, name)
        model.save_pretrained(directory)
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, **specials)
        fast.chat_template = template
        fast.save_pretrained(directory)
        hf_tok = AutoTokenizer.from_pretrained(directory)
        ids = hf_tok(PROMPT)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
            if name.endswith("reward"):
                score = logits[1] - logits[0] if logits.numel() == 2 else logits[0]
                result[name] = {"prompt": PROMPT, "ids": ids, "score": float(score)}
                continue
            seq = list(ids)
            for _ in range(STEPS):
                seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
        result[name] = {"prompt": PROMPT, "ids": ids, "logits": logits.flatten().tolist(), "greedy": seq[len(ids):]}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
