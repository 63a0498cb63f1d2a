"""Judge protocols as data: the prompt file, its rendering, the verdict parser and the per-pair aggregation.

- `xinstruct` (X-Instruction, `utils/gpt4_eval.py` Prompt_2 and its system prompt, verbatim; temperature 0,
  max_tokens 256): an integer 0-10 per answer in `<score1>`/`<score2>`. A verdict without both tags, or with a
  value that is not an integer in 0..10, is a parse failure (the reference writes -1 and averages it in; here it is
  counted and the pair leaves the scores).
- `pinch` (Shaham et al.'s side-by-side: each pair in both orders, the same pick twice = win, a flip = tie): the
  paper's judge prompt (its Fig. 9) is not published with code, so crosstune ships its own single-letter prompt;
  replace it with `--prompt FILE`.

A prompt file is a template with `{lang}`, `{instruction}`, `{output1}`, `{output2}`; an optional `[system]` block
before a `[user]` line becomes the system message. Only those four names are substituted, so braces elsewhere in
the template or in the responses are safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from crosstune.errors import CrosstuneError

PLACEHOLDERS = ("{lang}", "{instruction}", "{output1}", "{output2}")
# `{lang}` is the English language name; where CLDR's name differs from the one the released judge prompts use
# (X-Instruction writes "Bengali"), the prompts' spelling is rendered
PROMPT_NAMES = {"Bangla": "Bengali"}
REQUIRED = ("{instruction}", "{output1}", "{output2}")


@dataclass(frozen=True)
class Prompt:
    system: str | None
    user: str
    source: str

    def render(self, lang: str, instruction: str, output1: str, output2: str) -> list[dict]:
        lang = PROMPT_NAMES.get(lang, lang)
        values = dict(zip(PLACEHOLDERS, (lang, instruction, output1, output2)))
        user = re.sub("|".join(re.escape(p) for p in PLACEHOLDERS), lambda m: values[m.group(0)], self.user)
        system = self.system.replace("{lang}", lang) if self.system else None
        return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]


def parse_prompt(text: str, source: str) -> Prompt:
    """`[system]` ... `[user]` ... or a bare user template."""
    system = None
    if text.startswith("[system]\n"):
        head, sep, user = text[len("[system]\n"):].partition("\n[user]\n")
        if not sep:
            raise CrosstuneError(f"{source}: a [system] block must be followed by a line '[user]' and the template")
        system = head
    elif text.startswith("[user]\n"):
        user = text[len("[user]\n"):]
    else:
        user = text
    missing = [p for p in REQUIRED if p not in user]
    if missing:
        raise CrosstuneError(f"{source}: the judge prompt has no {', '.join(missing)}; a judge template needs "
                             f"{{instruction}}, {{output1}} and {{output2}} (and may use {{lang}})")
    return Prompt(system, user, source)


def load_prompt(protocol: str, path: str | Path | None = None) -> Prompt:
    """The user's prompt file, or the protocol's packaged default (`crosstune/prompts/judge_<protocol>.txt`)."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise CrosstuneError(f"--prompt {p}: no such file")
        return parse_prompt(p.read_text(encoding="utf-8"), str(p))
    res = resources.files("crosstune").joinpath("prompts", f"judge_{protocol}.txt")
    if not res.is_file():  # a user's protocol (package.module:Object) ships no prompt here
        raise CrosstuneError(f"--protocol {protocol!r} has no packaged prompt; pass --prompt FILE")
    return parse_prompt(res.read_text(encoding="utf-8"), f"crosstune/prompts/judge_{protocol}.txt")


# ---- verdict parsers: raw text -> (parsed dict, None) or (None, reason) -----------------------------------------
_SCORE = {k: re.compile(rf"<{k}>\s*([^<]*?)\s*</{k}>", re.I | re.S) for k in ("score1", "score2")}


def parse_scores(text: str) -> tuple[dict | None, str | None]:
    """`<score1>7</score1><score2>4</score2>` -> {"first": 7, "second": 4}; integers 0..10 only."""
    out = {}
    for key, name in (("score1", "first"), ("score2", "second")):
        m = _SCORE[key].search(text or "")
        if not m:
            return None, f"no <{key}>...</{key}>"
        raw = m.group(1)
        try:
            value = float(raw)
        except ValueError:
            return None, f"<{key}> is not a number"  # reasons aggregate; the raw verdict is kept beside them
        if value != int(value) or not 0 <= value <= 10:
            return None, f"<{key}> is not an integer in 0..10"
        out[name] = int(value)
    return out, None


_LETTER_ONLY = re.compile(r"^\W*\(?([ab])\)?\W*$", re.I)
_BRACKETED = re.compile(r"\[\[\s*([ab])\s*\]\]", re.I)
_NAMED = re.compile(r"(?i:\b(?:response|output|answer|option|choice)\s*(?:is\s*)?)"
                    r"(?:\(([abAB])\)|:\s*\(?([abAB])\)?(?![A-Za-z])|([AB])(?![A-Za-z]))")
_LEADING = re.compile(r"^\W*\(?([ab])\)?(?:[\s.:,)]|$)", re.I)
# both letters offered as alternatives ("a or b", "(a)/(b)", "[[A]] and [[B]]", "A vs B"): no decision
_BOTH = re.compile(r"(?<![A-Za-z])[(\[]*([ab])[)\]]*\s*(?:or|and|nor|/|&|vs\.?|versus|,)\s*[(\[]*([ab])[)\]]*"
                   r"(?![A-Za-z])", re.I)
_UNDECIDED = re.compile(r"^\W*(?:both|neither|tie|equal(?:ly)?|either|none)\b", re.I)


def parse_choice(text: str) -> tuple[dict | None, str | None]:
    """The picked position: `a`, `(b)`, `[[A]]`, `Response (a) is better`, `b. Because ...` -> first/second."""
    text = (text or "").strip()
    if not text:
        return None, "empty verdict"
    if _UNDECIDED.match(text) or any(a.lower() != b.lower() for a, b in _BOTH.findall(text)):
        return None, "ambiguous: both or neither of (a) and (b)"
    for pattern in (_LETTER_ONLY, _BRACKETED):
        m = pattern.search(text)
        if m:
            return {"pick": "first" if m.group(1).lower() == "a" else "second"}, None
    named = {"".join(g).lower() for g in _NAMED.findall(text)}
    if len(named) == 1:
        return {"pick": "first" if named.pop() == "a" else "second"}, None
    if len(named) > 1:
        return None, "names both (a) and (b)"
    m = _LEADING.match(text)
    if m:
        return {"pick": "first" if m.group(1).lower() == "a" else "second"}, None
    return None, "no choice of (a) or (b)"  # the raw verdict is kept beside the reason


# ---- per-order preference, per-pair outcome -------------------------------------------------------------------
def preferred_position(protocol: str, parsed: dict) -> str:
    """first / second / tie: which displayed position this verdict prefers."""
    if protocol == "pinch":
        return parsed["pick"]
    return "first" if parsed["first"] > parsed["second"] else "second" if parsed["second"] > parsed["first"] \
        else "tie"


def to_answer(position: str, order: str) -> str:
    """Map a preferred position to the answer it shows (order "ab": A first; "ba": B first); tie stays tie."""
    if position == "tie":
        return "tie"
    return order[0] if position == "first" else order[1]


def pair_outcome(protocol: str, verdicts: dict[str, dict]) -> dict:
    """A's outcome from the two orders' parsed verdicts {"ab": {...}, "ba": {...}}.

    pinch: the same answer picked twice -> win/loss, a flip -> tie. xinstruct: A's and B's scores averaged over the
    two orders; the higher average wins, equal is a tie."""
    prefs = {o: to_answer(preferred_position(protocol, v), o) for o, v in verdicts.items()}
    flip = prefs["ab"] != prefs["ba"]
    if protocol == "pinch":
        outcome = ("tie" if flip else "win" if prefs["ab"] == "a" else "loss")
        return {"outcome": outcome, "flip": flip, "preferred": prefs}
    score_a = (verdicts["ab"]["first"] + verdicts["ba"]["second"]) / 2
    score_b = (verdicts["ab"]["second"] + verdicts["ba"]["first"]) / 2
    outcome = "win" if score_a > score_b else "loss" if score_a < score_b else "tie"
    return {"outcome": outcome, "flip": flip, "preferred": prefs, "score_a": score_a, "score_b": score_b}


@dataclass(frozen=True)
class Protocol:
    name: str
    parse: Callable[[str], tuple[dict | None, str | None]]
    max_new_tokens: int


PROTOCOLS = {
    "xinstruct": Protocol("xinstruct", parse_scores, 256),  # the reference's max_tokens
    "pinch": Protocol("pinch", parse_choice, 16),
}


def get_protocol(name: str, where: str | None = None) -> Protocol:
    """A built-in, or `package.module:Object` naming a user's `Protocol` (its parse returns {"first", "second"}
    scores, or {"pick"} when its name is pinch; it needs --prompt FILE). Importing it runs its code."""
    from crosstune.registry import Registry

    registry = Registry("judge protocol", PROTOCOLS, lambda o: isinstance(o, Protocol),
                        "a crosstune.eval.judge_protocols.Protocol(name, parse, max_new_tokens)")
    return registry.get(name, where or f"--protocol {name!r}")


OUTCOME_SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}
