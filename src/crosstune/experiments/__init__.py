"""Experiments: recipes x training configs x evaluation suites, with sweeps and a content-hash stage cache."""
