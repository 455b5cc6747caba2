"""The second book's ``common/optimizer.py``: xpnet's optimizers, which take its lists
(``update(model.params, model.grads)``) as well as the first book's dicts."""

from ..optimizer import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop

__all__ = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]
