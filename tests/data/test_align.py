"""The translation aligner: DP exactness, recovery of synthetic deletions, cache, CLI, and the real Vietnamese Alpaca."""

from __future__ import annotations

import itertools
import json
import math
import random

import numpy as np
import pytest

from crosstune.data.align import align_translation, load_aligned
from crosstune.data.align.dp import NEG, Band, match_posteriors, viterbi
from crosstune.data.io import read_examples
from crosstune.data.schema import Example, Message
from tests.conftest import run_main as _run, shared_path

# ---------------------------------------------------------------- synthetic "translations"
WORDS = ("the a of to and in is for on with that this as be by are from it an or at make list write describe "
         "explain give name create three five tips health colour story poem code data city water science music "
         "history energy garden market river planet computer teacher friend summer").split()


def _english(rng: random.Random, i: int) -> Example:
    def words(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))

    instruction = words(rng.randint(3, 14)).capitalize() + rng.choice([".", "?", ""])
    inp = ""
    if rng.random() < 0.4:
        inp = f"{words(rng.randint(2, 8))} {rng.randint(1, 999)}"
    lines = [words(rng.randint(4, 30)) + "." for _ in range(rng.choice([1, 1, 1, 2, 4]))]
    if rng.random() < 0.5:
        lines[0] += f" {rng.randint(1, 2025)}"
    if rng.random() < 0.15:
        lines.append(f"Python{rng.randint(1, 99)} x_{rng.randint(1, 9)} = f({rng.randint(1, 99)})")
    output = "\n".join(f"{k + 1}. {line}" for k, line in enumerate(lines)) if len(lines) > 2 else " ".join(lines)
    msgs = [Message("user", f"{instruction}\n\n{inp}" if inp else instruction, "en"), Message("assistant", output, "en")]
    return Example(str(i), msgs, meta={"fields": {"instruction": instruction, "input": inp}})


def _translate(rng: random.Random, ex: Example, lexicon: dict[str, str]) -> Example:
    """Word-by-word into a made-up language: words change, numbers/code/punctuation/newlines survive."""
    def tr(text: str) -> str:
        return "\n".join(" ".join(lexicon.get(w.lower(), w) for w in line.split(" ")) for line in text.split("\n"))
    fields = ex.meta["fields"]
    prompt = tr(fields["instruction"]) + (f": {tr(fields['input'])}" if fields["input"] else "")
    return Example("?", [Message("user", prompt, "vi"), Message("assistant", tr(ex.response.content), "vi")],
                   meta={"fields": {"instruction": prompt, "input": ""}})


def make_pair(n: int = 400, seed: int = 0, dropped=(0, 1, 2, 150, 151, 152, 153, 154, 260, 397, 398, 399),
              foreign_at=(100, 300)):
    """Reference of n rows; target = translation with `dropped` rows removed and foreign rows inserted."""
    rng = random.Random(seed)
    lexicon = {w: "".join(rng.choice("aăâbcdđeêghiklmnoôơpqrstuưvxy") for _ in range(rng.randint(1, 8)))
               for w in WORDS}
    reference = [_english(rng, i) for i in range(n)]
    target, truth = [], {}
    for i, ex in enumerate(reference):
        if i in foreign_at:
            target.append(_translate(rng, _english(random.Random(10_000 + i), -1), lexicon))
        if i not in dropped:
            truth[len(target)] = i
            target.append(_translate(rng, ex, lexicon))
    return reference, target, truth


def test_recovers_deletions_at_start_middle_and_end():
    reference, target, truth = make_pair()
    alignment = align_translation(reference, target)
    kept = {p.target_index: p.ref_index for p in alignment.kept}
    wrong = {t: r for t, r in kept.items() if truth.get(t) != r}
    assert not wrong, f"kept pairs that are not the truth: {wrong}"
    assert len(kept) >= 0.97 * len(truth)
    refs = [p.ref_index for p in alignment.pairs]
    assert refs == sorted(set(refs)), "pairs must be monotone and one-to-one"
    s = alignment.stats
    assert s["aligned"] + s["unmatched_target"] == len(target) and s["kept"] == len(kept)


def test_foreign_rows_are_not_kept():
    reference, target, truth = make_pair()
    foreign = set(range(len(target))) - set(truth)
    assert len(foreign) == 2
    kept = {p.target_index for p in align_translation(reference, target).kept}
    assert not kept & foreign


def test_target_longer_than_reference():
    reference, target, truth = make_pair(n=120, dropped=(), foreign_at=(0, 30, 60, 90))
    kept = {p.target_index: p.ref_index for p in align_translation(reference, target).kept}
    assert all(truth.get(t) == r for t, r in kept.items()) and len(kept) >= 0.95 * len(truth)


# ---------------------------------------------------------------- the DP against brute force
def _brute_force(scores, band, n, m, skip_ref, skip_target):
    def s(i, j):
        k = j - i - band.lo
        return scores[i, k] if 0 <= k < scores.shape[1] else NEG

    def in_band(i, j):
        return band.lo <= j - i <= band.hi

    fwd = np.full((n + 1, m + 1), -np.inf)
    fwd[0, 0] = 0.0
    for i in range(n + 1):
        for j in range(m + 1):
            if (i, j) == (0, 0) or not in_band(i, j):
                continue
            terms = [fwd[i - 1, j - 1] + s(i - 1, j - 1)] if i and j else []
            terms += [fwd[i - 1, j] - skip_target] if i else []
            terms += [fwd[i, j - 1] - skip_ref] if j else []
            fwd[i, j] = np.logaddexp.reduce(terms)
    bwd = np.full((n + 1, m + 1), -np.inf)
    bwd[n, m] = 0.0
    for i in range(n, -1, -1):
        for j in range(m, -1, -1):
            if (i, j) == (n, m) or not in_band(i, j):
                continue
            terms = [bwd[i + 1, j + 1] + s(i, j)] if i < n and j < m else []
            terms += [bwd[i + 1, j] - skip_target] if i < n else []
            terms += [bwd[i, j + 1] - skip_ref] if j < m else []
            bwd[i, j] = np.logaddexp.reduce(terms)
    post = np.array([[math.exp(fwd[i, j] + s(i, j) + bwd[i + 1, j + 1] - fwd[n, m]) for j in range(m)]
                     for i in range(n)])
    return post


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_posteriors_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, m = 6, 9
    band = Band.around(n, m, 3)
    scores = rng.normal(size=(n, band.offsets.size)) * 2
    for i in range(n):
        r = i + band.offsets
        scores[i][(r < 0) | (r >= m)] = NEG
    exact = _brute_force(scores, band, n, m, 1.0, 2.0)
    post = match_posteriors(scores, band, 1.0, 2.0)
    for i in range(n):
        for j in range(m):
            k = j - i - band.lo
            mine = post[i, k] if 0 <= k < post.shape[1] else 0.0
            assert mine == pytest.approx(exact[i, j], abs=1e-5)
    # each target row is matched at most once: its posteriors sum to at most 1
    assert (post.sum(1) <= 1 + 1e-5).all()
    path = viterbi(scores, band, 1.0, 2.0)
    assert all(b[0] > a[0] and b[1] > a[1] for a, b in itertools.pairwise(path))


def test_viterbi_skips_the_deleted_reference_row():
    band = Band.around(3, 4, 2)
    scores = np.full((3, band.offsets.size), -5.0)
    for t, r in [(0, 0), (1, 2), (2, 3)]:  # reference row 1 was dropped
        scores[t, r - t - band.lo] = 8.0
    assert viterbi(scores, band, 4.0, 6.0) == [(0, 0), (1, 2), (2, 3)]


# ---------------------------------------------------------------- files, cache, CLI
def _write_files(tmp_path, reference, target):
    ref_path, tgt_path = tmp_path / "ref.jsonl", tmp_path / "tgt.jsonl"
    with open(ref_path, "w", encoding="utf-8") as f:
        for ex in reference:
            fields = ex.meta["fields"]
            f.write(json.dumps({"en_instruction": fields["instruction"], "en_input": fields["input"],
                                "en_output": ex.response.content}) + "\n")
    with open(tgt_path, "w", encoding="utf-8") as f:
        for ex in target:
            f.write(json.dumps({"prompt": ex.instruction.content, "response": ex.response.content}) + "\n")
    return ref_path, tgt_path


def test_load_aligned_reidentifies_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSTUNE_CACHE", str(tmp_path / "cache"))
    reference, target, truth = make_pair(n=200, dropped=(0, 50, 51, 199), foreign_at=())
    ref_path, tgt_path = _write_files(tmp_path, reference, target)
    first = load_aligned(ref_path, tgt_path, target_language="Vietnamese")
    cached = list((tmp_path / "cache" / "align").glob("*.json"))
    assert len(cached) == 1
    again = load_aligned(ref_path, tgt_path, target_language="vi")
    assert [e.to_dict() for e in again] == [e.to_dict() for e in first]
    ex = first[0]
    assert ex.id == str(truth[ex.meta["target_index"]])
    assert ex.meta["align_confidence"] >= 0.9 and ex.messages[0].language == "vi"
    strict = load_aligned(ref_path, tgt_path, target_language="vi", min_confidence=1.01)
    assert strict == [] and len(list((tmp_path / "cache" / "align").glob("*.json"))) == 1  # threshold: no recompute




def test_cli_accounts_for_every_target_row(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CROSSTUNE_CACHE", str(tmp_path / "cache"))
    reference, target, _ = make_pair(n=150, dropped=(3, 70, 71), foreign_at=(40,))
    ref_path, tgt_path = _write_files(tmp_path, reference, target)
    out = tmp_path / "aligned.jsonl"
    code, cap = _run(["data", "align", "--reference", str(ref_path), "--reference-prefix", "en_",
                      "--target", str(tgt_path), "--target-language", "vi", "--out", str(out)], capsys)
    assert code == 0, cap.err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    tsv = (tmp_path / "aligned.pairs.tsv").read_text().splitlines()
    assert tsv[0].split("\t") == ["target_index", "ref_index", "ref_id", "confidence", "status"]
    status = [line.split("\t")[-1] for line in tsv[1:]]
    assert len(status) == len(target) and status.count("kept") == len(rows)
    assert set(status) <= {"kept", "low_confidence", "unmatched"} and "kept" in status
    assert "aligned" in cap.out and "confidence" in cap.err
    assert {r["id"] for r in rows} <= {str(i) for i in range(150)}


def test_cli_rejects_bad_threshold_and_missing_file(tmp_path, capsys):
    code, cap = _run(["data", "align", "--reference", str(tmp_path / "nope.jsonl"), "--target", "x.jsonl",
                      "--target-language", "vi", "--out", str(tmp_path / "o.jsonl"), "--min-confidence", "2"], capsys)
    assert code == 2 and "--min-confidence 2" in cap.err and "Traceback" not in cap.err
    code, cap = _run(["data", "align", "--reference", str(tmp_path / "nope.jsonl"), "--target", "x.jsonl",
                      "--target-language", "vi", "--out", str(tmp_path / "o.jsonl")], capsys)
    assert code == 2 and "no such file" in cap.err


# ---------------------------------------------------------------- the real data
@pytest.mark.integration
def test_real_vietnamese_alpaca_prefix():
    """The first 5,100 Vietnamese rows against the first 5,250 Alpaca rows (hand-checked pairs must come out)."""
    vi = shared_path("alpaca_vietnamese_gpt4vn", "vi_alpaca_reduced.jsonl.gz")
    en = shared_path("alpaca_chinese_parallel", "alpaca_en_zh_52k_v3.jsonl.gz")
    reference = [ex for ex, _ in zip(read_examples(en, "alpaca", language="en", prefix="en_"), range(5250))]
    target = [ex for ex, _ in zip(read_examples(vi, "prompt_response", language="vi"), range(5100))]
    alignment = align_translation(reference, target)
    kept = {p.target_index: p.ref_index for p in alignment.kept}
    # Rows 0-4 are Alpaca 0-4; Alpaca 5 and 8 were dropped, so vi 5 is the "4/16" row (Alpaca 6) and vi 7 Alpaca 9.
    assert [kept.get(i) for i in range(8)] == [0, 1, 2, 3, 4, 6, 7, 9]
    for t, r in [(723, 739), (1393, 1417), (2137, 2168), (2783, 2832), (3667, 3726), (4291, 4362)]:
        assert kept.get(t) == r  # hand-checked in docs/alignment.md
    assert len(kept) >= 0.97 * len(target)


def test_band_too_wide_is_a_clear_error(monkeypatch):
    from crosstune.data.align import core
    from crosstune.errors import CrosstuneError

    reference, target, _ = make_pair(n=60, dropped=tuple(range(10, 50)), foreign_at=())
    monkeypatch.setattr(core, "MAX_BAND_CELLS", 500)
    with pytest.raises(CrosstuneError, match="is this the right reference"):
        align_translation(reference, target)


@pytest.mark.integration
def test_real_chinese_with_known_deletions():
    """Ground truth on real translations: the Chinese side of Alpaca with rows removed at known places."""
    path = shared_path("alpaca_chinese_parallel", "alpaca_en_zh_52k_v3.jsonl.gz")
    en = [ex for ex, _ in zip(read_examples(path, "alpaca", language="en", prefix="en_"), range(6000))]
    zh = [ex for ex, _ in zip(read_examples(path, "alpaca", language="zh", prefix="zh_"), range(6000))]
    rng = random.Random(0)
    dropped = set(rng.sample(range(6000), 120)) | set(range(5)) | set(range(3000, 3030)) | set(range(5990, 6000))
    kept_rows = [i for i in range(6000) if i not in dropped]
    alignment = align_translation(en, [zh[i] for i in kept_rows])
    kept = alignment.kept
    wrong = [(p.target_index, p.ref_index) for p in kept if kept_rows[p.target_index] != p.ref_index]
    assert not wrong
    assert len(kept) >= 0.97 * len(kept_rows)
