"""Library chatter off the screen while our commands run: the one helper for training, experiments and the
quickstart (transformers' "Loading weights" bars, advisory logs and deprecation warnings of the libraries we
drive; errors still show). Scoped: whatever was set before is restored when the block ends."""

from __future__ import annotations

import logging
import os
import warnings
from contextlib import contextmanager
from typing import Iterator

WARNINGS_FROM = r"(transformers|peft|accelerate|torch)(\..*)?"  # warnings attributed to these modules
LOGGERS = ("transformers", "peft", "accelerate", "torch.distributed")


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """Within the block: library warnings ignored, their loggers at ERROR, transformers' progress bars off.
    Also sets (if unset) TOKENIZERS_PARALLELISM=false and TRANSFORMERS_NO_ADVISORY_WARNINGS=1 for the process."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        hf_logging = None
    if hf_logging is not None:
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=WARNINGS_FROM)
        for name in LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        if hf_logging is not None:
            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
            if hf_logging is not None:
                hf_logging.set_verbosity(verbosity)
                if bars:
                    hf_logging.enable_progress_bar()
