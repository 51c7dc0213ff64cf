"""BERT: the encoder (`encoder.py`), its in-graph tokenizer (`tokenizer.py`), checkpoint
readers (`checkpoints.py`), sizes (`presets.py`) and the registered classifier `bert`
(`classifier.py`). `load_encoder(DIR)` gives the pretrained encoder alone."""
from zoo.models.bert import classifier  # registers `bert`

__all__ = ["classifier", "load_encoder"]


def load_encoder(directory, max_length: int | None = None):
    """The encoder of a Hugging Face or Google BERT checkpoint directory, with its tokenizer:
    called on a list of strings (or of (first, second) pairs) it returns {input_ids,
    sequence_output, pooled_output, mean_embedding}. See `text_encoder.TextEncoder`."""
    from zoo.models.bert.text_encoder import load
    return load(directory, max_length)
