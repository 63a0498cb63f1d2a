"""Supervised fine-tuning: templates -> tokenize -> packing -> loop (+ checkpoint, metrics_log, lora, model)."""
