"""X-Instruction (Li et al., 2024): cross-lingual instruction data written for native text, as composable blocks.

read+segment (`read`) -> reverse instruction generation (`generate`) -> grading and rewriting (`refine`) ->
embedding clusters (`diversify`) -> cross-lingual SFT rows (`write`); `runner.xinstruct` runs them resumably.
"""
