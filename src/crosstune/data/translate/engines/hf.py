"""Any transformers seq2seq translation model (MarianMT, NLLB, M2M100, MADLAD), batched, no remote code.

Each family names languages its own way (`engines/codes.py`); the source-language token, the target-language
prefix or the forced first decoder token are built here explicitly, so any tokenizer with those tokens works, and
a language the model's vocabulary lacks is an error before any work.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from crosstune.data.translate.engines.codes import FAMILIES, family_tokens
from crosstune.errors import CrosstuneError
from crosstune.languages import normalize
from crosstune.threads import set_threads


class HFEngine:
    kind = "hf"
    cached = False

    def __init__(self, cfg):
        if not cfg.model:
            raise CrosstuneError("engine hf: set engine.model to a model folder or hub id (e.g. a MarianMT folder)")
        self.cfg = cfg
        self.model = cfg.model
        self._tok = None
        self._model = None
        self._family = None
        self._limit = cfg.max_length
        self.device = _device(cfg.device)  # a device this machine lacks fails here, before any work

    # ---- identity and limits ------------------------------------------------------------------------------
    @property
    def tok(self):
        if self._tok is None:
            from transformers import AutoTokenizer

            try:
                self._tok = AutoTokenizer.from_pretrained(self.model, trust_remote_code=False)
            except Exception as e:
                raise CrosstuneError(f"engine hf: cannot load the tokenizer of {self.model} "
                                     f"({type(e).__name__}: {e})") from None
        return self._tok

    @property
    def vocab(self) -> dict:
        return self.tok.get_vocab()

    @property
    def family(self) -> str:
        if self._family is None:
            self._family = self.cfg.family if self.cfg.family != "auto" else self._detect_family()
        return self._family

    def _detect_family(self) -> str:
        vocab = self.vocab
        if "eng_Latn" in vocab:
            return "nllb"
        if "__en__" in vocab:
            return "m2m100"
        if "<2en>" in vocab:
            return "madlad"
        from transformers import AutoConfig

        if getattr(AutoConfig.from_pretrained(self.model), "model_type", "") == "marian":
            return "marian"
        raise CrosstuneError(f"engine hf: cannot tell the model family of {self.model}; set engine.family to one "
                             f"of {', '.join(FAMILIES)}")

    @property
    def limit(self) -> int:
        if self._limit is None:
            n = getattr(self.tok, "model_max_length", 512) or 512
            self._limit = int(min(n if n < 100_000 else 512, 512)) - 4  # room for language and end tokens
        return self._limit

    def fingerprint(self) -> str:
        from crosstune.models.fingerprint import model_fingerprint

        return model_fingerprint(self.model)

    def settings(self) -> dict:
        return {"family": self.family, "num_beams": self.cfg.num_beams, "max_new_tokens": self.cfg.max_new_tokens}

    def measure(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False)["input_ids"])

    # ---- languages --------------------------------------------------------------------------------------
    def _token(self, tag: str) -> str | None:
        vocab = self.vocab
        return next((t for t in family_tokens(self.family, tag) if t in vocab), None)

    def _marian_pair(self) -> tuple[str, str] | None:
        if self.cfg.pair:
            return normalize(self.cfg.pair[0]), normalize(self.cfg.pair[1])
        src, tgt = getattr(self.tok, "source_lang", None), getattr(self.tok, "target_lang", None)
        if not (src and tgt):  # opus-mt-en-pt and the like name their pair
            m = re.search(r"opus-mt-([a-z]{2,3})-([a-z]{2,3})$", Path(self.model).name.lower())
            src, tgt = (m.group(1), m.group(2)) if m else (None, None)
        try:
            return (normalize(src), normalize(tgt)) if src and tgt else None
        except CrosstuneError:
            return None

    def _multi_target(self) -> bool:
        return any(t.startswith(">>") and t.endswith("<<") for t in self.vocab)

    def supports(self, source: str, target: str) -> bool:
        if self.family == "marian":
            if self._multi_target():
                return self._token(target) is not None
            pair = self._marian_pair()
            return pair == (normalize(source), normalize(target))
        if self.family == "madlad":
            return self._token(target) is not None
        return self._token(source) is not None and self._token(target) is not None

    def check_pair(self, source: str, target: str) -> None:
        if self.family == "marian" and not self._multi_target() and self._marian_pair() is None:
            raise CrosstuneError(f"engine hf: {self.model} is a single-pair Marian model whose pair is unknown; "
                                 "set engine.pair: [SOURCE, TARGET]")
        if not self.supports(source, target):
            wanted = ", ".join(family_tokens(self.family, target))
            raise CrosstuneError(f"engine hf: {self.model} ({self.family}) cannot translate {source}->{target} "
                                 f"(no {wanted} token in its vocabulary"
                                 + (f"; its pair is {'->'.join(self._marian_pair() or ())}" if self.family == "marian"
                                    and not self._multi_target() else "") + ")")

    # ---- translation ------------------------------------------------------------------------------------
    def _load_model(self):
        if self._model is None:
            import torch
            from transformers import AutoModelForSeq2SeqLM

            set_threads(self.cfg.threads)
            dtype = getattr(torch, self.cfg.dtype)
            self._model = AutoModelForSeq2SeqLM.from_pretrained(self.model, dtype=dtype, trust_remote_code=False)
            self._model.to(self.device).eval()  # auto, under a multi-process launch: the GPU of this process
        return self._model

    def encode(self, text: str, source: str, target: str) -> list[int]:
        """Input ids by the family's convention: NLLB/M2M100 `[src] text </s>`, MADLAD and multi-target Marian
        `[<2tgt> | >>tgt<<] text </s>`, single-pair Marian `text </s>`."""
        tok = self.tok
        ids = tok(text, add_special_tokens=False)["input_ids"][: self.limit]
        eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
        if self.family in ("nllb", "m2m100"):
            return [tok.convert_tokens_to_ids(self._token(source))] + ids + eos
        if self.family == "madlad" or (self.family == "marian" and self._multi_target()):
            return [tok.convert_tokens_to_ids(self._token(target))] + ids + eos
        return ids + eos

    def forced_bos(self, target: str) -> int | None:
        """NLLB and M2M100 start the output with the target-language token."""
        if self.family in ("nllb", "m2m100"):
            return self.tok.convert_tokens_to_ids(self._token(target))
        return None

    def translate_iter(self, texts: list[str], source: str, target: str) -> Iterator[tuple[int, str]]:
        import torch

        model, tok = self._load_model(), self.tok
        encoded = [self.encode(t, source, target) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: -len(encoded[i]))  # similar lengths share a batch
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        bos = self.forced_bos(target)
        bs = self.cfg.batch_size
        for start in range(0, len(order), bs):
            idx = order[start:start + bs]
            n = max(len(encoded[i]) for i in idx)
            ids = torch.tensor([encoded[i] + [pad] * (n - len(encoded[i])) for i in idx])
            mask = torch.tensor([[1] * len(encoded[i]) + [0] * (n - len(encoded[i])) for i in idx])
            kwargs = dict(max_new_tokens=self.cfg.max_new_tokens, num_beams=self.cfg.num_beams, do_sample=False)
            if bos is not None:
                kwargs["forced_bos_token_id"] = bos
            with torch.inference_mode():
                out = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device), **kwargs)
            for i, text in zip(idx, tok.batch_decode(out, skip_special_tokens=True)):
                yield i, text.strip()


def _device(name: str):
    """`engine.device` as a torch device (auto: this process's GPU under a multi-process launch, else the CPU)."""
    from crosstune.models.device import pick_device

    try:
        return pick_device(name)
    except CrosstuneError as e:
        raise CrosstuneError(f"engine hf: field 'engine.device': {str(e).replace('--device ', 'engine.device=')}") \
            from None
