"""The book's networks, each on any Array API backend.

Every net takes the book's constructor arguments plus keyword-only ``dtype``
(default ``"float32"``), ``seed`` and ``device``, and offers ``predict``,
``loss``, ``accuracy(x, t, batch_size=100)``, ``gradient``,
``numerical_gradient``, ``summary``, ``save_params`` and ``load_params``.
All are subclasses of :class:`Net`, whose ``loss``/``accuracy``/``gradient``
take a keyword-only ``check_labels`` (see :func:`xpnet.functions.check_labels_later`).
"""

from ._base import Net
from .deep_convnet import DeepConvNet
from .multi_layer_net import MultiLayerNet
from .multi_layer_net_extend import MultiLayerNetExtend
from .simple_convnet import SimpleConvNet
from .two_layer_net import TwoLayerNet

__all__ = ["Net", "TwoLayerNet", "MultiLayerNet", "MultiLayerNetExtend", "SimpleConvNet", "DeepConvNet"]
