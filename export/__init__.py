"""`python -m export`: a trained model_dir -> TF Serving, TFLite, TPU and Edge TPU artifacts."""
