"""ecglatent: explainable ECG representations tracked with DVC, MLflow and Optuna."""

__version__ = "0.1.0"
