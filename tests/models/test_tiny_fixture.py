from transformers import AutoModelForCausalLM, AutoTokenizer


def test_tiny_model_loads_and_templates(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    text = tok.apply_chat_template([{"role": "user", "content": "你好 hi"}], tokenize=False,
                                   add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")
    ids = tok(text, return_tensors="pt").input_ids
    assert tok.decode(ids[0]) == text
    assert model(ids).logits.shape[-1] == len(tok)
