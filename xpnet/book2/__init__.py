"""The second book's ``common/`` package: ``common.X`` becomes ``xpnet.book2.X``.

The layers and optimizers the two books share are the very classes of
:mod:`xpnet.layers` and :mod:`xpnet.optimizer` (both attribute styles), re-exported.
"""
