"""riskcast stage: training (labels, datasets, models, evaluation, tracking)."""
