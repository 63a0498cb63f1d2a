"""Tiny random models whose tokenizers follow real families' BOS/EOS conventions and chat templates (written here
from the published templates' formats, shortened where they only add dates or tool text): built in the test, no
download. Each tokenizer is a character-level WordLevel model with the family's special tokens as added tokens and,
where the family's tokenizer adds a BOS to plain text, a post-processor that does so."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Family:
    name: str
    bos: str | None
    eos: str
    adds_bos: bool  # the tokenizer puts its BOS before plain text
    specials: tuple[str, ...]
    template: str
    stops: tuple[str, ...]  # generation_config eos_token_id (the end-of-turn token first)
    chat_bos: int  # BOS tokens the chat template writes for one conversation (single turn)
    system: bool = True  # the template accepts a system message


LLAMA2 = Family(
    "llama2-chat", "<s>", "</s>", True, ("<s>", "</s>"),
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
    ("</s>",), 1)

LLAMA31 = Family(
    "llama3.1-instruct", "<|begin_of_text|>", "<|eot_id|>", True,
    ("<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"),
    "{{- bos_token }}{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}{{- 'Cutting Knowledge Date: December 2023\\n' }}"
    "{{- 'Today Date: 26 Jul 2024\\n\\n' }}{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
    "message['content'] | trim + '<|eot_id|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}",
    ("<|eot_id|>", "<|end_of_text|>"), 1)

GEMMA = Family(
    "gemma-2-it", "<bos>", "<eos>", True, ("<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"),
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}",
    ("<end_of_turn>", "<eos>"), 1, system=False)

MISTRAL = Family(
    "mistral-7b-instruct-v0.3", "<s>", "</s>", True, ("<s>", "</s>", "[INST]", "[/INST]"),
    "{{- bos_token }}{%- for message in messages %}{%- if message['role'] == 'user' %}"
    "{{- '[INST] ' + message['content'] + '[/INST]' }}{%- elif message['role'] == 'assistant' %}"
    "{{- ' ' + message['content'] + eos_token }}{%- endif %}{%- endfor %}",
    ("</s>",), 1, system=False)

QWEN25 = Family(
    "qwen2.5-instruct", None, "<|im_end|>", False, ("<|im_start|>", "<|im_end|>", "<|endoftext|>"),
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.<|im_end|>\\n' }}{%- endif %}{%- for message in messages %}"
    "{%- if not (message['role'] == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endif %}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
    ("<|im_end|>", "<|endoftext|>"), 0)

PHI35 = Family(
    "phi-3.5-mini-instruct", "<s>", "<|endoftext|>", False,
    ("<s>", "</s>", "<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"),
    "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}"
    "{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}"
    "{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}"
    "{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}",
    ("<|end|>", "<|endoftext|>", "<|assistant|>"), 0)

SMOLLM2 = Family(
    "smollm2-instruct", "<|im_start|>", "<|im_end|>", False, ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    ("<|im_end|>",), 0)

FAMILIES = (LLAMA2, LLAMA31, GEMMA, MISTRAL, QWEN25, PHI35, SMOLLM2)


def build_family(family: Family, out: Path) -> Path:
    """Save a tiny random Llama-architecture model with the family's tokenizer conventions into `out`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(dict.fromkeys(family.specials + ("<unk>",)))}
    for ch in [chr(i) for i in range(32, 127)] + list("\n你好世界"):
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(list(family.specials))
    if family.adds_bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{family.bos}:0 $A:0", pair=f"{family.bos}:0 $A:0 $B:1",
            special_tokens=[(family.bos, vocab[family.bos])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=family.bos, eos_token=family.eos,
                                   pad_token=family.eos, unk_token="<unk>")
    fast.chat_template = family.template
    fast.save_pretrained(out)
    torch.manual_seed(0)
    stops = [vocab[s] for s in family.stops]
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                      bos_token_id=vocab[family.bos] if family.bos else None, eos_token_id=stops[0],
                      pad_token_id=vocab[family.eos], tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    model.generation_config = GenerationConfig(eos_token_id=stops, pad_token_id=vocab[family.eos],
                                               bos_token_id=cfg.bos_token_id)
    model.save_pretrained(out)
    return out
