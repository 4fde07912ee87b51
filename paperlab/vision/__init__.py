"""Shared vision substrate of the token-reduction and compression systems (PiToMe, DiffRate,
Entropic Student). It imports only :mod:`paperlab.core`; the systems import it, never each other.

* :mod:`~paperlab.vision.data`: CIFAR-10 JPEGs read with Pillow (:func:`load_cifar10`).
* :mod:`~paperlab.vision.models`: timm ``VisionTransformer`` (:class:`ViTSpec`) and torchvision
  ResNet-18 with a CIFAR stem (:class:`ResNetSpec`) for 32x32 images; the narrow CIFAR ResNet
  teacher (:class:`CifarResNetSpec`) the distillation systems share.
* :mod:`~paperlab.vision.train`: one trainer with a checkpoint cache and resume (:func:`fit`).
* :mod:`~paperlab.vision.flops`: analytic ViT FLOPs with token reduction (:func:`vit_flops`).
* :mod:`~paperlab.vision.speed`: throughput and latency (:func:`measure_speed`).
* :mod:`~paperlab.vision.comparison`: the token-reduction systems' image part, the CIFAR-10 ViT
  reduced off the shelf: the fields their ``Config`` shares (:class:`ViTComparison`), accuracy
  with intervals, speed and paired tests of reduced copies (:func:`score`, :class:`Scores`).

Token merging (ToMe, PiToMe's energy rule, the ViT and BERT patches) is the modality-neutral
substrate :mod:`paperlab.merging`.

Public names are imported on first use: importing this package imports no torch.
"""

from paperlab.core.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(
        ("CLASSES", "ImageFileError", "ImageSet", "cifar10_dir", "load_cifar10", "normalize",
         "read_folder", "read_image"),
        "paperlab.vision.data"),
    **dict.fromkeys(("CifarResNet", "CifarResNetSpec", "ModelSpec", "ResNetSpec", "ViTSpec"),
                   "paperlab.vision.models"),
    **dict.fromkeys(
        ("TrainConfig", "Trained", "accuracy", "checkpoint_path", "fit", "predict"),
        "paperlab.vision.train"),
    **dict.fromkeys(("block_flops", "head_outputs", "model_flops", "vit_flops"),
                    "paperlab.vision.flops"),
    **dict.fromkeys(("Speed", "measure_speed"), "paperlab.vision.speed"),
    **dict.fromkeys(("Scores", "ViTComparison", "score"), "paperlab.vision.comparison"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
