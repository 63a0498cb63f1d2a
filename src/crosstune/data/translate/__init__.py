"""Machine translation of instruction data into parallel sets that `crosstune data build` reads directly.

config -> source rows -> segments (layout kept, spans protected) -> engine through the call cache -> checks and
per-span fallback -> quality signals -> `parallel.jsonl` / `excluded.jsonl` / `manifest.json`. See docs/translation.md.
"""

from crosstune.data.translate.runner import plan_translate, run_translate, translate

__all__ = ["plan_translate", "run_translate", "translate"]
