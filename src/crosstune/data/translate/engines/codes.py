"""Each translation-model family's language codes, from crosstune's canonical tags (`crosstune.languages`).

NLLB uses FLORES-200 codes (`zho_Hans`, `por_Latn`), M2M100 ISO 639-1 in a token (`__zh__`), MADLAD a `<2zh>` prefix,
multi-target Marian a `>>por<<` prefix. Whether a model really has a language is read from its vocabulary, never
assumed: `family_token` returns the token to look up.
"""

from __future__ import annotations

import langcodes

from crosstune.languages import get_language, normalize

FAMILIES = ("marian", "nllb", "m2m100", "madlad")
# FLORES-200 codes whose language part is not the plain ISO 639-3 of the canonical tag (macrolanguages etc.).
_NLLB_EXCEPTIONS = {
    "ar": "arb_Arab", "ms": "zsm_Latn", "fa": "pes_Arab", "et": "est_Latn", "sw": "swh_Latn", "fil": "tgl_Latn",
    "tl": "tgl_Latn", "no": "nob_Latn", "nb": "nob_Latn", "lv": "lvs_Latn", "uz": "uzn_Latn", "sq": "als_Latn",
    "az": "azj_Latn", "ps": "pbt_Arab", "om": "gaz_Latn", "qu": "quy_Latn", "mn": "khk_Cyrl", "gn": "grn_Latn",
    "yi": "ydd_Hebr", "zh": "zho_Hans", "zh-Hant": "zho_Hant", "ku": "kmr_Latn", "kok": "gom_Deva",
    "ne": "npi_Deva", "or": "ory_Orya", "mg": "plt_Latn", "lah": "pnb_Arab", "ff": "fuv_Latn", "din": "dik_Latn",
}
_M2M_EXCEPTIONS = {"fil": "tl", "zh-Hant": "zh", "nb": "no"}


def nllb_code(tag: str) -> str:
    tag = normalize(tag)
    if tag in _NLLB_EXCEPTIONS:
        return _NLLB_EXCEPTIONS[tag]
    lang = get_language(tag)
    return f"{langcodes.Language.get(tag.split('-')[0]).to_alpha3()}_{lang.script}"


def m2m_code(tag: str) -> str:
    tag = normalize(tag)
    return _M2M_EXCEPTIONS.get(tag, tag.split("-")[0])


def family_tokens(family: str, tag: str) -> list[str]:
    """Candidate vocabulary tokens that name `tag` in a model of `family`; the first one in the vocabulary wins."""
    tag = normalize(tag)
    base = tag.split("-")[0]
    if family == "nllb":
        return [nllb_code(tag)]
    if family == "m2m100":
        return [f"__{m2m_code(tag)}__"]
    if family == "madlad":
        return list(dict.fromkeys([f"<2{tag.replace('-', '_')}>", f"<2{m2m_code(tag)}>", f"<2{base}>"]))
    if family == "marian":
        alpha3 = langcodes.Language.get(base).to_alpha3()
        return [f">>{alpha3}<<", f">>{base}<<", f">>{base}_BR<<" if base == "pt" else f">>{base}_{base.upper()}<<"]
    raise ValueError(f"unknown model family {family!r}; expected one of {', '.join(FAMILIES)}")
