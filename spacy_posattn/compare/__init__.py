"""The `compare` workflow: baselines and ablations trained and scored on one split."""
