"""``campo simulate``: run the simulated pad in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` command."""
    p = subparsers.add_parser(
        "simulate", help="run the simulated pad (Modbus TCP + OPC-UA servers) until Ctrl-C",
        description="Serve the simulated pad of pumped units over Modbus TCP (one device id "
                    "per unit) and OPC-UA. The register and node map is in docs/simulator.md.")
    p.add_argument("--wells", dest="units", type=int, default=4, metavar="N",
                   help="number of simulated units (default 4)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--modbus-port", type=int, default=5020, metavar="P",
                   help="Modbus TCP port (default 5020, as tags/sites/sim_pad.yaml expects; "
                        "0 picks a free port)")
    p.add_argument("--opcua-port", type=int, default=4840, metavar="P",
                   help="OPC-UA port (default 4840; 0 picks a free port)")
    p.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                   help="simulated seconds per real second (default 1)")
    p.set_defaults(handler=_simulate)


#: how long Ctrl-C waits for the Modbus and OPC-UA servers to close their connections
STOP_SECONDS = 5.0


def _simulate(args: argparse.Namespace) -> int:
    from engine.errors import UserError

    from .sim.ports import PortInUse
    from .simulator import NAMESPACE_URI, Simulator

    if not 1 <= args.units <= 247:
        raise UserError(f"--wells must be between 1 and 247 (one Modbus device id each), "
                        f"got {args.units}")
    if not getattr(args, "verbose", False):  # library chatter only with campo -v
        for name in ("asyncua", "pymodbus"):
            logging.getLogger(name).setLevel(logging.WARNING)
    sim = Simulator(args.units, host=args.host, time_scale=args.time_scale)

    async def main() -> None:
        ports = await sim.start(args.modbus_port, args.opcua_port)
        print(f"Modbus TCP  {args.host}:{ports.modbus}  device ids 1..{args.units}", flush=True)
        print(f"OPC-UA      {sim.opcua_url}  namespace {NAMESPACE_URI}", flush=True)
        print("Ctrl-C to stop", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            # Ctrl-C must end the program even if a server's shutdown hangs (a client that
            # keeps its session open): wait a while, then leave without asyncio's clean-up,
            # which would wait for the same tasks
            stopping = asyncio.create_task(sim.stop(), name="campo-simulator-stop")
            done, _ = await asyncio.wait({stopping}, timeout=STOP_SECONDS)
            if not done:
                waiting = sorted(t.get_name() for t in asyncio.all_tasks()
                                 if t is not asyncio.current_task())
                print(f"simulator: the servers did not stop within {STOP_SECONDS:.0f} s "
                      f"(still running: {', '.join(waiting)}); leaving",
                      file=sys.stderr, flush=True)
                sys.stdout.flush()
                os._exit(0)
            stopping.result()

    try:
        asyncio.run(main())
    except PortInUse as exc:
        flag = "--modbus-port" if exc.what.startswith("Modbus") else "--opcua-port"
        raise UserError(f"cannot start the simulator: {exc}\n  hint: stop the program that "
                        f"uses it, or choose another port with {flag} P (0 picks a free "
                        "one) and give the same port to the tag map (docs/simulator.md)"
                        ) from None
    except OSError as exc:
        raise UserError(f"cannot start the simulator: {exc}") from None
    except KeyboardInterrupt:
        pass
    return 0
