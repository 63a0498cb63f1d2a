"""Second opinion on a built set: language ID of each side of `train.jsonl` with lingua (restricted to the
set's languages) against the declared languages. The build's own filter used pycld2, so this is independent.

    python benchmarks/langid_agreement.py runs/data/crossin/train.jsonl [--sample 3000]
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter

from crosstune.data.langid import get_detector, same_base_language

MARKS = re.compile(r"\n\[[a-z-]+\]$|^Translate the following sentence into [A-Za-z ]+\.\n\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--sample", type=int, default=3000)
    args = ap.parse_args()
    rows = [json.loads(line) for line in open(args.path, encoding="utf-8")]
    rows = random.Random(0).sample(rows, min(args.sample, len(rows)))
    langs = sorted({m["language"] for r in rows for m in r["messages"]})
    det = get_detector("lingua", langs) if len(langs) > 1 else get_detector("pycld2")
    for role in ("user", "assistant"):
        msgs = [m for r in rows for m in r["messages"] if m["role"] == role]
        texts = [MARKS.sub("", m["content"]) for m in msgs]  # tags and the English directive are not content
        found = det.detect_many(texts)
        tally = Counter(("all" if i < 0 else m["language"],
                         "undetermined" if tag is None else "agree" if same_base_language(tag, m["language"])
                         else "mismatch") for m, (tag, _) in zip(msgs, found) for i in (-1, 0))
        parts = []
        for lang in ["all", *langs]:
            agree, bad, unk = (tally[lang, k] for k in ("agree", "mismatch", "undetermined"))
            if agree + bad:
                parts.append(f"{lang} {agree / (agree + bad):.4f} ({agree}/{agree + bad}, {unk} undetermined)")
        print(f"{role} (lingua over {', '.join(langs)}): " + "; ".join(parts))


if __name__ == "__main__":
    main()
