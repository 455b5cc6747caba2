"""The second book's ``common/config.py``: set ``GPU = True`` before importing
:mod:`xpnet.book2.np` or building a :class:`~xpnet.book2.trainer.Trainer` to train on CUDA."""

GPU = False
