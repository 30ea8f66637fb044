"""Training: one ``train(cfg)`` for every model, its typed config, the task registry, checkpoints and weights.

    cfg = load_config("configs/dncnn-color.json", ["steps=2000"])
    checkpoint = train(cfg)                                   # <out>/last.safetensors
    export_weights(checkpoint, "dncnn-color", {"metrics": {...}})
    net, card = load_net("dncnn-color", "cuda")
"""
from .checkpoint import export_weights, load_net, load_weights, read_checkpoint, save_checkpoint, weights_dir
from .config import TrainConfig, config_from_dict, config_to_dict, load_config, save_config
from .loop import EMA, lr_at, train, train_main
from .tasks import TASKS, DenoiseTask, build_task, get_task_class

__all__ = ["export_weights", "load_net", "load_weights", "read_checkpoint", "save_checkpoint", "weights_dir",
           "TrainConfig", "config_from_dict", "config_to_dict", "load_config", "save_config", "EMA", "lr_at",
           "train", "train_main", "TASKS", "DenoiseTask", "build_task", "get_task_class"]
