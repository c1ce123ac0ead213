"""The built-in simulated pad: one physics model (:mod:`.model`) and its protocol faces.

:mod:`.modbus_face` serves the model as a pymodbus TCP server (one device id per unit) and
:mod:`.opcua_face` as an asyncua server; :class:`engine.scada.simulator.Simulator` runs both
in one asyncio loop. The register and node map is in ``docs/simulator.md``.
"""

from __future__ import annotations
