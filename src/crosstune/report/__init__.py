"""Reports: Markdown tables and matplotlib figures from evaluation summaries."""
