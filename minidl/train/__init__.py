"""Training and evaluation: fit / evaluate / predict for any minidl.nn.Module, the
Model class that carries them as Keras' methods, callbacks, resumable runs, classification metrics, the progress bar, and plots
(matplotlib, optional).

    from minidl.train import fit, evaluate, predict, EarlyStopping, ModelCheckpoint
"""
from minidl.train import metrics
from minidl.train.callbacks import (Callback, CSVLogger, EarlyStopping, History, ModelCheckpoint, Monitor,
                                    ReduceLROnPlateau)
from minidl.train.checkpoint import BackupAndRestore
from minidl.train.divergence import TrainingDiverged
from minidl.train.loop import evaluate, fit, predict
from minidl.train.model import Model
from minidl.train.objectives import LOSSES, Objective, outputs_logits, resolve_objective

__all__ = [
    "BackupAndRestore", "CSVLogger", "Callback", "EarlyStopping", "History", "LOSSES", "Model", "ModelCheckpoint", "Monitor",
    "ReduceLROnPlateau", "Objective", "TrainingDiverged", "evaluate", "fit", "metrics", "outputs_logits", "predict",
    "resolve_objective",
]
