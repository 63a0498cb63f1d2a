"""Evaluation: parallel multiple-choice tasks as data, two scorers (generate+extract, log-likelihood), SeaEval's
cross-lingual metrics (accuracy, Consistency_s, AC3_s) with bootstrap intervals and a position-bias diagnostic."""
