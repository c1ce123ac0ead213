"""Device drivers, one module per protocol (``modbus``, ``opcua``, ``mqtt``).

Each module implements :class:`engine.scada.types.Driver` and defines ``create(device)`` and
``point(tag)`` for :mod:`engine.scada.registry`. Only this package imports pymodbus, asyncua
and paho on the client side (the simulator's servers live in :mod:`engine.scada.sim`).

This file also makes the folder a regular package, so ``pip install .`` ships it.
"""

from __future__ import annotations
