"""Tokenizer fixtures shaped like the families people fine-tune, built by Hugging Face's own libraries,
and the ids those libraries produce for them.

Usage: python make_tokenizers.py OUT_DIR
Writes OUT_DIR/<family>/ (tokenizer.json and tokenizer_config.json, saved by transformers) for llama3
(TemplateProcessing puts <|begin_of_text|> first), llama2 (Metaspace-style BPE with byte fallback, <s>
first, add_bos_token in the config), qwen2 (no BOS at all) and gpt2 (no post-processor), and prints JSON:
{family: {"texts": [{"text", "ids", "plain"}], "chat": {"messages", "ids"} or null}} where "ids" is
AutoTokenizer's tokenizer(text), "plain" the same without special tokens, and the chat ids come from
apply_chat_template(messages, add_generation_prompt=True, tokenize=True).
"""

import json
import os
import sys

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

CORPUS = [
    "the movie was great and the cast was good",
    "a dull film with bad acting and a thin plot",
    "hello world, what did you think of the ending?",
    "I loved it. The music, the story: all of it!",
] * 4

MESSAGES = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "the film?"},
]

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
LLAMA2_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'assistant' %}{{ m['content'] }}{{ eos_token }}"
    "{% else %}[INST] {{ m['content'] }} [/INST]{% endif %}{% endfor %}"
)
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_level(specials):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def llama3():
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    tok = byte_level(specials)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single="<|begin_of_text|> $A",
                pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                special_tokens=[("<|begin_of_text|>", bos)],
            ),
        ]
    )
    return tok, {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}, LLAMA3_TEMPLATE


def llama2():
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=340, special_tokens=["<unk>", "<s>", "</s>", *byte_tokens])
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s>:1 $B:1", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False}
    return tok, config, LLAMA2_TEMPLATE


def qwen2():
    tok = byte_level(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok, {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}, CHATML_TEMPLATE


def gpt2():
    tok = byte_level(["<|endoftext|>"])
    specials = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    return tok, specials, None


def main():
    out = sys.argv[1]
    result = {}
    for name, build in [("llama3", llama3), ("llama2", llama2), ("qwen2", qwen2), ("gpt2", gpt2)]:
        tok, specials, template = build()
        directory = os.path.join(out, name)
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, **specials)
        if template is not None:
            fast.chat_template = template
        fast.save_pretrained(directory)
        # Flags the family's real tokenizer_config.json carries; save_pretrained keeps only what it knows.
        config_file = os.path.join(directory, "tokenizer_config.json")
        with open(config_file) as f:
            config = json.load(f)
        for key in ("add_bos_token", "add_eos_token", "bos_token"):
            if key in specials:
                config[key] = specials[key]
        with open(config_file, "w") as f:
            json.dump(config, f, indent=2)

        hf = AutoTokenizer.from_pretrained(directory)
        eos = specials["eos_token"]
        texts = ["the movie was great", " a dull film", f"good{eos} bad", "", "naïve café ☕"]
        entry = {
            "texts": [
                {
                    "text": t,
                    "ids": hf(t)["input_ids"],
                    "plain": hf(t, add_special_tokens=False)["input_ids"],
                }
                for t in texts
            ],
            "chat": None,
        }
        if template is not None:
            ids = hf.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=True)
            if not isinstance(ids, list):
                ids = ids["input_ids"]
            entry["chat"] = {"messages": MESSAGES, "ids": ids}
        result[name] = entry
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
