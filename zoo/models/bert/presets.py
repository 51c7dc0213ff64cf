"""The BERT sizes of Turc et al. (2019) and Devlin et al. (2018): layers, hidden, heads."""
from __future__ import annotations

# name: (layers, hidden, heads); the feed-forward is 4 x hidden, as in every BERT.
PRESETS = {
    "bert_tiny": (2, 128, 2),
    "bert_mini": (4, 256, 4),
    "bert_small": (4, 512, 8),
    "bert_base": (12, 768, 12),
}


def sizes(preset: str) -> dict:
    """{layers, hidden, heads, intermediate} of a preset."""
    layers, hidden, heads = PRESETS[preset]
    return {"layers": layers, "hidden": hidden, "heads": heads, "intermediate": 4 * hidden}
