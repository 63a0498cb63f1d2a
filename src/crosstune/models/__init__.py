"""Models: find and load weights (HF folder, hub id, the embedded GGUF default) and talk to them (backends)."""
