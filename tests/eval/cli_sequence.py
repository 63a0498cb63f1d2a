"""Run several crosstune commands one after another in one process: `torchrun ... tests/eval/cli_sequence.py
'[["eval", "generate", ...], ["eval", "judge", ...]]'` (the 2-process tests share one launch between commands)."""

import json
import sys

from crosstune.cli import main

if __name__ == "__main__":
    for argv in json.loads(sys.argv[1]):
        try:
            main(argv)
        except SystemExit as e:
            if e.code:
                raise
