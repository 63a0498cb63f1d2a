"""Which examples go into which step, micro-batch and row; and rows -> tensors.

A plan is deterministic in (seed, epoch), so resuming only needs (epoch, step index). A step holds
`grad_accum * world_size` micro-batches; process `rank` takes micro-batches `[rank*ga, (rank+1)*ga)`, so a
2-process run and a 1-process run with twice the accumulation see the same global batch.

- `pad`: one example per row, rows padded to the longest in the micro-batch; examples are grouped by length
  inside shuffled windows so little padding is computed.
- `pack`: examples are packed (next-fit, never split) into rows of up to `max_length` tokens. `position_ids`
  restart at every example and no 2-D attention mask is passed, which makes transformers (>= 4.50
  `masking_utils.find_packed_sequence_indices`, used by sdpa/eager/flex) build a block-diagonal causal mask: no
  attention or position leaks across examples. `check_isolation` verifies this on the loaded model.
"""

from __future__ import annotations

import torch

from crosstune.train.tokenize import IGNORE, Tokenized

Row = list[int]
Micro = list[Row]
Step = list[Micro]
GROUP_WINDOW = 16  # micro-batches per length-sorting window


def epoch_plan(lengths: list[int], mode: str, size: int, max_length: int, micro_per_step: int,
               seed: int, epoch: int) -> list[Step]:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=g).tolist()
    if mode == "pack":
        rows = _pack(order, lengths, max_length)
    else:
        rows = _length_grouped(order, lengths, size * micro_per_step * GROUP_WINDOW, g)
    micros = [rows[i:i + size] for i in range(0, len(rows) - size + 1, size)]
    steps = [micros[i:i + micro_per_step] for i in range(0, len(micros) - micro_per_step + 1, micro_per_step)]
    if mode == "pad":  # windows were sorted by length: shuffle whole steps so lengths do not drift in time
        steps = [steps[i] for i in torch.randperm(len(steps), generator=g).tolist()]
    return steps  # an incomplete last global batch is left out (the caller counts it)


def _pack(order: list[int], lengths: list[int], max_length: int) -> list[Row]:
    rows: list[Row] = []
    cur: Row = []
    used = 0
    for i in order:
        if cur and used + lengths[i] > max_length:
            rows.append(cur)
            cur, used = [], 0
        cur.append(i)
        used += lengths[i]
    if cur:
        rows.append(cur)
    return rows


def _length_grouped(order: list[int], lengths: list[int], window: int, g: torch.Generator) -> list[Row]:
    rows: list[Row] = []
    for s in range(0, len(order), window):
        chunk = sorted(order[s:s + window], key=lambda i: -lengths[i])
        rows += [[i] for i in chunk]
    return rows


def collate(micro: Micro, data: list[Tokenized], pad_id: int, mode: str, lang_index: dict, mode_index: dict) -> dict:
    """Rows -> input_ids, position_ids, attention_mask (pad only), shifted `targets`, per-token group ids."""
    width = max(sum(len(data[i].input_ids) for i in row) for row in micro)
    ids, pos, tgt, lang, md, att = [], [], [], [], [], []
    for row in micro:
        r_ids, r_pos, r_tgt, r_lang, r_md = [], [], [], [], []
        for i in row:
            ex = data[i]
            n = len(ex.input_ids)
            r_ids += ex.input_ids
            r_pos += range(n)
            r_tgt += ex.labels[1:] + [IGNORE]  # shift inside the example: no target crosses a boundary
            r_lang += [lang_index[ex.language]] * n
            r_md += [mode_index[ex.mode]] * n
        pad = width - len(r_ids)
        att.append([1] * len(r_ids) + [0] * pad)
        ids.append(r_ids + [pad_id] * pad)
        pos.append(r_pos + list(range(pad)))  # padding is its own "sequence", never attended to by real tokens
        tgt.append(r_tgt + [IGNORE] * pad)
        lang.append(r_lang + [0] * pad)
        md.append(r_md + [0] * pad)
    batch = {k: torch.tensor(v) for k, v in
             dict(input_ids=ids, position_ids=pos, targets=tgt, lang=lang, mode=md).items()}
    batch["attention_mask"] = torch.tensor(att) if mode == "pad" else None
    batch["real_tokens"] = sum(sum(a) for a in att)
    return batch


@torch.no_grad()
def check_isolation(model, vocab_size: int) -> bool:
    """True when a packed row gives the same logits as its examples run one by one (no cross-example leak)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randint(3, vocab_size, (1, 7), generator=g)
    b = torch.randint(3, vocab_size, (1, 5), generator=g)
    packed = torch.cat([a, b], 1)
    pos = torch.tensor([list(range(7)) + list(range(5))])
    # use_cache=False as in training: with a KV cache transformers skips the packed-sequence detection
    out = model(input_ids=packed, position_ids=pos, use_cache=False).logits
    ref = torch.cat([model(input_ids=x, use_cache=False).logits for x in (a, b)], 1)
    return torch.allclose(out, ref, atol=1e-4, rtol=1e-3)
